//! Server replicas on one shared store (PRODUCT.md D6): two `sealwright serve --push
//! --store postgres://… --objects s3://…` processes on one PostgreSQL database and one S3
//! bucket (moto), started by `scripts/services`. Pushes land on either replica; both serve
//! one history, which python-tuf's client and ours follow; killing a replica at any point
//! of a push leaves nothing half-published and publishing never wedges.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{python, sealwright, start_agent, Killed, Scratch, PASSPHRASE};
use sealwright_crypto::digest::sha256_hex;
use sealwright_repo::{FixedPassphrase, Keyring, Policy};
use sealwright_store::shared::testing;
use sealwright_store::SharedConfig;
use sealwright_tuf::metadata::{Metadata, TargetFile, Targets};
use serde_json::Value;

/// A publisher repository with `teams` delegated roles `team-I` (paths `team-I/*/*`), the
/// signer agent holding the online keys, two replica data directories made by
/// `server-init` (same policy, same token file), and a fresh database and bucket.
struct Fleet {
    s: Scratch,
    config: SharedConfig,
    token: String,
    token_file: PathBuf,
    dirs: [PathBuf; 2],
    _agent: Killed,
}

fn fleet(teams: usize) -> Fleet {
    let s = Scratch::new();
    let repo = s.repo_arg();
    s.ok(&["init", &repo]);
    for i in 0..teams {
        let name = format!("team-{i}");
        s.ok(&[
            "--repo",
            &repo,
            "delegate",
            &name,
            "--paths",
            &format!("{name}/*/*"),
        ]);
    }
    s.ok(&["--repo", &repo, "publish"]);
    let (agent, socket) = start_agent(&s, None);
    common::online_keys_in_agent(&s.repo(), &socket);

    let a = s.path().join("replica-a");
    s.ok(&["--repo", &repo, "server-init", a.to_str().unwrap()]);
    let mut token_args = vec![
        "--repo".to_owned(),
        a.display().to_string(),
        "--json".into(),
        "token".into(),
        "add".into(),
        "teams".into(),
    ];
    for i in 0..teams {
        token_args.extend(["--role".into(), format!("team-{i}")]);
    }
    let args: Vec<&str> = token_args.iter().map(String::as_str).collect();
    let out: Value = serde_json::from_str(&s.ok(&args)).unwrap();
    let token = out["token"].as_str().unwrap().to_owned();
    let token_file = s.path().join("teams.token");
    std::fs::write(&token_file, &token).unwrap();
    // The second replica: the same data directory, before either started (tokens and the
    // audit log are per replica; the published state comes from the shared store).
    let b = s.path().join("replica-b");
    let copied = Command::new("cp")
        .arg("-a")
        .arg(&a)
        .arg(&b)
        .status()
        .unwrap();
    assert!(copied.success());

    let config = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(testing::fresh())
        .unwrap();
    Fleet {
        s,
        config,
        token,
        token_file,
        dirs: [a, b],
        _agent: agent,
    }
}

/// A running replica: its URL and the development certificate clients trust.
struct Replica {
    url: String,
    ca: PathBuf,
}

impl Replica {
    fn http(&self) -> ureq::Agent {
        common::https_agent(&self.ca)
    }

    /// GET of a path; status and body.
    fn get(&self, path: &str) -> (u16, Vec<u8>) {
        let resp = self
            .http()
            .get(format!("{}{path}", self.url))
            .call()
            .unwrap();
        let status = resp.status().as_u16();
        let body = resp.into_body().read_to_vec().unwrap();
        (status, body)
    }

    /// The transparency log this replica serves, read as a device would.
    fn log_reader(
        &self,
        key: &sealwright_tlog::Verifier,
    ) -> sealwright_client::log_reader::LogReader<sealwright_client::HttpFetcher> {
        let tls = sealwright_client::tls::TlsOptions::default()
            .with_ca_file(&self.ca)
            .unwrap();
        sealwright_client::log_reader::LogReader::new(
            sealwright_client::HttpFetcher::with_tls(&self.url, &tls).unwrap(),
            &format!("{}/log/", self.url),
            key.clone(),
        )
    }

