//! Changes to a repository's policy that add keys or roles: `key generate`, `key import` and
//! `delegate`, each checked in full before a key file is written (a typo never leaves an
//! orphaned key file), saved atomically, and recorded in the repository's audit log.
//!
//! A change takes effect at the next publish, which signs the roles it touches.

use std::path::Path;

use sealwright_crypto::keyfile;
use sealwright_crypto::{Algorithm, Kdf};

use crate::keyring::{Keyring, KeyringError, PassphraseSource};
use crate::policy::{check_name, DelegationPolicy, KeyEntry, Policy, PolicyError};

/// Why a change was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The change does not fit the policy; nothing was written.
    #[error("{0}")]
    Refused(String),
    /// The policy.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// A key file.
    #[error(transparent)]
    Keys(#[from] KeyringError),
    /// The change was made but its audit record could not be written.
    #[error("writing the audit record (the change itself was made): {0}")]
    Audit(#[from] sealwright_store::AuditError),
}

/// Where a new key comes from.
#[derive(Debug)]
pub enum NewKey<'a> {
    /// Generated here, encrypted into `keys/NAME.pem`.
    Generate {
        /// Its type.
        algorithm: Algorithm,
        /// The key file's key derivation.
        kdf: Kdf,
    },
    /// Generated on a PKCS#11 token (`pkcs11:` URI with `object=` as its label).
    Token {
        /// Its type.
        algorithm: Algorithm,
        /// The token and label.
        uri: &'a str,
    },
    /// A PEM file: a private key (encrypted or not; stored re-encrypted) or a public key
    /// for a key that stays offline.
    Import {
        /// The PEM file.
        file: &'a Path,
        /// The key file's key derivation, for a private key.
        kdf: Kdf,
        /// For a public key: the socket of the signer agent that holds its private half
        /// (`signer add-key` made it there).
        agent: Option<&'a str>,
    },
}

/// A key added to the policy.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AddedKey {
    /// Its name in the policy.
    pub name: String,
    /// Its TUF key id.
    pub keyid: String,
    /// `ed25519`, `ecdsa` or `rsa`.
    pub algorithm: String,
    /// Whether only the public half is here (it signs through offline signing).
    pub offline: bool,
    /// The roles it was authorised for.
    pub roles: Vec<String>,
}

/// Adds key `name` to the policy of `repo_dir`, authorised for `roles`.
pub fn add_key(
    repo_dir: &Path,
    keyring: &Keyring<'_>,
    source: &dyn PassphraseSource,
    name: &str,
    roles: &[String],
    new: NewKey<'_>,
) -> Result<AddedKey, ChangeError> {
    let mut policy = Policy::load(repo_dir)?;
    check_new_key(repo_dir, &policy, name, roles)?;
    let (entry, action) = match new {
        NewKey::Generate { algorithm, kdf } => {
            (keyring.generate(name, algorithm, kdf)?.0, "key-generate")
        }
        NewKey::Import { file, kdf, agent } => {
            let mut entry = import(keyring, source, name, file, kdf)?;
            if let Some(socket) = agent {
                if entry.private.is_some() {
                    return Err(ChangeError::Refused(
                        "--agent is for a public key whose private half the agent holds; this file holds a private key".into(),
                    ));
                }
                entry.private = Some(format!("agent:{socket}"));
            }
            (entry, "key-import")
        }
        NewKey::Token { algorithm, uri } => (
            keyring.generate_on_token(name, uri, algorithm)?,
            "key-generate",
        ),
    };
    let added = AddedKey {
        name: name.to_owned(),
        keyid: entry.keyid.clone(),
        algorithm: entry.algorithm.clone(),
        offline: entry.private.is_none(),
        roles: roles.to_vec(),
    };
    policy.keys.insert(name.to_owned(), entry);
    authorise(&mut policy, name, roles)?;
    policy.save(repo_dir)?;
    sealwright_store::audit::record_local(
        repo_dir,
        action,
        name,
        serde_json::json!({"keyid": added.keyid, "algorithm": added.algorithm, "offline": added.offline, "roles": roles}),
    )?;
    Ok(added)
}

