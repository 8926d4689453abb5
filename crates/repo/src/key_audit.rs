//! `key audit` (PRODUCT.md P5): what is wrong with a repository's keys, each finding with a
//! severity, one named function per rule; and [`enforce`], the rules of `[key_policy]`
//! that `publish` refuses to break.
//!
//! Rules:
//! - [`check_algorithm`]: RSA below 2048 bits (critical: nothing should verify it) or below
//!   3072 (medium); a type `[key_policy] algorithms` does not allow (high, refused);
//! - [`check_age`]: a key older than `max_age` (high: rotation overdue); a key of unknown age
//!   under a `max_age` (info);
//! - [`check_unused`]: a key no role and no `[attestations]` list uses (low);
//! - [`check_sharing`]: one key in several roles — root with an online role (high), or two
//!   product lines under `distinct_product_keys` (high, refused), otherwise medium;
//! - [`check_thresholds`]: root, targets or a delegation one key can sign (threshold 1:
//!   high for root, medium otherwise; the online roles are automation and exempt);
//! - [`check_key_files`]: a key file others can read (high) or that is missing (medium);
//! - [`check_hardware`]: a role `hardware` names whose file keys alone reach its threshold
//!   (high, refused).
//!
//! - [`check_logged`] (`key audit --log`): a root, targets or delegated role file published
//!   here that the server's transparency log does not hold — each key that signed it (high).
//!
//! Not checked: who holds which key (two keys in one person's pocket meet a threshold of
//! two); what the server's own agent signs (snapshot, timestamp) — the monitor follows those
//! (`sealwright monitor`: published-not-logged, unknown-key).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::policy::{KeyEntry, Policy, PolicyError, TOP_LEVEL_ROLES};

/// How much a finding matters, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Tidy it up.
    Low,
    /// Weakens the repository.
    Medium,
    /// Fix before the next release.
    High,
    /// Fix now.
    Critical,
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "info" => Ok(Severity::Info),
            "low" => Ok(Severity::Low),
            "medium" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            other => Err(format!(
                "{other:?}: expected info, low, medium, high or critical"
            )),
        }
    }
}

/// One problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// How much it matters.
    pub severity: Severity,
    /// What kind of problem (stable, for scripts).
    pub finding: &'static str,
    /// The key, when it is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The role, when it is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// For a person, with what to do.
    pub message: String,
}

/// Findings so far.
#[derive(Default)]
struct Findings(Vec<Finding>);

impl Findings {
    fn add(
        &mut self,
        severity: Severity,
        finding: &'static str,
        key: Option<&str>,
        role: Option<&str>,
        message: String,
    ) {
        self.0.push(Finding {
            severity,
            finding,
            key: key.map(str::to_owned),
            role: role.map(str::to_owned),
            message,
        });
    }
}

/// Every role (top-level and delegated) with its keys and threshold.
fn roles(policy: &Policy) -> Vec<(&str, &[String], u32)> {
    let top = policy
        .roles
        .iter()
        .map(|(n, r)| (n.as_str(), r.keys.as_slice(), r.threshold));
    let delegated = policy
        .delegations
        .iter()
        .map(|d| (d.name.as_str(), d.keys.as_slice(), d.threshold));
    top.chain(delegated).collect()
}

/// Weak types and sizes, and types the policy does not allow.
fn check_algorithm(policy: &Policy, name: &str, key: &KeyEntry, out: &mut Findings) {
    if let Some(bits) = key.public_key().ok().and_then(|k| k.rsa_bits()) {
        if bits < 2048 {
            out.add(Severity::Critical, "weak-key", Some(name), None, format!(
                "{name} is a {bits}-bit RSA key: replace it (`sealwright key revoke {name} --reason weak`)"
            ));
        } else if bits < 3072 {
            out.add(
                Severity::Medium,
                "weak-key",
                Some(name),
                None,
                format!(
                    "{name} is a {bits}-bit RSA key, below the 3072 bits new keys get: rotate it"
                ),
            );
        }
    }
    if let Some(allowed) = policy.key_policy.as_ref().map(|p| &p.algorithms) {
        if !allowed.is_empty() && !allowed.contains(&key.algorithm) {
            out.add(Severity::High, "algorithm-not-allowed", Some(name), None, format!(
                "{name} is {}, which [key_policy] algorithms ({}) does not allow: rotate it to an allowed type",
                key.algorithm,
                allowed.join(", ")
            ));
        }
    }
}

