//! P5: `key audit` reports every planted problem in a test repository — with its severity —
//! and nothing in a clean one; its exit status follows `--fail-on`; `publish` refuses to
//! break `[key_policy]`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::Scratch;

fn audit(s: &Scratch, fail_on: &str) -> (bool, Vec<(String, String, String)>) {
    audit_with(s, fail_on, &[])
}

/// `key audit --fail-on FAIL_ON EXTRA…`: whether it passed, and (severity, finding, key or
/// role) of each finding.
fn audit_with(s: &Scratch, fail_on: &str, extra: &[&str]) -> (bool, Vec<(String, String, String)>) {
    let repo = s.repo_arg();
    let mut args = vec![
        "--repo",
        &repo,
        "--json",
        "key",
        "audit",
        "--fail-on",
        fail_on,
    ];
    args.extend_from_slice(extra);
    let out = s.run(&args);
    let findings: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    let found = findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["severity"].as_str().unwrap().to_owned(),
                f["finding"].as_str().unwrap().to_owned(),
                f["key"]
                    .as_str()
                    .or(f["role"].as_str())
                    .unwrap_or("")
                    .to_owned(),
            )
        })
        .collect();
    (out.status.success(), found)
}

fn edit_policy(s: &Scratch, change: impl FnOnce(&mut sealwright_repo::Policy)) {
    let mut policy = sealwright_repo::Policy::load(&s.repo()).unwrap();
    change(&mut policy);
    policy.save(&s.repo()).unwrap();
}