    fn json(&self, path: &str) -> Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "GET {path}");
        serde_json::from_slice(&body).unwrap()
    }

    /// The published version of `role`, read (unverified: clients verify) from the chain
    /// timestamp → snapshot.
    fn role_version(&self, role: &str) -> u64 {
        let ts = self.json("/metadata/timestamp.json");
        let sv = ts["signed"]["meta"]["snapshot.json"]["version"]
            .as_u64()
            .unwrap();
        let snapshot = self.json(&format!("/metadata/{sv}.snapshot.json"));
        snapshot["signed"]["meta"][format!("{role}.json")]["version"]
            .as_u64()
            .unwrap()
    }
}

fn start_replica(f: &Fleet, which: usize) -> (Replica, Killed) {
    start_replica_of(&f.dirs[which], &f.config)
}

/// `serve --push` of data directory `dir` on the shared store of `config`.
fn start_replica_of(dir: &Path, config: &SharedConfig) -> (Replica, Killed) {
    let ca = dir.with_extension("ca.pem");
    let mut command = sealwright(None);
    command
        .args(["--repo", dir.to_str().unwrap(), "--json", "serve", "--push"])
        .args(["--listen", "127.0.0.1:0", "--dev-cert-out"])
        .arg(&ca)
        .args(["--store", &config.database, "--objects", &config.objects])
        .env_remove("SEALWRIGHT_REPO")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (name, value) in &config.object_options {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
    let process = Killed(child);
    assert!(
        !line.trim().is_empty(),
        "the replica of {} did not start",
        dir.display()
    );
    let v: Value = serde_json::from_str(&line).unwrap();
    let replica = Replica {
        url: v["url"].as_str().unwrap().to_owned(),
        ca,
    };
    (replica, process)
}

/// Our client, over HTTPS from `r`, with its metadata kept in `state` between calls (so a
/// rollback or a fork between two calls is caught too): refreshes and returns each
/// target's bytes.
fn our_client(f: &Fleet, r: &Replica, state: &Path, targets: &[String]) -> Vec<Vec<u8>> {
    if !state.join("root.json").exists() {
        std::fs::create_dir_all(state).unwrap();
        let root = std::fs::read(f.s.repo().join("published/metadata/1.root.json")).unwrap();
        sealwright_client::updater::init(state, &root).unwrap();
    }
    let tls = sealwright_client::tls::TlsOptions::default()
        .with_ca_file(&r.ca)
        .unwrap();
    let fetcher = sealwright_client::fetch::HttpFetcher::with_tls(&r.url, &tls).unwrap();
    let downloads = state.join("downloads");
    let _ = std::fs::remove_dir_all(&downloads);
    let config =
        sealwright_client::updater::UpdaterConfig::new(state, format!("{}/metadata/", r.url))
            .with_targets(&downloads, format!("{}/targets/", r.url));
    let mut updater =
        sealwright_client::updater::Updater::new(config, fetcher, chrono::Utc::now()).unwrap();
    updater.refresh().unwrap();
    targets
        .iter()
        .map(|t| {
            let found = updater
                .get_targetinfo(t)
                .unwrap()
                .unwrap_or_else(|| panic!("{t} is not published"));
            std::fs::read(updater.download_target(&found.target, t).unwrap()).unwrap()
        })
        .collect()
}

/// python-tuf's ngclient over HTTPS from `r`: every target downloads and verifies; returns
/// the SHA-256 it reports for each.
fn python_tuf(f: &Fleet, r: &Replica, targets: &[String]) -> Value {
    let (py, _) = python();
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../server/tests/ngclient_https.py");
    let mut cmd = Command::new(py);
    cmd.arg(script)
        .args(["--base-url", &r.url])
        .arg("--ca")
        .arg(&r.ca)
        .arg("--root")
        .arg(f.s.repo().join("published/metadata/1.root.json"))
        .arg("--out-dir")
        .arg(f.s.path().join("python-downloads"));
    for t in targets {
        cmd.args(["--target", t]);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python-tuf failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

/// Every snapshot version either replica serves, in order: none lists a role at a lower
/// version than the one before it (one history, never forked or rolled back). Returns
/// how many there were.
fn check_history(r: &Replica) -> usize {
    let ts = r.json("/metadata/timestamp.json");
    let latest = ts["signed"]["meta"]["snapshot.json"]["version"]
        .as_u64()
        .unwrap();
    let mut previous: Option<Value> = None;
    let mut seen = 0;
    for v in 1..=latest {
        let (status, body) = r.get(&format!("/metadata/{v}.snapshot.json"));
        if status == 404 {
            continue;
        }
        assert_eq!(status, 200);
        let snapshot: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(snapshot["signed"]["version"].as_u64(), Some(v));
        if let Some(prev) = &previous {
            for (file, meta) in prev["signed"]["meta"].as_object().unwrap() {
                let now = snapshot["signed"]["meta"][file]["version"].as_u64();
                assert!(
                    now >= meta["version"].as_u64(),
                    "snapshot {v} lists {file} at {now:?}, below {}",
                    meta["version"]
                );
            }
        }
        previous = Some(snapshot);
        seen += 1;
    }
    seen
}

const TEAMS: usize = 8;
const PUSHES_EACH: usize = 3;

#[test]
fn two_replicas_take_pushes_from_eight_publishers_into_one_history_both_clients_follow() {
    let f = fleet(TEAMS);
    let (a, _a) = start_replica(&f, 0);
    let (b, _b) = start_replica(&f, 1);
    let replicas = [a, b];
    // Each publisher is a copy of the owner's repository that pushes its own role, to the
    // replica a load balancer would have picked for it.
    let publishers: Vec<PathBuf> = (0..TEAMS)
        .map(|i| {
            let dir = f.s.path().join(format!("publisher-{i}"));
            let ok = Command::new("cp")
                .arg("-a")
                .arg(f.s.repo())
                .arg(&dir)
                .status()
                .unwrap();
            assert!(ok.success());
            dir
        })
        .collect();
    std::thread::scope(|scope| {
        for (i, dir) in publishers.iter().enumerate() {
            let replica = &replicas[i % 2];
            let f = &f;
            scope.spawn(move || {
                for k in 1..=PUSHES_EACH {
                    let file = dir.with_extension("app.bin");
                    std::fs::write(&file, format!("team-{i} release {k}")).unwrap();
                    let repo = dir.to_str().unwrap();
                    f.s.ok(&[
                        "--repo",
                        repo,
                        "add",
                        "--delegation",
                        &format!("team-{i}"),
                        file.to_str().unwrap(),
                        "--name",
                        &format!("team-{i}"),
                        "--version",
                        &format!("1.0.{k}"),
                    ]);
                    f.s.ok(&[
                        "--repo",
                        repo,
                        "push",
                        "--server",
                        &replica.url,
                        "--token-file",
                        f.token_file.to_str().unwrap(),
                        "--ca",
                        replica.ca.to_str().unwrap(),
                    ]);
                }
            });
        }
    });

    // Both replicas serve the same state, whichever took each push.
    let (_, ts_a) = replicas[0].get("/metadata/timestamp.json");
    let (_, ts_b) = replicas[1].get("/metadata/timestamp.json");
    assert_eq!(ts_a, ts_b);
    for i in 0..TEAMS {
        assert_eq!(
            replicas[0].role_version(&format!("team-{i}")),
            1 + PUSHES_EACH as u64
        );
    }
    // Every push is in the audit log the replicas share, one chain that verifies.
    let verified = shared_command(&f, 0, &["audit", "verify"]);
    assert_eq!(verified["ok"], true, "{verified}");
    let records = shared_command(&f, 1, &["audit", "list", "--limit", "1000"]);
    let pushes = records
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "push")
        .count();
    assert_eq!(pushes, TEAMS * PUSHES_EACH);

    // One history: every push a snapshot of its own, none rolling another back.
    let snapshots = check_history(&replicas[1]);
    assert!(snapshots > TEAMS * PUSHES_EACH, "{snapshots} snapshots");

    // Every release of every team, through both clients, each from a different replica.
    let targets: Vec<String> = (0..TEAMS)
        .flat_map(|i| {
            (1..=PUSHES_EACH).map(move |k| format!("team-{i}/1.0.{k}/publisher-{i}.app.bin"))
        })
        .collect();
    let expected: Vec<Vec<u8>> = (0..TEAMS)
        .flat_map(|i| (1..=PUSHES_EACH).map(move |k| format!("team-{i} release {k}").into_bytes()))
        .collect();
    let ours = our_client(&f, &replicas[1], &f.s.path().join("client"), &targets);
    assert_eq!(ours, expected);
    let report = python_tuf(&f, &replicas[0], &targets);
    for (t, bytes) in targets.iter().zip(&expected) {
        assert_eq!(
            report["targets"][t].as_str(),
            Some(sha256_hex(bytes).as_str()),
            "{t}"
        );
    }
}

/// The team-0 key, opened once (scrypt is slow).
fn team_key(f: &Fleet) -> sealwright_crypto::PrivateKey {
    let policy = Policy::load(&f.s.repo()).unwrap();
    let pass = FixedPassphrase(sealwright_crypto::Passphrase::new(PASSPHRASE.to_owned()));
    Keyring::new(&f.s.repo(), &pass)
        .open(&policy, "team-0-key")
        .unwrap()
        .unwrap()
}

/// One push of `team-0` straight to the API of `r`: the next version of the role after the
/// one `reader` (the other replica) serves, listing only `content`. Ok(version) when `r`
/// answered that it published it.
fn push_once(
    f: &Fleet,
    r: &Replica,
    reader: &Replica,
    key: &sealwright_crypto::PrivateKey,
    content: &[u8],
) -> Result<u64, (u64, String)> {
    let agent = r.http();
    let version = reader.role_version("team-0");
    let err = |e: ureq::Error| (version + 1, e.to_string());
    let bytes = reader.get(&format!("/metadata/{version}.team-0.json")).1;
    let mut md: Metadata<Targets> = Metadata::from_bytes(&bytes, 1 << 26).unwrap();
    md.signed.version = version + 1;
    md.signed.targets.clear();
    let sha = sha256_hex(content);
    md.signed.targets.insert(
        format!("team-0/v{}/app.bin", version + 1),
        TargetFile::new(
            content.len() as u64,
            [("sha256".to_owned(), sha.clone())].into(),
        ),
    );
    md.signatures.clear();
    md.sign(key).unwrap();
    let auth = format!("Bearer {}", f.token);
    let resp = agent
        .put(format!("{}/api/v1/blobs/{sha}", r.url))
        .header("Authorization", &auth)
        .send(content)
        .map_err(err)?;
    if !matches!(resp.status().as_u16(), 200 | 201) {
        return Err((version + 1, format!("upload: {}", resp.status())));
    }
    let body = serde_json::to_vec(&serde_json::json!({
        "roles": { "team-0": String::from_utf8(md.to_bytes().unwrap()).unwrap() }
    }))
    .unwrap();
    let resp = agent
        .post(format!("{}/api/v1/push", r.url))
        .header("Authorization", &auth)
        .send(&body[..])
        .map_err(err)?;
    let status = resp.status().as_u16();
    let text = resp.into_body().read_to_string().unwrap_or_default();
    if status != 200 {
        return Err((version + 1, format!("push: {status} {text}")));
    }
    Ok(version + 1)
}

const KILL_TRIALS: usize = 50;

#[test]
fn a_replica_killed_at_any_point_of_a_push_leaves_nothing_half_published() {
    let f = fleet(1);
    let key = team_key(&f);
    let (survivor, _survivor) = start_replica(&f, 1);
    let state = f.s.path().join("client");
    let mut published = 0usize;
    // Pushes cut off by the kill: those that were committed before it (the answer lost)
    // and those that were not; both must occur for the trials to cover the commit.
    let (mut cut_after_commit, mut cut_before_commit) = (0, 0);
    for trial in 0..KILL_TRIALS {
        // Spread over the whole of a push and the requests around it, reproducibly.
        let h = sealwright_crypto::digest::sha256(format!("kill {trial}").as_bytes());
        let delay = 2 + u64::from(u16::from_be_bytes([h[0], h[1]])) % 300;
        let (victim, process) = start_replica(&f, 0);
        // Publishing is not wedged by the last kill: the restarted replica takes a push.
        let first = push_once(
            &f,
            &victim,
            &survivor,
            &key,
            format!("trial {trial} first").as_bytes(),
        );
        assert!(first.is_ok(), "trial {trial}: {first:?}");
        published += 1;
        // Then pushes back to back while it is killed, somewhere in one of them.
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            let pusher = scope.spawn(|| {
                let mut n = 0;
                let mut cut = None;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let content = format!("trial {trial} push {n}");
                    match push_once(&f, &victim, &survivor, &key, content.as_bytes()) {
                        Ok(_) => n += 1,
                        Err((attempted, _)) => {
                            cut = Some(attempted);
                            break;
                        }
                    }
                }
                (n, cut)
            });
            std::thread::sleep(Duration::from_millis(delay));
            drop(process);
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let (n, cut) = pusher.join().unwrap();
            published += n;
            if let Some(attempted) = cut {
                if survivor.role_version("team-0") >= attempted {
                    cut_after_commit += 1;
                } else {
                    cut_before_commit += 1;
                }
            }
        });

        // What clients see through the other replica is whole: our client (keeping its
        // metadata across trials, so no rollback either) verifies it and downloads the
        // latest release, whose bytes are the ones pushed for that version.
        let version = survivor.role_version("team-0");
        let path = format!("team-0/v{version}/app.bin");
        let got = our_client(&f, &survivor, &state, std::slice::from_ref(&path));
        let text = String::from_utf8(got[0].clone()).unwrap();
        assert!(
            text.starts_with(&format!("trial {trial} "))
                || text.starts_with(&format!("trial {} ", trial.saturating_sub(1))),
            "{text}"
        );
    }
    assert!(published >= KILL_TRIALS);
    eprintln!("{KILL_TRIALS} kills: {cut_before_commit} cut a push before its commit, {cut_after_commit} after it, {published} pushes answered");
    assert!(
        cut_before_commit > 0 && cut_before_commit + cut_after_commit >= KILL_TRIALS / 2,
        "{cut_before_commit} before, {cut_after_commit} after"
    );
    // The whole history verifies with python-tuf too.
    let latest = survivor.role_version("team-0");
    python_tuf(&f, &survivor, &[format!("team-0/v{latest}/app.bin")]);
    assert!(check_history(&survivor) > KILL_TRIALS);
}

