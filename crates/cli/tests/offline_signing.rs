//! The root key never touches the online machine: sign-request / sign / sign-import.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::Scratch;

#[test]
fn offline_root_signing_round_trip() {
    let s = Scratch::new();
    let repo = s.repo_arg();
    let root_key = s.init_offline_root();
    assert!(
        !s.repo().join("keys/root-key.pem").exists(),
        "root key must not stay in the repository"
    );
    // Without the root signature nothing can be published.
    s.fails(&["--repo", &repo, "publish"], "root-key (offline)");

    let request = s.ok(&["--repo", &repo, "sign-request", "root"]);
    let req_path = s.path().join("req.json");
    std::fs::write(&req_path, &request).unwrap();

    // A request altered in transit is refused by the offline signer.
    let mut tampered: serde_json::Value = serde_json::from_str(&request).unwrap();
    tampered["signed"]["roles"]["targets"]["threshold"] = serde_json::json!(0);
    let bad_path = s.path().join("bad.json");
    std::fs::write(&bad_path, tampered.to_string()).unwrap();
    s.fails(
        &[
            "sign",
            &bad_path.display().to_string(),
            "--key",
            &root_key.display().to_string(),
        ],
        "altered",
    );

    let sig = s.ok(&[
        "sign",
        &req_path.display().to_string(),
        "--key",
        &root_key.display().to_string(),
    ]);
    let sig_path = s.path().join("sig.json");
    std::fs::write(&sig_path, &sig).unwrap();

    // A signature by a key that is not a root key is refused on import.
    let wrong = s.ok(&[
        "sign",
        &req_path.display().to_string(),
        "--key",
        &s.repo().join("keys/targets-key.pem").display().to_string(),
    ]);
    let wrong_path = s.path().join("wrong.json");
    std::fs::write(&wrong_path, wrong).unwrap();
    s.fails(
        &[
            "--repo",
            &repo,
            "sign-import",
            &wrong_path.display().to_string(),
        ],
        "not authorised",
    );

    s.ok(&[
        "--repo",
        &repo,
        "sign-import",
        &sig_path.display().to_string(),
    ]);
    s.ok(&["--repo", &repo, "publish"]);
    s.ok(&["--repo", &repo, "verify"]);
    let status: serde_json::Value =
        serde_json::from_str(&s.ok(&["--repo", &repo, "--json", "status"])).unwrap();
    assert_eq!(status["roles"][0]["role"], "root");
    assert_eq!(status["roles"][0]["version"], 1);
}

/// Re-signing before expiry without people waiting on people: a week later, with less than
/// a quarter of its validity left, `status` warns that the offline root is expiring and has
/// prepared the signing request for its next version; the key holder signs it and the new
/// root is published before the old one expires.
#[test]
fn an_expiring_offline_root_gets_its_signing_request_prepared() {
    let s = Scratch::new();
    let repo = s.repo_arg();
    let root_key = s.init_offline_root();
    let mut policy = sealwright_repo::Policy::load(&s.repo()).unwrap();
    policy.roles.get_mut("root").unwrap().expires = sealwright_repo::policy::Period::days(8);
    policy.save(&s.repo()).unwrap();
    let sign_and_publish = |request: &str, faketime: Option<&str>| {
        let req = s.path().join("req.json");
        std::fs::write(&req, request).unwrap();
        // (The offline machine's clock agrees with the requester's.)
        let sig = run_at(
            &s,
            faketime,
            &[
                "sign",
                req.to_str().unwrap(),
                "--key",
                root_key.to_str().unwrap(),
            ],
        );
        let sig_path = s.path().join("sig.json");
        std::fs::write(&sig_path, sig).unwrap();
        run_at(
            &s,
            faketime,
            &["--repo", &repo, "sign-import", sig_path.to_str().unwrap()],
        );
        run_at(&s, faketime, &["--repo", &repo, "publish"]);
    };
    let request = s.ok(&["--repo", &repo, "sign-request", "root"]);
    sign_and_publish(&request, None);
    // Today: far from expiry, nothing prepared.
    let status: serde_json::Value =
        serde_json::from_str(&s.ok(&["--repo", &repo, "--json", "status"])).unwrap();
    assert_eq!(
        status["pending_signatures"],
        serde_json::json!([]),
        "{status}"
    );
    assert!(!s.repo().join("signing-requests/root.json").exists());

    // A week later: a day of eight left.
    let week = Some("+7d");
    let status = common::sealwright(week)
        .args(["--repo", &repo, "--json", "status"])
        .env("SEALWRIGHT_PASSPHRASE_FILE", s.path().join("passphrase"))
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let warnings = status["warnings"].to_string();
    assert!(
        warnings.contains("root expires in") && warnings.contains("signing-requests/root.json"),
        "{warnings}"
    );
    assert_eq!(status["pending_signatures"], serde_json::json!(["root"]));
    let request = std::fs::read_to_string(s.repo().join("signing-requests/root.json")).unwrap();
    let req: serde_json::Value = serde_json::from_str(&request).unwrap();
    assert_eq!(req["version"], 2);
    // The key holder signs; the new root is published in time.
    sign_and_publish(&request, week);
    assert!(s.repo().join("published/metadata/2.root.json").exists());
    let status: serde_json::Value =
        serde_json::from_str(&run_at(&s, week, &["--repo", &repo, "--json", "status"])).unwrap();
    assert!(
        !status["warnings"].to_string().contains("root expires"),
        "{status}"
    );
}

/// `sealwright ARGS` with the clock moved by `faketime` (now without); must succeed.
fn run_at(s: &Scratch, faketime: Option<&str>, args: &[&str]) -> String {
    let out = common::sealwright(faketime)
        .args(args)
        .env("SEALWRIGHT_PASSPHRASE_FILE", s.path().join("passphrase"))
        .env_remove("SEALWRIGHT_REPO")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
