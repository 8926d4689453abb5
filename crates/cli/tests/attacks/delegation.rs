//! A narrow delegation must never grant more than its paths (issue 9 A).
//!
//! The attacker holds the key of a role trusted only for `NAME/channels/*` (and the server
//! honestly signs snapshot and timestamp over whatever that role publishes, as a push
//! server does for a verified push). The channel pointer it signs is a hint that names an
//! artifact; the device must find that artifact through its own delegation search for the
//! artifact's path and check the download against that entry alone.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::common::Scratch;
use super::mirror::Mirror;
use super::{copy_tree, read_json, resign_with, stderr};

/// One forged role: its name, the edit of its `signed` object, the keys that re-sign it.
type Edit<'a> = (&'a str, &'a dyn Fn(&mut Value), &'a [&'a str]);

/// A repository whose top-level targets delegates `NAME/channels/*` of `app` to `chan`.
struct World {
    s: Scratch,
    repo: PathBuf,
    /// The honest published tree.
    tree: PathBuf,
}

impl World {
    fn new() -> World {
        let s = Scratch::new();
        let repo = s.path().join("repo");
        let r = repo.to_str().unwrap().to_owned();
        s.ok(&["init", &r]);
        s.ok(&[
            "--repo",
            &r,
            "delegate",
            "chan",
            "--paths",
            "app/channels/*",
        ]);
        s.add_release(&r, b"genuine 1.0.0", "app", "1.0.0");
        s.ok(&["--repo", &r, "publish"]);
        s.add_release(&r, b"genuine 1.1.0", "app", "1.1.0");
        s.ok(&["--repo", &r, "publish"]);
        let tree = s.path().join("honest");
        copy_tree(&repo.join("published"), &tree);
        World { s, repo, tree }
    }

    /// A copy of the honest tree in which `edits` were applied to the named roles (each
    /// re-signed by the keys given), with snapshot and timestamp signed over them as the
    /// server would.
    fn forge(&self, name: &str, edits: &[Edit<'_>]) -> PathBuf {
        let out = self.s.path().join(name);
        copy_tree(&self.tree, &out);
        let md = out.join("metadata");
        let mut ts = read_json(&md.join("timestamp.json"));
        let sv = ts["signed"]["meta"]["snapshot.json"]["version"]
            .as_u64()
            .unwrap();
        let mut snap = read_json(&md.join(format!("{sv}.snapshot.json")));
        for (role, edit, keys) in edits {
            let entry = format!("{role}.json");
            let v = snap["signed"]["meta"][&entry]["version"].as_u64().unwrap();
            let mut doc = read_json(&md.join(format!("{v}.{role}.json")));
            edit(&mut doc["signed"]);
            doc["signed"]["version"] = json!(v + 1);
            resign_with(&self.repo, &mut doc, keys);
            std::fs::write(
                md.join(format!("{}.{role}.json", v + 1)),
                super::bytes(&doc),
            )
            .unwrap();
            snap["signed"]["meta"][&entry] = json!({ "version": v + 1 });
        }
        snap["signed"]["version"] = json!(sv + 1);
        resign_with(&self.repo, &mut snap, &["snapshot-key"]);
        let snap_bytes = super::bytes(&snap);
        std::fs::write(md.join(format!("{}.snapshot.json", sv + 1)), &snap_bytes).unwrap();
        let tv = ts["signed"]["version"].as_u64().unwrap();
        ts["signed"]["version"] = json!(tv + 1);
        let mut meta = json!({ "version": sv + 1 });
        if ts["signed"]["meta"]["snapshot.json"]
            .get("length")
            .is_some()
        {
            meta["length"] = json!(snap_bytes.len());
            meta["hashes"] =
                json!({ "sha256": sealwright_crypto::digest::sha256_hex(&snap_bytes) });
        }
        ts["signed"]["meta"]["snapshot.json"] = meta;
        resign_with(&self.repo, &mut ts, &["timestamp-key"]);
        std::fs::write(md.join("timestamp.json"), super::bytes(&ts)).unwrap();
        out
    }

    /// A device pinned to the first root, following `app` on stable, served `tree`.
    fn device(&self, tree: &Path) -> (Mirror, PathBuf) {
        let work = self.s.path().join(format!("device-{}", rand_suffix()));
        std::fs::create_dir_all(&work).unwrap();
        let mirror = Mirror::start(tree, &work);
        let dir = work.join("dir");
        self.s.ok(&[
            "client",
            "init",
            "--dir",
            dir.to_str().unwrap(),
            "--root",
            self.tree.join("metadata/1.root.json").to_str().unwrap(),
            "--url",
            &mirror.url,
            "--ca",
            mirror.ca_pem.to_str().unwrap(),
            "--name",
            "app",
        ]);
        (mirror, dir)
    }
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::SeqCst).to_string()
}

fn update(dir: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_sealwright"))
        .args(["update", "--dir", dir.to_str().unwrap()])
        .env_remove("SEALWRIGHT_REPO")
        .output()
        .unwrap()
}

fn installed(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("current/app.bin")).unwrap_or_default()
}

