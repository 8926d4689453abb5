//! `add`: every path checked (safe, inside the role's delegation, not yet staged or
//! published, a channel pointer that moves forward) before any byte is copied into `staged/`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use sealwright_tuf::delegation;
use sealwright_tuf::metadata::{Metadata, SuccinctRoles, Targets};

use crate::policy::{DelegationPolicy, Policy};
use crate::staging::{self, StagedTarget, Staging, StagingError};

use crate::publish::{meta_err, PublishError, Published};

/// Which role a staged target of policy role `role` lands in: itself, or (for succinct
/// delegations) the hash bin the path falls in.
pub(crate) fn landing_role(
    policy: &Policy,
    role: &str,
    path: &str,
) -> Result<String, PublishError> {
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
/// The published roles `add` looks at, each read once per command.
struct PublishedRoles {
    published: Published,
    roles: HashMap<String, Option<Metadata<Targets>>>,
}

impl PublishedRoles {
    fn load(repo_dir: &Path) -> Result<Self, PublishError> {
        Ok(PublishedRoles {
            published: Published::load(repo_dir)?,
            roles: HashMap::new(),
        })
    }

    fn get(&mut self, role: &str) -> Result<Option<&Metadata<Targets>>, PublishError> {
        if !self.roles.contains_key(role) {
            let md = self.published.targets_role(role)?;
            self.roles.insert(role.to_owned(), md);
        }
        Ok(self.roles.get(role).and_then(Option::as_ref))
    }
}

/// Checks, before anything is copied, that `paths` may be added to policy role `role`:
/// inside its delegated space and not already published.
pub fn check_addable<'p>(
    repo_dir: &Path,
    policy: &Policy,
    role: &str,
    paths: impl Iterator<Item = &'p str>,
) -> Result<(), PublishError> {
    check_addable_in(&mut PublishedRoles::load(repo_dir)?, policy, role, paths)
}

fn check_addable_in<'p>(
    roles: &mut PublishedRoles,
    policy: &Policy,
    role: &str,
    paths: impl Iterator<Item = &'p str>,
) -> Result<(), PublishError> {
    for path in paths {
        staging::validate_target_path(path)?;
        if !path_allowed(policy, role, path) {
            return Err(PublishError::Target(format!(
                "target {path:?} is outside the paths delegated to role {role}"
            )));
        }
        let landing = landing_role(policy, role, path)?;
        if roles
            .get(&landing)?
            .is_some_and(|md| md.signed.targets.contains_key(path))
        {
            return Err(PublishError::Target(format!(
                "duplicate target {path:?}: already published in role {landing} (publish a new version instead)"
            )));
        }
    }
    Ok(())
}

/// The version a channel pointer currently names: the staged one, else the published one.
fn pointer_version(
    roles: &mut PublishedRoles,
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
    Ok(roles.get(&landing)?.and_then(|md| {
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
    roles: &mut PublishedRoles,
    policy: &Policy,
    role: &str,
    path: &str,
    staged: &Staging,
    release: &staging::Release,
) -> Result<(), PublishError> {
    if release.recovery {
        return Ok(());
    }
    if let Some(current) = pointer_version(roles, policy, role, path, staged)? {
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
    let mut published = PublishedRoles::load(repo_dir)?;
    check_addable_in(
        &mut published,
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
    // release with one target lookup (one bin in a hash-binned repository). Evidence
    // files beside it (provenance, log, SBOM) are not what the pointer names.
    let artifacts: Vec<&(String, StagedTarget)> = entries
        .iter()
        .filter(|(path, _)| !release.is_evidence(path))
        .collect();
    let pointer = match artifacts.as_slice() {
        [(artifact, entry)] => {
            let path = staging::channel_pointer_path(&release.name, release.pointer_channel());
            if path_allowed(policy, role, &path) {
                check_pointer_moves_forward(&mut published, policy, role, &path, &staged, release)?;
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