/// Keys past the policy's maximum age.
fn check_age(policy: &Policy, name: &str, key: &KeyEntry, now: DateTime<Utc>, out: &mut Findings) {
    let Some(max_age) = policy.key_policy.as_ref().and_then(|p| p.max_age) else {
        return;
    };
    let created = key
        .created
        .as_deref()
        .and_then(|c| DateTime::parse_from_rfc3339(c).ok());
    match created {
        Some(created) if now - created.with_timezone(&Utc) > max_age.duration() => {
            out.add(Severity::High, "rotation-overdue", Some(name), None, format!(
                "{name} was created {} and is older than [key_policy] max_age: `sealwright key rotate` its role",
                created.to_rfc3339()
            ));
        }
        Some(_) => {}
        None => out.add(
            Severity::Info,
            "age-unknown",
            Some(name),
            None,
            format!("{name} has no creation time, so its age cannot be checked against max_age"),
        ),
    }
}

/// Keys nothing uses.
fn check_unused(policy: &Policy, name: &str, out: &mut Findings) {
    let attests = policy
        .attestations
        .as_ref()
        .is_some_and(|a| a.builders.iter().chain(&a.rebuilders).any(|k| k == name));
    if policy.roles_of_key(name).is_empty() && !attests {
        out.add(
            Severity::Low,
            "unused-key",
            Some(name),
            None,
            format!(
            "{name} signs for no role: remove it from [keys] (and its key file) if it is retired"
        ),
        );
    }
}

/// One key in several roles.
fn check_sharing(policy: &Policy, name: &str, out: &mut Findings) {
    let roles = policy.roles_of_key(name);
    if roles.len() < 2 {
        return;
    }
    let online = roles.iter().any(|r| r == "snapshot" || r == "timestamp");
    let delegated: Vec<&String> = roles
        .iter()
        .filter(|r| !TOP_LEVEL_ROLES.contains(&r.as_str()))
        .collect();
    let distinct = policy
        .key_policy
        .as_ref()
        .is_some_and(|p| p.distinct_product_keys);
    if roles.iter().any(|r| r == "root") && online {
        out.add(
            Severity::High,
            "shared-key",
            Some(name),
            None,
            format!(
            "{name} signs root and an online role ({}): a server compromise would give away root",
            roles.join(", ")
        ),
        );
    } else if distinct && delegated.len() > 1 {
        out.add(Severity::High, "shared-across-product-lines", Some(name), None, format!(
            "{name} signs for several product lines ({}), which [key_policy] distinct_product_keys forbids",
            delegated.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
        ));
    } else {
        out.add(
            Severity::Medium,
            "shared-key",
            Some(name),
            None,
            format!(
                "{name} signs for {}: one stolen key gives away all of them",
                roles.join(", ")
            ),
        );
    }
}

/// Offline roles one key can sign.
fn check_thresholds(policy: &Policy, out: &mut Findings) {
    for (role, keys, threshold) in roles(policy) {
        if keys.is_empty() || threshold > 1 || role == "snapshot" || role == "timestamp" {
            continue;
        }
        let severity = if role == "root" {
            Severity::High
        } else {
            Severity::Medium
        };
        out.add(severity, "single-signer", None, Some(role), format!(
            "{role} has threshold 1: one person with one key can sign it; give it more keys and a higher threshold"
        ));
    }
}

/// Key files others can read, or that are gone.
fn check_key_files(repo_dir: &Path, name: &str, key: &KeyEntry, out: &mut Findings) {
    use std::os::unix::fs::PermissionsExt;
    let Some(rel) = key.private.as_deref().and_then(|p| p.strip_prefix("file:")) else {
        return;
    };
    match std::fs::metadata(repo_dir.join(rel)) {
        Ok(m) if m.permissions().mode() & 0o077 != 0 => out.add(Severity::High, "key-file-exposed", Some(name), None, format!(
            "{rel} can be read by others (mode {:04o}): `chmod 600 {rel}`, and consider the key exposed (`sealwright key revoke {name} --reason exposed`)",
            m.permissions().mode() & 0o777
        )),
        Ok(_) => {}
        Err(_) => out.add(Severity::Medium, "key-file-missing", Some(name), None, format!(
            "{rel} is missing: {name} cannot sign here"
        )),
    }
}

/// Roles that must not be signable with key files alone.
fn check_hardware(policy: &Policy, out: &mut Findings) {
    let Some(required) = policy.key_policy.as_ref().map(|p| &p.hardware) else {
        return;
    };
    for (role, keys, threshold) in roles(policy) {
        if !required.iter().any(|r| r == role) {
            continue;
        }
        let files = keys
            .iter()
            .filter(|k| {
                policy
                    .keys
                    .get(*k)
                    .and_then(|e| e.private.as_deref())
                    .is_some_and(|p| p.starts_with("file:"))
            })
            .count();
        if files as u64 >= u64::from(threshold) {
            out.add(Severity::High, "hardware-required", None, Some(role), format!(
                "{role} can be signed with key files alone ({files} file key(s), threshold {threshold}) but [key_policy] hardware names it: move its keys to a token (`sealwright key generate --pkcs11`)"
            ));
        }
    }
}

