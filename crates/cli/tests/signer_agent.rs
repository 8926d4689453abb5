//! `sealwright signer serve`: the agent signs only what its rules allow, logs everything,
//! keeps its socket private, stops cleanly, and a repository publishes through it without
//! holding its online keys.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use common::{audit_records, wait_for_socket, Scratch};
use sealwright_repo::agent::request_signatures;
use serde_json::{json, Value};

struct Agent {
    child: Child,
    socket: PathBuf,
}

impl Agent {
    /// The agent's audit records (after checking the hash chain is intact).
    fn audit(&self) -> Vec<Value> {
        audit_records(self.socket.parent().unwrap())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A repository, and an agent holding its timestamp key for `roles` of our own uid.
fn agent(s: &Scratch, roles: &[&str]) -> Agent {
    let repo = s.repo_arg();
    if !s.repo().exists() {
        s.ok(&["init", &repo]);
    }
    let uid = std::fs::metadata(s.path()).unwrap().uid();
    let socket = s.path().join("agent/agent.sock");
    let config = s.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "socket = {socket:?}\n[[keys]]\nrole = \"timestamp\"\nfile = {:?}\n[[keys]]\nrole = \"snapshot\"\nfile = {:?}\n[[callers]]\nuid = {uid}\nroles = {roles:?}\n",
            s.repo().join("keys/timestamp-key.pem"),
            s.repo().join("keys/snapshot-key.pem"),
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_sealwright"))
        .args(["signer", "serve", "--config"])
        .arg(&config)
        .env("SEALWRIGHT_PASSPHRASE_FILE", s.path().join("passphrase"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    wait_for_socket(&socket);
    Agent { child, socket }
}

fn timestamp(version: u64, days: i64) -> Value {
    json!({
        "_type": "timestamp", "spec_version": "1.0.31", "version": version,
        "expires": (Utc::now() + chrono::Duration::days(days)).format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "meta": {"snapshot.json": {"version": version}},
    })
}

fn public_key(repo: &Path, name: &str) -> sealwright_crypto::PublicKey {
    let policy = sealwright_repo::Policy::load(repo).unwrap();
    policy.keys[name].public_key().unwrap()
}

#[test]
fn signs_within_its_rules_and_refuses_everything_else() {
    let s = Scratch::new();
    let a = agent(&s, &["timestamp"]);
    let mode = std::fs::metadata(&a.socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");

    let signed = timestamp(10, 1);
    let sigs = request_signatures(&a.socket, "timestamp", &signed).unwrap();
    assert_eq!(sigs.len(), 1);
    let key = public_key(&s.repo(), "timestamp-key");
    let canonical = sealwright_crypto::canonical::to_canonical_json(&signed).unwrap();
    key.verify(&canonical, &sigs[0].1).unwrap();
    assert_eq!(sigs[0].0, key.keyid());

    let refused = |role: &str, doc: Value, why: &str| {
        let err = request_signatures(&a.socket, role, &doc)
            .unwrap_err()
            .to_string();
        assert!(err.contains(why), "{role}: {err}");
    };
    // Not allowed for this caller (the agent holds the key, the caller may not use it).
    let mut snap = timestamp(11, 1);
    snap["_type"] = "snapshot".into();
    refused("snapshot", snap, "may not have snapshot signed");
    // A targets document presented as a timestamp.
    let mut targets = timestamp(11, 1);
    targets["_type"] = "targets".into();
    refused("timestamp", targets, "not a timestamp");
    // Rollback and replay.
    refused("timestamp", timestamp(10, 1), "not above 10");
    refused("timestamp", timestamp(3, 1), "not above 10");
    // Freeze: too far ahead, or already expired.
    refused("timestamp", timestamp(11, 60), "more than 7 days");
    refused("timestamp", timestamp(11, -1), "in the past");
    // Burning the version space: 2^64-1 would make every later signature impossible.
    refused("timestamp", timestamp(u64::MAX, 1), "jumps more than 100");
    refused("timestamp", timestamp(111, 1), "jumps more than 100");
    // The version that was refused is still available.
    assert_eq!(
        request_signatures(&a.socket, "timestamp", &timestamp(11, 1))
            .unwrap()
            .len(),
        1
    );

    // An oversized frame is refused before it is read.
    let mut raw = std::os::unix::net::UnixStream::connect(&a.socket).unwrap();
    raw.write_all(&(64u32 * 1024 * 1024).to_be_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = raw.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    assert!(text.contains("over the"), "{text}");

    // Every decision is in the agent's hash-chained audit log, with the caller's uid.
    let records = a.audit();
    assert_eq!(records.len(), 11, "{records:?}");
    let signed: Vec<&Value> = records.iter().filter(|r| r["action"] == "sign").collect();
    assert_eq!(signed.len(), 2, "{records:?}");
    assert_eq!(signed[0]["subject"], "timestamp");
    assert_eq!(signed[0]["details"]["version"], 10);
    let uid = std::fs::metadata(s.path()).unwrap().uid();
    assert!(records.iter().all(|r| r["actor"] == format!("uid:{uid}")));
    assert_eq!(
        records
            .iter()
            .filter(|r| r["action"] == "sign-refused")
            .count(),
        9
    );
}

#[test]
fn stops_on_sigterm_and_removes_its_socket() {
    let s = Scratch::new();
    let mut a = agent(&s, &["timestamp"]);
    let status = Command::new("kill")
        .args(["-TERM", &a.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = a.child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!a.socket.exists());
}

#[test]
fn a_repository_publishes_through_the_agent_without_its_online_keys() {
    let s = Scratch::new();
    let a = agent(&s, &["timestamp", "snapshot"]);
    let repo = s.repo_arg();
    // Point the policy at the agent and take the online key files off the repository.
    let policy_path = s.repo().join("sealwright.toml");
    let mut text = std::fs::read_to_string(&policy_path).unwrap();
    for name in ["timestamp-key", "snapshot-key"] {
        text = text.replace(
            &format!("private = \"file:keys/{name}.pem\""),
            &format!("private = \"agent:{}\"", a.socket.display()),
        );
        std::fs::rename(
            s.repo().join(format!("keys/{name}.pem")),
            s.path().join(format!("{name}.pem")),
        )
        .unwrap();
    }
    std::fs::write(&policy_path, text).unwrap();
    s.add_release(&repo, b"app", "app", "1.0.0");
    s.ok(&["--repo", &repo, "publish"]);
    s.ok(&["--repo", &repo, "verify"]);
    let records = a.audit();
    for role in ["snapshot", "timestamp"] {
        assert!(
            records
                .iter()
                .any(|r| r["action"] == "sign" && r["subject"] == role),
            "{records:?}"
        );
    }
    // A write failing after the agent signed (a directory where the next snapshot goes)
    // fails this publish, and the next one goes above what the agent signed instead of
    // being refused by it for good.
    let snapshot_version = |dir: &std::path::Path| -> u64 {
        let ts: Value = serde_json::from_slice(
            &std::fs::read(dir.join("published/metadata/timestamp.json")).unwrap(),
        )
        .unwrap();
        ts["signed"]["meta"]["snapshot.json"]["version"]
            .as_u64()
            .unwrap()
    };
    let blocked = s.repo().join(format!(
        "published/metadata/{}.snapshot.json",
        snapshot_version(&s.repo()) + 1
    ));
    std::fs::create_dir(&blocked).unwrap();
    std::fs::write(blocked.join("x"), b"in the way").unwrap();
    s.add_release(&repo, b"app 1.0.1", "app", "1.0.1");
    let out = s.run(&["--repo", &repo, "publish"]);
    assert!(!out.status.success(), "the publish should have failed");
    std::fs::remove_dir_all(&blocked).unwrap();
    s.ok(&["--repo", &repo, "publish"]);
    s.ok(&["--repo", &repo, "verify"]);
    // With the agent gone, publishing fails clearly instead of signing some other way.
    drop(a);
    s.add_release(&repo, b"app 2", "app", "1.1.0");
    s.fails(&["--repo", &repo, "publish"], "signer agent");
}
