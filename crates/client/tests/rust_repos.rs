//! The real `sealwright-tuf-client` binary against repositories published by our own
//! publisher (`sealwright-repo`) and built with our metadata API (unusual role names).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{Duration, Utc};
use common::{fails, names, ok, Client, Server};
use sealwright_crypto::{digest, Algorithm, Passphrase, PrivateKey, Signer};
use sealwright_repo::keyring::FixedPassphrase;
use sealwright_repo::policy::Policy;
use sealwright_repo::staging::Release;
use sealwright_repo::{publish, Keyring};
use sealwright_tuf::{
    DelegatedRole, Delegations, MetaFile, Metadata, Role, Root, Snapshot, TargetFile, Targets,
    Timestamp,
};

/// Publishes a repository with `sealwright-repo` (as `sealwright quickstart` does) holding
/// two files; returns the published target paths and their contents.
fn publish_with_sealwright(repo: &Path, src: &Path) -> Vec<(String, Vec<u8>)> {
    std::fs::create_dir_all(src.join("share")).unwrap();
    std::fs::write(src.join("hello.sh"), b"#!/bin/sh\necho hello\n").unwrap();
    std::fs::write(src.join("share/README.txt"), b"verified\n").unwrap();
    let source = FixedPassphrase(Passphrase::new("test passphrase".to_owned()));
    let keyring = Keyring::new(repo, &source);
    let policy = sealwright_repo::init::create_repository(
        repo,
        Policy::new_default(),
        Algorithm::Ed25519,
        &keyring,
        None,
    )
    .unwrap();
    let release = Release::new("hello", "1.0.0", Some("stable")).unwrap();
    let added = sealwright_repo::staging::add_artifacts(
        repo,
        &policy,
        "targets",
        &[src.to_path_buf()],
        &release,
        &|_| {},
    )
    .unwrap();
    let plan = publish::plan(repo, &policy, Utc::now()).unwrap();
    publish::execute(repo, &policy, &keyring, plan).unwrap();
    added
        .targets
        .iter()
        .map(|(path, _)| {
            let rel = path
                .rsplit_once("hello-1.0.0/")
                .map_or(path.as_str(), |(_, r)| r);
            let local = if rel.ends_with("hello.sh") {
                "hello.sh"
            } else {
                "share/README.txt"
            };
            (path.clone(), std::fs::read(src.join(local)).unwrap())
        })
        .collect()
}

#[test]
fn sealwright_published_repository_refresh_download_and_expired_timestamp() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let targets = publish_with_sealwright(&repo, &tmp.path().join("src"));
    assert_eq!(targets.len(), 2, "{targets:?}");
    let published = repo.join("published");
    let server = Server::start(&published);
    let client = Client::new(
        &tmp.path().join("c1"),
        server.url("metadata/"),
        server.url("targets/"),
    );
    ok(&client.init(&published.join("metadata/1.root.json")));
    assert!(server.take().is_empty());
    ok(&client.refresh());
    let reqs = server.take();
    assert_eq!(
        reqs[..2],
        ["/metadata/2.root.json", "/metadata/timestamp.json"]
    );
    assert_eq!(reqs.len(), 4, "{reqs:?}");
    let timestamp: serde_json::Value =
        serde_json::from_slice(&std::fs::read(published.join("metadata/timestamp.json")).unwrap())
            .unwrap();
    let snap_v = timestamp["signed"]["meta"]["snapshot.json"]["version"]
        .as_u64()
        .unwrap();
    assert_eq!(reqs[2], format!("/metadata/{snap_v}.snapshot.json"));
    for role in ["snapshot", "timestamp"] {
        let served = if role == "timestamp" {
            "timestamp.json".to_owned()
        } else {
            format!("{snap_v}.snapshot.json")
        };
        assert_eq!(
            std::fs::read(client.md.join(format!("{role}.json"))).unwrap(),
            std::fs::read(published.join("metadata").join(served)).unwrap()
        );
    }

    let paths: Vec<&str> = targets.iter().map(|(p, _)| p.as_str()).collect();
    ok(&client.download(&paths));
    let reqs = server.take();
    assert_eq!(reqs.len(), 4, "2 metadata + 2 artifacts: {reqs:?}");
    for (path, content) in &targets {
        let (dir, base) = path.rsplit_once('/').unwrap();
        let sha = hex::encode(digest::sha256(content));
        assert!(
            reqs.contains(&format!("/targets/{dir}/{sha}.{base}")),
            "{reqs:?}"
        );
        assert_eq!(
            &std::fs::read(client.td.join(sealwright_client::quote(path))).unwrap(),
            content
        );
    }
    ok(&client.download(&paths));
    assert_eq!(
        server.take().len(),
        2,
        "cached artifacts are not fetched again"
    );

    // The timestamp expires after a day (root after a year): a client three days later
    // fetches the timestamp, finds it expired and fails.
    let later = (Utc::now() + Duration::days(3))
        .format("%Y-%m-%d %H:%M:%S+00:00")
        .to_string();
    let fresh = Client::new(
        &tmp.path().join("c2"),
        server.url("metadata/"),
        server.url("targets/"),
    );
    ok(&fresh.init(&published.join("metadata/1.root.json")));
    let md = fresh.md.to_str().unwrap();
    fails(&fresh.run_with(
        Some(&later),
        &[
            "--metadata-url",
            &fresh.murl,
            "--metadata-dir",
            md,
            "refresh",
        ],
    ));
    assert_eq!(
        server.take(),
        ["/metadata/2.root.json", "/metadata/timestamp.json"]
    );
    // The stored client too (its local timestamp is loaded without expiry checks).
    fails(&client.run_with(
        Some(&later),
        &[
            "--metadata-url",
            &client.murl,
            "--metadata-dir",
            client.md.to_str().unwrap(),
            "refresh",
        ],
    ));
}

