//! Signatures per second (scripts/bench keys): a key in a file (aws-lc in this process)
//! next to a key on a SoftHSM2 token through PKCS#11 (each signature also verified, as the
//! signer always does), with OpenSSL's `speed` on the same machine as the peer figure.
//!
//! usage: sign_speed DIR [SECONDS]   (DIR: where the test token is made)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use sealwright_crypto::{Algorithm, PrivateKey, Signer};
use sealwright_pkcs11::testing::{softhsm_token, SOFTHSM2_MODULE};
use sealwright_pkcs11::{Pkcs11Uri, TokenSigner};

/// Signatures per second by `signer` over a 1 KiB message (the size of a small role).
fn rate(signer: &dyn Signer, budget: Duration) -> f64 {
    let msg = vec![0x5au8; 1024];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        signer.sign(&msg).unwrap();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// OpenSSL's sign/s for the same algorithm (`openssl speed -mr`).
fn openssl(algorithm: Algorithm, seconds: u64) -> String {
    let (name, field) = match algorithm {
        Algorithm::Ed25519 => ("ed25519", 4),
        Algorithm::EcdsaP256Sha256 => ("ecdsap256", 3),
        Algorithm::RsaPssSha256 => ("rsa3072", 3),
    };
    let out = std::process::Command::new("openssl")
        .args(["speed", "-seconds", &seconds.to_string(), "-mr", name])
        .output();
    out.ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .rfind(|l| l.starts_with("+F"))
                .and_then(|l| l.split(':').nth(field).map(str::to_owned))
        })
        .and_then(|v| v.parse::<f64>().ok())
        .map_or_else(|| "-".to_owned(), |v| format!("{v:.0}"))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().expect("usage: sign_speed DIR [SECONDS]"));
    let seconds: u64 = args.next().map_or(2, |s| s.parse().unwrap());
    let budget = Duration::from_secs(seconds);
    let pin = softhsm_token(&dir, "bench").unwrap_or_else(|e| panic!("{e}"));
    let no_prompt =
        |_: &str| -> Result<zeroize::Zeroizing<String>, String> { Err("no prompt".into()) };
    println!("signatures per second, 1 KiB message, {seconds} s each (higher is better)");
    println!(
        "| {:<22} | {:>14} | {:>24} | {:>22} |",
        "algorithm", "file key", "SoftHSM2 via PKCS#11", "peer: openssl speed"
    );
    println!("|{:-<24}|{:-<16}|{:-<26}|{:-<24}|", "", "", "", "");
    for (name, algorithm) in [
        ("Ed25519", Algorithm::Ed25519),
        ("ECDSA P-256", Algorithm::EcdsaP256Sha256),
        ("RSA-PSS 3072", Algorithm::RsaPssSha256),
    ] {
        let file = PrivateKey::generate(algorithm).unwrap();
        let uri = Pkcs11Uri::parse(&format!(
            "pkcs11:token=bench;object={}?module-path={SOFTHSM2_MODULE}&pin-source={}",
            algorithm.short_name(),
            pin.display()
        ))
        .unwrap();
        let (token, _) = TokenSigner::generate(&uri, algorithm, &no_prompt).unwrap();
        println!(
            "| {:<22} | {:>14.0} | {:>24.0} | {:>22} |",
            name,
            rate(&file, budget),
            rate(&token, budget),
            openssl(algorithm, seconds)
        );
    }
}
