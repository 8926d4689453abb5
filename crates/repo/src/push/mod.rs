//! The publish API's wire types, and the publisher's end of `sealwright push`.
//!
//! A push carries new versions of targets roles (top-level or delegated), signed where the
//! offline keys live, and names artifacts already uploaded into the blob keyring by content
//! hash. The server's end — tokens, the check of a push through the client's trust engine,
//! the renewal of the online roles — is `sealwright_server::accept`.
//!
//! The publisher's side ([`push`]) signs the planned targets roles, hands them to a transport
//! and writes the server's answer (the new snapshot and timestamp, checked with the client's
//! own timestamp and snapshot steps) into its own `published/`, so the next plan starts from
//! what the server serves.

pub mod https;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use sealwright_tuf::engine::{EngineError, TrustedMetadataSet};

use crate::keyring::Keyring;
use crate::policy::Policy;
use crate::publish::{
    self, meta_err, open_signers, write_tree, Pending, Plan, PublishError, PublishReport, Published,
};
use crate::staging::Staging;

/// Largest metadata file a push may carry.
pub const MAX_ROLE_BYTES: usize = 64 * 1024 * 1024;
/// Why a push was refused. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// No token, or not one the server knows.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The token does not cover this role or path.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Malformed request: bad names, unparsable metadata, unsafe paths.
    #[error("invalid: {0}")]
    Invalid(String),
    /// Signatures do not meet the threshold of the keys the delegator names.
    #[error("signature: {0}")]
    Signature(String),
    /// A version not above the published one: a replayed or stale file.
    #[error("replayed or stale: {0}")]
    Replay(String),
    /// A target path outside what the role was delegated.
    #[error("outside delegation: {0}")]
    OutsideDelegation(String),
    /// An artifact missing from the blob keyring or not matching its signed entry.
    #[error("artifact: {0}")]
    Artifact(String),
    /// A body over the size limit.
    #[error("too large: {0}")]
    TooLarge(String),
    /// The server's repository is not in a state to accept pushes.
    #[error("not ready: {0}")]
    NotReady(String),
    /// The server failed (I/O, signer agent).
    #[error("server error: {0}")]
    Internal(String),
}

impl PushError {
    /// HTTP status for this refusal.
    pub fn status(&self) -> u16 {
        match self {
            PushError::Unauthorized(_) => 401,
            PushError::Forbidden(_) => 403,
            PushError::Invalid(_) => 400,
            PushError::Replay(_) => 409,
            PushError::Signature(_) | PushError::OutsideDelegation(_) | PushError::Artifact(_) => {
                422
            }
            PushError::TooLarge(_) => 413,
            PushError::NotReady(_) => 503,
            PushError::Internal(_) => 500,
        }
    }

    /// Short machine-readable kind (the JSON `error` field).
    pub fn kind(&self) -> &'static str {
        match self {
            PushError::Unauthorized(_) => "unauthorized",
            PushError::Forbidden(_) => "forbidden",
            PushError::Invalid(_) => "invalid",
            PushError::Signature(_) => "signature",
            PushError::Replay(_) => "replay",
            PushError::OutsideDelegation(_) => "outside-delegation",
            PushError::Artifact(_) => "artifact",
            PushError::TooLarge(_) => "too-large",
            PushError::NotReady(_) => "not-ready",
            PushError::Internal(_) => "internal",
        }
    }
}

/// What the trust engine's refusals mean for a push (the server asks the client's engine).
impl From<EngineError> for PushError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Threshold(t) => PushError::Signature(format!(
                "{t}: sign it with the keys its delegator names (`sealwright status` lists them)"
            )),
            EngineError::Expired { role, expires } => {
                PushError::Invalid(format!("{role} expired at {expires}"))
            }
            EngineError::Metadata { role, source } => {
                PushError::Invalid(format!("{role}: {source}"))
            }
            EngineError::NotDelegated(m) => PushError::Forbidden(format!(
                "{m}: delegate it first (`sealwright delegate`) and push the delegating role"
            )),
            other => PushError::Invalid(other.to_string()),
        }
    }
}

