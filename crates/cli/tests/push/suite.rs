// Included by push.rs and push_shared.rs (which declare `mod common` and `SHARED`).


use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{
    audit_records, python, sealwright, start_agent, tree_fingerprint, Killed, Scratch, PASSPHRASE,
};
use sealwright_crypto::digest::sha256_hex;
use sealwright_repo::{FixedPassphrase, Keyring, Policy};
use sealwright_tuf::metadata::{Metadata, TargetFile, Targets};
use sealwright_store::SharedConfig;
use serde_json::{json, Value};

/// A publisher repository (all keys but the online ones, which the agent holds) with app
/// 1.0.0 published, a server data directory holding a copy of the policy and the published
/// tree and no key at all, the agent, and `sealwright serve --push` on it.
struct World {
    s: Scratch,
    server_dir: PathBuf,
    ca: PathBuf,
    url: String,
    _agent: Killed,
    server: Option<Killed>,
    /// The shared store the server runs on (the suite's shared run, push_shared.rs).
    store: Option<SharedConfig>,
}

impl World {
    fn publisher(&self) -> String {
        self.s.repo_arg()
    }

    fn server(&self) -> String {
        self.server_dir.display().to_string()
    }

    /// Everything stored: what devices see ([`World::published`]) and the uploaded blobs.
    fn published_state(&self) -> Vec<(String, Vec<u8>)> {
        let mut t = self.published();
        let blobs = self.server_dir.join("staged/blobs");
        if blobs.exists() {
            t.extend(tree_fingerprint(&blobs));
        }
        t
    }

    /// What devices see: the published tree (and on a shared store, its published files).
    /// Dot-named temporary files of an atomic write in progress (a replica refreshing its
    /// copy of the store) are never served, and left out.
    fn published(&self) -> Vec<(String, Vec<u8>)> {
        let mut t = tree_fingerprint(&self.server_dir.join("published"));
        t.retain(|(path, _)| !path.rsplit('/').next().unwrap_or(path).starts_with('.'));
        if let Some(config) = &self.store {
            // What replicas serve: every published path and its bytes, from the database.
            let handle = sealwright_server::storage::SharedHandle::open(config).unwrap();
            for f in handle.store().published_files().unwrap() {
                t.push((f.path, f.sha256.into_bytes()));
            }
        }
        t
    }

    /// `sealwright --repo SERVER ARGS` (with the shared store's settings when the server
    /// runs on one), which must succeed; its stdout.
    fn server_ok(&self, args: &[&str]) -> String {
        let mut all = vec!["--repo", self.server_dir.to_str().unwrap()];
        all.extend_from_slice(args);
        let out = self.run_on_server(&all);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `sealwright ARGS`, with the shared store's settings when the server runs on one.
    fn run_on_server(&self, args: &[&str]) -> std::process::Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sealwright"));
        command.args(args).env_remove("SEALWRIGHT_REPO");
        if let Some(config) = &self.store {
            command.args(["--store", &config.database, "--objects", &config.objects]);
            command.envs(config.object_options.iter().map(|(k, v)| (k, v)));
        }
        command.output().unwrap()
    }

    fn token(&self, name: &str, extra: &[&str]) -> PathBuf {
        let mut args = vec![
            "--repo",
            self.server_dir.to_str().unwrap(),
            "--json",
            "token",
            "add",
            name,
        ];
        args.extend_from_slice(extra);
        let out = self.run_on_server(&args);
        assert!(
            out.status.success(),
            "token add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out: Value = serde_json::from_slice(&out.stdout).unwrap();
        let token = out["token"].as_str().unwrap();
        assert!(
            token.starts_with("swp_") && token.len() == 4 + 64,
            "{token}"
        );
        let file = self.s.path().join(format!("{name}.token"));
        std::fs::write(&file, token).unwrap();
        // Only the hash is kept on the server.
        let stored = match &self.store {
            Some(config) => {
                let handle = sealwright_server::storage::SharedHandle::open(config).unwrap();
                let (bytes, _) = handle.store().document("push-tokens.toml").unwrap().unwrap();
                String::from_utf8(bytes).unwrap()
            }
            None => std::fs::read_to_string(self.server_dir.join("push-tokens.toml")).unwrap(),
        };
        assert!(!stored.contains(token));
        assert!(stored.contains(&sha256_hex(token.as_bytes())));
        file
    }

    fn push(&self, token_file: &Path) -> std::process::Output {
        self.s.run(&[
            "--repo",
            &self.publisher(),
            "push",
            "--server",
            &self.url,
            "--token-file",
            token_file.to_str().unwrap(),
            "--ca",
            self.ca.to_str().unwrap(),
        ])
    }

    fn http(&self) -> ureq::Agent {
        common::https_agent(&self.ca)
    }

    /// Sends a raw request to the API; returns status and JSON body.
    fn api(&self, method: &str, path: &str, token: Option<&str>, body: &[u8]) -> (u16, Value) {
        let agent = self.http();
        let url = format!("{}{path}", self.url);
        let req = match method {
            "PUT" => agent.put(&url),
            _ => agent.post(&url),
        };
        let req = match token {
            Some(t) => req.header("Authorization", format!("Bearer {t}")),
            None => req,
        };
        let resp = req.send(body).unwrap();
        let status = resp.status().as_u16();
        let text = resp.into_body().read_to_string().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Stops the server and starts it again on the same data directory (and CA path).
    fn restart_server(&mut self) {
        self.server = None;
        let (server, url) = serve(&self.server_dir, &self.ca, &[], None, self.store.as_ref())
            .unwrap_or_else(|e| panic!("{e}"));
        self.server = Some(server);
        self.url = url;
    }

    /// GETs from the API with `token`; returns status and JSON body.
    fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let req = self.http().get(format!("{}{path}", self.url));
        let req = match token {
            Some(t) => req.header("Authorization", format!("Bearer {t}")),
            None => req,
        };
        let resp = req.call().unwrap();
        let status = resp.status().as_u16();
        let text = resp.into_body().read_to_string().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// POSTs a push of one signed role with `token`.
    fn push_role(&self, token: &str, role: &str, signed: &impl serde::Serialize) -> (u16, Value) {
        let body = serde_json::to_vec(&json!({ "roles": { role: signed } })).unwrap();
        self.api("POST", "/api/v1/push", Some(token), &body)
    }

    /// Signatures for `role` in the agent's audit log (its hash chain checked first).
    fn agent_signatures(&self, role: &str) -> usize {
        audit_records(&self.s.path().join("agent/run"))
            .iter()
            .filter(|r| r["action"] == "sign" && r["subject"] == role)
            .count()
    }

    /// The server's audit records (its hash chain checked first).
    fn audit(&self) -> Vec<Value> {
        if self.store.is_none() {
            return audit_records(&self.server_dir);
        }
        let dir = self.server_dir.to_str().unwrap();
        let verified = self.run_on_server(&["--repo", dir, "--json", "audit", "verify"]);
        assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));
        let listed =
            self.run_on_server(&["--repo", dir, "--json", "audit", "list", "--limit", "100000"]);
        assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
        serde_json::from_slice(&listed.stdout).unwrap()
    }
}

