//! Step 1, the plan: every new role version computed in memory from the policy, the
//! staged changes and what is published; nothing is written.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use rayon::prelude::*;

use sealwright_crypto::PublicKey;
use sealwright_tuf::metadata::{
    DelegatedRole, Delegations, MetaFile, Metadata, Role, Root, SuccinctRoles, TargetFile, Targets,
};

use crate::policy::{DelegationPolicy, Policy, PolicyError};
use crate::staging::{self, StagedTarget, Staging, StagingError};

use super::summaries::{summarize, RoleSummaries, RoleSummary};
use super::*;
use crate::staging::{landing_role, path_allowed};

/// The keys and threshold a delegator grants a role.
#[derive(Clone, Debug)]
pub(crate) struct Authority {
    pub(crate) keys: BTreeMap<String, PublicKey>,
    pub(crate) keyids: Vec<String>,
    pub(crate) threshold: u32,
}

/// A targets role the policy defines: who may sign it and how long versions last.
pub(super) struct PolicyRole {
    pub(super) name: String,
    pub(super) authority: Authority,
    pub(super) period: Duration,
}

/// A new version of a targets role and how many targets it gained.
pub(super) enum PlannedRole {
    /// Nothing to sign; the summary of the role when it had to be read to know that.
    Unchanged(Option<(String, RoleSummary)>),
    /// A new version, and the target paths it adds or changes.
    Changed(String, Box<Metadata<Targets>>, Vec<String>),
}

/// A signed role file: name, version, expiry, bytes.
pub(super) type SignedRole = (String, u64, String, Vec<u8>);

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
    pub(super) snapshot_meta: BTreeMap<String, MetaFile>,
    pub(super) snapshot_version: u64,
    pub(super) timestamp_version: u64,
    pub(super) snapshot_expires: DateTime<Utc>,
    pub(super) timestamp_expires: DateTime<Utc>,
    /// Blobs to link into `published/targets`: (sha256, target path).
    pub(crate) blobs: Vec<(String, String)>,
    pub(crate) targets_added: usize,
    /// Target paths each new role version adds or changes.
    pub(super) written: BTreeMap<String, Vec<String>>,
    /// The role summaries planning started from (see `summaries`).
    pub(super) summaries: RoleSummaries,
    /// Summaries of the unchanged roles that had to be read (see `summaries`).
    pub(super) read_summaries: BTreeMap<String, RoleSummary>,
    /// Published targets roles read to make this plan.
    pub roles_read: usize,
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

/// `[attestations]`: every staged release carries the provenance (and reproductions) the
/// policy requires — the server's push check, on `staged/blobs/`.
fn check_staged_attestations(
    repo_dir: &Path,
    policy: &Policy,
    staged: &Staging,
) -> Result<(), PublishError> {
    let Some(requirement) = policy.attestation_requirement()? else {
        return Ok(());
    };
    let added: Vec<crate::attestations::NewTarget<'_>> = staged
        .targets
        .values()
        .flatten()
        .map(|(path, entry)| crate::attestations::NewTarget {
            path,
            sha256: &entry.sha256,
            custom: staged.releases.get(entry.release),
        })
        .collect();
    crate::attestations::check_new_targets(&requirement, &added, &mut |sha256, max| {
        crate::fsutil::read_capped(&staging::blob_path(repo_dir, sha256), max)
            .map_err(|e| format!("reading the staged evidence {sha256}: {e}"))
    })
    .map_err(PublishError::Target)
}

/// Plans the next publish from `policy`, the staged changes and the published state.
pub fn plan(repo_dir: &Path, policy: &Policy, now: DateTime<Utc>) -> Result<Plan, PublishError> {
    policy.validate()?;
    crate::key_audit::enforce(policy)?;
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

    check_staged_attestations(repo_dir, policy, &staged)?;

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
    let summaries = RoleSummaries::load(repo_dir);
    let work: Vec<Result<PlannedRole, PublishError>> = roles
        .par_iter()
        .map(
            |PolicyRole {
                 name,
                 period,
                 authority,
             }| {
                let delegations = delegations_of(policy, name)?;
                let adds = incoming.get(name).map(Vec::as_slice).unwrap_or(&[]);
                // The cost of a publish follows the change: a role with nothing added whose
                // summary says it needs nothing is not read at all.
                let summary = published
                    .role_version(name)
                    .and_then(|v| summaries.get(name, v));
                if adds.is_empty()
                    && summary.is_some_and(|s| s.still_current(authority, &delegations, *period, now))
                {
                    return Ok(PlannedRole::Unchanged(None));
                }
                let current = published.targets_role(name)?;
                // Reasons to sign a new version other than new targets.
                // Reasons to sign a new version other than new targets. The signature check
                // (a pass over the whole role) is only needed when nothing is added: a role
                // that gains targets is signed again anyway.
                let mut targets = match &current {
                    Some(md) => md.signed.clone(),
                    None => Targets::new(1, expiry(now, *period)),
                };
                let must_resign = || match &current {
                    Some(md) => {
                        md.signed.delegations != delegations
                            || expiring(md.signed.expires, *period, now)
                            || !signatures_still_valid(name, md, authority)
                    }
                    None => true,
                };
                let unchanged = || {
                    PlannedRole::Unchanged(
                        current
                            .as_ref()
                            .map(|md| (name.clone(), summarize(md, authority))),
                    )
                };
                if adds.is_empty() && !must_resign() {
                    return Ok(unchanged());
                }
                let mut written = Vec::new();
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
                    written.push((*path).clone());
                }
                if written.is_empty() && !must_resign() {
                    return Ok(unchanged());
                }
                targets.delegations = delegations;
                if let Some(md) = &current {
                    targets.version = md.signed.version + 1;
                }
                targets.expires = expiry(now, *period);
                targets.spec_version = SPEC_VERSION.to_owned();
                Ok(PlannedRole::Changed(
                    name.clone(),
                    Box::new(Metadata::new(targets)),
                    written,
                ))
            },
        )
        .collect();
    let mut new_targets = BTreeMap::new();
    let mut targets_added = 0;
    let mut written_paths = BTreeMap::new();
    let mut read_summaries = BTreeMap::new();
    for w in work {
        match w? {
            PlannedRole::Changed(name, md, written) => {
                targets_added += written.len();
                new_targets.insert(name.clone(), *md);
                written_paths.insert(name, written);
            }
            PlannedRole::Unchanged(Some((name, summary))) => {
                read_summaries.insert(name, summary);
            }
            PlannedRole::Unchanged(None) => {}
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
        written: written_paths,
        summaries,
        read_summaries,
        roles_read: published.roles_read(),
        nothing_to_do,
    })
}

/// Whether the published version of a role still meets the threshold the policy now
/// sets for it (keys added, removed or a threshold raised make clients refuse the old
/// signatures, so the role must be signed again).
pub(super) fn signatures_still_valid(name: &str, md: &Metadata<Targets>, a: &Authority) -> bool {
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
pub(super) fn delegations_of(
    policy: &Policy,
    name: &str,
) -> Result<Option<Delegations>, PublishError> {
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
