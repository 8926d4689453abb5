//! `sealwright.toml`: the repository's policy — keys, roles, thresholds, expiry, delegations.
//!
//! The policy is the publisher's intent; signed metadata is derived from it at publish time.
//! Everything is validated when loaded so that a bad policy fails before any key is touched:
//! unknown keys referenced by a role, thresholds that can never be met, expiry periods that
//! are zero, negative or absurd, delegation names that are unsafe as file names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use sealwright_crypto::key::{Algorithm, KeyVal, PublicKey};

use crate::fsutil;

/// Name of the policy file inside a repository directory.
pub const POLICY_FILE: &str = "sealwright.toml";
const MAX_POLICY_BYTES: u64 = 4 * 1024 * 1024;
/// Longest expiry period we accept for any role (ten years).
const MAX_EXPIRY_DAYS: i64 = 3650;
/// The four top-level roles.
pub const TOP_LEVEL_ROLES: [&str; 4] = ["root", "targets", "snapshot", "timestamp"];

/// An invalid policy.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// Which file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// TOML syntax or schema error.
    #[error("{path}: {message}")]
    Parse {
        /// Which file.
        path: String,
        /// What the parser said.
        message: String,
    },
    /// Semantically invalid.
    #[error("invalid policy: {0}")]
    Invalid(String),
}

/// A length of time written as `<n>h`, `<n>d` or `<n>w` (e.g. `365d`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Period {
    seconds: i64,
}

impl Period {
    /// A period of `days` days.
    pub fn days(days: i64) -> Self {
        Period {
            seconds: days.saturating_mul(86_400),
        }
    }

    /// As a chrono duration.
    pub fn duration(self) -> chrono::Duration {
        chrono::Duration::seconds(self.seconds)
    }
}

impl TryFrom<String> for Period {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let s = s.trim();
        let split = s.len().saturating_sub(1);
        let (num, unit) = (s.get(..split).unwrap_or(""), s.get(split..).unwrap_or(""));
        let n: i64 = num
            .parse()
            .map_err(|_| format!("expiry period {s:?} must look like 12h, 30d or 52w"))?;
        let unit_seconds = match unit {
            "h" => 3_600,
            "d" => 86_400,
            "w" => 7 * 86_400,
            _ => return Err(format!("expiry period {s:?} must end in h, d or w")),
        };
        if n <= 0 {
            return Err(format!("expiry period {s:?} must be positive"));
        }
        let seconds = n.saturating_mul(unit_seconds);
        if seconds > MAX_EXPIRY_DAYS * 86_400 {
            return Err(format!(
                "expiry period {s:?} is longer than {MAX_EXPIRY_DAYS} days"
            ));
        }
        Ok(Period { seconds })
    }
}

impl From<Period> for String {
    fn from(p: Period) -> String {
        if p.seconds % (7 * 86_400) == 0 {
            format!("{}w", p.seconds / (7 * 86_400))
        } else if p.seconds % 86_400 == 0 {
            format!("{}d", p.seconds / 86_400)
        } else {
            format!("{}h", p.seconds / 3_600)
        }
    }
}

/// A key the policy knows: its public half and, for keys this machine may use, where the
/// private half lives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    /// `ed25519`, `ecdsa` or `rsa`.
    pub algorithm: String,
    /// TUF key id.
    pub keyid: String,
    /// Public key in TUF's `keyval.public` encoding (hex or PEM).
    pub public: String,
    /// Private key location: `file:keys/NAME.pem` (relative to the repository), or
    /// `agent:PATH` for a key held by a signer agent listening on the Unix socket PATH
    /// (relative to the repository unless absolute). Absent for offline keys, which sign
    /// through `sign-request` / `sign` / `sign-import`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private: Option<String>,
    /// When the key was made or imported (RFC 3339 UTC): its age is what `[key_policy]
    /// max_age` and `key audit` judge. Absent for keys from before this was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
}

impl KeyEntry {
    /// The entry of `public`, living at `private` (none: offline), created now.
    pub fn new(public: &PublicKey, private: Option<String>) -> Result<Self, PolicyError> {
        let algorithm = public
            .algorithm()
            .map_err(|e| PolicyError::Invalid(e.to_string()))?;
        Ok(KeyEntry {
            algorithm: algorithm.short_name().to_owned(),
            keyid: public.keyid(),
            public: public.keyval.public.clone(),
            private,
            created: Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        })
    }