/// What an accepted push produced.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Accepted {
    /// Each pushed role with its new version.
    pub roles: BTreeMap<String, u64>,
    /// Artifacts that became servable.
    pub artifacts: usize,
    /// New snapshot version.
    pub snapshot_version: u64,
    /// New timestamp version.
    pub timestamp_version: u64,
    /// The new snapshot, as written (`N.snapshot.json`).
    #[serde(with = "as_text")]
    pub snapshot: Vec<u8>,
    /// The new `timestamp.json`, as written.
    #[serde(with = "as_text")]
    pub timestamp: Vec<u8>,
}

/// Metadata bytes travel as JSON strings (they are UTF-8 JSON themselves).
mod as_text {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(std::str::from_utf8(b).map_err(serde::ser::Error::custom)?)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        Ok(String::deserialize(d)?.into_bytes())
    }
}

/// The body of `POST /api/v1/push`: role name → signed metadata (the file's exact text).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PushRequest {
    /// Signed metadata of each pushed targets role.
    pub roles: BTreeMap<String, String>,
}

/// What the publisher sends: the signed roles, and the blobs (SHA-256, target path) the
/// server must have before it accepts them.
#[derive(Debug)]
pub struct Outgoing {
    /// The request body.
    pub request: PushRequest,
    /// Artifacts the new roles list, as blob SHA-256 and target path.
    pub blobs: Vec<(String, String)>,
}

/// The publisher's side: signs the planned targets roles with this machine's keys, hands
/// them to `send` (which uploads the blobs and the roles), checks the snapshot and timestamp
/// the server answers with against our root, and writes the new state into our own
/// `published/`. A plan that changes root cannot be pushed.
pub fn push(
    repo_dir: &Path,
    policy: &Policy,
    keyring: &Keyring<'_>,
    mut plan: Plan,
    send: &mut dyn FnMut(&Outgoing) -> Result<Accepted, String>,
) -> Result<(PublishReport, Accepted), PublishError> {
    if plan.root.is_some() {
        return Err(PublishError::Pending(
            "this publish changes root; root is never pushed: publish it with `sealwright publish` and copy published/metadata/N.root.json and root.json to the server".into(),
        ));
    }
    if plan.targets.is_empty() {
        return Err(PublishError::Pending(
            "nothing to push: stage artifacts with `sealwright add` first".into(),
        ));
    }
    let pending = Pending::new(repo_dir);
    let needed: BTreeSet<String> = plan
        .authority
        .values()
        .flat_map(|a| a.keyids.iter().cloned())
        .collect();
    let signers = open_signers(policy, keyring, &needed)?;
    let mut report = PublishReport {
        targets_added: plan.targets_added,
        ..Default::default()
    };
    let files = publish::sign_targets_roles(&mut plan, &pending, &signers, policy, &mut report)?;
    let mut request = PushRequest::default();
    for (name, md) in &plan.targets {
        let file = sealwright_tuf::layout::metadata_file(name, md.signed.version);
        let bytes = files
            .iter()
            .find(|(f, _)| *f == file)
            .map(|(_, b)| b.clone())
            .ok_or_else(|| meta_err(format!("{file} was not signed")))?;
        request
            .roles
            .insert(name.clone(), String::from_utf8(bytes).map_err(meta_err)?);
    }
    let outgoing = Outgoing {
        request,
        blobs: plan.blobs.clone(),
    };
    let accepted = send(&outgoing).map_err(PublishError::Pending)?;

    // The server's snapshot and timestamp become our published state: check them as a
    // client would before writing them (signed by root's keys, pinning each other and
    // naming exactly the versions we pushed).
    let published = Published::load(repo_dir)?;
    check_answer(&published, &plan, &accepted, Utc::now())?;
    let mut all = files;
    all.push((
        sealwright_tuf::layout::metadata_file("snapshot", accepted.snapshot_version),
        accepted.snapshot.clone(),
    ));
    write_tree(repo_dir, &plan.blobs, &all, None, &accepted.timestamp)?;
    Staging::clear(repo_dir)?;
    pending.clear()?;
    report
        .roles
        .insert("snapshot".into(), accepted.snapshot_version);
    report
        .roles
        .insert("timestamp".into(), accepted.timestamp_version);
    Ok((report, accepted))
}

