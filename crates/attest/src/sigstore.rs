//! Keyed Sigstore bundles (protobuf-specs `sigstore_bundle.proto`, media type
//! `application/vnd.dev.sigstore.bundle.v0.3+json`): the same DSSE envelope, in the form
//! cosign and sigstore-go read, for a self-managed key — no certificate, no transparency
//! log entry.
//!
//! Guarantees:
//! - the key hint is cosign's and sigstore-go's: base64 of the SHA-256 of the key's DER
//!   SubjectPublicKeyInfo, and the DSSE signature's `keyid` equals it (the bundle
//!   specification requires that when the hint is used);
//! - a bundle carries exactly one signature (the specification allows no more), which must
//!   verify under the given key before the bundle is written.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::json;

use sealwright_crypto::PublicKey;

use crate::dsse::{DsseError, Envelope};

/// The bundle media type written.
pub const BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// Sigstore's hint for `key`: base64(SHA-256(SPKI DER)).
pub fn key_hint(key: &PublicKey) -> Option<String> {
    Some(STANDARD.encode(sealwright_crypto::digest::sha256(&key.to_spki_der()?)))
}

/// `envelope`, signed once by `key`, as a keyed Sigstore bundle v0.3 (JSON).
pub fn keyed_dsse_bundle(envelope: &Envelope, key: &PublicKey) -> Result<Vec<u8>, DsseError> {
    let [signature] = envelope.signatures.as_slice() else {
        return Err(DsseError::Malformed(format!(
            "a Sigstore bundle carries exactly one signature, not {}",
            envelope.signatures.len()
        )));
    };
    envelope.verify(std::slice::from_ref(key), 1)?;
    let hint =
        key_hint(key).ok_or_else(|| DsseError::Malformed("the key does not decode".into()))?;
    let bundle = json!({
        "mediaType": BUNDLE_V03,
        "verificationMaterial": {
            "publicKey": {"hint": hint},
            "tlogEntries": [],
        },
        "dsseEnvelope": {
            "payload": STANDARD.encode(&envelope.payload),
            "payloadType": envelope.payload_type,
            "signatures": [{"sig": STANDARD.encode(&signature.sig), "keyid": hint}],
        },
    });
    Ok(serde_json::to_vec_pretty(&bundle).unwrap_or_default())
}