fn serve(
    data: &Path,
    ca: &Path,
    extra: &[&str],
    faketime: Option<&str>,
    store: Option<&SharedConfig>,
) -> Result<(Killed, String), String> {
    let mut command = sealwright(faketime);
    let mut child = command
        .args([
            "--repo",
            data.to_str().unwrap(),
            "--json",
            "serve",
            "--push",
        ])
        .args(["--listen", "127.0.0.1:0", "--dev-cert-out"])
        .arg(ca)
        .args(extra)
        .args(store.map_or_else(Vec::new, |c| {
            vec!["--store", c.database.as_str(), "--objects", c.objects.as_str()]
        }))
        .envs(store.map_or(&[][..], |c| &c.object_options[..]).iter().map(|(k, v)| (k, v)))
        .env_remove("SEALWRIGHT_REPO")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
    if line.trim().is_empty() {
        let out = child.wait_with_output().unwrap();
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let v: Value = serde_json::from_str(&line).unwrap();
    assert!(v["push_url"].as_str().unwrap().ends_with("/api/v1/"), "{v}");
    Ok((Killed(child), v["url"].as_str().unwrap().to_owned()))
}

fn world(extra_serve: &[&str]) -> World {
    world_at(extra_serve, None)
}

/// [`world`] with the agent and the server running `faketime` off the real clock.
fn world_at(extra_serve: &[&str], faketime: Option<&str>) -> World {
    let s = Scratch::new();
    let repo = s.repo_arg();
    s.ok(&["init", &repo]);
    s.add_release(&repo, b"app one", "app", "1.0.0");
    s.ok(&["--repo", &repo, "publish"]);
    let (agent, socket) = start_agent(&s, faketime);
    common::online_keys_in_agent(&s.repo(), &socket);

    let server_dir = s.path().join("server");
    s.ok(&["--repo", &repo, "server-init", server_dir.to_str().unwrap()]);
    let server_policy = std::fs::read_to_string(server_dir.join("sealwright.toml")).unwrap();
    assert!(!server_policy.contains("file:"), "{server_policy}");
    let ca = s.path().join("ca.pem");
    let store = SHARED.then(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(sealwright_store::shared::testing::fresh())
            .unwrap()
    });
    let (server, url) = serve(&server_dir, &ca, extra_serve, faketime, store.as_ref())
        .unwrap_or_else(|e| panic!("{e}"));
    World {
        s,
        server_dir,
        ca,
        url,
        _agent: agent,
        server: Some(server),
        store,
    }
}

/// Lists `artifact` in `md` at `path` (length and SHA-256).
fn list_target(md: &mut Metadata<Targets>, path: &str, artifact: &[u8]) {
    md.signed.targets.insert(
        path.into(),
        TargetFile::new(
            artifact.len() as u64,
            [("sha256".to_owned(), sha256_hex(artifact))].into(),
        ),
    );
}

/// Signs `md` with the publisher's targets key (a valid signature by the right key).
fn sign_as(w: &World, key: &str, md: &mut Metadata<Targets>) -> String {
    let policy = Policy::load(&w.s.repo()).unwrap();
    let pass = FixedPassphrase(sealwright_crypto::Passphrase::new(PASSPHRASE.to_owned()));
    let keyring = Keyring::new(&w.s.repo(), &pass);
    let k = keyring.open(&policy, key).unwrap().unwrap();
    md.signatures.clear();
    md.sign(&k).unwrap();
    String::from_utf8(md.to_bytes().unwrap()).unwrap()
}

fn server_targets(w: &World) -> Metadata<Targets> {
    let snap: Value = serde_json::from_slice(
        &std::fs::read(w.server_dir.join("published/metadata/timestamp.json")).unwrap(),
    )
    .unwrap();
    let sv = snap["signed"]["meta"]["snapshot.json"]["version"]
        .as_u64()
        .unwrap();
    let snapshot: Value = serde_json::from_slice(
        &std::fs::read(
            w.server_dir
                .join(format!("published/metadata/{sv}.snapshot.json")),
        )
        .unwrap(),
    )
    .unwrap();
    let tv = snapshot["signed"]["meta"]["targets.json"]["version"]
        .as_u64()
        .unwrap();
    let bytes = std::fs::read(
        w.server_dir
            .join(format!("published/metadata/{tv}.targets.json")),
    )
    .unwrap();
    Metadata::from_bytes(&bytes, 1 << 26).unwrap()
}

