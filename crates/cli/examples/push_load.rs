//! Load generator for `scripts/bench push`: THREADS publishers push one-file releases of
//! their own delegated role (`team-I`, keys from REPO, opened once: a publisher that keeps
//! its key unlocked for the duration of a command) to the publish API as fast as the server
//! answers, each over one keep-alive connection, for SECS seconds.
//!
//! Usage: push_load REPO URL CA TOKEN_FILE THREADS SECS [FIRST]
//! (roles team-FIRST .. team-(FIRST+THREADS-1); FIRST defaults to 0)
//! stdout: one JSON line {"pushes", "seconds", "per_second", "p50_ms", "p99_ms", "errors"}.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use sealwright_crypto::digest::sha256_hex;
use sealwright_repo::{FixedPassphrase, Keyring, Policy};
use sealwright_tuf::metadata::{Metadata, TargetFile, Targets};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (first, args) = match &args[..] {
        [rest @ .., first] if args.len() == 8 => (first.parse::<usize>().unwrap(), rest),
        all => (0, all),
    };
    let [_, repo, url, ca, token_file, threads, secs] = args else {
        panic!("usage: push_load REPO URL CA TOKEN_FILE THREADS SECS [FIRST]");
    };
    let repo = PathBuf::from(repo);
    let threads: usize = threads.parse().unwrap();
    let secs: u64 = secs.parse().unwrap();
    let token = std::fs::read_to_string(token_file)
        .unwrap()
        .trim()
        .to_owned();
    let passphrase = std::fs::read_to_string(std::env::var("SEALWRIGHT_PASSPHRASE_FILE").unwrap())
        .unwrap()
        .trim_end_matches('\n')
        .to_owned();
    let policy = Policy::load(&repo).unwrap();
    let source = FixedPassphrase(sealwright_crypto::Passphrase::new(passphrase));
    let keyring = Keyring::new(&repo, &source);
    let tls = sealwright_client::tls::TlsOptions::default()
        .with_ca_file(std::path::Path::new(ca))
        .unwrap();
    let config = sealwright_client::fetch::HttpConfig {
        proxy_from_env: false,
        ..Default::default()
    };
    let deadline = Instant::now() + Duration::from_secs(secs);
    let results: Vec<(Vec<Duration>, usize)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let role = format!("team-{}", first + i);
                let key = keyring
                    .open(&policy, &format!("{role}-key"))
                    .unwrap()
                    .unwrap();
                let agent = sealwright_client::fetch::https_agent(&config, &tls).unwrap();
                let (url, token) = (url.clone(), token.clone());
                scope.spawn(move || {
                    let auth = format!("Bearer {token}");
                    let get = |path: &str| -> Vec<u8> {
                        agent
                            .get(format!("{url}{path}"))
                            .call()
                            .unwrap()
                            .into_body()
                            .with_config()
                            .limit(1 << 30)
                            .read_to_vec()
                            .unwrap()
                    };
                    // The role as published now; from here on this thread is its only writer.
                    let ts: serde_json::Value =
                        serde_json::from_slice(&get("/metadata/timestamp.json")).unwrap();
                    let sv = ts["signed"]["meta"]["snapshot.json"]["version"].as_u64().unwrap();
                    let snapshot: serde_json::Value =
                        serde_json::from_slice(&get(&format!("/metadata/{sv}.snapshot.json")))
                            .unwrap();
                    let version = snapshot["signed"]["meta"][format!("{role}.json")]["version"]
                        .as_u64()
                        .unwrap();
                    let mut md: Metadata<Targets> = Metadata::from_bytes(
                        &get(&format!("/metadata/{version}.{role}.json")),
                        1 << 26,
                    )
                    .unwrap();
                    let (mut times, mut errors) = (Vec::new(), 0);
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        n += 1;
                        let started = Instant::now();
                        let content = format!("{role} release {n} {:?}", started);
                        let sha = sha256_hex(content.as_bytes());
                        md.signed.version += 1;
                        md.signed.targets.clear();
                        md.signed.targets.insert(
                            format!("{role}/{n}/app.bin"),
                            TargetFile::new(
                                content.len() as u64,
                                [("sha256".to_owned(), sha.clone())].into(),
                            ),
                        );
                        md.signatures.clear();
                        md.sign(&key).unwrap();
                        let uploaded = agent
                            .put(format!("{url}/api/v1/blobs/{sha}"))
                            .header("Authorization", &auth)
                            .send(content.as_bytes())
                            .is_ok();
                        let body = serde_json::to_vec(&serde_json::json!({
                            "roles": { role.as_str(): String::from_utf8(md.to_bytes().unwrap()).unwrap() }
                        }))
                        .unwrap();
                        let pushed = uploaded
                            && agent
                                .post(format!("{url}/api/v1/push"))
                                .header("Authorization", &auth)
                                .send(&body[..])
                                .is_ok_and(|mut r| {
                                    r.status() == 200 && r.body_mut().read_to_vec().is_ok()
                                });
                        if pushed {
                            times.push(started.elapsed());
                        } else {
                            errors += 1;
                            md.signed.version -= 1;
                        }
                    }
                    (times, errors)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut times: Vec<Duration> = results.iter().flat_map(|(t, _)| t.clone()).collect();
    let errors: usize = results.iter().map(|(_, e)| e).sum();
    times.sort();
    let pct = |p: f64| {
        times
            .get(((times.len() as f64 * p) as usize).min(times.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "{}",
        serde_json::json!({
            "pushes": times.len(),
            "seconds": secs,
            "per_second": times.len() as f64 / secs as f64,
            "p50_ms": pct(0.5),
            "p99_ms": pct(0.99),
            "errors": errors,
        })
    );
}
