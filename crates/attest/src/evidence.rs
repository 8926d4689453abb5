//! What a release must carry before it is published (repository policy) or installed
//! (device policy, C7): SLSA provenance from trusted builders and, optionally, k
//! reproductions by distinct trusted rebuilders (P7). One check, [`check_attestations`],
//! serves `publish`, the server's push check and devices.
//!
//! How a release names its evidence: the signed `custom.sealwright.evidence` object of each
//! artifact's targets entry maps a kind to a target path and its SHA-256 ([`EvidenceLinks`]).
//! Kinds: `provenance`, `build-log`, `sbom`, and one `reproduction:KEYID` per rebuilder.
//! The link is signed with the artifact, so a mirror cannot swap the evidence; the evidence
//! file itself is a target like any other, checked against its own signed entry.
//!
//! Guarantees of [`check_attestations`]:
//! - the provenance is accepted by [`crate::provenance::check_provenance`] for the
//!   artifact's exact SHA-256;
//! - each reproduction counted is a DSSE envelope signed by a trusted rebuilder, carrying an
//!   in-toto Statement v1 with the [`REPRODUCTION_V1`] predicate, one of whose subjects has
//!   the artifact's SHA-256, and which names this very provenance (its envelope's SHA-256):
//!   a reproduction of another build of the same bytes is that build's, not this one's;
//! - reproductions are counted by rebuilder key: each attestation counts once, for one key,
//!   and a key counts once however many attestations it signed — two files from one
//!   rebuilder are not two independent reproductions.
//!
//! Not guaranteed: that rebuilders are independent people or machines — that is who holds
//! the keys the policy names.

use std::collections::BTreeSet;

use serde_json::Value;

use sealwright_crypto::PublicKey;

use crate::dsse::{Envelope, IN_TOTO_PAYLOAD_TYPE};
use crate::provenance::{check_provenance, Accepted, ProvenanceError};
use crate::reproduction::{Reproduction, REPRODUCTION_V1};
use crate::statement::Statement;

/// The evidence kind of the provenance.
pub const PROVENANCE: &str = "provenance";
/// The evidence kind of one reproduction: this prefix, then the rebuilder's key id.
pub const REPRODUCTION_PREFIX: &str = "reproduction:";

/// Why a signed entry's evidence links, or a reproduction, cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    /// `custom.sealwright.evidence` is not an object of `{path, sha256}` links.
    #[error("{0}")]
    Links(String),
    /// The envelope carries something other than an in-toto statement.
    #[error("carries {0:?}, not an in-toto statement")]
    PayloadType(String),
    /// Not a valid statement.
    #[error("{0}")]
    Statement(#[from] crate::statement::StatementError),
    /// Another predicate than a reproduction, or one that does not parse.
    #[error("not a reproduction: {0}")]
    Predicate(String),
    /// A reproduction of another build's provenance.
    #[error("a reproduction of another build's provenance (sha256 {0})")]
    OtherBuild(String),
}

/// One evidence file a signed entry names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Its target path.
    pub path: String,
    /// SHA-256 of its bytes.
    pub sha256: String,
}

/// The evidence a signed targets entry links to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvidenceLinks {
    /// Every kind, in key order.
    pub all: Vec<(String, Link)>,
}