/// The policy entry of the key in the PEM `file`: a private key is opened (as a secret file)
/// and stored re-encrypted; a public key is an offline key.
fn import(
    keyring: &Keyring<'_>,
    source: &dyn PassphraseSource,
    name: &str,
    file: &Path,
    kdf: Kdf,
) -> Result<KeyEntry, ChangeError> {
    let shown = file.display();
    let bytes = crate::fsutil::read_capped(file, keyfile::MAX_KEY_FILE as u64)
        .map_err(|e| ChangeError::Refused(format!("reading {shown}: {e}")))?;
    let pem = String::from_utf8(bytes)
        .map_err(|_| ChangeError::Refused(format!("{shown} is not a PEM text file")))?;
    if pem.contains("PRIVATE KEY-----") {
        let key = keyring.open_file(file, name)?;
        let pass = source.new_key(name)?;
        return Ok(keyring.store(name, &key, &pass, kdf)?);
    }
    let refused = |e: String| ChangeError::Refused(format!("reading {shown}: {e}"));
    let public = keyfile::read_public_key(&pem).map_err(|e| refused(e.to_string()))?;
    Ok(KeyEntry::new(&public, None)?)
}

/// Key `name` is new (in the policy and on disk) and every role it is for exists.
fn check_new_key(
    repo_dir: &Path,
    policy: &Policy,
    name: &str,
    roles: &[String],
) -> Result<(), ChangeError> {
    check_name("key", name)?;
    if policy.keys.contains_key(name) {
        return Err(ChangeError::Refused(format!(
            "key {name} already exists in the policy"
        )));
    }
    if repo_dir.join(format!("keys/{name}.pem")).exists() {
        return Err(ChangeError::Refused(format!("keys/{name}.pem already exists but is not in the policy; move it away or choose another name")));
    }
    authorise(&mut policy.clone(), name, roles)
}

/// Adds key `name` to each of `roles` (top-level or delegated).
fn authorise(policy: &mut Policy, name: &str, roles: &[String]) -> Result<(), ChangeError> {
    for role in roles {
        if let Some(r) = policy.roles.get_mut(role) {
            r.keys.push(name.to_owned());
        } else if let Some(d) = policy.delegations.iter_mut().find(|d| &d.name == role) {
            d.keys.push(name.to_owned());
        } else {
            return Err(ChangeError::Refused(format!(
                "--role {role}: no such role (top-level roles: root, targets, snapshot, timestamp)"
            )));
        }
    }
    Ok(())
}

