//! Encrypted key files interoperate with OpenSSL 3 in both directions.
//!
//! `scripts/test` installs `openssl`; if it is missing these tests fail, they never skip.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use sealwright_crypto::keyfile::{encrypt_private_key, read_private_key, read_public_key};
use sealwright_crypto::{Algorithm, Kdf, Passphrase, PrivateKey, Signer};

fn openssl(args: &[&str]) -> std::process::Output {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("`openssl` must be installed (scripts/test installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn openssl_opens_key_files_we_write() {
    let dir = tempfile::tempdir().unwrap();
    let pass = Passphrase::new("open sesame".into());
    for alg in [
        Algorithm::Ed25519,
        Algorithm::EcdsaP256Sha256,
        Algorithm::RsaPssSha256,
    ] {
        for kdf in [Kdf::Scrypt, Kdf::Pbkdf2Sha256] {
            let key = PrivateKey::generate(alg).unwrap();
            let path = dir.path().join(format!("{}-{kdf:?}.pem", alg.short_name()));
            std::fs::write(&path, encrypt_private_key(&key, &pass, kdf).unwrap()).unwrap();
            let out = openssl(&[
                "pkey",
                "-in",
                path.to_str().unwrap(),
                "-passin",
                "pass:open sesame",
                "-pubout",
            ]);
            // OpenSSL derived the same public key from the decrypted private key.
            let public = read_public_key(&String::from_utf8(out.stdout).unwrap()).unwrap();
            assert_eq!(public.keyid(), key.keyid(), "{alg:?} {kdf:?}");
            // And the wrong passphrase is refused by OpenSSL too.
            let bad = Command::new("openssl")
                .args([
                    "pkey",
                    "-in",
                    path.to_str().unwrap(),
                    "-passin",
                    "pass:nope",
                    "-noout",
                ])
                .output()
                .unwrap();
            assert!(!bad.status.success());
        }
    }
}

#[test]
fn we_open_encrypted_key_files_openssl_writes() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[&str], Algorithm); 3] = [
        ("ed25519", &["-algorithm", "ED25519"], Algorithm::Ed25519),
        (
            "p256",
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            Algorithm::EcdsaP256Sha256,
        ),
        (
            "rsa",
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            Algorithm::RsaPssSha256,
        ),
    ];
    for (name, genargs, alg) in cases {
        let key_path = dir.path().join(format!("{name}.pem"));
        let pub_path = dir.path().join(format!("{name}.pub.pem"));
        let mut args = vec!["genpkey"];
        args.extend_from_slice(genargs);
        args.extend_from_slice(&[
            "-aes-256-cbc",
            "-pass",
            "pass:hunter2",
            "-out",
            key_path.to_str().unwrap(),
        ]);
        openssl(&args);
        openssl(&[
            "pkey",
            "-in",
            key_path.to_str().unwrap(),
            "-passin",
            "pass:hunter2",
            "-pubout",
            "-out",
            pub_path.to_str().unwrap(),
        ]);
        let pem = std::fs::read_to_string(&key_path).unwrap();
        let key = read_private_key(&pem, Some(&Passphrase::new("hunter2".into()))).unwrap();
        assert_eq!(key.algorithm(), alg);
        let public = read_public_key(&std::fs::read_to_string(&pub_path).unwrap()).unwrap();
        assert_eq!(key.keyid(), public.keyid());
        // The key signs, and OpenSSL's public key verifies it.
        let sig = key.sign(b"payload").unwrap();
        public.verify(b"payload", &sig).unwrap();
        assert!(read_private_key(&pem, Some(&Passphrase::new("wrong".into()))).is_err());
    }
}

#[test]
fn openssl_verifies_our_signatures() {
    let dir = tempfile::tempdir().unwrap();
    let msg = dir.path().join("msg");
    std::fs::write(&msg, b"signed by sealwright").unwrap();
    for alg in [
        Algorithm::EcdsaP256Sha256,
        Algorithm::RsaPssSha256,
        Algorithm::Ed25519,
    ] {
        let key = PrivateKey::generate(alg).unwrap();
        let pubfile = dir.path().join("pub.pem");
        let spki_pem = key.public_key().to_spki_pem().unwrap();
        std::fs::write(&pubfile, spki_pem).unwrap();
        let sigfile = dir.path().join("sig");
        std::fs::write(&sigfile, key.sign(b"signed by sealwright").unwrap()).unwrap();
        let (p, m, s) = (
            pubfile.to_str().unwrap(),
            msg.to_str().unwrap(),
            sigfile.to_str().unwrap(),
        );
        match alg {
            Algorithm::Ed25519 => {
                openssl(&[
                    "pkeyutl", "-verify", "-pubin", "-inkey", p, "-rawin", "-in", m, "-sigfile", s,
                ]);
            }
            Algorithm::EcdsaP256Sha256 => {
                openssl(&["dgst", "-sha256", "-verify", p, "-signature", s, m]);
            }
            Algorithm::RsaPssSha256 => {
                openssl(&[
                    "dgst",
                    "-sha256",
                    "-verify",
                    p,
                    "-sigopt",
                    "rsa_padding_mode:pss",
                    "-sigopt",
                    "rsa_pss_saltlen:32",
                    "-signature",
                    s,
                    m,
                ]);
            }
        }
    }
}