#[test]
fn key_audit_reports_each_planted_problem_and_nothing_in_a_clean_repository() {
    let s = Scratch::new();
    let repo = s.repo_arg();
    s.ok(&["init", &repo]);
    // Clean: root and targets need two keys each, Ed25519 only, keys younger than a year.
    s.ok(&[
        "--repo",
        &repo,
        "key",
        "generate",
        "root-key-b",
        "--role",
        "root",
    ]);
    s.ok(&[
        "--repo",
        &repo,
        "key",
        "generate",
        "targets-key-b",
        "--role",
        "targets",
    ]);
    edit_policy(&s, |p| {
        p.roles.get_mut("root").unwrap().threshold = 2;
        p.roles.get_mut("targets").unwrap().threshold = 2;
        p.key_policy = Some(sealwright_repo::policy::KeyPolicy {
            algorithms: vec!["ed25519".into()],
            max_age: Some(sealwright_repo::policy::Period::days(365)),
            hardware: vec![],
            distinct_product_keys: true,
        });
    });
    s.ok(&["--repo", &repo, "publish"]);
    assert_eq!(
        audit(&s, "info"),
        (true, vec![]),
        "a clean repository has findings"
    );

    // Planted, one by one.
    let weak = s.path().join("weak.pem");
    let out = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&weak)
        .output()
        .unwrap();
    assert!(out.status.success());
    s.ok(&[
        "--repo",
        &repo,
        "key",
        "import",
        weak.to_str().unwrap(),
        "--name",
        "weak-rsa",
    ]);
    s.ok(&["--repo", &repo, "key", "generate", "spare"]);
    s.ok(&[
        "--repo", &repo, "delegate", "app", "--paths", "app/*", "--key", "spare",
    ]);
    s.ok(&[
        "--repo", &repo, "delegate", "tools", "--paths", "tools/*", "--key", "spare",
    ]);
    s.ok(&["--repo", &repo, "key", "generate", "unused"]);
    edit_policy(&s, |p| {
        p.keys.get_mut("targets-key-b").unwrap().created = Some("2020-01-01T00:00:00Z".into());
        p.roles
            .get_mut("timestamp")
            .unwrap()
            .keys
            .push("root-key-b".into());
        p.roles.get_mut("targets").unwrap().threshold = 1;
        p.roles
            .get_mut("targets")
            .unwrap()
            .keys
            .push("weak-rsa".into());
        p.key_policy.as_mut().unwrap().hardware = vec!["root".into()];
    });
    std::fs::set_permissions(
        s.repo().join("keys/snapshot-key.pem"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();

    let (passed, found) = audit(&s, "high");
    assert!(!passed, "high findings must fail --fail-on high");
    for expected in [
        ("medium", "weak-key", "weak-rsa"),
        ("high", "algorithm-not-allowed", "weak-rsa"),
        ("high", "rotation-overdue", "targets-key-b"),
        ("low", "unused-key", "unused"),
        ("high", "shared-key", "root-key-b"),
        ("high", "shared-across-product-lines", "spare"),
        ("medium", "single-signer", "targets"),
        ("medium", "single-signer", "app"),
        ("high", "key-file-exposed", "snapshot-key"),
        ("high", "hardware-required", "root"),
    ] {
        let expected = (
            expected.0.to_owned(),
            expected.1.to_owned(),
            expected.2.to_owned(),
        );
        assert!(found.contains(&expected), "{expected:?} not in {found:#?}");
    }
    // Nothing about what was not planted.
    assert!(
        !found
            .iter()
            .any(|f| f.2 == "targets-key" || f.2 == "root-key"),
        "{found:#?}"
    );
    // Nothing critical was planted: --fail-on critical passes.
    assert!(audit(&s, "critical").0);

    // publish refuses what [key_policy] forbids, naming each rule broken.
    let refused = s.run(&["--repo", &repo, "publish"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    for rule in [
        "[key_policy] algorithms",
        "hardware names it",
        "distinct_product_keys",
    ] {
        assert!(stderr.contains(rule), "{rule}: {stderr}");
    }
}

/// `key audit --log`: every root, targets and delegated role file the repository publishes
/// is in the server's transparency log; a targets version published around the server is
/// reported against the key that signed it; a log key that did not sign the checkpoint is
/// refused, not trusted.
#[test]
fn key_audit_reports_keys_that_signed_what_the_log_does_not_hold() {
    let s = Scratch::new();
    let (dir, port, token) = common::init_and_set_up_server(&s);
    let url = format!("https://127.0.0.1:{port}");
    let cert = dir.join("tls/cert.pem");
    let _services = common::start_services(&dir, port);
    s.add_release(&s.repo_arg(), b"one", "app", "1.0.0");
    s.push_to(&url, &token, &cert);
    let vkey = s.ok(&["--repo", dir.join("server").to_str().unwrap(), "log", "key"]);
    let log_url = format!("{url}/log/");
    let against = [
        "--log",
        log_url.as_str(),
        "--log-key",
        vkey.trim(),
        "--ca",
        cert.to_str().unwrap(),
    ];
    let not_logged = |found: &[(String, String, String)]| -> Vec<String> {
        found
            .iter()
            .filter(|(_, finding, _)| finding == "signed-not-logged")
            .map(|(_, _, key)| key.clone())
            .collect()
    };
    let (_, found) = audit_with(&s, "critical", &against);
    assert!(not_logged(&found).is_empty(), "{found:?}");

    // A release published here and never pushed: its targets file is signed by the
    // targets key and served by nobody's log.
    s.add_release(&s.repo_arg(), b"two", "app", "1.1.0");
    s.ok(&["--repo", &s.repo_arg(), "publish"]);
    let (passed, found) = audit_with(&s, "high", &against);
    assert_eq!(not_logged(&found), ["targets-key"], "{found:?}");
    assert!(found.contains(&(
        "high".into(),
        "signed-not-logged".into(),
        "targets-key".into()
    )));
    assert!(!passed, "a high finding must fail --fail-on high");

    // A log key that did not sign the served checkpoint is refused.
    use sealwright_tlog::note::NoteSigner as _;
    let stranger = sealwright_tlog::note::Ed25519NoteKey::from_seed(
        sealwright_tlog::Verifier::from_vkey(vkey.trim())
            .unwrap()
            .name(),
        sealwright_tlog::note::KeyKind::Ed25519,
        &[7; 32],
    )
    .unwrap()
    .verifier()
    .vkey();
    let out = s.run(&[
        "--repo",
        &s.repo_arg(),
        "key",
        "audit",
        "--log",
        &log_url,
        "--log-key",
        &stranger,
        "--ca",
        cert.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not signed by --log-key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
