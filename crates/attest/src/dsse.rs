//! DSSE v1 envelopes (secure-systems-lab/dsse `protocol.md` and `envelope.md`, v1.0.2).
//!
//! Guarantees, each enforced in one function:
//! - [`pae`]: what is signed is exactly `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`,
//!   LEN the *byte* length in ASCII decimal — so a signature never covers a different payload
//!   type or body than the one it is checked with (the payload type is signed too);
//! - [`Envelope::verify`]: the threshold counts *unique trusted keys* with a verifying
//!   signature — one key signing twice, or listed twice under two key ids, counts once; a
//!   signature's `keyid` is only a hint (every trusted key is tried); an envelope with no
//!   signatures or a threshold of zero verifies nothing; the payload returned is the bytes
//!   that were verified, never a re-encoding;
//! - [`Envelope::parse`]: size-capped; standard and URL-safe base64, padded or not (verifiers
//!   MUST accept both); unknown fields ignored, as the spec requires of consumers;
//! - [`Envelope::sign`]: every signature carries its key's id (securesystemslib refuses a
//!   signature without one) and ECDSA signatures are DER, as securesystemslib, OpenSSL and
//!   Sigstore expect.
//!
//! Decision recorded: ECDSA signatures are accepted in DER only. The spec's own example
//! (`spec-ecdsa-p256-raw` in `tests/vectors/dsse`) is raw r||s; like securesystemslib we
//! refuse it rather than guess an encoding.
//!
//! Not guaranteed here: what the payload says. [`crate::statement`] reads it.

use std::collections::BTreeSet;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use serde::{Deserialize, Serialize};

use sealwright_crypto::{PublicKey, Signer};

/// Largest envelope parsed.
pub const MAX_ENVELOPE_BYTES: usize = 16 * 1024 * 1024;
/// Most signatures an envelope may carry.
pub const MAX_SIGNATURES: usize = 64;
/// The payload type of in-toto statements.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// Why an envelope could not be read, made or trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DsseError {
    /// Larger than [`MAX_ENVELOPE_BYTES`].
    #[error("the envelope is larger than {MAX_ENVELOPE_BYTES} bytes")]
    TooLarge,
    /// Not a DSSE envelope.
    #[error("not a DSSE envelope: {0}")]
    Malformed(String),
    /// No signatures at all: nothing vouches for the payload.
    #[error("the envelope carries no signature")]
    Unsigned,
    /// Fewer trusted keys signed than required (a forged, tampered or re-typed envelope,
    /// or one signed by keys not trusted here).
    #[error("signed by {got} of the trusted keys, {need} required")]
    Threshold {
        /// Trusted keys whose signature verified.
        got: usize,
        /// Required.
        need: usize,
    },
    /// A threshold of zero would trust anything.
    #[error("a threshold of 0 trusts anything: at least one signature is required")]
    ZeroThreshold,
    /// The signer failed.
    #[error("signing: {0}")]
    Sign(String),
}

/// One signature of an envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeSignature {
    /// The signer's key id, a hint only (absent and empty are the same).
    pub keyid: Option<String>,
    /// The signature bytes.
    pub sig: Vec<u8>,
}

/// A DSSE envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// What the payload is (`application/vnd.in-toto+json` for statements).
    pub payload_type: String,
    /// The serialized body.
    pub payload: Vec<u8>,
    /// Its signatures.
    pub signatures: Vec<EnvelopeSignature>,
}

/// What verified: the payload exactly as signed, and the ids of the trusted keys that
/// signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<'a> {
    /// The payload type, as signed.
    pub payload_type: &'a str,
    /// The payload bytes, as signed.
    pub payload: &'a [u8],
    /// Key ids (securesystemslib's) of the trusted keys whose signature verified.
    pub keyids: Vec<String>,
}

/// DSSE's pre-authentication encoding of `payload` under `payload_type`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload_type.len() + payload.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

#[derive(Serialize, Deserialize)]
struct EnvelopeJson {
    payload: String,
    #[serde(rename = "payloadType")]
    payload_type: String,
    #[serde(default)]
    signatures: Vec<SignatureJson>,
}

#[derive(Serialize, Deserialize)]
struct SignatureJson {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    keyid: String,
    sig: String,
}

/// Base64 as the spec lets signers write it: standard or URL-safe, padded or not.
fn decode_b64(text: &str, what: &str) -> Result<Vec<u8>, DsseError> {
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    GeneralPurpose::new(&alphabet::STANDARD, config)
        .decode(text)
        .or_else(|_| GeneralPurpose::new(&alphabet::URL_SAFE, config).decode(text))
        .map_err(|_| DsseError::Malformed(format!("{what} is not base64")))
}

