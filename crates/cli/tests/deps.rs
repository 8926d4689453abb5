//! `sealwright deps check` (P9): a corpus of lockfiles with planted problems. For npm, our
//! verdict agrees with lockfile-lint's (`--allowed-hosts npm --validate-https
//! --validate-integrity --validate-package-names`) on every file; for Cargo and Python each
//! planted problem is reported by its kind and a clean lockfile passes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Scratch;

const POLICY: &str = r#"
[cargo]
registries = ["https://github.com/rust-lang/crates.io-index"]
[npm]
registries = ["https://registry.npmjs.org"]
[pypi]
registries = ["https://pypi.org/simple"]
[git]
allow = ["https://github.com/acme/"]
[internal]
names = ["acme-core", "@acme/*"]
registries = ["https://npm.acme.internal", "sparse+https://cargo.acme.internal/"]
"#;

fn npm_lock(name: &str, resolved: &str, integrity: &str) -> String {
    format!(
        r#"{{"name":"web","version":"1.0.0","lockfileVersion":3,"requires":true,"packages":{{"":{{"name":"web","version":"1.0.0","dependencies":{{"{name}":"^1.3.0"}}}},"node_modules/{name}":{{"version":"1.3.0","resolved":"{resolved}","integrity":"{integrity}"}}}}}}"#
    )
}

/// lockfile-lint, installed by scripts/test (npm). Missing, the test fails.
fn lockfile_lint() -> PathBuf {
    let path = std::env::var_os("SEALWRIGHT_LOCKFILE_LINT")
        .map(PathBuf::from)
        .expect(
            "SEALWRIGHT_LOCKFILE_LINT is not set: run scripts/test (it installs lockfile-lint)",
        );
    assert!(
        path.is_file(),
        "{} is missing: run scripts/test",
        path.display()
    );
    path
}