/// Status of `GET /api/v1/blobs/{some sha}` at `r` with `token`: 404 when the token is
/// accepted (no such blob), 401 when it is not.
fn token_status(r: &Replica, token: &str) -> u16 {
    r.http()
        .get(format!("{}/api/v1/blobs/{}", r.url, sha256_hex(b"none")))
        .header("Authorization", format!("Bearer {token}"))
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .unwrap()
        .status()
        .as_u16()
}

/// `sealwright ARGS --store … --objects …` run against replica `which`'s directory.
fn shared_command(f: &Fleet, which: usize, args: &[&str]) -> Value {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sealwright"));
    command
        .args(["--repo", f.dirs[which].to_str().unwrap(), "--json"])
        .args(args)
        .args([
            "--store",
            &f.config.database,
            "--objects",
            &f.config.objects,
        ])
        .env_remove("SEALWRIGHT_REPO");
    for (name, value) in &f.config.object_options {
        command.env(name, value);
    }
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_token_added_or_removed_through_one_replica_holds_on_every_replica() {
    let f = fleet(1);
    let (a, _a) = start_replica(&f, 0);
    let (b, _b) = start_replica(&f, 1);
    // The first replica brought its token file into the shared store.
    assert_eq!(token_status(&a, &f.token), 404);
    assert_eq!(token_status(&b, &f.token), 404);
    assert_eq!(token_status(&b, "swp_unknown"), 401);

    let added = shared_command(&f, 1, &["token", "add", "late", "--role", "team-0"]);
    let late = added["token"].as_str().unwrap().to_owned();
    assert_eq!(
        token_status(&a, &late),
        404,
        "the other replica does not know it"
    );
    let listed = shared_command(&f, 0, &["token", "list"]);
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["teams", "late"]);
    // Neither data directory's file changed: the database is where tokens live now.
    for dir in &f.dirs {
        let file = std::fs::read_to_string(dir.join("push-tokens.toml")).unwrap();
        assert!(!file.contains("late"), "{file}");
    }

    shared_command(&f, 0, &["token", "remove", "late"]);
    assert_eq!(token_status(&a, &late), 401);
    assert_eq!(token_status(&b, &late), 401);
    assert_eq!(token_status(&b, &f.token), 404);

    // Both changes are in the one audit log the replicas share, whose chain verifies.
    let records = shared_command(&f, 0, &["audit", "list", "--limit", "100"]);
    let actions: Vec<&str> = records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"token-add") && actions.contains(&"token-remove"),
        "{actions:?}"
    );
    assert_eq!(shared_command(&f, 1, &["audit", "verify"])["ok"], true);
}

