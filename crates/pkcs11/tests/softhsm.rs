//! Keys generated on a SoftHSM2 token (Debian's, set up here in a private directory) sign
//! with each TUF scheme; OpenSSL verifies every signature with the public key we read from
//! the token; a reopened URI finds the same key; a wrong PIN, a PIN in the URI and a URI
//! naming no key are refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use sealwright_crypto::{Algorithm, Signer as _};
use sealwright_pkcs11::testing::{softhsm_token, SOFTHSM2_MODULE as MODULE};
use sealwright_pkcs11::{Pkcs11Uri, TokenSigner};
use zeroize::Zeroizing;

fn no_prompt(_: &str) -> Result<Zeroizing<String>, String> {
    Err("no prompt in tests".into())
}

/// A fresh token labelled `sealwright` in `dir` (PIN file `dir/pin`), and a file with a
/// wrong PIN.
fn token(dir: &Path) {
    let pin = softhsm_token(dir, "sealwright").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pin, dir.join("pin"));
    std::fs::write(dir.join("wrong-pin"), "9999\n").unwrap();
    std::fs::set_permissions(
        dir.join("wrong-pin"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
}

fn uri(dir: &Path, object: &str, pin: &str) -> Pkcs11Uri {
    Pkcs11Uri::parse(&format!(
        "pkcs11:token=sealwright;object={object}?module-path={MODULE}&pin-source={}",
        dir.join(pin).display()
    ))
    .unwrap()
}

/// OpenSSL's verdict on `sig` over `msg` with `signer`'s public key.
fn openssl_verifies(dir: &Path, signer: &TokenSigner, msg: &[u8], sig: &[u8]) -> bool {
    let public = dir.join("pub.pem");
    std::fs::write(&public, signer.public_key().to_spki_pem().unwrap()).unwrap();
    std::fs::write(dir.join("msg"), msg).unwrap();
    std::fs::write(dir.join("sig"), sig).unwrap();
    let mut cmd = Command::new("openssl");
    match signer.public_key().algorithm().unwrap() {
        Algorithm::Ed25519 => cmd
            .args(["pkeyutl", "-verify", "-pubin", "-rawin", "-inkey"])
            .arg(&public)
            .arg("-in")
            .arg(dir.join("msg"))
            .arg("-sigfile")
            .arg(dir.join("sig")),
        Algorithm::EcdsaP256Sha256 => cmd
            .args(["dgst", "-sha256", "-verify"])
            .arg(&public)
            .arg("-signature")
            .arg(dir.join("sig"))
            .arg(dir.join("msg")),
        Algorithm::RsaPssSha256 => cmd
            .args([
                "dgst",
                "-sha256",
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                "rsa_pss_saltlen:32",
                "-verify",
            ])
            .arg(&public)
            .arg("-signature")
            .arg(dir.join("sig"))
            .arg(dir.join("msg")),
    };
    cmd.output().unwrap().status.success()
}

#[test]
fn token_keys_sign_with_each_tuf_scheme_and_openssl_agrees() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    token(dir);
    for (object, algorithm) in [
        ("ed", Algorithm::Ed25519),
        ("p256", Algorithm::EcdsaP256Sha256),
        ("rsa", Algorithm::RsaPssSha256),
    ] {
        let (signer, exact) =
            TokenSigner::generate(&uri(dir, object, "pin"), algorithm, &no_prompt).unwrap();
        assert!(exact.id.is_some());
        let msg = format!("signed on the token with {object}").into_bytes();
        let sig = signer.sign(&msg).unwrap();
        assert!(signer.public_key().verify(&msg, &sig).is_ok());
        assert!(
            openssl_verifies(dir, &signer, &msg, &sig),
            "{object}: OpenSSL refused"
        );
        assert!(
            !openssl_verifies(dir, &signer, b"other bytes", &sig),
            "{object}: OpenSSL accepted other bytes"
        );
        let reopened =
            TokenSigner::open(&Pkcs11Uri::parse(&exact.display()).unwrap(), &no_prompt).unwrap();
        assert_eq!(reopened.keyid(), signer.keyid());
        // The same label again would make the URI ambiguous.
        assert!(TokenSigner::generate(&uri(dir, object, "pin"), algorithm, &no_prompt).is_err());
    }
    let wrong = TokenSigner::open(&uri(dir, "ed", "wrong-pin"), &no_prompt).unwrap_err();
    assert!(wrong.to_string().contains("PIN"), "{wrong}");
    assert!(TokenSigner::open(&uri(dir, "missing", "pin"), &no_prompt)
        .unwrap_err()
        .to_string()
        .contains("no private key"));
    assert!(Pkcs11Uri::parse(&format!(
        "pkcs11:token=sealwright;object=ed?module-path={MODULE}&pin-value=1234"
    ))
    .is_err());
}
