//! Encrypted private key files and the passphrases that open them.
//!
//! Format: PEM `ENCRYPTED PRIVATE KEY`, i.e. PKCS#8 `EncryptedPrivateKeyInfo` with PBES2
//! (scrypt log_n 14, r 8, p 1 by default, or PBKDF2-HMAC-SHA256 with 600 000 iterations) and
//! AES-256-CBC around a PKCS#8 **v1** `PrivateKeyInfo`. OpenSSL 3 (`openssl pkey`) and
//! python-cryptography open these files, and we open theirs.
//!
//! Reading is defensive: the file size is capped and the key-derivation parameters stored
//! in the file are bounded before any work is done, so a hostile key file cannot make us
//! allocate gigabytes or spin for hours.

use pkcs5::pbes2;
use pkcs5::EncryptionScheme;
use pkcs8::der::{Decode, Encode};
use pkcs8::EncryptedPrivateKeyInfo;
use zeroize::Zeroizing;

use crate::key::{pem_decode, pem_encode, Algorithm, KeyError, PublicKey};
use crate::signer::{PrivateKey, PrivateKeyError};

/// Largest key file we read (an encrypted RSA-8192 key is about 7 KiB).
pub const MAX_KEY_FILE: usize = 64 * 1024;
/// Largest TLS certificate chain, CA bundle or TLS key file we read (the Mozilla bundle is
/// about 220 KiB).
pub const MAX_PEM_FILE: u64 = 1024 * 1024;
/// scrypt cost we write: 2^14, r = 8 (16 MiB, OpenSSL's default memory limit is 32 MiB).
const SCRYPT_LOG_N: u8 = 14;
/// PBKDF2 iterations we write (OWASP 2023 for PBKDF2-HMAC-SHA256).
pub const PBKDF2_ITERATIONS: u32 = 600_000;
/// Most scrypt memory a file may ask of us when read.
const MAX_SCRYPT_MEMORY: u64 = 256 * 1024 * 1024;
/// Most PBKDF2 iterations a file may ask of us when read.
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;

/// A passphrase. Zeroized on drop; `Debug` never shows it.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<String>);

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

impl Passphrase {
    /// Wraps a passphrase; a single trailing newline (from a file or `echo`) is removed.
    pub fn new(mut text: String) -> Self {
        if text.ends_with('\n') {
            text.pop();
            if text.ends_with('\r') {
                text.pop();
            }
        }
        Passphrase(Zeroizing::new(text))
    }

    /// The passphrase bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// True when empty (refused when writing key files).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Which password-based key derivation to write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Kdf {
    /// scrypt, log_n 14, r 8, p 1 (default).
    #[default]
    Scrypt,
    /// PBKDF2-HMAC-SHA256, 600 000 iterations (for FIPS-minded environments).
    Pbkdf2Sha256,
}

/// A key file could not be written or read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyFileError {
    /// Larger than [`MAX_KEY_FILE`].
    #[error("key file is larger than {MAX_KEY_FILE} bytes")]
    TooLarge,
    /// Not PEM, or PEM of something else.
    #[error("not a PEM key file: {0}")]
    NotPem(String),
    /// Decryption failed: almost always the wrong passphrase.
    #[error("wrong passphrase, or the key file is corrupted")]
    WrongPassphraseOrCorrupt,
    /// The file asks for key-derivation work beyond our limits, or a scheme we do not use.
    #[error("key file encryption not accepted: {0}")]
    UnsupportedEncryption(String),
    /// An empty passphrase was given for a new key file.
    #[error("refusing to write a key file with an empty passphrase")]
    EmptyPassphrase,
    /// The key inside is unusable.
    #[error(transparent)]
    Key(#[from] PrivateKeyError),
    /// Encoding failed.
    #[error("encoding failed: {0}")]
    Encoding(String),
}

