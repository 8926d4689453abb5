//! The one check of signed provenance that every consumer runs — a device (C7),
//! `verify-release`, `verify-provenance` — so none has a second, simpler checker.
//!
//! [`check_provenance`] accepts `envelope` only when it is a DSSE envelope signed by
//! `threshold` unique keys of `builders`, carrying an in-toto Statement v1 whose predicate
//! is SLSA Provenance v1, one of whose subjects has the SHA-256 `artifact_sha256`.

use sealwright_crypto::PublicKey;

use crate::dsse::{Envelope, IN_TOTO_PAYLOAD_TYPE};
use crate::slsa::{Provenance, PROVENANCE_V1};
use crate::statement::Statement;

/// Why provenance is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProvenanceError {
    /// Not a DSSE envelope, or not signed by enough trusted builders.
    #[error("{0}")]
    Envelope(#[from] crate::dsse::DsseError),
    /// The envelope carries something other than an in-toto statement.
    #[error("the envelope carries {0:?}, not an in-toto statement")]
    PayloadType(String),
    /// Not a valid statement.
    #[error("{0}")]
    Statement(#[from] crate::statement::StatementError),
    /// Another predicate than SLSA Provenance v1, or one that does not parse.
    #[error("not SLSA Provenance v1: {0}")]
    Predicate(String),
    /// The provenance is about other bytes.
    #[error("the provenance is about other bytes (no subject has sha256 {0})")]
    OtherBytes(String),
}

/// What accepted provenance says.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The statement, as signed.
    pub statement: Statement,
    /// Its SLSA predicate.
    pub provenance: Provenance,
    /// Key ids of the builders whose signature verified.
    pub signed_by: Vec<String>,
}

/// What a verified (or knowingly unverified) envelope payload says as provenance: an
/// in-toto Statement v1 whose predicate is SLSA Provenance v1. [`check_provenance`] calls it
/// after the signature check; a rebuilder or `stage-build` reading a provenance file calls
/// it on its own.
pub fn read_provenance(
    payload_type: &str,
    payload: &[u8],
) -> Result<(Statement, Provenance), ProvenanceError> {
    if payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(ProvenanceError::PayloadType(payload_type.to_owned()));
    }
    let statement = Statement::parse(payload)?;
    if statement.predicate_type != PROVENANCE_V1 {
        return Err(ProvenanceError::Predicate(statement.predicate_type));
    }
    let provenance: Provenance = serde_json::from_value(statement.predicate.clone())
        .map_err(|e| ProvenanceError::Predicate(e.to_string()))?;
    Ok((statement, provenance))
}

/// The check (see the module documentation).
pub fn check_provenance(
    envelope: &Envelope,
    builders: &[PublicKey],
    threshold: usize,
    artifact_sha256: &str,
) -> Result<Accepted, ProvenanceError> {
    let verified = envelope.verify(builders, threshold)?;
    let (statement, provenance) = read_provenance(verified.payload_type, verified.payload)?;
    if statement.subjects_with_sha256(artifact_sha256).is_empty() {
        return Err(ProvenanceError::OtherBytes(artifact_sha256.to_owned()));
    }
    Ok(Accepted {
        statement,
        provenance,
        signed_by: verified.keyids,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::statement::ResourceDescriptor;
    use sealwright_crypto::{Algorithm, PrivateKey, Signer as _};

    fn envelope(key: &PrivateKey, predicate_type: &str, sha256: &str) -> Envelope {
        let predicate = serde_json::json!({
            "buildDefinition": {"buildType": "https://sealwright.dev/build/v1", "externalParameters": {}},
            "runDetails": {"builder": {"id": "https://builder.example"}},
        });
        let statement = Statement::new(
            vec![ResourceDescriptor::file("a", sha256)],
            predicate_type,
            predicate,
        );
        Envelope::sign(IN_TOTO_PAYLOAD_TYPE, statement.to_bytes(), &[key]).unwrap()
    }

    #[test]
    fn each_way_provenance_can_be_wrong_is_refused() {
        let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let other = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let sha = "ab".repeat(32);
        let trusted = [key.public_key().clone()];
        let ok = check_provenance(&envelope(&key, PROVENANCE_V1, &sha), &trusted, 1, &sha).unwrap();
        assert_eq!(
            ok.provenance.run_details.builder.id,
            "https://builder.example"
        );
        assert!(matches!(
            check_provenance(&envelope(&other, PROVENANCE_V1, &sha), &trusted, 1, &sha),
            Err(ProvenanceError::Envelope(_))
        ));
        assert!(matches!(
            check_provenance(
                &envelope(&key, PROVENANCE_V1, &sha),
                &trusted,
                1,
                &"cd".repeat(32)
            ),
            Err(ProvenanceError::OtherBytes(_))
        ));
        assert!(matches!(
            check_provenance(
                &envelope(&key, "https://example.com/other/v1", &sha),
                &trusted,
                1,
                &sha
            ),
            Err(ProvenanceError::Predicate(_))
        ));
    }
}
