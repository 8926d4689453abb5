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
        self.parse(file, &bytes)
    }

    fn parse<T: sealwright_tuf::metadata::RoleType>(
        &self,
        file: &str,
        bytes: &[u8],
    ) -> Result<Metadata<T>, PublishError> {
        Metadata::<T>::from_bytes(bytes, MAX_METADATA_BYTES as usize).map_err(|e| {
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

    /// [`Self::targets_role`], through `cache`.
    pub fn targets_role_cached(
        &self,
        name: &str,
        cache: &RoleCache,
    ) -> Result<Option<std::sync::Arc<Metadata<Targets>>>, PublishError> {
        self.roles_read
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Some(version) = self.role_version(name) else {
            return Ok(None);
        };
        let file = sealwright_tuf::layout::metadata_file(name, version);
        let bytes = self.read_bytes(&file)?;
        if let Some(md) = cache.get(&file, &bytes) {
            return Ok(Some(md));
        }
        let md = std::sync::Arc::new(self.parse::<Targets>(&file, &bytes)?);
        cache.insert(&file, &bytes, std::sync::Arc::clone(&md));
        Ok(Some(md))
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

/// Targets roles this process has parsed, each under its file name and the SHA-256 of its
/// bytes, for a process that compares every push with the role it replaces (the server):
/// the role read back is, nearly always, the one it accepted a moment ago.
///
/// A hit needs the same bytes: the file is read and hashed each time (milliseconds for a
/// 20 MB role, against a second to parse it), so a file replaced behind the process's back
/// — by another replica's working copy, or a push that failed after writing it — is parsed
/// afresh. What is cached was parsed from those bytes but is not trusted for it: callers
/// verify as before. At most [`RoleCache::MAX_BYTES`] of role files are kept parsed.
#[derive(Debug, Default)]
pub struct RoleCache {
    roles: std::sync::Mutex<std::collections::HashMap<String, CachedRole>>,
}

#[derive(Debug)]
struct CachedRole {
    sha256: [u8; 32],
    len: usize,
    md: std::sync::Arc<Metadata<Targets>>,
}

impl RoleCache {
    /// Largest total size of the role files whose parsed form is kept.
    pub const MAX_BYTES: usize = 256 * 1024 * 1024;

    /// Remembers `md`, parsed from `bytes`, the contents of published file `file`.
    pub fn insert(&self, file: &str, bytes: &[u8], md: std::sync::Arc<Metadata<Targets>>) {
        let role = CachedRole {
            sha256: sealwright_crypto::digest::sha256(bytes),
            len: bytes.len(),
            md,
        };
        let mut roles = self.roles.lock().unwrap_or_else(|e| e.into_inner());
        // Another version of the same role is never asked for again.
        let role_name = role_of_file(file);
        roles.retain(|f, _| role_of_file(f) != role_name);
        let kept: usize = roles.values().map(|r| r.len).sum();
        if kept + role.len > Self::MAX_BYTES {
            roles.clear();
        }
        if role.len <= Self::MAX_BYTES {
            roles.insert(file.to_owned(), role);
        }
    }

    fn get(&self, file: &str, bytes: &[u8]) -> Option<std::sync::Arc<Metadata<Targets>>> {
        let roles = self.roles.lock().unwrap_or_else(|e| e.into_inner());
        let role = roles.get(file)?;
        (role.len == bytes.len() && role.sha256 == sealwright_crypto::digest::sha256(bytes))
            .then(|| std::sync::Arc::clone(&role.md))
    }
}

/// `ROLE` of `N.ROLE.json`.
fn role_of_file(file: &str) -> &str {
    file.split_once('.').map_or(file, |(_, rest)| rest)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn role(version: u64) -> Arc<Metadata<Targets>> {
        Arc::new(Metadata::new(Targets::new(version, chrono::Utc::now())))
    }

    #[test]
    fn role_cache_hits_only_the_same_bytes_and_keeps_one_version_per_role() {
        let cache = RoleCache::default();
        let three = role(3);
        cache.insert("3.team.json", b"bytes of three", Arc::clone(&three));
        let hit = cache.get("3.team.json", b"bytes of three").unwrap();
        assert!(Arc::ptr_eq(&hit, &three));
        // Same name and length, other bytes (a file replaced behind the process's back).
        assert!(cache.get("3.team.json", b"bytes of thref").is_none());
        assert!(cache.get("3.other.json", b"bytes of three").is_none());

        cache.insert("4.team.json", b"bytes of four", role(4));
        assert!(cache.get("3.team.json", b"bytes of three").is_none());
        assert!(cache.get("4.team.json", b"bytes of four").is_some());
        cache.insert("1.other.json", b"other", role(1));
        assert!(cache.get("4.team.json", b"bytes of four").is_some());
    }
}
