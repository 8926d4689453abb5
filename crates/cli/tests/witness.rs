//! Witnesses (c2sp.org/tlog-witness): `sealwright witness serve` answers each check of the
//! specification with its status, over HTTP, and remembers what it cosigned across a
//! restart; a set-up server has its checkpoints cosigned by our witness and by the
//! third-party `aics-witness`, and the third-party `aics-tlog` verifies the log with a
//! quorum of both.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
// The attack suite's hostile mirror (this binary uses part of it).
#[path = "attacks/mirror.rs"]
#[allow(dead_code)]
mod mirror;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{free_port, start_services, wait_for_port, Killed, Scratch};
use sealwright_tlog::merkle::{consistency_proof, leaf_hash, tree_root, Hash};
use sealwright_tlog::note::{sign, Ed25519NoteKey, KeyKind, NoteSigner};
use sealwright_tlog::witness::AddCheckpoint;
use sealwright_tlog::{Checkpoint, Note, Verifier};

fn start_witness(s: &Scratch, dir: &Path, port: u16) -> Killed {
    let child = common::sealwright(None)
        .args(["witness", "serve", dir.to_str().unwrap(), "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .env("SEALWRIGHT_PASSPHRASE_FILE", s.path().join("passphrase"))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(port);
    Killed(child)
}

/// A checkpoint of the first `size` entries `prefix i`, signed by `log`, with the proof to
/// it from `from`.
fn request(
    log: &Ed25519NoteKey,
    prefix: &str,
    old: u64,
    from: u64,
    size: u64,
) -> (String, AddCheckpoint) {
    let leaves: Vec<Hash> = (0..size)
        .map(|i| leaf_hash(format!("{prefix} {i}").as_bytes()))
        .collect();
    let mut src: &[Hash] = &leaves;
    let text = Checkpoint {
        origin: log.verifier().name().to_owned(),
        size,
        root: tree_root(&mut src, size).unwrap(),
        extensions: vec![],
    }
    .to_text();
    let mut note = Note::new(&text).unwrap();
    note.add_signature(sign(&text, log, 0).unwrap());
    let proof = consistency_proof(&mut src, from, size).unwrap();
    (
        text,
        AddCheckpoint {
            old_size: old,
            proof,
            checkpoint: note.to_bytes(),
        },
    )
}

/// POSTs a request; returns the status, the content type and the body.
fn submit(port: u16, req: &AddCheckpoint) -> (u16, String, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let resp = agent
        .post(&format!("http://127.0.0.1:{port}/add-checkpoint"))
        .send(&req.to_body()[..])
        .unwrap();
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ctype, resp.into_body().read_to_string().unwrap())
}

#[test]
fn our_witness_cosigns_only_extensions_and_remembers() {
    let s = Scratch::new();
    let dir = s.path().join("witness");
    let vkey = s.ok(&[
        "witness",
        "init",
        dir.to_str().unwrap(),
        "--name",
        "witness.test/ours",
    ]);
    let witness = Verifier::from_vkey(vkey.trim()).unwrap();
    assert_eq!(witness.kind(), KeyKind::Cosignature);
    assert_eq!(s.ok(&["witness", "key", dir.to_str().unwrap()]), vkey);
    let log = Ed25519NoteKey::from_seed("example.com/log", KeyKind::Ed25519, &[3; 32]).unwrap();
    s.ok(&[
        "witness",
        "add-log",
        dir.to_str().unwrap(),
        "--vkey",
        &log.verifier().vkey(),
    ]);
    let port = free_port();
    let served = start_witness(&s, &dir, port);

    let (text, first) = request(&log, "a", 0, 0, 3);
    let (status, _, body) = submit(port, &first);
    assert_eq!(status, 200, "{body}");
    let cosigs =
        sealwright_tlog::witness::cosignatures_from_answer(body.as_bytes(), &text, &witness)
            .unwrap();
    assert_eq!(cosigs.len(), 1);
    // The cosignature's time is now, give or take.
    let mut note = Note::parse(&first.checkpoint).unwrap();
    note.add_signature(cosigs[0].clone());
    let verified = note.verify(std::slice::from_ref(&witness)).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(verified[0].time.unwrap().abs_diff(now) < 60);

    // Stale old size: 409 with the size, as the specification's content type.
    let (status, ctype, body) = submit(port, &request(&log, "a", 0, 0, 5).1);
    assert_eq!(
        (status, ctype.as_str(), body.as_str()),
        (409, "text/x.tlog.size", "3\n")
    );
    // A fork with a proof valid for its own history: 422. Same size, other root: 422.
    assert_eq!(submit(port, &request(&log, "b", 3, 3, 5).1).0, 422);
    assert_eq!(submit(port, &request(&log, "b", 3, 3, 3).1).0, 422);
    // Another key under the log's name: 403. An unknown log: 404. Garbage: 400.
    let impostor =
        Ed25519NoteKey::from_seed("example.com/log", KeyKind::Ed25519, &[4; 32]).unwrap();
    assert_eq!(submit(port, &request(&impostor, "a", 3, 3, 5).1).0, 403);
    let stranger =
        Ed25519NoteKey::from_seed("example.org/log", KeyKind::Ed25519, &[3; 32]).unwrap();
    assert_eq!(submit(port, &request(&stranger, "a", 0, 0, 1).1).0, 404);
    let mut garbage = request(&log, "a", 3, 3, 5).1;
    garbage.checkpoint = b"not a note".to_vec();
    assert_eq!(submit(port, &garbage).0, 400);
    // The extension is cosigned.
    assert_eq!(submit(port, &request(&log, "a", 3, 3, 5).1).0, 200);

    // Restarted, the witness remembers size 5.
    drop(served);
    let _served = start_witness(&s, &dir, port);
    let (status, _, body) = submit(port, &request(&log, "a", 3, 3, 7).1);
    assert_eq!((status, body.as_str()), (409, "5\n"));
    assert_eq!(submit(port, &request(&log, "b", 5, 5, 7).1).0, 422);
    assert_eq!(submit(port, &request(&log, "a", 5, 5, 7).1).0, 200);
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_server_gets_its_checkpoints_cosigned_by_our_witness_and_aics_witness() {
    let s = Scratch::new();
    let repo = s.repo_arg();
    let (dir, port, token) = common::init_and_set_up_server(&s);
    let server_dir = dir.join("server");
    let log_vkey = s.ok(&["--repo", server_dir.to_str().unwrap(), "log", "key"]);
    let log_vkey = log_vkey.trim();
    let origin = Verifier::from_vkey(log_vkey).unwrap().name().to_owned();

    // Our witness.
    let ours = s.path().join("ours");
    let ours_vkey = s.ok(&[
        "witness",
        "init",
        ours.to_str().unwrap(),
        "--name",
        "witness.test/ours",
    ]);
    s.ok(&[
        "witness",
        "add-log",
        ours.to_str().unwrap(),
        "--vkey",
        log_vkey,
    ]);
    let ours_port = free_port();
    let _ours = start_witness(&s, &ours, ours_port);
    // aics-witness, a third party's.
    let theirs = s.path().join("theirs");
    std::fs::create_dir_all(&theirs).unwrap();
    let theirs_port = free_port();
    let config = theirs.join("witness.json");
    let init = run_ok(Command::new(common::aics("aics-witness")).args([
        "init",
        "--config",
        config.to_str().unwrap(),
        "--name",
        "witness.test/aics",
        "--listen",
        &format!("127.0.0.1:{theirs_port}"),
    ]));
    let theirs_vkey = init.lines().last().unwrap().trim().to_owned();
    run_ok(Command::new(common::aics("aics-witness")).args([
        "add-log",
        "--config",
        config.to_str().unwrap(),
        "--origin",
        &origin,
        "--vkey",
        log_vkey,
    ]));
    let _theirs = Killed(
        Command::new(common::aics("aics-witness"))
            .args(["serve", "--config", config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(theirs_port);
    for (port, vkey) in [
        (ours_port, ours_vkey.trim()),
        (theirs_port, theirs_vkey.as_str()),
    ] {
        s.ok(&[
            "--repo",
            server_dir.to_str().unwrap(),
            "log",
            "add-witness",
            "--url",
            &format!("http://127.0.0.1:{port}"),
            "--vkey",
            vkey,
        ]);
    }

    let _services = start_services(&dir, port);

    let url = format!("https://127.0.0.1:{port}");
    let cert = dir.join("tls/cert.pem");
    let witnesses = [
        Verifier::from_vkey(ours_vkey.trim()).unwrap(),
        Verifier::from_vkey(&theirs_vkey).unwrap(),
    ];
    for version in ["1.0.0", "1.1.0"] {
        let app = s.path().join("app.bin");
        std::fs::write(&app, version.as_bytes()).unwrap();
        s.ok(&[
            "--repo",
            &repo,
            "add",
            app.to_str().unwrap(),
            "--name",
            "app",
            "--version",
            version,
            "--channel",
            "stable",
        ]);
        s.push_to(&url, &token, &cert);
        // The served checkpoint carries both cosignatures, each verifying with its key.
        let agent = common::https_agent(&cert);
        let bytes = agent
            .get(&format!("{url}/log/checkpoint"))
            .call()
            .unwrap()
            .body_mut()
            .read_to_vec()
            .unwrap();
        let note = Note::parse(&bytes).unwrap();
        let verified = note.verify(&witnesses).unwrap();
        assert_eq!(verified.len(), 2, "{}", String::from_utf8_lossy(&bytes));
        // aics-tlog agrees, requiring both witnesses.
        let verdict = run_ok(
            Command::new(common::aics("aics-tlog"))
                .args([
                    "verify-checkpoint",
                    "--tiles",
                    &format!("{url}/log/"),
                    "--log-key",
                    log_vkey,
                    "--origin",
                    &origin,
                    "--witness-key",
                    ours_vkey.trim(),
                    "--witness-key",
                    &theirs_vkey,
                    "--quorum",
                    "2",
                ])
                .env("SSL_CERT_FILE", &cert),
        );
        let verdict: serde_json::Value = serde_json::from_str(&verdict).unwrap();
        assert_eq!(verdict["ok"], true, "{verdict}");

        // The release's entry has an offline proof (c2sp.org/tlog-proof) at /log/proof/:
        // it verifies with the log key and both witnesses, and aics-tlog checks its path
        // and checkpoint in its own offline mode.
        let cp = sealwright_tlog::Checkpoint::parse(note.text()).unwrap();
        let bundle = agent
            .get(&format!("{url}/log/tile/entries/000.p/{}", cp.size))
            .call()
            .unwrap()
            .body_mut()
            .read_to_vec()
            .unwrap();
        let entries = sealwright_tlog::tile::decode_bundle(&bundle).unwrap();
        let target = entries
            .iter()
            .rev()
            .find(|e| e.starts_with(br#"{"kind":"target""#))
            .unwrap();
        let leaf = leaf_hash(target);
        let text = agent
            .get(&format!("{url}/log/proof/{}", hex::encode(leaf)))
            .call()
            .unwrap()
            .body_mut()
            .read_to_vec()
            .unwrap();
        let proof = sealwright_tlog::proof::TlogProof::parse(&text).unwrap();
        let log = Verifier::from_vkey(log_vkey).unwrap();
        assert_eq!(proof.verify(&leaf, &log, &witnesses, 2).unwrap(), cp);
        assert!(proof
            .verify(&leaf_hash(b"other"), &log, &witnesses, 2)
            .is_err());
        let files = s.path().join(format!("proof-{version}"));
        std::fs::create_dir_all(&files).unwrap();
        std::fs::write(files.join("leaf"), target).unwrap();
        std::fs::write(files.join("checkpoint"), &proof.checkpoint).unwrap();
        // (aics-tlog takes a path line as base64 or 64 hex digits.)
        let path: String = proof
            .path
            .iter()
            .map(|h| format!("{}\n", hex::encode(h)))
            .collect();
        std::fs::write(files.join("path"), path).unwrap();
        let verdict = run_ok(Command::new(common::aics("aics-tlog")).args([
            "verify-inclusion",
            "--leaf",
            files.join("leaf").to_str().unwrap(),
            "--index",
            &proof.index.to_string(),
            "--size",
            &cp.size.to_string(),
            "--root",
            note.text().lines().nth(2).unwrap(),
            "--proof",
            files.join("path").to_str().unwrap(),
            "--checkpoint",
            files.join("checkpoint").to_str().unwrap(),
            "--log-key",
            log_vkey,
            "--witness-key",
            ours_vkey.trim(),
            "--witness-key",
            &theirs_vkey,
            "--quorum",
            "2",
        ]));
        let verdict: serde_json::Value = serde_json::from_str(&verdict).unwrap();
        assert_eq!(verdict["ok"], true, "{verdict}");
        assert_eq!(
            agent
                .get(&format!("{url}/log/proof/{}", "00".repeat(32)))
                .config()
                .http_status_as_error(false)
                .build()
                .call()
                .unwrap()
                .status()
                .as_u16(),
            404
        );
    }

    // C6: a device that requires the log (and both witnesses) installs the release the log
    // shows; one that trusts another log key, or wants a witness that never cosigned,
    // installs nothing; a device that saw another history of the log (a split view) or a
    // larger tree (a rollback) refuses.
    let device_at =
        |name: &str, url: &str, ca: &Path, key: &str, witnesses: &[&str], quorum: usize| {
            let dev = s.path().join(name);
            let mut args = vec![
                "client".to_owned(),
                "init".into(),
                "--dir".into(),
                dev.to_str().unwrap().into(),
                "--root".into(),
                server_dir
                    .join("published/metadata/1.root.json")
                    .to_str()
                    .unwrap()
                    .into(),
                "--url".into(),
                url.into(),
                "--name".into(),
                "app".into(),
                "--ca".into(),
                ca.to_str().unwrap().into(),
                "--log-key".into(),
                key.into(),
                "--witness-quorum".into(),
                quorum.to_string(),
            ];
            for w in witnesses {
                args.extend(["--witness".to_owned(), (*w).to_owned()]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            s.ok(&args);
            dev
        };
    let device = |name: &str, key: &str, witnesses: &[&str], quorum: usize| {
        device_at(name, &url, &cert, key, witnesses, quorum)
    };
    let update = |dev: &Path| s.run(&["update", "--dir", dev.to_str().unwrap(), "--json"]);
    let installed = |dev: &Path| {
        let out = update(dev);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        report["version"].as_str().unwrap().to_owned()
    };
    let refused = |dev: &Path, needle: &str| {
        let out = update(dev);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(needle), "{stderr}");
        assert!(!dev.join("current").exists());
    };
    let good = device("good", log_vkey, &[ours_vkey.trim(), &theirs_vkey], 2);
    assert_eq!(installed(&good), "1.1.0");
    let seen: serde_json::Value =
        serde_json::from_slice(&std::fs::read(good.join("log-checkpoint.json")).unwrap()).unwrap();
    assert!(seen["size"].as_u64().unwrap() > 0);

    let stranger = Ed25519NoteKey::from_seed(&origin, KeyKind::Ed25519, &[5; 32]).unwrap();
    refused(
        &device("other-log", &stranger.verifier().vkey(), &[], 0),
        "transparency log",
    );
    let absent =
        Ed25519NoteKey::from_seed("witness.test/absent", KeyKind::Cosignature, &[6; 32]).unwrap();
    refused(
        &device(
            "three-witnesses",
            log_vkey,
            &[ours_vkey.trim(), &theirs_vkey, &absent.verifier().vkey()],
            3,
        ),
        "witness cosignatures",
    );
    let split = device("split", log_vkey, &[], 0);
    let size = seen["size"].as_u64().unwrap();
    std::fs::write(
        split.join("log-checkpoint.json"),
        format!(
            r#"{{"size": {}, "root": "{}"}}"#,
            size - 1,
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
        ),
    )
    .unwrap();
    refused(&split, "split view");
    let rolled = device("rollback", log_vkey, &[], 0);
    std::fs::write(
        rolled.join("log-checkpoint.json"),
        format!(
            r#"{{"size": {}, "root": "{}"}}"#,
            size + 10,
            seen["root"].as_str().unwrap()
        ),
    )
    .unwrap();
    refused(&rolled, "rollback");

    // Through the attack suite's hostile mirror, serving the server's published tree (the
    // log's checkpoint and tiles included) but not its proofs: the release is missing from
    // the log; then the artifact's proof swapped for another entry's genuine proof (a proof
    // for other bytes); then the genuine proofs, and the device installs.
    let mirror = mirror::Mirror::start(&server_dir.join("published"), s.path());
    let witnesses = [ours_vkey.trim(), theirs_vkey.as_str()];
    let via = device_at(
        "via-mirror",
        &mirror.url,
        &mirror.ca_pem,
        log_vkey,
        &witnesses,
        2,
    );
    let real = |path: &str| -> Vec<u8> {
        let mut resp = common::https_agent(&cert)
            .get(&format!("{url}/{path}"))
            .call()
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        resp.body_mut().read_to_vec().unwrap()
    };
    let proof_requested = |mirror: &mirror::Mirror| -> String {
        mirror
            .take_requests()
            .into_iter()
            .rfind(|p| p.starts_with("log/proof/"))
            .expect("the device asked for no proof")
    };
    mirror.take_requests();
    refused(&via, "is not in the transparency log");
    let artifact_proof = proof_requested(&mirror);
    mirror.tamper(
        &artifact_proof,
        mirror::Behaviour::Bytes(real(&artifact_proof)),
    );
    refused(&via, "is not in the transparency log");
    let metadata_proof = proof_requested(&mirror);
    assert_ne!(artifact_proof, metadata_proof);
    mirror.tamper(
        &metadata_proof,
        mirror::Behaviour::Bytes(real(&metadata_proof)),
    );
    mirror.tamper(
        &artifact_proof,
        mirror::Behaviour::Bytes(real(&metadata_proof)),
    );
    refused(&via, "the transparency log's proof for the artifact");
    mirror.tamper(
        &artifact_proof,
        mirror::Behaviour::Bytes(real(&artifact_proof)),
    );
    assert_eq!(installed(&via), "1.1.0");

    // Offline bundles carry the log's proofs: a device that requires the log (and both
    // witnesses) installs from one with no network.
    let bundle = s.path().join("app.bundle");
    s.ok(&[
        "bundle",
        "create",
        "--repo-url",
        &format!("{url}/"),
        "--root",
        server_dir
            .join("published/metadata/1.root.json")
            .to_str()
            .unwrap(),
        "--ca",
        cert.to_str().unwrap(),
        "--name",
        "app",
        "-o",
        bundle.to_str().unwrap(),
    ]);
    let offline = device("offline", log_vkey, &[ours_vkey.trim(), &theirs_vkey], 2);
    let out = s.run(&[
        "update",
        "--dir",
        offline.to_str().unwrap(),
        "--bundle",
        bundle.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(offline.join("log-checkpoint.json").is_file());

    // O3: the same bundle is evidence an auditor decides on offline: the artifact is the
    // published release, and the log (with both witnesses) shows it; other bytes, or another
    // log key, are refused.
    let root = server_dir.join("published/metadata/1.root.json");
    let artifact = s.path().join("app.bin");
    let verify_with = |evidence: &Path, artifact: &Path, key: &str| {
        s.run(&[
            "verify-release",
            "--root",
            root.to_str().unwrap(),
            "--evidence",
            evidence.to_str().unwrap(),
            "--log-key",
            key,
            "--witness",
            ours_vkey.trim(),
            "--witness",
            &theirs_vkey,
            "--witness-quorum",
            "2",
            artifact.to_str().unwrap(),
        ])
    };
    let verify = |artifact: &Path, key: &str| verify_with(&bundle, artifact, key);
    let out = verify(&artifact, log_vkey);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for said in [
        "root:",
        "listed by role targets",
        "every signed hash match",
        "transparency log:",
        "version 1.1.0 as published",
    ] {
        assert!(stdout.contains(said), "{stdout}");
    }
    let forged = s.path().join("forged.bin");
    std::fs::write(&forged, b"1.1.1").unwrap();
    assert!(!verify(&forged, log_vkey).status.success());
    assert!(!verify(&artifact, &stranger.verifier().vkey())
        .status
        .success());

    // `evidence` for one release, not only the newest: the chain that lists its path and
    // the log's proofs, without the artifact; decided offline the same way.
    let evidence = s.path().join("app-1.0.0.evidence");
    let made: serde_json::Value = serde_json::from_str(&s.ok(&[
        "--json",
        "evidence",
        "app/1.0.0/app.bin",
        "--repo-url",
        &format!("{url}/"),
        "--root",
        root.to_str().unwrap(),
        "--ca",
        cert.to_str().unwrap(),
        "-o",
        evidence.to_str().unwrap(),
    ]))
    .unwrap();
    let files: Vec<&str> = made["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f[0].as_str().unwrap())
        .collect();
    assert!(
        files.iter().any(|f| f.starts_with("log/proof/")),
        "{files:?}"
    );
    assert!(
        !files.iter().any(|f| f.starts_with("targets/")),
        "{files:?}"
    );
    let old = s.path().join("old.bin");
    std::fs::write(&old, b"1.0.0").unwrap();
    let decide = |artifact: &Path| verify_with(&evidence, artifact, log_vkey);
    let out = decide(&old);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for said in [
        "app/1.0.0/app.bin: listed by role targets",
        "transparency log:",
        "version 1.0.0 as published",
    ] {
        assert!(stdout.contains(said), "{stdout}");
    }
    assert!(
        !decide(&artifact).status.success(),
        "the 1.1.0 artifact is not the 1.0.0 release"
    );
}

/// Witnesses are asked all at once: two witnesses that accept the connection and never
/// answer are both asked before either request gives up, so a hung witness costs a push
/// one timeout (the log still integrates, without their cosignatures) — not one per
/// witness, under the publish lock every other push waits on.
#[test]
fn hung_witnesses_are_asked_at_once_and_the_log_still_grows() {
    use std::io::Read;
    use std::sync::mpsc;
    let s = Scratch::new();
    let (dir, _, _) = common::init_and_set_up_server(&s);
    let _agent = common::start_setup_agent(&dir);
    let server = dir.join("server");
    let (events, seen) = mpsc::channel::<(&str, usize)>();
    let mut witnesses = String::new();
    for i in 0..2 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let key = Ed25519NoteKey::from_seed(&format!("hung-{i}"), KeyKind::Ed25519, &[i as u8; 32])
            .unwrap();
        witnesses.push_str(&format!(
            "[[witness]]\nurl = \"http://{}\"\nvkey = \"{}\"\n",
            listener.local_addr().unwrap(),
            key.verifier().vkey()
        ));
        let events = events.clone();
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            events.send(("asked", i)).unwrap();
            // Never answer; wait for the server to give up on us.
            let mut sink = Vec::new();
            let _ = conn.read_to_end(&mut sink);
            events.send(("given up", i)).unwrap();
        });
    }
    std::fs::write(server.join("witnesses.toml"), witnesses).unwrap();

    let policy = sealwright_repo::Policy::load(&server).unwrap();
    let log = sealwright_server::translog::TransparencyLog::open(&server, &policy)
        .unwrap()
        .unwrap();
    let entry = sealwright_tlog::entry::Entry::AuditHead {
        records: 1,
        head: "ab".repeat(32),
    };
    log.sequence(&[entry]).unwrap();
    let integrated = log.integrate().unwrap().expect("the log grew");
    assert!(integrated.checkpoint.size >= 1);
    let order: Vec<&str> = seen
        .recv_timeout(std::time::Duration::from_secs(60))
        .into_iter()
        .chain(seen.recv_timeout(std::time::Duration::from_secs(60)))
        .map(|(what, _)| what)
        .collect();
    assert_eq!(
        order,
        ["asked", "asked"],
        "the second witness was asked only after the first one was given up on"
    );
}
