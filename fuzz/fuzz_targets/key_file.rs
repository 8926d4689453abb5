//! Key files (PEM: PKCS#8, encrypted PKCS#8, SPKI public keys) and key locations
//! (`pkcs11:` URIs, which round-trip through their text form).
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
    // (Writing escapes every byte of an id, so a URI near the length limit may not fit
    // once written: the round trip holds for those that do.)
    if let Some(uri) = sealwright_pkcs11::Pkcs11Uri::parse(text)
        .ok()
        .filter(|u| u.display().len() <= sealwright_pkcs11::uri::MAX_URI)
    {
        assert_eq!(
            sealwright_pkcs11::Pkcs11Uri::parse(&uri.display()).as_ref(),
            Ok(&uri)
        );
    }
});
