//! Bad input gets one clear error line, exit status 1, and publishes nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{tree_fingerprint, Scratch};

/// A published repository with one release and a staged second one.
fn repo_with_staged_change() -> (Scratch, String, String) {
    let s = Scratch::new();
    let repo = s.repo_arg();
    s.ok(&["init", &repo]);
    let file = s.path().join("app.bin");
    std::fs::write(&file, b"v1").unwrap();
    let file = file.display().to_string();
    s.ok(&[
        "--repo",
        &repo,
        "add",
        &file,
        "--name",
        "app",
        "--version",
        "1.0.0",
    ]);
    s.ok(&["--repo", &repo, "publish"]);
    let file2 = s.path().join("app2.bin");
    std::fs::write(&file2, b"v2").unwrap();
    s.ok(&[
        "--repo",
        &repo,
        "add",
        &file2.display().to_string(),
        "--name",
        "app",
        "--version",
        "1.1.0",
    ]);
    (s, repo, file)
}

fn assert_publish_refused(s: &Scratch, repo: &str, needle: &str) {
    let before = tree_fingerprint(&s.repo().join("published"));
    s.fails(&["--repo", repo, "publish"], needle);
    assert_eq!(
        before,
        tree_fingerprint(&s.repo().join("published")),
        "published tree changed after a refused publish"
    );
}

#[test]
fn corrupt_key_file() {
    let (s, repo, _) = repo_with_staged_change();
    std::fs::write(
        s.repo().join("keys/targets-key.pem"),
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
    )
    .unwrap();
    assert_publish_refused(&s, &repo, "targets-key.pem");
}

#[test]
fn key_file_readable_by_others_is_refused_with_the_chmod_that_fixes_it() {
    use std::os::unix::fs::PermissionsExt;
    let (s, repo, _) = repo_with_staged_change();
    let key = s.repo().join("keys/targets-key.pem");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600,
        "keys are created 0600"
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_publish_refused(&s, &repo, &format!("chmod 600 {}", key.display()));
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    s.ok(&["--repo", &repo, "publish"]);
}

#[test]
fn wrong_passphrase() {
    let (s, repo, _) = repo_with_staged_change();
    std::fs::write(s.path().join("passphrase"), "not the passphrase").unwrap();
    assert_publish_refused(&s, &repo, "wrong passphrase");
}

#[test]
fn duplicate_target() {
    let (s, repo, file) = repo_with_staged_change();
    // Already published.
    s.fails(
        &[
            "--repo",
            &repo,
            "add",
            &file,
            "--name",
            "app",
            "--version",
            "1.0.0",
        ],
        "duplicate target",
    );
    // Already staged.
    let again = s.path().join("app2.bin").display().to_string();
    s.fails(
        &[
            "--repo",
            &repo,
            "add",
            &again,
            "--name",
            "app",
            "--version",
            "1.1.0",
        ],
        "duplicate target",
    );
    // Twice in one command.
    s.fails(
        &[
            "--repo",
            &repo,
            "add",
            &file,
            &file,
            "--name",
            "app",
            "--version",
            "9.0.0",
        ],
        "duplicate target",
    );
}

#[test]
fn hostile_paths() {
    let (s, repo, file) = repo_with_staged_change();
    s.fails(
        &[
            "--repo",
            &repo,
            "add",
            &file,
            "--name",
            "..",
            "--version",
            "1.0.0",
        ],
        "..",
    );
    s.fails(
        &[
            "--repo",
            &repo,
            "add",
            &file,
            "--name",
            "../etc",
            "--version",
            "1.0.0",
        ],
        "../etc",
    );
    s.fails(
        &[
            "--repo",
            &repo,
            "add",
            &file,
            "--name",
            "app",
            "--version",
            "1.0.0/../../x",
        ],
        "not semantic",
    );
    let tree = s.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", tree.join("passwd")).unwrap();
    s.fails(
        &[
            "--repo",
            &repo,
            "add",
            &tree.display().to_string(),
            "--name",
            "app",
            "--version",
            "3.0.0",
        ],
        "symbolic links",
    );
    let staged = std::fs::read_to_string(s.repo().join("staged/targets.json")).unwrap();
    assert!(
        !staged.contains("passwd") && !staged.contains(".."),
        "hostile input reached the staging index"
    );
}

#[test]
fn expired_policy_values() {
    for bad in ["0d", "-5d", "99999d", "tomorrow"] {
        let (s, repo, _) = repo_with_staged_change();
        let policy = s.repo().join("sealwright.toml");
        let text = std::fs::read_to_string(&policy).unwrap();
        let edited = text.replacen("expires = \"1d\"", &format!("expires = \"{bad}\""), 1);
        assert_ne!(text, edited, "policy has no 1d expiry to edit");
        std::fs::write(&policy, edited).unwrap();
        assert_publish_refused(&s, &repo, "sealwright.toml");
    }
}

