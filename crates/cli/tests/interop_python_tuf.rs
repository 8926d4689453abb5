//! Interoperability with python-tuf, proven by python-tuf itself:
//! - its ngclient refreshes and downloads targets from repositories we publish (top-level,
//!   `paths` delegation, `path_hash_prefixes` delegation, TAP 15 succinct bins), per key type;
//! - repositories its Metadata API writes are verified by `sealwright verify`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::process::Command;

use common::{ngclient, python, Scratch};

fn publish_everything(s: &Scratch, key_type: &str) -> Vec<String> {
    let repo = s.repo_arg();
    s.ok(&["init", &repo, "--key-type", key_type]);
    let files = s.path().join("files");
    std::fs::create_dir_all(files.join("tree/sub")).unwrap();
    std::fs::write(files.join("app.bin"), b"top-level artifact").unwrap();
    std::fs::write(files.join("tree/sub/lib.txt"), b"nested file of a tree").unwrap();
    std::fs::write(files.join("product.bin"), b"delegated by path pattern").unwrap();
    std::fs::write(files.join("h.txt"), b"delegated by hash prefix").unwrap();
    for i in 0..6 {
        std::fs::write(
            files.join(format!("bin{i}.txt")),
            format!("in a succinct bin {i}"),
        )
        .unwrap();
    }
    let f = |n: &str| files.join(n).display().to_string();
    s.ok(&[
        "--repo",
        &repo,
        "add",
        &f("app.bin"),
        &f("tree"),
        "--name",
        "app",
        "--version",
        "1.0.0",
        "--channel",
        "stable",
    ]);
    s.ok(&[
        "--repo",
        &repo,
        "delegate",
        "product",
        "--paths",
        "product/*/*",
        "--key-type",
        key_type,
    ]);
    s.ok(&[
        "--repo",
        &repo,
        "add",
        "--delegation",
        "product",
        &f("product.bin"),
        "--name",
        "product",
        "--version",
        "2.0.0",
    ]);
    let hashed_path = "hashed/0.1.0/h.txt";
    let prefix = &sealwright_crypto::digest::sha256_hex(hashed_path.as_bytes())[..2];
    s.ok(&[
        "--repo",
        &repo,
        "delegate",
        "hashed",
        "--hash-prefixes",
        prefix,
        "--key-type",
        key_type,
    ]);
    s.ok(&[
        "--repo",
        &repo,
        "add",
        "--delegation",
        "hashed",
        &f("h.txt"),
        "--name",
        "hashed",
        "--version",
        "0.1.0",
    ]);
    s.ok(&[
        "--repo",
        &repo,
        "delegate",
        "bundles",
        "--paths",
        "bins/*/*",
        "--key-type",
        key_type,
    ]);
    s.ok(&[
        "--repo",
        &repo,
        "delegate",
        "bins",
        "--succinct",
        "3",
        "--parent",
        "bundles",
        "--key-type",
        key_type,
    ]);
    let bins: Vec<String> = (0..6).map(|i| f(&format!("bin{i}.txt"))).collect();
    let mut args = vec!["--repo", &repo, "add", "--delegation", "bins"];
    args.extend(bins.iter().map(String::as_str));
    args.extend(["--name", "bins", "--version", "1.0.0"]);
    s.ok(&args);
    s.ok(&["--repo", &repo, "publish"]);
    let mut targets = vec![
        "app/1.0.0/app.bin".to_owned(),
        "app/1.0.0/sub/lib.txt".to_owned(),
        "product/2.0.0/product.bin".to_owned(),
        // The channel pointer staged with the single-file release (python-tuf reads it as
        // an ordinary target).
        "product/channels/stable.json".to_owned(),
        hashed_path.to_owned(),
    ];
    targets.extend((0..6).map(|i| format!("bins/1.0.0/bin{i}.txt")));
    targets
}

fn python_tuf_downloads_what_we_publish(key_type: &str) {
    let s = Scratch::new();
    let targets = publish_everything(&s, key_type);
    let published = s.repo().join("published");
    let root = published.join("metadata/1.root.json");
    let refs: Vec<&str> = targets.iter().map(String::as_str).collect();
    let out = s.path().join("downloads");
    let (ok, report, stderr) = ngclient(
        &published,
        &root,
        &refs,
        &["app/1.0.0/missing.bin", "product/2.0.0/nope"],
        &out,
    );
    assert!(
        ok,
        "python-tuf failed on our {key_type} repository: {report}\n{stderr}"
    );
    for t in &targets {
        assert!(
            report["targets"][t].is_string(),
            "python-tuf did not download {t}: {report}"
        );
    }
    assert_eq!(
        report["targets"]["app/1.0.0/app.bin"],
        sealwright_crypto::digest::sha256_hex(b"top-level artifact")
    );
    // Our own offline verification agrees.
    let v = s.ok(&["--repo", &s.repo_arg(), "--json", "verify"]);
    let v: serde_json::Value = serde_json::from_str(&v).unwrap();
    assert_eq!(v["targets_verified"], targets.len());
}

#[test]
fn python_tuf_downloads_from_our_ed25519_repository() {
    python_tuf_downloads_what_we_publish("ed25519");
}

#[test]
fn python_tuf_downloads_from_our_ecdsa_repository() {
    python_tuf_downloads_what_we_publish("ecdsa");
}