/// Root version `version` signed by `key`, on the repository's first root.
fn root_version(f: &Fleet, version: u64, key: &sealwright_crypto::PrivateKey) -> Vec<u8> {
    let first = std::fs::read(f.s.repo().join("published/metadata/1.root.json")).unwrap();
    let mut root: Metadata<sealwright_tuf::metadata::Root> =
        Metadata::from_bytes(&first, 1 << 20).unwrap();
    root.signed.version = version;
    root.signed.expires += chrono::Duration::days(1);
    root.signatures.clear();
    root.sign(key).unwrap();
    root.to_bytes().unwrap()
}

/// Copies root `bytes` into a replica's data directory as the operator would
/// (docs/push.md: `N.root.json` and `root.json`).
fn copy_root(f: &Fleet, which: usize, version: u64, bytes: &[u8]) {
    let metadata = f.dirs[which].join("published/metadata");
    std::fs::write(metadata.join(format!("{version}.root.json")), bytes).unwrap();
    std::fs::write(metadata.join("root.json"), bytes).unwrap();
}

#[test]
fn a_root_copied_into_one_replica_reaches_clients_through_every_replica_a_forged_one_none() {
    let f = fleet(1);
    let (a, _a) = start_replica(&f, 0);
    let (b, _b) = start_replica(&f, 1);
    let team = team_key(&f);
    let state = f.s.path().join("client");
    let trusted_root = || -> u64 {
        let bytes = std::fs::read(state.join("root.json")).unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        v["signed"]["version"].as_u64().unwrap()
    };

    // A "new root" signed by a key root does not trust: the replica holding it refuses to
    // publish anything until it is fixed, and clients through either replica stay on 1.
    copy_root(&f, 0, 2, &root_version(&f, 2, &team));
    let refused = push_once(&f, &a, &b, &team, b"under a forged root");
    assert!(
        refused
            .as_ref()
            .is_err_and(|(_, m)| m.contains("root version 2")),
        "{refused:?}"
    );
    let version = b.role_version("team-0");
    our_client(&f, &b, &state, &[]);
    assert_eq!(trusted_root(), 1);
    assert_eq!(b.get("/metadata/2.root.json").0, 404);

    // The genuine one, signed by the root key: published at the next session, served by
    // both replicas, followed by our client and python-tuf's.
    let policy = Policy::load(&f.s.repo()).unwrap();
    let pass = FixedPassphrase(sealwright_crypto::Passphrase::new(PASSPHRASE.to_owned()));
    let root_key = Keyring::new(&f.s.repo(), &pass)
        .open(&policy, "root-key")
        .unwrap()
        .unwrap();
    copy_root(&f, 0, 2, &root_version(&f, 2, &root_key));
    assert_eq!(
        push_once(&f, &a, &b, &team, b"under root 2"),
        Ok(version + 1)
    );
    let got = our_client(
        &f,
        &b,
        &state,
        &[format!("team-0/v{}/app.bin", version + 1)],
    );
    assert_eq!(got, [b"under root 2".to_vec()]);
    assert_eq!(trusted_root(), 2);
    assert_eq!(
        a.get("/metadata/root.json").1,
        b.get("/metadata/2.root.json").1
    );
    python_tuf(&f, &a, &[format!("team-0/v{}/app.bin", version + 1)]);
}