#[test]
fn missing_threshold_of_keys() {
    let (s, repo, _) = repo_with_staged_change();
    // Make targets need 2 signatures; the second key is offline (public half only).
    let other = Scratch::new();
    other.ok(&["init", &other.repo_arg()]);
    let pem = other.repo().join("keys/targets-key.pem");
    let public = std::process::Command::new("openssl")
        .args([
            "pkey",
            "-in",
            pem.to_str().unwrap(),
            "-passin",
            &format!("pass:{}", common::PASSPHRASE),
            "-pubout",
        ])
        .output()
        .expect("openssl must be installed (scripts/test installs it)");
    assert!(public.status.success());
    let pubfile = s.path().join("second.pub.pem");
    std::fs::write(&pubfile, public.stdout).unwrap();
    s.ok(&[
        "--repo",
        &repo,
        "key",
        "import",
        &pubfile.display().to_string(),
        "--name",
        "targets-2",
        "--role",
        "targets",
    ]);
    let policy = s.repo().join("sealwright.toml");
    let text = std::fs::read_to_string(&policy).unwrap();
    let marker = "[roles.targets]\nthreshold = 1";
    assert!(text.contains(marker), "{text}");
    std::fs::write(
        &policy,
        text.replace(marker, "[roles.targets]\nthreshold = 2"),
    )
    .unwrap();
    assert_publish_refused(&s, &repo, "targets-2 (offline)");
}

#[test]
fn not_a_repository_and_missing_files() {
    let s = Scratch::new();
    let nowhere = s.path().join("nowhere").display().to_string();
    s.fails(
        &["--repo", &nowhere, "status"],
        "not a Sealwright repository",
    );
    s.ok(&["init", &s.repo_arg()]);
    s.fails(
        &[
            "--repo",
            &s.repo_arg(),
            "add",
            "/no/such/file",
            "--name",
            "a",
            "--version",
            "1.0.0",
        ],
        "/no/such/file",
    );
    s.fails(&["init", &s.repo_arg()], "not empty");
}

#[test]
fn hostile_path_in_a_tampered_staged_index_is_refused() {
    // publish re-checks every staged path before it becomes a file name under published/.
    let s = Scratch::new();
    let repo = s.repo_arg();
    s.ok(&["init", &repo]);
    let file = s.path().join("a.bin");
    std::fs::write(&file, b"x").unwrap();
    s.ok(&[
        "--repo",
        &repo,
        "add",
        &file.display().to_string(),
        "--name",
        "app",
        "--version",
        "1.0.0",
    ]);
    // Rewrite the staged index so the path escapes, as a tampered index would.
    let index = s.repo().join("staged/targets.json");
    let text = std::fs::read_to_string(&index).unwrap();
    std::fs::write(&index, text.replace("app/1.0.0/a.bin", "app/../../escape")).unwrap();
    let before = tree_fingerprint(&s.repo().join("published"));
    s.fails(&["--repo", &repo, "publish"], "..");
    assert_eq!(before, tree_fingerprint(&s.repo().join("published")));
}

/// A target that no client would reach where it is added — shadowed by an earlier
/// delegation that lists the same path — is refused by `publish`, which asks the client's
/// own trust engine before signing the snapshot.
#[test]
fn publish_refuses_a_target_no_client_would_reach() {
    let s = Scratch::new();
    let repo = s.repo_arg();
    s.ok(&["init", &repo]);
    for role in ["first", "second"] {
        s.ok(&["--repo", &repo, "delegate", role, "--paths", "app/*/*"]);
    }
    s.ok(&["--repo", &repo, "publish"]);
    let add = |content: &[u8], role: &str| {
        let file = s.path().join("app.bin");
        std::fs::write(&file, content).unwrap();
        s.ok(&[
            "--repo",
            &repo,
            "add",
            file.to_str().unwrap(),
            "--name",
            "app",
            "--version",
            "1.0.0",
            "--delegation",
            role,
        ]);
    };
    add(b"from first", "first");
    s.ok(&["--repo", &repo, "publish"]);
    // The same path in the second role: every client finds the first role's entry first.
    add(b"from second", "second");
    assert_publish_refused(&s, &repo, "would never be installed");
}

