//! C7: a device that requires provenance installs a release only when trusted builders
//! attest, in signed provenance, to the exact bytes it is about to install — and, when it
//! asks for reproductions, when that many distinct trusted rebuilders got the same bytes.
//!
//! [`require_provenance`] follows the signed links and checks each step:
//! 1. the artifact's own signed entry links its provenance (and reproductions) in
//!    `custom.sealwright.evidence` (kind → target path and SHA-256; see
//!    `sealwright_attest::evidence`) — a release without provenance is refused;
//! 2. each linked path is listed by a role the delegation search trusts for it, with the
//!    SHA-256 the artifact's entry names;
//! 3. each file is downloaded and checked against that signed length and hashes;
//! 4. `sealwright_attest::evidence::check_attestations` — the check `publish` and the server
//!    run — accepts them for the artifact's signed SHA-256: provenance signed by `threshold`
//!    of the builder keys, and `reproductions` reproductions of this very provenance by
//!    distinct rebuilder keys.
//!
//! Not checked: what the build consumed (the source commit, the lockfiles) — those are in
//! the provenance for people and policies to judge.

use serde::{Deserialize, Serialize};

use sealwright_attest::dsse::MAX_ENVELOPE_BYTES;
use sealwright_attest::evidence::{
    check_attestations, AttestationError, EvidenceLinks, Link, Requirement,
};
use sealwright_attest::provenance::ProvenanceError;
use sealwright_crypto::PublicKey;

use super::InstallError;
use crate::fetch::Fetcher;
use crate::updater::Updater;

/// What a device requires of provenance (`client init --builder-key ... --builder-threshold N
/// [--rebuilder-key ... --reproductions K]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvenancePolicy {
    /// The builders' public keys (PEM SubjectPublicKeyInfo).
    pub builder_keys: Vec<String>,
    /// How many of them must have signed.
    pub threshold: usize,
    /// The rebuilders' public keys (PEM).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rebuilder_keys: Vec<String>,
    /// How many distinct rebuilders must have reproduced the release (0: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reproductions: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn refuse(message: String) -> InstallError {
    InstallError::new("provenance", message)
}

impl ProvenancePolicy {
    /// Checks the keys and the thresholds.
    pub fn new(
        builder_keys: Vec<String>,
        threshold: usize,
        rebuilder_keys: Vec<String>,
        reproductions: usize,
    ) -> Result<Self, String> {
        if threshold == 0 || threshold > builder_keys.len() {
            return Err(format!(
                "--builder-threshold {threshold}: between 1 and the {} --builder-key given",
                builder_keys.len()
            ));
        }
        if reproductions > rebuilder_keys.len() {
            return Err(format!(
                "--reproductions {reproductions}: at most the {} --rebuilder-key given",
                rebuilder_keys.len()
            ));
        }
        let policy = ProvenancePolicy {
            builder_keys,
            threshold,
            rebuilder_keys,
            reproductions,
        };
        let requirement = policy.requirement().map_err(|e| e.to_string())?;
        if requirement
            .rebuilders
            .iter()
            .any(|r| requirement.builders.iter().any(|b| b.keyid() == r.keyid()))
        {
            return Err(
                "a key is both a builder and a rebuilder: a build cannot reproduce itself".into(),
            );
        }
        Ok(policy)
    }

    /// What [`check_attestations`] is asked.
    fn requirement(&self) -> Result<Requirement, InstallError> {
        let keys = |pems: &[String], who: &str| {
            pems.iter()
                .map(|pem| {
                    sealwright_crypto::keyfile::read_public_key(pem)
                        .map_err(|e| refuse(format!("a {who} key in client.toml: {e}")))
                })
                .collect::<Result<Vec<PublicKey>, _>>()
        };
        Ok(Requirement {
            builders: keys(&self.builder_keys, "builder")?,
            builder_threshold: self.threshold,
            rebuilders: keys(&self.rebuilder_keys, "rebuilder")?,
            reproductions: self.reproductions,
        })
    }
}

