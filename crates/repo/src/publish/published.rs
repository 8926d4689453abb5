//! The published tree as clients see it: reading its roles back (capped, parsed), for
//! planning the next versions and for the checks that must agree with what is live.

use std::fs;
use std::path::{Path, PathBuf};

use sealwright_tuf::metadata::{Metadata, Root, Snapshot, Targets, Timestamp};

use crate::fsutil;

use super::*;

/// The published tree as it is on disk now.
#[derive(Debug)]
pub struct Published {
    dir: PathBuf,
    /// Newest root.
    pub root: Option<Metadata<Root>>,
    /// Current timestamp.
    pub timestamp: Option<Metadata<Timestamp>>,
    /// Current snapshot.
    pub snapshot: Option<Metadata<Snapshot>>,
    /// Targets roles read so far (what "the cost follows the change" is tested by).
    roles_read: std::sync::atomic::AtomicUsize,
}

impl Published {
    /// Reads the current state of `DIR/published/metadata`.
    pub fn load(repo_dir: &Path) -> Result<Self, PublishError> {
        let dir = repo_dir.join(PUBLISHED_DIR).join("metadata");
        let newest_root = newest_root_version(&dir).map_err(io_err(&dir))?;
        let mut published = Published {
            dir,
            root: None,
            timestamp: None,
            snapshot: None,
            roles_read: Default::default(),
        };
        if let Some(v) = newest_root {
            published.root =
                Some(published.read(&sealwright_tuf::layout::metadata_file("root", v))?);
        }
        if published.dir.join("timestamp.json").exists() {
            let ts: Metadata<Timestamp> = published.read("timestamp.json")?;
            let snap_version = ts
                .signed
                .snapshot_meta()
                .map(|m| m.version)
                .ok_or_else(|| PublishError::Corrupt {
                    file: "timestamp.json".into(),
                    reason: "no snapshot.json entry".into(),
                })?;
            published.snapshot = Some(published.read(&sealwright_tuf::layout::metadata_file(
                "snapshot",
                snap_version,
            ))?);
            published.timestamp = Some(ts);
        }
        Ok(published)
    }

    fn read<T: serde::de::DeserializeOwned + sealwright_tuf::metadata::RoleType>(
        &self,
        file: &str,
    ) -> Result<Metadata<T>, PublishError> {
        let bytes = self.read_bytes(file)?;
        Metadata::<T>::from_bytes(&bytes, MAX_METADATA_BYTES as usize).map_err(|e| {
            PublishError::Corrupt {
                file: file.to_owned(),
                reason: e.to_string(),
            }
        })
    }

    /// Current version of targets role `name` per the current snapshot.
    pub fn role_version(&self, name: &str) -> Option<u64> {
        self.snapshot.as_ref()?.signed.role_version(name)
    }

    /// The exact bytes of published metadata file `file` (e.g. `3.root.json`).
    pub fn read_bytes(&self, file: &str) -> Result<Vec<u8>, PublishError> {
        let path = self.dir.join(file);
        fsutil::read_capped(&path, MAX_METADATA_BYTES).map_err(io_err(&path))
    }

    /// How many targets roles [`Published::targets_role`] has read.
    pub fn roles_read(&self) -> usize {
        self.roles_read.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Current metadata of targets role `name`, if published.
    pub fn targets_role(&self, name: &str) -> Result<Option<Metadata<Targets>>, PublishError> {
        self.roles_read
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match self.role_version(name) {
            Some(v) => Ok(Some(
                self.read(&sealwright_tuf::layout::metadata_file(name, v))?,
            )),
            None => Ok(None),
        }
    }
}

/// The highest N of the `N.root.json` files in the metadata directory `dir` (none when there
/// is none, or no directory).
pub fn newest_root_version(dir: &Path) -> std::io::Result<Option<u64>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut newest = None;
    for e in entries {
        let name = e?.file_name();
        if let Some(v) = name
            .to_string_lossy()
            .strip_suffix(".root.json")
            .and_then(|v| v.parse::<u64>().ok())
        {
            newest = newest.max(Some(v));
        }
    }
    Ok(newest)
}
