//! P2: a repository whose root (with a file key, threshold 2), targets, snapshot and
//! timestamp keys live on a PKCS#11 token (Debian's SoftHSM2, a private token made here)
//! publishes; python-tuf's ngclient, from the first root, downloads the release — so every
//! signature the token made (Ed25519, ECDSA P-256 and RSA-PSS) verifies with python-tuf —
//! and no key file of a token key exists. The PIN comes from the URI's pin-source file.
//! Then the signer agent takes the online keys, holding a session on the token: the next
//! release, signed through it, is downloaded by python-tuf and installed by our client; and
//! `key rotate root --pkcs11` moves root's file key onto the token, which python-tuf follows.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::Scratch;
use sealwright_pkcs11::testing::{softhsm_token, SOFTHSM2_MODULE as MODULE};

#[test]
fn a_repository_with_its_keys_on_a_token_publishes_what_python_tuf_accepts() {
    let s = Scratch::new();
    let repo = s.repo_arg();
    s.ok(&["init", &repo]);
    let pin = softhsm_token(&s.path().join("hsm"), "release").unwrap_or_else(|e| panic!("{e}"));
    for (name, kind) in [
        ("root-hsm", "ed25519"),
        ("targets-hsm", "ecdsa"),
        ("snapshot-hsm", "rsa"),
        ("timestamp-hsm", "ed25519"),
    ] {
        let uri = format!(
            "pkcs11:token=release;object={name}?module-path={MODULE}&pin-source={}",
            pin.display()
        );
        let out = s.ok(&[
            "--repo", &repo, "--json", "key", "generate", name, "--type", kind, "--pkcs11", &uri,
        ]);
        let added: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(added["name"], name);
        assert!(
            !s.repo().join(format!("keys/{name}.pem")).exists(),
            "a key file for {name}"
        );
    }
    // The roles move to the token; root needs both its file key and the token's.
    let mut policy = sealwright_repo::Policy::load(&s.repo()).unwrap();
    for (role, keys, threshold) in [
        ("root", vec!["root-key", "root-hsm"], 2),
        ("targets", vec!["targets-hsm"], 1),
        ("snapshot", vec!["snapshot-hsm"], 1),
        ("timestamp", vec!["timestamp-hsm"], 1),
    ] {
        let r = policy.roles.get_mut(role).unwrap();
        r.keys = keys.into_iter().map(str::to_owned).collect();
        r.threshold = threshold;
    }
    policy.save(&s.repo()).unwrap();
    assert!(policy.keys["targets-hsm"]
        .private
        .as_deref()
        .unwrap()
        .starts_with("pkcs11:token=release;object=targets-hsm;id=%"));

    s.add_release(&repo, b"built on a token's word", "app", "1.0.0");
    s.ok(&["--repo", &repo, "publish"]);
    s.ok(&["--repo", &repo, "verify"]);
    let root = s.repo().join("published/metadata/1.root.json");
    let (ok, report, stderr) = common::ngclient(
        &s.repo().join("published"),
        &root,
        &["app/1.0.0/app.bin"],
        &[],
        &s.path().join("downloads"),
    );
    assert!(ok, "python-tuf refused: {stderr}\n{report}");
    let root2: serde_json::Value = serde_json::from_slice(
        &std::fs::read(s.repo().join("published/metadata/2.root.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(root2["signatures"].as_array().unwrap().len(), 2, "{root2}");

    // The online keys move into the signer agent, which holds a session on the token, not
    // key bytes; the publisher reaches them through its socket. A device follows.
    let uid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(s.path()).unwrap());
    let socket = s.path().join("agent/run/agent.sock");
    let mut config = format!("socket = {socket:?}\n");
    let mut policy = sealwright_repo::Policy::load(&s.repo()).unwrap();
    for role in ["timestamp", "snapshot"] {
        let entry = policy.keys.get_mut(&format!("{role}-hsm")).unwrap();
        let uri = entry
            .private
            .replace(format!("agent:{}", socket.display()))
            .unwrap();
        config.push_str(&format!("[[keys]]\nrole = \"{role}\"\npkcs11 = {uri:?}\n"));
    }
    config.push_str(&format!(
        "[[callers]]\nuid = {uid}\nroles = [\"timestamp\", \"snapshot\"]\n"
    ));
    policy.save(&s.repo()).unwrap();
    let config_file = s.path().join("agent.toml");
    std::fs::write(&config_file, config).unwrap();
    let agent = common::serve_agent(&s, &config_file, &socket, None);
    s.add_release(
        &repo,
        b"signed through the agent's token session",
        "app",
        "1.1.0",
    );
    s.ok(&["--repo", &repo, "publish"]);
    let (ok, report, stderr) = common::ngclient(
        &s.repo().join("published"),
        &root,
        &["app/1.1.0/app.bin"],
        &[],
        &s.path().join("downloads-2"),
    );
    assert!(
        ok,
        "python-tuf refused the agent's signatures: {stderr}\n{report}"
    );
    let device = s.device("device", &root, "app", &[]);
    let bundle = s.bundle("app", &s.path().join("app.bundle"));
    let updated = s.update_from(&device, &bundle);
    assert!(
        updated.status.success(),
        "{}",
        String::from_utf8_lossy(&updated.stderr)
    );
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(device.join("state.json")).unwrap()).unwrap();
    assert_eq!(state["current_version"], "1.1.0", "{state}");

    // Root leaves files altogether: its file key is rotated onto the token. The new root is
    // signed by the old root keys (file + token) and the new ones (both on the token), and
    // python-tuf walks from the first root to it.
    let uri = format!(
        "pkcs11:token=release;object=root-hsm-2?module-path={MODULE}&pin-source={}",
        pin.display()
    );
    s.ok(&[
        "--repo", &repo, "key", "rotate", "root", "--key", "root-key", "--pkcs11", &uri,
    ]);
    let policy = sealwright_repo::Policy::load(&s.repo()).unwrap();
    assert!(policy.roles["root"].keys.iter().all(|k| policy.keys[k]
        .private
        .as_deref()
        .unwrap()
        .starts_with("pkcs11:")));
    s.add_release(&repo, b"root on the token", "app", "1.2.0");
    s.ok(&["--repo", &repo, "publish"]);
    let (ok, report, stderr) = common::ngclient(
        &s.repo().join("published"),
        &root,
        &["app/1.2.0/app.bin"],
        &[],
        &s.path().join("downloads-3"),
    );
    assert!(
        ok,
        "python-tuf did not follow the root onto the token: {stderr}\n{report}"
    );
    drop(agent);

    // A wrong PIN is refused before anything is signed.
    std::fs::write(&pin, "9999\n").unwrap();
    s.add_release(&repo, b"second", "app", "1.3.0");
    let refused = s.run(&["--repo", &repo, "publish"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("PIN"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}
