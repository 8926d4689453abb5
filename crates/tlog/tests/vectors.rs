#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

//! Third-party vectors (tests/vectors, sources in its README): transparency-dev's Merkle
//! proof probes, Go x/mod's and C2SP's signed notes, and a 515-entry tiled log written by
//! aics-tlog and signed with Go x/mod, verified end to end.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::Value;

use sealwright_tlog::merkle::{
    self, consistency_proof, inclusion_proof, leaf_hash, tree_root, verify_consistency,
    verify_inclusion, Hash,
};
use sealwright_tlog::note::{self, Ed25519NoteKey, KeyKind, Note, NoteError, Verifier};
use sealwright_tlog::tile::{self, decode_bundle, TileError, TileHashes, TileKind, TilePath};
use sealwright_tlog::Checkpoint;

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors")
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

/// A base64 hash of exactly 32 bytes; anything else is `None` (our API takes only
/// 32-byte hashes, so a vector with another length is refused before any comparison).
fn hash(v: &Value) -> Option<Hash> {
    B64.decode(v.as_str()?).ok()?.try_into().ok()
}

fn proof(v: &Value) -> Option<Vec<Hash>> {
    match v {
        Value::Null => Some(Vec::new()),
        Value::Array(items) => items.iter().map(hash).collect(),
        _ => None,
    }
}

/// Decisions where we are stricter than transparency-dev's Go verifier (tests/vectors/README):
/// roots that are not 32 bytes are refused even when the sizes are equal and only the roots
/// would be compared.
const STRICTER_THAN_GO: &[&str] = &["sizes-are-equal-one-and-proof-is-empty.json"];

#[test]
fn merkle_inclusion_vectors() {
    let mut files = Vec::new();
    json_files(&vectors().join("merkle/inclusion"), &mut files);
    assert_eq!(files.len(), 98, "the inclusion vector set is complete");
    for f in files {
        let v: Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
        let result = (|| {
            let (leaf, root, proof) = (
                hash(&v["leafHash"])?,
                hash(&v["root"])?,
                proof(&v["proof"])?,
            );
            Some(verify_inclusion(
                v["leafIdx"].as_u64()?,
                v["treeSize"].as_u64()?,
                &leaf,
                &proof,
                &root,
            ))
        })();
        let ok = matches!(result, Some(Ok(())));
        assert_eq!(
            ok,
            !v["wantErr"].as_bool().unwrap(),
            "{}: {result:?}",
            f.display()
        );
    }
}

#[test]
fn merkle_consistency_vectors() {
    let mut files = Vec::new();
    json_files(&vectors().join("merkle/consistency"), &mut files);
    assert_eq!(files.len(), 98, "the consistency vector set is complete");
    let mut stricter = 0;
    for f in files {
        let v: Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
        let result = (|| {
            let (r1, r2, proof) = (hash(&v["root1"])?, hash(&v["root2"])?, proof(&v["proof"])?);
            Some(verify_consistency(
                v["size1"].as_u64()?,
                v["size2"].as_u64()?,
                &proof,
                &r1,
                &r2,
            ))
        })();
        let ok = matches!(result, Some(Ok(())));
        let name = f.file_name().unwrap().to_str().unwrap();
        if STRICTER_THAN_GO.contains(&name) {
            assert!(!v["wantErr"].as_bool().unwrap() && !ok, "{name}");
            stricter += 1;
            continue;
        }
        assert_eq!(
            ok,
            !v["wantErr"].as_bool().unwrap(),
            "{}: {result:?}",
            f.display()
        );
    }
    assert_eq!(stricter, STRICTER_THAN_GO.len());
}

#[test]
fn signed_note_vectors() {
    let v: Value =
        serde_json::from_slice(&std::fs::read(vectors().join("signed-note/vectors.json")).unwrap())
            .unwrap();
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 9);
    for case in cases {
        let id = case["id"].as_str().unwrap();
        let keys: Result<Vec<Verifier>, NoteError> = case["verifier_keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| Verifier::from_vkey(k.as_str().unwrap()))
            .collect();
        let result = keys.and_then(|keys| {
            let note = Note::parse(case["note"].as_str().unwrap().as_bytes())?;
            let verified = note.verify(&keys)?;
            Ok((note.text().to_owned(), verified))
        });
        match case["expect"].as_str().unwrap() {
            "ok" => {
                let (text, verified) = result.unwrap_or_else(|e| panic!("{id}: {e}"));
                assert_eq!(text, case["expect_text"].as_str().unwrap(), "{id}");
                if let Some(want) = case["expect_verified_keys"].as_array() {
                    let got: Vec<String> = verified
                        .iter()
                        .map(|v| format!("{}+{:08x}", v.name, v.key_id))
                        .collect();
                    let want: Vec<&str> = want.iter().map(|w| w.as_str().unwrap()).collect();
                    assert_eq!(got, want, "{id}");
                }
            }
            _ => assert!(result.is_err(), "{id} must be rejected"),
        }
    }
    // Signing with Go's private key format gives the vector's signature back (Ed25519 is
    // deterministic).
    let skey = v["signer_keys_for_reference"]["PeterNeumann"]
        .as_str()
        .unwrap();
    let key = Ed25519NoteKey::from_private_key(skey).unwrap();
    let first = &cases[0];
    let text = first["expect_text"].as_str().unwrap();
    let mut n = Note::new(text).unwrap();
    n.add_signature(note::sign(text, &key, 0).unwrap());
    assert_eq!(
        String::from_utf8(n.to_bytes()).unwrap(),
        first["note"].as_str().unwrap()
    );
}