/// Requires trusted attestations of `artifact` (listed at `artifact_path`); returns the
/// builder's id as the provenance names it.
pub(crate) fn require_provenance<F: Fetcher>(
    updater: &mut Updater<F>,
    artifact_path: &str,
    artifact: &sealwright_tuf::TargetFile,
    policy: &ProvenancePolicy,
) -> Result<String, InstallError> {
    let nothing = "; nothing was installed";
    let links = EvidenceLinks::from_custom(artifact.custom.as_deref())
        .map_err(|e| refuse(format!("{artifact_path}: its evidence links: {e}{nothing}")))?;
    let link = links.provenance().ok_or_else(|| {
        refuse(format!(
            "{artifact_path} has no provenance in its signed entry (build it with `sealwright build --stage`){nothing}"
        ))
    })?;
    let provenance = fetch_linked(updater, artifact_path, "provenance", link)?;
    let mut reproductions = Vec::new();
    if policy.reproductions > 0 {
        for link in links.reproductions() {
            reproductions.push(fetch_linked(updater, artifact_path, "reproduction", link)?);
        }
    }
    let sha256 = artifact
        .hashes
        .get("sha256")
        .ok_or_else(|| refuse(format!("{artifact_path} has no sha256 to match{nothing}")))?;
    let reproductions: Vec<&[u8]> = reproductions.iter().map(Vec::as_slice).collect();
    let attested = check_attestations(&policy.requirement()?, sha256, &provenance, &reproductions)
        .map_err(|e| match e {
            AttestationError::Provenance(ProvenanceError::Envelope(e)) => refuse(format!(
                "the provenance of {artifact_path} is not signed by the builders this device trusts ({e}){nothing}"
            )),
            AttestationError::Provenance(ProvenanceError::OtherBytes(_)) => refuse(format!(
                "the provenance is about other bytes than {artifact_path} (sha256 {sha256}){nothing}"
            )),
            AttestationError::Provenance(other) => {
                refuse(format!("the provenance {}: {other}{nothing}", link.path))
            }
            too_few @ AttestationError::TooFewReproductions { .. } => {
                refuse(format!("{artifact_path}: {too_few}{nothing}"))
            }
        })?;
    Ok(attested.provenance.provenance.run_details.builder.id)
}

/// The bytes of an evidence file the artifact's entry links: listed by a role the
/// delegation search trusts for its path, with the linked SHA-256, downloaded within its
/// signed length and checked against its signed hashes.
fn fetch_linked<F: Fetcher>(
    updater: &mut Updater<F>,
    artifact_path: &str,
    what: &str,
    link: &Link,
) -> Result<Vec<u8>, InstallError> {
    let nothing = "; nothing was installed";
    let path = link.path.as_str();
    let found = updater
        .get_targetinfo(path)
        .map_err(|e| refuse(format!("looking up the {what} {path}: {e}")))?
        .ok_or_else(|| {
            refuse(format!(
                "the {what} {path} is not in the signed metadata{nothing}"
            ))
        })?;
    if !found
        .target
        .hashes
        .get("sha256")
        .is_some_and(|h| h.eq_ignore_ascii_case(&link.sha256))
    {
        return Err(refuse(format!(
            "the {what} {path} listed is not the one {artifact_path} names{nothing}"
        )));
    }
    if found.target.length > MAX_ENVELOPE_BYTES as u64 {
        return Err(refuse(format!("the {what} {path} is too large{nothing}")));
    }
    let url = updater
        .target_url(&found.target, path)
        .map_err(|e| refuse(e.to_string()))?;
    let bytes = updater
        .fetcher()
        .fetch(&url, found.target.length)
        .map_err(|e| refuse(format!("downloading the {what} {path}: {e}")))?;
    let mut hasher = found.target.hasher();
    hasher.update(&bytes);
    found
        .target
        .check_digests(&hasher.finish())
        .map_err(|e| refuse(format!("the {what} {path}: {e}{nothing}")))?;
    Ok(bytes)
}
