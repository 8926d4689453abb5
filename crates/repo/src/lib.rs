//! A publisher's TUF repository on disk.
//!
//! ```text
//! DIR/sealwright.toml        policy: keys, roles, thresholds, expiry, delegations
//! DIR/keys/NAME.pem          encrypted private keys (file backend), mode 0600
//! DIR/keys/retired/          keys taken out by `key rotate` / `key revoke`, kept for the record
//! DIR/signing-requests/      requests `status` prepared for offline roles nearing expiry
//! DIR/staged/                what the next `publish` will sign: targets.json + blobs/<sha256>,
//!                            pending/ROLE.json (offline signing requests and their signatures)
//! DIR/published/             the servable tree: metadata/N.ROLE.json, metadata/timestamp.json,
//!                            targets/<dir>/<sha256>.<name>
//! ```
//!
//! Only `published/` is ever served. Publishing writes new, never-before-used file names
//! (versioned metadata, content-addressed targets), syncs the file system, and then switches
//! `timestamp.json` atomically: a crash at any point leaves the previous published state
//! intact and consistent.

pub mod agent;
pub mod attestations;
/// The one implementation of atomic writes and capped reads (`sealwright-fs`).
pub use sealwright_fs as fsutil;
pub mod init;
pub mod key_audit;
pub mod key_lifecycle;
pub mod keyring;
pub mod policy;
pub mod policy_change;
pub mod publish;
pub mod push;
pub mod review;
pub mod server_dir;
pub mod staging;
pub mod verify;

pub use keyring::{FixedPassphrase, Keyring, KeyringError, PassphraseSource};
pub use policy::{Policy, PolicyError};
