//! Transparency-log primitives for Sealwright, in the C2SP family that Tessera, Rekor v2,
//! Go's checksum database and the witness network share, so that their tools verify ours.
//!
//! - [`merkle`]: RFC 6962/9162 tree hashing; inclusion and consistency proofs, verified
//!   and built.
//! - [`tile`]: c2sp.org/tlog-tiles paths, tile contents, proofs from tiles, entry bundles.
//! - [`note`]: c2sp.org/signed-note (Ed25519) and tlog-cosignature/v1; verifier keys.
//! - [`checkpoint`]: c2sp.org/tlog-checkpoint texts.
//! - [`proof`]: c2sp.org/tlog-proof@v1 files, verified offline against a log key and a
//!   witness quorum.
//! - [`entry`]: what Sealwright logs (metadata files, targets, audit heads), one spelling each.
//! - [`writer`]: growing a tiled log by a batch: the files to write and the root to sign.
//! - [`witness`]: c2sp.org/tlog-witness `add-checkpoint`, the witness's checks and the
//!   submitter's side.
//!
//! Nothing here does I/O or reads the clock: bytes in, decisions out. The log writer,
//! the server, the witness, the client and the monitor all use the same code.

pub mod checkpoint;
pub mod entry;
mod lines;
pub mod merkle;
pub mod note;
pub mod proof;
pub mod tile;
pub mod witness;
pub mod writer;

pub use checkpoint::Checkpoint;
pub use merkle::{Hash, ProofError};
pub use note::{Note, NoteError, Verifier};
