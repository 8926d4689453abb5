//! P5 escrow: the root key split 2-of-3 for custodians whose age identities Debian's
//! `age-keygen` made; each custodian opens their share with the `age` tool alone; any two
//! shares rebuild the key — which then signs a new root that `verify` accepts — and one
//! share, or a share of another escrow, is refused.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::Scratch;

/// A custodian's identity file made by `age-keygen` (apt `age`, installed by scripts/test),
/// and its recipient.
fn custodian(s: &Scratch, name: &str) -> (PathBuf, String) {
    let file = s.path().join(format!("{name}.age-key"));
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(&file)
        .output()
        .expect("age-keygen: run scripts/test (it installs age)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = Command::new("age-keygen")
        .arg("-y")
        .arg(&file)
        .output()
        .unwrap();
    (
        file,
        String::from_utf8(public.stdout).unwrap().trim().to_owned(),
    )
}

#[test]
fn two_of_three_custodians_rebuild_the_root_key_and_one_cannot() {
    let s = Scratch::new();
    let repo = s.repo_arg();
    s.ok(&["init", &repo]);
    let custodians: Vec<(PathBuf, String)> = ["alice", "bob", "carol"]
        .iter()
        .map(|n| custodian(&s, n))
        .collect();
    let out_dir = s.path().join("escrow");
    let mut args = vec![
        "--repo".to_owned(),
        repo.clone(),
        "--json".to_owned(),
        "key".to_owned(),
        "escrow".to_owned(),
        "root-key".to_owned(),
        "--threshold".to_owned(),
        "2".to_owned(),
        "--out-dir".to_owned(),
        out_dir.to_str().unwrap().to_owned(),
    ];
    for (_, recipient) in &custodians {
        args.extend(["--custodian".to_owned(), recipient.clone()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let report: serde_json::Value = serde_json::from_str(&s.ok(&args)).unwrap();
    let shares: Vec<PathBuf> = report["shares"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| PathBuf::from(pair[1].as_str().unwrap()))
        .collect();
    assert_eq!(shares.len(), 3);
    let keyid = sealwright_repo::Policy::load(&s.repo()).unwrap().keys["root-key"]
        .keyid
        .clone();

    // Each custodian reads their share with age alone; no share opens with another's identity.
    let mut plain = Vec::new();
    for (i, (identity, _)) in custodians.iter().enumerate() {
        let out = Command::new("age")
            .arg("-d")
            .arg("-i")
            .arg(identity)
            .arg(&shares[i])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "age -d: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let share: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(share["keyid"], keyid.as_str());
        assert!(!String::from_utf8_lossy(&out.stdout).contains("PRIVATE KEY"));
        let file = s.path().join(format!("share-{i}.json"));
        std::fs::write(&file, &out.stdout).unwrap();
        plain.push(file);
        let other = &custodians[(i + 1) % 3].0;
        let wrong = Command::new("age")
            .arg("-d")
            .arg("-i")
            .arg(other)
            .arg(&shares[i])
            .output()
            .unwrap();
        assert!(!wrong.status.success());
    }

    // The key is lost.
    std::fs::remove_file(s.repo().join("keys/root-key.pem")).unwrap();
    let recover = |files: &[&PathBuf], identities: &[&PathBuf]| {
        let mut args = vec![
            "--repo".to_owned(),
            repo.clone(),
            "--json".to_owned(),
            "key".to_owned(),
            "recover".to_owned(),
        ];
        args.extend(files.iter().map(|f| f.to_str().unwrap().to_owned()));
        for id in identities {
            args.extend(["--identity".to_owned(), id.to_str().unwrap().to_owned()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        s.run(&args)
    };
    // One share is not enough, whoever holds it.
    let one = recover(&[&plain[0]], &[]);
    assert!(!one.status.success());
    assert!(
        String::from_utf8_lossy(&one.stderr).contains("1 share(s) of the 2"),
        "{}",
        String::from_utf8_lossy(&one.stderr)
    );
    assert!(!s.repo().join("keys/root-key.pem").exists());
    // A share of another escrow does not mix in.
    let other_dir = s.path().join("other-escrow");
    s.ok(&[
        "--repo",
        &repo,
        "key",
        "escrow",
        "targets-key",
        "--threshold",
        "2",
        "--out-dir",
        other_dir.to_str().unwrap(),
        "--custodian",
        &custodians[0].1,
        "--custodian",
        &custodians[1].1,
    ]);
    let foreign = other_dir.join("targets-key.share-2-of-2.age");
    let mixed = recover(
        &[&shares[0], &foreign],
        &[&custodians[0].0, &custodians[1].0],
    );
    assert!(!mixed.status.success());
    assert!(
        String::from_utf8_lossy(&mixed.stderr).contains("another escrow"),
        "{}",
        String::from_utf8_lossy(&mixed.stderr)
    );

    // Two custodians: bob's encrypted share with his identity, carol's decrypted one.
    let rebuilt = recover(&[&shares[1], &plain[2]], &[&custodians[1].0]);
    assert!(
        rebuilt.status.success(),
        "{}",
        String::from_utf8_lossy(&rebuilt.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&rebuilt.stdout).unwrap();
    assert_eq!(report["keyid"], keyid.as_str());
    // The rebuilt key signs: rotating the targets key needs a new root, which only the
    // root key can sign; the result verifies.
    s.ok(&["--repo", &repo, "key", "rotate", "targets"]);
    assert!(s.repo().join("published/metadata/2.root.json").exists());
    s.ok(&["--repo", &repo, "verify"]);
    let records = common::audit_records(&s.repo());
    assert!(records.iter().any(|r| r["action"] == "key-escrow"));
    assert!(records.iter().any(|r| r["action"] == "key-recover"));
}
