//! The DSSE vectors of `tests/vectors/dsse` (README there): every expected result, the exact
//! pre-authentication bytes, securesystemslib's key ids, and Ed25519 signatures reproduced
//! byte for byte from the vectors' seed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;

use sealwright_attest::dsse::{pae, DsseError, Envelope};
use sealwright_crypto::keyfile::read_public_key;
use sealwright_crypto::Signer as _;

fn vectors() -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/vectors/dsse/dsse-vectors.json"
    );
    let all: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    all["vectors"].as_array().unwrap().clone()
}

#[test]
fn every_vector_gives_its_expected_result() {
    let vectors = vectors();
    assert_eq!(vectors.len(), 14);
    for v in &vectors {
        let name = v["name"].as_str().unwrap();
        let envelope = Envelope::parse(&serde_json::to_vec(&v["envelope"]).unwrap());
        let keys: Vec<_> = v["verification_keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                let key = read_public_key(k["public_pem"].as_str().unwrap()).unwrap();
                // Our key ids are securesystemslib's (the spec's own vector names none).
                if let Some(keyid) = k["keyid"].as_str() {
                    assert_eq!(key.keyid(), keyid, "{name}");
                }
                key
            })
            .collect();
        let threshold = v["threshold"].as_u64().unwrap() as usize;
        let verdict = envelope.and_then(|e| {
            if let Some(expected) = v["pae_b64"].as_str() {
                assert_eq!(
                    pae(&e.payload_type, &e.payload),
                    STANDARD.decode(expected).unwrap(),
                    "{name}"
                );
            }
            e.verify(&keys, threshold).map(|ok| ok.payload.to_vec())
        });
        match (v["expect"].as_str().unwrap(), name) {
            // Recorded decision (dsse.rs): ECDSA in DER only, as securesystemslib, OpenSSL and
            // Sigstore verify; the spec's raw r||s example is refused.
            ("valid", "spec-ecdsa-p256-raw") => assert!(
                matches!(verdict, Err(DsseError::Threshold { got: 0, .. })),
                "{name}: {verdict:?}"
            ),
            ("valid", _) => {
                let payload = verdict.unwrap_or_else(|e| panic!("{name}: {e}"));
                let expected = v["envelope"]["payload"].as_str().unwrap();
                let decoded = STANDARD
                    .decode(expected)
                    .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(expected))
                    .unwrap();
                assert_eq!(payload, decoded, "{name}");
            }
            ("invalid" | "invalid-for-DER-verifiers", _) => {
                assert!(verdict.is_err(), "{name} verified");
            }
            (other, _) => panic!("{name}: unknown expectation {other}"),
        }
    }
}

#[test]
fn ed25519_signatures_are_reproduced_from_the_seed() {
    let mut reproduced = 0;
    for v in vectors() {
        let Some(seed) = v["signing"]["ed25519_seed_hex"].as_str() else {
            continue;
        };
        // PKCS#8 v1 of an Ed25519 seed: the fixed RFC 8410 prefix, then the 32 bytes.
        let mut der = hex::decode("302e020100300506032b657004220420").unwrap();
        der.extend(hex::decode(seed).unwrap());
        let key = sealwright_crypto::PrivateKey::from_pkcs8_der(&der).unwrap();
        let env = Envelope::parse(&serde_json::to_vec(&v["envelope"]).unwrap()).unwrap();
        let signed = Envelope::sign(&env.payload_type, env.payload.clone(), &[&key]).unwrap();
        assert_eq!(
            signed.signatures[0].sig, env.signatures[0].sig,
            "{}",
            v["name"]
        );
        assert_eq!(signed.signatures[0].keyid.as_deref(), Some(key.keyid()));
        reproduced += 1;
    }
    assert!(reproduced >= 1);
}

#[test]
fn garbage_never_panics() {
    for bytes in [
        &b""[..],
        b"{}",
        b"[]",
        br#"{"payload":"!!","payloadType":"x","signatures":[]}"#,
        br#"{"payload":"","payloadType":"x","signatures":[{"sig":"%%"}]}"#,
    ] {
        assert!(
            Envelope::parse(bytes).is_err()
                || Envelope::parse(bytes).unwrap().verify(&[], 1).is_err()
        );
    }
}

#[test]
fn our_keyed_sigstore_bundle_of_the_vector_envelope_is_the_reference_bundle() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/vectors/dsse");
    let reference: Value = serde_json::from_slice(
        &std::fs::read(format!(
            "{dir}/sigstore-bundle-v0.3-keyed-dsse-ed25519.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let vector = vectors()
        .into_iter()
        .find(|v| v["name"] == "ed25519-statement")
        .unwrap();
    let envelope = Envelope::parse(&serde_json::to_vec(&vector["envelope"]).unwrap()).unwrap();
    let key = read_public_key(&std::fs::read_to_string(format!("{dir}/ed25519.pub.pem")).unwrap())
        .unwrap();
    let ours: Value = serde_json::from_slice(
        &sealwright_attest::sigstore::keyed_dsse_bundle(&envelope, &key).unwrap(),
    )
    .unwrap();
    assert_eq!(ours, reference);
    // Another key: refused before anything is written.
    let other =
        sealwright_crypto::PrivateKey::generate(sealwright_crypto::Algorithm::Ed25519).unwrap();
    assert!(sealwright_attest::sigstore::keyed_dsse_bundle(&envelope, other.public_key()).is_err());
}
