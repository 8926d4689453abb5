//! Offline signatures (`staged/pending/`): a role version waiting for signatures made on
//! another machine (`sign-request`, `sign`, `sign-import`), adopted when publishing.

use std::fs;
use std::path::{Path, PathBuf};

use sealwright_tuf::metadata::Metadata;

use crate::fsutil;

use super::*;

/// Offline signatures collected for role versions not yet published (`staged/pending/`).
#[derive(Debug, Default)]
pub struct Pending {
    dir: PathBuf,
}

impl Pending {
    /// The pending directory of a repository.
    pub fn new(repo_dir: &Path) -> Self {
        Pending {
            dir: repo_dir.join(PENDING_DIR),
        }
    }

    fn path(&self, role: &str) -> PathBuf {
        self.dir.join(format!("{role}.pending"))
    }

    /// The stored pending metadata for `role` (signed part plus signatures so far).
    pub fn load(&self, role: &str) -> Result<Option<serde_json::Value>, PublishError> {
        let path = self.path(role);
        match fsutil::read_capped(&path, MAX_METADATA_BYTES) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| PublishError::Pending(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Stores pending metadata for `role`.
    pub fn save(&self, role: &str, value: &serde_json::Value) -> Result<(), PublishError> {
        let path = self.path(role);
        let bytes = serde_json::to_vec_pretty(value).map_err(meta_err)?;
        fsutil::write_atomic(&path, &bytes).map_err(io_err(&path))
    }

    /// Forgets all pending requests.
    pub fn clear(&self) -> Result<(), PublishError> {
        match fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&self.dir)(e)),
        }
    }
}

/// Adopts pending offline signatures: if `role` has a pending version, the planned metadata
/// must be the same document (modulo the expiry fixed at request time), and its signatures
/// are carried over. A pending request made before later changes is refused, never signed
/// over silently.
pub(super) fn adopt_pending<T>(
    pending: &Pending,
    role: &str,
    md: &mut Metadata<T>,
) -> Result<(), PublishError>
where
    T: serde::Serialize + serde::de::DeserializeOwned + sealwright_tuf::metadata::RoleType + Clone,
{
    let Some(stored) = pending.load(role)? else {
        return Ok(());
    };
    let stored_md: Metadata<T> = Metadata::from_value(stored)
        .map_err(|e| PublishError::Pending(format!("pending {role}: {e}")))?;
    md.set_expires(stored_md.expires());
    if md.canonical_signed().map_err(meta_err)? != stored_md.canonical_signed().map_err(meta_err)? {
        return Err(PublishError::Pending(format!(
            "the pending signing request for {role} is out of date (the repository changed since): run `sealwright sign-request {role}` again"
        )));
    }
    md.signatures = stored_md.signatures;
    Ok(())
}
