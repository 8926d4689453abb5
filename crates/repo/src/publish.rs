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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, SubsecRound, Utc};
use rayon::prelude::*;
use serde::Serialize;

use sealwright_crypto::{PublicKey, Signer};
use sealwright_tuf::delegation;
use sealwright_tuf::metadata::{
    DelegatedRole, Delegations, MetaFile, Metadata, Role, Root, Signature, Snapshot, SuccinctRoles,
    TargetFile, Targets, Timestamp,
};

use crate::fsutil;
use crate::keystore::{KeyStore, KeyStoreError};
use crate::policy::{DelegationPolicy, Policy, PolicyError};
use crate::staging::{self, StagedTarget, Staging, StagingError};

/// Directory of the servable tree, relative to the repository.
pub const PUBLISHED_DIR: &str = "published";
/// Directory of offline signing state, relative to the repository.
pub const PENDING_DIR: &str = "staged/pending";
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
    /// Policy problem.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// Key problem.
    #[error(transparent)]
    Keys(#[from] KeyStoreError),
    /// Staging problem.
    #[error(transparent)]
    Staging(#[from] StagingError),
    /// Metadata construction problem.
    #[error("{0}")]
    Metadata(String),
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
}

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
}

impl Published {
    /// Reads the current state of `DIR/published/metadata`.
    pub fn load(repo_dir: &Path) -> Result<Self, PublishError> {
        let dir = repo_dir.join(PUBLISHED_DIR).join("metadata");
        let mut newest_root: Option<u64> = None;
        match fs::read_dir(&dir) {
            Ok(entries) => {
                for e in entries {
                    let e = e.map_err(io_err(&dir))?;
                    let name = e.file_name();
                    let name = name.to_string_lossy();
                    if let Some(v) = name
                        .strip_suffix(".root.json")
                        .and_then(|v| v.parse::<u64>().ok())
                    {
                        newest_root = newest_root.max(Some(v));
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&dir)(e)),
        }
        let mut published = Published {
            dir,
            root: None,
            timestamp: None,
            snapshot: None,
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

    /// Current metadata of targets role `name`, if published.
    pub fn targets_role(&self, name: &str) -> Result<Option<Metadata<Targets>>, PublishError> {
        match self.role_version(name) {
            Some(v) => Ok(Some(
                self.read(&sealwright_tuf::layout::metadata_file(name, v))?,
            )),
            None => Ok(None),
        }
    }
}

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

/// Expiry of a new version: now + period, whole seconds (TUF's format has no fractions).
pub fn expiry(now: DateTime<Utc>, period: Duration) -> DateTime<Utc> {
    (now + period).trunc_subsecs(0)
}

/// A role is re-signed when less than a quarter of its validity period remains.
pub fn expiring(expires: DateTime<Utc>, period: Duration, now: DateTime<Utc>) -> bool {
    expires - now < period / 4
}

/// Which role a staged target of policy role `role` lands in: itself, or (for succinct
/// delegations) the hash bin the path falls in.
fn landing_role(policy: &Policy, role: &str, path: &str) -> Result<String, PublishError> {
    match policy.delegation(role) {
        Some(DelegationPolicy {
            succinct_bits: Some(bits),
            name,
            ..
        }) => {
            let succinct =
                SuccinctRoles::new(Vec::new(), 1, *bits, name.clone()).map_err(meta_err)?;
            Ok(succinct.role_for_target(path))
        }
        _ => Ok(role.to_owned()),
    }
}

/// Whether `path` lies in the space delegated to `role`, checking every delegation on the
/// chain from top-level targets down (TUF requires a match at each step).
pub fn path_allowed(policy: &Policy, role: &str, path: &str) -> bool {
    let mut current = role;
    let mut depth = 0;
    while current != "targets" {
        let Some(d) = policy.delegation(current) else {
            return false;
        };
        let ok = if let Some(patterns) = &d.paths {
            patterns.iter().any(|p| delegation::glob_match(p, path))
        } else if let Some(prefixes) = &d.path_hash_prefixes {
            delegation::hash_prefix_match(prefixes, path)
        } else {
            true // succinct bins cover every path of their parent
        };
        if !ok {
            return false;
        }
        current = &d.parent;
        depth += 1;
        if depth > 64 {
            return false;
        }
    }
    true
}

/// Checks, before anything is copied, that `paths` may be added to policy role `role`:
/// inside its delegated space and not already published.
pub fn check_addable<'p>(
    repo_dir: &Path,
    policy: &Policy,
    role: &str,
    paths: impl Iterator<Item = &'p str>,
) -> Result<(), PublishError> {
    let published = Published::load(repo_dir)?;
    let mut cache: HashMap<String, Option<Metadata<Targets>>> = HashMap::new();
    for path in paths {
        staging::validate_target_path(path)?;
        if !path_allowed(policy, role, path) {
            return Err(PublishError::Target(format!(
                "target {path:?} is outside the paths delegated to role {role}"
            )));
        }
        let landing = landing_role(policy, role, path)?;
        if !cache.contains_key(&landing) {
            let md = published.targets_role(&landing)?;
            cache.insert(landing.clone(), md);
        }
        if let Some(Some(md)) = cache.get(&landing) {
            if md.signed.targets.contains_key(path) {
                return Err(PublishError::Target(format!(
                    "duplicate target {path:?}: already published in role {landing} (publish a new version instead)"
                )));
            }
        }
    }
    Ok(())
}

/// The keys and threshold a delegator grants a role.
#[derive(Clone, Debug)]
pub(crate) struct Authority {
    pub(crate) keys: BTreeMap<String, PublicKey>,
    pub(crate) keyids: Vec<String>,
    pub(crate) threshold: u32,
}

/// A targets role the policy defines: who may sign it and how long versions last.
struct PolicyRole {
    name: String,
    authority: Authority,
    period: Duration,
}

/// A new version of a targets role and how many targets it gained.
type PlannedRole = Option<(String, Metadata<Targets>, usize)>;

/// A signed role file: name, version, expiry, bytes.
type SignedRole = (String, u64, String, Vec<u8>);

/// Everything a publish will write, before signing.
#[derive(Debug)]
pub struct Plan {
    /// New root version, if root changes.
    pub root: Option<Metadata<Root>>,
    /// Root whose keys must also sign a new root (the current one).
    pub(crate) previous_root: Option<Root>,
    /// New versions of targets roles (top-level, delegated, bins).
    pub targets: BTreeMap<String, Metadata<Targets>>,
    /// Keys and threshold each targets role is verified against (from its delegator).
    pub(crate) authority: BTreeMap<String, Authority>,
    /// The snapshot's `meta` after this publish.
    snapshot_meta: BTreeMap<String, MetaFile>,
    snapshot_version: u64,
    timestamp_version: u64,
    snapshot_expires: DateTime<Utc>,
    timestamp_expires: DateTime<Utc>,
    /// Blobs to link into `published/targets`: (sha256, target path).
    pub(crate) blobs: Vec<(String, String)>,
    pub(crate) targets_added: usize,
    /// Nothing staged, root unchanged, and the published snapshot and timestamp far from
    /// expiry: executing would only re-sign what is already current.
    pub nothing_to_do: bool,
}

impl Plan {
    /// The planned new version of `role` as a metadata document (`signed` + `signatures`),
    /// carrying over offline signatures already imported for that same version. A stale
    /// pending version is replaced. `None` when the role does not change.
    pub fn role_document(
        &mut self,
        repo_dir: &Path,
        role: &str,
    ) -> Result<Option<serde_json::Value>, PublishError> {
        let pending = Pending::new(repo_dir);
        if role == "root" {
            let Some(md) = self.root.as_mut() else {
                return Ok(None);
            };
            if adopt_pending(&pending, "root", md).is_err() {
                md.signatures.clear();
            }
            return md.to_value().map(Some).map_err(meta_err);
        }
        let Some(md) = self.targets.get_mut(role) else {
            return Ok(None);
        };
        if adopt_pending(&pending, role, md).is_err() {
            md.signatures.clear();
        }
        md.to_value().map(Some).map_err(meta_err)
    }

    /// Keys that may sign the pending version of `role`: for root, those of the new and the
    /// previous root; for targets roles, those its delegator names.
    pub fn signing_authority(
        &self,
        role: &str,
    ) -> Option<(BTreeMap<String, PublicKey>, BTreeSet<String>)> {
        if role == "root" {
            let root = self.root.as_ref()?;
            let mut keys = root.signed.keys.clone();
            let mut ids: BTreeSet<String> = root
                .signed
                .roles
                .get("root")?
                .keyids
                .iter()
                .cloned()
                .collect();
            if let Some(prev) = &self.previous_root {
                keys.extend(prev.keys.clone());
                ids.extend(prev.roles.get("root")?.keyids.iter().cloned());
            }
            return Some((keys, ids));
        }
        self.targets.get(role)?;
        let a = self.authority.get(role)?;
        Some((a.keys.clone(), a.keyids.iter().cloned().collect()))
    }
}

/// Plans the next publish from `policy`, the staged changes and the published state.
pub fn plan(repo_dir: &Path, policy: &Policy, now: DateTime<Utc>) -> Result<Plan, PublishError> {
    policy.validate()?;
    let published = Published::load(repo_dir)?;
    let staged = Staging::load(repo_dir)?;
    let floor = OnlineFloor::load(repo_dir).map_err(io_err(&repo_dir.join(ONLINE_FLOOR_FILE)))?;

    // Root: derived from the policy; new version when it differs or is expiring.
    let root_policy = policy
        .roles
        .get("root")
        .ok_or_else(|| PolicyError::Invalid("no root role".into()))?;
    let mut root_keys = BTreeMap::new();
    let mut root_roles = BTreeMap::new();
    for name in crate::policy::TOP_LEVEL_ROLES {
        let (keys, threshold, _) = policy
            .role(name)
            .ok_or_else(|| PolicyError::Invalid(format!("no {name} role")))?;
        if keys.is_empty() {
            return Err(PolicyError::Invalid(format!(
                "role {name} has no keys: add one with `sealwright key generate --role {name}`"
            ))
            .into());
        }
        root_keys.extend(policy.public_keys(keys)?);
        root_roles.insert(
            name.to_owned(),
            Role::new(policy.keyids(keys), threshold).map_err(meta_err)?,
        );
    }
    let root_period = root_policy.expires.duration();
    let (root, previous_root) = match &published.root {
        Some(current) => {
            let same = current.signed.keys == root_keys
                && current.signed.roles == root_roles
                && current.signed.consistent_snapshot;
            if same && !expiring(current.signed.expires, root_period, now) {
                (None, None)
            } else {
                let mut r = Root::new(
                    root_keys,
                    root_roles,
                    current.signed.version + 1,
                    expiry(now, root_period),
                );
                r.spec_version = SPEC_VERSION.to_owned();
                (Some(Metadata::new(r)), Some(current.signed.clone()))
            }
        }
        None => {
            let mut r = Root::new(root_keys, root_roles, 1, expiry(now, root_period));
            r.spec_version = SPEC_VERSION.to_owned();
            (Some(Metadata::new(r)), None)
        }
    };

    // Group staged targets by the role they land in (bins resolved by path hash).
    let mut incoming: BTreeMap<String, Vec<(&String, &StagedTarget)>> = BTreeMap::new();
    for (role, entries) in &staged.targets {
        if role != "targets" && policy.delegation(role).is_none() {
            return Err(PublishError::Target(format!(
                "staged targets name unknown role {role}"
            )));
        }
        for (path, entry) in entries {
            // The index is a local file anyone with write access could edit: re-check every
            // path before it becomes a file name under published/.
            staging::validate_target_path(path)?;
            if !path_allowed(policy, role, path) {
                return Err(PublishError::Target(format!(
                    "target {path:?} is outside the paths delegated to role {role}"
                )));
            }
            incoming
                .entry(landing_role(policy, role, path)?)
                .or_default()
                .push((path, entry));
        }
    }

    // Every targets role the policy defines, with its delegator's view of it.
    let mut roles: Vec<PolicyRole> = Vec::new();
    {
        let t = policy
            .roles
            .get("targets")
            .ok_or_else(|| PolicyError::Invalid("no targets role".into()))?;
        let authority = Authority {
            keys: policy.public_keys(&t.keys)?,
            keyids: policy.keyids(&t.keys),
            threshold: t.threshold,
        };
        roles.push(PolicyRole {
            name: "targets".into(),
            authority,
            period: t.expires.duration(),
        });
    }
    for d in &policy.delegations {
        let authority = Authority {
            keys: policy.public_keys(&d.keys)?,
            keyids: policy.keyids(&d.keys),
            threshold: d.threshold,
        };
        let period = d.expires.duration();
        match d.succinct_bits {
            Some(bits) => {
                let succinct =
                    SuccinctRoles::new(authority.keyids.clone(), d.threshold, bits, d.name.clone())
                        .map_err(meta_err)?;
                for bin in succinct.role_names() {
                    roles.push(PolicyRole {
                        name: bin,
                        authority: authority.clone(),
                        period,
                    });
                }
            }
            None => roles.push(PolicyRole {
                name: d.name.clone(),
                authority,
                period,
            }),
        }
    }

    // One shared `custom` object per release.
    let customs: Vec<std::sync::Arc<serde_json::Value>> = staged
        .releases
        .iter()
        .cloned()
        .map(std::sync::Arc::new)
        .collect();
    for entries in staged.targets.values() {
        if let Some(bad) = entries.values().find(|e| e.release >= customs.len()) {
            return Err(StagingError::Corrupt(format!(
                "release {} is not in the index",
                bad.release
            ))
            .into());
        }
    }
    let work: Vec<Result<PlannedRole, PublishError>> = roles
        .par_iter()
        .map(
            |PolicyRole {
                 name,
                 period,
                 authority,
             }| {
                let delegations = delegations_of(policy, name)?;
                let current = published.targets_role(name)?;
                let adds = incoming.get(name).map(Vec::as_slice).unwrap_or(&[]);
                // Reasons to sign a new version other than new targets.
                let (mut targets, must_resign) = match &current {
                    Some(md) => {
                        let stale = md.signed.delegations != delegations
                            || expiring(md.signed.expires, *period, now)
                            || !signatures_still_valid(name, md, authority);
                        (md.signed.clone(), stale)
                    }
                    None => (Targets::new(1, expiry(now, *period)), true),
                };
                if adds.is_empty() && !must_resign {
                    return Ok(None);
                }
                let mut added = 0;
                for (path, entry) in adds {
                    let mut tf = TargetFile::new(entry.length, entry.hashes());
                    tf.custom = customs.get(entry.release).cloned();
                    match targets.targets.get(*path) {
                        // Published by a run that was interrupted after its switch but
                        // before it cleared staged/: the same content, nothing to do.
                        Some(existing) if *existing == tf => continue,
                        // A channel pointer is the one target that moves: each release
                        // of the channel replaces it (clients refuse going backwards).
                        Some(_) if staging::is_channel_pointer(path) => {}
                        Some(_) => {
                            return Err(PublishError::Target(format!(
                                "duplicate target {path:?}: already published in role {name} with different content"
                            )))
                        }
                        None => {}
                    }
                    targets.targets.insert((*path).clone(), tf);
                    added += 1;
                }
                if added == 0 && !must_resign {
                    return Ok(None);
                }
                targets.delegations = delegations;
                if let Some(md) = &current {
                    targets.version = md.signed.version + 1;
                }
                targets.expires = expiry(now, *period);
                targets.spec_version = SPEC_VERSION.to_owned();
                Ok(Some((name.clone(), Metadata::new(targets), added)))
            },
        )
        .collect();
    let mut new_targets = BTreeMap::new();
    let mut targets_added = 0;
    for w in work {
        if let Some((name, md, added)) = w? {
            targets_added += added;
            new_targets.insert(name, md);
        }
    }
    let authority = roles.into_iter().map(|r| (r.name, r.authority)).collect();

    let mut snapshot_meta: BTreeMap<String, MetaFile> = published
        .snapshot
        .as_ref()
        .map(|s| s.signed.meta.clone())
        .unwrap_or_default();
    for (name, md) in &new_targets {
        snapshot_meta.insert(
            sealwright_tuf::layout::meta_key(name),
            MetaFile::new(md.signed.version),
        );
    }
    let period = |role: &str| {
        policy
            .roles
            .get(role)
            .map(|r| r.expires.duration())
            .unwrap_or_else(|| Duration::days(1))
    };
    let online_current = match (&published.snapshot, &published.timestamp) {
        (Some(s), Some(t)) => {
            !expiring(s.signed.expires, period("snapshot"), now)
                && !expiring(t.signed.expires, period("timestamp"), now)
        }
        _ => false,
    };
    let nothing_to_do = root.is_none() && new_targets.is_empty() && online_current;
    let mut blobs = Vec::new();
    for entries in staged.targets.values() {
        for (path, entry) in entries {
            if let Some(sha) = entry.sha256() {
                blobs.push((sha.to_owned(), path.clone()));
            }
        }
    }
    Ok(Plan {
        root,
        previous_root,
        targets: new_targets,
        authority,
        snapshot_meta,
        snapshot_version: floor
            .next_snapshot(published.snapshot.as_ref().map(|s| s.signed.version))
            .ok_or_else(|| meta_err("snapshot version overflow"))?,
        timestamp_version: floor
            .next_timestamp(published.timestamp.as_ref().map(|t| t.signed.version))
            .ok_or_else(|| meta_err("timestamp version overflow"))?,
        snapshot_expires: expiry(now, period("snapshot")),
        timestamp_expires: expiry(now, period("timestamp")),
        blobs,
        targets_added,
        nothing_to_do,
    })
}

/// Whether the published version of a role still meets the threshold the policy now
/// sets for it (keys added, removed or a threshold raised make clients refuse the old
/// signatures, so the role must be signed again).
fn signatures_still_valid(name: &str, md: &Metadata<Targets>, a: &Authority) -> bool {
    md.received_canonical().is_some_and(|canonical| {
        sealwright_tuf::verify::verify_role(
            name,
            canonical,
            &md.signatures,
            &a.keys,
            &a.keyids,
            a.threshold,
        )
        .is_ok()
    })
}

/// The `delegations` object of role `name` per the policy.
fn delegations_of(policy: &Policy, name: &str) -> Result<Option<Delegations>, PublishError> {
    let children: Vec<&DelegationPolicy> = policy
        .delegations
        .iter()
        .filter(|d| d.parent == name)
        .collect();
    if children.is_empty() {
        return Ok(None);
    }
    let mut keys = BTreeMap::new();
    for d in &children {
        keys.extend(policy.public_keys(&d.keys)?);
    }
    if let [d] = children.as_slice() {
        if let Some(bits) = d.succinct_bits {
            let succinct =
                SuccinctRoles::new(policy.keyids(&d.keys), d.threshold, bits, d.name.clone())
                    .map_err(meta_err)?;
            return Ok(Some(Delegations::new_succinct(keys, succinct)));
        }
    }
    let mut roles = Vec::with_capacity(children.len());
    for d in children {
        let role = DelegatedRole::new(
            d.name.clone(),
            policy.keyids(&d.keys),
            d.threshold,
            d.terminating,
            d.paths.clone(),
            d.path_hash_prefixes.clone(),
        )
        .map_err(meta_err)?;
        roles.push(role);
    }
    Ok(Some(Delegations::new_roles(keys, roles)))
}

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
fn adopt_pending<T>(pending: &Pending, role: &str, md: &mut Metadata<T>) -> Result<(), PublishError>
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

/// Signs `md` with every available key among `keyids`; returns the canonical bytes that
/// were signed (the threshold check runs over the same bytes).
pub fn sign_with<T: sealwright_tuf::metadata::RoleType>(
    md: &mut Metadata<T>,
    keyids: &[String],
    signers: &HashMap<String, Box<dyn Signer>>,
) -> Result<Vec<u8>, PublishError> {
    let canonical = md.canonical_signed().map_err(meta_err)?;
    for id in keyids {
        if let Some(key) = signers.get(id) {
            md.sign_canonical(&canonical, key.as_ref())
                .map_err(meta_err)?;
        }
    }
    Ok(canonical)
}

/// Checks signatures over `canonical` against a threshold of `keyids`, explaining what is
/// missing. This is the client's own threshold check.
fn check_threshold(
    role: &str,
    canonical: &[u8],
    signatures: &[Signature],
    keys: &BTreeMap<String, PublicKey>,
    keyids: &[String],
    threshold: u32,
    policy: &Policy,
) -> Result<(), PublishError> {
    sealwright_tuf::verify::verify_role(role, canonical, signatures, keys, keyids, threshold).map_err(|e| {
        let missing: Vec<String> = keyids
            .iter()
            .filter(|id| !signatures.iter().any(|s| &s.keyid == *id))
            .map(|id| {
                policy
                    .keys
                    .iter()
                    .find(|(_, k)| &k.keyid == id)
                    .map(|(n, k)| if k.private.is_some() { n.clone() } else { format!("{n} (offline)") })
                    .unwrap_or_else(|| id.get(..12).unwrap_or(id).to_owned())
            })
            .collect();
        PublishError::Threshold(format!(
            "{e}; unsigned keys: {}. Sign offline with `sealwright sign-request {role}`, `sealwright sign`, `sealwright sign-import`",
            if missing.is_empty() { "none".to_owned() } else { missing.join(", ") }
        ))
    })
}

/// Signs, checks and writes a plan. Nothing is written unless every role meets its threshold.
pub fn execute(
    repo_dir: &Path,
    policy: &Policy,
    keystore: &KeyStore<'_>,
    mut plan: Plan,
) -> Result<PublishReport, PublishError> {
    let pending = Pending::new(repo_dir);

    // Open only the keys the changed roles need (an unchanged root does not prompt).
    let mut needed: BTreeSet<String> = BTreeSet::new();
    let keyids_of = |role: &str| -> Vec<String> {
        policy
            .role(role)
            .map(|(k, _, _)| policy.keyids(k))
            .unwrap_or_default()
    };
    if let Some(root) = &plan.root {
        needed.extend(
            root.signed
                .roles
                .get("root")
                .map(|r| r.keyids.clone())
                .unwrap_or_default(),
        );
        if let Some(prev) = &plan.previous_root {
            needed.extend(
                prev.roles
                    .get("root")
                    .map(|r| r.keyids.clone())
                    .unwrap_or_default(),
            );
        }
    }
    for name in plan.targets.keys() {
        if let Some(a) = plan.authority.get(name) {
            needed.extend(a.keyids.iter().cloned());
        }
    }
    needed.extend(keyids_of("snapshot"));
    needed.extend(keyids_of("timestamp"));
    let signers = open_signers(policy, keystore, &needed)?;

    let mut report = PublishReport {
        targets_added: plan.targets_added,
        ..Default::default()
    };

    // Root: threshold of the new root's keys and (for rotations) of the previous root's.
    let mut root_bytes = None;
    if let Some(root) = plan.root.as_mut() {
        adopt_pending(&pending, "root", root)?;
        let role = root
            .signed
            .roles
            .get("root")
            .cloned()
            .ok_or_else(|| meta_err("root role missing"))?;
        let mut ids = role.keyids.clone();
        if let Some(prev) = &plan.previous_root {
            ids.extend(
                prev.roles
                    .get("root")
                    .map(|r| r.keyids.clone())
                    .unwrap_or_default(),
            );
        }
        let enc = sign_with(root, &ids, &signers)?;
        check_threshold(
            "root",
            &enc,
            &root.signatures,
            &root.signed.keys,
            &role.keyids,
            role.threshold,
            policy,
        )?;
        if let Some(prev) = &plan.previous_root {
            let prev_role = prev
                .roles
                .get("root")
                .ok_or_else(|| meta_err("previous root role missing"))?;
            check_threshold(
                "root (previous root's keys)",
                &enc,
                &root.signatures,
                &prev.keys,
                &prev_role.keyids,
                prev_role.threshold,
                policy,
            )?;
        }
        report.roles.insert("root".into(), root.signed.version);
        report
            .expires
            .insert("root".into(), root.signed.expires.to_rfc3339());
        root_bytes = Some((root.signed.version, root.to_bytes().map_err(meta_err)?));
    }

    let mut files = sign_targets_roles(&mut plan, &pending, &signers, policy, &mut report)?;
    check_reachable(repo_dir, &plan, &files, root_bytes.as_ref())?;

    // Snapshot, then the timestamp that pins the snapshot's exact bytes — their versions
    // recorded first, so a failure after signing never blocks the next publish.
    OnlineFloor::record(
        repo_dir,
        Some(plan.snapshot_version),
        plan.timestamp_version,
    )
    .map_err(io_err(&repo_dir.join(ONLINE_FLOOR_FILE)))?;
    let mut snapshot = Metadata::new(Snapshot::new(
        plan.snapshot_version,
        plan.snapshot_expires,
        plan.snapshot_meta.clone(),
    ));
    snapshot.signed.spec_version = SPEC_VERSION.to_owned();
    adopt_pending(&pending, "snapshot", &mut snapshot)?;
    let (snap_keys, snap_threshold) = top_level_authority(policy, "snapshot")?;
    let snap_ids = keyids_of("snapshot");
    let enc = sign_with(&mut snapshot, &snap_ids, &signers)?;
    check_threshold(
        "snapshot",
        &enc,
        &snapshot.signatures,
        &snap_keys,
        &snap_ids,
        snap_threshold,
        policy,
    )?;
    let snapshot_bytes = snapshot.to_bytes().map_err(meta_err)?;
    report
        .roles
        .insert("snapshot".into(), snapshot.signed.version);
    report
        .expires
        .insert("snapshot".into(), snapshot.signed.expires.to_rfc3339());

    let mut snapshot_pin = MetaFile::new(snapshot.signed.version);
    snapshot_pin.length = Some(snapshot_bytes.len() as u64);
    snapshot_pin.hashes = Some(BTreeMap::from([(
        "sha256".to_owned(),
        sealwright_crypto::digest::sha256_hex(&snapshot_bytes),
    )]));
    let mut timestamp = Metadata::new(Timestamp::new(
        plan.timestamp_version,
        plan.timestamp_expires,
        snapshot_pin,
    ));
    timestamp.signed.spec_version = SPEC_VERSION.to_owned();
    let (ts_keys, ts_threshold) = top_level_authority(policy, "timestamp")?;
    let ts_ids = keyids_of("timestamp");
    let enc = sign_with(&mut timestamp, &ts_ids, &signers)?;
    check_threshold(
        "timestamp",
        &enc,
        &timestamp.signatures,
        &ts_keys,
        &ts_ids,
        ts_threshold,
        policy,
    )?;
    let timestamp_bytes = timestamp.to_bytes().map_err(meta_err)?;
    report
        .roles
        .insert("timestamp".into(), timestamp.signed.version);
    report
        .expires
        .insert("timestamp".into(), timestamp.signed.expires.to_rfc3339());
    files.push((
        sealwright_tuf::layout::metadata_file("snapshot", snapshot.signed.version),
        snapshot_bytes,
    ));

    // Everything is signed and meets threshold: write new files under fresh names.
    write_tree(
        repo_dir,
        &plan.blobs,
        &files,
        root_bytes.as_ref(),
        &timestamp_bytes,
    )?;

    Staging::clear(repo_dir)?;
    pending.clear()?;
    Ok(report)
}

/// Opens a signer for every key of `policy` whose keyid is in `needed` and whose private
/// part this machine holds (a file, a token, or the signer agent).
pub fn open_signers(
    policy: &Policy,
    keystore: &KeyStore<'_>,
    needed: &BTreeSet<String>,
) -> Result<HashMap<String, Box<dyn Signer>>, PublishError> {
    let mut signers: HashMap<String, Box<dyn Signer>> = HashMap::new();
    for (name, entry) in &policy.keys {
        if needed.contains(&entry.keyid) && !signers.contains_key(&entry.keyid) {
            if let Some(key) = keystore.open_signer(policy, name)? {
                signers.insert(entry.keyid.clone(), key);
            }
        }
    }
    Ok(signers)
}

/// Signs every planned targets role (in parallel: hash-bin repositories have thousands) and
/// checks each against its delegator's threshold; returns `(N.ROLE.json, bytes)` per role.
pub(crate) fn sign_targets_roles(
    plan: &mut Plan,
    pending: &Pending,
    signers: &HashMap<String, Box<dyn Signer>>,
    policy: &Policy,
    report: &mut PublishReport,
) -> Result<Vec<(String, Vec<u8>)>, PublishError> {
    let authority = &plan.authority;
    let signed_targets: Vec<Result<SignedRole, PublishError>> = plan
        .targets
        .par_iter_mut()
        .map(|(name, md)| {
            adopt_pending(pending, name, md)?;
            let a = authority
                .get(name)
                .ok_or_else(|| meta_err(format!("no authority for role {name}")))?;
            let enc = sign_with(md, &a.keyids, signers)?;
            check_threshold(
                name,
                &enc,
                &md.signatures,
                &a.keys,
                &a.keyids,
                a.threshold,
                policy,
            )?;
            Ok((
                name.clone(),
                md.signed.version,
                md.signed.expires.to_rfc3339(),
                md.to_bytes().map_err(meta_err)?,
            ))
        })
        .collect();
    let mut files: Vec<(String, Vec<u8>)> = Vec::with_capacity(signed_targets.len() + 2);
    for r in signed_targets {
        let (name, version, expires, bytes) = r?;
        files.push((sealwright_tuf::layout::metadata_file(&name, version), bytes));
        report.roles.insert(name.clone(), version);
        report.expires.insert(name, expires);
    }
    Ok(files)
}

/// Writes a signed state into `published/`: targets linked from the blob store, versioned
/// metadata under names no client has seen, one `syncfs`, then `root.json` and finally
/// `timestamp.json` replaced atomically — the switch that makes the new state live.
pub fn write_tree(
    repo_dir: &Path,
    blobs: &[(String, String)],
    files: &[(String, Vec<u8>)],
    root: Option<&(u64, Vec<u8>)>,
    timestamp: &[u8],
) -> Result<(), PublishError> {
    let published = repo_dir.join(PUBLISHED_DIR);
    let metadata_dir = published.join("metadata");
    let targets_dir = published.join("targets");
    fs::create_dir_all(&metadata_dir).map_err(io_err(&metadata_dir))?;
    fs::create_dir_all(&targets_dir).map_err(io_err(&targets_dir))?;
    // Create each target directory once, then link files in parallel.
    let parents: BTreeSet<PathBuf> = blobs
        .iter()
        .map(|(_, path)| target_parent(&targets_dir, path))
        .collect();
    for p in &parents {
        fs::create_dir_all(p).map_err(io_err(p))?;
    }
    blobs
        .par_iter()
        .map(|(sha, path)| link_target(repo_dir, &targets_dir, sha, path))
        .collect::<Result<Vec<()>, PublishError>>()?;
    files
        .par_iter()
        .map(|(name, bytes)| write_fresh(&metadata_dir.join(name), bytes))
        .collect::<Result<Vec<()>, PublishError>>()?;
    if let Some((version, bytes)) = root {
        write_fresh(
            &metadata_dir.join(sealwright_tuf::layout::metadata_file("root", *version)),
            bytes,
        )?;
    }
    fsutil::sync_filesystem(&published).map_err(io_err(&published))?;
    if let Some((_, bytes)) = root {
        let p = metadata_dir.join("root.json");
        fsutil::write_atomic(&p, bytes).map_err(io_err(&p))?;
    }
    let ts_path = metadata_dir.join("timestamp.json");
    fsutil::write_atomic(&ts_path, timestamp).map_err(io_err(&ts_path))
}

fn top_level_authority(
    policy: &Policy,
    role: &str,
) -> Result<(BTreeMap<String, PublicKey>, u32), PublishError> {
    let (keys, threshold, _) = policy
        .role(role)
        .ok_or_else(|| PolicyError::Invalid(format!("no {role} role")))?;
    Ok((policy.public_keys(keys)?, threshold))
}

/// What clients will see, asked of the client's own trust engine before the snapshot is
/// signed: every target this publish adds or changes must be found, by a client's
/// delegation search for its path, in the role that lists it — not shadowed by an earlier
/// or terminating delegation, not outside a delegation on the way. (The staging checks of
/// `add` are an early hint; this is the rule.)
fn check_reachable(
    repo_dir: &Path,
    plan: &Plan,
    files: &[(String, Vec<u8>)],
    new_root: Option<&(u64, Vec<u8>)>,
) -> Result<(), PublishError> {
    let published = Published::load(repo_dir)?;
    let published_root;
    let root: &[u8] = match new_root {
        Some((_, bytes)) => bytes,
        None => {
            let version = published
                .root
                .as_ref()
                .map(|r| r.signed.version)
                .ok_or_else(|| meta_err("no root is published or planned"))?;
            published_root =
                published.read_bytes(&sealwright_tuf::layout::metadata_file("root", version))?;
            &published_root
        }
    };
    let fresh: BTreeMap<String, &[u8]> = plan
        .targets
        .iter()
        .filter_map(|(name, md)| {
            let file = sealwright_tuf::layout::metadata_file(name, md.signed.version);
            files
                .iter()
                .find(|(f, _)| *f == file)
                .map(|(_, bytes)| (name.clone(), bytes.as_slice()))
        })
        .collect();
    let snapshot = Snapshot::new(
        plan.snapshot_version,
        plan.snapshot_expires,
        plan.snapshot_meta.clone(),
    );
    let mut candidate =
        crate::verify::Candidate::new(root, snapshot, fresh, &published, Utc::now())
            .map_err(meta_err)?;
    for (name, md) in &plan.targets {
        let old = published.targets_role(name)?;
        for (path, _) in crate::verify::changes(old.as_ref(), md).written {
            let landed = candidate.search(path).map_err(meta_err)?;
            if landed.as_ref().map(|f| f.role.as_str()) != Some(name.as_str()) {
                let instead = landed.map_or_else(
                    || "finds it in no role".to_owned(),
                    |f| format!("finds role {} first", f.role),
                );
                return Err(PublishError::Target(format!(
                    "target {path:?} of role {name} would never be installed: a client's search for it {instead}; change the delegations or the role it is added to"
                )));
            }
        }
    }
    Ok(())
}

/// Writes a versioned file of a new state. Identical content is left as it is (a publish
/// interrupted after writing it); different content replaces it — such a file was never
/// published, since no snapshot the timestamp names lists it (published versions are never
/// planned again: versions only go up).
pub(crate) fn write_fresh(path: &Path, bytes: &[u8]) -> Result<(), PublishError> {
    if let Ok(existing) = fs::read(path) {
        if existing == bytes {
            return Ok(());
        }
    }
    fsutil::write_new(path, bytes).map_err(io_err(path))
}

/// Directory of target `path` under `targets/`.
pub(crate) fn target_parent(targets_dir: &Path, path: &str) -> PathBuf {
    match path.rsplit_once('/') {
        Some((d, _)) => targets_dir.join(d),
        None => targets_dir.to_path_buf(),
    }
}

/// Places a staged blob at `targets/<dir>/<sha256>.<name>` (hard link, else copy).
pub(crate) fn link_target(
    repo_dir: &Path,
    targets_dir: &Path,
    sha256: &str,
    path: &str,
) -> Result<(), PublishError> {
    let dest = targets_dir.join(sealwright_tuf::layout::target_file(path, sha256));
    let blob = staging::blob_path(repo_dir, sha256);
    // Re-check the blob: staged/ is writable by the publisher's tools, and what we sign must
    // be what we serve.
    let bytes_ok = {
        let data = fs::read(&blob).map_err(io_err(&blob))?;
        sealwright_crypto::digest::sha256_hex(&data) == sha256
    };
    if !bytes_ok {
        return Err(PublishError::Target(format!(
            "staged blob {} no longer matches its hash; add the file again",
            blob.display()
        )));
    }
    match fs::hard_link(&blob, &dest) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(_) => {
            let data = fs::read(&blob).map_err(io_err(&blob))?;
            fsutil::write_new(&dest, &data).map_err(io_err(&dest))
        }
    }
}

/// The version a channel pointer currently names: the staged one, else the published one.
fn pointer_version(
    repo_dir: &Path,
    policy: &Policy,
    role: &str,
    path: &str,
    staged: &Staging,
) -> Result<Option<semver::Version>, PublishError> {
    let version_of = |custom: Option<&serde_json::Value>| {
        custom
            .and_then(|c| c.get("sealwright"))
            .and_then(|c| c.get("version"))
            .and_then(|v| v.as_str())
            .and_then(|v| semver::Version::parse(v).ok())
    };
    if let Some(entry) = staged.targets.get(role).and_then(|t| t.get(path)) {
        return Ok(version_of(Some(staged.custom(entry)?)));
    }
    let landing = landing_role(policy, role, path)?;
    let published = Published::load(repo_dir)?;
    Ok(published.targets_role(&landing)?.and_then(|md| {
        version_of(
            md.signed
                .targets
                .get(path)
                .and_then(|t| t.custom.as_deref()),
        )
    }))
}

/// A channel moves forward: pointing it at a version not above the one it names needs
/// `--recovery` (clients refuse such a release otherwise, so publishing it would only
/// strand devices on the old version).
fn check_pointer_moves_forward(
    repo_dir: &Path,
    policy: &Policy,
    role: &str,
    path: &str,
    staged: &Staging,
    release: &staging::Release,
) -> Result<(), PublishError> {
    if release.recovery {
        return Ok(());
    }
    if let Some(current) = pointer_version(repo_dir, policy, role, path, staged)? {
        if release.version <= current {
            return Err(PublishError::Target(format!(
                "channel {} of {} already points to {current}; {} is not newer: add it with --recovery to roll devices back, or use another --channel",
                release.pointer_channel(),
                release.name,
                release.version
            )));
        }
    }
    Ok(())
}

/// What `add` staged.
#[derive(Debug, Serialize)]
pub struct Added {
    /// Policy role the files were added to.
    pub role: String,
    /// Target path and entry of each file.
    pub targets: Vec<(String, StagedTarget)>,
    /// The channel pointer staged with a single-file release (path and entry); `None` for
    /// a tree of files or when the role's delegation does not cover the pointer path.
    pub pointer: Option<(String, StagedTarget)>,
}

/// `add`: checks every path (safe, inside the role's delegation, not yet staged or
/// published), then hashes and copies the files into `staged/` and records them.
pub fn add_artifacts(
    repo_dir: &Path,
    policy: &Policy,
    role: &str,
    paths: &[PathBuf],
    release: &staging::Release,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Added, PublishError> {
    if role != "targets" && policy.delegation(role).is_none() {
        return Err(PublishError::Target(format!(
            "--delegation {role}: no such delegated role (create it with `sealwright delegate`)"
        )));
    }
    let inputs = staging::collect_inputs(paths, &release.prefix())?;
    if inputs.is_empty() {
        return Err(PublishError::Target(
            "nothing to add: the given directories contain no files".into(),
        ));
    }
    let mut staged = Staging::load(repo_dir)?;
    check_addable(
        repo_dir,
        policy,
        role,
        inputs.iter().map(|i| i.target.as_str()),
    )?;
    if let Some(existing) = staged.targets.get(role) {
        if let Some(dup) = inputs.iter().find(|i| existing.contains_key(&i.target)) {
            return Err(PublishError::Target(format!(
                "duplicate target {:?}: already staged (publish it, or remove staged/ to start over)",
                dup.target
            )));
        }
    }
    progress(inputs.len());
    let release_index = staged.release_index(&release.custom());
    let entries = staging::hash_and_copy(repo_dir, &inputs, release_index, &|| progress(0))?;
    // A single-file release also moves its channel pointer, so clients find the newest
    // release with one target lookup (one bin in a hash-binned repository).
    let pointer = match entries.as_slice() {
        [(artifact, entry)] => {
            let path = staging::channel_pointer_path(&release.name, release.pointer_channel());
            if path_allowed(policy, role, &path) {
                check_pointer_moves_forward(repo_dir, policy, role, &path, &staged, release)?;
                let value = staging::channel_pointer(release, artifact, entry);
                let bytes = serde_json::to_vec_pretty(&value)
                    .map_err(|e| StagingError::Corrupt(e.to_string()))?;
                let index = staged.release_index(&serde_json::json!({ "sealwright": value }));
                Some((path, staging::stage_bytes(repo_dir, &bytes, index)?))
            } else {
                None
            }
        }
        _ => None,
    };
    let role_entries = staged.targets.entry(role.to_owned()).or_default();
    for (path, entry) in entries.iter().chain(pointer.iter()) {
        role_entries.insert(path.clone(), entry.clone());
    }
    staged.save(repo_dir)?;
    Ok(Added {
        role: role.to_owned(),
        targets: entries,
        pointer,
    })
}
