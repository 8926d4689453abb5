//! `sealwright server setup`: one command from a repository to a key-less server whose
//! services, started exactly as its systemd units say, take pushes and serve devices — and
//! keep doing so after both are restarted.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

use common::{start_services, Scratch};
use sealwright_tlog::entry::Entry;

fn release(s: &Scratch, version: &str) {
    let app = s.path().join("app.sh");
    std::fs::write(&app, format!("#!/bin/sh\necho {version}\n")).unwrap();
    s.ok(&[
        "--repo",
        &s.repo_arg(),
        "add",
        app.to_str().unwrap(),
        "--name",
        "app",
        "--version",
        version,
        "--channel",
        "stable",
    ]);
}

fn installed_version(s: &Scratch, device: &Path) -> String {
    let out = s.ok(&["update", "--dir", device.to_str().unwrap(), "--json"]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    report["version"].as_str().unwrap().to_owned()
}

#[test]
fn one_setup_gives_a_keyless_server_that_survives_a_restart_of_both_services() {
    let s = Scratch::new();
    let (dir, port, token) = common::init_and_set_up_server(&s);

    // The online keys left the repository for the agent; nothing under the server holds one.
    for key in ["timestamp-key", "snapshot-key"] {
        assert!(!s.repo().join(format!("keys/{key}.pem")).exists());
        let moved = dir.join(format!("agent/keys/{key}.pem"));
        assert_eq!(
            std::fs::metadata(&moved).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let policy = std::fs::read_to_string(s.repo().join("sealwright.toml")).unwrap();
    assert_eq!(policy.matches("private = \"agent:").count(), 2, "{policy}");
    assert!(!common::files_under(&dir.join("server"))
        .iter()
        .any(|p| p.extension().is_some_and(|e| e == "pem")));
    assert_eq!(
        std::fs::metadata(&token).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let url = format!("https://127.0.0.1:{port}");
    let cert = dir.join("tls/cert.pem");
    let push = |s: &Scratch| s.push_to(&url, &token, &cert);
    let device = s.path().join("device");
    {
        let _services = start_services(&dir, port);
        release(&s, "1.0.0");
        push(&s);
        s.ok(&[
            "client",
            "init",
            "--dir",
            device.to_str().unwrap(),
            "--root",
            dir.join("server/published/metadata/1.root.json")
                .to_str()
                .unwrap(),
            "--url",
            &url,
            "--name",
            "app",
            "--ca",
            cert.to_str().unwrap(),
        ]);
        assert_eq!(installed_version(&s, &device), "1.0.0");

        // The agent also holds the transparency log's new key: `log key` prints it, and the
        // agent signs a checkpoint of that origin with it.
        let vkey = s.ok(&["--repo", dir.join("server").to_str().unwrap(), "log", "key"]);
        let log = sealwright_tlog::Verifier::from_vkey(vkey.trim()).unwrap();
        assert_eq!(log.name(), format!("127.0.0.1:{port}/log"));
        let logged = logged_entries(&url, &cert, &log);
        assert!(
            logged
                .iter()
                .any(|e| matches!(e, Entry::Target { path, role, .. }
                if path.starts_with("app/1.0.0/") && role == "targets")),
            "{logged:?}"
        );
        // The server's audit log is anchored in the public log: a logged head is the hash of
        // that record of the audit log.
        let audit = sealwright_store::AuditLog::open(&dir.join("server"))
            .unwrap()
            .records(None)
            .unwrap();
        let anchored = logged
            .iter()
            .find_map(|e| match e {
                Entry::AuditHead { records, head } => Some((*records, head.clone())),
                _ => None,
            })
            .expect("an audit head is logged with a push");
        assert_eq!(audit[anchored.0 as usize - 1].hash, anchored.1);
        for role in ["targets", "snapshot", "timestamp"] {
            assert!(logged
                .iter()
                .any(|e| matches!(e, Entry::Metadata { role: r, .. } if r == role)));
        }
        // A third-party verifier (aics-tlog) agrees over HTTPS: the checkpoint is signed by
        // the key `log key` printed, and the release's entry is in the tree.
        let index = logged
            .iter()
            .position(|e| matches!(e, Entry::Target { .. }))
            .unwrap();
        let leaf = s.path().join("leaf");
        std::fs::write(&leaf, logged[index].to_bytes().unwrap()).unwrap();
        let verdict = aics_tlog(
            &[
                "verify-inclusion",
                "--tiles",
                &format!("{url}/log/"),
                "--log-key",
                vkey.trim(),
                "--origin",
                log.name(),
                "--index",
                &index.to_string(),
                "--leaf",
                leaf.to_str().unwrap(),
                "--save-checkpoint",
                s.path().join("first.checkpoint").to_str().unwrap(),
            ],
            &cert,
        );
        assert_eq!(verdict["ok"], true, "{verdict}");

        // A server killed after the agent signed its next checkpoint and before writing it is
        // not stuck: the agent names the size it signed, and the next integration proves
        // consistency from there. (A copy of the server directory integrates — the agent
        // signs — while the real one keeps its old checkpoint and the same pending entry.)
        let server_dir = dir.join("server");
        let policy = sealwright_repo::policy::Policy::load(&server_dir).unwrap();
        let open = |d: &Path| {
            sealwright_server::translog::TransparencyLog::open(d, &policy)
                .unwrap()
                .unwrap()
        };
        let translog = open(&server_dir);
        let before = translog.checkpoint().unwrap().unwrap();
        translog
            .sequence(&[Entry::Metadata {
                role: "test-entry".into(),
                version: 2,
                length: 0,
                sha256: "11".repeat(32),
            }])
            .unwrap();
        let copy = s.path().join("server-copy");
        let copied = Command::new("cp")
            .args(["-a", server_dir.to_str().unwrap(), copy.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(copied.success());
        let signed_elsewhere = open(&copy).integrate().unwrap().unwrap().checkpoint;
        let after = translog.integrate().unwrap().unwrap().checkpoint;
        assert_eq!(after, signed_elsewhere);
        assert_eq!(after.size, before.size + 1);
    }
    // Both services stopped (a reboot); started again from the same units they keep working:
    // same certificate, same agent state, same token.
    //
    // A server killed after sequencing a push's entries and before their checkpoint leaves
    // them pending: the restarted server integrates them before any push.
    let server_dir = dir.join("server");
    let policy = sealwright_repo::policy::Policy::load(&server_dir).unwrap();
    let translog = sealwright_server::translog::TransparencyLog::open(&server_dir, &policy)
        .unwrap()
        .unwrap();
    let before = translog.checkpoint().unwrap().unwrap().size;
    let pending = Entry::Metadata {
        role: "test-entry".into(),
        version: 1,
        length: 0,
        sha256: "00".repeat(32),
    };
    translog.sequence(std::slice::from_ref(&pending)).unwrap();
    let _services = start_services(&dir, port);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while translog.checkpoint().unwrap().unwrap().size == before {
        assert!(
            std::time::Instant::now() < deadline,
            "the pending entry was not integrated at start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    release(&s, "1.1.0");
    push(&s);
    assert_eq!(installed_version(&s, &device), "1.1.0");
    // The log grew by the second push, consistently (the agent signed it only with a proof
    // from the first checkpoint), and the restarted agent still refuses a fork of it.
    let vkey = std::fs::read_to_string(dir.join("server/log.vkey")).unwrap();
    let log = sealwright_tlog::Verifier::from_vkey(vkey.trim()).unwrap();
    let logged = logged_entries(&url, &cert, &log);
    assert!(logged
        .iter()
        .any(|e| matches!(e, Entry::Target { path, .. } if path.starts_with("app/1.1.0/"))));
    assert!(logged.contains(&pending));
    // ... and aics-tlog finds the grown log consistent with the checkpoint it saved.
    let verdict = aics_tlog(
        &[
            "verify-consistency",
            "--old-checkpoint",
            s.path().join("first.checkpoint").to_str().unwrap(),
            "--tiles",
            &format!("{url}/log/"),
            "--log-key",
            vkey.trim(),
            "--origin",
            log.name(),
        ],
        &cert,
    );
    assert_eq!(verdict["ok"], true, "{verdict}");
    // ... and so does Go's golang.org/x/mod/sumdb/tlog and note: every entry's inclusion and
    // the consistency with the first checkpoint, from the served tiles.
    let go = Command::new(common::go_tlog_verifier(s.path()))
        .args([
            "-tiles",
            &format!("{url}/log/"),
            "-log-key",
            vkey.trim(),
            "-ca",
            cert.to_str().unwrap(),
            "-old-checkpoint",
            s.path().join("first.checkpoint").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let verdict: serde_json::Value = serde_json::from_slice(&go.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&go.stderr)));
    assert_eq!(verdict["ok"], true, "{verdict}");
    assert_eq!(verdict["entries_verified"], logged.len(), "{verdict}");
    assert!(
        verdict["consistent_from"].as_u64().unwrap() > 0,
        "{verdict}"
    );
    // The audit log is anchored in the transparency log: `audit verify --log` finds every
    // head the log recorded. Truncated with its anchor rewritten consistently (what someone
    // with the server's disk can do), the local check still passes; the log's does not.
    let server_dir_arg = dir.join("server");
    let verify_audit = |against_log: bool| {
        let mut args = vec![
            "audit",
            "verify",
            "--data",
            server_dir_arg.to_str().unwrap(),
        ];
        let log_url = format!("{url}/log/");
        if against_log {
            args.extend([
                "--log",
                &log_url,
                "--log-key",
                vkey.trim(),
                "--ca",
                cert.to_str().unwrap(),
            ]);
        }
        s.run(&args)
    };
    let out = verify_audit(true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("matches the transparency log"));
    let audit = sealwright_store::AuditLog::open(&server_dir_arg)
        .unwrap()
        .records(None)
        .unwrap();
    let keep = &audit[0];
    let (python, _) = common::python();
    let truncated = Command::new(python)
        .arg("-c")
        .arg(format!(
            "import sqlite3; c = sqlite3.connect({:?}); c.execute('DROP TRIGGER audit_no_delete'); c.execute('DELETE FROM audit WHERE seq > {}'); c.commit()",
            server_dir_arg.join("audit.sqlite3").to_str().unwrap(),
            keep.seq
        ))
        .status()
        .unwrap();
    assert!(truncated.success());
    std::fs::write(
        server_dir_arg.join("audit.head"),
        format!("{} {}\n", keep.seq, keep.hash),
    )
    .unwrap();
    assert!(
        verify_audit(false).status.success(),
        "a consistent truncation passes the local check"
    );
    let out = verify_audit(true);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("records were removed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let forked = sign_checkpoint(&dir, &log, b"entry b").unwrap_err();
    assert!(forked.to_string().contains("fork"), "{forked}");
    let records = common::audit_records(&s.repo());
    assert!(records.iter().any(|r| r["action"] == "server-setup"));
}

/// Every entry of the server's transparency log, read over HTTPS as a monitor would: the
/// checkpoint verified with the log key, each entry from its bundle, each proven included
/// in the signed tree from the served tiles.
fn logged_entries(url: &str, ca: &Path, log: &sealwright_tlog::Verifier) -> Vec<Entry> {
    use sealwright_tlog::tile::{TileError, TileHashes, TileKind, TilePath};
    let agent = common::https_agent(ca);
    let get = |p: &str| -> Vec<u8> {
        let mut resp = agent.get(&format!("{url}/log/{p}")).call().unwrap();
        resp.body_mut().read_to_vec().unwrap()
    };
    let note = sealwright_tlog::Note::parse(&get("checkpoint")).unwrap();
    note.verify(std::slice::from_ref(log)).unwrap();
    let cp = sealwright_tlog::Checkpoint::parse(note.text()).unwrap();
    assert!(cp.size > 0 && cp.size < 256, "{}", cp.size);
    let bundle = get(&TilePath {
        kind: TileKind::Entries,
        index: 0,
        width: cp.size as u16,
    }
    .to_string());
    let entries = sealwright_tlog::tile::decode_bundle(&bundle).unwrap();
    let mut tiles = TileHashes::new(cp.size, |t: &TilePath| {
        Ok::<_, TileError>(get(&t.to_string()))
    });
    entries
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            let proof =
                sealwright_tlog::merkle::inclusion_proof(&mut tiles, i as u64, cp.size).unwrap();
            let leaf = sealwright_tlog::merkle::leaf_hash(bytes);
            sealwright_tlog::merkle::verify_inclusion(i as u64, cp.size, &leaf, &proof, &cp.root)
                .unwrap();
            Entry::parse(bytes).unwrap()
        })
        .collect()
}

/// Runs the third-party `aics-tlog` (installed by scripts/test next to SEALWRIGHT_PYTHON)
/// and returns its JSON verdict. Missing, it fails the test.
fn aics_tlog(args: &[&str], ca: &Path) -> serde_json::Value {
    let bin = common::aics("aics-tlog");
    let out = Command::new(&bin)
        .args(args)
        .env("SSL_CERT_FILE", ca)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (scripts/test installs aics-tlog)", bin.display()));
    assert!(
        out.status.success(),
        "aics-tlog {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Asks the setup's agent to sign the checkpoint of a one-entry log holding `entry`.
fn sign_checkpoint(
    dir: &Path,
    log: &sealwright_tlog::Verifier,
    entry: &[u8],
) -> Result<sealwright_tlog::note::NoteSignature, sealwright_repo::agent::AgentError> {
    let checkpoint = sealwright_tlog::Checkpoint {
        origin: log.name().to_owned(),
        size: 1,
        root: sealwright_tlog::merkle::leaf_hash(entry),
        extensions: vec![],
    };
    sealwright_repo::agent::request_checkpoint_signature(
        &dir.join("agent/run/agent.sock"),
        log,
        &checkpoint.to_text(),
        &[],
    )
}

#[test]
fn a_setup_that_cannot_finish_changes_nothing() {
    let s = Scratch::new();
    let repo = s.repo_arg();
    s.ok(&["init", &repo]);
    let before = common::tree_fingerprint(&s.repo().join("keys"));
    let policy = std::fs::read(s.repo().join("sealwright.toml")).unwrap();

    // A certificate that does not load: refused before anything is written.
    let dir = s.path().join("srv");
    let bogus = s.path().join("bogus.pem");
    std::fs::write(&bogus, "not a certificate").unwrap();
    s.fails(
        &[
            "--repo",
            &repo,
            "server",
            "setup",
            dir.to_str().unwrap(),
            "--cert",
            bogus.to_str().unwrap(),
            "--key",
            bogus.to_str().unwrap(),
        ],
        "bogus.pem",
    );
    // A directory that is in use.
    let used = s.path().join("used");
    std::fs::create_dir(&used).unwrap();
    std::fs::write(used.join("something"), "x").unwrap();
    s.fails(
        &["--repo", &repo, "server", "setup", used.to_str().unwrap()],
        "not empty",
    );
    // A socket path too long for a Unix socket address.
    let deep = s.path().join("d".repeat(100));
    s.fails(
        &["--repo", &repo, "server", "setup", deep.to_str().unwrap()],
        "socket",
    );

    assert!(!dir.exists());
    assert!(!deep.exists());
    let leftovers: Vec<_> = std::fs::read_dir(s.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(common::tree_fingerprint(&s.repo().join("keys")), before);
    assert_eq!(
        std::fs::read(s.repo().join("sealwright.toml")).unwrap(),
        policy
    );

    // Once set up, a second setup is refused: the keys are in an agent already.
    s.ok(&["--repo", &repo, "server", "setup", dir.to_str().unwrap()]);
    s.fails(
        &[
            "--repo",
            &repo,
            "server",
            "setup",
            s.path().join("again").to_str().unwrap(),
        ],
        "agent already",
    );
}

/// A push is sequenced in the transparency log before anything of it is published, so a
/// push the log cannot record is refused with nothing published (a server killed halfway
/// cannot leave a release served and unlogged either); once the log records again, the
/// same push goes through and its release is logged.
#[test]
fn a_push_the_log_cannot_record_is_not_published() {
    let s = Scratch::new();
    let (dir, port, token) = common::init_and_set_up_server(&s);
    let url = format!("https://127.0.0.1:{port}");
    let cert = dir.join("tls/cert.pem");
    let server = dir.join("server");
    let _services = start_services(&dir, port);
    let push = || {
        s.run(&[
            "--repo",
            &s.repo_arg(),
            "push",
            "--server",
            &url,
            "--token-file",
            token.to_str().unwrap(),
            "--ca",
            cert.to_str().unwrap(),
        ])
    };
    release(&s, "1.0.0");
    assert!(push().status.success());
    let published = || common::files_under(&server.join("published"));
    let timestamp = || std::fs::read(server.join("published/metadata/timestamp.json")).unwrap();
    let before = (published(), timestamp());

    // The sequence cannot be opened: a directory stands where its database is (root's
    // privileges do not get past that).
    let sequence = server.join("log-sequence.sqlite3");
    let aside = s.path().join("sequence-aside");
    std::fs::create_dir(&aside).unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let name = format!("log-sequence.sqlite3{suffix}");
        if server.join(&name).exists() {
            std::fs::rename(server.join(&name), aside.join(&name)).unwrap();
        }
    }
    std::fs::create_dir(&sequence).unwrap();
    release(&s, "1.1.0");
    let out = push();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "published without the log");
    assert!(err.contains("nothing was published"), "{err}");
    assert!(
        !err.contains(server.to_str().unwrap()),
        "the server's path leaked: {err}"
    );
    assert_eq!(
        (published(), timestamp()),
        before,
        "a push the log could not record changed what is served"
    );
    let audit = sealwright_store::AuditLog::open(&server)
        .unwrap()
        .records(None)
        .unwrap();
    let refused = audit.last().unwrap();
    assert_eq!(refused.action, "push-refused");
    assert!(
        refused.details["error"]
            .as_str()
            .unwrap()
            .contains("transparency log could not record"),
        "{:?}",
        refused.details
    );

    std::fs::remove_dir(&sequence).unwrap();
    for entry in std::fs::read_dir(&aside).unwrap() {
        let entry = entry.unwrap();
        std::fs::rename(entry.path(), server.join(entry.file_name())).unwrap();
    }
    // The log records, but the publish fails after it did (a directory in the way of the
    // pushed role's file): the entries are taken back, or the log would claim this release
    // twice and a snapshot nobody was served.
    let metadata = server.join("published/metadata");
    let next_targets = common::files_under(&metadata)
        .iter()
        .filter_map(|p| {
            p.file_name()?
                .to_str()?
                .strip_suffix(".targets.json")?
                .parse::<u64>()
                .ok()
        })
        .max()
        .unwrap()
        + 1;
    let blocked = metadata.join(format!("{next_targets}.targets.json"));
    std::fs::create_dir(&blocked).unwrap();
    std::fs::write(blocked.join("x"), b"in the way").unwrap();
    assert!(!push().status.success(), "published over a directory");
    // Devices see what they saw (blobs linked for the push are listed by nothing), and the
    // failed write left no temporary file behind.
    assert_eq!(timestamp(), before.1);
    let leftovers: Vec<_> = common::files_under(&metadata)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    std::fs::remove_dir_all(&blocked).unwrap();
    let out = push();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let vkey = s.ok(&["--repo", server.to_str().unwrap(), "log", "key"]);
    let log = sealwright_tlog::Verifier::from_vkey(vkey.trim()).unwrap();
    let logged = logged_entries(&url, &cert, &log);
    for version in ["1.0.0", "1.1.0"] {
        let targets = logged
            .iter()
            .filter(|e| matches!(e, Entry::Target { path, .. } if path.starts_with(&format!("app/{version}/"))))
            .count();
        assert_eq!(targets, 1, "{version}: {logged:?}");
    }
    let served: serde_json::Value = serde_json::from_slice(&timestamp()).unwrap();
    let served_snapshot = served["signed"]["meta"]["snapshot.json"]["version"]
        .as_u64()
        .unwrap();
    for entry in &logged {
        if let Entry::Metadata { role, version, .. } = entry {
            if role == "snapshot" {
                assert!(
                    metadata.join(format!("{version}.snapshot.json")).exists()
                        && *version <= served_snapshot,
                    "snapshot {version} is logged but was never published: {logged:?}"
                );
            }
        }
    }
}
