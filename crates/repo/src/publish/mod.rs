//! `publish`: turn the policy and the staged changes into signed metadata, atomically.
//!
//! The order of work is what makes a crash harmless:
//! 1. plan every new role version in memory (nothing is written);
//! 2. sign, then check each role against its threshold with the same verification code the
//!    client uses (a role below threshold stops everything here, before any write);
//! 3. write targets and versioned metadata under names no client has seen yet;
//! 4. `syncfs`, then replace `timestamp.json` atomically — the single switch that makes the
//!    new state live. Until that rename, clients see the previous state, complete.
//!
//! Root rotation follows TUF: a new root version is signed by a threshold of the keys of both
//! the previous and the new root.

mod offline;
mod online_floor;
mod plan;
mod published;
mod sign;
mod summaries;
mod write;

pub use offline::*;
pub use online_floor::*;
pub use plan::*;
pub use published::*;
pub use sign::*;
pub use summaries::{RoleSummaries, RoleSummary, ROLE_SUMMARIES_FILE};
pub use write::*;

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use serde::Serialize;

use crate::keyring::KeyringError;
use crate::policy::PolicyError;
use crate::staging::StagingError;

/// Directory of the servable tree, relative to the repository.
pub const PUBLISHED_DIR: &str = "published";

/// Directory of offline signing state, relative to the repository.
pub const PENDING_DIR: &str = "staged/pending";
/// Where `status` puts the signing requests it prepares for offline roles nearing expiry.
pub const SIGNING_REQUESTS_DIR: &str = "signing-requests";

/// Largest metadata file we read back from our own published tree.
const MAX_METADATA_BYTES: u64 = 1024 * 1024 * 1024;

/// The `spec_version` we write.
pub use sealwright_tuf::metadata::SPEC_VERSION;

/// Publishing failed; the published tree is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// I/O, with the path.
    #[error("{path}: {source}")]
    Io {
        /// Which path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Existing published metadata does not parse.
    #[error("published metadata {file} is unreadable: {reason}")]
    Corrupt {
        /// Which file.
        file: String,
        /// Why.
        reason: String,
    },
    /// A role does not reach its threshold.
    #[error("{0}")]
    Threshold(String),
    /// A staged target conflicts with published state or its delegation.
    #[error("{0}")]
    Target(String),
    /// An offline signing request is stale.
    #[error("{0}")]
    Pending(String),
    /// An offline signing request or signature is refused (altered, for another version, by
    /// a key not authorised, not verifying).
    #[error("{0}")]
    Offline(String),
    /// Policy problem.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// Key problem.
    #[error(transparent)]
    Keys(#[from] KeyringError),
    /// Staging problem.
    #[error(transparent)]
    Staging(#[from] StagingError),
    /// Metadata construction problem.
    #[error("{0}")]
    Metadata(String),
    /// The action was done but its audit record could not be written.
    #[error("writing the audit record (the action itself was done): {0}")]
    Audit(#[from] sealwright_store::AuditError),
    /// The action failed, and recording the failure failed too (a full disk does both):
    /// the failure is the news, so it comes first.
    #[error("{error} (recording this failure in the audit log failed too: {audit})")]
    FailedUnrecorded {
        /// Why the action failed.
        error: Box<PublishError>,
        /// Why it could not be recorded.
        audit: sealwright_store::AuditError,
    },
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PublishError + '_ {
    move |source| PublishError::Io {
        path: path.display().to_string(),
        source,
    }
}

pub(crate) fn meta_err(e: impl std::fmt::Display) -> PublishError {
    PublishError::Metadata(e.to_string())
}

/// What a publish did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PublishReport {
    /// Every role that got a new version, with that version.
    pub roles: BTreeMap<String, u64>,
    /// Number of targets added.
    pub targets_added: usize,
    /// Expiry of each new role version (RFC 3339).
    pub expires: BTreeMap<String, String>,
    /// What was published but deserves attention (a role larger than clients accept by
    /// default).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Expiry of a new version: now + period, whole seconds (TUF's format has no fractions).
pub fn expiry(now: DateTime<Utc>, period: Duration) -> DateTime<Utc> {
    (now + period).trunc_subsecs(0)
}

/// A role is re-signed when less than a quarter of its validity period remains.
pub fn expiring(expires: DateTime<Utc>, period: Duration, now: DateTime<Utc>) -> bool {
    expires - now < period / 4
}

/// A whole publish of `repo_dir`, recorded in its audit log (`publish`, or `publish-refused`
/// with the reason): plan, then — unless there is nothing to do (nothing staged, root
/// unchanged, snapshot and timestamp far from expiry: no key opened, nothing signed,
/// nothing recorded) — sign and switch. `progress` hears what is being done.
pub fn publish(
    repo_dir: &Path,
    policy: &crate::policy::Policy,
    keyring: &crate::keyring::Keyring<'_>,
    now: DateTime<Utc>,
    progress: &dyn Fn(&str),
) -> Result<Option<PublishReport>, PublishError> {
    let result = (|| {
        progress("planning: comparing policy, staged files and published metadata");
        let plan = plan(repo_dir, policy, now)?;
        if plan.nothing_to_do {
            return Ok(None);
        }
        progress(&format!(
            "signing {} role(s) and writing the new tree",
            plan.targets.len() + 2
        ));
        execute(repo_dir, policy, keyring, plan).map(Some)
    })();
    record_outcome(repo_dir, "publish", "repository", result, |report| {
        report
            .as_ref()
            .map(|r| serde_json::json!({"roles": r.roles, "targets_added": r.targets_added}))
    })
}

/// Records the outcome of `action` on `subject` in the audit log of `dir` — `ACTION` with
/// `details` (nothing when they are `None`), or `ACTION-refused` with the reason — and
/// returns `result`. A failure to record never hides the action's own failure.
pub(crate) fn record_outcome<T>(
    dir: &Path,
    action: &str,
    subject: &str,
    result: Result<T, PublishError>,
    details: impl FnOnce(&T) -> Option<serde_json::Value>,
) -> Result<T, PublishError> {
    match result {
        Ok(done) => {
            if let Some(details) = details(&done) {
                sealwright_store::audit::record_local(dir, action, subject, details)?;
            }
            Ok(done)
        }
        Err(error) => {
            let refused = format!("{action}-refused");
            let reason = serde_json::json!({"error": error.to_string()});
            match sealwright_store::audit::record_local(dir, &refused, subject, reason) {
                Ok(_) => Err(error),
                Err(audit) => Err(PublishError::FailedUnrecorded {
                    error: Box::new(error),
                    audit,
                }),
            }
        }
    }
}
