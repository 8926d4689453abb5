//! Our canonical JSON is byte-identical to securesystemslib's on a corpus of tricky
//! documents, and we refuse what it refuses. The expected bytes come from running
//! python-tuf's own encoder (`tests/interop/canonical.py`), not from this crate.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;
use std::process::Command;

use sealwright_crypto::canonical::to_canonical_json;

fn interop() -> (PathBuf, PathBuf) {
    let python = std::env::var_os("SEALWRIGHT_PYTHON")
        .expect("SEALWRIGHT_PYTHON is not set: run scripts/test (it creates .venv with the pinned python-tuf)");
    let dir = std::env::var_os("SEALWRIGHT_INTEROP_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop"));
    (PathBuf::from(python), dir)
}

fn python_encodings(file: &PathBuf) -> Vec<String> {
    let (python, dir) = interop();
    let out = Command::new(python)
        .arg(dir.join("canonical.py"))
        .arg(file)
        .output()
        .expect("run canonical.py");
    assert!(
        out.status.success(),
        "canonical.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn corpus_matches_securesystemslib_byte_for_byte() {
    let (_, dir) = interop();
    let file = dir.join("canonical_corpus.json");
    let expected = python_encodings(&file);
    let docs: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(docs.len(), expected.len());
    assert!(docs.len() > 20, "corpus unexpectedly small");
    let mut mismatches = Vec::new();
    let mut refused_negative_zero = 0;
    for (i, (doc, want)) in docs.iter().zip(&expected).enumerate() {
        match to_canonical_json(doc) {
            Ok(bytes) if &hex::encode(&bytes) == want => {}
            Ok(bytes) => mismatches.push(format!(
                "#{i}: ours {:?}\n   python {:?}",
                String::from_utf8_lossy(&bytes),
                String::from_utf8_lossy(&hex::decode(want).unwrap())
            )),
            // Deliberate divergence: serde_json reads `-0` as the float -0.0 (indistinguishable
            // from `-0.0`, which securesystemslib refuses), so we refuse both. Python reads `-0`
            // as the integer 0. Refusing is the fail-safe side: such metadata does not verify
            // here, and nothing unsigned is ever accepted.
            Err(_) if contains_negative_zero(doc) => refused_negative_zero += 1,
            Err(e) => mismatches.push(format!("#{i}: we refused it ({e}), python encoded it")),
        }
    }
    assert!(
        mismatches.is_empty(),
        "canonical JSON differs from securesystemslib:\n{}",
        mismatches.join("\n")
    );
    assert!(
        refused_negative_zero <= 1,
        "only the one -0 document may diverge"
    );
}

fn contains_negative_zero(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Number(n) => {
            n.as_f64().is_some_and(|f| f == 0.0 && f.is_sign_negative())
        }
        serde_json::Value::Array(a) => a.iter().any(contains_negative_zero),
        serde_json::Value::Object(o) => o.values().any(contains_negative_zero),
        _ => false,
    }
}

#[test]
fn we_refuse_what_securesystemslib_refuses() {
    let (_, dir) = interop();
    let file = dir.join("canonical_rejects.json");
    let text = std::fs::read_to_string(&file).unwrap();
    // Lone surrogates do not even parse as a Rust string; floats parse and must be refused.
    match serde_json::from_str::<Vec<serde_json::Value>>(&text) {
        Ok(docs) => {
            assert!(!docs.is_empty());
            for (i, doc) in docs.iter().enumerate() {
                assert!(
                    to_canonical_json(doc).is_err(),
                    "#{i} should be refused: {doc}"
                );
            }
        }
        Err(_) => {
            // Parse document by document so one unparsable entry does not hide the others.
            let raw: Vec<Box<serde_json::value::RawValue>> = serde_json::from_str(&text).unwrap();
            for (i, r) in raw.iter().enumerate() {
                if let Ok(doc) = serde_json::from_str::<serde_json::Value>(r.get()) {
                    assert!(
                        to_canonical_json(&doc).is_err(),
                        "#{i} should be refused: {doc}"
                    );
                }
            }
        }
    }
}
