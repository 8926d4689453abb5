//! Verification through the client's trust engine, on the repository's side.
//!
//! Not a second checker: [`verify_published`] feeds the files of `published/` to the same
//! sans-IO engine the client uses, in the same order (root chain, timestamp, snapshot,
//! targets, delegations), then checks every listed artifact's length and hashes; and
//! [`Candidate`] asks that engine the client's own questions about a state that is about to
//! be published — `sealwright publish` before it signs the snapshot, the server before it
//! accepts a push.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;

use sealwright_tuf::engine::{EngineError, FoundTarget, Limits, TrustedMetadataSet};
use sealwright_tuf::metadata::{Metadata, Received, Snapshot, TargetFile, Targets};

use crate::fsutil;

const MAX_FILE: u64 = 1024 * 1024 * 1024;
/// Most root versions walked in one verification.
const MAX_ROOT_ROTATIONS: u64 = 1024;

/// What was verified.
#[derive(Debug, Serialize)]
pub struct VerifyReport {
    /// Newest trusted root version.
    pub root_version: u64,
    /// Every role verified, with its version.
    pub roles: Vec<(String, u64)>,
    /// Number of artifact files checked.
    pub targets_verified: usize,
}

/// Verification failed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// A metadata file or artifact could not be read.
    #[error("{path}: {source}")]
    Io {
        /// Which file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The trust engine refused metadata.
    #[error("{0}")]
    Metadata(String),
    /// An artifact does not match its signed length or hashes.
    #[error("target {path}: {reason}")]
    Target {
        /// Target path.
        path: String,
        /// What differs.
        reason: String,
    },
}

