//! TUF public keys as they appear in metadata, their key ids, and signature verification.
//!
//! A key is kept exactly as received (unknown fields such as `keyid_hash_algorithms` or
//! `x-tuf-on-ci-*` included) because it is part of signed metadata. Verification is strict:
//! the scheme decides the algorithm, and a key whose type and scheme do not agree, or whose
//! public part does not parse, verifies nothing.

use std::collections::BTreeMap;

use aws_lc_rs::signature::{
    UnparsedPublicKey, ECDSA_P256_SHA256_ASN1, ED25519, RSA_PSS_2048_8192_SHA256,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::canonical::to_canonical_json;

/// Longest PEM public key we accept: an RSA-8192 SPKI is about 1.5 KiB.
const MAX_PUBLIC_KEY_TEXT: usize = 16 * 1024;

/// The signature algorithms Sealwright signs and verifies with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// Ed25519 (the default).
    Ed25519,
    /// ECDSA over P-256 with SHA-256, DER-encoded signatures (`ecdsa-sha2-nistp256`).
    EcdsaP256Sha256,
    /// RSASSA-PSS with SHA-256, salt length 32 (`rsassa-pss-sha256`).
    RsaPssSha256,
}

impl Algorithm {
    /// The name users type: `ed25519`, `ecdsa`, `rsa`.
    pub fn short_name(self) -> &'static str {
        match self {
            Algorithm::Ed25519 => "ed25519",
            Algorithm::EcdsaP256Sha256 => "ecdsa",
            Algorithm::RsaPssSha256 => "rsa",
        }
    }

    /// TUF `keytype` for new keys (securesystemslib's spelling).
    pub fn keytype(self) -> &'static str {
        self.short_name()
    }

    /// TUF `scheme`.
    pub fn scheme(self) -> &'static str {
        match self {
            Algorithm::Ed25519 => "ed25519",
            Algorithm::EcdsaP256Sha256 => "ecdsa-sha2-nistp256",
            Algorithm::RsaPssSha256 => "rsassa-pss-sha256",
        }
    }
}

impl std::str::FromStr for Algorithm {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        match s {
            "ed25519" => Ok(Algorithm::Ed25519),
            "ecdsa" | "ecdsa-sha2-nistp256" | "p256" => Ok(Algorithm::EcdsaP256Sha256),
            "rsa" | "rsassa-pss-sha256" => Ok(Algorithm::RsaPssSha256),
            other => Err(KeyError::Unsupported(format!(
                "unknown key type {other:?} (expected ed25519, ecdsa or rsa)"
            ))),
        }
    }
}

/// A key that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// The key type or scheme is not one we implement.
    #[error("unsupported key: {0}")]
    Unsupported(String),
    /// The public key material does not parse.
    #[error("malformed public key: {0}")]
    Malformed(String),
}

/// A signature that does not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    /// The key itself is unusable.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The signature does not match the message under this key.
    #[error("signature does not verify")]
    Invalid,
}