    /// The key as it goes into metadata.
    pub fn public_key(&self) -> Result<PublicKey, PolicyError> {
        let alg: Algorithm = self
            .algorithm
            .parse()
            .map_err(|e| PolicyError::Invalid(format!("{e}")))?;
        let key = PublicKey {
            keytype: alg.keytype().to_owned(),
            scheme: alg.scheme().to_owned(),
            keyval: KeyVal {
                public: self.public.clone(),
                extra: BTreeMap::new(),
            },
            extra: BTreeMap::new(),
        };
        Ok(key)
    }
}

/// Keys, threshold and expiry of one role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolePolicy {
    /// Signatures required.
    pub threshold: u32,
    /// How long each new version stays valid.
    pub expires: Period,
    /// Names of keys (from `[keys]`) that may sign.
    pub keys: Vec<String>,
}

/// A delegation from `parent` to a role (or to a set of TAP 15 succinct hash bins).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelegationPolicy {
    /// Role name; for succinct bins, the `name_prefix` of the bins.
    pub name: String,
    /// Delegating role (`targets` or another delegation).
    #[serde(default = "default_parent")]
    pub parent: String,
    /// Signatures required.
    pub threshold: u32,
    /// How long each new version stays valid.
    pub expires: Period,
    /// Names of keys (from `[keys]`) that may sign.
    pub keys: Vec<String>,
    /// Whether the search stops here when the path matches.
    #[serde(default)]
    pub terminating: bool,
    /// Path patterns (`*` and `?` never match `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    /// Hex prefixes of sha256(target path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hash_prefixes: Option<Vec<String>>,
    /// TAP 15: spread targets over 2^bits bins named `<name>-<hex>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub succinct_bits: Option<u8>,
}

fn default_parent() -> String {
    "targets".to_owned()
}

/// The whole policy file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Repository-wide settings.
    pub repository: RepositorySettings,
    /// Known keys by name.
    #[serde(default)]
    pub keys: BTreeMap<String, KeyEntry>,
    /// The four top-level roles.
    pub roles: BTreeMap<String, RolePolicy>,
    /// Delegated roles, in search order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delegations: Vec<DelegationPolicy>,
    /// What every published release must carry (none when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestations: Option<AttestationPolicy>,
    /// Rules for keys: `publish` enforces them, `key audit` reports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_policy: Option<KeyPolicy>,
}

/// `[key_policy]` (PRODUCT.md P5; see `crate::key_audit`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPolicy {
    /// Key types allowed (`ed25519`, `ecdsa`, `rsa`); empty: all three.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub algorithms: Vec<String>,
    /// How old a key may get before it must be rotated (`key rotate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<Period>,
    /// Roles that must not be signable with key files alone: their file keys must not
    /// reach the threshold (the rest on a token, offline, or in the signer agent).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hardware: Vec<String>,
    /// A key signs for at most one product line (one delegated role).
    #[serde(default)]
    pub distinct_product_keys: bool,
}

/// `[attestations]`: `publish` and the server refuse a release without provenance signed by
/// `builder_threshold` of `builders` over each artifact's bytes and, when `reproductions`
/// is above 0, that many reproductions by distinct `rebuilders` (PRODUCT.md P6, P7).
/// Keys are names from `[keys]` (`sealwright key import PUB.pem --name NAME`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationPolicy {
    /// Builder keys whose provenance counts.
    pub builders: Vec<String>,
    /// How many builders must sign the provenance.
    #[serde(default = "one")]
    pub builder_threshold: u32,
    /// Rebuilder keys whose reproductions count.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rebuilders: Vec<String>,
    /// How many distinct rebuilders must have reproduced each artifact.
    #[serde(default)]
    pub reproductions: u32,
}

fn one() -> u32 {
    1
}

/// Repository-wide settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepositorySettings {
    /// Always true for repositories we create: clients fetch `N.role.json` and
    /// content-addressed targets, so publishing never rewrites a file a client may be reading.
    pub consistent_snapshot: bool,
}