/// The honest pointer of `version` as published in targets (its `custom.sealwright`).
fn honest_pointer(tree: &Path) -> Value {
    let ts = read_json(&tree.join("metadata/timestamp.json"));
    let sv = ts["signed"]["meta"]["snapshot.json"]["version"]
        .as_u64()
        .unwrap();
    let snap = read_json(&tree.join(format!("metadata/{sv}.snapshot.json")));
    let tv = snap["signed"]["meta"]["targets.json"]["version"]
        .as_u64()
        .unwrap();
    let t = read_json(&tree.join(format!("metadata/{tv}.targets.json")));
    t["signed"]["targets"]["app/channels/stable.json"].clone()
}

/// The pointer entry `chan` signs: `pointer` as both file hashes (irrelevant to the attack)
/// and `custom.sealwright`.
fn pointer_entry(pointer: &Value) -> Value {
    let bytes = serde_json::to_vec(pointer).unwrap();
    json!({
        "length": bytes.len(),
        "hashes": { "sha256": sealwright_crypto::digest::sha256_hex(&bytes) },
        "custom": { "sealwright": pointer },
    })
}

/// Moves the pointer from targets (the owner re-signs it without) into `chan`.
fn chan_signs(pointer: Value) -> impl Fn(&mut Value) {
    move |signed: &mut Value| {
        signed["targets"] = json!({ "app/channels/stable.json": pointer_entry(&pointer) });
    }
}

fn owner_drops_pointer(signed: &mut Value) {
    signed["targets"]
        .as_object_mut()
        .unwrap()
        .remove("app/channels/stable.json");
}

#[test]
fn a_channel_pointer_grants_no_artifact_its_signer_could_not_sign() {
    let w = World::new();
    let evil = b"#!/bin/sh\necho pwned\n".to_vec();
    let sha = sealwright_crypto::digest::sha256_hex(&evil);
    let pointer = json!({
        "name": "app", "version": "6.6.6", "channel": "stable",
        "target": "app/6.6.6/evil.sh", "length": evil.len(),
        "hashes": { "sha256": sha }, "recovery": false,
    });
    let chan = chan_signs(pointer);
    let forged = w.forge(
        "forged-evil",
        &[
            ("targets", &owner_drops_pointer, &["targets-key"]),
            ("chan", &chan, &["chan-key"]),
        ],
    );
    // The mirror serves the attacker's bytes where the pointer says they are.
    let dir = forged.join("targets/app/6.6.6");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{sha}.evil.sh")), &evil).unwrap();

    let (_mirror, device) = w.device(&forged);
    let out = update(&device);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "installed unsigned code: {err}");
    assert!(
        err.contains("no role trusted for that path signed it"),
        "{err}"
    );
    assert!(!device.join("current").exists());
    assert!(!device.join("releases/app-6.6.6").exists());
}

#[test]
fn a_pointer_whose_hashes_disagree_with_the_artifacts_own_entry_is_refused() {
    let w = World::new();
    // The artifact path is genuinely signed (app 1.1.0 by targets); the pointer claims
    // other bytes for it.
    let mut pointer = honest_pointer(&w.tree)["custom"]["sealwright"].clone();
    let evil = b"not the signed 1.1.0".to_vec();
    let sha = sealwright_crypto::digest::sha256_hex(&evil);
    pointer["length"] = json!(evil.len());
    pointer["hashes"] = json!({ "sha256": sha });
    let chan = chan_signs(pointer);
    let forged = w.forge(
        "forged-mismatch",
        &[
            ("targets", &owner_drops_pointer, &["targets-key"]),
            ("chan", &chan, &["chan-key"]),
        ],
    );
    let dir = forged.join("targets/app/1.1.0");
    std::fs::write(dir.join(format!("{sha}.app.bin")), &evil).unwrap();
    let (_mirror, device) = w.device(&forged);
    let out = update(&device);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("disagree with the artifact's own signed entry"),
        "{err}"
    );
    assert!(!device.join("current").exists());
}

#[test]
fn only_the_artifacts_signer_can_mark_a_downgrade_as_recovery() {
    let w = World::new();
    let (mirror, device) = w.device(&w.tree);
    let out = update(&device);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(installed(&device), b"genuine 1.1.0");

    // chan points stable back at the genuinely signed 1.0.0 and calls it a recovery.
    let mut pointer = honest_pointer(&w.tree)["custom"]["sealwright"].clone();
    let old = {
        let ts = read_json(&w.tree.join("metadata/timestamp.json"));
        let sv = ts["signed"]["meta"]["snapshot.json"]["version"]
            .as_u64()
            .unwrap();
        let snap = read_json(&w.tree.join(format!("metadata/{sv}.snapshot.json")));
        let tv = snap["signed"]["meta"]["targets.json"]["version"]
            .as_u64()
            .unwrap();
        read_json(&w.tree.join(format!("metadata/{tv}.targets.json")))["signed"]["targets"]
            ["app/1.0.0/app.bin"]
            .clone()
    };
    pointer["version"] = json!("1.0.0");
    pointer["target"] = json!("app/1.0.0/app.bin");
    pointer["length"] = old["length"].clone();
    pointer["hashes"] = old["hashes"].clone();
    pointer["recovery"] = json!(true);
    let chan = chan_signs(pointer);
    let forged = w.forge(
        "forged-recovery",
        &[
            ("targets", &owner_drops_pointer, &["targets-key"]),
            ("chan", &chan, &["chan-key"]),
        ],
    );
    mirror.serve_tree(&forged);
    let out = update(&device);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "downgraded: {err}");
    assert!(err.contains("not signed as a recovery release"), "{err}");
    assert_eq!(installed(&device), b"genuine 1.1.0");
}