fn read(path: &Path) -> Result<Vec<u8>, VerifyError> {
    fsutil::read_capped(path, MAX_FILE).map_err(|source| VerifyError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Why a [`Candidate`] question could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum CandidateError {
    /// The engine refused a role (signature, version, expiry, delegation).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A published role is delegated but the snapshot lists no version of it.
    #[error("role {0} is delegated but not published")]
    NotPublished(String),
    /// A published file could not be read.
    #[error(transparent)]
    Read(#[from] crate::publish::PublishError),
}

/// Largest snapshot or targets role the candidate check reads (the publisher's own cap on
/// published metadata).
const CANDIDATE_MAX_ROLE: usize = 1024 * 1024 * 1024;

/// A role of a [`Candidate`] that is not published yet.
#[derive(Clone, Debug)]
pub enum Fresh<'a> {
    /// Its signed bytes.
    Bytes(&'a [u8]),
    /// Its bytes, already parsed by the caller (the server reads a pushed role before it
    /// asks where searches land): the engine checks the same bytes without reading them
    /// again.
    Parsed(Received<'a, Targets>),
}

/// A repository state about to be published, as the client's trust engine will see it:
/// the published roles with `fresh` ones (newly signed, not yet written) in their place,
/// under the snapshot about to be signed. Questions are answered by
/// [`TrustedMetadataSet`] (with room for roles larger than clients accept by default:
/// those are published with a warning), so what is accepted here is what a client
/// reaches — a target outside a delegation on the way, shadowed by an earlier or
/// terminating delegation, or under a role with two delegators on the wrong path is not
/// found where it was meant to be.
#[derive(Debug)]
pub struct Candidate<'a> {
    set: TrustedMetadataSet,
    fresh: BTreeMap<String, Fresh<'a>>,
    published: &'a crate::publish::Published,
}

impl<'a> Candidate<'a> {
    /// The state under `snapshot` (trusted: the caller is about to sign it), from root
    /// `root_bytes` (verified and unexpired at `now`).
    pub fn new(
        root_bytes: &[u8],
        snapshot: Snapshot,
        fresh: BTreeMap<String, Fresh<'a>>,
        published: &'a crate::publish::Published,
        now: DateTime<Utc>,
    ) -> Result<Self, EngineError> {
        Ok(Candidate {
            // The question is where a search lands, not whether a client would download
            // this much: a role above the clients' default size is published with a
            // warning (`PublishReport::warnings`), not refused here.
            set: TrustedMetadataSet::for_snapshot_to_sign(
                root_bytes,
                snapshot,
                now,
                Limits {
                    snapshot: CANDIDATE_MAX_ROLE,
                    targets: CANDIDATE_MAX_ROLE,
                    ..Limits::default()
                },
            )?,
            fresh,
            published,
        })
    }

    /// Feeds role `role` (fresh bytes, else published bytes) to the engine as delegated by
    /// `delegator`: signatures against that delegator's keys, version as the snapshot lists
    /// it, expiry.
    fn load(
        set: &mut TrustedMetadataSet,
        fresh: &BTreeMap<String, Fresh<'_>>,
        published: &crate::publish::Published,
        role: &str,
        delegator: &str,
    ) -> Result<(), CandidateError> {
        match fresh.get(role) {
            Some(Fresh::Parsed(received)) => {
                set.update_delegated_targets_received(received, role, delegator)?;
            }
            Some(Fresh::Bytes(bytes)) => {
                set.update_delegated_targets(bytes, role, delegator)?;
            }
            None => {
                let version = set
                    .role_version_in_snapshot(role)
                    .ok_or_else(|| CandidateError::NotPublished(role.to_owned()))?;
                let bytes =
                    published.read_bytes(&sealwright_tuf::layout::metadata_file(role, version))?;
                set.update_delegated_targets(&bytes, role, delegator)?;
            }
        }
        Ok(())
    }

    /// Where a client's delegation search for `path` lands.
    pub fn search(&mut self, path: &str) -> Result<Option<FoundTarget>, CandidateError> {
        let (fresh, published) = (&self.fresh, self.published);
        self.set
            .find_target_role_path(path, |set, role, delegator| {
                Self::load(set, fresh, published, role, delegator)
            })
    }

    /// Verifies role `name` through some chain of delegations (for a role that gains no
    /// path a search would reach it by); `false` when no role delegates it.
    pub fn verify_reachable(
        &mut self,
        name: &str,
        max_roles: usize,
    ) -> Result<bool, CandidateError> {
        if self.set.targets_role(name).is_some() {
            return Ok(true);
        }
        let (fresh, published) = (&self.fresh, self.published);
        Ok(self
            .set
            .find_role_path(name, max_roles, |set, role, delegator| {
                Self::load(set, fresh, published, role, delegator)
            })?
            .is_some())
    }
}

/// What a new version of a targets role changes relative to its published version.
#[derive(Debug)]
pub struct Changes<'a> {
    /// Targets added or whose entry changed.
    pub written: Vec<(&'a String, &'a TargetFile)>,
    /// Targets the published version listed and this one does not.
    pub removed: Vec<String>,
    /// Whether the role's delegations differ.
    pub delegations: bool,
}

/// The changes `new` makes over `old` (none published: everything is written).
pub fn changes<'a>(old: Option<&Metadata<Targets>>, new: &'a Metadata<Targets>) -> Changes<'a> {
    let empty = BTreeMap::new();
    let old_targets = old.map_or(&empty, |o| &o.signed.targets);
    Changes {
        written: new
            .signed
            .targets
            .iter()
            .filter(|(path, file)| old_targets.get(*path) != Some(*file))
            .collect(),
        removed: old_targets
            .keys()
            .filter(|p| !new.signed.targets.contains_key(*p))
            .cloned()
            .collect(),
        delegations: old.and_then(|o| o.signed.delegations.as_ref())
            != new.signed.delegations.as_ref(),
    }
}

