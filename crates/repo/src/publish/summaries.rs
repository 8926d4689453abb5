//! `role-summaries.json`: what planning needs to know about each published targets role
//! without reading it — its version, its expiry, and digests of the authority that signed
//! it and of the delegations it carries. So the cost of a publish follows the change: in a
//! repository of 4,096 hash bins, adding one file reads and verifies one bin, not 4,096.
//!
//! Guaranteed: a summary is used only for the version the published snapshot names for its
//! role, and only to decide that a role needs *nothing* (not expiring, same authority, same
//! delegations); anything else reads and verifies the role as before. A summary is derived
//! data, written after the publish it describes is live: a missing, stale or corrupt file
//! costs time, never correctness (the role is read instead). Not guaranteed: someone who
//! rewrites a published role file without changing its version is not noticed here — as
//! before, the publisher trusts its own `published/` (clients do not).

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use sealwright_tuf::metadata::{Delegations, Metadata, Targets};

use super::plan::Authority;
use super::{expiring, Plan};
use crate::fsutil;

/// The file, in the repository directory (not served).
pub const ROLE_SUMMARIES_FILE: &str = "role-summaries.json";
/// Largest summaries file read (a million roles fit).
const MAX_SUMMARIES_BYTES: u64 = 256 * 1024 * 1024;

/// One published targets role, as planning needs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleSummary {
    /// The published version this describes.
    pub version: u64,
    /// When it expires.
    pub expires: DateTime<Utc>,
    /// [`authority_digest`] of the keys and threshold its signatures met.
    pub authority: String,
    /// [`delegations_digest`] of its `delegations`.
    pub delegations: String,
}

/// Every summary, by role name.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RoleSummaries {
    /// By role.
    pub roles: BTreeMap<String, RoleSummary>,
}

