//! Reading a c2sp.org/tlog-tiles log over HTTP(S) as an auditor or a monitor does: the
//! checkpoint, entries from the entry bundles, and consistency proofs from the hash tiles.
//!
//! Guarantees:
//! - [`LogReader::checkpoint`] returns only a checkpoint signed by the log key given here
//!   (never one the server names);
//! - [`LogReader::entries`] returns exactly the entries asked for, or an error: a bundle
//!   with fewer or more entries than its width is refused;
//! - every response is size-capped (a hash tile at its full size, a bundle at 256 entries of
//!   the largest size an entry may have).
//!
//! Not guaranteed here: that the entries are the log's. They are authenticated by whoever
//! uses them, against a signed root (the monitor rebuilds the tree from them; `audit verify
//! --log` computes the root of all of them).

use sealwright_tlog::merkle::{consistency_proof, Hash};
use sealwright_tlog::note::MAX_NOTE_BYTES;
use sealwright_tlog::tile::{
    decode_bundle, TileError, TileHashes, TileKind, TilePath, FULL_TILE_BYTES, MAX_ENTRY_BYTES,
    TILE_WIDTH,
};
use sealwright_tlog::{Checkpoint, Note, Verifier};

use crate::fetch::{FetchError, Fetcher};

/// Largest entry bundle: 256 entries, each a 2-byte length and at most 65535 bytes.
const MAX_BUNDLE_BYTES: u64 = TILE_WIDTH * (2 + MAX_ENTRY_BYTES as u64);

/// Why the log could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LogReadError {
    /// A file of the log could not be fetched.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The checkpoint is not a note signed by the log key, or not a checkpoint.
    #[error("the log's checkpoint: {0}")]
    Checkpoint(String),
    /// A tile or bundle is not what its name says.
    #[error("the log's tiles: {0}")]
    Tiles(String),
}

impl From<TileError> for LogReadError {
    fn from(e: TileError) -> Self {
        LogReadError::Tiles(e.to_string())
    }
}

/// A log at a URL prefix, read with one fetcher and trusted under one key.
#[derive(Debug)]
pub struct LogReader<F> {
    fetcher: F,
    base: String,
    key: Verifier,
}

impl<F: Fetcher> LogReader<F> {
    /// The log at `url` (its `checkpoint` is at `url` + `checkpoint`; a missing final `/` is
    /// added), trusted under `key`.
    pub fn new(fetcher: F, url: &str, key: Verifier) -> Self {
        let base = if url.ends_with('/') {
            url.to_owned()
        } else {
            format!("{url}/")
        };
        LogReader { fetcher, base, key }
    }

    /// The log's key.
    pub fn key(&self) -> &Verifier {
        &self.key
    }

    /// The current checkpoint as served (cosignatures included) and what it says, verified
    /// with the log key.
    pub fn checkpoint(&self) -> Result<(Vec<u8>, Checkpoint), LogReadError> {
        let bytes = self
            .fetcher
            .fetch(&format!("{}checkpoint", self.base), MAX_NOTE_BYTES as u64)?;
        let bad = |e: sealwright_tlog::NoteError| LogReadError::Checkpoint(e.to_string());
        let note = Note::parse(&bytes).map_err(bad)?;
        note.verify(std::slice::from_ref(&self.key)).map_err(bad)?;
        let checkpoint = Checkpoint::parse(note.text()).map_err(bad)?;
        if checkpoint.origin != self.key.name() {
            return Err(LogReadError::Checkpoint(format!(
                "its origin {:?} is not the key's name {:?}",
                checkpoint.origin,
                self.key.name()
            )));
        }
        Ok((bytes, checkpoint))
    }

    /// Entries `from..to` of a log of at least `to` entries, from its entry bundles.
    pub fn entries(&self, from: u64, to: u64) -> Result<Vec<Vec<u8>>, LogReadError> {
        let mut out = Vec::new();
        if from >= to {
            return Ok(out);
        }
        for index in from / TILE_WIDTH..to.div_ceil(TILE_WIDTH) {
            let start = index * TILE_WIDTH;
            let width = (to - start).min(TILE_WIDTH);
            let path = TilePath {
                kind: TileKind::Entries,
                index,
                width: width as u16,
            };
            let bundle = self
                .fetcher
                .fetch(&format!("{}{path}", self.base), MAX_BUNDLE_BYTES)?;
            let entries = decode_bundle(&bundle)?;
            if entries.len() as u64 != width {
                return Err(LogReadError::Tiles(format!(
                    "{path} holds {} entries",
                    entries.len()
                )));
            }
            let skip = from.saturating_sub(start) as usize;
            out.extend(entries.iter().skip(skip).map(|e| e.to_vec()));
        }
        Ok(out)
    }

    /// The consistency proof from size `old` to size `new`, built from the hash tiles of
    /// the tree of size `new`.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, LogReadError> {
        let mut tiles = TileHashes::new(new, |t: &TilePath| {
            self.fetcher
                .fetch(&format!("{}{t}", self.base), FULL_TILE_BYTES as u64)
                .map_err(|e| TileError::Missing(format!("{t}: {e}")))
        });
        Ok(consistency_proof(&mut tiles, old, new)?)
    }
}