struct Fixture {
    dir: PathBuf,
    json: Value,
}

impl Fixture {
    fn load() -> Self {
        let dir = vectors().join("tlog-tiles-fixture");
        let json =
            serde_json::from_slice(&std::fs::read(dir.join("fixture.json")).unwrap()).unwrap();
        Fixture { dir, json }
    }

    fn log_key(&self) -> Verifier {
        Verifier::from_vkey(self.json["log_vkey"].as_str().unwrap()).unwrap()
    }

    fn tile(&self, t: &TilePath) -> Result<Vec<u8>, TileError> {
        std::fs::read(self.dir.join("log").join(t.to_string()))
            .map_err(|_| TileError::Missing(t.to_string()))
    }

    fn checkpoint(&self, size: u64) -> Checkpoint {
        let note =
            Note::parse(&std::fs::read(self.dir.join(format!("checkpoint-{size}.note"))).unwrap())
                .unwrap();
        note.verify(&[self.log_key()]).unwrap();
        Checkpoint::parse(note.text()).unwrap()
    }
}

#[test]
fn tiled_fixture_verifies_end_to_end() {
    let fx = Fixture::load();
    let leaves: Vec<String> = (0..515).map(|i| format!("leaf {i}")).collect();
    let leaf_hashes: Vec<Hash> = leaves.iter().map(|l| leaf_hash(l.as_bytes())).collect();

    for size in [0u64, 260, 515] {
        let cp = fx.checkpoint(size);
        assert_eq!(cp.origin, "example.com/tlog-fixture");
        assert_eq!(cp.size, size);
        // The root from the tiles a client would fetch for this size is the signed root.
        let mut tiles = TileHashes::new(size, |t: &TilePath| fx.tile(t));
        assert_eq!(tree_root(&mut tiles, size).unwrap(), cp.root, "size {size}");
        // Every tile we would write for this size has the fixture's bytes.
        let mut from_leaves: &[Hash] = &leaf_hashes[..size as usize];
        for t in tile::tiles_between(0, size) {
            let ours = match t.kind {
                TileKind::Hashes(_) => tile::tile_hashes(&mut from_leaves, &t).unwrap(),
                TileKind::Entries => tile::encode_bundle(
                    leaves[(t.index * 256) as usize..][..usize::from(t.width)]
                        .iter()
                        .map(|l| l.as_bytes()),
                )
                .unwrap(),
            };
            assert_eq!(ours, fx.tile(&t).unwrap(), "{t}");
        }
    }

    // Inclusion of entries 300 and 513 at 515, proved from tiles, checked against the
    // signed root; the entries come from their bundles.
    let cp = fx.checkpoint(515);
    let mut tiles = TileHashes::new(515, |t: &TilePath| fx.tile(t));
    let bundle = fx
        .tile(&TilePath {
            kind: TileKind::Entries,
            index: 2,
            width: 3,
        })
        .unwrap();
    let entries = decode_bundle(&bundle).unwrap();
    assert_eq!(entries, [b"leaf 512".as_slice(), b"leaf 513", b"leaf 514"]);
    for index in [0u64, 255, 256, 300, 513, 514] {
        let proof = inclusion_proof(&mut tiles, index, 515).unwrap();
        let leaf = leaf_hash(leaves[index as usize].as_bytes());
        verify_inclusion(index, 515, &leaf, &proof, &cp.root).unwrap();
        assert!(verify_inclusion(index, 515, &leaf_hash(b"leaf x"), &proof, &cp.root).is_err());
    }
    // Consistency 260 → 515 from tiles.
    let old = fx.checkpoint(260);
    let proof = consistency_proof(&mut tiles, 260, 515).unwrap();
    verify_consistency(260, 515, &proof, &old.root, &cp.root).unwrap();
    assert_eq!(
        verify_consistency(260, 515, &proof, &merkle::empty_root(), &cp.root),
        Err(merkle::ProofError::RootMismatch("old"))
    );

    // A tile of the wrong size is refused, not read past.
    let mut short = TileHashes::new(515, |t: &TilePath| {
        fx.tile(t).map(|mut b| {
            b.pop();
            b
        })
    });
    assert!(matches!(
        tree_root(&mut short, 515),
        Err(TileError::WrongSize { .. })
    ));
}

