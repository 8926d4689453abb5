//! `sealwright monitor` (O1) against a real server: silent through honest pushes and its own
//! restarts (a new process each run, the same state); each finding raised by a scenario
//! that causes it, reported as JSON lines, to a webhook and in the exit status.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use common::{start_services, Scratch};
use sealwright_tlog::entry::Entry;

/// One monitor run, as cron would start it: the findings it printed and whether it exited 0.
struct Run {
    findings: Vec<serde_json::Value>,
    success: bool,
    stderr: String,
}

impl Run {
    fn kinds(&self) -> Vec<&str> {
        self.findings
            .iter()
            .map(|f| f["finding"].as_str().unwrap())
            .collect()
    }
}

struct Watch {
    url: String,
    vkey: String,
    /// The root given on the command line; none: the log vouches for the repository's.
    root: Option<PathBuf>,
    cert: PathBuf,
    state: PathBuf,
}

impl Watch {
    fn run(&self, s: &Scratch, extra: &[&str]) -> Run {
        let log = format!("{}/log/", self.url);
        let mut args = vec![
            "monitor",
            "--log",
            &log,
            "--key",
            &self.vkey,
            "--repo-url",
            &self.url,
            "--state",
            self.state.to_str().unwrap(),
            "--ca",
            self.cert.to_str().unwrap(),
            "--grace",
            "1",
        ];
        if let Some(root) = &self.root {
            args.extend(["--root", root.to_str().unwrap()]);
        }
        args.extend_from_slice(extra);
        let out = s.run(&args);
        let stdout = String::from_utf8(out.stdout).unwrap();
        Run {
            findings: stdout
                .lines()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
                .collect(),
            success: out.status.success(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// A run that must find nothing.
    fn quiet(&self, s: &Scratch, when: &str) -> Run {
        let run = self.run(s, &[]);
        assert!(
            run.success && run.findings.is_empty(),
            "{when}: {:?}\n{}",
            run.findings,
            run.stderr
        );
        run
    }

    /// A run that must report `kind` (among what the scenario causes) and exit non-zero.
    fn finds(&self, s: &Scratch, kind: &str, extra: &[&str]) -> Run {
        let run = self.run(s, extra);
        assert!(
            run.kinds().contains(&kind),
            "expected {kind}: {:?}\n{}",
            run.findings,
            run.stderr
        );
        assert!(!run.success, "findings must fail the run");
        run
    }
}

/// Appends `entries` to the server's log through its own writer (sequence, integrate,
/// agent-signed checkpoint): what a server that logged them would have done.
fn log_entries(server_dir: &Path, entries: &[Entry]) {
    let policy = sealwright_repo::policy::Policy::load(server_dir).unwrap();
    let log = sealwright_server::translog::TransparencyLog::open(server_dir, &policy)
        .unwrap()
        .unwrap();
    log.sequence(entries).unwrap();
    log.integrate().unwrap();
}

/// The entries in the server's log files.
fn logged(server_dir: &Path) -> Vec<Entry> {
    let log = server_dir.join(sealwright_server::translog::LOG_DIR);
    let note = std::fs::read(log.join("checkpoint")).unwrap();
    let note = sealwright_tlog::Note::parse(&note).unwrap();
    let size = sealwright_tlog::Checkpoint::parse(note.text())
        .unwrap()
        .size;
    let mut out = Vec::new();
    for index in 0..size.div_ceil(256) {
        let path = sealwright_tlog::tile::TilePath {
            kind: sealwright_tlog::tile::TileKind::Entries,
            index,
            width: (size - index * 256).min(256) as u16,
        };
        let bundle = std::fs::read(log.join(path.to_string())).unwrap();
        for e in sealwright_tlog::tile::decode_bundle(&bundle).unwrap() {
            out.push(Entry::parse(e).unwrap());
        }
    }
    out
}

/// The log's private key, taken from the agent's key file with the passphrase its unit
/// hands it: what an attacker who stole both would hold.
struct StolenLogKey {
    key: sealwright_crypto::PrivateKey,
    verifier: sealwright_tlog::Verifier,
}

impl StolenLogKey {
    fn from_setup(dir: &Path, vkey: &str) -> Self {
        let unit = dir.join("systemd/sealwright-agent.service");
        let credential = common::unit_value(&unit, "LoadCredential");
        let passphrase =
            std::fs::read_to_string(credential.strip_prefix("passphrase:").unwrap()).unwrap();
        let pem = std::fs::read_to_string(dir.join("agent/keys/log.pem")).unwrap();
        let key = sealwright_crypto::keyfile::read_private_key(
            &pem,
            Some(&sealwright_crypto::keyfile::Passphrase::new(
                passphrase.trim_end().to_owned(),
            )),
        )
        .unwrap();
        StolenLogKey {
            key,
            verifier: sealwright_tlog::Verifier::from_vkey(vkey).unwrap(),
        }
    }

    /// A checkpoint note of `size` entries and `root`, signed with the log key.
    fn checkpoint(&self, size: u64, root: [u8; 32]) -> Vec<u8> {
        let text = sealwright_tlog::Checkpoint {
            origin: self.verifier.name().to_owned(),
            size,
            root,
            extensions: vec![],
        }
        .to_text();
        let mut note = sealwright_tlog::Note::new(&text).unwrap();
        note.add_signature(sealwright_tlog::note::sign(&text, self, 0).unwrap());
        note.to_bytes()
    }
}

impl sealwright_tlog::note::NoteSigner for StolenLogKey {
    fn verifier(&self) -> &sealwright_tlog::Verifier {
        &self.verifier
    }
    fn sign_message(&self, message: &[u8]) -> Result<[u8; 64], sealwright_tlog::NoteError> {
        use sealwright_crypto::Signer as _;
        Ok(self.key.sign(message).unwrap().try_into().unwrap())
    }
}

/// A one-shot HTTP endpoint on 127.0.0.1: the body of the first POST it receives.
fn webhook() -> (String, std::thread::JoinHandle<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream);
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        reader
            .get_mut()
            .write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
            .unwrap();
        String::from_utf8(body).unwrap()
    });
    (url, handle)
}

