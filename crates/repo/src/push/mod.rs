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
use crate::verify::{Candidate, Fresh};

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
    /// The repository requires attestations (provenance, reproductions) that a release
    /// does not carry, or that do not verify.
    #[error("attestation: {0}")]
    Attestation(String),
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
            PushError::Signature(_)
            | PushError::OutsideDelegation(_)
            | PushError::Artifact(_)
            | PushError::Attestation(_) => 422,
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
            PushError::Attestation(_) => "attestation",
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

/// The server a push goes to (HTTPS in [`https`]).
pub trait Remote {
    /// Uploads the blobs the server lacks and sends the roles; the server's answer.
    fn send(&mut self, out: &Outgoing) -> Result<Accepted, String>;
    /// A published metadata file (`N.ROLE.json`), at most `max` bytes.
    fn metadata(&mut self, file: &str, max: u64) -> Result<Vec<u8>, String>;
}

/// Roles verified while checking what other publishers pushed, before giving up.
const MAX_ROLES_SEARCHED: usize = 10_000;

/// The publisher's side: signs the planned targets roles with this machine's keys, sends
/// them to `remote` (which uploads the blobs and the roles), checks the snapshot and
/// timestamp the server answers with against our root, fetches (and verifies) the roles
/// other publishers pushed since our last push, and writes the new state into our own
/// `published/`. A plan that changes root cannot be pushed.
pub fn push(
    repo_dir: &Path,
    policy: &Policy,
    keyring: &Keyring<'_>,
    mut plan: Plan,
    remote: &mut dyn Remote,
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
    let accepted = remote.send(&outgoing).map_err(PublishError::Pending)?;

    // The server's snapshot and timestamp become our published state: check them as a
    // client would before writing them (signed by root's keys, pinning each other and
    // naming exactly the versions we pushed).
    let published = Published::load(repo_dir)?;
    check_answer(&published, &plan, &accepted, Utc::now())?;
    let mut all = files;
    let others = fetch_others_roles(repo_dir, &published, &plan, &accepted, &all, remote)?;
    all.extend(others);
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

/// The roles the server's snapshot names that we do not hold at that version — pushed by
/// other publishers since our last push — fetched from the server and verified as a client
/// would: each through a chain of delegations from our root, signed by the keys its
/// delegator names, at the version the snapshot pins. Without them our next plan would
/// start from a snapshot whose roles we cannot read; unverified, a server could plant
/// roles we would later re-sign.
fn fetch_others_roles(
    repo_dir: &Path,
    published: &Published,
    plan: &Plan,
    accepted: &Accepted,
    ours: &[(String, Vec<u8>)],
    remote: &mut dyn Remote,
) -> Result<Vec<(String, Vec<u8>)>, PublishError> {
    let bad = untrustworthy;
    let snapshot =
        sealwright_tuf::metadata::Metadata::<sealwright_tuf::metadata::Snapshot>::from_bytes(
            &accepted.snapshot,
            MAX_ROLE_BYTES,
        )
        .map_err(|e| bad(e.to_string()))?;
    let metadata_dir = repo_dir.join(publish::PUBLISHED_DIR).join("metadata");
    let mut missing = Vec::new();
    for (key, meta) in &snapshot.signed.meta {
        let Some(role) = sealwright_tuf::layout::role_of_meta_key(key) else {
            continue;
        };
        let file = sealwright_tuf::layout::metadata_file(role, meta.version);
        if plan.targets.contains_key(role) || metadata_dir.join(&file).is_file() {
            continue;
        }
        missing.push((role.to_owned(), file));
    }
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let mut fetched = Vec::with_capacity(missing.len());
    for (role, file) in &missing {
        let bytes = remote
            .metadata(file, MAX_ROLE_BYTES as u64)
            .map_err(PublishError::Pending)?;
        fetched.push((role.clone(), file.clone(), bytes));
    }
    let root_bytes = published_root_bytes(published)?;
    let mut fresh: BTreeMap<String, Fresh<'_>> = fetched
        .iter()
        .map(|(role, _, bytes)| (role.clone(), Fresh::Bytes(bytes)))
        .collect();
    for (name, md) in &plan.targets {
        let file = sealwright_tuf::layout::metadata_file(name, md.signed.version);
        if let Some((_, bytes)) = ours.iter().find(|(f, _)| *f == file) {
            fresh.insert(name.clone(), Fresh::Bytes(bytes));
        }
    }
    let mut candidate = Candidate::new(
        &root_bytes,
        snapshot.signed.clone(),
        fresh,
        published,
        Utc::now(),
    )
    .map_err(|e| bad(e.to_string()))?;
    for (role, _, _) in &fetched {
        let reached = candidate
            .verify_reachable(role, MAX_ROLES_SEARCHED)
            .map_err(|e| bad(format!("{role}: {e}")))?;
        if !reached {
            return Err(bad(format!("no role delegates {role}")));
        }
    }
    Ok(fetched
        .into_iter()
        .map(|(_, file, bytes)| (file, bytes))
        .collect())
}

/// The bytes of our published root (the trust anchor for checking the server's answer).
fn published_root_bytes(published: &Published) -> Result<Vec<u8>, PublishError> {
    let root = published
        .root
        .as_ref()
        .ok_or_else(|| meta_err("no published root"))?;
    published.read_bytes(&sealwright_tuf::layout::metadata_file(
        "root",
        root.signed.version,
    ))
}

fn untrustworthy(m: String) -> PublishError {
    PublishError::Pending(format!("the server's answer is not trustworthy: {m}"))
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
    let bad = untrustworthy;
    let root_bytes = published_root_bytes(published)?;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;
    use crate::policy::{DelegationPolicy, Period};
    use sealwright_tuf::metadata::{MetaFile, Metadata, Targets};

    /// Serves one metadata file, whatever is asked.
    struct Serving(Vec<u8>);

    impl Remote for Serving {
        fn send(&mut self, _: &Outgoing) -> Result<Accepted, String> {
            Err("not used".into())
        }
        fn metadata(&mut self, _: &str, _: u64) -> Result<Vec<u8>, String> {
            Ok(self.0.clone())
        }
    }

    /// A repository delegating `team-0`, published; and what a server answers after another
    /// publisher pushed `team-0` version 2: a snapshot (signed by the snapshot key) listing
    /// it, with the genuine role bytes. (The snapshot's own signature is `check_answer`'s
    /// business, done before any role is fetched.)
    fn another_publisher_pushed() -> (tempfile::TempDir, std::path::PathBuf, Accepted, Vec<u8>) {
        let tmp = tempfile::tempdir().unwrap();
        let (repo, source, _) = crate::init::test_repository(tmp.path());
        let keyring = Keyring::new(&repo, &source);
        crate::policy_change::delegate(
            &repo,
            &keyring,
            DelegationPolicy {
                name: "team-0".into(),
                parent: "targets".into(),
                threshold: 1,
                expires: Period::days(30),
                keys: vec![],
                terminating: false,
                paths: Some(vec!["team-0/*/*".into()]),
                path_hash_prefixes: None,
                succinct_bits: None,
            },
            sealwright_crypto::Algorithm::Ed25519,
        )
        .unwrap();
        let policy = Policy::load(&repo).unwrap();
        let plan = publish::plan(&repo, &policy, Utc::now()).unwrap();
        publish::execute(&repo, &policy, &keyring, plan).unwrap();

        let published = Published::load(&repo).unwrap();
        let mut team: Metadata<Targets> = published.targets_role("team-0").unwrap().unwrap();
        team.signed.version = 2;
        team.signatures.clear();
        team.sign(&keyring.open(&policy, "team-0-key").unwrap().unwrap())
            .unwrap();
        let team_bytes = team.to_bytes().unwrap();
        let mut snapshot = published.snapshot.clone().unwrap();
        snapshot.signed.version += 1;
        snapshot
            .signed
            .meta
            .insert("team-0.json".into(), MetaFile::new(2));
        snapshot.signatures.clear();
        snapshot
            .sign(&keyring.open(&policy, "snapshot-key").unwrap().unwrap())
            .unwrap();
        let accepted = Accepted {
            roles: BTreeMap::new(),
            artifacts: 0,
            snapshot_version: snapshot.signed.version,
            timestamp_version: 0,
            snapshot: snapshot.to_bytes().unwrap(),
            timestamp: Vec::new(),
        };
        (tmp, repo, accepted, team_bytes)
    }

    fn fetch(
        repo: &Path,
        accepted: &Accepted,
        served: Vec<u8>,
    ) -> Result<Vec<(String, Vec<u8>)>, PublishError> {
        let policy = Policy::load(repo).unwrap();
        let plan = publish::plan(repo, &policy, Utc::now()).unwrap();
        let published = Published::load(repo).unwrap();
        fetch_others_roles(repo, &published, &plan, accepted, &[], &mut Serving(served))
    }

    #[test]
    fn roles_other_publishers_pushed_are_fetched_and_verified() {
        let (_tmp, repo, accepted, genuine) = another_publisher_pushed();
        let fetched = fetch(&repo, &accepted, genuine.clone()).unwrap();
        assert_eq!(fetched, vec![("2.team-0.json".to_owned(), genuine.clone())]);

        // A server planting a role signed by a key the delegation does not name (here the
        // top-level targets key, which the publisher would trust for other paths).
        let policy = Policy::load(&repo).unwrap();
        let source = crate::FixedPassphrase(sealwright_crypto::Passphrase::new("pw".into()));
        let keyring = Keyring::new(&repo, &source);
        let mut forged: Metadata<Targets> = Metadata::from_bytes(&genuine, 1 << 20).unwrap();
        forged.signatures.clear();
        forged
            .sign(&keyring.open(&policy, "targets-key").unwrap().unwrap())
            .unwrap();
        let err = fetch(&repo, &accepted, forged.to_bytes().unwrap()).unwrap_err();
        assert!(err.to_string().contains("not trustworthy"), "{err}");

        // The right key, at a version other than the snapshot's.
        let mut other: Metadata<Targets> = Metadata::from_bytes(&genuine, 1 << 20).unwrap();
        other.signed.version = 3;
        other.signatures.clear();
        other
            .sign(&keyring.open(&policy, "team-0-key").unwrap().unwrap())
            .unwrap();
        assert!(fetch(&repo, &accepted, other.to_bytes().unwrap()).is_err());
    }
}
