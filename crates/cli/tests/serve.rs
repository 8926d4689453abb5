//! `sealwright serve` end to end: python-tuf's ngclient over HTTPS trusting the generated
//! development certificate, graceful SIGTERM, and refusal to serve a tree holding a key.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{python, Scratch};

/// Kills the server if a test fails before stopping it.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn publish_one(s: &Scratch, content: &[u8]) {
    let repo = s.repo_arg();
    s.ok(&["init", &repo]);
    let file = s.path().join("app.bin");
    std::fs::write(&file, content).unwrap();
    s.ok(&[
        "--repo",
        &repo,
        "add",
        &file.display().to_string(),
        "--name",
        "app",
        "--version",
        "1.0.0",
        "--channel",
        "stable",
    ]);
    s.ok(&["--repo", &repo, "publish"]);
}

/// Starts `sealwright --json serve` on an ephemeral port; returns the process and its URL.
fn serve(s: &Scratch, ca: &std::path::Path) -> (Running, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sealwright"))
        .args([
            "--repo",
            &s.repo_arg(),
            "--json",
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--dev-cert-out")
        .arg(ca)
        .env_remove("SEALWRIGHT_REPO")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("sealwright serve announced nothing within 30 s");
    let v: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    let url = v["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with("https://127.0.0.1:"), "{v}");
    assert_eq!(
        v["fingerprint_sha256"].as_str().unwrap().len(),
        32 * 3 - 1,
        "{v}"
    );
    (running, url)
}

fn stop(mut running: Running) {
    let pid = running.0.id().to_string();
    let st = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(st.success());
    let start = Instant::now();
    loop {
        if let Some(status) = running.0.try_wait().unwrap() {
            assert!(status.success(), "serve exited with {status} after SIGTERM");
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "serve did not stop within 20 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn python_tuf_downloads_over_https_from_sealwright_serve() {
    let s = Scratch::new();
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    publish_one(&s, &content);
    let ca = s.path().join("dev-ca.pem");
    let (running, url) = serve(&s, &ca);
    let pem = std::fs::read_to_string(&ca).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    assert!(!pem.contains("PRIVATE KEY"));

    let (py, _) = python();
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../server/tests/ngclient_https.py");
    let out = Command::new(py)
        .arg(script)
        .args(["--base-url", &url])
        .arg("--ca")
        .arg(&ca)
        .arg("--root")
        .arg(s.repo().join("published/metadata/1.root.json"))
        .arg("--out-dir")
        .arg(s.path().join("downloads"))
        .args(["--target", "app/1.0.0/app.bin"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "ngclient over HTTPS failed:\n{stdout}\n{stderr}"
    );
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(
        report["targets"]["app/1.0.0/app.bin"],
        sealwright_crypto::digest::sha256_hex(&content)
    );
    stop(running);
}

#[test]
fn serve_refuses_a_tree_holding_a_private_key() {
    let s = Scratch::new();
    publish_one(&s, b"artifact");
    let key = s.repo().join("published/targets/app/oops.pem");
    std::fs::write(
        &key,
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBvTBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n",
    )
    .unwrap();
    let ca = s.path().join("ca.pem");
    let err = s.fails(
        &[
            "--repo",
            &s.repo_arg(),
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--dev-cert-out",
            &ca.display().to_string(),
        ],
        "private key",
    );
    assert!(err.contains("oops.pem"), "{err}");
    assert!(!ca.exists(), "nothing is set up before the key check");
}

#[test]
fn serve_without_a_published_tree_says_so() {
    let s = Scratch::new();
    s.ok(&["init", &s.repo_arg()]);
    std::fs::remove_dir_all(s.repo().join("published")).unwrap();
    s.fails(
        &["--repo", &s.repo_arg(), "serve", "--listen", "127.0.0.1:0"],
        "publish` first",
    );
}
