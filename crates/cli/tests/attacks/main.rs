//! The TUF attack classes, each played by a hostile mirror against `sealwright update`.
//!
//! Every test installs release 1.0.0 honestly, then the repository publishes 1.1.0 and the
//! mirror lies about it in one way. Each test asserts that the client refuses with one clear
//! error line, installs nothing, keeps `current` and `state.json` exactly as they were,
//! appends to `failures.log`, and quarantines any artifact it downloaded. A control test
//! shows the same setup updating to 1.1.0 when the mirror is honest, so the refusals are
//! caused by the attacks and not by a broken setup.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../common/mod.rs"]
mod common;
mod delegation;
mod mirror;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{copy_tree, Scratch, PASSPHRASE};
use mirror::{Behaviour, Mirror};
use serde_json::Value;

const APP_V1: &[u8] = b"#!/bin/sh\necho app 1.0.0\n";
const APP_V2: &[u8] = b"#!/bin/sh\necho app 1.1.0\n";

/// Published trees shared by every test (read-only once built).
struct Fixture {
    _scratch: Scratch,
    /// The repository (its keys sign what attackers with a stolen key would sign).
    repo: PathBuf,
    /// The published tree after 1.0.0.
    v1: PathBuf,
    /// The published tree after 1.1.0.
    v2: PathBuf,
    /// A different repository (other keys) that also publishes an `app`.
    foreign: PathBuf,
    /// The root the clients pin.
    root: PathBuf,
}

fn publish_release(s: &Scratch, repo: &str, content: &[u8], version: &str) {
    let file = s.path().join("app.sh");
    std::fs::write(&file, content).unwrap();
    s.ok(&[
        "--repo",
        repo,
        "add",
        file.to_str().unwrap(),
        "--name",
        "app",
        "--version",
        version,
    ]);
    s.ok(&["--repo", repo, "publish"]);
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let scratch = Scratch::new();
        let d = scratch.path();
        let repo = d.join("repo");
        let r = repo.to_str().unwrap();
        scratch.ok(&["init", r]);
        // Targets needs two of two keys, so one stolen key is below threshold.
        scratch.ok(&[
            "--repo",
            r,
            "key",
            "generate",
            "targets-2",
            "--role",
            "targets",
        ]);
        let policy = repo.join("sealwright.toml");
        let text = std::fs::read_to_string(&policy).unwrap();
        let text = text.replacen(
            "[roles.targets]\nthreshold = 1",
            "[roles.targets]\nthreshold = 2",
            1,
        );
        assert!(text.contains("[roles.targets]\nthreshold = 2"), "{text}");
        std::fs::write(&policy, text).unwrap();
        publish_release(&scratch, r, APP_V1, "1.0.0");
        let v1 = d.join("v1");
        copy_tree(&repo.join("published"), &v1);
        publish_release(&scratch, r, APP_V2, "1.1.0");
        let v2 = d.join("v2");
        copy_tree(&repo.join("published"), &v2);

        let other = d.join("other");
        let o = other.to_str().unwrap();
        scratch.ok(&["init", o]);
        publish_release(&scratch, o, b"#!/bin/sh\necho evil 9.9.9\n", "9.9.9");
        let foreign = d.join("foreign");
        copy_tree(&other.join("published"), &foreign);

        // The root a device would have pinned at install: version 1 of the repository's.
        let root = d.join("pinned-root.json");
        std::fs::copy(v1.join("metadata/1.root.json"), &root).unwrap();
        Fixture {
            _scratch: scratch,
            repo,
            v1,
            v2,
            foreign,
            root,
        }
    })
}

/// One client device with 1.0.0 installed, and its own mirror.
struct Device {
    _work: Scratch,
    mirror: Mirror,
    /// The client directory (`client.toml`, `metadata/`, `releases/`, `current`...).
    dir: PathBuf,
    /// Snapshot of the files that must not change when an attack is refused.
    before: BTreeMap<String, Vec<u8>>,
    failures_before: usize,
    quarantine_before: usize,
}