#[test]
fn python_tuf_downloads_from_our_rsa_repository() {
    python_tuf_downloads_what_we_publish("rsa");
}

#[test]
fn python_tuf_refuses_our_repository_after_tampering() {
    let s = Scratch::new();
    publish_everything(&s, "ed25519");
    let published = s.repo().join("published");
    // Change one byte of a signed delegated role: python-tuf must refuse it.
    let meta = published.join("metadata/1.product.json");
    let mut bytes = std::fs::read(&meta).unwrap();
    let pos = bytes.windows(7).position(|w| w == b"product").unwrap();
    bytes[pos] = b'P';
    std::fs::write(&meta, bytes).unwrap();
    let (ok, report, _) = ngclient(
        &published,
        &published.join("metadata/1.root.json"),
        &["product/2.0.0/product.bin"],
        &[],
        &s.path().join("dl"),
    );
    assert!(!ok, "python-tuf accepted tampered metadata: {report}");
    let v = s.run(&["--repo", &s.repo_arg(), "verify"]);
    assert!(
        !v.status.success(),
        "sealwright verify accepted tampered metadata"
    );
}

fn we_verify_python_tuf_repository(key_type: &str, extra: &[&str]) {
    let s = Scratch::new();
    let (python, dir) = python();
    let out = s.path().join("pyrepo");
    let status = Command::new(python)
        .arg(dir.join("make_python_repo.py"))
        .arg(&out)
        .args(["--key-type", key_type])
        .args(extra)
        .status()
        .unwrap();
    assert!(status.success(), "make_python_repo.py failed");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let out_arg = out.display().to_string();
    let root_arg = out.join("metadata/1.root.json").display().to_string();
    let report = s.ok(&[
        "--json",
        "verify",
        "--published",
        &out_arg,
        "--root",
        &root_arg,
    ]);
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    let wanted = manifest["targets"].as_array().unwrap().len();
    assert!(
        report["targets_verified"].as_u64().unwrap() as usize >= wanted,
        "{report}"
    );
    let roles: Vec<&str> = report["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0].as_str().unwrap())
        .collect();
    for role in [
        "root",
        "timestamp",
        "snapshot",
        "targets",
        "paths-role",
        "nested-role",
        "hash-prefix-role",
        "bins-parent",
        "bin-0",
    ] {
        assert!(roles.contains(&role), "role {role} not verified: {roles:?}");
    }
    assert_eq!(report["root_version"], manifest["root_versions"]);

    // A flipped byte in one artifact is caught.
    let first = &manifest["targets"][0];
    let stored = out.join(first["stored_as"].as_str().unwrap());
    let mut data = std::fs::read(&stored).unwrap();
    data[0] ^= 1;
    std::fs::write(&stored, data).unwrap();
    s.fails(
        &["verify", "--published", &out_arg, "--root", &root_arg],
        first["path"].as_str().unwrap(),
    );
}

#[test]
fn we_verify_python_tuf_ed25519_repository() {
    we_verify_python_tuf_repository("ed25519", &[]);
}

#[test]
fn we_verify_python_tuf_ecdsa_repository() {
    we_verify_python_tuf_repository("ecdsa", &[]);
}

#[test]
fn we_verify_python_tuf_rsa_repository_with_root_rotation() {
    we_verify_python_tuf_repository("rsa", &["--root-threshold", "2", "--root-versions", "2"]);
}

#[test]
fn replacing_a_roles_key_resigns_it_and_python_tuf_follows() {
    let s = Scratch::new();
    let repo = s.repo_arg();
    s.ok(&["init", &repo]);
    let f = s.path().join("a.bin");
    std::fs::write(&f, b"payload").unwrap();
    s.ok(&[
        "--repo",
        &repo,
        "add",
        &f.display().to_string(),
        "--name",
        "a",
        "--version",
        "1.0.0",
    ]);
    s.ok(&["--repo", &repo, "publish"]);
    // Rotate the targets key: add a new one, drop the old one from the role.
    s.ok(&[
        "--repo",
        &repo,
        "key",
        "generate",
        "targets-2",
        "--role",
        "targets",
    ]);
    let policy = s.repo().join("sealwright.toml");
    let text = std::fs::read_to_string(&policy).unwrap();
    let rotated = text.replace(
        "keys = [\n    \"targets-key\",\n    \"targets-2\",\n]",
        "keys = [\"targets-2\"]",
    );
    assert_ne!(text, rotated, "unexpected policy layout:\n{text}");
    std::fs::write(&policy, rotated).unwrap();
    let report: serde_json::Value =
        serde_json::from_str(&s.ok(&["--repo", &repo, "--json", "publish"])).unwrap();
    // Root changed (new key) and targets had to be re-signed by the new key.
    assert_eq!(report["roles"]["root"], 2, "{report}");
    assert_eq!(report["roles"]["targets"], 3, "{report}");
    let published = s.repo().join("published");
    let (ok, out, stderr) = ngclient(
        &published,
        &published.join("metadata/1.root.json"),
        &["a/1.0.0/a.bin"],
        &[],
        &s.path().join("dl"),
    );
    assert!(
        ok,
        "python-tuf refused the rotated repository: {out}\n{stderr}"
    );
    s.ok(&["--repo", &repo, "verify"]);
}
