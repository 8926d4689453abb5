//! Other people's verifiers accept what we write: securesystemslib verifies our DSSE
//! envelopes (Ed25519 and ECDSA P-256, threshold 2) and in-toto-attestation parses and
//! validates our Statement v1 and SLSA Provenance v1 predicate strictly
//! (`tests/interop/dsse_verify.py`, in the venv `scripts/test` makes); each refuses a
//! tampered payload and a missing signature.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use sealwright_attest::dsse::{Envelope, IN_TOTO_PAYLOAD_TYPE};
use sealwright_attest::slsa::{
    BuildDefinition, BuildMetadata, Builder, Provenance, RunDetails, PROVENANCE_V1,
};
use sealwright_attest::statement::{ResourceDescriptor, Statement};
use sealwright_crypto::{Algorithm, PrivateKey, Signer as _};

fn python() -> PathBuf {
    PathBuf::from(std::env::var_os("SEALWRIGHT_PYTHON").expect(
        "SEALWRIGHT_PYTHON is not set: run scripts/test (it makes the venv with securesystemslib and in-toto-attestation)",
    ))
}

fn verify(
    dir: &Path,
    envelope: &Envelope,
    artifact: &Path,
    keys: &[&PrivateKey],
) -> std::process::Output {
    let env_path = dir.join("envelope.json");
    std::fs::write(&env_path, envelope.to_json()).unwrap();
    let mut cmd = Command::new(python());
    cmd.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/interop/dsse_verify.py"
    ))
    .arg(&env_path)
    .arg(artifact);
    for (i, key) in keys.iter().enumerate() {
        let pem = dir.join(format!("key-{i}.pem"));
        std::fs::write(&pem, key.public_key().to_spki_pem().unwrap()).unwrap();
        cmd.arg(pem);
    }
    cmd.output().unwrap()
}

#[test]
fn securesystemslib_and_in_toto_attestation_accept_our_provenance() {
    let dir = tempfile::tempdir().unwrap();
    let artifact = dir.path().join("app.bin");
    std::fs::write(&artifact, b"release bytes").unwrap();
    let sha256 = sealwright_crypto::digest::sha256_hex(b"release bytes");
    let provenance = Provenance {
        build_definition: BuildDefinition {
            build_type: "https://sealwright.dev/build/v1".into(),
            external_parameters: BTreeMap::from([("command".into(), serde_json::json!(["make"]))]),
            internal_parameters: BTreeMap::new(),
            resolved_dependencies: vec![ResourceDescriptor {
                uri: "git+https://example.com/app.git".into(),
                digest: BTreeMap::from([(
                    "gitCommit".into(),
                    "7fd1a60b01f91b314f59955a4e4d4e80d8edf11d".into(),
                )]),
                ..ResourceDescriptor::default()
            }],
        },
        run_details: RunDetails {
            builder: Builder {
                id: "https://sealwright.dev/builders/local".into(),
                version: BTreeMap::new(),
            },
            metadata: BuildMetadata {
                invocation_id: "run-1".into(),
                started_on: "2026-11-30T10:00:00Z".into(),
                finished_on: "2026-11-30T10:01:00Z".into(),
            },
            byproducts: vec![],
        },
    };
    let statement = Statement::new(
        vec![ResourceDescriptor::file("app.bin", &sha256)],
        PROVENANCE_V1,
        serde_json::to_value(&provenance).unwrap(),
    );
    let ed = PrivateKey::generate(Algorithm::Ed25519).unwrap();
    let ec = PrivateKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
    let envelope = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, statement.to_bytes(), &[&ed, &ec]).unwrap();

    let out = verify(dir.path(), &envelope, &artifact, &[&ed, &ec]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdict: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut ours = vec![ed.keyid().to_owned(), ec.keyid().to_owned()];
    ours.sort();
    assert_eq!(
        verdict["keyids"],
        serde_json::json!(ours),
        "securesystemslib computes our key ids"
    );
    assert_eq!(verdict["builder"], "https://sealwright.dev/builders/local");
    // And our own verifier agrees.
    let verified = envelope
        .verify(&[ed.public_key().clone(), ec.public_key().clone()], 2)
        .unwrap();
    assert_eq!(Statement::parse(verified.payload).unwrap(), statement);

    // Refused by them: a payload changed after signing; one of the two signatures missing.
    let mut tampered = envelope.clone();
    tampered.payload = String::from_utf8(tampered.payload)
        .unwrap()
        .replace("run-1", "run-2")
        .into_bytes();
    assert!(!verify(dir.path(), &tampered, &artifact, &[&ed, &ec])
        .status
        .success());
    let mut half = envelope.clone();
    half.signatures.truncate(1);
    assert!(!verify(dir.path(), &half, &artifact, &[&ed, &ec])
        .status
        .success());
    // Another artifact is not a subject.
    let other = dir.path().join("other.bin");
    std::fs::write(&other, b"other bytes").unwrap();
    assert!(!verify(dir.path(), &envelope, &other, &[&ed, &ec])
        .status
        .success());
}
