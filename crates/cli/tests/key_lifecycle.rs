//! P5: `key rotate` and `key revoke`, followed by devices. Root and targets keys are
//! rotated — each time a new root signed by the old and new root keys — and our client (a
//! device updating from bundles) and python-tuf's ngclient (keeping its trusted metadata
//! between runs, as a device does) follow every step. Then a thief with the timestamp key
//! signs a timestamp that locks python-tuf out (a fast-forward attack); `key revoke` takes
//! the key out, and the locked-out client recovers from the new root.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::{Path, PathBuf};

use common::{copy_tree, Scratch, PASSPHRASE};
use sealwright_crypto::Signer as _;

struct World {
    s: Scratch,
    repo: String,
    device: PathBuf,
    python_cache: PathBuf,
}

impl World {
    fn new() -> Self {
        let s = Scratch::new();
        let repo = s.repo_arg();
        s.ok(&["init", &repo]);
        s.add_release(&repo, b"app 1.0.0", "app", "1.0.0");
        s.ok(&["--repo", &repo, "publish"]);
        let device = s.device(
            "device",
            &s.repo().join("published/metadata/1.root.json"),
            "app",
            &[],
        );
        let python_cache = s.path().join("python-tuf");
        World {
            s,
            repo,
            device,
            python_cache,
        }
    }

    fn key(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--repo", &self.repo, "--json", "key"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.s.ok(&all)).unwrap()
    }

    fn release(&self, version: &str) {
        self.s.add_release(
            &self.repo,
            format!("app {version}").as_bytes(),
            "app",
            version,
        );
        self.s.ok(&["--repo", &self.repo, "publish"]);
    }