impl Policy {
    /// A fresh policy with the given expiry defaults and no keys.
    pub fn new_default() -> Self {
        let role = |threshold, days| RolePolicy {
            threshold,
            expires: Period::days(days),
            keys: vec![],
        };
        let mut roles = BTreeMap::new();
        roles.insert("root".to_owned(), role(1, 365));
        roles.insert("targets".to_owned(), role(1, 90));
        roles.insert("snapshot".to_owned(), role(1, 7));
        roles.insert("timestamp".to_owned(), role(1, 1));
        Policy {
            repository: RepositorySettings {
                consistent_snapshot: true,
            },
            keys: BTreeMap::new(),
            roles,
            delegations: vec![],
            attestations: None,
            key_policy: None,
        }
    }

    /// Reads and validates `DIR/sealwright.toml`.
    pub fn load(repo_dir: &Path) -> Result<Self, PolicyError> {
        let path = repo_dir.join(POLICY_FILE);
        let shown = path.display().to_string();
        let bytes =
            fsutil::read_capped(&path, MAX_POLICY_BYTES).map_err(|source| PolicyError::Io {
                path: shown.clone(),
                source,
            })?;
        let text = String::from_utf8(bytes).map_err(|_| PolicyError::Parse {
            path: shown.clone(),
            message: "not UTF-8".into(),
        })?;
        let policy: Policy = toml::from_str(&text).map_err(|e| {
            // One line, with the line number: TOML's own message is a multi-line snippet.
            let line = e
                .span()
                .map(|s| text.get(..s.start).unwrap_or("").lines().count().max(1));
            let at = line.map(|l| format!(" line {l}")).unwrap_or_default();
            PolicyError::Parse {
                path: format!("{shown}{at}"),
                message: e.message().trim().replace('\n', " "),
            }
        })?;
        policy.validate()?;
        Ok(policy)
    }