/// Encrypts `key` into an `ENCRYPTED PRIVATE KEY` PEM document.
pub fn encrypt_private_key(
    key: &PrivateKey,
    passphrase: &Passphrase,
    kdf: Kdf,
) -> Result<String, KeyFileError> {
    if passphrase.is_empty() {
        return Err(KeyFileError::EmptyPassphrase);
    }
    let plaintext = key.to_pkcs8_v1_der()?;
    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| KeyFileError::Encoding("RNG failure".into()))?;
    aws_lc_rs::rand::fill(&mut iv).map_err(|_| KeyFileError::Encoding("RNG failure".into()))?;
    let enc_err = |e: pkcs5::Error| KeyFileError::Encoding(e.to_string());
    let params = match kdf {
        Kdf::Scrypt => {
            let sp = pkcs5::scrypt::Params::new(SCRYPT_LOG_N, 8, 1, 32)
                .map_err(|e| KeyFileError::Encoding(e.to_string()))?;
            pbes2::Parameters::scrypt_aes256cbc(sp, &salt, &iv).map_err(enc_err)?
        }
        Kdf::Pbkdf2Sha256 => {
            pbes2::Parameters::pbkdf2_sha256_aes256cbc(PBKDF2_ITERATIONS, &salt, &iv)
                .map_err(enc_err)?
        }
    };
    let ciphertext = params
        .encrypt(passphrase.as_bytes(), &plaintext)
        .map_err(enc_err)?;
    let info = EncryptedPrivateKeyInfo {
        encryption_algorithm: EncryptionScheme::Pbes2(params),
        encrypted_data: &ciphertext,
    };
    let der = info
        .to_der()
        .map_err(|e| KeyFileError::Encoding(e.to_string()))?;
    Ok(pem_encode("ENCRYPTED PRIVATE KEY", &der))
}

/// Whether `pem` is an encrypted private key (and so needs a passphrase).
pub fn is_encrypted(pem: &str) -> bool {
    pem.trim_start()
        .starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----")
}

/// Opens a private key file: `ENCRYPTED PRIVATE KEY` with `passphrase`, or an unencrypted
/// `PRIVATE KEY` (PKCS#8, as `openssl genpkey` writes) when `passphrase` is `None`.
pub fn read_private_key(
    pem: &str,
    passphrase: Option<&Passphrase>,
) -> Result<PrivateKey, KeyFileError> {
    if pem.len() > MAX_KEY_FILE {
        return Err(KeyFileError::TooLarge);
    }
    let (label, der) = pem_decode(pem).map_err(|e| KeyFileError::NotPem(e.to_string()))?;
    let der = Zeroizing::new(der);
    match (label.as_str(), passphrase) {
        ("ENCRYPTED PRIVATE KEY", Some(pass)) => {
            let info = EncryptedPrivateKeyInfo::from_der(&der).map_err(|e| {
                KeyFileError::NotPem(format!("EncryptedPrivateKeyInfo does not parse: {e}"))
            })?;
            check_decryption_cost(&info.encryption_algorithm)?;
            let plain = info
                .encryption_algorithm
                .decrypt(pass.as_bytes(), info.encrypted_data)
                .map_err(|_| KeyFileError::WrongPassphraseOrCorrupt)?;
            let plain = Zeroizing::new(plain);
            // A wrong passphrase that happens to yield valid padding gives garbage: report it
            // as the wrong passphrase rather than as a malformed key.
            PrivateKey::from_pkcs8_der(&plain).map_err(|_| KeyFileError::WrongPassphraseOrCorrupt)
        }
        ("ENCRYPTED PRIVATE KEY", None) => Err(KeyFileError::WrongPassphraseOrCorrupt),
        ("PRIVATE KEY", _) => Ok(PrivateKey::from_pkcs8_der(&der)?),
        (other, _) => Err(KeyFileError::NotPem(format!(
            "expected ENCRYPTED PRIVATE KEY or PRIVATE KEY, found {other}"
        ))),
    }
}

/// Bounds the work a key file may demand before we derive anything from the passphrase.
fn check_decryption_cost(scheme: &EncryptionScheme<'_>) -> Result<(), KeyFileError> {
    let EncryptionScheme::Pbes2(params) = scheme else {
        return Err(KeyFileError::UnsupportedEncryption(
            "only PBES2 is accepted".into(),
        ));
    };
    match &params.kdf {
        pbes2::Kdf::Scrypt(sp) => {
            let memory = 128u64
                .saturating_mul(u64::from(sp.block_size))
                .saturating_mul(sp.cost_parameter)
                .saturating_mul(u64::from(sp.parallelization).max(1));
            if memory > MAX_SCRYPT_MEMORY {
                return Err(KeyFileError::UnsupportedEncryption(format!(
                    "scrypt parameters need {} MiB (limit {} MiB)",
                    memory >> 20,
                    MAX_SCRYPT_MEMORY >> 20
                )));
            }
        }
        pbes2::Kdf::Pbkdf2(pp) => {
            if pp.iteration_count > MAX_PBKDF2_ITERATIONS {
                return Err(KeyFileError::UnsupportedEncryption(format!(
                    "{} PBKDF2 iterations (limit {MAX_PBKDF2_ITERATIONS})",
                    pp.iteration_count
                )));
            }
        }
        _ => {
            return Err(KeyFileError::UnsupportedEncryption(
                "unknown key derivation".into(),
            ))
        }
    }
    Ok(())
}