impl Device {
    fn new() -> Device {
        let f = fixture();
        let work = Scratch::new();
        let mirror = Mirror::start(&f.v1, work.path());
        let dir = work.path().join("device");
        work.ok(&[
            "client",
            "init",
            "--dir",
            dir.to_str().unwrap(),
            "--root",
            f.root.to_str().unwrap(),
            "--url",
            &mirror.url,
            "--ca",
            mirror.ca_pem.to_str().unwrap(),
            "--name",
            "app",
        ]);
        let mut device = Device {
            _work: work,
            mirror,
            dir,
            before: BTreeMap::new(),
            failures_before: 0,
            quarantine_before: 0,
        };
        let out = device.update(None);
        assert!(out.status.success(), "installing 1.0.0: {}", stderr(&out));
        assert_eq!(device.installed(), APP_V1);
        // From here on the repository has published 1.1.0.
        device.mirror.serve_tree(&f.v2);
        device.before = device.protected_files();
        device.failures_before = device.failures().len();
        device.quarantine_before = device.quarantined().len();
        device
    }

    fn update(&self, faketime: Option<&str>) -> Output {
        let bin = env!("CARGO_BIN_EXE_sealwright");
        let mut cmd = match faketime {
            Some(t) => {
                let mut c = Command::new("faketime");
                c.arg("-f").arg(t).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.args(["update", "--dir", self.dir.to_str().unwrap()])
            .env_remove("SEALWRIGHT_REPO")
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "running the updater{}: {e}",
                    if faketime.is_some() {
                        " under faketime (install faketime: apt-get install faketime)"
                    } else {
                        ""
                    }
                )
            })
    }

    /// The bytes of the installed `app.sh` through `current`.
    fn installed(&self) -> Vec<u8> {
        let current = self.dir.join("current");
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&current).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                found.push(std::fs::read(entry.path()).unwrap());
            }
        }
        assert_eq!(
            found.len(),
            1,
            "one installed file expected in {}",
            current.display()
        );
        found.pop().unwrap()
    }

    /// Every file and symlink of the device except the ones an attack may add to
    /// (metadata cache, quarantine, failure log): path → content (or link target).
    fn protected_files(&self) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut stack = vec![self.dir.clone()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let entry = entry.unwrap();
                let path = entry.path();
                let rel = path
                    .strip_prefix(&self.dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                if rel == "metadata" || rel == "quarantine" || rel == "failures.log" {
                    continue;
                }
                let ty = entry.file_type().unwrap();
                if ty.is_symlink() {
                    let target = std::fs::read_link(&path).unwrap();
                    out.insert(rel, target.to_string_lossy().as_bytes().to_vec());
                } else if ty.is_dir() {
                    out.insert(format!("{rel}/"), Vec::new());
                    stack.push(path);
                } else {
                    out.insert(rel, std::fs::read(&path).unwrap());
                }
            }
        }
        out
    }

    fn failures(&self) -> Vec<Value> {
        match std::fs::read_to_string(self.dir.join("failures.log")) {
            Ok(text) => text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    fn quarantined(&self) -> Vec<PathBuf> {
        match std::fs::read_dir(self.dir.join("quarantine")) {
            Ok(rd) => {
                let mut v: Vec<PathBuf> = rd.map(|e| e.unwrap().path()).collect();
                v.sort();
                v
            }
            Err(_) => Vec::new(),
        }
    }

    /// The common assertions of a refused attack; returns the error line.
    fn assert_refused(&self, out: &Output, quarantine: bool) -> String {
        let err = stderr(out);
        assert_eq!(
            out.status.code(),
            Some(1),
            "the update must be refused: stdout {} stderr {err}",
            String::from_utf8_lossy(&out.stdout)
        );
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "one error line expected: {err}");
        assert!(lines[0].starts_with("error: "), "{err}");
        assert_eq!(
            self.protected_files(),
            self.before,
            "the refused update changed the install dir or the state"
        );
        assert_eq!(
            self.installed(),
            APP_V1,
            "the last good release must stay current"
        );
        let failures = self.failures();
        assert_eq!(
            failures.len(),
            self.failures_before + 1,
            "one failure logged: {failures:?}"
        );
        let last = failures.last().unwrap();
        for field in ["time", "stage", "reason"] {
            assert!(
                last.get(field).is_some(),
                "failure record lacks {field}: {last}"
            );
        }
        let q = self.quarantined();
        if quarantine {
            assert_eq!(
                q.len(),
                self.quarantine_before + 1,
                "one quarantine entry: {q:?}"
            );
            let entry = q.last().unwrap();
            let reason = std::fs::read_to_string(entry.join("reason.txt")).unwrap();
            assert!(!reason.trim().is_empty());
            for file in std::fs::read_dir(entry).unwrap() {
                let file = file.unwrap();
                use std::os::unix::fs::PermissionsExt;
                let mode = file.metadata().unwrap().permissions().mode();
                assert_eq!(
                    mode & 0o111,
                    0,
                    "quarantined {:?} is executable",
                    file.path()
                );
            }
        } else {
            assert_eq!(
                q.len(),
                self.quarantine_before,
                "nothing to quarantine: {q:?}"
            );
        }
        lines[0].to_owned()
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The published metadata chain of a tree: (timestamp, snapshot name, targets name).
fn chain(tree: &Path) -> (Value, String, String) {
    let ts = read_json(&tree.join("metadata/timestamp.json"));
    let sv = ts["signed"]["meta"]["snapshot.json"]["version"]
        .as_u64()
        .unwrap();
    let snapshot_name = format!("{sv}.snapshot.json");
    let snap = read_json(&tree.join("metadata").join(&snapshot_name));
    let tv = snap["signed"]["meta"]["targets.json"]["version"]
        .as_u64()
        .unwrap();
    (ts, snapshot_name, format!("{tv}.targets.json"))
}

/// URL path (under the mirror) of the artifact of `version`, from the tree's targets.
fn artifact_url(tree: &Path, version: &str) -> String {
    let (_, _, targets) = chain(tree);
    let t = read_json(&tree.join("metadata").join(targets));
    let (path, info) = t["signed"]["targets"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(p, info)| {
            !p.contains("channels/")
                && info["custom"]["sealwright"]["version"].as_str() == Some(version)
        })
        .unwrap_or_else(|| panic!("no artifact for {version}"));
    let sha256 = info["hashes"]["sha256"].as_str().unwrap();
    let (dir, base) = path.rsplit_once('/').unwrap();
    format!("targets/{dir}/{sha256}.{base}")
}

/// Re-signs `doc` with the key files named (as a thief holding them would).
fn resign(doc: &mut Value, keys: &[&str]) {
    resign_with(&fixture().repo, doc, keys);
}

/// Re-signs `doc` with the key files named from `repo`'s `keys/`.
fn resign_with(repo: &Path, doc: &mut Value, keys: &[&str]) {
    let pass = sealwright_crypto::Passphrase::new(PASSPHRASE.to_owned());
    let signed = sealwright_crypto::canonical::to_canonical_json(&doc["signed"]).unwrap();
    let mut sigs = Vec::new();
    for name in keys {
        let pem = std::fs::read_to_string(repo.join("keys").join(format!("{name}.pem"))).unwrap();
        let key = sealwright_crypto::keyfile::read_private_key(&pem, Some(&pass)).unwrap();
        use sealwright_crypto::Signer as _;
        let sig = key.sign(&signed).unwrap();
        sigs.push(serde_json::json!({"keyid": key.keyid(), "sig": hex::encode(sig)}));
    }
    doc["signatures"] = Value::Array(sigs);
}

fn bytes(doc: &Value) -> Vec<u8> {
    serde_json::to_vec(doc).unwrap()
}

#[test]
fn control_an_honest_mirror_updates_to_1_1_0() {
    let d = Device::new();
    let out = d.update(None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(d.installed(), APP_V2);
    assert_eq!(d.failures().len(), d.failures_before);
    assert!(d.quarantined().is_empty());
    // Unchanged repository: nothing to do, no failure.
    let again = d.update(None);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(d.installed(), APP_V2);
}

#[test]
fn arbitrary_install_other_bytes_are_quarantined() {
    let d = Device::new();
    let url = artifact_url(&fixture().v2, "1.1.0");
    let mut evil = b"#!/bin/sh\nrm -rf / # evil!\n".to_vec();
    evil.resize(APP_V2.len(), b' ');
    d.mirror.tamper(&url, Behaviour::Bytes(evil));
    let line = d.assert_refused(&d.update(None), true);
    assert!(line.contains("hash") || line.contains("sha"), "{line}");
    // A retry downloads again and runs the same checks: refused and quarantined again.
    let retry = d.update(None);
    assert_eq!(retry.status.code(), Some(1), "{}", stderr(&retry));
    assert_eq!(d.quarantined().len(), 2);
    assert_eq!(d.failures().len(), d.failures_before + 2);
    assert_eq!(d.installed(), APP_V1);
}

#[test]
fn wrong_software_a_real_signed_artifact_in_the_wrong_place_is_quarantined() {
    let d = Device::new();
    let url = artifact_url(&fixture().v2, "1.1.0");
    let old = artifact_url(&fixture().v2, "1.0.0");
    d.mirror.tamper(
        &url,
        Behaviour::Bytes(std::fs::read(fixture().v2.join(old)).unwrap()),
    );
    d.assert_refused(&d.update(None), true);
}

#[test]
fn endless_data_artifact_is_cut_at_its_signed_length() {
    let d = Device::new();
    let url = artifact_url(&fixture().v2, "1.1.0");
    d.mirror.tamper(&url, Behaviour::Endless);
    let line = d.assert_refused(&d.update(None), true);
    assert!(line.contains("larger") || line.contains("length"), "{line}");
}

#[test]
fn endless_data_metadata_is_cut_at_its_size_limit() {
    let d = Device::new();
    d.mirror
        .tamper("metadata/timestamp.json", Behaviour::Endless);
    d.assert_refused(&d.update(None), false);
}

#[test]
fn extraneous_dependencies_injected_targets_are_refused() {
    let d = Device::new();
    let f = fixture();
    let (_, _, targets) = chain(&f.v2);
    let mut doc = read_json(&f.v2.join("metadata").join(&targets));
    // The mirror adds a "dependency" without being able to sign for it.
    doc["signed"]["targets"]["app/plugins/evil.so"] = serde_json::json!({
        "length": 4, "hashes": {"sha256": hex::encode([0u8; 32])}
    });
    d.mirror.tamper(
        &format!("metadata/{targets}"),
        Behaviour::Bytes(bytes(&doc)),
    );
    let line = d.assert_refused(&d.update(None), false);
    assert!(
        line.contains("signature") || line.contains("threshold"),
        "{line}"
    );
    assert!(
        !d.mirror.take_requests().iter().any(|r| r.contains("evil")),
        "an unsigned target was fetched"
    );
}

#[test]
fn key_compromise_below_threshold_is_refused() {
    let d = Device::new();
    let f = fixture();
    let (_, _, targets) = chain(&f.v2);
    let mut doc = read_json(&f.v2.join("metadata").join(&targets));
    let evil = b"#!/bin/sh\necho pwned\n";
    for (path, info) in doc["signed"]["targets"].as_object_mut().unwrap() {
        if !path.contains("channels/") {
            info["length"] = evil.len().into();
            info["hashes"] = serde_json::json!({
                "sha256": hex::encode(sealwright_crypto::digest::sha256(evil)),
            });
        }
    }
    // One of the two targets keys is stolen: one valid signature, threshold is two.
    resign(&mut doc, &["targets-key"]);
    d.mirror.tamper(
        &format!("metadata/{targets}"),
        Behaviour::Bytes(bytes(&doc)),
    );
    let line = d.assert_refused(&d.update(None), false);
    assert!(
        line.contains("threshold") || line.contains("signature"),
        "{line}"
    );
}

#[test]
fn malicious_mirror_foreign_repository_is_refused() {
    let d = Device::new();
    d.mirror.serve_tree(&fixture().foreign);
    let line = d.assert_refused(&d.update(None), false);
    assert!(
        line.contains("signature") || line.contains("threshold"),
        "{line}"
    );
}

#[test]
fn mix_and_match_old_targets_with_new_snapshot_is_refused() {
    let d = Device::new();
    let f = fixture();
    let (_, _, old_targets) = chain(&f.v1);
    let (_, _, new_targets) = chain(&f.v2);
    assert_ne!(old_targets, new_targets);
    let old = std::fs::read(f.v1.join("metadata").join(old_targets)).unwrap();
    d.mirror
        .tamper(&format!("metadata/{new_targets}"), Behaviour::Bytes(old));
    let line = d.assert_refused(&d.update(None), false);
    assert!(line.contains("version"), "{line}");
}

#[test]
fn rollback_to_older_metadata_is_refused() {
    let d = Device::new();
    // Update honestly to 1.1.0, then the mirror replays the 1.0.0 repository.
    let out = d.update(None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(d.installed(), APP_V2);
    d.mirror.serve_tree(&fixture().v1);
    let failures = d.failures().len();
    let before = d.protected_files();
    let out = d.update(None);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("version"), "{}", stderr(&out));
    assert_eq!(d.installed(), APP_V2, "rolled back to the replayed release");
    assert_eq!(d.protected_files(), before);
    assert_eq!(d.failures().len(), failures + 1);
}

#[test]
fn fast_forward_with_a_stolen_timestamp_key_is_refused_and_key_rotation_recovers() {
    let d = Device::new();
    let f = fixture();
    let (mut ts, _, _) = chain(&f.v2);
    // The thief points timestamp at a far-future snapshot to lock the client out.
    ts["signed"]["version"] = (ts["signed"]["version"].as_u64().unwrap() + 1000).into();
    ts["signed"]["meta"]["snapshot.json"]["version"] = 999_999.into();
    if let Some(meta) = ts["signed"]["meta"]["snapshot.json"].as_object_mut() {
        meta.remove("hashes");
        meta.remove("length");
    }
    resign(&mut ts, &["timestamp-key"]);
    d.mirror
        .tamper("metadata/timestamp.json", Behaviour::Bytes(bytes(&ts)));
    d.assert_refused(&d.update(None), false);

    // The signed timestamp was trusted, so the honest repository now looks like a rollback:
    // the device is locked out, still refusing, still on its last good release.
    d.mirror.behave();
    let out = d.update(None);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(d.installed(), APP_V1);

    // Recovery (TUF 5.3.11): the owner replaces the stolen timestamp key in a new root;
    // the client drops the timestamp it trusted and follows the repository again.
    let s = Scratch::new();
    let repo = s.path().join("repo");
    copy_tree(&f.repo, &repo);
    let r = repo.to_str().unwrap();
    // `key revoke` takes the stolen key out, gives the role a new key and publishes the
    // new root at once.
    s.ok(&[
        "--repo",
        r,
        "key",
        "revoke",
        "timestamp-key",
        "--reason",
        "stolen",
    ]);
    assert!(repo.join("published/metadata/2.root.json").exists());
    d.mirror.serve_tree(&repo.join("published"));
    let out = d.update(None);
    assert!(out.status.success(), "recovery failed: {}", stderr(&out));
    assert_eq!(d.installed(), APP_V2);
}

#[test]
fn indefinite_freeze_expired_metadata_is_refused() {
    let d = Device::new();
    // The mirror freezes the repository at 1.0.0; three days later (timestamp expires
    // after one) the device must notice instead of believing nothing changed.
    d.mirror.serve_tree(&fixture().v1);
    let line = d.assert_refused(&d.update(Some("+3d")), false);
    assert!(line.contains("expired"), "{line}");
}

#[test]
fn slow_retrieval_is_abandoned() {
    let d = Device::new();
    let url = artifact_url(&fixture().v2, "1.1.0");
    d.mirror.tamper(
        &url,
        Behaviour::Trickle {
            every: Duration::from_secs(2),
        },
    );
    let start = Instant::now();
    let out = d.update(None);
    let line = d.assert_refused(&out, true);
    assert!(
        start.elapsed() < Duration::from_secs(120),
        "took {:?}",
        start.elapsed()
    );
    assert!(
        line.contains("slow") || line.contains("timed out") || line.contains("stalled"),
        "{line}"
    );
}
