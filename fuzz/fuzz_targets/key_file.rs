//! Key files (PEM: PKCS#8, encrypted PKCS#8, SPKI public keys).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = sealwright_crypto::keyfile::is_encrypted(text);
    let _ = sealwright_crypto::keyfile::read_public_key(text);
    // Without a passphrase: an encrypted key is refused before any KDF runs.
    let _ = sealwright_crypto::keyfile::read_private_key(text, None);
});
