//! Rotation and revocation of keys (PRODUCT.md P5): `key rotate ROLE` and
//! `key revoke KEY --reason R`.
//!
//! Guarantees, each in one named function:
//! - a key leaves its roles in one policy change that is published at once
//!   ([`retire`]): the new root — root names the keys of every top-level role — is signed by
//!   the threshold of the previous root's keys and of its own, so devices (ours, python-tuf)
//!   follow the chain; when the timestamp or snapshot key changes, that same new root is
//!   what makes devices drop a timestamp a thief signed (fast-forward recovery, TUF §5.3.11);
//! - a role the key leaves with fewer keys than its threshold gets a new key of the same
//!   backend — a file key, or a key on the same token ([`generate_like`]);
//! - if the publish fails, the policy is restored as it was: a key is never half retired
//!   (the replacement generated for nothing is reported, not used);
//! - only after the publish succeeded does the old key leave `[keys]`; its file moves to
//!   `keys/retired/` ([`set_aside`]) — kept for the record, never used again;
//! - every rotation and revocation is recorded in the audit log with its reason.
//!
//! Not guaranteed: a process killed between the policy change and the end of the publish
//! leaves the change saved but not published — the next `publish` completes it, and the old
//! key stays in `[keys]` (`key audit` reports it unused); a successor for a key held by the
//! signer agent is made in the agent
//! (`signer add-key`, then `key import --agent`), one for a key kept offline where it is
//! kept — the refusal says how; the agent keeps signing with a revoked key until its entry
//! leaves agent.toml (the extra signature is ignored by devices); a key on a token stays on
//! the token — destroy it there; a server that takes pushes gets the new root like any root
//! change (`server setup`).

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;

use sealwright_crypto::{Algorithm, Kdf};

use crate::keyring::Keyring;
use crate::policy::{KeyEntry, Policy};
use crate::policy_change::ChangeError;
use crate::publish::PublishReport;

/// What a rotation or revocation did.
#[derive(Debug, Clone, Serialize)]
pub struct Retired {
    /// The key taken out.
    pub key: String,
    /// Its key id.
    pub keyid: String,
    /// Roles it was removed from.
    pub removed_from: Vec<String>,
    /// New keys: (role, key name).
    pub replaced_by: Vec<(String, String)>,
    /// Where its file went (file keys).
    pub retired_file: Option<String>,
    /// The publish that made it so.
    pub published: RoleVersions,
}

/// Roles and the versions the publish gave them.
pub type RoleVersions = std::collections::BTreeMap<String, u64>;

fn refused(m: impl Into<String>) -> ChangeError {
    ChangeError::Refused(m.into())
}

/// The policy's key named `key`, or whose key id is (or starts with, 8+ hex digits) `key`.
fn find_key<'p>(policy: &'p Policy, key: &str) -> Result<(&'p str, &'p KeyEntry), ChangeError> {
    if let Some((name, entry)) = policy.keys.get_key_value(key) {
        return Ok((name, entry));
    }
    let by_id: Vec<_> = policy
        .keys
        .iter()
        .filter(|(_, e)| key.len() >= 8 && e.keyid.starts_with(key))
        .collect();
    match by_id.as_slice() {
        [(name, entry)] => Ok((name, entry)),
        [] => Err(refused(format!(
            "no key {key:?} in the policy (give its name or key id; `sealwright key list` shows them)"
        ))),
        _ => Err(refused(format!(
            "{key:?} is the start of {} key ids: give more of it",
            by_id.len()
        ))),
    }
}

/// A name for the successor of `old`: its base (without a trailing `-N`) and the next free
/// number, free in the policy and in `keys/`.
fn successor_name(repo_dir: &Path, policy: &Policy, old: &str) -> String {
    let base = match old.rsplit_once('-') {
        Some((b, n)) if !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()) => b,
        _ => old,
    };
    (2u32..)
        .map(|n| format!("{base}-{n}"))
        .find(|n| !policy.keys.contains_key(n) && !repo_dir.join(format!("keys/{n}.pem")).exists())
        .unwrap_or_else(|| format!("{base}-new"))
}