fn key() -> PrivateKey {
    PrivateKey::generate(Algorithm::Ed25519).unwrap()
}

fn sign<T: sealwright_tuf::metadata::RoleType>(signed: T, key: &PrivateKey) -> Vec<u8> {
    let mut md = Metadata::new(signed);
    md.sign(key).unwrap();
    md.to_bytes().unwrap()
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn unusual_role_names_are_percent_encoded_in_urls_and_on_disk() {
    const NAMES: [&str; 4] = ["?", "#", "/delegatedrole", "../delegatedrole"];
    let tmp = tempfile::tempdir().unwrap();
    let srv = tmp.path().join("srv");
    let exp = Utc::now() + Duration::days(30);
    let (rk, tk, sk, gk, dk) = (key(), key(), key(), key(), key());
    let mut keys = BTreeMap::new();
    let mut roles = BTreeMap::new();
    for (name, k) in [
        ("root", &rk),
        ("timestamp", &tk),
        ("snapshot", &sk),
        ("targets", &gk),
    ] {
        keys.insert(k.keyid().to_owned(), k.public_key().clone());
        roles.insert(
            name.to_owned(),
            Role::new(vec![k.keyid().to_owned()], 1).unwrap(),
        );
    }
    write(
        &srv.join("metadata/1.root.json"),
        &sign(Root::new(keys, roles, 1, exp), &rk),
    );

    let mut targets = Targets::new(1, exp);
    let mut delegated = Vec::new();
    let mut meta = BTreeMap::from([("targets.json".to_owned(), MetaFile::new(1))]);
    for (i, name) in NAMES.iter().enumerate() {
        delegated.push(
            DelegatedRole::new(
                (*name).to_owned(),
                vec![dk.keyid().to_owned()],
                1,
                false,
                Some(vec![format!("{i}/*")]),
                None,
            )
            .unwrap(),
        );
        let content = format!("target of role {name}\n").into_bytes();
        let sha256 = hex::encode(digest::sha256(&content));
        let hashes = BTreeMap::from([
            ("sha256".to_owned(), sha256.clone()),
            ("sha512".to_owned(), hex::encode(digest::sha512(&content))),
        ]);
        let mut role = Targets::new(1, exp);
        role.targets.insert(
            format!("{i}/f.txt"),
            TargetFile::new(content.len() as u64, hashes),
        );
        // Stored under the decoded name, as a static server would look it up.
        write(
            &srv.join("metadata").join(format!("1.{name}.json")),
            &sign(role, &dk),
        );
        write(&srv.join(format!("targets/{i}/{sha256}.f.txt")), &content);
        meta.insert(format!("{name}.json"), MetaFile::new(1));
    }
    targets.delegations = Some(Delegations::new_roles(
        BTreeMap::from([(dk.keyid().to_owned(), dk.public_key().clone())]),
        delegated,
    ));
    write(&srv.join("metadata/1.targets.json"), &sign(targets, &gk));
    let snapshot = sign(Snapshot::new(1, exp, meta), &sk);
    write(&srv.join("metadata/1.snapshot.json"), &snapshot);
    let mut pin = MetaFile::new(1);
    pin.length = Some(snapshot.len() as u64);
    write(
        &srv.join("metadata/timestamp.json"),
        &sign(Timestamp::new(1, exp, pin), &tk),
    );

    let server = Server::start(&srv);
    let client = Client::new(tmp.path(), server.url("metadata/"), server.url("targets/"));
    ok(&client.init(&srv.join("metadata/1.root.json")));
    ok(&client.refresh());
    server.take();
    let encoded = ["%3F", "%23", "%2Fdelegatedrole", "..%2Fdelegatedrole"];
    for (i, enc) in encoded.iter().enumerate() {
        let path = format!("{i}/f.txt");
        ok(&client.download(&[&path]));
        let reqs = server.take();
        assert_eq!(reqs.len(), 4, "{reqs:?}");
        assert_eq!(reqs[2], format!("/metadata/1.{enc}.json"));
        assert!(client.td.join(sealwright_client::quote(&path)).is_file());
    }
    let mut expected: Vec<String> = encoded.iter().map(|e| format!("{e}.json")).collect();
    expected.extend(
        [
            "root.json",
            "snapshot.json",
            "targets.json",
            "timestamp.json",
        ]
        .map(String::from),
    );
    expected.sort();
    assert_eq!(names(&client.md), expected);
}