/// Two data directories of one `server setup` (its agent, running, holds the log key) and a
/// fresh shared store for them.
struct LogReplicas {
    first: PathBuf,
    second: PathBuf,
    config: SharedConfig,
    _agent: Killed,
}

/// `server setup` in `s`, copied into a second replica directory; the push token too.
fn log_replicas(s: &Scratch) -> (LogReplicas, PathBuf) {
    let (dir, _, token) = common::init_and_set_up_server(s);
    let agent = common::start_setup_agent(&dir);
    let first = dir.join("server");
    let second = s.path().join("replica-b");
    assert!(Command::new("cp")
        .arg("-a")
        .arg(&first)
        .arg(&second)
        .status()
        .unwrap()
        .success());
    let config = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(testing::fresh())
        .unwrap();
    let replicas = LogReplicas {
        first,
        second,
        config,
        _agent: agent,
    };
    (replicas, token)
}

/// Replica A sequences a push's entries and is killed before integrating them; replica B
/// takes pushes meanwhile and gives the same log indices to its own entries. When A starts
/// again, its entries are logged after B's — not dropped, which would leave what A
/// published missing from the log.
#[test]
fn entries_a_killed_replica_sequenced_are_logged_after_what_others_logged_meanwhile() {
    use sealwright_tlog::entry::Entry;
    let s = Scratch::new();
    let repo = s.repo_arg();
    let (log, token) = log_replicas(&s);
    let (a, a_process) = start_replica_of(&log.first, &log.config);
    let (b, _b) = start_replica_of(&log.second, &log.config);
    let push = |r: &Replica, version: &str| {
        s.add_release(&repo, version.as_bytes(), "app", version);
        s.push_to(&r.url, &token, &r.ca);
    };
    push(&a, "1.0.0");
    drop(a_process);
    // What A's sequence holds when it is killed between sequencing and its checkpoint.
    let sequenced_by_a = Entry::Target {
        path: "app/2.0.0/app.bin".into(),
        length: 5,
        sha256: sha256_hex(b"2.0.0"),
        role: "targets".into(),
    };
    let policy = Policy::load(&log.first).unwrap();
    sealwright_server::translog::TransparencyLog::open(&log.first, &policy)
        .unwrap()
        .unwrap()
        .sequence(std::slice::from_ref(&sequenced_by_a))
        .unwrap();
    push(&b, "1.1.0");
    let vkey = std::fs::read_to_string(log.first.join("log.vkey")).unwrap();
    let key = sealwright_tlog::Verifier::from_vkey(vkey.trim()).unwrap();
    let reader = b.log_reader(&key);
    let size_before = reader.checkpoint().unwrap().1.size;

    // A catches its log up in the background once it serves.
    let (a, _a) = start_replica_of(&log.first, &log.config);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let checkpoint = loop {
        let (_, checkpoint) = reader.checkpoint().unwrap();
        if checkpoint.size > size_before || std::time::Instant::now() > deadline {
            break checkpoint;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let logged: Vec<Entry> = reader
        .entries(0, checkpoint.size)
        .unwrap()
        .iter()
        .map(|e| Entry::parse(e).unwrap())
        .collect();
    let count = |path: &str| {
        logged
            .iter()
            .filter(|e| matches!(e, Entry::Target { path: p, .. } if p.starts_with(path)))
            .count()
    };
    assert_eq!(count("app/2.0.0/"), 1, "A's entry: {logged:?}");
    assert_eq!(count("app/1.1.0/"), 1, "B's release: {logged:?}");
    let index = logged.iter().position(|e| *e == sequenced_by_a).unwrap();
    let b_index = logged
        .iter()
        .position(|e| matches!(e, Entry::Target { path, .. } if path.starts_with("app/1.1.0/")))
        .unwrap();
    assert!(index > b_index, "A's entry at {index}, B's at {b_index}");
    // Both replicas prove it.
    let leaf = sealwright_tlog::merkle::leaf_hash(&sequenced_by_a.to_bytes().unwrap());
    for r in [&a, &b] {
        let (status, proof) = r.get(&format!("/log/proof/{}", hex::encode(leaf)));
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&proof));
        sealwright_tlog::proof::TlogProof::parse(&proof)
            .unwrap()
            .verify(&leaf, &key, &[], 0)
            .unwrap();
    }
}