/// The `keyval` object of a TUF key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyVal {
    /// Hex (Ed25519) or PEM SubjectPublicKeyInfo (ECDSA, RSA).
    pub public: String,
    /// Fields we do not interpret, kept for signature verification and re-serialisation.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// A TUF public key exactly as in metadata; unknown fields are kept in `extra`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKey {
    /// `ed25519`, `ecdsa`, `ecdsa-sha2-nistp256`, `rsa`, or something we do not support.
    pub keytype: String,
    /// The signature scheme.
    pub scheme: String,
    /// The public key material.
    pub keyval: KeyVal,
    /// Fields we do not interpret (e.g. `keyid_hash_algorithms`).
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl PublicKey {
    /// Builds a key from the algorithm and its public material in TUF's encoding.
    pub fn new(algorithm: Algorithm, public: String) -> Self {
        PublicKey {
            keytype: algorithm.keytype().to_owned(),
            scheme: algorithm.scheme().to_owned(),
            keyval: KeyVal {
                public,
                extra: BTreeMap::new(),
            },
            extra: BTreeMap::new(),
        }
    }

    /// Builds a key from a DER SubjectPublicKeyInfo (as written by OpenSSL or python-cryptography).
    pub fn from_spki_der(algorithm: Algorithm, spki: &[u8]) -> Result<Self, KeyError> {
        let public = match algorithm {
            Algorithm::Ed25519 => match spki.strip_prefix(&ED25519_SPKI_PREFIX[..]) {
                Some(raw) if raw.len() == 32 => hex::encode(raw),
                _ => {
                    return Err(KeyError::Malformed(
                        "not an Ed25519 SubjectPublicKeyInfo".into(),
                    ))
                }
            },
            Algorithm::EcdsaP256Sha256 | Algorithm::RsaPssSha256 => pem_encode("PUBLIC KEY", spki),
        };
        let key = PublicKey::new(algorithm, public);
        key.verifier_input()?;
        Ok(key)
    }

    /// securesystemslib's key id: SHA-256 (hex) of the canonical JSON of
    /// `{keytype, scheme, keyval}`. Metadata may carry other ids; those are used as given.
    pub fn keyid(&self) -> String {
        let v = serde_json::json!({
            "keytype": self.keytype,
            "scheme": self.scheme,
            "keyval": self.keyval,
        });
        // Keys hold only strings and JSON values that already parsed, so this cannot contain
        // a float unless `keyval.extra` does; fall back to hashing what we can encode.
        let bytes = to_canonical_json(&v).unwrap_or_default();
        crate::digest::sha256_hex(&bytes)
    }

    /// The algorithm this key's type and scheme name, if we support that pair.
    pub fn algorithm(&self) -> Result<Algorithm, KeyError> {
        match (self.keytype.as_str(), self.scheme.as_str()) {
            ("ed25519", "ed25519") => Ok(Algorithm::Ed25519),
            ("ecdsa" | "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256") => {
                Ok(Algorithm::EcdsaP256Sha256)
            }
            ("rsa", "rsassa-pss-sha256") => Ok(Algorithm::RsaPssSha256),
            (t, s) => Err(KeyError::Unsupported(format!(
                "keytype {t:?} with scheme {s:?}"
            ))),
        }
    }

    /// The DER SubjectPublicKeyInfo of ECDSA/RSA keys, the raw 32 bytes of Ed25519 keys.
    fn verifier_input(&self) -> Result<(Algorithm, Vec<u8>), KeyError> {
        let alg = self.algorithm()?;
        let public = self.keyval.public.as_str();
        if public.len() > MAX_PUBLIC_KEY_TEXT {
            return Err(KeyError::Malformed("public key too long".into()));
        }
        let bytes = match alg {
            Algorithm::Ed25519 => {
                let raw = hex::decode(public)
                    .map_err(|_| KeyError::Malformed("Ed25519 public key is not hex".into()))?;
                if raw.len() != 32 {
                    return Err(KeyError::Malformed(format!(
                        "Ed25519 public key is {} bytes, expected 32",
                        raw.len()
                    )));
                }
                raw
            }
            Algorithm::EcdsaP256Sha256 | Algorithm::RsaPssSha256 => {
                let (label, der) = pem_decode(public)?;
                if label != "PUBLIC KEY" {
                    return Err(KeyError::Malformed(format!(
                        "expected PUBLIC KEY PEM, got {label}"
                    )));
                }
                der
            }
        };
        Ok((alg, bytes))
    }

    /// What makes two keys the same key whatever their key ids or text encoding say: the
    /// algorithm and the decoded public material (raw Ed25519 bytes, SPKI DER otherwise).
    /// `None` when the material does not decode (such a key verifies nothing anyway).
    pub fn material(&self) -> Option<(Algorithm, Vec<u8>)> {
        self.verifier_input().ok()
    }

    /// The key as a PEM `PUBLIC KEY` (SubjectPublicKeyInfo), as OpenSSL, securesystemslib
    /// and Sigstore read it; `None` for undecodable material.
    pub fn to_spki_pem(&self) -> Option<String> {
        Some(pem_encode("PUBLIC KEY", &self.to_spki_der()?))
    }

    /// The key as a DER SubjectPublicKeyInfo (what Sigstore's key hint hashes); `None` for
    /// undecodable material.
    pub fn to_spki_der(&self) -> Option<Vec<u8>> {
        match self.material()? {
            (Algorithm::Ed25519, raw) => {
                let mut der = ED25519_SPKI_PREFIX.to_vec();
                der.extend_from_slice(&raw);
                Some(der)
            }
            (_, spki) => Some(spki),
        }
    }

    /// The modulus size of an RSA key in bits; `None` for any other algorithm or material
    /// aws-lc does not accept.
    pub fn rsa_bits(&self) -> Option<usize> {
        match self.material()? {
            (Algorithm::RsaPssSha256, spki) => aws_lc_rs::rsa::PublicEncryptingKey::from_der(&spki)
                .ok()
                .map(|k| k.key_size_bits()),
            _ => None,
        }
    }

    /// The raw 32-byte public key of an Ed25519 key (what signed notes and cosignatures
    /// carry); `None` for any other algorithm or undecodable material.
    pub fn ed25519_bytes(&self) -> Option<[u8; 32]> {
        match self.material()? {
            (Algorithm::Ed25519, raw) => raw.try_into().ok(),
            _ => None,
        }
    }

    /// Checks that this key's public material parses for its algorithm.
    pub fn validate(&self) -> Result<(), KeyError> {
        let (alg, bytes) = self.verifier_input()?;
        let ok = match alg {
            Algorithm::Ed25519 => true,
            Algorithm::EcdsaP256Sha256 => {
                aws_lc_rs::signature::ParsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &bytes).is_ok()
            }
            Algorithm::RsaPssSha256 => {
                aws_lc_rs::signature::ParsedPublicKey::new(&RSA_PSS_2048_8192_SHA256, &bytes)
                    .is_ok()
            }
        };
        if ok {
            Ok(())
        } else {
            Err(KeyError::Malformed(format!(
                "{} public key does not parse",
                alg.short_name()
            )))
        }
    }

    /// Verifies `sig` (raw bytes) over `msg`.
    ///
    /// RSA keys below 2048 bits are refused by the algorithm itself (`RSA_PSS_2048_8192`).
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), SignatureError> {
        let (alg, bytes) = self.verifier_input()?;
        let result = match alg {
            Algorithm::Ed25519 => UnparsedPublicKey::new(&ED25519, &bytes).verify(msg, sig),
            Algorithm::EcdsaP256Sha256 => {
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &bytes).verify(msg, sig)
            }
            Algorithm::RsaPssSha256 => {
                UnparsedPublicKey::new(&RSA_PSS_2048_8192_SHA256, &bytes).verify(msg, sig)
            }
        };
        result.map_err(|_| SignatureError::Invalid)
    }
}

