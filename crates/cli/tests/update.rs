//! `sealwright client init` + `sealwright update` end to end against a repository published
//! by `sealwright` and served over HTTPS by `sealwright serve` (its development CA): first
//! install, update, up to date, downgrade refused, recovery allowed, tampering quarantined,
//! health-check rollback, wrong CA and SPKI pin mismatch refused, offline bundles, python-tuf
//! reading the channel pointer, and SIGKILL at random points during an update.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::Scratch;
use serde_json::Value;

/// Kills the server when the test ends (or fails).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_sealwright")
}

/// Stages and publishes `content` as app.bin of `version` (extra flags for `add`).
fn release(s: &Scratch, version: &str, content: &[u8], extra: &[&str]) {
    let repo = s.repo_arg();
    if !s.repo().join("sealwright.toml").exists() {
        s.ok(&["init", &repo]);
    }
    let dir = s.path().join(format!("build-{version}"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("app.bin");
    std::fs::write(&file, content).unwrap();
    let f = file.display().to_string();
    let mut args = vec![
        "--repo",
        &repo,
        "add",
        &f,
        "--name",
        "app",
        "--version",
        version,
    ];
    args.extend_from_slice(extra);
    s.ok(&args);
    s.ok(&["--repo", &repo, "publish"]);
}

/// `sealwright serve` on an ephemeral port with its development CA written to `ca`.
fn serve(s: &Scratch, ca: &Path) -> (Running, String) {
    let mut child = Command::new(bin())
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
    let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    (running, v["url"].as_str().unwrap().to_owned())
}

fn run(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env_remove("SEALWRIGHT_REPO")
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Exit 1 with one `error:` line; returns it.
fn refused(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "should be refused: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one error line: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    stderr
}

fn client_init(s: &Scratch, dev: &Path, url: &str, ca: &Path, extra: &[&str]) {
    let root = s.repo().join("published/metadata/1.root.json");
    let mut args = vec![
        "client".to_owned(),
        "init".into(),
        "--dir".into(),
        dev.display().to_string(),
        "--root".into(),
        root.display().to_string(),
        "--url".into(),
        url.to_owned(),
        "--ca".into(),
        ca.display().to_string(),
        "--name".into(),
        "app".into(),
    ];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&run(&a));
}

fn update(dev: &Path, extra: &[&str]) -> Output {
    let d = dev.display().to_string();
    let mut args = vec!["--json", "update", "--dir", &d];
    args.extend_from_slice(extra);
    run(&args)
}

fn state(dev: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dev.join("state.json")).unwrap()).unwrap()
}

fn current(dev: &Path) -> (PathBuf, Vec<u8>) {
    (
        std::fs::read_link(dev.join("current")).unwrap(),
        std::fs::read(dev.join("current/app.bin")).unwrap(),
    )
}