/// Whether we refused `lockfile`, and our findings: (kind, component).
fn ours_in_full(s: &Scratch, policy: &Path, lockfile: &Path) -> (bool, Vec<(String, String)>) {
    let out = s.run(&[
        "--json",
        "deps",
        "check",
        "--policy",
        policy.to_str().unwrap(),
        lockfile.to_str().unwrap(),
    ]);
    let findings: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    let found = findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["finding"].as_str().unwrap().to_owned(),
                f["component"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (!out.status.success(), found)
}

/// Whether we refused `lockfile`, and the kinds of our findings.
fn ours(s: &Scratch, policy: &Path, lockfile: &Path) -> (bool, Vec<String>) {
    let (refused, found) = ours_in_full(s, policy, lockfile);
    (refused, found.into_iter().map(|(kind, _)| kind).collect())
}

#[test]
fn planted_problems_are_found_and_npm_verdicts_agree_with_lockfile_lint() {
    let s = Scratch::new();
    let policy = s.path().join("sealwright-deps.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let tarball = "https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz";
    let npm: [(&str, String, &[&str]); 5] = [
        ("clean", npm_lock("left-pad", tarball, "sha512-XRcglhh3p2lHAu4gFg75i5owZ3/uttIZh11iKj+W2fqc4Iu8OvwIHkDSftaw4gURo0WA2fT2oguwTa4HChLwJw=="), &[]),
        (
            "evil-host",
            npm_lock("left-pad", "https://evil.example.com/left-pad/-/left-pad-1.3.0.tgz", "sha512-XRcglhh3p2lHAu4gFg75i5owZ3/uttIZh11iKj+W2fqc4Iu8OvwIHkDSftaw4gURo0WA2fT2oguwTa4HChLwJw=="),
            &["source-not-allowed"],
        ),
        (
            "plain-http",
            npm_lock("left-pad", "http://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz", "sha512-XRcglhh3p2lHAu4gFg75i5owZ3/uttIZh11iKj+W2fqc4Iu8OvwIHkDSftaw4gURo0WA2fT2oguwTa4HChLwJw=="),
            &["source-not-allowed", "insecure-transport"],
        ),
        ("sha1", npm_lock("left-pad", tarball, "sha1-FsOFpsvXxq0GzWpxlar65JMvzz0="), &["weak-checksum"]),
        (
            "name-mismatch",
            npm_lock("left-pad", "https://registry.npmjs.org/right-pad/-/right-pad-1.3.0.tgz", "sha512-XRcglhh3p2lHAu4gFg75i5owZ3/uttIZh11iKj+W2fqc4Iu8OvwIHkDSftaw4gURo0WA2fT2oguwTa4HChLwJw=="),
            &["resolved-name-mismatch"],
        ),
    ];
    let lint = lockfile_lint();
    for (name, lock, expected) in &npm {
        let dir = s.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("package-lock.json");
        std::fs::write(&file, lock).unwrap();
        let (refused, kinds) = ours(&s, &policy, &file);
        assert_eq!(kinds, *expected, "{name}");
        let theirs = Command::new(&lint)
            .args([
                "--type",
                "npm",
                "--allowed-hosts",
                "npm",
                "--validate-https",
            ])
            .args(["--validate-integrity", "--validate-package-names", "--path"])
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(
            refused,
            !theirs.status.success(),
            "{name}: we say {kinds:?}, lockfile-lint says:\n{}{}",
            String::from_utf8_lossy(&theirs.stdout),
            String::from_utf8_lossy(&theirs.stderr)
        );
    }

    // Internal names: from a public registry is dependency confusion; a look-alike of one
    // is reported; from the internal registry it is fine.
    let confused = s.path().join("confused/package-lock.json");
    std::fs::create_dir_all(confused.parent().unwrap()).unwrap();
    std::fs::write(
        &confused,
        npm_lock("@acme/ui", "https://registry.npmjs.org/@acme/ui/-/ui-1.3.0.tgz", "sha512-XRcglhh3p2lHAu4gFg75i5owZ3/uttIZh11iKj+W2fqc4Iu8OvwIHkDSftaw4gURo0WA2fT2oguwTa4HChLwJw=="),
    )
    .unwrap();
    assert_eq!(ours(&s, &policy, &confused).1, ["dependency-confusion"]);
    std::fs::write(
        &confused,
        npm_lock("@acme/ui", "https://npm.acme.internal/@acme/ui/-/ui-1.3.0.tgz", "sha512-XRcglhh3p2lHAu4gFg75i5owZ3/uttIZh11iKj+W2fqc4Iu8OvwIHkDSftaw4gURo0WA2fT2oguwTa4HChLwJw=="),
    )
    .unwrap();
    assert_eq!(ours(&s, &policy, &confused), (false, vec![]));

    let cargo = s.path().join("Cargo.lock");
    std::fs::write(
        &cargo,
        format!(
            r#"version = 4

[[package]]
name = "app"
version = "0.1.0"

[[package]]
name = "serde"
version = "1.0.228"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "{c}"

[[package]]
name = "nochecksum"
version = "1.0.0"
source = "registry+https://github.com/rust-lang/crates.io-index"

[[package]]
name = "elsewhere"
version = "1.0.0"
source = "registry+https://example.com/other-index"
checksum = "{c}"

[[package]]
name = "unpinned"
version = "1.0.0"
source = "git+https://github.com/acme/unpinned?branch=main#abc123"

[[package]]
name = "strange-git"
version = "1.0.0"
source = "git+https://gitlab.example.com/x/strange#{commit}"

[[package]]
name = "acme-core"
version = "9.9.9"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "{c}"

[[package]]
name = "acme_c0re"
version = "1.0.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "{c}"
"#,
            c = "ab".repeat(32),
            commit = "0123456789abcdef0123456789abcdef01234567"
        ),
    )
    .unwrap();
    let (refused, found) = ours_in_full(&s, &policy, &cargo);
    assert!(refused);
    for (kind, component) in [
        ("missing-checksum", "pkg:cargo/nochecksum@1.0.0"),
        ("source-not-allowed", "pkg:cargo/elsewhere@1.0.0"),
        ("git-unpinned", "pkg:cargo/unpinned@1.0.0"),
        ("git-not-allowed", "pkg:cargo/strange-git@1.0.0"),
        ("dependency-confusion", "pkg:cargo/acme-core@9.9.9"),
        ("mimics-internal-name", "pkg:cargo/acme_c0re@1.0.0"),
    ] {
        assert!(
            found.contains(&(kind.to_owned(), component.to_owned())),
            "{kind} {component} not in {found:?}"
        );
    }
    assert!(
        !found
            .iter()
            .any(|(_, c)| c.contains("serde") || c.contains("/app@")),
        "a clean crate or the workspace was flagged: {found:?}"
    );

    let req = s.path().join("requirements.txt");
    std::fs::write(
        &req,
        "idna==3.10 --hash=sha256:946d195a0d259cbba61165e88e65941f16e9b36ea6ddb97f00452bae8b1287d3\nrequests==2.32.3\n",
    )
    .unwrap();
    let (refused, kinds) = ours(&s, &policy, &req);
    assert!(refused);
    assert_eq!(kinds, ["missing-checksum"]);
}