/// The DER SubjectPublicKeyInfo of an Ed25519 key: this fixed 12-byte prefix, then the key.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// PEM with 64-column lines and a trailing newline, as python-cryptography writes it (so a key
/// we generate is byte-identical in metadata to the same key written by securesystemslib).
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Decodes one PEM block; tolerant of line width and surrounding whitespace.
pub fn pem_decode(text: &str) -> Result<(String, Vec<u8>), KeyError> {
    use base64::Engine;
    let text = text.trim();
    let rest = text
        .strip_prefix("-----BEGIN ")
        .ok_or_else(|| KeyError::Malformed("missing PEM BEGIN line".into()))?;
    let (label, rest) = rest
        .split_once("-----")
        .ok_or_else(|| KeyError::Malformed("malformed PEM BEGIN line".into()))?;
    let end = format!("-----END {label}-----");
    let body = rest
        .strip_suffix(end.as_str())
        .ok_or_else(|| KeyError::Malformed(format!("missing PEM END line for {label}")))?;
    let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .map_err(|_| KeyError::Malformed(format!("PEM {label} body is not base64")))?;
    Ok((label.to_owned(), der))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyid_matches_securesystemslib_definition() {
        let k = PublicKey::new(Algorithm::Ed25519, "00".repeat(32));
        let expected = crate::digest::sha256_hex(
            format!(
                r#"{{"keytype":"ed25519","keyval":{{"public":"{}"}},"scheme":"ed25519"}}"#,
                "00".repeat(32)
            )
            .as_bytes(),
        );
        assert_eq!(k.keyid(), expected);
    }

    #[test]
    fn unsupported_and_malformed_keys_verify_nothing() {
        let mut k = PublicKey::new(Algorithm::Ed25519, "zz".into());
        assert!(matches!(
            k.verify(b"m", b"s"),
            Err(SignatureError::Key(KeyError::Malformed(_)))
        ));
        k.scheme = "rsassa-pss-sha256".into();
        assert!(matches!(
            k.verify(b"m", b"s"),
            Err(SignatureError::Key(KeyError::Unsupported(_)))
        ));
    }

    #[test]
    fn pem_round_trip() {
        let pem = pem_encode("PUBLIC KEY", &[1u8; 100]);
        assert_eq!(
            pem_decode(&pem).unwrap(),
            ("PUBLIC KEY".to_owned(), vec![1u8; 100])
        );
        assert!(pem_decode("-----BEGIN X-----\n!!\n-----END X-----").is_err());
        assert!(pem_decode("garbage").is_err());
    }
}
