//! Private keys and the [`Signer`] trait every key backend implements.
//!
//! The file backend ([`PrivateKey`]) holds an aws-lc-rs key pair; hardware tokens and the
//! signer agent implement the same trait, so the repository editor never knows where a
//! key lives. Private key bytes only exist inside [`zeroize::Zeroizing`] buffers and the
//! aws-lc key objects (which cleanse on drop); `Debug` prints the key id, never the key.

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING,
    RSA_PSS_SHA256,
};
use pkcs8::der::Decode;
use zeroize::Zeroizing;

use crate::key::{Algorithm, KeyError, PublicKey};

/// Something that can produce TUF signatures.
pub trait Signer: Send + Sync + std::fmt::Debug {
    /// The public half, as it goes into metadata.
    fn public_key(&self) -> &PublicKey;
    /// The key id (securesystemslib's definition).
    fn keyid(&self) -> &str;
    /// Signs `msg`, returning the raw signature bytes (DER for ECDSA).
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignError>;
}

/// A signature could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The backend failed (token removed, agent refused, RNG failure...).
    #[error("signing with key {keyid} failed: {reason}")]
    Backend {
        /// Which key.
        keyid: String,
        /// Why, in words.
        reason: String,
    },
}

/// A private key could not be created or loaded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PrivateKeyError {
    /// Generation failed inside aws-lc.
    #[error("key generation failed")]
    Generation,
    /// The PKCS#8 document is not a key we support or is corrupt.
    #[error("not a usable private key: {0}")]
    Rejected(String),
    /// The key's public half is unusable.
    #[error(transparent)]
    Key(#[from] KeyError),
}

enum Pair {
    Ed25519(Ed25519KeyPair),
    Ecdsa(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// An in-memory private key (the file backend).
pub struct PrivateKey {
    pair: Pair,
    public: PublicKey,
    keyid: String,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateKey")
            .field("algorithm", &self.algorithm())
            .field("keyid", &self.keyid)
            .finish_non_exhaustive()
    }
}

const OID_ED25519: &str = "1.3.101.112";
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_RSA: &str = "1.2.840.113549.1.1.1";

impl PrivateKey {
    /// Generates a new key. RSA keys are 3072 bits.
    pub fn generate(algorithm: Algorithm) -> Result<Self, PrivateKeyError> {
        let pair = match algorithm {
            Algorithm::Ed25519 => {
                Pair::Ed25519(Ed25519KeyPair::generate().map_err(|_| PrivateKeyError::Generation)?)
            }
            Algorithm::EcdsaP256Sha256 => Pair::Ecdsa(
                EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING)
                    .map_err(|_| PrivateKeyError::Generation)?,
            ),
            Algorithm::RsaPssSha256 => Pair::Rsa(
                RsaKeyPair::generate(KeySize::Rsa3072).map_err(|_| PrivateKeyError::Generation)?,
            ),
        };
        Self::from_pair(pair)
    }

