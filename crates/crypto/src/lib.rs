//! Cryptographic building blocks for Sealwright.
//!
//! Everything here is deterministic where the algorithm allows it and never panics on
//! untrusted input: parsers return typed errors and every decoder is size-capped.
//!
//! - [`canonical`]: OLPC canonical JSON, byte-identical to securesystemslib.
//! - [`digest`]: SHA-256 / SHA-512, one-shot and streaming.
//! - [`key`]: TUF public keys as they appear in metadata, key ids, verification.
//! - [`signer`]: private keys (Ed25519, ECDSA P-256, RSA-PSS) behind the [`signer::Signer`] trait.
//! - [`keyfile`]: encrypted PKCS#8 key files that OpenSSL 3 reads, passphrases that zeroize.

pub mod canonical;
pub mod digest;
pub mod key;
pub mod keyfile;
pub mod signer;

pub use key::{Algorithm, PublicKey};
pub use keyfile::{Kdf, Passphrase};
pub use signer::{PrivateKey, Signer};

/// Cryptographically secure random bytes (aws-lc-rs).
pub mod random {
    /// Fills `buf` with random bytes.
    pub fn fill(buf: &mut [u8]) -> Result<(), RandomError> {
        aws_lc_rs::rand::fill(buf).map_err(|_| RandomError)
    }

    /// The system random number generator failed.
    #[derive(Debug, thiserror::Error)]
    #[error("system random number generator failed")]
    pub struct RandomError;
}