impl EvidenceLinks {
    /// The links in an entry's `custom` (none when it has no evidence). A malformed link is
    /// an error, never skipped: the signer said something we cannot read.
    pub fn from_custom(custom: Option<&Value>) -> Result<Self, EvidenceError> {
        let Some(evidence) = custom
            .and_then(|c| c.get("sealwright"))
            .and_then(|s| s.get("evidence"))
        else {
            return Ok(Self::default());
        };
        let map = evidence.as_object().ok_or_else(|| {
            EvidenceError::Links("custom.sealwright.evidence is not an object".into())
        })?;
        let mut all = Vec::with_capacity(map.len());
        for (kind, link) in map {
            let (Some(path), Some(sha256)) = (
                link.get("path").and_then(Value::as_str),
                link.get("sha256").and_then(Value::as_str),
            ) else {
                return Err(EvidenceError::Links(format!(
                    "the {kind} link has no path and sha256"
                )));
            };
            if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(EvidenceError::Links(format!(
                    "the {kind} link's sha256 is not 64 hex digits"
                )));
            }
            all.push((
                kind.clone(),
                Link {
                    path: path.to_owned(),
                    sha256: sha256.to_ascii_lowercase(),
                },
            ));
        }
        Ok(EvidenceLinks { all })
    }

    /// The provenance link.
    pub fn provenance(&self) -> Option<&Link> {
        self.get(PROVENANCE)
    }

    /// The reproduction links.
    pub fn reproductions(&self) -> impl Iterator<Item = &Link> {
        self.all
            .iter()
            .filter(|(kind, _)| kind.starts_with(REPRODUCTION_PREFIX))
            .map(|(_, link)| link)
    }

    /// The link of one kind.
    pub fn get(&self, kind: &str) -> Option<&Link> {
        self.all.iter().find(|(k, _)| k == kind).map(|(_, l)| l)
    }

    /// Whether some link names `path` with `sha256`.
    pub fn names(&self, path: &str, sha256: &str) -> bool {
        self.all
            .iter()
            .any(|(_, l)| l.path == path && l.sha256.eq_ignore_ascii_case(sha256))
    }
}

/// What must vouch for a release.
#[derive(Debug, Clone)]
pub struct Requirement {
    /// Builders whose provenance counts.
    pub builders: Vec<PublicKey>,
    /// How many of them must sign the provenance.
    pub builder_threshold: usize,
    /// Rebuilders whose reproductions count.
    pub rebuilders: Vec<PublicKey>,
    /// How many distinct rebuilders must have reproduced the artifact (0: none required).
    pub reproductions: usize,
}

/// Why a release's attestations are not enough.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttestationError {
    /// The provenance is not accepted.
    #[error("its provenance is not accepted: {0}")]
    Provenance(#[from] ProvenanceError),
    /// Fewer trusted reproductions than required; each refused one says why.
    #[error("{counted} of the {required} reproductions required by trusted rebuilders{}", refused_list(.refused))]
    TooFewReproductions {
        /// Reproductions that counted.
        counted: usize,
        /// The requirement.
        required: usize,
        /// Why each other attestation did not count.
        refused: Vec<String>,
    },
}

fn refused_list(refused: &[String]) -> String {
    if refused.is_empty() {
        String::new()
    } else {
        format!(" (not counted: {})", refused.join("; "))
    }
}

/// What the accepted attestations say.
#[derive(Debug, Clone)]
pub struct Attested {
    /// The accepted provenance.
    pub provenance: Accepted,
    /// Key ids of the rebuilders counted, one per reproduction.
    pub reproduced_by: Vec<String>,
}

/// What an envelope payload says as a reproduction of the provenance whose envelope bytes
/// have `provenance_sha256`: an in-toto Statement v1 with the [`REPRODUCTION_V1`]
/// predicate naming that provenance. Signatures are the caller's business
/// ([`check_attestations`] checks them first; `stage-build` stages, the check comes at
/// publish).
pub fn read_reproduction(
    payload_type: &str,
    payload: &[u8],
    provenance_sha256: &str,
) -> Result<(Statement, Reproduction), EvidenceError> {
    if payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(EvidenceError::PayloadType(payload_type.to_owned()));
    }
    let statement = Statement::parse(payload)?;
    if statement.predicate_type != REPRODUCTION_V1 {
        return Err(EvidenceError::Predicate(format!(
            "predicate {:?}",
            statement.predicate_type
        )));
    }
    let reproduction: Reproduction = serde_json::from_value(statement.predicate.clone())
        .map_err(|e| EvidenceError::Predicate(format!("the predicate does not parse: {e}")))?;
    if !reproduction
        .provenance
        .sha256
        .eq_ignore_ascii_case(provenance_sha256)
    {
        return Err(EvidenceError::OtherBuild(reproduction.provenance.sha256));
    }
    Ok((statement, reproduction))
}