/// A new key `name` of `old`'s type: on the token `to_token` names when given, else where
/// `old` lives — a file key, or a key on the same token.
fn generate_like(
    keyring: &Keyring<'_>,
    old_name: &str,
    old: &KeyEntry,
    name: &str,
    to_token: Option<&str>,
) -> Result<KeyEntry, ChangeError> {
    let algorithm: Algorithm = old
        .algorithm
        .parse()
        .map_err(|e| refused(format!("key {old_name}: {e}")))?;
    if let Some(uri) = to_token {
        return Ok(keyring.generate_on_token(name, uri, algorithm)?);
    }
    match old.private.as_deref() {
        Some(l) if l.starts_with("file:") => Ok(keyring.generate(name, algorithm, Kdf::default())?.0),
        Some(l) if l.starts_with("pkcs11:") => {
            let mut uri = sealwright_pkcs11::Pkcs11Uri::parse(l)
                .map_err(|e| refused(format!("key {old_name}: {e}")))?;
            uri.object = Some(name.to_owned());
            uri.id = None;
            Ok(keyring.generate_on_token(name, &uri.display(), algorithm)?)
        }
        Some(l) if l.starts_with("agent:") => Err(refused(format!(
            "key {old_name} is held by the signer agent: make its successor there (`sealwright signer add-key --config agent.toml --role ROLE`, restart the agent), import it here (`sealwright key import PUB --name NAME --role ROLE --agent SOCKET`), then run this again"
        ))),
        _ => Err(refused(format!(
            "key {old_name} is offline: generate its successor where it is kept, `sealwright key import` its public key with --role, remove {old_name} from the role in sealwright.toml, and publish (a signing request is prepared for the offline keys)"
        ))),
    }
}

/// Moves a retired file key to `keys/retired/NAME-KEYID8.pem`; returns the new path.
fn set_aside(repo_dir: &Path, name: &str, entry: &KeyEntry) -> Result<Option<String>, ChangeError> {
    let Some(rel) = entry
        .private
        .as_deref()
        .and_then(|l| l.strip_prefix("file:"))
    else {
        return Ok(None);
    };
    let from = repo_dir.join(rel);
    if !from.exists() {
        return Ok(None);
    }
    let dir = repo_dir.join("keys/retired");
    let io = |e: std::io::Error| refused(format!("setting aside {}: {e}", from.display()));
    std::fs::create_dir_all(&dir).map_err(io)?;
    let short = entry.keyid.get(..8).unwrap_or(&entry.keyid);
    let to = dir.join(format!("{name}-{short}.pem"));
    std::fs::rename(&from, &to).map_err(io)?;
    crate::fsutil::sync_dir(&dir).map_err(io)?;
    if let Some(parent) = from.parent() {
        crate::fsutil::sync_dir(parent).map_err(io)?;
    }
    Ok(Some(format!("keys/retired/{name}-{short}.pem")))
}

/// One retirement: key `name` leaves `roles`; `replace` gives each a successor (rotation),
/// otherwise only roles that would fall below their threshold get one (revocation).
struct Retirement<'a> {
    name: &'a str,
    roles: &'a [String],
    replace: bool,
    action: &'a str,
    reason: &'a str,
    /// A token for the successor (`key rotate --pkcs11`), instead of where the key lives.
    to_token: Option<&'a str>,
}