/// `publish` with nothing staged and nothing near expiry says so, exits 0 and signs nothing.
#[test]
fn publish_with_nothing_to_do_signs_nothing() {
    let s = Scratch::new();
    let repo = s.repo_arg();
    s.ok(&["init", &repo]);
    let before = tree_fingerprint(&s.repo().join("published"));
    let out = s.ok(&["--repo", &repo, "publish"]);
    assert!(out.contains("nothing to publish"), "{out}");
    assert_eq!(before, tree_fingerprint(&s.repo().join("published")));
    let json: serde_json::Value =
        serde_json::from_str(&s.ok(&["--repo", &repo, "--json", "publish"])).unwrap();
    assert_eq!(json["nothing_to_publish"], true);
}

/// No error line says its cause twice.
#[test]
fn errors_name_their_cause_once() {
    let (s, repo, _) = repo_with_staged_change();
    let err = s.fails(
        &[
            "--repo",
            &repo,
            "add",
            "/nonexistent/file",
            "--name",
            "app",
            "--version",
            "9.0.0",
        ],
        "/nonexistent/file",
    );
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    std::fs::write(s.path().join("passphrase"), "not the passphrase").unwrap();
    let err = s.fails(&["--repo", &repo, "publish"], "wrong passphrase");
    assert_eq!(err.matches("wrong passphrase").count(), 1, "{err}");
}

/// `serve` on the wrong directory says what it is and what to pass instead.
#[test]
fn serve_names_the_directory_to_pass_instead() {
    let s = Scratch::new();
    let repo = s.repo_arg();
    s.ok(&["init", &repo]);
    let serve = |dir: &str, needle: &str| {
        s.fails(
            &[
                "--repo",
                dir,
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--dev-cert-out",
                "/dev/null",
            ],
            needle,
        );
    };
    let published = format!("{repo}/published");
    serve(&published, &format!("is a published tree, not a repository: pass the directory that holds it and sealwright.toml (--repo {repo})"));
    let empty = s.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    serve(empty.to_str().unwrap(), "is not a Sealwright repository");
    serve(s.path().join("missing").to_str().unwrap(), "does not exist");
}

/// `init` on a terminal asks one passphrase for the four keys, confirmed (run under
/// `script`, which gives it a terminal); without a way to ask, it refuses before creating
/// anything.
#[test]
fn init_asks_one_passphrase_and_leaves_nothing_when_it_cannot() {
    let s = Scratch::new();
    let repo = s.path().join("interactive");
    let out = std::process::Command::new("script")
        .args(["-qec"])
        .arg(format!(
            "{} init {}",
            env!("CARGO_BIN_EXE_sealwright"),
            repo.display()
        ))
        .arg("/dev/null")
        .env_remove("SEALWRIGHT_PASSPHRASE_FILE")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(b"hunter2\nhunter2\n")?;
            child.wait_with_output()
        })
        .expect("run init under script (util-linux)");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert_eq!(screen.matches("New passphrase").count(), 1, "{screen}");
    assert_eq!(screen.matches("Repeat it").count(), 1, "{screen}");
    // Every key opens with that one passphrase.
    std::fs::write(s.path().join("passphrase"), "hunter2").unwrap();
    s.add_release(repo.to_str().unwrap(), b"x", "app", "1.0.0");
    s.ok(&["--repo", repo.to_str().unwrap(), "publish"]);

    // No terminal and no passphrase source: refused, and nothing is created.
    let none = s.path().join("never");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sealwright"))
        .args(["init", none.to_str().unwrap()])
        .env_remove("SEALWRIGHT_PASSPHRASE_FILE")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!none.exists(), "init left {}", none.display());
    let leftovers: Vec<_> = std::fs::read_dir(s.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("sealwright-init"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// A "root" larger than any root the trust engine accepts is refused at that limit while
/// it is read, never read whole (a device file or a huge download would exhaust memory):
/// `client init` and `verify-release` say so.
#[test]
fn an_oversized_trusted_root_is_refused_at_the_size_limit() {
    let s = Scratch::new();
    let device = s.path().join("device");
    let artifact = s.path().join("artifact");
    std::fs::write(&artifact, b"x").unwrap();
    let huge = s.path().join("root.json");
    let mut text = String::from("{\"signatures\": [], \"signed\": {\"padding\": \"");
    text.push_str(&"a".repeat(1024 * 1024));
    text.push_str("\"}}");
    std::fs::write(&huge, text).unwrap();
    let root = huge.to_str().unwrap();
    for args in [
        vec![
            "client",
            "init",
            "--dir",
            device.to_str().unwrap(),
            "--root",
            root,
            "--url",
            "https://updates.invalid/",
            "--name",
            "app",
        ],
        vec![
            "verify-release",
            "--root",
            root,
            "--evidence",
            "/dev/null",
            artifact.to_str().unwrap(),
        ],
    ] {
        let out = s.run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        // Refused while reading the file (it names the file), not after reading it whole.
        assert!(
            stderr.contains(&format!("{root} is larger than the")),
            "{args:?}: {stderr}"
        );
    }
}
