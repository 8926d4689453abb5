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
    let root_key = s.path().join("offline-root.pem");
    s.ok(&[
        "init",
        &repo,
        "--offline-root-key",
        &root_key.display().to_string(),
    ]);
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