/// Carries out `r` on `before` (the policy as loaded), publishes, then retires the key (see
/// the module guarantees).
fn retire(
    repo_dir: &Path,
    keyring: &Keyring<'_>,
    before: Policy,
    r: Retirement<'_>,
    now: DateTime<Utc>,
) -> Result<Retired, ChangeError> {
    let Retirement {
        name,
        roles,
        replace,
        action,
        reason,
        to_token,
    } = r;
    let entry = before
        .keys
        .get(name)
        .cloned()
        .ok_or_else(|| refused(format!("no key {name}")))?;
    let mut policy = before.clone();
    let mut replaced_by = Vec::new();
    let mut successor: Option<String> = None;
    for role in roles {
        let (keys, threshold) = match policy.roles.get_mut(role) {
            Some(r) => (&mut r.keys, r.threshold),
            None => match policy.delegations.iter_mut().find(|d| &d.name == role) {
                Some(d) => (&mut d.keys, d.threshold),
                None => return Err(refused(format!("no role {role}"))),
            },
        };
        keys.retain(|k| k != name);
        if replace || (keys.len() as u64) < u64::from(threshold) {
            let new = match &successor {
                Some(n) => n.clone(),
                None => {
                    let n = successor_name(repo_dir, &before, name);
                    let generated = generate_like(keyring, name, &entry, &n, to_token)?;
                    policy.keys.insert(n.clone(), generated);
                    successor = Some(n.clone());
                    n
                }
            };
            keys.push(new.clone());
            replaced_by.push((role.clone(), new));
        }
    }
    policy.validate()?;
    policy.save(repo_dir)?;
    let report: PublishReport =
        match crate::publish::publish(repo_dir, &policy, keyring, now, &|_| {}) {
            Ok(Some(report)) => report,
            outcome => {
                before.save(repo_dir)?;
                let why = match outcome {
                    Err(e) => e.to_string(),
                    _ => "the publish had nothing to do".to_owned(),
                };
                return Err(refused(format!(
                    "{action} of {name} not done, the policy is as it was: {why}{}",
                    successor
                        .map(|n| format!(" (the key {n} generated for it is unused)"))
                        .unwrap_or_default()
                )));
            }
        };
    let mut retired_file = None;
    if policy.roles_of_key(name).is_empty() {
        policy.keys.remove(name);
        policy.save(repo_dir)?;
        retired_file = set_aside(repo_dir, name, &entry)?;
    }
    let retired = Retired {
        key: name.to_owned(),
        keyid: entry.keyid.clone(),
        removed_from: roles.to_vec(),
        replaced_by,
        retired_file,
        published: report.roles,
    };
    sealwright_store::audit::record_local(
        repo_dir,
        action,
        name,
        serde_json::json!({
            "keyid": retired.keyid,
            "reason": reason,
            "removed_from": retired.removed_from,
            "replaced_by": retired.replaced_by,
            "published": retired.published,
        }),
    )?;
    Ok(retired)
}

/// `key rotate ROLE [--key NAME] [--pkcs11 URI]`: a new key of the same backend (or on the
/// token `to_token` names) takes the place of the role's key (the one it has, or `key`),
/// published at once.
pub fn rotate(
    repo_dir: &Path,
    keyring: &Keyring<'_>,
    role: &str,
    key: Option<&str>,
    to_token: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Retired, ChangeError> {
    let policy = Policy::load(repo_dir)?;
    let (keys, _, _) = policy
        .role(role)
        .ok_or_else(|| refused(format!("no role {role}")))?;
    let name = match (key, keys) {
        (Some(k), _) => {
            let (name, _) = find_key(&policy, k)?;
            if !keys.iter().any(|n| n == name) {
                return Err(refused(format!("{role} does not use key {name}")));
            }
            name.to_owned()
        }
        (None, [one]) => one.clone(),
        (None, many) => {
            return Err(refused(format!(
                "{role} has {} keys ({}): say which with --key",
                many.len(),
                many.join(", ")
            )))
        }
    };
    retire(
        repo_dir,
        keyring,
        policy,
        Retirement {
            name: &name,
            roles: &[role.to_owned()],
            replace: true,
            action: "key-rotate",
            reason: "rotation",
            to_token,
        },
        now,
    )
}

/// `key revoke KEY --reason R`: the key leaves every role that trusts it; a role left below
/// its threshold gets a new key; published at once.
pub fn revoke(
    repo_dir: &Path,
    keyring: &Keyring<'_>,
    key: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Retired, ChangeError> {
    if reason.trim().is_empty() {
        return Err(refused("--reason is required: it goes into the audit log"));
    }
    let policy = Policy::load(repo_dir)?;
    let (name, _) = find_key(&policy, key)?;
    let roles = policy.roles_of_key(name);
    if roles.is_empty() {
        return Err(refused(format!(
            "key {name} is in no role: nothing trusts it (remove it from [keys])"
        )));
    }
    let name = name.to_owned();
    retire(
        repo_dir,
        keyring,
        policy,
        Retirement {
            name: &name,
            roles: &roles,
            replace: false,
            action: "key-revoke",
            reason,
            to_token: None,
        },
        now,
    )
}