/// Verifies the tree at `published` (holding `metadata/` and `targets/`) from `trusted_root`.
pub fn verify_published(
    published: &Path,
    trusted_root: &[u8],
    now: DateTime<Utc>,
) -> Result<VerifyReport, VerifyError> {
    let meta = published.join("metadata");
    let m = |e: sealwright_tuf::engine::EngineError| VerifyError::Metadata(e.to_string());
    let mut trusted = TrustedMetadataSet::new(trusted_root, now).map_err(m)?;
    for _ in 0..MAX_ROOT_ROTATIONS {
        let next = meta.join(sealwright_tuf::layout::metadata_file(
            "root",
            trusted.root().signed.version + 1,
        ));
        if !next.exists() {
            break;
        }
        trusted.update_root(&read(&next)?).map_err(m)?;
    }
    trusted.check_final_root().map_err(m)?;
    let mut roles = vec![("root".to_owned(), trusted.root().signed.version)];
    let ts = trusted
        .update_timestamp(&read(&meta.join("timestamp.json"))?)
        .map_err(m)?;
    roles.push(("timestamp".into(), ts));
    let snap_version = trusted
        .snapshot_version_pinned()
        .ok_or_else(|| VerifyError::Metadata("timestamp names no snapshot".into()))?;
    let snap = trusted
        .update_snapshot(&read(&meta.join(sealwright_tuf::layout::metadata_file(
            "snapshot",
            snap_version,
        )))?)
        .map_err(m)?;
    roles.push(("snapshot".into(), snap));

    let snapshot_roles: Vec<String> = trusted
        .snapshot()
        .map(|s| {
            s.signed
                .meta
                .keys()
                .filter_map(|k| sealwright_tuf::layout::role_of_meta_key(k))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    // Depth-first over every delegation reachable from top-level targets.
    let mut stack: Vec<(String, String)> = vec![("targets".into(), "root".into())];
    let mut seen = BTreeSet::new();
    let mut targets_verified = 0;
    while let Some((role, parent)) = stack.pop() {
        if !seen.insert(role.clone()) {
            continue;
        }
        let version = trusted.role_version_in_snapshot(&role).ok_or_else(|| {
            VerifyError::Metadata(format!(
                "role {role} is delegated but not listed in snapshot"
            ))
        })?;
        let bytes = read(&meta.join(sealwright_tuf::layout::metadata_file(&role, version)))?;
        let targets = if role == "targets" {
            trusted.update_targets(&bytes).map_err(m)?
        } else {
            trusted
                .update_delegated_targets(&bytes, &role, &parent)
                .map_err(m)?
        };
        roles.push((role.clone(), targets.version));
        for (path, file) in &targets.targets {
            check_artifact(published, path, file)?;
            targets_verified += 1;
        }
        let children: Vec<String> = match targets.delegations.as_ref() {
            None => Vec::new(),
            Some(d) => match (&d.roles, &d.succinct_roles) {
                (Some(roles), _) => roles.iter().map(|r| r.name.clone()).collect(),
                // The bins the snapshot lists, never all 2^bit_length names: a bin that
                // holds nothing need not exist, and a bin the snapshot omits cannot be
                // verified anyway.
                (None, Some(bins)) => snapshot_roles
                    .iter()
                    .filter(|name| bins.is_delegated_role(name))
                    .cloned()
                    .collect(),
                (None, None) => Vec::new(),
            },
        };
        for child in children.into_iter().rev() {
            stack.push((child, role.clone()));
        }
    }
    Ok(VerifyReport {
        root_version: trusted.root().signed.version,
        roles,
        targets_verified,
    })
}

/// Checks `targets/<dir>/<sha256>.<name>` against the signed entry.
fn check_artifact(published: &Path, path: &str, file: &TargetFile) -> Result<(), VerifyError> {
    let bad = |reason: String| VerifyError::Target {
        path: path.to_owned(),
        reason,
    };
    // Target paths come from metadata, which may be hostile: never let one name a file
    // outside the tree (`..`, absolute paths, NUL).
    crate::staging::validate_target_path(path).map_err(|e| bad(e.to_string()))?;
    let sha256 = file
        .hashes
        .get("sha256")
        .ok_or_else(|| bad("no sha256 listed".into()))?;
    let on_disk = published
        .join("targets")
        .join(sealwright_tuf::layout::target_file(path, sha256));
    // Streamed and capped at one byte past the signed length (a longer file is refused).
    let digests = std::fs::File::open(&on_disk)
        .and_then(|f| {
            file.hasher()
                .consume(std::io::Read::take(f, file.length.saturating_add(1)))
        })
        .map_err(|e| bad(format!("{}: {e}", on_disk.display())))?;
    file.check_digests(&digests).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn signed_but_hostile_target_paths_never_reach_the_file_system() {
        let dir = tempfile::tempdir().unwrap();
        let file = TargetFile::new(1, BTreeMap::from([("sha256".to_owned(), "00".repeat(32))]));
        for path in ["../escape", "/etc/passwd", "a/../../b", "a\0b"] {
            let err = check_artifact(dir.path(), path, &file).unwrap_err();
            assert!(err.to_string().contains(path), "{err}");
        }
    }
}
