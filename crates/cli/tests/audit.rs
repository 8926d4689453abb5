//! The repository's audit log end to end: every action the CLI takes is recorded, the chain
//! verifies, and editing, removing or reordering a record (with SQLite, as someone holding
//! the file would) is detected and named.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::process::Command;

use common::Scratch;

/// A repository with a few audited actions behind it.
fn audited_repo() -> Scratch {
    let s = Scratch::new();
    let repo = s.repo_arg();
    s.ok(&["init", &repo]);
    s.ok(&[
        "--repo", &repo, "key", "generate", "spare", "--role", "targets",
    ]);
    s.add_release(&repo, b"app", "app", "1.0.0");
    s.ok(&["--repo", &repo, "publish"]);
    s
}

/// Runs SQL on the audit database with Python's sqlite3, dropping the guard-rail triggers
/// first, as an attacker holding the file would.
fn tamper(s: &Scratch, sql: &str) {
    let (python, _) = common::python();
    let db = s.repo().join("audit.sqlite3");
    let script = format!(
        "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nc.executescript('''DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete; {sql}''')\nc.commit()\n"
    );
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn actions_are_recorded_and_the_chain_verifies() {
    let s = audited_repo();
    let repo = s.repo_arg();
    let out = s.ok(&["--repo", &repo, "--json", "audit", "list", "--limit", "100"]);
    let records: serde_json::Value = serde_json::from_str(&out).unwrap();
    let actions: Vec<&str> = records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["init", "publish", "key-generate", "publish"],
        "{records}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&s.ok(&["--repo", &repo, "--json", "audit", "verify"])).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["records"], 4);
    assert_eq!(v["head"], records[3]["hash"]);
}

#[test]
fn a_refused_publish_is_recorded_too() {
    let s = audited_repo();
    let repo = s.repo_arg();
    let policy = s.repo().join("sealwright.toml");
    let text = std::fs::read_to_string(&policy).unwrap();
    // Require two targets keys, then hide the second one: the publish must be refused.
    std::fs::write(
        &policy,
        text.replacen(
            "[roles.targets]\nthreshold = 1",
            "[roles.targets]\nthreshold = 2",
            1,
        ),
    )
    .unwrap();
    std::fs::rename(s.repo().join("keys/spare.pem"), s.path().join("spare.pem")).unwrap();
    let file = s.path().join("app2.bin");
    std::fs::write(&file, b"app2").unwrap();
    s.ok(&[
        "--repo",
        &repo,
        "add",
        file.to_str().unwrap(),
        "--name",
        "app",
        "--version",
        "1.1.0",
    ]);
    let out = s.run(&["--repo", &repo, "publish"]);
    assert_eq!(out.status.code(), Some(1));
    let last: serde_json::Value =
        serde_json::from_str(&s.ok(&["--repo", &repo, "--json", "audit", "list", "--limit", "1"]))
            .unwrap();
    assert_eq!(last[0]["action"], "publish-refused", "{last}");
    assert!(last[0]["details"]["error"].as_str().unwrap().len() > 10);
    s.ok(&["--repo", &repo, "audit", "verify"]);
}

#[test]
fn tampering_is_detected_and_named() {
    for (what, sql, seq) in [
        ("edit", "UPDATE audit SET actor = 'mallory' WHERE seq = 2;", "record 2"),
        ("delete", "DELETE FROM audit WHERE seq = 2;", "record 3"),
        (
            "reorder",
            "CREATE TEMP TABLE t AS SELECT * FROM audit WHERE seq IN (2, 3); \
             DELETE FROM audit WHERE seq IN (2, 3); \
             INSERT INTO audit SELECT 2, time, actor, action, subject, details, prev_hash, hash FROM t WHERE seq = 3; \
             INSERT INTO audit SELECT 3, time, actor, action, subject, details, prev_hash, hash FROM t WHERE seq = 2;",
            "record 2",
        ),
        ("truncate", "DELETE FROM audit WHERE seq = 4;", "removed from the end"),
    ] {
        let s = audited_repo();
        let repo = s.repo_arg();
        s.ok(&["--repo", &repo, "audit", "verify"]);
        tamper(&s, sql);
        let err = s.fails(&["--repo", &repo, "audit", "verify"], "audit log broken");
        assert!(err.contains(seq), "{what}: {err}");
    }
}
