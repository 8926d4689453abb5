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

use common::{audit_records, files_under, wait_for_port, Killed};

/// Runs `sealwright ARGS` with the demo's passphrase; asserts success, returns stdout.
fn demo_cli(demo: &std::path::Path, args: &[&str]) -> String {
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
}

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
    // The banner names the transparency log and its key, which the key file holds.
    let vkey = std::fs::read_to_string(demo.join("serving/server/log.vkey")).unwrap();
    assert!(
        stdout.contains(&format!("/log/ (key {}", vkey.trim())),
        "{stdout}"
    );
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
    let cli = |args: &[&str]| demo_cli(&demo, args);
    let count = |records: &[serde_json::Value], action: &str, field: &str, value: &str| {
        records
            .iter()
            .filter(|r| r["action"] == action && r[field] == value)
            .count()
    };
    // The agent signed the timestamp of each of the three releases, and recorded it.
    let agent = audit_records(&demo.join("serving/agent/run"));
    assert_eq!(
        count(&agent, "sign", "subject", "timestamp"),
        3,
        "{agent:?}"
    );
    // The server took every release through its publish API, holds no key file, and its
    // audit log records each push.
    let server = demo.join("serving/server");
    let pem = files_under(&server)
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
fn keep_running_serves_until_sigterm_and_the_printed_commands_bring_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let mut child = quickstart()
        .arg(&demo)
        .arg("--keep-running")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut restart = Vec::new();
        let mut lines = BufReader::new(stdout).lines();
        while let Some(Ok(line)) = lines.next() {
            if line.contains("run again") {
                restart.extend(lines.by_ref().take(2).map(Result::unwrap));
            } else if line.contains("keeps running") {
                let _ = tx.send((line, restart.clone()));
            }
        }
    });
    let (line, restart) = rx
        .recv_timeout(Duration::from_secs(120))
        .unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("quickstart --keep-running never said the server keeps running")
        });
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("https://"))
        .unwrap()
        .trim_end_matches(|c: char| !c.is_ascii_digit())
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

    // Both processes are gone. The two commands it printed start them again, and the
    // publisher and the device carry on as before.
    assert_eq!(restart.len(), 2, "{restart:?}");
    let mut services = Vec::new();
    for command in &restart {
        let env = restart_env(command);
        let words = command
            .split_whitespace()
            .skip(env.len())
            .collect::<Vec<_>>();
        let mut cmd = Command::new(words[0]);
        cmd.args(&words[1..])
            .envs(env)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        services.push(Killed(cmd.spawn().unwrap()));
        if command.contains("signer serve") {
            common::wait_for_socket(&demo.join("serving/agent/run/agent.sock"));
        }
    }
    wait_for_port(url.rsplit(':').next().unwrap().parse().unwrap());
    let cli = |args: &[&str]| demo_cli(&demo, args);
    let app = demo.join("hello.sh");
    std::fs::write(&app, "#!/bin/sh\necho hello 1.3.0\n").unwrap();
    let repo = demo.join("repo");
    let repo = repo.to_str().unwrap();
    cli(&[
        "--repo",
        repo,
        "add",
        app.to_str().unwrap(),
        "--name",
        "hello",
        "--version",
        "1.3.0",
        "--channel",
        "stable",
    ]);
    cli(&[
        "--repo",
        repo,
        "push",
        "--server",
        &url,
        "--token-file",
        demo.join("publisher.token").to_str().unwrap(),
        "--ca",
        demo.join("serving/tls/cert.pem").to_str().unwrap(),
    ]);
    let report = cli(&[
        "update",
        "--dir",
        demo.join("device").to_str().unwrap(),
        "--json",
    ]);
    assert!(report.contains("\"1.3.0\""), "{report}");
}

/// The `KEY=VALUE` words a printed command starts with.
fn restart_env(command: &str) -> Vec<(String, String)> {
    command
        .split_whitespace()
        .take_while(|w| w.contains('=') && !w.starts_with('-'))
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}
