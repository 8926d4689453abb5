//! The README's first command: `sealwright quickstart` on a machine with nothing set up
//! (no passphrase configured, no terminal) runs the whole chain and leaves it on disk.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::audit_records;

fn quickstart() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sealwright"));
    cmd.arg("quickstart")
        .env_remove("SEALWRIGHT_PASSPHRASE_FILE")
        .env_remove("SEALWRIGHT_REPO")
        .stdin(Stdio::null());
    cmd
}

#[test]
fn quickstart_installs_updates_and_refuses_both_attacks() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let out = quickstart().arg(&demo).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches("REFUSED").count(), 2, "{stdout}");
    for version in ["1.0.0", "1.1.0", "1.2.0"] {
        assert!(
            stdout.contains(&format!("installed hello {version}")),
            "{stdout}"
        );
    }
    let device = demo.join("device");
    assert_eq!(
        std::fs::read_link(device.join("current")).unwrap(),
        std::path::Path::new("releases/hello-1.2.0")
    );
    let installed = std::fs::read_to_string(device.join("current/hello.sh")).unwrap();
    assert!(installed.contains("hello 1.2.0"), "{installed}");
    assert_eq!(
        std::fs::read_dir(device.join("quarantine"))
            .unwrap()
            .count(),
        1
    );
    let log = std::fs::read_to_string(device.join("failures.log")).unwrap();
    assert_eq!(log.lines().count(), 2, "{log}");
    // The online keys left the repository for the signer agent, which signed every release.
    assert!(!demo.join("repo/keys/timestamp-key.pem").exists());
    assert!(!demo.join("repo/keys/snapshot-key.pem").exists());
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_sealwright"))
            .args(args)
            .env(
                "SEALWRIGHT_PASSPHRASE_FILE",
                demo.join("demo-passphrase.txt"),
            )
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{args:?}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let count = |records: &[serde_json::Value], action: &str, field: &str, value: &str| {
        records
            .iter()
            .filter(|r| r["action"] == action && r[field] == value)
            .count()
    };
    // The agent signed the timestamp of each of the three releases, and recorded it.
    let agent = audit_records(&demo.join("agent/run"));
    assert_eq!(
        count(&agent, "sign", "subject", "timestamp"),
        3,
        "{agent:?}"
    );
    // The server took every release through its publish API, holds no key file, and its
    // audit log records each push.
    let server = demo.join("server");
    let pem = walk(&server)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "pem"))
        .collect::<Vec<_>>();
    assert!(pem.is_empty(), "key material in the server dir: {pem:?}");
    let records = audit_records(&server);
    assert_eq!(
        count(&records, "push", "actor", "token:quickstart"),
        3,
        "{records:?}"
    );
    // Both the server's tree and the publisher's repository (which took the server's
    // snapshot and timestamp) verify from root.
    for dir in [&server, &demo.join("repo")] {
        cli(&["--repo", dir.to_str().unwrap(), "verify"]);
    }
}

#[test]
fn keep_running_serves_until_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = quickstart()
        .arg(dir.path().join("demo"))
        .arg("--keep-running")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if line.contains("keeps running") {
                let _ = tx.send(line);
            }
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(120))
        .unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("quickstart --keep-running never said the server keeps running")
        });
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("https://"))
        .unwrap()
        .to_owned();
    assert!(
        child.try_wait().unwrap().is_none(),
        "exited while it should serve {url}"
    );
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no exit 30 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