/// Reads a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) of a supported algorithm.
pub fn read_public_key(pem: &str) -> Result<PublicKey, KeyError> {
    if pem.len() > MAX_KEY_FILE {
        return Err(KeyError::Malformed("public key file too large".into()));
    }
    let (label, der) = pem_decode(pem)?;
    if label != "PUBLIC KEY" {
        return Err(KeyError::Malformed(format!(
            "expected PUBLIC KEY PEM, found {label}"
        )));
    }
    let spki = pkcs8::spki::SubjectPublicKeyInfoRef::from_der(&der)
        .map_err(|e| KeyError::Malformed(format!("SubjectPublicKeyInfo does not parse: {e}")))?;
    let algorithm = match spki.algorithm.oid.to_string().as_str() {
        "1.3.101.112" => Algorithm::Ed25519,
        "1.2.840.10045.2.1" => Algorithm::EcdsaP256Sha256,
        "1.2.840.113549.1.1.1" => Algorithm::RsaPssSha256,
        other => {
            return Err(KeyError::Unsupported(format!(
                "public key algorithm OID {other}"
            )))
        }
    };
    PublicKey::from_spki_der(algorithm, &der)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signer::Signer;

    #[test]
    fn round_trip_all_algorithms_and_kdfs() {
        let pass = Passphrase::new("correct horse\n".into());
        for alg in [Algorithm::Ed25519, Algorithm::EcdsaP256Sha256] {
            for kdf in [Kdf::Scrypt, Kdf::Pbkdf2Sha256] {
                let key = PrivateKey::generate(alg).unwrap();
                let pem = encrypt_private_key(&key, &pass, kdf).unwrap();
                assert!(is_encrypted(&pem));
                let back = read_private_key(&pem, Some(&pass)).unwrap();
                assert_eq!(back.keyid(), key.keyid());
                let wrong = Passphrase::new("wrong".into());
                assert_eq!(
                    read_private_key(&pem, Some(&wrong)).unwrap_err(),
                    KeyFileError::WrongPassphraseOrCorrupt
                );
            }
        }
    }

    #[test]
    fn corrupt_files_give_errors_not_panics() {
        let pass = Passphrase::new("p".into());
        let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let pem = encrypt_private_key(&key, &pass, Kdf::Scrypt).unwrap();
        for cut in [10, 40, 80, pem.len() - 30] {
            let mut broken = pem.clone();
            broken.replace_range(cut..cut + 1, "A");
            let _ = read_private_key(&broken, Some(&pass));
            let _ = read_private_key(&pem[..cut], Some(&pass));
        }
        assert!(read_private_key("hello", Some(&pass)).is_err());
        assert_eq!(
            encrypt_private_key(&key, &Passphrase::new(String::new()), Kdf::Scrypt).unwrap_err(),
            KeyFileError::EmptyPassphrase
        );
    }

    #[test]
    fn passphrase_debug_is_redacted() {
        assert_eq!(
            format!("{:?}", Passphrase::new("secret".into())),
            "Passphrase(<redacted>)"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Arbitrary text never panics the reader (PEM framing, DER, PBES2 parameters).
        #[test]
        fn arbitrary_key_files_never_panic(text in ".{0,400}") {
            let pass = Passphrase::new("p".into());
            let _ = read_private_key(&text, Some(&pass));
            let _ = read_private_key(&text, None);
            let _ = read_public_key(&text);
        }

        /// Valid PEM framing around random DER bodies never panics either.
        #[test]
        fn random_der_in_pem_never_panics(body in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let pass = Passphrase::new("p".into());
            for label in ["ENCRYPTED PRIVATE KEY", "PRIVATE KEY", "PUBLIC KEY"] {
                let pem = crate::key::pem_encode(label, &body);
                let _ = read_private_key(&pem, Some(&pass));
                let _ = read_public_key(&pem);
            }
        }
    }
}
