//! [`Catalog`]: the questions a publish server asks of its index — which blobs are stored,
//! what each published role lists — answered by the embedded SQLite index of one data
//! directory ([`Embedded`]) or by the database replicas share
//! ([`crate::shared::Shared`]). One test suite runs against both (`tests/catalog.rs`).
//!
//! A catalog is derived data, never a source of trust: clients verify everything against
//! signed metadata.

use std::path::PathBuf;

use crate::index::{Blob, Index, IndexError, Target};

/// Why the store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The embedded index.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The shared database.
    #[error("database: {0}")]
    Database(String),
    /// The object store.
    #[error("object store: {0}")]
    Objects(String),
    /// A bad `--store`/`--objects` setting.
    #[error("{0}")]
    Config(String),
    /// Another replica holds the publish lock too long.
    #[error("{0}")]
    Busy(String),
    /// A publish would have given a published path other bytes.
    #[error("{0} is already published with other bytes; published files are never replaced")]
    Overwrite(String),
}

/// The index of a publish server.
pub trait Catalog: Send + Sync + std::fmt::Debug {
    /// Records a blob now in the store (the first record of a blob is kept).
    fn record_blob(&self, sha256: &str, length: u64, stored_by: &str) -> Result<(), StoreError>;
    /// The blob with this SHA-256, if recorded.
    fn blob(&self, sha256: &str) -> Result<Option<Blob>, StoreError>;
    /// Replaces what `role` lists with `targets` (path, length, sha256), in one transaction.
    fn replace_role(
        &self,
        role: &str,
        role_version: u64,
        targets: &[(String, u64, String)],
    ) -> Result<(), StoreError>;
    /// Targets whose path starts with `prefix`, in path (byte) order, at most `limit`
    /// (capped at [`crate::index::MAX_LISTING`]), after `after`.
    fn targets(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Target>, StoreError>;
}

/// The embedded catalog: `DIR/index.sqlite3`, opened per call (SQLite connections are cheap
/// and this keeps the handle free of locks across threads).
#[derive(Debug, Clone)]
pub struct Embedded {
    dir: PathBuf,
}

impl Embedded {
    /// The catalog of the data directory `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Embedded { dir: dir.into() }
    }
}

impl Catalog for Embedded {
    fn record_blob(&self, sha256: &str, length: u64, stored_by: &str) -> Result<(), StoreError> {
        Ok(Index::open(&self.dir)?.record_blob(sha256, length, stored_by)?)
    }

    fn blob(&self, sha256: &str) -> Result<Option<Blob>, StoreError> {
        Ok(Index::open(&self.dir)?.blob(sha256)?)
    }

    fn replace_role(
        &self,
        role: &str,
        role_version: u64,
        targets: &[(String, u64, String)],
    ) -> Result<(), StoreError> {
        Ok(Index::open(&self.dir)?.replace_role(role, role_version, targets)?)
    }

    fn targets(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Target>, StoreError> {
        Ok(Index::open(&self.dir)?.targets(prefix, after, limit)?)
    }
}