/// Adds `delegation` to the policy of `repo_dir`. When it names no key, a key `NAME-key` of
/// type `algorithm` is generated for it.
pub fn delegate(
    repo_dir: &Path,
    keyring: &Keyring<'_>,
    mut delegation: DelegationPolicy,
    algorithm: Algorithm,
) -> Result<DelegationPolicy, ChangeError> {
    let mut policy = Policy::load(repo_dir)?;
    check_name("delegation", &delegation.name)?;
    if policy.role(&delegation.name).is_some() {
        return Err(ChangeError::Refused(format!(
            "role {} already exists",
            delegation.name
        )));
    }
    if delegation.keys.is_empty() {
        let key_name = format!("{}-key", delegation.name);
        if policy.keys.contains_key(&key_name) {
            return Err(ChangeError::Refused(format!(
                "key {key_name} already exists; pass --key {key_name} to reuse it"
            )));
        }
        let (entry, _) = keyring.generate(&key_name, algorithm, Kdf::default())?;
        policy.keys.insert(key_name.clone(), entry);
        delegation.keys.push(key_name);
    }
    policy.delegations.push(delegation.clone());
    policy.save(repo_dir)?;
    sealwright_store::audit::record_local(
        repo_dir,
        "policy-change",
        &delegation.name,
        serde_json::json!({"delegate": {"parent": delegation.parent, "keys": delegation.keys,
            "threshold": delegation.threshold, "paths": delegation.paths,
            "path_hash_prefixes": delegation.path_hash_prefixes, "succinct_bits": delegation.succinct_bits}}),
    )?;
    Ok(delegation)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A program embedding the library leaves the trail the binary leaves: each change and
    /// the publish are in the repository's hash-chained log, in order.
    #[test]
    fn library_changes_and_publishes_are_recorded_as_the_binary_records_them() {
        let dir = tempfile::tempdir().unwrap();
        let (repo, source, _) = crate::init::test_repository(dir.path());
        let keyring = Keyring::new(&repo, &source);
        let new = NewKey::Generate {
            algorithm: Algorithm::Ed25519,
            kdf: Kdf::default(),
        };
        add_key(&repo, &keyring, &source, "ci", &["targets".into()], new).unwrap();
        let refused = add_key(
            &repo,
            &keyring,
            &source,
            "typo",
            &["no-such-role".into()],
            NewKey::Generate {
                algorithm: Algorithm::Ed25519,
                kdf: Kdf::default(),
            },
        );
        assert!(matches!(refused, Err(ChangeError::Refused(_))));
        assert!(
            !repo.join("keys/typo.pem").exists(),
            "refused before any key file"
        );
        delegate(
            &repo,
            &keyring,
            DelegationPolicy {
                name: "beta".into(),
                parent: "targets".into(),
                threshold: 1,
                expires: crate::policy::Period::try_from("90d".to_owned()).unwrap(),
                keys: Vec::new(),
                terminating: false,
                paths: Some(vec!["beta/*".into()]),
                path_hash_prefixes: None,
                succinct_bits: None,
            },
            Algorithm::Ed25519,
        )
        .unwrap();
        let policy = Policy::load(&repo).unwrap();
        crate::publish::publish(&repo, &policy, &keyring, chrono::Utc::now(), &|_| {})
            .unwrap()
            .unwrap();

        let log = sealwright_store::AuditLog::open(&repo).unwrap();
        let actions: Vec<String> = log
            .records(None)
            .unwrap()
            .into_iter()
            .map(|r| r.action)
            .collect();
        assert_eq!(
            actions,
            ["init", "key-generate", "policy-change", "publish"],
            "{actions:?}"
        );
        assert!(log.verify().unwrap().is_ok());
    }

    /// A full disk fails the publish and its audit record alike; the message names the
    /// publish's failure, not the log's (it used to say "the action itself was done").
    #[test]
    fn a_failed_publish_is_reported_as_failed_even_when_it_cannot_be_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let (repo, source, policy) = crate::init::test_repository(dir.path());
        let keyring = Keyring::new(&repo, &source);
        let file = dir.path().join("app.bin");
        std::fs::write(&file, b"the real bytes").unwrap();
        let release = crate::staging::Release::new("app", "1.0.0", None).unwrap();
        let added =
            crate::staging::add_artifacts(&repo, &policy, "targets", &[file], &release, &|_| {})
                .unwrap();
        let sha = added.targets[0].1.sha256.clone();
        std::fs::write(crate::staging::blob_path(&repo, &sha), b"other bytes").unwrap();
        // The audit log cannot take a record: its anchor's place is taken by a directory.
        std::fs::remove_file(repo.join(sealwright_store::audit::HEAD_FILE)).unwrap();
        std::fs::create_dir(repo.join(sealwright_store::audit::HEAD_FILE)).unwrap();

        let err = crate::publish::publish(&repo, &policy, &keyring, chrono::Utc::now(), &|_| {})
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("staged blob"), "{err}");
        assert!(err.contains("no longer matches its hash"), "{err}");
        assert!(!err.contains("the action itself was done"), "{err}");
        assert!(!repo.join("published/metadata/2.targets.json").exists());
    }
}