/// The server's answer is checked by the client's own timestamp and snapshot steps, from
/// our published root, with our published timestamp and snapshot as the rollback floors:
/// signatures, versions that never go back, the timestamp pinning these snapshot bytes, no
/// role removed or rolled back, nothing expired — then the snapshot must list exactly the
/// versions we pushed.
fn check_answer(
    published: &Published,
    plan: &Plan,
    accepted: &Accepted,
    now: DateTime<Utc>,
) -> Result<(), PublishError> {
    let bad =
        |m: String| PublishError::Pending(format!("the server's answer is not trustworthy: {m}"));
    let root = published
        .root
        .as_ref()
        .ok_or_else(|| meta_err("no published root"))?;
    let root_bytes = published.read_bytes(&sealwright_tuf::layout::metadata_file(
        "root",
        root.signed.version,
    ))?;
    let mut set = TrustedMetadataSet::new(&root_bytes, now).map_err(|e| bad(e.to_string()))?;
    set.check_final_root().map_err(|e| bad(e.to_string()))?;
    if published.timestamp.is_some() {
        let ours = published.read_bytes("timestamp.json")?;
        set.load_local_timestamp(&ours)
            .map_err(|e| bad(format!("our own timestamp.json: {e}")))?;
    }
    set.update_timestamp(&accepted.timestamp)
        .map_err(|e| bad(e.to_string()))?;
    if let Some(snapshot) = &published.snapshot {
        let ours = published.read_bytes(&sealwright_tuf::layout::metadata_file(
            "snapshot",
            snapshot.signed.version,
        ))?;
        // Ours is not the final snapshot (the server's is): only the floor is wanted here.
        let _ = set.load_local_snapshot(&ours);
    }
    set.update_snapshot(&accepted.snapshot)
        .map_err(|e| bad(e.to_string()))?;
    let snapshot = set
        .snapshot()
        .ok_or_else(|| bad("no snapshot was trusted".into()))?;
    if snapshot.signed.version != accepted.snapshot_version
        || set.timestamp().map(|t| t.signed.version) != Some(accepted.timestamp_version)
    {
        return Err(bad(
            "the versions it reports are not the ones it signed".into()
        ));
    }
    for (name, md) in &plan.targets {
        if snapshot.signed.role_version(name) != Some(md.signed.version) {
            return Err(bad(format!(
                "snapshot does not list {name} version {}",
                md.signed.version
            )));
        }
    }
    Ok(())
}

/// The server signs only through the signer agent: every key of the snapshot and timestamp
/// roles must have an `agent:SOCKET` location.
pub fn check_online_keys_in_agent(policy: &Policy) -> Result<(), PushError> {
    for role in crate::agent::ONLINE_ROLES {
        let (keys, _, _) = policy
            .role(role)
            .ok_or_else(|| PushError::NotReady(format!("the policy has no {role} role")))?;
        for name in keys {
            let located = policy
                .keys
                .get(name)
                .and_then(|k| k.private.as_deref())
                .is_some_and(|l| l.starts_with("agent:"));
            if !located {
                return Err(PushError::NotReady(format!(
                    "{role} key {name} is not at an agent:SOCKET location; the push API signs {role} only through `sealwright signer serve` (see docs/signer.md)"
                )));
            }
        }
    }
    Ok(())
}