#[test]
fn a_push_is_verified_published_and_readable_by_python_tuf() {
    let mut w = world(&[]);
    let token = w.token(
        "release-bot",
        &[
            "--role",
            "targets",
            "--path",
            "app/*/*",
            "--path",
            "app/channels/*",
        ],
    );
    w.s.add_release(&w.publisher(), b"app two", "app", "1.1.0");
    let out = w.push(&token);
    assert!(
        out.status.success(),
        "push failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The server published it: the new targets version lists the artifact, which is stored
    // content-addressed, and snapshot and timestamp were signed by the agent.
    let targets = server_targets(&w);
    let entry = &targets.signed.targets["app/1.1.0/app.bin"];
    let sha = &entry.hashes["sha256"];
    assert_eq!(sha, &sha256_hex(b"app two"));
    let stored = w
        .server_dir
        .join(format!("published/targets/app/1.1.0/{sha}.app.bin"));
    assert_eq!(std::fs::read(stored).unwrap(), b"app two");
    assert!(w.agent_signatures("snapshot") >= 1 && w.agent_signatures("timestamp") >= 1);
    // The whole server tree verifies from root, and the publisher mirrors the server.
    w.s.ok(&["--repo", &w.server(), "verify"]);
    w.s.ok(&["--repo", &w.publisher(), "verify"]);
    assert_eq!(
        std::fs::read(w.server_dir.join("published/metadata/timestamp.json")).unwrap(),
        std::fs::read(w.s.repo().join("published/metadata/timestamp.json")).unwrap(),
    );

    // python-tuf's ngclient, over HTTPS from the same server, gets the pushed release.
    let (py, _) = python();
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../server/tests/ngclient_https.py");
    let out = Command::new(py)
        .arg(script)
        .args(["--base-url", &w.url])
        .arg("--ca")
        .arg(&w.ca)
        .arg("--root")
        .arg(w.server_dir.join("published/metadata/1.root.json"))
        .arg("--out-dir")
        .arg(w.s.path().join("downloads"))
        .args(["--target", "app/1.1.0/app.bin"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ngclient failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(
        report["targets"]["app/1.1.0/app.bin"],
        sha256_hex(b"app two")
    );

    // A second push builds on the first.
    w.s.add_release(&w.publisher(), b"app three", "app", "1.2.0");
    let out = w.push(&token);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(server_targets(&w)
        .signed
        .targets
        .contains_key("app/1.2.0/app.bin"));

    let records = w.audit();
    let pushes = records.iter().filter(|r| r["action"] == "push").count();
    let uploads = records
        .iter()
        .filter(|r| r["action"] == "blob-upload")
        .count();
    assert_eq!(pushes, 2, "{records:?}");
    assert!(uploads >= 2, "{records:?}");
    assert!(records
        .iter()
        .any(|r| r["action"] == "push" && r["actor"] == "token:release-bot"));
    w.s.ok(&["--repo", &w.server(), "audit", "verify"]);

    // The index answers what is stored and what is published.
    let secret = std::fs::read_to_string(&token).unwrap();
    let three = sha256_hex(b"app three");
    let (status, blob) = w.get(&format!("/api/v1/blobs/{three}"), Some(&secret));
    assert_eq!(status, 200, "{blob}");
    assert_eq!(blob["length"], 9);
    assert_eq!(blob["stored_by"], "token:release-bot");
    let absent = sha256_hex(b"never uploaded");
    assert_eq!(
        w.get(&format!("/api/v1/blobs/{absent}"), Some(&secret)).0,
        404
    );
    assert_eq!(w.get(&format!("/api/v1/blobs/{three}"), None).0, 401);
    let listing = |w: &World| -> Vec<(String, String)> {
        let (status, v) = w.get("/api/v1/targets?prefix=app/1.", Some(&secret));
        assert_eq!(status, 200, "{v}");
        v["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["path"].as_str().unwrap().to_owned(),
                    t["sha256"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let listed = listing(&w);
    assert_eq!(
        listed,
        [
            ("app/1.0.0/app.bin".to_owned(), sha256_hex(b"app one")),
            ("app/1.1.0/app.bin".to_owned(), sha256_hex(b"app two")),
            ("app/1.2.0/app.bin".to_owned(), three.clone()),
        ]
    );
    let (_, page) = w.get("/api/v1/targets?prefix=app/1.&limit=2", Some(&secret));
    assert_eq!(page["targets"].as_array().unwrap().len(), 2);
    assert_eq!(page["next"], "app/1.1.0/app.bin");

    // A release whose file the server already holds: the push uploads nothing for it.
    w.s.add_release(&w.publisher(), b"app three", "app", "1.3.0");
    let out = w.push(&token);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let uploads_of_three = w
        .audit()
        .iter()
        .filter(|r| r["action"] == "blob-upload" && r["subject"] == format!("blob {three}"))
        .count();
    assert_eq!(uploads_of_three, 1);

    let before = listing(&w);
    assert_eq!(before.len(), 4);
    if SHARED {
        // The index lives in the shared database: a restarted replica lists the same.
        w.restart_server();
        assert_eq!(listing(&w), before);
        return;
    }
    // The index is derived data: deleted, it is rebuilt from the data directory at start.
    w.restart_server();
    std::fs::remove_file(w.server_dir.join("index.sqlite3")).unwrap();
    w.restart_server();
    assert_eq!(listing(&w), before);
    let (status, blob) = w.get(&format!("/api/v1/blobs/{three}"), Some(&secret));
    assert_eq!(
        (status, &blob["stored_by"]),
        (200, &json!("rebuild")),
        "{blob}"
    );
}

#[test]
fn bad_pushes_are_refused_audited_and_store_nothing() {
    let w = world(&["--max-blob", "4096"]);
    let good = w.token("ci", &["--role", "targets"]);
    let good_token = std::fs::read_to_string(&good).unwrap();
    let other = w.token("docs", &["--role", "docs"]);
    let before = w.published_state();
    let refusals_before = w
        .audit()
        .iter()
        .filter(|r| r["action"].as_str().unwrap_or("").ends_with("-refused"))
        .count();

    // A new targets version, correctly signed, listing a new artifact.
    let artifact = b"new artifact".to_vec();
    let sha = sha256_hex(&artifact);
    let mut md = server_targets(&w);
    md.signed.version += 1;
    list_target(&mut md, "app/2.0.0/app.bin", &artifact);
    let signed = sign_as(&w, "targets-key", &mut md);
    let body = |text: &str| serde_json::to_vec(&json!({"roles": {"targets": text}})).unwrap();

    let expect = |what: &str, got: (u16, Value), status: u16, needle: &str| {
        assert_eq!(got.0, status, "{what}: {}", got.1);
        let msg = got.1["message"].as_str().unwrap_or_default().to_owned();
        assert!(msg.contains(needle), "{what}: {msg}");
        assert_eq!(
            w.published_state(),
            before,
            "{what} changed the stored state"
        );
    };

    // No token, an unknown token.
    expect(
        "no token",
        w.api("POST", "/api/v1/push", None, &body(&signed)),
        401,
        "Bearer",
    );
    expect(
        "unknown token",
        w.api(
            "PUT",
            &format!("/api/v1/blobs/{sha}"),
            Some("swp_0000"),
            &artifact,
        ),
        401,
        "unknown token",
    );
    // A token for another role.
    let other_token = std::fs::read_to_string(&other).unwrap();
    expect(
        "token for another role",
        w.api("POST", "/api/v1/push", Some(&other_token), &body(&signed)),
        403,
        "may push docs, not targets",
    );
    // The artifact was never uploaded.
    expect(
        "missing artifact",
        w.api("POST", "/api/v1/push", Some(&good_token), &body(&signed)),
        422,
        "no uploaded artifact",
    );
    // Blob uploads: a wrong name, bytes that do not hash to the name, a traversal name, too big.
    expect(
        "bytes not matching the name",
        w.api(
            "PUT",
            &format!("/api/v1/blobs/{}", sha256_hex(b"other")),
            Some(&good_token),
            &artifact,
        ),
        422,
        "hash to",
    );
    let traversal = w.api(
        "PUT",
        "/api/v1/blobs/..%2F..%2Fsealwright.toml",
        Some(&good_token),
        b"x",
    );
    expect("traversal blob name", traversal, 400, "SHA-256");
    let big = vec![7u8; 5000];
    expect(
        "oversized blob",
        w.api(
            "PUT",
            &format!("/api/v1/blobs/{}", sha256_hex(&big)),
            Some(&good_token),
            &big,
        ),
        413,
        "limited to 4096",
    );

    // Now upload the artifact for real (this changes the blob keyring, deliberately).
    let (status, _) = w.api(
        "PUT",
        &format!("/api/v1/blobs/{sha}"),
        Some(&good_token),
        &artifact,
    );
    assert_eq!(status, 201);
    let before = w.published_state();
    let expect = |what: &str, got: (u16, Value), status: u16, needle: &str| {
        assert_eq!(got.0, status, "{what}: {}", got.1);
        let msg = got.1["message"].as_str().unwrap_or_default().to_owned();
        assert!(msg.contains(needle), "{what}: {msg}");
        assert_eq!(
            w.published_state(),
            before,
            "{what} changed the stored state"
        );
    };

    // Tampered after signing: the length no longer matches what was signed.
    let mut tampered: Value = serde_json::from_str(&signed).unwrap();
    tampered["signed"]["targets"]["app/2.0.0/app.bin"]["length"] = json!(13);
    expect(
        "tampered metadata",
        w.api(
            "POST",
            "/api/v1/push",
            Some(&good_token),
            &body(&tampered.to_string()),
        ),
        422,
        "valid signature",
    );
    // Signed by a key root does not name for targets.
    let mut wrong = md.clone();
    let wrong_signed = sign_as(&w, "root-key", &mut wrong);
    expect(
        "wrong key",
        w.api(
            "POST",
            "/api/v1/push",
            Some(&good_token),
            &body(&wrong_signed),
        ),
        422,
        "0 valid signature",
    );
    // A path-traversal target path, validly signed.
    let mut evil = md.clone();
    let entry = evil.signed.targets.remove("app/2.0.0/app.bin").unwrap();
    evil.signed
        .targets
        .insert("../../etc/app.bin".into(), entry);
    let evil_signed = sign_as(&w, "targets-key", &mut evil);
    expect(
        "traversal target path",
        w.api(
            "POST",
            "/api/v1/push",
            Some(&good_token),
            &body(&evil_signed),
        ),
        400,
        "..",
    );
    // Root, snapshot and timestamp are never pushed.
    let ts =
        std::fs::read_to_string(w.server_dir.join("published/metadata/timestamp.json")).unwrap();
    expect(
        "pushing timestamp",
        w.push_role(&good_token, "timestamp", &ts),
        403,
        "never pushed",
    );
    // Garbage.
    expect(
        "not JSON",
        w.api("POST", "/api/v1/push", Some(&good_token), b"{"),
        400,
        "not a push request",
    );

    // The good one is accepted...
    let (status, accepted) = w.api("POST", "/api/v1/push", Some(&good_token), &body(&signed));
    assert_eq!(status, 200, "{accepted}");
    assert_eq!(accepted["roles"]["targets"], md.signed.version);
    // ...and replaying it (or any older version) afterwards is refused.
    let after = w.published_state();
    let replay = w.api("POST", "/api/v1/push", Some(&good_token), &body(&signed));
    assert_eq!(replay.0, 409, "{}", replay.1);
    assert!(replay.1["message"]
        .as_str()
        .unwrap()
        .contains("not above the published version"));
    assert_eq!(w.published_state(), after);

    // Every refusal is in the audit log, with its reason, and the chain verifies.
    let records = w.audit();
    let refusals: Vec<&Value> = records
        .iter()
        .filter(|r| r["action"].as_str().unwrap_or("").ends_with("-refused"))
        .collect();
    // The two without valid credentials are summarised later, not recorded one by one.
    assert_eq!(refusals.len() - refusals_before, 11, "{refusals:#?}");
    assert!(refusals.iter().any(|r| r["details"]["error"]
        .as_str()
        .unwrap_or("")
        .contains("valid signature")));
    w.s.ok(&["--repo", &w.server(), "audit", "verify"]);
}

#[test]
fn delegated_roles_are_pushed_only_inside_their_delegation() {
    let w = world(&[]);
    let publisher = w.publisher();
    // The owner delegates app/* to `ci` and pushes the new targets with the delegation.
    w.s.ok(&[
        "--repo",
        &publisher,
        "delegate",
        "ci",
        "--paths",
        "app/*/*,app/channels/*",
    ]);
    let owner = w.token("owner", &["--role", "targets", "--role", "ci"]);
    w.s.add_release(&publisher, b"delegated", "app", "1.1.0");
    let out = w.push(&owner);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ci_version = {
        let snap_v = server_targets(&w); // targets now delegates to ci
        assert!(snap_v.signed.delegations.is_some());
        let dir = w.server_dir.join("published/metadata");
        let mut best = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let n = e.unwrap().file_name().into_string().unwrap();
            if let Some(v) = n.strip_suffix(".ci.json") {
                best = best.max(v.parse::<u64>().unwrap());
            }
        }
        best
    };
    assert!(ci_version >= 1, "ci was not pushed");

    // `ci` signs a version listing a path outside app/: refused, nothing stored.
    let ci_token = std::fs::read_to_string(w.token("ci-bot", &["--role", "ci"])).unwrap();
    let ci_bytes = std::fs::read(
        w.server_dir
            .join(format!("published/metadata/{ci_version}.ci.json")),
    )
    .unwrap();
    let mut md: Metadata<Targets> = Metadata::from_bytes(&ci_bytes, 1 << 26).unwrap();
    md.signed.version += 1;
    let artifact = b"outside".to_vec();
    let sha = sha256_hex(&artifact);
    list_target(&mut md, "docs/readme.txt", &artifact);
    let signed = sign_as(&w, "ci-key", &mut md);
    let (status, _) = w.api(
        "PUT",
        &format!("/api/v1/blobs/{sha}"),
        Some(&ci_token),
        &artifact,
    );
    assert!(status == 201 || status == 200);
    let before = w.published_state();
    let (status, v) = w.push_role(&ci_token, "ci", &signed);
    assert_eq!(status, 422, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("does not grant"),
        "{v}"
    );
    assert_eq!(w.published_state(), before);
    // A token limited to app/beta/* may not push app/1.3.0/... even inside ci's delegation.
    let narrow =
        std::fs::read_to_string(w.token("beta-bot", &["--role", "ci", "--path", "app/beta/*"]))
            .unwrap();
    md.signed.targets.remove("docs/readme.txt");
    list_target(&mut md, "app/1.3.0/app.bin", &artifact);
    let signed = sign_as(&w, "ci-key", &mut md);
    let (status, v) = w.push_role(&narrow, "ci", &signed);
    assert_eq!(status, 403, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("may push paths app/beta/*"),
        "{v}"
    );
    // The ci-bot token may.
    let (status, v) = w.push_role(&ci_token, "ci", &signed);
    assert_eq!(status, 200, "{v}");
    w.s.ok(&["--repo", &w.server(), "verify"]);
}

#[test]
fn the_server_refuses_to_take_pushes_with_a_private_key_or_an_online_key_file() {
    let w = world(&[]);
    // A copy of any private key anywhere in the data directory: refused at startup.
    let key = w.s.repo().join("keys/targets-key.pem");
    let data = w.s.path().join("server2");
    w.s.ok(&[
        "--repo",
        &w.publisher(),
        "server-init",
        data.to_str().unwrap(),
    ]);
    std::fs::create_dir_all(data.join("backup")).unwrap();
    std::fs::copy(&key, data.join("backup/old.pem")).unwrap();
    let ca = w.s.path().join("ca2.pem");
    let err = serve(&data, &ca, &[], None, None).err().expect("must not start");
    assert!(err.contains("private key"), "{err}");
    // Without the key, but with the timestamp key as a file rather than in the agent.
    std::fs::remove_file(data.join("backup/old.pem")).unwrap();
    let text = std::fs::read_to_string(data.join("sealwright.toml")).unwrap();
    let socket = w.s.path().join("agent/run/agent.sock");
    std::fs::write(
        data.join("sealwright.toml"),
        text.replace(
            &format!("private = \"agent:{}\"", socket.display()),
            "private = \"file:/elsewhere/timestamp.pem\"",
        ),
    )
    .unwrap();
    let err = serve(&data, &ca, &[], None, None).err().expect("must not start");
    assert!(err.contains("agent"), "{err}");
}

#[test]
fn the_server_renews_the_timestamp_through_the_agent_before_it_expires() {
    // Twenty hours on, the one-day timestamp has less than a quarter of its life left; the
    // server's first renewal check runs as it starts.
    let w = world_at(&[], Some("+20h"));
    let path = w.server_dir.join("published/metadata/timestamp.json");
    let version = |bytes: &[u8]| -> (u64, String) {
        let v: Value = serde_json::from_slice(bytes).unwrap();
        (
            v["signed"]["version"].as_u64().unwrap(),
            v["signed"]["expires"].as_str().unwrap().to_owned(),
        )
    };
    let (old_version, old_expiry) =
        version(&std::fs::read(w.s.repo().join("published/metadata/timestamp.json")).unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    let (new_version, new_expiry) = loop {
        let now = version(&std::fs::read(&path).unwrap());
        if now.0 > old_version {
            break now;
        }
        assert!(Instant::now() < deadline, "timestamp.json was not renewed");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(new_version, old_version + 1);
    assert!(new_expiry > old_expiry, "{new_expiry} vs {old_expiry}");
    // Same snapshot, valid signatures: the tree still verifies (on the real clock).
    w.s.ok(&["--repo", &w.server(), "verify"]);
    assert!(w.audit().iter().any(|r| r["action"] == "online-renew"));
    assert!(w.agent_signatures("timestamp") >= 1);
}

/// `openssl` with `args`, in `dir`; panics with its output on failure.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is required (scripts/test installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A P-256 CA `NAME-ca.pem` / `NAME-ca.key` in `dir`.
fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}-ca.key"),
            "-out",
            &format!("{name}-ca.pem"),
            "-subj",
            &format!("/CN={name} publishers CA"),
            "-days",
            "2",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ],
    );
}

/// A client certificate `WHO.pem` / `WHO.key` issued by the CA `CA-ca.pem`.
fn make_client_cert(dir: &Path, ca: &str, who: &str) {
    std::fs::write(
        dir.join("client.ext"),
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{who}.key"),
            "-out",
            &format!("{who}.csr"),
            "-subj",
            &format!("/CN={who}"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{who}.csr"),
            "-CA",
            &format!("{ca}-ca.pem"),
            "-CAkey",
            &format!("{ca}-ca.key"),
            "-CAcreateserial",
            "-days",
            "1",
            "-out",
            &format!("{who}.pem"),
            "-extfile",
            "client.ext",
        ],
    );
}

#[test]
fn publishers_authenticate_with_registered_client_certificates() {
    let pki = tempfile::tempdir().unwrap();
    let dir = pki.path();
    make_ca(dir, "good");
    make_ca(dir, "rogue");
    make_client_cert(dir, "good", "bot");
    make_client_cert(dir, "good", "eve");
    make_client_cert(dir, "rogue", "mallory");
    let client_ca = dir.join("good-ca.pem");
    let w = world(&["--client-ca", client_ca.to_str().unwrap()]);

    let bot = dir.join("bot.pem");
    let out: Value = serde_json::from_str(&w.server_ok(&[
        "--json",
        "token",
        "add",
        "bot",
        "--role",
        "targets",
        "--client-cert",
        bot.to_str().unwrap(),
    ]))
    .unwrap();
    let fingerprint = out["client_cert_sha256"].as_str().unwrap().to_owned();
    assert_eq!(fingerprint.len(), 64, "{out}");
    assert!(
        out.get("token").is_none(),
        "nothing secret for a certificate: {out}"
    );

    let push_as = |who: &str| {
        w.s.run(&[
            "--repo",
            &w.publisher(),
            "push",
            "--server",
            &w.url,
            "--client-cert",
            dir.join(format!("{who}.pem")).to_str().unwrap(),
            "--client-key",
            dir.join(format!("{who}.key")).to_str().unwrap(),
            "--ca",
            w.ca.to_str().unwrap(),
        ])
    };
    w.s.add_release(&w.publisher(), b"app by certificate", "app", "1.1.0");
    let before = w.published_state();

    // A certificate from the trusted CA that nobody registered: refused, nothing stored.
    let out = push_as("eve");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not registered") && err.contains("client certificate sha256:"),
        "{err}"
    );
    assert_eq!(w.published_state(), before);
    // A certificate from another CA: the handshake itself fails.
    let out = push_as("mallory");
    assert!(!out.status.success());
    assert_eq!(w.published_state(), before);
    // Without either: refused.
    assert_eq!(w.get("/api/v1/targets", None).0, 401);
    // Readers need no certificate.
    assert_eq!(w.get("/metadata/timestamp.json", None).0, 200);

    // The registered certificate pushes, and the audit log names its holder.
    let out = push_as("bot");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(server_targets(&w)
        .signed
        .targets
        .contains_key("app/1.1.0/app.bin"));
    let records = w.audit();
    assert!(
        records
            .iter()
            .any(|r| r["action"] == "push" && r["actor"] == "token:bot"),
        "{records:?}"
    );
}

/// The next version of `role` on the server (published snapshot's, plus one).
fn next_role_version(w: &World, role: &str) -> u64 {
    let snap = published_snapshot(w);
    snap["signed"]["meta"][format!("{role}.json")]["version"]
        .as_u64()
        .unwrap()
        + 1
}

fn published_snapshot(w: &World) -> Value {
    let md = w.server_dir.join("published/metadata");
    let ts: Value =
        serde_json::from_slice(&std::fs::read(md.join("timestamp.json")).unwrap()).unwrap();
    let sv = ts["signed"]["meta"]["snapshot.json"]["version"]
        .as_u64()
        .unwrap();
    serde_json::from_slice(&std::fs::read(md.join(format!("{sv}.snapshot.json"))).unwrap()).unwrap()
}

#[test]
fn a_push_that_cannot_be_written_is_refused_before_anything_is_signed() {
    let w = world(&[]);
    let token = std::fs::read_to_string(w.token("owner", &["--role", "targets"])).unwrap();
    let mut md = server_targets(&w);
    md.signed.version += 1;
    let artifact = b"long name".to_vec();
    let sha = sha256_hex(&artifact);
    let (status, _) = w.api(
        "PUT",
        &format!("/api/v1/blobs/{sha}"),
        Some(&token),
        &artifact,
    );
    assert!(status == 201 || status == 200);
    let signatures = w.agent_signatures("snapshot");
    let before = w.published_state();
    // A 200-byte file name: stored as <sha256>.<name>, 265 bytes, over NAME_MAX.
    list_target(
        &mut md,
        &format!("app/1.0.1/{}", "n".repeat(200)),
        &artifact,
    );
    let signed = sign_as(&w, "targets-key", &mut md);
    let (status, v) = w.push_role(&token, "targets", &signed);
    assert_eq!(status, 400, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("file name longer than"),
        "{v}"
    );
    // A file where a published directory is: app/1.0.0 is a directory of the published tree.
    md.signed
        .targets
        .retain(|p, _| !p.starts_with("app/1.0.1/"));
    let clash = format!("app/{sha}.x");
    std::fs::create_dir_all(w.server_dir.join(format!("published/targets/app/{sha}.x"))).unwrap();
    list_target(&mut md, "app/x", &artifact);
    let signed = sign_as(&w, "targets-key", &mut md);
    let (status, v) = w.push_role(&token, "targets", &signed);
    assert_eq!(status, 400, "{v} ({clash})");
    std::fs::remove_dir(w.server_dir.join(format!("published/targets/app/{sha}.x"))).unwrap();
    assert_eq!(
        w.agent_signatures("snapshot"),
        signatures,
        "nothing may be signed"
    );
    assert_eq!(w.published_state(), before);
    // And publishing goes on.
    md.signed.targets.remove("app/x");
    list_target(&mut md, "app/1.0.1/app.bin", &artifact);
    let signed = sign_as(&w, "targets-key", &mut md);
    let (status, v) = w.push_role(&token, "targets", &signed);
    assert_eq!(status, 200, "{v}");
    w.s.ok(&["--repo", &w.server(), "verify"]);
}

#[test]
fn a_push_that_fails_after_signing_never_wedges_publishing() {
    let w = world(&[]);
    let owner = w.token("owner", &["--role", "targets"]);
    let server_path = w.server_dir.display().to_string();
    let metadata = w.server_dir.join("published/metadata");
    // Fail at each write between the agent's signatures and the switch of timestamp.json:
    // the pushed role's file, then the snapshot's. A directory in the way makes the write
    // fail whatever the user's privileges.
    for (i, obstacle) in ["role", "snapshot"].iter().enumerate() {
        let version = format!("1.{}.0", i + 1);
        w.s.add_release(&w.publisher(), version.as_bytes(), "app", &version);
        let floor: Value = std::fs::read(w.server_dir.join("online-floor.json"))
            .map(|b| serde_json::from_slice(&b).unwrap())
            .unwrap_or(json!({"snapshot": 0}));
        let blocked = match *obstacle {
            "role" => metadata.join(format!("{}.targets.json", next_role_version(&w, "targets"))),
            _ => {
                let published = published_snapshot(&w)["signed"]["version"]
                    .as_u64()
                    .unwrap();
                let next = published.max(floor["snapshot"].as_u64().unwrap()) + 1;
                metadata.join(format!("{next}.snapshot.json"))
            }
        };
        std::fs::create_dir(&blocked).unwrap();
        std::fs::write(blocked.join("x"), b"in the way").unwrap();
        let signed_before = w.agent_signatures("snapshot");
        let out = w.push(&owner);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success(),
            "{obstacle}: the push should have failed"
        );
        assert!(
            !err.contains(&server_path),
            "{obstacle}: the server's path leaked: {err}"
        );
        assert!(
            w.agent_signatures("snapshot") > signed_before,
            "{obstacle}: failed before signing"
        );
        std::fs::remove_dir_all(&blocked).unwrap();
        // The next push goes through (the same release, retried).
        let out = w.push(&owner);
        assert!(
            out.status.success(),
            "{obstacle}: publishing is wedged: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        w.s.ok(&["--repo", &w.server(), "verify"]);
    }
}

#[test]
fn a_token_scope_covers_removed_targets_and_delegations() {
    let w = world(&[]);
    let publisher = w.publisher();
    let owner = w.token("owner", &["--role", "targets"]);
    w.s.add_release(&publisher, b"other product", "other", "1.0.0");
    assert!(w.push(&owner).status.success());
    let scoped =
        std::fs::read_to_string(w.token("app-bot", &["--role", "targets", "--path", "app/*/*"]))
            .unwrap();
    let before = w.published_state();
    // Removing another product's target is a change outside app/*/*.
    let mut md = server_targets(&w);
    md.signed.version += 1;
    md.signed.targets.retain(|p, _| !p.starts_with("other/"));
    let signed = sign_as(&w, "targets-key", &mut md);
    let (status, v) = w.push_role(&scoped, "targets", &signed);
    assert_eq!(status, 403, "{v}");
    assert!(v["message"].as_str().unwrap().contains("(removed)"), "{v}");
    // Adding a delegation hands out paths: never with a path-scoped token.
    let mut md = server_targets(&w);
    md.signed.version += 1;
    let key =
        sealwright_crypto::PrivateKey::generate(sealwright_crypto::Algorithm::Ed25519).unwrap();
    use sealwright_crypto::Signer as _;
    let role = sealwright_tuf::metadata::DelegatedRole::new(
        "evil".into(),
        vec![key.keyid().to_owned()],
        1,
        false,
        Some(vec!["*".into()]),
        None,
    )
    .unwrap();
    md.signed.delegations = Some(sealwright_tuf::metadata::Delegations::new_roles(
        [(key.keyid().to_owned(), key.public_key().clone())].into(),
        vec![role],
    ));
    let signed = sign_as(&w, "targets-key", &mut md);
    let (status, v) = w.push_role(&scoped, "targets", &signed);
    assert_eq!(status, 403, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("delegations"),
        "{v}"
    );
    assert_eq!(w.published_state(), before);
}

#[test]
fn a_channel_pointer_must_name_an_artifact_its_signer_could_publish() {
    let w = world(&[]);
    let publisher = w.publisher();
    w.s.ok(&[
        "--repo",
        &publisher,
        "delegate",
        "chan",
        "--paths",
        "tool/channels/*",
    ]);
    let owner = w.token("owner", &["--role", "targets", "--role", "chan"]);
    w.s.add_release(&publisher, b"x", "app", "1.0.1");
    assert!(w.push(&owner).status.success());
    let chan_token = std::fs::read_to_string(w.token("chan-bot", &["--role", "chan"])).unwrap();
    let chan_version = next_role_version(&w, "chan");
    let mut md: Metadata<Targets> = Metadata::from_bytes(
        &std::fs::read(
            w.server_dir
                .join(format!("published/metadata/{}.chan.json", chan_version - 1)),
        )
        .unwrap(),
        1 << 26,
    )
    .unwrap();
    md.signed.version = chan_version;
    let evil = b"#!/bin/sh\necho pwned\n".to_vec();
    let pointer = json!({
        "name": "tool", "version": "6.6.6", "channel": "stable",
        "target": "tool/6.6.6/evil.sh", "length": evil.len(),
        "hashes": {"sha256": sha256_hex(&evil)}, "recovery": false,
    });
    let file = serde_json::to_vec(&pointer).unwrap();
    let sha = sha256_hex(&file);
    let (status, _) = w.api(
        "PUT",
        &format!("/api/v1/blobs/{sha}"),
        Some(&chan_token),
        &file,
    );
    assert!(status == 201 || status == 200);
    let mut entry = TargetFile::new(file.len() as u64, [("sha256".to_owned(), sha)].into());
    entry.custom = Some(std::sync::Arc::new(json!({ "sealwright": pointer })));
    md.signed
        .targets
        .insert("tool/channels/stable.json".into(), entry);
    let signed = sign_as(&w, "chan-key", &mut md);
    let before = w.published_state();
    let (status, v) = w.push_role(&chan_token, "chan", &signed);
    assert_eq!(status, 422, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("cannot grant one"),
        "{v}"
    );
    assert_eq!(w.published_state(), before);
}

#[test]
fn thirty_days_without_a_push_devices_still_update() {
    // The server (and its agent) come up thirty days after the last publish: timestamp and
    // snapshot have long expired; the server renews both before any device asks.
    let w = world_at(&[], Some("+30d"));
    let first = published_snapshot(&w)["signed"]["version"]
        .as_u64()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while published_snapshot(&w)["signed"]["version"]
        .as_u64()
        .unwrap()
        == first
    {
        assert!(Instant::now() < deadline, "snapshot.json was not renewed");
        std::thread::sleep(Duration::from_millis(100));
    }
    let dev = w.s.path().join("device");
    w.s.ok(&[
        "client",
        "init",
        "--dir",
        dev.to_str().unwrap(),
        "--root",
        w.s.repo()
            .join("published/metadata/1.root.json")
            .to_str()
            .unwrap(),
        "--url",
        &w.url,
        "--ca",
        w.ca.to_str().unwrap(),
        "--name",
        "app",
    ]);
    let out = sealwright(Some("+30d"))
        .args(["update", "--dir", dev.to_str().unwrap()])
        .env_remove("SEALWRIGHT_REPO")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(dev.join("current/app.bin")).unwrap(),
        b"app one"
    );
    assert!(w.audit().iter().any(|r| r["action"] == "online-renew"));
}

#[test]
fn unauthenticated_requests_are_counted_rate_limited_and_summarised() {
    let w = world(&[]);
    let records_before = w.audit().len();
    let mut statuses = std::collections::BTreeMap::new();
    for i in 0..300 {
        let (status, _) = if i % 2 == 0 {
            w.api("POST", "/api/v1/push", None, b"{}")
        } else {
            w.get("/api/v1/targets", Some("swp_not_a_token"))
        };
        *statuses.entry(status).or_insert(0) += 1;
    }
    // The first requests of a window are answered 401, the rest 429 without a lookup (a
    // window may end during the burst: then its successor allows 30 more).
    let (unauthorized, limited) = (statuses[&401], statuses[&429]);
    assert_eq!(unauthorized + limited, 300, "{statuses:?}");
    assert!(unauthorized % 30 == 0 && unauthorized <= 90, "{statuses:?}");
    // Nothing was fsynced per request: at most the summaries of a window that ended.
    let during: Vec<Value> = w.audit().into_iter().skip(records_before).collect();
    assert!(
        during.len() <= 4 && during.iter().all(|r| r["action"] == "refused-summary"),
        "{during:#?}"
    );
    // Within a window, one summary per source and action, counting every request.
    let deadline = Instant::now() + Duration::from_secs(25);
    let summaries = loop {
        let s: Vec<Value> = w
            .audit()
            .into_iter()
            .filter(|r| r["action"] == "refused-summary")
            .collect();
        let counted: u64 = s
            .iter()
            .map(|r| r["details"]["count"].as_u64().unwrap())
            .sum();
        if counted >= 300 {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "no summary of the refusals: {s:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(summaries.len() <= 4, "{summaries:#?}");
    assert!(
        summaries.iter().all(|r| r["subject"] == "127.0.0.1"),
        "{summaries:#?}"
    );
    w.s.ok(&["--repo", &w.server(), "audit", "verify"]);
}

#[test]
fn uploaded_content_never_stops_the_server_from_starting() {
    let mut w = world(&[]);
    let token = std::fs::read_to_string(w.token("bot", &["--role", "targets"])).unwrap();
    // 60 bytes that look like a PEM private key, uploaded and then published as a release.
    let blob = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_vec();
    let sha = sha256_hex(&blob);
    let (status, v) = w.api("PUT", &format!("/api/v1/blobs/{sha}"), Some(&token), &blob);
    assert!(status == 201 || status == 200, "{v}");
    w.restart_server();
    let mut md = server_targets(&w);
    md.signed.version += 1;
    list_target(&mut md, "app/1.0.1/fixture.pem", &blob);
    let signed = sign_as(&w, "targets-key", &mut md);
    let (status, v) = w.push_role(&token, "targets", &signed);
    assert_eq!(status, 200, "{v}");
    w.restart_server();
    w.s.ok(&["--repo", &w.server(), "verify"]);
}

#[test]
fn tokens_live_only_in_a_server_directory_and_can_be_removed() {
    let w = world(&[]);
    // A mistyped path is refused and nothing is created there.
    let typo = w.s.path().join("srv-typo");
    let out = w.s.run(&[
        "--repo",
        typo.to_str().unwrap(),
        "token",
        "add",
        "ci",
        "--role",
        "targets",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a server data directory"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!typo.exists(), "token add created {}", typo.display());
    let out =
        w.s.run(&["--repo", typo.to_str().unwrap(), "token", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!typo.exists());

    // A removed token stops working at once, and the removal is audited.
    let token = std::fs::read_to_string(w.token("ci", &["--role", "targets"])).unwrap();
    assert_eq!(w.get("/api/v1/targets", Some(&token)).0, 200);
    w.server_ok(&["token", "remove", "ci"]);
    assert_eq!(w.get("/api/v1/targets", Some(&token)).0, 401);
    assert!(w.audit().iter().any(|r| r["action"] == "token-remove"));
    let out = w.run_on_server(&["--repo", &w.server(), "token", "remove", "ci"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no token named ci"));
}

/// SLSA provenance over `subjects` (name, bytes), signed by `builder`: what `build` writes.
fn provenance_of(builder: &sealwright_crypto::PrivateKey, subjects: &[(&str, &[u8])]) -> Vec<u8> {
    use sealwright_attest::statement::{ResourceDescriptor, Statement};
    let statement = Statement::new(
        subjects
            .iter()
            .map(|(name, bytes)| ResourceDescriptor::file(name, &sha256_hex(bytes)))
            .collect(),
        sealwright_attest::slsa::PROVENANCE_V1,
        json!({
            "buildDefinition": {"buildType": "https://sealwright.dev/build/v1", "externalParameters": {}},
            "runDetails": {"builder": {"id": "https://builder.example"}},
        }),
    );
    sealwright_attest::dsse::Envelope::sign(
        sealwright_attest::dsse::IN_TOTO_PAYLOAD_TYPE,
        statement.to_bytes(),
        &[builder],
    )
    .unwrap()
    .to_json()
}

/// Stages `artifact` as app VERSION in the publisher's repository, its entry linking
/// `evidence` (kind, file name, bytes), which is staged beside it — what `stage-build`
/// does, without its checks: a publisher who bypasses them.
fn stage_with_evidence(w: &World, version: &str, artifact: &[u8], evidence: &[(&str, &str, &[u8])]) {
    let dir = w.s.path().join(format!("stage-{version}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("app.bin"), artifact).unwrap();
    let mut files = vec![dir.join("app.bin")];
    let mut links = std::collections::BTreeMap::new();
    for (kind, name, bytes) in evidence {
        std::fs::write(dir.join(name), bytes).unwrap();
        files.push(dir.join(name));
        links.insert(
            (*kind).to_owned(),
            sealwright_repo::staging::EvidenceFile {
                path: format!("app/{version}/{name}"),
                sha256: sha256_hex(bytes),
            },
        );
    }
    let release = sealwright_repo::staging::Release::new("app", version, None)
        .unwrap()
        .with_evidence(links);
    let policy = Policy::load(&w.s.repo()).unwrap();
    sealwright_repo::staging::add_artifacts(&w.s.repo(), &policy, "targets", &files, &release, &|_| {})
        .unwrap();
}

/// P6 on the server: with `[attestations]` in its policy, the server publishes a pushed
/// release only when its signed entry links provenance by the named builder over its exact
/// bytes, pushed with it; a release without it, with a stranger's, with provenance of other
/// bytes, or whose "evidence" only vouches for other unvouched targets is refused, audited,
/// and stores nothing.
#[test]
fn a_repository_requiring_provenance_refuses_pushes_without_it() {
    use sealwright_crypto::{Algorithm, PrivateKey, Signer as _};
    let mut w = world(&[]);
    let builder = PrivateKey::generate(Algorithm::Ed25519).unwrap();
    let stranger = PrivateKey::generate(Algorithm::Ed25519).unwrap();
    let builder_pub = w.s.path().join("builder.pub.pem");
    std::fs::write(&builder_pub, builder.public_key().to_spki_pem().unwrap()).unwrap();
    w.s.ok(&["--repo", &w.server(), "key", "import", builder_pub.to_str().unwrap(), "--name", "builder"]);
    let policy_file = w.server_dir.join("sealwright.toml");
    let mut policy = std::fs::read_to_string(&policy_file).unwrap();
    policy.push_str("\n[attestations]\nbuilders = [\"builder\"]\n");
    std::fs::write(&policy_file, policy).unwrap();
    w.restart_server();
    let token = w.token("release-bot", &["--role", "targets"]);
    let start_over = || std::fs::remove_dir_all(w.s.repo().join("staged")).unwrap();

    type Stage<'a> = Box<dyn Fn(&World) + 'a>;
    let refusals: [(&str, Stage<'_>, &str); 4] = [
        (
            "no provenance",
            Box::new(|w: &World| w.s.add_release(&w.publisher(), b"unbuilt", "app", "1.1.0")),
            "no provenance is linked",
        ),
        (
            "a stranger's provenance",
            Box::new(|w: &World| {
                let p = provenance_of(&stranger, &[("app.bin", b"app two")]);
                stage_with_evidence(w, "1.1.0", b"app two", &[("provenance", "provenance.intoto.json", &p)]);
            }),
            "provenance is not accepted: signed by 0 of the trusted keys",
        ),
        (
            "provenance of other bytes",
            Box::new(|w: &World| {
                let p = provenance_of(&builder, &[("app.bin", b"what was built")]);
                stage_with_evidence(w, "1.1.0", b"something else", &[("provenance", "provenance.intoto.json", &p)]);
            }),
            "other bytes",
        ),
        (
            "evidence vouching only for evidence",
            Box::new(|w: &World| {
                // Each file names the other as its SBOM; neither has provenance.
                let a = b"payload a".as_slice();
                let b = b"payload b".as_slice();
                stage_with_evidence(w, "1.1.0", a, &[("sbom", "b.bin", b)]);
            }),
            "no provenance is linked",
        ),
    ];
    for (case, stage, why) in refusals {
        let before = w.published();
        stage(&w);
        let out = w.push(&token);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{case}: pushed");
        assert!(
            stderr.contains("attestation") && stderr.contains(why),
            "{case}: {stderr}"
        );
        assert!(w.published() == before, "{case}: something was published");
        start_over();
    }

    // Built by the builder, its provenance pushed with it: published.
    let p = provenance_of(&builder, &[("app.bin", b"app two")]);
    stage_with_evidence(&w, "1.1.0", b"app two", &[("provenance", "provenance.intoto.json", &p)]);
    let out = w.push(&token);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(server_targets(&w).signed.targets.contains_key("app/1.1.0/app.bin"));
    let refused: Vec<Value> = w
        .audit()
        .into_iter()
        .filter(|r| r["action"] == "push-refused")
        .collect();
    assert_eq!(refused.len(), 4, "each refusal is audited: {refused:?}");
}
