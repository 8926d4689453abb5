//! Creating a repository: policy, one key per top-level role, and (when the root key is
//! online) the first published version.

use std::path::Path;

use sealwright_crypto::Algorithm;

use crate::keyring::{Keyring, KeyringError};
use crate::policy::{Policy, TOP_LEVEL_ROLES};

/// Creates `policy`'s keys and writes the policy into `dir` (which must be empty or absent).
///
/// With `offline_root_key`, the root key's encrypted file is moved there and only its public
/// half stays in the repository.
pub fn create_repository(
    dir: &Path,
    mut policy: Policy,
    algorithm: Algorithm,
    keyring: &Keyring<'_>,
    offline_root_key: Option<&Path>,
) -> Result<Policy, KeyringError> {
    let io = |path: &Path| {
        let shown = path.display().to_string();
        move |source| KeyringError::Io {
            path: shown,
            source,
        }
    };
    if !crate::fsutil::is_absent_or_empty(dir).map_err(io(dir))? {
        return Err(KeyringError::Other(format!(
            "{} already exists and is not empty; choose a new directory",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    for role in TOP_LEVEL_ROLES {
        let name = format!("{role}-key");
        let (mut entry, _) = keyring.generate(&name, algorithm, Default::default())?;
        if let (true, Some(dest)) = (role == "root", offline_root_key) {
            let from = dir.join(format!("keys/{name}.pem"));
            std::fs::copy(&from, dest).map_err(io(dest))?;
            std::fs::remove_file(&from).map_err(io(&from))?;
            entry.private = None;
        }
        policy.keys.insert(name.clone(), entry);
        if let Some(r) = policy.roles.get_mut(role) {
            r.keys.push(name);
        }
    }
    policy.save(dir)?;
    sealwright_store::audit::record_local(
        dir,
        "init",
        "repository",
        serde_json::json!({"algorithm": algorithm.short_name(), "offline_root": offline_root_key.is_some()}),
    )
    .map_err(|e| KeyringError::Other(format!("writing the audit record: {e}")))?;
    Ok(policy)
}

/// A new repository with one Ed25519 key per role, for tests: its directory, the
/// passphrase source that opens its keys, and its policy.
#[cfg(test)]
pub(crate) fn test_repository(
    parent: &Path,
) -> (std::path::PathBuf, crate::FixedPassphrase, Policy) {
    let repo = parent.join("repo");
    let source = crate::FixedPassphrase(sealwright_crypto::Passphrase::new("pw".into()));
    let policy = create_repository(
        &repo,
        Policy::new_default(),
        Algorithm::Ed25519,
        &Keyring::new(&repo, &source),
        None,
    )
    .expect("a new test repository");
    (repo, source, policy)
}
