//! C7: a device that requires provenance installs a release only when trusted builders
//! attest, in signed provenance, to the exact bytes it is about to install.
//!
//! [`require_provenance`] follows one link and checks each step:
//! 1. the artifact's own signed entry names its provenance file
//!    (`custom.sealwright.evidence.provenance`: target path and SHA-256) — a release without
//!    one is refused;
//! 2. that path is listed by a role the delegation search trusts for it, with the SHA-256
//!    the artifact's entry names;
//! 3. the file is downloaded, checked against that signed length and hashes;
//! 4. it is a DSSE envelope signed by `threshold` of the configured builder keys (unique
//!    keys: see `sealwright_attest::dsse`), holding an in-toto Statement v1 whose predicate is
//!    SLSA Provenance v1 and one of whose subjects has the artifact's signed SHA-256.
//!
//! Not checked: what the build consumed (the source commit, the lockfiles) — those are in
//! the provenance for people and policies to judge; reproductions by independent
//! rebuilders (P7) are not required yet.

use serde::{Deserialize, Serialize};

use sealwright_attest::dsse::{Envelope, MAX_ENVELOPE_BYTES};
use sealwright_attest::provenance::{check_provenance, ProvenanceError};
use sealwright_crypto::PublicKey;

use super::InstallError;
use crate::fetch::Fetcher;
use crate::updater::Updater;

/// What a device requires of provenance (`client init --builder-key ... --builder-threshold N`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvenancePolicy {
    /// The builders' public keys (PEM SubjectPublicKeyInfo).
    pub builder_keys: Vec<String>,
    /// How many of them must have signed.
    pub threshold: usize,
}

fn refuse(message: String) -> InstallError {
    InstallError::new("provenance", message)
}

impl ProvenancePolicy {
    /// Checks the keys and the threshold.
    pub fn new(builder_keys: Vec<String>, threshold: usize) -> Result<Self, String> {
        if threshold == 0 || threshold > builder_keys.len() {
            return Err(format!(
                "--builder-threshold {threshold}: between 1 and the {} --builder-key given",
                builder_keys.len()
            ));
        }
        let policy = ProvenancePolicy {
            builder_keys,
            threshold,
        };
        policy.keys().map_err(|e| e.to_string())?;
        Ok(policy)
    }

    fn keys(&self) -> Result<Vec<PublicKey>, InstallError> {
        self.builder_keys
            .iter()
            .map(|pem| {
                sealwright_crypto::keyfile::read_public_key(pem)
                    .map_err(|e| refuse(format!("a builder key in client.toml: {e}")))
            })
            .collect()
    }
}

/// Requires trusted provenance of `artifact` (listed at `artifact_path`); returns the
/// builder's id as the provenance names it.
pub(crate) fn require_provenance<F: Fetcher>(
    updater: &mut Updater<F>,
    artifact_path: &str,
    artifact: &sealwright_tuf::TargetFile,
    policy: &ProvenancePolicy,
) -> Result<String, InstallError> {
    let nothing = "; nothing was installed";
    let link = artifact
        .custom
        .as_ref()
        .and_then(|c| c.get("sealwright")?.get("evidence")?.get("provenance"))
        .ok_or_else(|| {
            refuse(format!(
                "{artifact_path} has no provenance in its signed entry (build it with `sealwright build --stage`){nothing}"
            ))
        })?;
    let (Some(path), Some(claimed)) = (
        link.get("path").and_then(|p| p.as_str()),
        link.get("sha256").and_then(|p| p.as_str()),
    ) else {
        return Err(refuse(format!(
            "{artifact_path}: its provenance link is malformed{nothing}"
        )));
    };
    let found = updater
        .get_targetinfo(path)
        .map_err(|e| refuse(format!("looking up the provenance {path}: {e}")))?
        .ok_or_else(|| {
            refuse(format!(
                "the provenance {path} is not in the signed metadata{nothing}"
            ))
        })?;
    if found.target.hashes.get("sha256").map(String::as_str) != Some(claimed) {
        return Err(refuse(format!(
            "the provenance {path} listed is not the one {artifact_path} names{nothing}"
        )));
    }
    if found.target.length > MAX_ENVELOPE_BYTES as u64 {
        return Err(refuse(format!(
            "the provenance {path} is too large{nothing}"
        )));
    }
    let url = updater
        .target_url(&found.target, path)
        .map_err(|e| refuse(e.to_string()))?;
    let bytes = updater
        .fetcher()
        .fetch(&url, found.target.length)
        .map_err(|e| refuse(format!("downloading the provenance: {e}")))?;
    let mut hasher = found.target.hasher();
    hasher.update(&bytes);
    found
        .target
        .check_digests(&hasher.finish())
        .map_err(|e| refuse(format!("the provenance {path}: {e}{nothing}")))?;
    let envelope = Envelope::parse(&bytes)
        .map_err(|e| refuse(format!("the provenance {path}: {e}{nothing}")))?;
    let sha256 = artifact
        .hashes
        .get("sha256")
        .ok_or_else(|| refuse(format!("{artifact_path} has no sha256 to match{nothing}")))?;
    let accepted = check_provenance(&envelope, &policy.keys()?, policy.threshold, sha256)
        .map_err(|e| match e {
            ProvenanceError::Envelope(e) => refuse(format!(
                "the provenance of {artifact_path} is not signed by the builders this device trusts ({e}){nothing}"
            )),
            ProvenanceError::OtherBytes(_) => refuse(format!(
                "the provenance is about other bytes than {artifact_path} (sha256 {sha256}){nothing}"
            )),
            other => refuse(format!("the provenance {path}: {other}{nothing}")),
        })?;
    Ok(accepted.provenance.run_details.builder.id)
}