#[test]
fn fixture_cosignatures_verify_and_ours_match() {
    let fx = Fixture::load();
    let w = &fx.json["witness_cosignatures"];
    let time = w["timestamp"].as_u64().unwrap();
    let witnesses: Vec<(Ed25519NoteKey, Verifier)> = w["witnesses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            let seed = B64.decode(x["ed25519_seed_b64"].as_str().unwrap()).unwrap();
            let key =
                Ed25519NoteKey::from_seed(x["name"].as_str().unwrap(), KeyKind::Cosignature, &seed)
                    .unwrap();
            let vkey = Verifier::from_vkey(x["vkey"].as_str().unwrap()).unwrap();
            assert_eq!(note::NoteSigner::verifier(&key), &vkey);
            (key, vkey)
        })
        .collect();
    for c in w["cosigned_checkpoints"].as_array().unwrap() {
        let text = c["text"].as_str().unwrap();
        assert_eq!(
            note::cosigned_message(time, text),
            c["cosignature_signed_message"].as_str().unwrap().as_bytes()
        );
        let signed = Note::parse(c["signed_note"].as_str().unwrap().as_bytes()).unwrap();
        let keys: Vec<Verifier> = std::iter::once(fx.log_key())
            .chain(witnesses.iter().map(|(_, v)| v.clone()))
            .collect();
        let verified = signed.verify(&keys).unwrap();
        assert_eq!(verified.len(), 3);
        assert!(verified.iter().skip(1).all(|v| v.time == Some(time)));
        // Our cosignatures are the fixture's, byte for byte.
        for (key, _) in &witnesses {
            let ours = note::sign(text, key, time).unwrap();
            assert!(signed.signatures().contains(&ours));
        }
        // A cosignature over another time does not verify as the fixture's.
        let mut altered = signed.clone();
        let mut late = note::sign(text, &witnesses[0].0, time + 1).unwrap();
        late.signature[..8].copy_from_slice(&time.to_be_bytes());
        altered.add_signature(late);
        assert!(matches!(altered.verify(&keys), Err(NoteError::Forged(_))));
    }
}

#[test]
fn checkpoints_have_one_spelling() {
    let root = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
    let ok = format!("example.com/log\n0\n{root}\n");
    assert_eq!(Checkpoint::parse(&ok).unwrap().to_text(), ok);
    for bad in [
        format!("example.com/log\n00\n{root}\n"),
        format!("example.com/log\n+1\n{root}\n"),
        format!("example.com/log\n1\n{root}"),
        format!("example.com/log\n1\n{root}\n\n"),
        format!("\n1\n{root}\n"),
        "example.com/log\n1\nAAAA\n".to_owned(),
        format!("example.com/log\n18446744073709551616\n{root}\n"),
    ] {
        assert!(Checkpoint::parse(&bad).is_err(), "{bad:?}");
    }
}

/// Our writer, growing the log the way aics-tlog did (260 entries, then 255 more), writes
/// the fixture's files byte for byte, partial tiles included, and the signed roots.
#[test]
fn growing_the_fixture_log_writes_its_files() {
    let fx = Fixture::load();
    let entries: Vec<Vec<u8>> = (0..515).map(|i| format!("leaf {i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
    let mut written: std::collections::HashMap<TilePath, Vec<u8>> = Default::default();
    let mut empty = TileHashes::new(0, |t: &TilePath| Err(TileError::Missing(t.to_string())));
    let first = sealwright_tlog::writer::grow(&mut empty, 0, &[], &refs[..260]).unwrap();
    assert_eq!(first.root, fx.checkpoint(260).root);
    written.extend(first.files);
    let partial = written[&TilePath {
        kind: TileKind::Entries,
        index: 1,
        width: 4,
    }]
        .clone();
    let old_partial = decode_bundle(&partial).unwrap();
    let snapshot = written.clone();
    let mut old = TileHashes::new(260, |t: &TilePath| {
        snapshot
            .get(t)
            .cloned()
            .ok_or(TileError::Missing(t.to_string()))
    });
    let second = sealwright_tlog::writer::grow(&mut old, 260, &old_partial, &refs[260..]).unwrap();
    assert_eq!(second.root, fx.checkpoint(515).root);
    written.extend(second.files);
    for (path, bytes) in &written {
        assert_eq!(&fx.tile(path).unwrap(), bytes, "{path}");
    }
    // Every file of the fixture's log directory is one we wrote.
    let mut on_disk = Vec::new();
    fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, base, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().to_str().unwrap().to_owned());
            }
        }
    }
    walk(&fx.dir.join("log/tile"), &fx.dir.join("log"), &mut on_disk);
    for f in on_disk {
        assert!(
            written.contains_key(&TilePath::parse(&f).unwrap()),
            "{f} not written"
        );
    }
}