    /// Validates and writes the policy atomically.
    pub fn save(&self, repo_dir: &Path) -> Result<(), PolicyError> {
        self.validate()?;
        let body = toml::to_string_pretty(self).map_err(|e| PolicyError::Invalid(e.to_string()))?;
        let text = format!(
            "# Sealwright repository policy. Edit with `sealwright key` and `sealwright delegate`,\n\
             # or by hand; `sealwright status` checks it. Expiry periods: <n>h, <n>d or <n>w.\n\n{body}"
        );
        let path = repo_dir.join(POLICY_FILE);
        fsutil::write_atomic(&path, text.as_bytes()).map_err(|source| PolicyError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// Checks every invariant the publisher relies on.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let bad = |m: String| Err(PolicyError::Invalid(m));
        if !self.repository.consistent_snapshot {
            return bad(
                "consistent_snapshot must be true (publishing rewrites no live file)".into(),
            );
        }
        for (name, key) in &self.keys {
            check_name("key", name)?;
            let public = key.public_key()?;
            public
                .validate()
                .map_err(|e| PolicyError::Invalid(format!("key {name}: {e}")))?;
            if public.keyid() != key.keyid {
                return bad(format!("key {name}: keyid does not match its public key"));
            }
            if let Some(p) = &key.private {
                if p.starts_with("pkcs11:") {
                    sealwright_pkcs11::Pkcs11Uri::parse(p)
                        .map_err(|e| PolicyError::Invalid(format!("key {name}: {e}")))?;
                } else if !p.starts_with("file:") && !p.starts_with("agent:") {
                    return bad(format!(
                        "key {name}: private location {p:?} must start with file:, agent: or pkcs11:"
                    ));
                }
            }
        }
        for role in TOP_LEVEL_ROLES {
            let Some(rp) = self.roles.get(role) else {
                return bad(format!("role {role} is missing from [roles]"));
            };
            self.check_role_keys(role, rp.threshold, &rp.keys)?;
        }
        if let Some(extra) = self
            .roles
            .keys()
            .find(|r| !TOP_LEVEL_ROLES.contains(&r.as_str()))
        {
            return bad(format!(
                "[roles.{extra}] is not a top-level role; use [[delegations]]"
            ));
        }
        let mut seen: BTreeSet<&str> = TOP_LEVEL_ROLES.iter().copied().collect();
        for d in &self.delegations {
            check_name("delegation", &d.name)?;
            if !seen.contains(d.parent.as_str())
                || d.parent == "root"
                || d.parent == "snapshot"
                || d.parent == "timestamp"
            {
                return bad(format!(
                    "delegation {}: parent {:?} must be targets or a delegation listed before it",
                    d.name, d.parent
                ));
            }
            if !seen.insert(&d.name) {
                return bad(format!(
                    "delegation {} is defined twice (or shadows a top-level role)",
                    d.name
                ));
            }
            self.check_role_keys(&d.name, d.threshold, &d.keys)?;
            let kinds = [
                d.paths.is_some(),
                d.path_hash_prefixes.is_some(),
                d.succinct_bits.is_some(),
            ];
            if kinds.iter().filter(|k| **k).count() != 1 {
                return bad(format!(
                    "delegation {}: give exactly one of paths, path_hash_prefixes or succinct_bits",
                    d.name
                ));
            }
            if let Some(bits) = d.succinct_bits {
                if !(1..=16).contains(&bits) {
                    return bad(format!(
                        "delegation {}: succinct_bits must be 1..=16",
                        d.name
                    ));
                }
                if self
                    .delegations
                    .iter()
                    .filter(|o| o.parent == d.parent)
                    .count()
                    > 1
                {
                    return bad(format!(
                        "delegation {}: a role delegating to succinct bins cannot delegate anything else",
                        d.name
                    ));
                }
                if self.delegations.iter().any(|o| o.parent == d.name) {
                    return bad(format!(
                        "delegation {}: succinct bins cannot delegate further",
                        d.name
                    ));
                }
            }
            if let Some(prefixes) = &d.path_hash_prefixes {
                if prefixes.iter().any(|p| {
                    p.is_empty()
                        || !p
                            .bytes()
                            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
                }) {
                    return bad(format!(
                        "delegation {}: path_hash_prefixes must be lowercase hex",
                        d.name
                    ));
                }
            }
            if let Some(paths) = &d.paths {
                if paths.is_empty() {
                    return bad(format!("delegation {}: paths is empty", d.name));
                }
            }
        }
        if let Some(a) = &self.attestations {
            if a.builders.is_empty() {
                return bad("[attestations] builders is empty: name the builder keys whose provenance counts".into());
            }
            self.check_role_keys("[attestations] builders", a.builder_threshold, &a.builders)?;
            if a.reproductions > 0 {
                self.check_role_keys("[attestations] rebuilders", a.reproductions, &a.rebuilders)?;
                if a.rebuilders.is_empty() {
                    return bad(format!(
                        "[attestations] reproductions = {} but no rebuilders are named",
                        a.reproductions
                    ));
                }
            }
            if let Some(both) = a.rebuilders.iter().find(|r| a.builders.contains(r)) {
                return bad(format!(
                    "[attestations] key {both} is both a builder and a rebuilder: a build cannot reproduce itself"
                ));
            }
        }
        Ok(())
    }

    /// What `[attestations]` requires, with its keys resolved (none without the section).
    pub fn attestation_requirement(
        &self,
    ) -> Result<Option<sealwright_attest::evidence::Requirement>, PolicyError> {
        let Some(a) = &self.attestations else {
            return Ok(None);
        };
        let keys = |names: &[String]| -> Result<Vec<PublicKey>, PolicyError> {
            names
                .iter()
                .map(|n| {
                    self.keys
                        .get(n)
                        .ok_or_else(|| {
                            PolicyError::Invalid(format!("[attestations]: unknown key {n:?}"))
                        })?
                        .public_key()
                })
                .collect()
        };
        Ok(Some(sealwright_attest::evidence::Requirement {
            builders: keys(&a.builders)?,
            builder_threshold: a.builder_threshold as usize,
            rebuilders: keys(&a.rebuilders)?,
            reproductions: a.reproductions as usize,
        }))
    }

    fn check_role_keys(
        &self,
        role: &str,
        threshold: u32,
        keys: &[String],
    ) -> Result<(), PolicyError> {
        if threshold == 0 {
            return Err(PolicyError::Invalid(format!(
                "role {role}: threshold must be at least 1"
            )));
        }
        let mut unique = BTreeSet::new();
        for k in keys {
            let Some(entry) = self.keys.get(k) else {
                return Err(PolicyError::Invalid(format!(
                    "role {role}: unknown key {k:?}"
                )));
            };
            if !unique.insert(&entry.keyid) {
                return Err(PolicyError::Invalid(format!(
                    "role {role}: key {k} listed twice"
                )));
            }
        }
        if (unique.len() as u64) < u64::from(threshold) && !keys.is_empty() {
            return Err(PolicyError::Invalid(format!(
                "role {role}: threshold {threshold} but only {} key(s): it could never be signed",
                unique.len()
            )));
        }
        Ok(())
    }

    /// The roles (top-level, then delegated) key `name` signs for.
    pub fn roles_of_key(&self, name: &str) -> Vec<String> {
        let top = self
            .roles
            .iter()
            .filter(|(_, r)| r.keys.iter().any(|k| k == name));
        let delegated = self
            .delegations
            .iter()
            .filter(|d| d.keys.iter().any(|k| k == name));
        top.map(|(n, _)| n.clone())
            .chain(delegated.map(|d| d.name.clone()))
            .collect()
    }

    /// The policy of a top-level role or delegation.
    pub fn role(&self, name: &str) -> Option<(&[String], u32, Period)> {
        if let Some(r) = self.roles.get(name) {
            return Some((&r.keys, r.threshold, r.expires));
        }
        self.delegation(name)
            .map(|d| (d.keys.as_slice(), d.threshold, d.expires))
    }

    /// The delegation called `name`.
    pub fn delegation(&self, name: &str) -> Option<&DelegationPolicy> {
        self.delegations.iter().find(|d| d.name == name)
    }

    /// The public keys of the named keys, by keyid.
    pub fn public_keys(
        &self,
        names: &[String],
    ) -> Result<BTreeMap<String, PublicKey>, PolicyError> {
        let mut out = BTreeMap::new();
        for n in names {
            let entry = self
                .keys
                .get(n)
                .ok_or_else(|| PolicyError::Invalid(format!("unknown key {n:?}")))?;
            out.insert(entry.keyid.clone(), entry.public_key()?);
        }
        Ok(out)
    }

    /// Key ids of the named keys, in order.
    pub fn keyids(&self, names: &[String]) -> Vec<String> {
        names
            .iter()
            .filter_map(|n| self.keys.get(n))
            .map(|k| k.keyid.clone())
            .collect()
    }
}

/// Role and key names end up in file names and URLs: keep them boring.
pub fn check_name(kind: &str, name: &str) -> Result<(), PolicyError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(PolicyError::Invalid(format!(
            "{kind} name {name:?} must be 1-64 characters of a-z, A-Z, 0-9, '-', '_', '.' and not start with '.'"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_parse_and_reject_nonsense() {
        assert_eq!(Period::try_from("7d".to_string()).unwrap(), Period::days(7));
        assert_eq!(
            String::from(Period::try_from("2w".to_string()).unwrap()),
            "2w"
        );
        for bad in ["0d", "-1d", "d", "5", "5y", "99999d", ""] {
            assert!(Period::try_from(bad.to_string()).is_err(), "{bad}");
        }
    }

    #[test]
    fn default_policy_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let p = Policy::new_default();
        p.save(dir.path()).unwrap();
        assert_eq!(Policy::load(dir.path()).unwrap(), p);
    }

    #[test]
    fn threshold_above_key_count_is_refused() {
        let mut p = Policy::new_default();
        let key = sealwright_crypto::PrivateKey::generate(Algorithm::Ed25519).unwrap();
        use sealwright_crypto::Signer;
        p.keys
            .insert("k".into(), KeyEntry::new(key.public_key(), None).unwrap());
        p.roles.get_mut("root").unwrap().keys = vec!["k".into()];
        p.roles.get_mut("root").unwrap().threshold = 2;
        assert!(p
            .validate()
            .unwrap_err()
            .to_string()
            .contains("could never be signed"));
    }

    proptest::proptest! {
        /// Any text in sealwright.toml gives a policy or an error, never a panic.
        #[test]
        fn arbitrary_policy_text_never_panics(text in "(\\[[a-z.]{1,12}\\]\n|[a-z_]{1,10} = (\"[0-9a-z:/.-]{0,10}\"|[0-9-]{1,4}|\\[\\]|true)\n){0,12}") {
            if let Ok(p) = toml::from_str::<Policy>(&text) {
                let _ = p.validate();
            }
        }
    }
}