fn failures(dev: &Path) -> Vec<Value> {
    std::fs::read_to_string(dev.join("failures.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Replaces a published artifact of `version` by other bytes of the same length.
fn tamper(s: &Scratch, version: &str) {
    let dir = s.repo().join(format!("published/targets/app/{version}"));
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[0] ^= 0xff;
        // Unlink first: the published file is a hard link to the staged blob.
        std::fs::remove_file(&p).unwrap();
        std::fs::write(&p, bytes).unwrap();
    }
}

#[test]
fn install_update_downgrade_recovery_over_https() {
    let s = Scratch::new();
    release(&s, "1.0.0", b"one", &[]);
    let ca = s.path().join("ca.pem");
    let (_server, url) = serve(&s, &ca);
    let dev = s.path().join("dev");
    client_init(&s, &dev, &url, &ca, &[]);

    let out: Value = serde_json::from_str(&ok(&update(&dev, &[]))).unwrap();
    assert_eq!(out["status"], "installed", "{out}");
    assert_eq!(
        current(&dev),
        (PathBuf::from("releases/app-1.0.0"), b"one".to_vec())
    );
    assert_eq!(state(&dev)["current_version"], "1.0.0");

    let out: Value = serde_json::from_str(&ok(&update(&dev, &[]))).unwrap();
    assert_eq!(out["status"], "up-to-date", "{out}");

    release(&s, "1.1.0", b"two", &["--channel", "stable"]);
    let out: Value = serde_json::from_str(&ok(&update(&dev, &[]))).unwrap();
    assert_eq!(out["version"], "1.1.0", "{out}");
    assert_eq!(current(&dev).1, b"two");
    let st = state(&dev);
    assert_eq!(st["previous_version"], "1.0.0");
    assert_eq!(st["highest_version"], "1.1.0");
    assert_eq!(st["last_good_version"], "1.1.0");
    let mode = std::fs::metadata(dev.join("current/app.bin"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);

    // The publisher will not move a channel backwards without --recovery...
    let f = s.path().join("app.bin");
    std::fs::write(&f, b"old").unwrap();
    s.fails(
        &[
            "--repo",
            &s.repo_arg(),
            "add",
            &f.display().to_string(),
            "--name",
            "app",
            "--version",
            "1.0.5",
        ],
        "--recovery",
    );
    // ...but devices defend themselves anyway: switching this device to a channel that
    // names an older release is refused, logged, and changes nothing.
    release(&s, "1.0.5", b"old", &["--channel", "beta"]);
    let toml = std::fs::read_to_string(dev.join("client.toml")).unwrap();
    std::fs::write(
        dev.join("client.toml"),
        toml.replace("\"stable\"", "\"beta\""),
    )
    .unwrap();
    let before = std::fs::read(dev.join("state.json")).unwrap();
    let err = refused(&update(&dev, &[]));
    assert!(err.contains("not newer than 1.1.0"), "{err}");
    assert_eq!(std::fs::read(dev.join("state.json")).unwrap(), before);
    assert_eq!(current(&dev).1, b"two");
    let log = failures(&dev);
    assert_eq!(log.last().unwrap()["stage"], "version", "{log:?}");
    assert_eq!(log.last().unwrap()["version"], "1.0.5");
    assert!(!dev.join("releases/app-1.0.5").exists());

    // A recovery release may go back; the floor stays.
    release(
        &s,
        "1.0.6",
        b"recovered",
        &["--recovery", "--channel", "beta"],
    );
    let out: Value = serde_json::from_str(&ok(&update(&dev, &[]))).unwrap();
    assert_eq!(out["recovery"], true, "{out}");
    assert_eq!(current(&dev).1, b"recovered");
    let st = state(&dev);
    assert_eq!(st["current_version"], "1.0.6");
    assert_eq!(st["highest_version"], "1.1.0");
}

#[test]
fn tampered_artifact_is_quarantined_and_health_check_failure_rolls_back() {
    let s = Scratch::new();
    release(&s, "1.0.0", b"one", &[]);
    let ca = s.path().join("ca.pem");
    let (_server, url) = serve(&s, &ca);
    let dev = s.path().join("dev");
    client_init(&s, &dev, &url, &ca, &[]);
    ok(&update(&dev, &[]));

    release(&s, "1.1.0", b"two", &[]);
    tamper(&s, "1.1.0");
    let before = std::fs::read(dev.join("state.json")).unwrap();
    for attempt in 0..2 {
        // A retry runs the same checks and is refused again.
        let out = update(&dev, &[]);
        let err = refused(&out);
        assert!(err.contains("tampered"), "{err}");
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["stage"], "verify", "{json}");
        assert_eq!(current(&dev).1, b"one");
        assert_eq!(std::fs::read(dev.join("state.json")).unwrap(), before);
        let q: Vec<PathBuf> = std::fs::read_dir(dev.join("quarantine"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(q.len(), attempt + 1, "{q:?}");
        for d in &q {
            let f = d.join("app.bin");
            let mode = std::fs::metadata(&f).unwrap().permissions().mode();
            assert_eq!(
                mode & 0o777,
                0o600,
                "quarantined file must not be executable"
            );
            assert!(std::fs::read_to_string(d.join("reason.txt"))
                .unwrap()
                .contains("hash"));
        }
        assert_eq!(failures(&dev).last().unwrap()["stage"], "verify");
        assert!(!dev.join("releases/app-1.1.0").exists());
        assert_eq!(std::fs::read_dir(dev.join("tmp")).unwrap().count(), 0);
    }

    // A good release whose health check fails is rolled back to the last good one.
    release(&s, "1.2.0", b"three", &[]);
    let err = refused(&update(
        &dev,
        &[
            "--health-check",
            "test -f \"$SEALWRIGHT_RELEASE_DIR/missing\"",
        ],
    ));
    assert!(err.contains("rolled back"), "{err}");
    assert_eq!(
        current(&dev),
        (PathBuf::from("releases/app-1.0.0"), b"one".to_vec())
    );
    assert_eq!(std::fs::read(dev.join("state.json")).unwrap(), before);
    assert_eq!(failures(&dev).last().unwrap()["stage"], "health-check");
    let out = ok(&update(
        &dev,
        &[
            "--health-check",
            "test \"$(cat \"$SEALWRIGHT_RELEASE_DIR/app.bin\")\" = three",
        ],
    ));
    assert!(out.contains("1.2.0"), "{out}");
    assert_eq!(current(&dev).1, b"three");
    assert_eq!(state(&dev)["previous_version"], "1.0.0");
    release(&s, "1.3.0", b"four", &[]);
    ok(&update(&dev, &[]));
    // Only current and previous (= last good) are kept.
    let mut kept: Vec<String> = std::fs::read_dir(dev.join("releases"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    kept.sort();
    assert_eq!(kept, ["app-1.2.0", "app-1.3.0"]);
}

fn openssl(args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl is required (scripts/test installs it)");
    {
        use std::io::Write;
        let mut i = child.stdin.take().unwrap();
        if let Some(b) = stdin {
            i.write_all(b).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `sha256/BASE64` of the public key of the PEM certificate `cert`.
fn spki_pin(cert: &Path) -> String {
    let pubkey = openssl(
        &[
            "x509",
            "-in",
            &cert.display().to_string(),
            "-pubkey",
            "-noout",
        ],
        None,
    );
    let der = openssl(&["pkey", "-pubin", "-outform", "der"], Some(&pubkey));
    let digest = openssl(&["dgst", "-sha256", "-binary"], Some(&der));
    let b64 = openssl(&["base64", "-A"], Some(&digest));
    format!("sha256/{}", String::from_utf8(b64).unwrap().trim())
}

#[test]
fn wrong_ca_and_pin_mismatch_are_refused_and_the_right_pin_works() {
    let s = Scratch::new();
    release(&s, "1.0.0", b"one", &[]);
    let ca = s.path().join("ca.pem");
    let (_server, url) = serve(&s, &ca);

    // A CA that did not issue the server's certificate.
    let other = s.path().join("other.pem");
    let key = s.path().join("other.key");
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key.display().to_string(),
            "-out",
            &other.display().to_string(),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
        ],
        None,
    );
    let dev = s.path().join("wrong-ca");
    client_init(&s, &dev, &url, &other, &[]);
    let err = refused(&update(&dev, &[]));
    assert!(err.contains("metadata"), "{err}");
    assert!(!dev.join("current").exists());
    assert_eq!(failures(&dev).last().unwrap()["stage"], "metadata");

    let wrong_pin = spki_pin(&other);
    let dev = s.path().join("wrong-pin");
    client_init(&s, &dev, &url, &ca, &["--pin-spki", &wrong_pin]);
    let err = refused(&update(&dev, &[]));
    assert!(err.contains("pinned"), "{err}");
    assert!(!dev.join("current").exists());

    // A matching pin never replaces chain verification: the right pin with the wrong CA
    // is still refused.
    let pin = spki_pin(&ca);
    let dev = s.path().join("pin-without-chain");
    client_init(&s, &dev, &url, &other, &["--pin-spki", &pin]);
    refused(&update(&dev, &[]));
    assert!(!dev.join("current").exists());

    let dev = s.path().join("right-pin");
    client_init(
        &s,
        &dev,
        &url,
        &ca,
        &["--pin-spki", &wrong_pin, "--pin-spki", &pin],
    );
    ok(&update(&dev, &[]));
    assert_eq!(current(&dev).1, b"one");

    // Plain HTTP is refused for anything but the loopback interface.
    let root = s.repo().join("published/metadata/1.root.json");
    let out = run(&[
        "client",
        "init",
        "--dir",
        &s.path().join("http").display().to_string(),
        "--root",
        &root.display().to_string(),
        "--url",
        "http://updates.example.com/",
        "--name",
        "app",
    ]);
    assert!(refused(&out).contains("https://"));
    let out = run(&[
        "client",
        "init",
        "--dir",
        &s.path().join("bad").display().to_string(),
        "--root",
        &root.display().to_string(),
        "--url",
        &url,
        "--name",
        "../app",
    ]);
    refused(&out);
    let out = run(&[
        "client",
        "init",
        "--dir",
        &s.path().join("bad").display().to_string(),
        "--root",
        &s.repo()
            .join("published/metadata/timestamp.json")
            .display()
            .to_string(),
        "--url",
        &url,
        "--name",
        "app",
    ]);
    assert!(refused(&out).contains("not a valid self-signed TUF root"));
    assert!(
        !s.path().join("bad").exists(),
        "nothing written for a refused init"
    );
}

#[test]
fn offline_bundle_installs_and_tampered_or_expired_bundles_are_refused() {
    let s = Scratch::new();
    release(&s, "1.0.0", b"one", &[]);
    let ca = s.path().join("ca.pem");
    std::fs::write(&ca, b"unused").unwrap();
    let dev = s.path().join("dev");
    // The device is set up for a network it never reaches; the bundle is its only source.
    let root = s.repo().join("published/metadata/1.root.json");
    ok(&run(&[
        "client",
        "init",
        "--dir",
        &dev.display().to_string(),
        "--root",
        &root.display().to_string(),
        "--url",
        "https://updates.invalid/",
        "--name",
        "app",
    ]));
    let bundle = s.path().join("app.bundle");
    s.ok(&[
        "--repo",
        &s.repo_arg(),
        "bundle",
        "create",
        "--name",
        "app",
        "-o",
        &bundle.display().to_string(),
    ]);
    let b = bundle.display().to_string();
    ok(&update(&dev, &["--bundle", &b]));
    assert_eq!(current(&dev).1, b"one");

    release(&s, "1.1.0", b"two-two-two", &[]);
    s.ok(&[
        "--repo",
        &s.repo_arg(),
        "bundle",
        "create",
        "--name",
        "app",
        "-o",
        &b,
    ]);

    // Expired metadata: the device clock decides (ten years from now).
    let out = Command::new("faketime")
        .args(["-f", "+3650d"])
        .arg(bin())
        .args([
            "update",
            "--dir",
            &dev.display().to_string(),
            "--bundle",
            &b,
        ])
        .output()
        .expect("faketime is required (scripts/test installs it)");
    let err = refused(&out);
    assert!(err.contains("expired"), "{err}");
    assert_eq!(current(&dev).1, b"one");

    // Flip a byte of the artifact inside the bundle.
    let mut bytes = std::fs::read(&bundle).unwrap();
    let at = bytes.windows(11).position(|w| w == b"two-two-two").unwrap();
    bytes[at] = b'X';
    let tampered = s.path().join("tampered.bundle");
    std::fs::write(&tampered, &bytes).unwrap();
    let out = update(&dev, &["--bundle", &tampered.display().to_string()]);
    refused(&out);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["stage"], "verify", "{json}");
    assert!(Path::new(json["quarantined"].as_str().unwrap())
        .join("reason.txt")
        .exists());
    assert_eq!(current(&dev).1, b"one");

    ok(&update(&dev, &["--bundle", &b]));
    assert_eq!(current(&dev).1, b"two-two-two");
}

#[test]
fn tar_gz_release_is_unpacked_after_verification() {
    let s = Scratch::new();
    s.ok(&["init", &s.repo_arg()]);
    let src = s.path().join("src");
    std::fs::create_dir_all(src.join("bin")).unwrap();
    std::fs::write(src.join("bin/app"), b"#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(src.join("bin/app"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let archive = s.path().join("app.tar.gz");
    let st = Command::new("tar")
        .arg("czf")
        .arg(&archive)
        .arg("-C")
        .arg(&src)
        .arg("bin")
        .status()
        .unwrap();
    assert!(st.success());
    let repo = s.repo_arg();
    s.ok(&[
        "--repo",
        &repo,
        "add",
        &archive.display().to_string(),
        "--name",
        "app",
        "--version",
        "2.0.0",
    ]);
    s.ok(&["--repo", &repo, "publish"]);
    let ca = s.path().join("ca.pem");
    let (_server, url) = serve(&s, &ca);
    let dev = s.path().join("dev");
    client_init(&s, &dev, &url, &ca, &[]);
    ok(&update(
        &dev,
        &["--health-check", "\"$SEALWRIGHT_RELEASE_DIR/bin/app\""],
    ));
    let installed = dev.join("current/bin/app");
    assert_eq!(std::fs::read(&installed).unwrap(), b"#!/bin/sh\necho hi\n");
    assert_eq!(
        std::fs::metadata(&installed).unwrap().permissions().mode() & 0o111,
        0o111
    );
}

#[test]
fn python_tuf_downloads_the_channel_pointer() {
    let s = Scratch::new();
    release(&s, "1.0.0", b"one", &[]);
    release(&s, "1.1.0", b"two", &[]);
    let published = s.repo().join("published");
    let out = s.path().join("py");
    let (ok_, report, stderr) = common::ngclient(
        &published,
        &published.join("metadata/1.root.json"),
        &["app/channels/stable.json"],
        &[],
        &out,
    );
    assert!(ok_, "ngclient failed: {stderr}\n{report}");
    let bytes = std::fs::read(out.join("app%2Fchannels%2Fstable.json")).unwrap_or_else(|_| {
        // The script may store by another name; find the one file it wrote.
        let f = std::fs::read_dir(&out)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        std::fs::read(f).unwrap()
    });
    let pointer: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(pointer["version"], "1.1.0", "{pointer}");
    assert_eq!(pointer["target"], "app/1.1.0/app.bin");
    assert_eq!(pointer["length"], 3);
}

/// SIGKILL `sealwright update` at random points: `current` always resolves to the complete
/// old or the complete new release and state.json always parses.
#[test]
fn sigkill_during_update_leaves_old_or_new_release() {
    let s = Scratch::new();
    let old: Vec<u8> = vec![b'o'; 3 * 1024 * 1024];
    let new: Vec<u8> = vec![b'n'; 3 * 1024 * 1024];
    release(&s, "1.0.0", &old, &[]);
    let ca = s.path().join("ca.pem");
    let (_server, url) = serve(&s, &ca);
    let template = s.path().join("template");
    client_init(&s, &template, &url, &ca, &[]);
    ok(&update(&template, &[]));
    release(&s, "1.1.0", &new, &[]);

    // How long one whole update takes here, so the kills spread over all of it.
    let probe = s.path().join("probe");
    let st = Command::new("cp")
        .arg("-a")
        .arg(&template)
        .arg(&probe)
        .status()
        .unwrap();
    assert!(st.success());
    let start = std::time::Instant::now();
    ok(&update(&probe, &[]));
    let span = u64::try_from(start.elapsed().as_micros())
        .unwrap()
        .max(1000)
        * 11
        / 10;
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let mut kinds = (0, 0);
    for trial in 0..30 {
        let dev = s.path().join(format!("trial-{trial}"));
        let st = Command::new("cp")
            .arg("-a")
            .arg(&template)
            .arg(&dev)
            .status()
            .unwrap();
        assert!(st.success());
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        // Start-up, TLS and metadata take the first part; the kills favour the rest, where
        // the download, placement and switch happen.
        let delay = Duration::from_micros(span * 4 / 10 + (seed >> 33) % (span * 9 / 10));
        let mut child = Command::new(bin())
            .args(["update", "--dir", &dev.display().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let content = std::fs::read(dev.join("current/app.bin"))
            .unwrap_or_else(|e| panic!("trial {trial} ({delay:?}): current does not resolve: {e}"));
        let st: Value = serde_json::from_slice(&std::fs::read(dev.join("state.json")).unwrap())
            .unwrap_or_else(|e| panic!("trial {trial}: state.json does not parse: {e}"));
        if content == old {
            kinds.0 += 1;
            assert_eq!(
                std::fs::read_link(dev.join("current")).unwrap(),
                PathBuf::from("releases/app-1.0.0")
            );
        } else {
            assert!(
                content == new,
                "trial {trial} ({delay:?}): current holds a partial release"
            );
            kinds.1 += 1;
        }
        assert!(
            st["current_version"] == "1.0.0" || st["current_version"] == "1.1.0",
            "{st}"
        );
        // Whatever the interruption, a retry finishes the job.
        ok(&update(&dev, &[]));
        assert_eq!(std::fs::read(dev.join("current/app.bin")).unwrap(), new);
        assert_eq!(state(&dev)["current_version"], "1.1.0");
        let leftovers: Vec<String> = std::fs::read_dir(dev.join("releases"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "trial {trial}: {leftovers:?}");
    }
    eprintln!("30 trials over {span} us: {} old, {} new", kinds.0, kinds.1);
}

/// Release discovery costs two target lookups (the pointer, then the artifact through its
/// own delegation search): with TAP 15 hash bins the client needs timestamp, snapshot,
/// targets and the bins holding the pointer and the artifact, whatever the number of
/// targets. The bundle records exactly what the client fetched.
#[test]
fn discovery_in_a_hash_binned_repository_fetches_the_two_bins_on_its_paths() {
    let s = Scratch::new();
    let repo = s.repo_arg();
    s.ok(&["init", &repo]);
    s.ok(&["--repo", &repo, "delegate", "bins", "--succinct", "8"]);
    let filler = s.path().join("filler");
    std::fs::create_dir_all(&filler).unwrap();
    for i in 0..600 {
        std::fs::write(filler.join(format!("f{i}.txt")), format!("{i}")).unwrap();
    }
    let f = filler.display().to_string();
    s.ok(&[
        "--repo",
        &repo,
        "add",
        &f,
        "--name",
        "filler",
        "--version",
        "1.0.0",
        "--delegation",
        "bins",
    ]);
    let app = s.path().join("app.bin");
    std::fs::write(&app, b"binned").unwrap();
    let a = app.display().to_string();
    s.ok(&[
        "--repo",
        &repo,
        "add",
        &a,
        "--name",
        "app",
        "--version",
        "1.0.0",
        "--delegation",
        "bins",
    ]);
    s.ok(&["--repo", &repo, "publish"]);
    let bundle = s.path().join("b.bundle");
    let out = s.ok(&[
        "--repo",
        &repo,
        "--json",
        "bundle",
        "create",
        "--name",
        "app",
        "-o",
        &bundle.display().to_string(),
    ]);
    let manifest: Value = serde_json::from_str(&out).unwrap();
    let metadata: Vec<&str> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f[0].as_str().unwrap())
        .filter(|n| n.starts_with("metadata/") && *n != "metadata/1.root.json")
        .collect();
    let bins_on_paths: std::collections::BTreeSet<String> =
        ["app/channels/stable.json", "app/1.0.0/app.bin"]
            .iter()
            .map(|p| {
                let digest = sealwright_crypto::digest::sha256(p.as_bytes());
                format!(".bins-{:02x}.json", digest[0])
            })
            .collect();
    assert_eq!(metadata.len(), 3 + bins_on_paths.len(), "{metadata:?}");
    assert_eq!(metadata[0], "metadata/timestamp.json");
    assert!(metadata[1].ends_with(".snapshot.json"), "{metadata:?}");
    assert!(metadata[2].ends_with(".targets.json"), "{metadata:?}");
    for bin in &bins_on_paths {
        assert!(
            metadata.iter().any(|m| m.ends_with(bin.as_str())),
            "{bin}: {metadata:?}"
        );
    }

    let dev = s.path().join("dev");
    let root = s.repo().join("published/metadata/1.root.json");
    ok(&run(&[
        "client",
        "init",
        "--dir",
        &dev.display().to_string(),
        "--root",
        &root.display().to_string(),
        "--url",
        "https://updates.invalid/",
        "--name",
        "app",
    ]));
    ok(&update(&dev, &["--bundle", &bundle.display().to_string()]));
    assert_eq!(current(&dev).1, b"binned");
}

/// `--self-replace PATH`: the verified artifact replaces the file, the old one stays as
/// PATH.previous, and a failed health check puts the old file back.
#[test]
fn self_replace_keeps_previous_and_rolls_back_on_failed_health_check() {
    let s = Scratch::new();
    release(&s, "1.0.0", b"#!/bin/sh\nexit 0\n", &[]);
    let dev = s.path().join("dev");
    let root = s.repo().join("published/metadata/1.root.json");
    ok(&run(&[
        "client",
        "init",
        "--dir",
        &dev.display().to_string(),
        "--root",
        &root.display().to_string(),
        "--url",
        "https://updates.invalid/",
        "--name",
        "app",
    ]));
    let exe = s.path().join("myapp");
    std::fs::write(&exe, b"old binary").unwrap();
    let e = exe.display().to_string();
    let bundle = s.path().join("b1");
    let b = bundle.display().to_string();
    s.ok(&[
        "--repo",
        &s.repo_arg(),
        "bundle",
        "create",
        "--name",
        "app",
        "-o",
        &b,
    ]);
    ok(&update(
        &dev,
        &["--bundle", &b, "--self-replace", &e, "--health-check", &e],
    ));
    assert_eq!(std::fs::read(&exe).unwrap(), b"#!/bin/sh\nexit 0\n");
    assert_eq!(
        std::fs::read(s.path().join("myapp.previous")).unwrap(),
        b"old binary"
    );
    assert_eq!(
        std::fs::metadata(&exe).unwrap().permissions().mode() & 0o777,
        0o755
    );
    assert_eq!(state(&dev)["current_version"], "1.0.0");

    release(&s, "1.1.0", b"#!/bin/sh\nexit 3\n", &[]);
    s.ok(&[
        "--repo",
        &s.repo_arg(),
        "bundle",
        "create",
        "--name",
        "app",
        "-o",
        &b,
    ]);
    let err = refused(&update(
        &dev,
        &["--bundle", &b, "--self-replace", &e, "--health-check", &e],
    ));
    assert!(err.contains("rolled back"), "{err}");
    assert_eq!(std::fs::read(&exe).unwrap(), b"#!/bin/sh\nexit 0\n");
    assert_eq!(state(&dev)["current_version"], "1.0.0");
}

#[test]
fn client_init_without_a_name_takes_the_only_product_and_refuses_a_choice_of_several() {
    let s = Scratch::new();
    release(&s, "1.0.0", b"app one", &["--channel", "stable"]);
    let ca = s.path().join("ca.pem");
    let (_server, url) = serve(&s, &ca);
    let root = s.repo().join("published/metadata/1.root.json");
    let init = |dev: &Path, extra: &[&str]| {
        let mut args = vec![
            "client",
            "init",
            "--dir",
            dev.to_str().unwrap(),
            "--root",
            root.to_str().unwrap(),
            "--url",
            &url,
            "--ca",
            ca.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    // One product: init records it, the first update installs it.
    let single = s.path().join("single");
    ok(&init(&single, &[]));
    let config = std::fs::read_to_string(single.join("client.toml")).unwrap();
    assert!(config.contains("name = \"app\""), "{config}");
    ok(&run(&["update", "--dir", single.to_str().unwrap()]));

    // A second product on the same channel: a client without --name cannot know which one
    // it is for, and is told so at init, with nothing left behind.
    let tool = s.path().join("tool.bin");
    std::fs::write(&tool, b"tool").unwrap();
    let repo = s.repo_arg();
    s.ok(&[
        "--repo",
        &repo,
        "add",
        tool.to_str().unwrap(),
        "--name",
        "tool",
        "--version",
        "0.1.0",
        "--channel",
        "stable",
    ]);
    s.ok(&["--repo", &repo, "publish"]);
    let several = s.path().join("several");
    let err = refused(&init(&several, &[]));
    assert!(err.contains("several products"), "{err}");
    assert!(err.contains("app, tool"), "{err}");
    assert!(!several.exists(), "init left {} behind", several.display());
    // With --name it is fine.
    ok(&init(&several, &["--name", "tool"]));
}