/// Every finding for the repository at `repo_dir`, most severe first.
pub fn audit(repo_dir: &Path, policy: &Policy, now: DateTime<Utc>) -> Vec<Finding> {
    let mut out = Findings::default();
    for (name, key) in &policy.keys {
        check_algorithm(policy, name, key, &mut out);
        check_age(policy, name, key, now, &mut out);
        check_unused(policy, name, &mut out);
        check_sharing(policy, name, &mut out);
        check_key_files(repo_dir, name, key, &mut out);
    }
    check_thresholds(policy, &mut out);
    check_hardware(policy, &mut out);
    let mut findings = out.0;
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.finding.cmp(b.finding)));
    findings
}

/// The findings of [`check_logged`] for the repository at `repo_dir`, given the SHA-256 (hex)
/// of every metadata file a server's transparency log holds (`key audit --log`).
pub fn audit_against_log(
    repo_dir: &Path,
    policy: &Policy,
    logged: &BTreeSet<String>,
) -> Result<Vec<Finding>, crate::publish::PublishError> {
    let mut out = Findings::default();
    check_logged(repo_dir, policy, logged, &mut out)?;
    Ok(out.0)
}

/// A role file this repository publishes now — every root version, and the targets and
/// delegated role versions the current snapshot names — whose exact bytes the transparency log does not
/// hold: each of our keys that signed it gets a finding (high). It was published around the
/// server, or the log hides it; either way devices may be served what monitors never see.
/// (Snapshot and timestamp are the server's, signed by its agent: the monitor checks those.)
fn check_logged(
    repo_dir: &Path,
    policy: &Policy,
    logged: &BTreeSet<String>,
    out: &mut Findings,
) -> Result<(), crate::publish::PublishError> {
    // What devices are served: every root up to the newest, and the versions of targets and
    // the delegated roles the current snapshot names (a higher file left by a failed publish
    // was never served).
    let published = crate::publish::Published::load(repo_dir)?;
    let roots = published.root.as_ref().map_or(0, |r| r.signed.version);
    let mut files: Vec<(String, u64)> = (1..=roots).map(|v| ("root".to_owned(), v)).collect();
    if let Some(snapshot) = &published.snapshot {
        files.extend(snapshot.signed.meta.iter().filter_map(|(key, meta)| {
            Some((
                sealwright_tuf::layout::role_of_meta_key(key)?.to_owned(),
                meta.version,
            ))
        }));
    }
    for (role, version) in files {
        let bytes = published.read_bytes(&sealwright_tuf::layout::metadata_file(&role, version))?;
        let sha256 = sealwright_crypto::digest::sha256_hex(&bytes);
        if logged.contains(&sha256) {
            continue;
        }
        let signed_by: BTreeSet<String> = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| {
                v.get("signatures")?.as_array().map(|sigs| {
                    sigs.iter()
                        .filter_map(|s| Some(s.get("keyid")?.as_str()?.to_owned()))
                        .collect()
                })
            })
            .unwrap_or_default();
        let ours: Vec<&String> = policy
            .keys
            .iter()
            .filter(|(_, k)| signed_by.contains(&k.keyid))
            .map(|(name, _)| name)
            .collect();
        let what = format!(
            "signed {role} version {version} (SHA-256 {}…), which the transparency log does not hold: it was published around the server, or the log is hiding it",
            sha256.get(..16).unwrap_or_default()
        );
        if ours.is_empty() {
            out.add(
                Severity::High,
                "signed-not-logged",
                None,
                Some(&role),
                format!("no key of this policy {what}"),
            );
        }
        for name in ours {
            out.add(
                Severity::High,
                "signed-not-logged",
                Some(name),
                Some(&role),
                format!("this key {what}"),
            );
        }
    }
    Ok(())
}

/// The `[key_policy]` rules `publish` refuses to break: allowed types, hardware roles,
/// distinct product keys. (An overdue key is a finding, not a refusal: refusing would stop
/// the publish that rotates it.)
pub fn enforce(policy: &Policy) -> Result<(), PolicyError> {
    if policy.key_policy.is_none() {
        return Ok(());
    }
    let mut out = Findings::default();
    let in_use: BTreeMap<&String, &KeyEntry> = policy
        .keys
        .iter()
        .filter(|(n, _)| !policy.roles_of_key(n).is_empty())
        .collect();
    for (name, key) in in_use {
        check_algorithm(policy, name, key, &mut out);
        check_sharing(policy, name, &mut out);
    }
    check_hardware(policy, &mut out);
    let broken: Vec<String> = out
        .0
        .into_iter()
        .filter(|f| {
            matches!(
                f.finding,
                "algorithm-not-allowed" | "hardware-required" | "shared-across-product-lines"
            )
        })
        .map(|f| f.message)
        .collect();
    if broken.is_empty() {
        Ok(())
    } else {
        Err(PolicyError::Invalid(format!(
            "[key_policy] is not met, nothing was published: {}",
            broken.join("; ")
        )))
    }
}