/// Why one reproduction does not count, or the trusted rebuilder keys that signed it.
fn check_reproduction(
    bytes: &[u8],
    rebuilders: &[PublicKey],
    artifact_sha256: &str,
    provenance_sha256: &str,
) -> Result<Vec<String>, String> {
    let envelope = Envelope::parse(bytes).map_err(|e| e.to_string())?;
    let verified = envelope
        .verify(rebuilders, 1)
        .map_err(|e| format!("not signed by a trusted rebuilder ({e})"))?;
    let (statement, _) =
        read_reproduction(verified.payload_type, verified.payload, provenance_sha256)
            .map_err(|e| e.to_string())?;
    if statement.subjects_with_sha256(artifact_sha256).is_empty() {
        return Err("a reproduction of other bytes".into());
    }
    Ok(verified.keyids)
}

/// The check (see the module documentation). `provenance` is the provenance file's bytes,
/// `reproductions` the bytes of each reproduction the release links.
pub fn check_attestations(
    requirement: &Requirement,
    artifact_sha256: &str,
    provenance: &[u8],
    reproductions: &[&[u8]],
) -> Result<Attested, AttestationError> {
    let envelope = Envelope::parse(provenance).map_err(ProvenanceError::from)?;
    let accepted = check_provenance(
        &envelope,
        &requirement.builders,
        requirement.builder_threshold,
        artifact_sha256,
    )?;
    let provenance_sha256 = sealwright_crypto::digest::sha256_hex(provenance);
    let mut counted: BTreeSet<String> = BTreeSet::new();
    let mut reproduced_by = Vec::new();
    let mut refused = Vec::new();
    for bytes in reproductions {
        match check_reproduction(
            bytes,
            &requirement.rebuilders,
            artifact_sha256,
            &provenance_sha256,
        ) {
            Ok(keyids) => match keyids.into_iter().find(|k| !counted.contains(k)) {
                Some(keyid) => {
                    counted.insert(keyid.clone());
                    reproduced_by.push(keyid);
                }
                None => refused.push("a second reproduction by the same rebuilder".into()),
            },
            Err(why) => refused.push(why),
        }
    }
    if reproduced_by.len() < requirement.reproductions {
        return Err(AttestationError::TooFewReproductions {
            counted: reproduced_by.len(),
            required: requirement.reproductions,
            refused,
        });
    }
    Ok(Attested {
        provenance: accepted,
        reproduced_by,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::reproduction::{RebuiltSource, ReproducedProvenance};
    use crate::slsa::PROVENANCE_V1;
    use crate::statement::ResourceDescriptor;
    use sealwright_crypto::{Algorithm, PrivateKey, Signer as _};

    fn sign(keys: &[&PrivateKey], predicate_type: &str, predicate: Value, sha: &str) -> Vec<u8> {
        let statement = Statement::new(
            vec![ResourceDescriptor::file("app", sha)],
            predicate_type,
            predicate,
        );
        let signers: Vec<&dyn sealwright_crypto::Signer> = keys
            .iter()
            .map(|k| *k as &dyn sealwright_crypto::Signer)
            .collect();
        Envelope::sign(IN_TOTO_PAYLOAD_TYPE, statement.to_bytes(), &signers)
            .unwrap()
            .to_json()
    }

    fn provenance(builder: &PrivateKey, sha: &str) -> Vec<u8> {
        let predicate = serde_json::json!({
            "buildDefinition": {"buildType": "https://sealwright.dev/build/v1", "externalParameters": {}},
            "runDetails": {"builder": {"id": "https://builder.example"}},
        });
        sign(&[builder], PROVENANCE_V1, predicate, sha)
    }

    fn reproduction(rebuilders: &[&PrivateKey], sha: &str, of: &[u8]) -> Vec<u8> {
        let predicate = serde_json::to_value(Reproduction {
            provenance: ReproducedProvenance {
                sha256: sealwright_crypto::digest::sha256_hex(of),
                builder_id: "https://builder.example".into(),
            },
            source: RebuiltSource {
                uri: "git+https://example.com/app".into(),
                git_commit: "a".repeat(40),
                git_tree: "b".repeat(40),
            },
            rebuilder_id: "https://rebuilder.example".into(),
            sandbox: "bubblewrap".into(),
            started_on: "2026-11-30T00:00:00Z".into(),
            finished_on: "2026-11-30T00:01:00Z".into(),
        })
        .unwrap();
        sign(rebuilders, REPRODUCTION_V1, predicate, sha)
    }

    #[test]
    fn reproductions_count_once_per_trusted_rebuilder_of_this_build() {
        let builder = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let a = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let b = PrivateKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
        let stranger = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let sha = "ab".repeat(32);
        let prov = provenance(&builder, &sha);
        let requirement = Requirement {
            builders: vec![builder.public_key().clone()],
            builder_threshold: 1,
            rebuilders: vec![a.public_key().clone(), b.public_key().clone()],
            reproductions: 2,
        };
        let by_a = reproduction(&[&a], &sha, &prov);
        let by_b = reproduction(&[&b], &sha, &prov);
        let ok = check_attestations(&requirement, &sha, &prov, &[&by_a, &by_b]).unwrap();
        assert_eq!(ok.reproduced_by.len(), 2);

        let too_few = |reproductions: &[&[u8]]| match check_attestations(
            &requirement,
            &sha,
            &prov,
            reproductions,
        ) {
            Err(AttestationError::TooFewReproductions {
                counted, refused, ..
            }) => (counted, refused),
            other => panic!("expected too few reproductions, got {other:?}"),
        };
        // One rebuilder twice is one reproduction.
        let again_a = reproduction(&[&a], &sha, &prov);
        assert_eq!(too_few(&[&by_a, &again_a]).0, 1);
        // One envelope signed by both rebuilders is one reproduction.
        let both = reproduction(&[&a, &b], &sha, &prov);
        assert_eq!(too_few(&[&both]).0, 1);
        // An untrusted rebuilder, other bytes, another build's provenance: not counted.
        let by_stranger = reproduction(&[&stranger], &sha, &prov);
        let other_bytes = reproduction(&[&b], &"cd".repeat(32), &prov);
        let other_build = reproduction(&[&b], &sha, &provenance(&builder, &"ef".repeat(32)));
        for (forged, why) in [
            (&by_stranger, "trusted rebuilder"),
            (&other_bytes, "other bytes"),
            (&other_build, "another build"),
        ] {
            let (counted, refused) = too_few(&[&by_a, forged]);
            assert_eq!(counted, 1);
            assert!(refused[0].contains(why), "{refused:?}");
        }
        // A provenance statement is not a reproduction.
        assert!(too_few(&[&by_a, &provenance(&b, &sha)]).1[0].contains("predicate"));
        // Without trusted provenance nothing counts.
        assert!(matches!(
            check_attestations(&requirement, &sha, &provenance(&a, &sha), &[&by_a, &by_b]),
            Err(AttestationError::Provenance(_))
        ));
    }

    #[test]
    fn links_are_read_from_the_signed_custom_field() {
        let sha = "AB".repeat(32);
        let custom = serde_json::json!({"sealwright": {"evidence": {
            "provenance": {"path": "app/1.0.0/provenance.intoto.json", "sha256": sha},
            "reproduction:k1": {"path": "app/1.0.0/reproduction.k1.intoto.json", "sha256": sha},
            "sbom": {"path": "app/1.0.0/sbom.cdx.json", "sha256": sha},
        }}});
        let links = EvidenceLinks::from_custom(Some(&custom)).unwrap();
        assert_eq!(
            links.provenance().unwrap().path,
            "app/1.0.0/provenance.intoto.json"
        );
        assert_eq!(links.reproductions().count(), 1);
        assert!(links.names("app/1.0.0/sbom.cdx.json", &"ab".repeat(32)));
        assert_eq!(
            EvidenceLinks::from_custom(None).unwrap(),
            EvidenceLinks::default()
        );
        let bad = serde_json::json!({"sealwright": {"evidence": {"provenance": {"path": "x"}}}});
        assert!(EvidenceLinks::from_custom(Some(&bad)).is_err());
    }
}