#[test]
fn the_monitor_is_quiet_on_an_honest_server_and_raises_each_finding() {
    let s = Scratch::new();
    let repo = s.repo_arg();
    let (dir, port, token) = common::init_and_set_up_server(&s);
    let server_dir = dir.join("server");
    let url = format!("https://127.0.0.1:{port}");
    let cert = dir.join("tls/cert.pem");
    let _services = start_services(&dir, port);
    let push = |version: &str| {
        s.add_release(&repo, version.as_bytes(), "app", version);
        s.push_to(&url, &token, &cert);
    };
    let watch = Watch {
        url: url.clone(),
        vkey: std::fs::read_to_string(server_dir.join("log.vkey"))
            .unwrap()
            .trim()
            .to_owned(),
        root: Some(server_dir.join("published/metadata/1.root.json")),
        cert: cert.clone(),
        state: s.path().join("monitor-state"),
    };
    // A second monitor given no root: the log vouches for the repository's 1.root.json.
    let vouched = Watch {
        root: None,
        state: s.path().join("vouched-state"),
        url: watch.url.clone(),
        vkey: watch.vkey.clone(),
        cert: cert.clone(),
    };
    let checkpoint = server_dir
        .join(sealwright_server::translog::LOG_DIR)
        .join("checkpoint");

    // Honest: a push, a monitor run, another push, another run (a new process: a restart),
    // which reads only the entries added since.
    push("1.0.0");
    let first = watch.quiet(&s, "the first run");
    vouched.quiet(&s, "the first run, the root vouched for by the log");
    let early_checkpoint = std::fs::read(&checkpoint).unwrap();
    push("1.1.0");
    let second = watch.quiet(&s, "after a second push");
    let size = |r: &Run| {
        r.stderr
            .split("log at ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    assert!(size(&second) > size(&first), "{}", second.stderr);
    assert!(
        second
            .stderr
            .contains(&format!("({} read this run)", size(&second) - size(&first))),
        "{}",
        second.stderr
    );
    watch.quiet(&s, "with nothing new");

    // An artifact path logged again with other bytes; reported to the webhook too.
    let (path, role) = logged(&server_dir)
        .into_iter()
        .find_map(|e| match e {
            Entry::Target { path, role, .. } if !path.contains("/channels/") => Some((path, role)),
            _ => None,
        })
        .unwrap();
    log_entries(
        &server_dir,
        &[Entry::Target {
            path: path.clone(),
            length: 3,
            sha256: "ee".repeat(32),
            role,
        }],
    );
    let (hook, received) = webhook();
    let run = watch.finds(&s, "target-repointed", &["--webhook", &hook]);
    assert_eq!(run.kinds(), ["target-repointed"]);
    assert!(run.findings[0]["message"].as_str().unwrap().contains(&path));
    let posted: serde_json::Value = serde_json::from_str(&received.join().unwrap()).unwrap();
    assert_eq!(
        posted["findings"][0]["finding"], "target-repointed",
        "{posted}"
    );
    watch.quiet(&s, "once reported, a finding is not repeated");

    // The audit log's head going backwards.
    log_entries(
        &server_dir,
        &[Entry::AuditHead {
            records: 1,
            head: "00".repeat(32),
        }],
    );
    assert_eq!(
        watch.finds(&s, "audit-head-backwards", &[]).kinds(),
        ["audit-head-backwards"]
    );

    // The log rolled back to an older (genuinely signed) checkpoint: reported, and reported
    // again while it lasts; the monitor keeps the checkpoint it trusted.
    let current = std::fs::read(&checkpoint).unwrap();
    std::fs::write(&checkpoint, &early_checkpoint).unwrap();
    assert_eq!(
        watch.finds(&s, "log-not-append-only", &[]).kinds(),
        ["log-not-append-only"]
    );
    watch.finds(&s, "log-not-append-only", &[]);
    std::fs::write(&checkpoint, &current).unwrap();
    watch.quiet(&s, "the log restored");

    // Whoever stole the log key (the agent itself refuses to sign a fork) signs another tree
    // of the same size: a fork, reported; then a larger tree the served tiles cannot prove
    // an extension of.
    let stolen = StolenLogKey::from_setup(&dir, &watch.vkey);
    let honest =
        sealwright_tlog::Checkpoint::parse(sealwright_tlog::Note::parse(&current).unwrap().text())
            .unwrap();
    for (size, what) in [(honest.size, "a fork"), (honest.size + 5, "a larger tree")] {
        std::fs::write(&checkpoint, stolen.checkpoint(size, [7; 32])).unwrap();
        let run = watch.finds(&s, "log-not-append-only", &[]);
        assert_eq!(run.kinds(), ["log-not-append-only"], "{what}");
    }
    std::fs::write(&checkpoint, &current).unwrap();
    watch.quiet(&s, "the log restored again");

    // The server cannot publish a push it has not logged (a push is sequenced first):
    // whoever publishes behind its back — with the agent's socket and the data directory,
    // re-signing the timestamp — is what a monitor catches. The published versions are
    // missing from the log; the server's next push logs what is published then, so the
    // versions published and replaced in between show as a jump.
    let renew_behind_the_servers_back = |hours: i64| {
        let policy = sealwright_repo::policy::Policy::load(&server_dir).unwrap();
        let keyring = sealwright_repo::keyring::Keyring::new(
            &server_dir,
            &sealwright_server::accept::NoKeyFiles,
        );
        let storage = sealwright_server::storage::Storage::embedded(&server_dir);
        let mut session = storage.begin().unwrap();
        let renewed = sealwright_server::accept::renew_online_roles(
            &mut session,
            &policy,
            &keyring,
            chrono::Utc::now() + chrono::Duration::hours(hours),
        )
        .unwrap();
        assert!(renewed.timestamp.is_some(), "{renewed:?}");
    };
    renew_behind_the_servers_back(20);
    let run = watch.finds(&s, "published-not-logged", &[]);
    assert!(
        run.kinds().iter().all(|k| *k == "published-not-logged"),
        "{:?}",
        run.findings
    );
    renew_behind_the_servers_back(40);
    push("1.3.0");
    let run = watch.finds(&s, "version-jump", &[]);
    assert!(
        run.kinds().iter().all(|k| *k == "version-jump"),
        "{:?}",
        run.findings
    );
    watch.quiet(&s, "after the jump was reported");

    // A signature by a key the root does not name, on metadata the repository serves and
    // the log holds (the timestamp, re-published with one more signature).
    let timestamp_path = server_dir.join("published/metadata/timestamp.json");
    let mut timestamp: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&timestamp_path).unwrap()).unwrap();
    let version = timestamp["signed"]["version"].as_u64().unwrap();
    timestamp["signatures"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"keyid": "ab".repeat(32), "sig": "cd".repeat(64)}));
    let bytes = serde_json::to_vec(&timestamp).unwrap();
    sealwright_repo::fsutil::write_atomic(&timestamp_path, &bytes).unwrap();
    log_entries(
        &server_dir,
        &[Entry::Metadata {
            role: "timestamp".into(),
            version,
            length: bytes.len() as u64,
            sha256: sealwright_crypto::digest::sha256_hex(&bytes),
        }],
    );
    let run = watch.finds(&s, "unknown-key", &[]);
    assert!(
        run.findings
            .iter()
            .any(|f| f["message"].as_str().unwrap().contains(&"ab".repeat(32))),
        "{:?}",
        run.findings
    );

    // A version the log holds that the repository does not publish (shown to someone, but
    // not to the public repository).
    let targets_version = logged(&server_dir)
        .into_iter()
        .filter_map(|e| match e {
            Entry::Metadata { role, version, .. } if role == "targets" => Some(version),
            _ => None,
        })
        .max()
        .unwrap();
    log_entries(
        &server_dir,
        &[Entry::Metadata {
            role: "targets".into(),
            version: targets_version + 1,
            length: 10,
            sha256: "aa".repeat(32),
        }],
    );
    assert_eq!(
        watch.finds(&s, "logged-not-published", &[]).kinds(),
        ["logged-not-published"]
    );

    // Without --root, a repository showing another 1.root.json than the log holds is not
    // trusted; the monitor says what to do.
    let root_file = server_dir.join("published/metadata/1.root.json");
    let mut other_root: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&root_file).unwrap()).unwrap();
    other_root["signatures"] = serde_json::json!([]);
    std::fs::write(&root_file, serde_json::to_vec(&other_root).unwrap()).unwrap();
    let fresh = Watch {
        root: None,
        state: s.path().join("fresh-state"),
        url: watch.url.clone(),
        vkey: watch.vkey.clone(),
        cert: cert.clone(),
    }
    .run(&s, &[]);
    assert!(!fresh.success);
    assert!(
        fresh.stderr.contains("another root than the log") && fresh.stderr.contains("--root"),
        "{}",
        fresh.stderr
    );
}
