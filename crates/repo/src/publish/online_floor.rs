//! `online-floor.json`: the snapshot and timestamp versions sent to be signed, recorded
//! before signing, so a write that fails after signing costs a version, never publishing.

use std::path::Path;

use crate::fsutil;

/// The newest snapshot and timestamp versions ever sent to be signed
/// (`DIR/online-floor.json`), recorded *before* each signing. A signer agent refuses to sign
/// a version at or below one it signed before; if writing the tree fails after signing, the
/// published versions lag behind the agent's, and the next publish, push or renewal must
/// go above the agent's, not the published, version — or publishing would stop for good.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OnlineFloor {
    /// Highest snapshot version sent to be signed.
    pub snapshot: u64,
    /// Highest timestamp version sent to be signed.
    pub timestamp: u64,
}

/// File of [`OnlineFloor`] in a repository or data directory.
pub const ONLINE_FLOOR_FILE: &str = "online-floor.json";

impl OnlineFloor {
    /// The recorded floor (zero when nothing was recorded).
    pub fn load(repo_dir: &Path) -> std::io::Result<Self> {
        let path = repo_dir.join(ONLINE_FLOOR_FILE);
        match fsutil::read_capped(&path, 4096) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e),
        }
    }

    /// The snapshot version after `published`: above it and above the floor.
    pub fn next_snapshot(&self, published: Option<u64>) -> Option<u64> {
        published.unwrap_or(0).max(self.snapshot).checked_add(1)
    }

    /// The timestamp version after `published`: above it and above the floor.
    pub fn next_timestamp(&self, published: Option<u64>) -> Option<u64> {
        published.unwrap_or(0).max(self.timestamp).checked_add(1)
    }

    /// Raises the floor to the versions about to be signed (atomically, durably).
    pub fn record(repo_dir: &Path, snapshot: Option<u64>, timestamp: u64) -> std::io::Result<()> {
        let old = Self::load(repo_dir)?;
        let new = OnlineFloor {
            snapshot: old.snapshot.max(snapshot.unwrap_or(0)),
            timestamp: old.timestamp.max(timestamp),
        };
        let bytes = serde_json::to_vec(&new).map_err(std::io::Error::other)?;
        fsutil::write_atomic(&repo_dir.join(ONLINE_FLOOR_FILE), &bytes)
    }
}
