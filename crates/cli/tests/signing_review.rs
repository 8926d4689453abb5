//! The signing review: `sign` shows the signer what a request changes against the version
//! devices have, flags the risky changes — threshold lowered, keys added or removed, an
//! expiry beyond policy, a delegation widened — and signs flagged changes only when the
//! signer says so. A requester who hides a change by forging the "published" copy in the
//! request is caught by `sign --against` the signer's own copy. `sign-status` lists who
//! has signed and who has not.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::{Path, PathBuf};

use common::Scratch;

/// Writes `request` (after `change`, its digest recomputed as the requesting machine
/// would) to a file.
fn request_file(
    s: &Scratch,
    name: &str,
    request: &str,
    change: impl FnOnce(&mut serde_json::Value),
) -> PathBuf {
    let mut req: serde_json::Value = serde_json::from_str(request).unwrap();
    change(&mut req);
    let canonical = sealwright_crypto::canonical::to_canonical_json(&req["signed"]).unwrap();
    req["signed_sha256"] = sealwright_crypto::digest::sha256_hex(&canonical).into();
    let path = s.path().join(name);
    std::fs::write(&path, req.to_string()).unwrap();
    path
}

fn sign(s: &Scratch, request: &Path, key: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "sign",
        request.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    s.run(&args)
}

#[test]
fn risky_changes_are_flagged_and_signed_only_when_the_signer_accepts_them() {
    let s = Scratch::new();
    let repo = s.repo_arg();
    let root_key = s.init_offline_root();
    // The first root: all new, nothing flagged, signed without ado.
    let first = s.ok(&["--repo", &repo, "sign-request", "root"]);
    let first_path = request_file(&s, "first.json", &first, |_| {});
    let out = sign(&s, &first_path, &root_key, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sig = s.path().join("first.sig");
    std::fs::write(&sig, &out.stdout).unwrap();
    s.ok(&["--repo", &repo, "sign-import", sig.to_str().unwrap()]);
    s.ok(&["--repo", &repo, "publish"]);
    let published_root = s.repo().join("published/metadata/1.root.json");

    // The next root drops the targets threshold and swaps the snapshot key.
    s.ok(&[
        "--repo",
        &repo,
        "key",
        "generate",
        "snapshot-2",
        "--role",
        "snapshot",
    ]);
    let mut policy = sealwright_repo::Policy::load(&s.repo()).unwrap();
    policy
        .roles
        .get_mut("snapshot")
        .unwrap()
        .keys
        .retain(|k| k != "snapshot-key");
    policy.save(&s.repo()).unwrap();
    let status: serde_json::Value =
        serde_json::from_str(&s.ok(&["--repo", &repo, "--json", "sign-status"])).unwrap();
    assert_eq!(status, serde_json::json!([]));
    let request = s.ok(&["--repo", &repo, "sign-request", "root"]);
    let status: serde_json::Value =
        serde_json::from_str(&s.ok(&["--repo", &repo, "--json", "sign-status"])).unwrap();
    assert_eq!(status[0]["role"], "root");
    assert_eq!(status[0]["signed_by"], serde_json::json!([]));
    assert_eq!(status[0]["missing"], serde_json::json!(["root-key"]));

    let path = request_file(&s, "next.json", &request, |_| {});
    let refused = sign(&s, &path, &root_key, &[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success(),
        "flagged changes were signed without asking"
    );
    assert!(
        stderr.contains("[key-added]") && stderr.contains("[key-removed]"),
        "{stderr}"
    );
    assert!(
        stderr.contains("not signed") && refused.stdout.is_empty(),
        "{stderr}"
    );

    // The online machine hides the change: its "published" copy is the new root itself.
    let hidden = request_file(&s, "hidden.json", &request, |req| {
        req["published"] = req["signed"].clone();
    });
    let fooled = sign(&s, &hidden, &root_key, &[]);
    assert!(
        fooled.status.success(),
        "nothing to flag against the forged copy"
    );
    // Against the signer's own copy of what devices have, the change is back.
    let caught = sign(
        &s,
        &hidden,
        &root_key,
        &["--against", published_root.to_str().unwrap()],
    );
    assert!(!caught.status.success());
    assert!(String::from_utf8_lossy(&caught.stderr).contains("[key-removed]"));

    // An expiry far beyond the policy (ten years for a one-year root), lowered threshold.
    let stretched = request_file(&s, "stretched.json", &request, |req| {
        req["signed"]["expires"] = "2036-12-01T00:00:00Z".into();
        req["signed"]["roles"]["root"]["threshold"] = 0.into();
    });
    let refused = sign(&s, &stretched, &root_key, &[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("[expiry-beyond-policy]") && stderr.contains("[threshold-lowered]"),
        "{stderr}"
    );

    // The signer accepts what they read: signed, imported, published.
    let accepted = sign(&s, &path, &root_key, &["--accept-flagged"]);
    assert!(
        accepted.status.success(),
        "{}",
        String::from_utf8_lossy(&accepted.stderr)
    );
    let sig = s.path().join("next.sig");
    std::fs::write(&sig, &accepted.stdout).unwrap();
    s.ok(&["--repo", &repo, "sign-import", sig.to_str().unwrap()]);
    let status: serde_json::Value =
        serde_json::from_str(&s.ok(&["--repo", &repo, "--json", "sign-status"])).unwrap();
    assert_eq!(status[0]["signed_by"], serde_json::json!(["root-key"]));
    assert_eq!(status[0]["missing"], serde_json::json!([]));
    s.ok(&["--repo", &repo, "publish"]);
    s.ok(&["--repo", &repo, "verify"]);

    // A widened delegation in targets is flagged too.
    s.ok(&["--repo", &repo, "delegate", "app", "--paths", "app/*"]);
    s.add_release(&repo, b"first", "other", "1.0.0");
    s.ok(&["--repo", &repo, "publish"]);
    let mut policy = sealwright_repo::Policy::load(&s.repo()).unwrap();
    policy.delegations[0].paths = Some(vec!["app/*".into(), "*".into()]);
    policy.save(&s.repo()).unwrap();
    let request = s.ok(&["--repo", &repo, "sign-request", "targets"]);
    let path = request_file(&s, "targets.json", &request, |_| {});
    let refused = sign(&s, &path, &s.repo().join("keys/targets-key.pem"), &[]);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("[delegation-widened]"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}