    /// Our client installs `version` from a bundle of the repository.
    fn device_follows(&self, version: &str) {
        let bundle = self
            .s
            .bundle("app", &self.s.path().join(format!("{version}.bundle")));
        let out = self.s.update_from(&self.device, &bundle);
        assert!(
            out.status.success(),
            "our client: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["version"], version);
    }

    /// python-tuf, from what it trusted last, downloads `version` from `tree`.
    fn python_follows(&self, tree: &Path, version: &str) -> (bool, serde_json::Value, String) {
        common::ngclient_device(
            tree,
            &self.s.repo().join("published/metadata/1.root.json"),
            Some(&self.python_cache),
            &[&format!("app/{version}/app.bin")],
            &[],
            &self.s.path().join("downloads"),
        )
    }

    fn policy(&self) -> sealwright_repo::Policy {
        sealwright_repo::Policy::load(&self.s.repo()).unwrap()
    }

    fn root(&self, version: u64) -> serde_json::Value {
        serde_json::from_slice(
            &std::fs::read(
                self.s
                    .repo()
                    .join(format!("published/metadata/{version}.root.json")),
            )
            .unwrap(),
        )
        .unwrap()
    }
}

#[test]
fn rotated_and_revoked_keys_are_followed_by_our_client_and_python_tuf() {
    let w = World::new();
    let published = w.s.repo().join("published");
    let (ok, report, stderr) = w.python_follows(&published, "1.0.0");
    assert!(ok, "{stderr}\n{report}");
    w.device_follows("1.0.0");

    // Root rotation: the new root is signed by the old key and the new one.
    let old_root = w.policy().keys["root-key"].keyid.clone();
    let rotated = w.key(&["rotate", "root"]);
    assert_eq!(rotated["key"], "root-key");
    assert_eq!(
        rotated["replaced_by"][0],
        serde_json::json!(["root", "root-key-2"])
    );
    let root2 = w.root(2);
    let signers: Vec<&str> = root2["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["keyid"].as_str().unwrap())
        .collect();
    let new_root = w.policy().keys["root-key-2"].keyid.clone();
    assert!(
        signers.contains(&old_root.as_str()) && signers.contains(&new_root.as_str()),
        "{signers:?}"
    );
    assert!(
        !w.policy().keys.contains_key("root-key"),
        "the old key is still in the policy"
    );
    assert!(!w.s.repo().join("keys/root-key.pem").exists());
    assert!(w
        .s
        .repo()
        .join(rotated["retired_file"].as_str().unwrap())
        .exists());
    w.release("1.1.0");
    let (ok, report, stderr) = w.python_follows(&published, "1.1.0");
    assert!(ok, "{stderr}\n{report}");
    w.device_follows("1.1.0");

    // Targets rotation: root names the new targets key (signed by the rotated root key).
    w.key(&["rotate", "targets"]);
    assert_eq!(w.policy().roles["targets"].keys, ["targets-key-2"]);
    w.release("1.2.0");
    let (ok, report, stderr) = w.python_follows(&published, "1.2.0");
    assert!(ok, "{stderr}\n{report}");
    w.device_follows("1.2.0");

    // A thief with the timestamp key (a copy of the file) signs a timestamp far in the
    // future: python-tuf trusts it and is locked out of the honest repository.
    let pass =
        sealwright_repo::FixedPassphrase(sealwright_crypto::Passphrase::new(PASSPHRASE.to_owned()));
    let keyring = sealwright_repo::Keyring::new(&w.s.repo(), &pass);
    let stolen = keyring.open(&w.policy(), "timestamp-key").unwrap().unwrap();
    let mirror = w.s.path().join("mirror");
    copy_tree(&published, &mirror);
    let mut ts: serde_json::Value =
        serde_json::from_slice(&std::fs::read(published.join("metadata/timestamp.json")).unwrap())
            .unwrap();
    ts["signed"]["version"] = (ts["signed"]["version"].as_u64().unwrap() + 1000).into();
    ts["signed"]["meta"]["snapshot.json"] = serde_json::json!({"version": 999_999});
    let bytes = sealwright_crypto::canonical::to_canonical_json(&ts["signed"]).unwrap();
    ts["signatures"] = serde_json::json!([{
        "keyid": stolen.keyid(),
        "sig": hex::encode(stolen.sign(&bytes).unwrap()),
    }]);
    std::fs::write(
        mirror.join("metadata/timestamp.json"),
        serde_json::to_vec(&ts).unwrap(),
    )
    .unwrap();
    let (ok, _, _) = w.python_follows(&mirror, "1.2.0");
    assert!(!ok, "python-tuf accepted a snapshot that does not exist");
    let (ok, _, stderr) = w.python_follows(&published, "1.2.0");
    assert!(
        !ok,
        "python-tuf was not locked out by the forged timestamp: {stderr}"
    );

    // The owner revokes the stolen key by a prefix of its id: it leaves the timestamp role,
    // which gets a new key; the new root rotates the timestamp key and python-tuf recovers.
    let stolen_id = stolen.keyid().to_owned();
    let revoked = w.key(&[
        "revoke",
        &stolen_id[..12],
        "--reason",
        "key file copied by a thief",
    ]);
    assert_eq!(revoked["key"], "timestamp-key");
    assert_eq!(revoked["removed_from"], serde_json::json!(["timestamp"]));
    assert!(!w.policy().keys.values().any(|k| k.keyid == stolen_id));
    w.release("1.3.0");
    let (ok, report, stderr) = w.python_follows(&published, "1.3.0");
    assert!(ok, "python-tuf did not recover: {stderr}\n{report}");
    w.device_follows("1.3.0");

    // Each step is in the audit log, the revocation with its reason.
    let records = common::audit_records(&w.s.repo());
    assert_eq!(
        records
            .iter()
            .filter(|r| r["action"] == "key-rotate")
            .count(),
        2
    );
    let revocation = records
        .iter()
        .find(|r| r["action"] == "key-revoke")
        .unwrap();
    assert_eq!(
        revocation["details"]["reason"],
        "key file copied by a thief"
    );

    // Revoking what nothing trusts, or without a reason, is refused.
    assert!(!w
        .s
        .run(&["--repo", &w.repo, "key", "revoke", &stolen_id, "--reason", "again"])
        .status
        .success());
    assert!(!w
        .s
        .run(&[
            "--repo",
            &w.repo,
            "key",
            "revoke",
            "snapshot-key",
            "--reason",
            " "
        ])
        .status
        .success());
}

/// An online key held by the signer agent: the agent makes its successor (`signer
/// add-key`), the publisher imports its public half as an agent key and revokes the old one;
/// the new root names only the new timestamp key, the agent signs with it, and python-tuf
/// follows.
#[test]
fn an_agent_held_timestamp_key_is_replaced_and_revoked() {
    let s = Scratch::new();
    let repo = s.repo_arg();
    s.ok(&["init", &repo]);
    let (agent, socket) = common::start_agent(&s, None);
    common::online_keys_in_agent(&s.repo(), &socket);
    s.add_release(&repo, b"app 1.0.0", "app", "1.0.0");
    s.ok(&["--repo", &repo, "publish"]);
    // Without a successor in the agent, revoking says where to make one.
    let revoke = [
        "--repo",
        &repo,
        "key",
        "revoke",
        "timestamp-key",
        "--reason",
        "stolen",
    ];
    let refused = s.run(&revoke);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("signer agent"));

    let config = s.path().join("agent/agent.toml");
    let added: serde_json::Value = serde_json::from_str(&s.ok(&[
        "--json",
        "signer",
        "add-key",
        "--config",
        config.to_str().unwrap(),
        "--role",
        "timestamp",
    ]))
    .unwrap();
    let name = added["name"].as_str().unwrap().to_owned();
    drop(agent);
    let restarted = common::serve_agent(&s, &config, &socket, None);
    let public = s.path().join(format!("agent/{name}.pub.pem"));
    s.ok(&[
        "--repo",
        &repo,
        "key",
        "import",
        public.to_str().unwrap(),
        "--name",
        &name,
        "--role",
        "timestamp",
        "--agent",
        socket.to_str().unwrap(),
    ]);
    s.ok(&revoke);
    let root2: serde_json::Value = serde_json::from_slice(
        &std::fs::read(s.repo().join("published/metadata/2.root.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        root2["signed"]["roles"]["timestamp"]["keyids"],
        serde_json::json!([added["keyid"]])
    );
    s.add_release(&repo, b"app 1.1.0", "app", "1.1.0");
    s.ok(&["--repo", &repo, "publish"]);
    let (ok, report, stderr) = common::ngclient(
        &s.repo().join("published"),
        &s.repo().join("published/metadata/1.root.json"),
        &["app/1.1.0/app.bin"],
        &[],
        &s.path().join("downloads"),
    );
    assert!(ok, "{stderr}\n{report}");
    drop(restarted);
}