impl RoleSummaries {
    /// Reads the file; missing or unreadable is empty (everything is read instead).
    pub fn load(repo_dir: &Path) -> Self {
        fsutil::read_capped(&repo_dir.join(ROLE_SUMMARIES_FILE), MAX_SUMMARIES_BYTES)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// The summary of `role` if it describes `version`.
    pub fn get(&self, role: &str, version: u64) -> Option<&RoleSummary> {
        self.roles.get(role).filter(|s| s.version == version)
    }

    /// Replaces the file atomically. Best effort: the publish it follows is already live,
    /// and a summary that is not written only makes the next plan read that role.
    pub fn save(&self, repo_dir: &Path) {
        if let Ok(bytes) = serde_json::to_vec(self) {
            let _ = fsutil::write_atomic(&repo_dir.join(ROLE_SUMMARIES_FILE), &bytes);
        }
    }

    /// The summaries after `plan` was published: its new roles, and the roles it read.
    pub fn after(mut self, plan: &Plan) -> Self {
        self.roles.extend(
            plan.read_summaries
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        for (name, md) in &plan.targets {
            if let Some(a) = plan.authority.get(name) {
                self.roles.insert(name.clone(), summarize(md, a));
            }
        }
        self
    }
}

impl RoleSummary {
    /// Whether the role summarised needs no new version: not expiring, signed under the same
    /// authority, with the delegations the policy gives it now.
    pub(crate) fn still_current(
        &self,
        authority: &Authority,
        delegations: &Option<Delegations>,
        period: chrono::Duration,
        now: DateTime<Utc>,
    ) -> bool {
        !expiring(self.expires, period, now)
            && self.authority == authority_digest(authority)
            && self.delegations == delegations_digest(delegations)
    }
}

/// The summary of `md`, whose signatures meet `authority`.
pub(super) fn summarize(md: &Metadata<Targets>, authority: &Authority) -> RoleSummary {
    RoleSummary {
        version: md.signed.version,
        expires: md.signed.expires,
        authority: authority_digest(authority),
        delegations: delegations_digest(&md.signed.delegations),
    }
}

/// SHA-256 of the sorted key ids and the threshold (a key id names its key material).
pub(super) fn authority_digest(a: &Authority) -> String {
    let mut ids = a.keyids.clone();
    ids.sort();
    ids.dedup();
    let text = format!("{}|{}", a.threshold, ids.join(","));
    sealwright_crypto::digest::sha256_hex(text.as_bytes())
}

/// SHA-256 of the canonical JSON of `delegations` (empty string for none).
pub(super) fn delegations_digest(d: &Option<Delegations>) -> String {
    let Some(d) = d else {
        return String::new();
    };
    serde_json::to_value(d)
        .ok()
        .and_then(|v| sealwright_crypto::canonical::to_canonical_json(&v).ok())
        .map(|bytes| sealwright_crypto::digest::sha256_hex(&bytes))
        .unwrap_or_else(|| "unserialisable".to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::policy::{DelegationPolicy, Period, Policy};
    use crate::staging::{add_artifacts, Release};
    use crate::{FixedPassphrase, Keyring};

    const BITS: u8 = 8;

    fn repo_with_bins(dir: &Path, files: usize) -> (Policy, FixedPassphrase) {
        let (repo, source, _) = crate::init::test_repository(dir);
        let keyring = Keyring::new(&repo, &source);
        crate::policy_change::delegate(
            &repo,
            &keyring,
            DelegationPolicy {
                name: "bins".into(),
                parent: "targets".into(),
                threshold: 1,
                expires: Period::try_from("90d".to_owned()).unwrap(),
                keys: Vec::new(),
                terminating: false,
                paths: None,
                path_hash_prefixes: None,
                succinct_bits: Some(BITS),
            },
            sealwright_crypto::Algorithm::Ed25519,
        )
        .unwrap();
        let src = dir.join("src");
        std::fs::create_dir_all(&src).unwrap();
        for i in 0..files {
            std::fs::write(src.join(format!("f{i:05}.txt")), format!("file {i}")).unwrap();
        }
        let policy = Policy::load(&repo).unwrap();
        let release = Release::new("bulk", "1.0.0", None).unwrap();
        add_artifacts(&repo, &policy, "bins", &[src], &release, &|_| {}).unwrap();
        super::super::publish(&repo, &policy, &keyring, Utc::now(), &|_| {})
            .unwrap()
            .unwrap();
        (policy, source)
    }

    fn add_one(dir: &Path, policy: &Policy, name: &str) {
        let file = dir.join(format!("{name}.txt"));
        std::fs::write(&file, name).unwrap();
        let release = Release::new(name, "1.0.0", None).unwrap();
        add_artifacts(
            &dir.join("repo"),
            policy,
            "bins",
            &[file],
            &release,
            &|_| {},
        )
        .unwrap();
    }

    /// Adding one file to a binned repository reads one bin (the one it lands in), not all
    /// of them — counted, not timed. Without summaries every bin is read, and a role due for
    /// re-signing is still re-signed.
    #[test]
    fn an_incremental_publish_reads_only_the_roles_that_change() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let (policy, source) = repo_with_bins(dir, 1000);
        let repo = dir.join("repo");
        let keyring = Keyring::new(&repo, &source);
        let bins = 1usize << BITS;

        // A one-file release: the artifact and its channel pointer, in one or two bins.
        add_one(dir, &policy, "one");
        let plan = super::super::plan(&repo, &policy, Utc::now()).unwrap();
        let changed = plan.targets.len();
        assert!((1..=2).contains(&changed), "{changed}");
        assert_eq!(
            plan.roles_read, changed,
            "only the bins the new files land in"
        );
        super::super::execute(&repo, &policy, &keyring, plan).unwrap();

        // The summaries follow the publish: the next one reads only its bins again.
        add_one(dir, &policy, "two");
        let plan = super::super::plan(&repo, &policy, Utc::now()).unwrap();
        assert_eq!(plan.roles_read, plan.targets.len());

        // Without them, every role is read (and nothing more is signed).
        std::fs::remove_file(repo.join(ROLE_SUMMARIES_FILE)).unwrap();
        let again = super::super::plan(&repo, &policy, Utc::now()).unwrap();
        assert_eq!(again.roles_read, bins + 1, "every bin and targets");
        assert_eq!(again.targets.len(), plan.targets.len());
        let plan = again;

        // Near the bins' expiry they are all re-signed, summaries or not.
        super::super::execute(&repo, &policy, &keyring, plan).unwrap();
        let later = Utc::now() + chrono::Duration::days(80);
        let plan = super::super::plan(&repo, &policy, later).unwrap();
        assert!(plan.targets.len() >= bins, "{}", plan.targets.len());
    }

    /// A summary is only trusted for the authority it was made under: a new key for the bins
    /// makes every bin be read and checked again (their signatures still meet threshold 1,
    /// so only `targets`, whose delegation changed, is signed).
    #[test]
    fn a_changed_authority_makes_every_role_be_read_and_resigned() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let (_, source) = repo_with_bins(dir, 300);
        let repo = dir.join("repo");
        let keyring = Keyring::new(&repo, &source);
        crate::policy_change::add_key(
            &repo,
            &keyring,
            &source,
            "bins-2",
            &["bins".into()],
            crate::policy_change::NewKey::Generate {
                algorithm: sealwright_crypto::Algorithm::Ed25519,
                kdf: Default::default(),
            },
        )
        .unwrap();
        let policy = Policy::load(&repo).unwrap();
        let plan = super::super::plan(&repo, &policy, Utc::now()).unwrap();
        assert_eq!(plan.roles_read, (1usize << BITS) + 1);
        assert_eq!(plan.targets.keys().collect::<Vec<_>>(), ["targets"]);
    }
}