    /// Loads an unencrypted PKCS#8 (v1 or v2) private key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, PrivateKeyError> {
        let info = pkcs8::PrivateKeyInfo::from_der(der)
            .map_err(|e| PrivateKeyError::Rejected(format!("PKCS#8 does not parse: {e}")))?;
        let oid = info.algorithm.oid.to_string();
        let reject = |what: &str| PrivateKeyError::Rejected(what.to_owned());
        let pair = match oid.as_str() {
            OID_ED25519 => Pair::Ed25519(
                Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                    .map_err(|e| reject(&format!("Ed25519 key rejected: {e}")))?,
            ),
            OID_EC_PUBLIC_KEY => {
                let curve = info
                    .algorithm
                    .parameters_oid()
                    .map(|o| o.to_string())
                    .map_err(|_| reject("EC key without a named curve"))?;
                if curve != OID_P256 {
                    return Err(reject(&format!("EC curve {curve} is not P-256")));
                }
                Pair::Ecdsa(
                    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der)
                        .map_err(|e| reject(&format!("ECDSA key rejected: {e}")))?,
                )
            }
            OID_RSA => {
                let pair = RsaKeyPair::from_pkcs8(der)
                    .map_err(|e| reject(&format!("RSA key rejected: {e}")))?;
                if pair.public_modulus_len() < 256 {
                    return Err(reject("RSA keys must be at least 2048 bits"));
                }
                Pair::Rsa(pair)
            }
            other => return Err(reject(&format!("unsupported key algorithm OID {other}"))),
        };
        Self::from_pair(pair)
    }

    fn from_pair(pair: Pair) -> Result<Self, PrivateKeyError> {
        let public = match &pair {
            Pair::Ed25519(kp) => {
                PublicKey::new(Algorithm::Ed25519, hex::encode(kp.public_key().as_ref()))
            }
            Pair::Ecdsa(kp) => {
                let der: PublicKeyX509Der = kp
                    .public_key()
                    .as_der()
                    .map_err(|_| PrivateKeyError::Generation)?;
                PublicKey::from_spki_der(Algorithm::EcdsaP256Sha256, der.as_ref())?
            }
            Pair::Rsa(kp) => {
                let der: PublicKeyX509Der = kp
                    .public_key()
                    .as_der()
                    .map_err(|_| PrivateKeyError::Generation)?;
                PublicKey::from_spki_der(Algorithm::RsaPssSha256, der.as_ref())?
            }
        };
        let keyid = public.keyid();
        Ok(PrivateKey {
            pair,
            public,
            keyid,
        })
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match self.pair {
            Pair::Ed25519(_) => Algorithm::Ed25519,
            Pair::Ecdsa(_) => Algorithm::EcdsaP256Sha256,
            Pair::Rsa(_) => Algorithm::RsaPssSha256,
        }
    }

    /// The private key as unencrypted PKCS#8 **v1** DER (what OpenSSL and python-cryptography
    /// expect inside an encrypted key file).
    pub fn to_pkcs8_v1_der(&self) -> Result<Zeroizing<Vec<u8>>, PrivateKeyError> {
        let bytes = match &self.pair {
            Pair::Ed25519(kp) => kp.to_pkcs8v1().map(|d| d.as_ref().to_vec()),
            Pair::Ecdsa(kp) => kp.to_pkcs8v1().map(|d| d.as_ref().to_vec()),
            Pair::Rsa(kp) => AsDer::<Pkcs8V1Der>::as_der(kp).map(|d| d.as_ref().to_vec()),
        }
        .map_err(|_| PrivateKeyError::Rejected("cannot serialise key".into()))?;
        Ok(Zeroizing::new(bytes))
    }
}

impl Signer for PrivateKey {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn keyid(&self) -> &str {
        &self.keyid
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignError> {
        let fail = |reason: &str| SignError::Backend {
            keyid: self.keyid.clone(),
            reason: reason.to_owned(),
        };
        match &self.pair {
            Pair::Ed25519(kp) => Ok(kp.sign(msg).as_ref().to_vec()),
            Pair::Ecdsa(kp) => kp
                .sign(&SystemRandom::new(), msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| fail("ECDSA signing failed")),
            Pair::Rsa(kp) => {
                let mut sig = vec![0u8; kp.public_modulus_len()];
                kp.sign(&RSA_PSS_SHA256, &SystemRandom::new(), msg, &mut sig)
                    .map_err(|_| fail("RSA-PSS signing failed"))?;
                Ok(sig)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_signs_and_verifies_and_round_trips() {
        for alg in [
            Algorithm::Ed25519,
            Algorithm::EcdsaP256Sha256,
            Algorithm::RsaPssSha256,
        ] {
            let key = PrivateKey::generate(alg).unwrap();
            let sig = key.sign(b"message").unwrap();
            key.public_key().verify(b"message", &sig).unwrap();
            assert!(key.public_key().verify(b"messagE", &sig).is_err());
            let again = PrivateKey::from_pkcs8_der(&key.to_pkcs8_v1_der().unwrap()).unwrap();
            assert_eq!(again.public_key(), key.public_key());
            assert_eq!(again.keyid(), key.keyid());
            key.public_key().validate().unwrap();
        }
    }

    #[test]
    fn garbage_pkcs8_is_rejected() {
        assert!(PrivateKey::from_pkcs8_der(b"not a key").is_err());
        assert!(PrivateKey::from_pkcs8_der(&[]).is_err());
    }
}