impl Envelope {
    /// Signs `payload` as `payload_type` with each of `signers`.
    pub fn sign(
        payload_type: &str,
        payload: Vec<u8>,
        signers: &[&dyn Signer],
    ) -> Result<Envelope, DsseError> {
        let message = pae(payload_type, &payload);
        let signatures = signers
            .iter()
            .map(|s| {
                Ok(EnvelopeSignature {
                    keyid: Some(s.keyid().to_owned()),
                    sig: s
                        .sign(&message)
                        .map_err(|e| DsseError::Sign(e.to_string()))?,
                })
            })
            .collect::<Result<Vec<_>, DsseError>>()?;
        Ok(Envelope {
            payload_type: payload_type.to_owned(),
            payload,
            signatures,
        })
    }

    /// Reads an envelope (JSON, the only encoding the spec recommends).
    pub fn parse(bytes: &[u8]) -> Result<Envelope, DsseError> {
        if bytes.len() > MAX_ENVELOPE_BYTES {
            return Err(DsseError::TooLarge);
        }
        let json: EnvelopeJson =
            serde_json::from_slice(bytes).map_err(|e| DsseError::Malformed(e.to_string()))?;
        if json.signatures.len() > MAX_SIGNATURES {
            return Err(DsseError::Malformed(format!(
                "{} signatures (at most {MAX_SIGNATURES})",
                json.signatures.len()
            )));
        }
        Ok(Envelope {
            payload: decode_b64(&json.payload, "the payload")?,
            payload_type: json.payload_type,
            signatures: json
                .signatures
                .into_iter()
                .map(|s| {
                    Ok(EnvelopeSignature {
                        keyid: Some(s.keyid).filter(|k| !k.is_empty()),
                        sig: decode_b64(&s.sig, "a signature")?,
                    })
                })
                .collect::<Result<_, DsseError>>()?,
        })
    }

    /// The envelope as JSON (standard base64, every field in the spec's names).
    pub fn to_json(&self) -> Vec<u8> {
        let json = EnvelopeJson {
            payload: STANDARD.encode(&self.payload),
            payload_type: self.payload_type.clone(),
            signatures: self
                .signatures
                .iter()
                .map(|s| SignatureJson {
                    keyid: s.keyid.clone().unwrap_or_default(),
                    sig: STANDARD.encode(&s.sig),
                })
                .collect(),
        };
        // Serialising plain strings and vectors cannot fail.
        serde_json::to_vec(&json).unwrap_or_default()
    }

    /// Verifies that at least `threshold` of the `trusted` keys signed this payload under
    /// this payload type.
    pub fn verify(
        &self,
        trusted: &[PublicKey],
        threshold: usize,
    ) -> Result<Verified<'_>, DsseError> {
        if threshold == 0 {
            return Err(DsseError::ZeroThreshold);
        }
        if self.signatures.is_empty() {
            return Err(DsseError::Unsigned);
        }
        let message = pae(&self.payload_type, &self.payload);
        // One key is one vote, whatever ids it is listed under.
        let mut counted = BTreeSet::new();
        let mut keyids = Vec::new();
        for key in trusted {
            let Some(material) = key.material() else {
                continue;
            };
            if counted.contains(&material) {
                continue;
            }
            if self
                .signatures
                .iter()
                .any(|s| key.verify(&message, &s.sig).is_ok())
            {
                counted.insert(material);
                keyids.push(key.keyid());
            }
        }
        if keyids.len() < threshold {
            return Err(DsseError::Threshold {
                got: keyids.len(),
                need: threshold,
            });
        }
        Ok(Verified {
            payload_type: &self.payload_type,
            payload: &self.payload,
            keyids,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn pae_is_the_spec_example() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
        // LEN is the byte length: "é" is two bytes.
        assert!(pae("é", b"").starts_with(b"DSSEv1 2 \xc3\xa9 0 "));
    }

    #[test]
    fn signing_then_verifying_round_trips_and_one_key_counts_once() {
        let a =
            sealwright_crypto::PrivateKey::generate(sealwright_crypto::Algorithm::Ed25519).unwrap();
        let b =
            sealwright_crypto::PrivateKey::generate(sealwright_crypto::Algorithm::EcdsaP256Sha256)
                .unwrap();
        let env = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, b"{}".to_vec(), &[&a, &b, &a]).unwrap();
        let parsed = Envelope::parse(&env.to_json()).unwrap();
        assert_eq!(parsed, env);
        let keys = [a.public_key().clone(), b.public_key().clone()];
        let ok = parsed.verify(&keys, 2).unwrap();
        assert_eq!(ok.payload, b"{}");
        assert_eq!(ok.keyids.len(), 2);
        // The same key twice in the trusted list is still one key.
        let same = [a.public_key().clone(), a.public_key().clone()];
        assert_eq!(
            parsed.verify(&same, 2).unwrap_err(),
            DsseError::Threshold { got: 1, need: 2 }
        );
        assert_eq!(
            parsed.verify(&keys, 0).unwrap_err(),
            DsseError::ZeroThreshold
        );
        // Another payload type under the same signatures verifies nothing.
        let mut retyped = parsed.clone();
        retyped.payload_type = "application/json".into();
        assert!(retyped.verify(&keys, 1).is_err());
    }
}