/// Two replicas of a `server setup` directory (its agent holds the log key) on one shared
/// store: pushes through either land in one transparency log that both serve, from whose
/// entries the signed tree rebuilds, whose proofs either replica answers, and that aics-tlog
/// finds consistent across the two.
#[test]
fn replicas_share_one_transparency_log() {
    use sealwright_tlog::entry::Entry;
    let s = Scratch::new();
    let repo = s.repo_arg();
    let (log, token) = log_replicas(&s);
    let (first, config) = (&log.first, &log.config);
    let (a, _a) = start_replica_of(first, config);
    let (b, _b) = start_replica_of(&log.second, config);
    let vkey = std::fs::read_to_string(first.join("log.vkey")).unwrap();
    let key = sealwright_tlog::Verifier::from_vkey(vkey.trim()).unwrap();
    let push = |r: &Replica, version: &str| {
        s.add_release(&repo, version.as_bytes(), "app", version);
        s.push_to(&r.url, &token, &r.ca);
    };
    push(&a, "1.0.0");
    let (status, early) = a.get("/log/checkpoint");
    assert_eq!(status, 200);
    let early_checkpoint = s.path().join("early.checkpoint");
    std::fs::write(&early_checkpoint, &early).unwrap();
    push(&b, "1.1.0");

    // One log: both serve the same checkpoint; read through the other replica, its entries
    // make the signed tree and hold both releases.
    assert_eq!(a.get("/log/checkpoint"), b.get("/log/checkpoint"));
    let reader = a.log_reader(&key);
    let (_, checkpoint) = reader.checkpoint().unwrap();
    let entries = reader.entries(0, checkpoint.size).unwrap();
    let mut tree = sealwright_tlog::merkle::Frontier::new();
    entries
        .iter()
        .for_each(|e| tree.push(sealwright_tlog::merkle::leaf_hash(e)));
    assert_eq!(tree.root(), checkpoint.root);
    let logged: Vec<Entry> = entries.iter().map(|e| Entry::parse(e).unwrap()).collect();
    for version in ["1.0.0", "1.1.0"] {
        assert!(
            logged.iter().any(|e| matches!(e, Entry::Target { path, .. } if path == &format!("app/{version}/app.bin"))),
            "{version} is not logged: {logged:?}"
        );
    }
    // The entry of the release pushed through B is proven by A.
    let pushed_through_b = logged
        .iter()
        .find(|e| matches!(e, Entry::Target { path, .. } if path == "app/1.1.0/app.bin"))
        .unwrap();
    let leaf = sealwright_tlog::merkle::leaf_hash(&pushed_through_b.to_bytes().unwrap());
    let (status, proof) = a.get(&format!("/log/proof/{}", hex::encode(leaf)));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&proof));
    let proven = sealwright_tlog::proof::TlogProof::parse(&proof)
        .unwrap()
        .verify(&leaf, &key, &[], 0)
        .unwrap();
    assert_eq!(proven.size, checkpoint.size);
    // And a third-party verifier agrees the log B serves extends what A served earlier.
    let out = Command::new(common::aics("aics-tlog"))
        .args([
            "verify-consistency",
            "--old-checkpoint",
            early_checkpoint.to_str().unwrap(),
            "--tiles",
            &format!("{}/log/", b.url),
            "--log-key",
            vkey.trim(),
            "--origin",
            key.name(),
        ])
        .env("SSL_CERT_FILE", &b.ca)
        .output()
        .unwrap();
    let verdict: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(verdict["ok"], true, "{verdict}");
}
