//! `sealwright build` (P6): a small C project built twice — from two clones in different
//! directories, at different times — gives the same bytes (SOURCE_DATE_EPOCH from the
//! commit; the compiler's __DATE__ follows it), and its signed provenance is accepted by
//! securesystemslib and in-toto-attestation and by `verify-provenance`; the build runs in
//! bubblewrap (a write outside the source fails it); a failed build signs nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::Path;
use std::process::Command;

use common::Scratch;

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// securesystemslib's and in-toto-attestation's verdict on `envelope` over `artifact` with
/// `key` (tests/interop/dsse_verify.py); they must accept it. Their JSON report.
fn dsse_verify(envelope: &Path, artifact: &Path, key: &Path) -> serde_json::Value {
    let (python, interop) = common::python();
    serde_json::from_str(&run_ok(
        Command::new(&python)
            .arg(interop.join("dsse_verify.py"))
            .arg(envelope)
            .arg(artifact)
            .arg(key),
    ))
    .unwrap()
}

/// An Ed25519 key pair made by OpenSSL: the private key (PKCS#8 PEM) and its public key.
fn keypair(s: &Scratch, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let key = s.path().join(format!("{name}.pem"));
    let public = s.path().join(format!("{name}.pub.pem"));
    run_ok(
        Command::new("openssl")
            .args(["genpkey", "-algorithm", "ed25519", "-out"])
            .arg(&key),
    );
    run_ok(
        Command::new("openssl")
            .arg("pkey")
            .arg("-in")
            .arg(&key)
            .arg("-pubout")
            .arg("-out")
            .arg(&public),
    );
    (key, public)
}

/// `sealwright build` of NAME VERSION's product `output` from `source` into `out`, signed
/// with `key`; the caller adds options, then `--` and the command.
fn build_args(
    name: &str,
    version: &str,
    output: &str,
    key: &Path,
    source: &Path,
    out: &Path,
) -> Vec<String> {
    [
        "build",
        "--name",
        name,
        "--version",
        version,
        "--output",
        output,
        "--key",
        key.to_str().unwrap(),
        "--source",
        source.to_str().unwrap(),
        "--out-dir",
        out.to_str().unwrap(),
    ]
    .map(str::to_owned)
    .to_vec()
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Commits `files` of `dir` into a new git repository, at a fixed date.
fn commit_all(dir: &Path, files: &[&str]) {
    let git = |args: &[&str]| {
        run_ok(
            Command::new("git")
                .arg("-C")
                .arg(dir)
                .args(args)
                .env("GIT_AUTHOR_DATE", "2026-01-02T03:04:05Z")
                .env("GIT_COMMITTER_DATE", "2026-01-02T03:04:05Z")
                .env("GIT_AUTHOR_NAME", "t")
                .env("GIT_AUTHOR_EMAIL", "t@example.com")
                .env("GIT_COMMITTER_NAME", "t")
                .env("GIT_COMMITTER_EMAIL", "t@example.com"),
        )
    };
    git(&["init", "-q"]);
    let mut add = vec!["add"];
    add.extend_from_slice(files);
    git(&add);
    git(&["commit", "-q", "-m", "release"]);
}

/// Stages `artifact` as hello VERSION with its entry linking `provenance` (staged beside
/// it) through the library, past every check `stage-build` makes: what a publisher who can
/// stage but is not the builder (or skips the reproductions) can do.
fn stage_linking_provenance(s: &Scratch, version: &str, artifact: &Path, provenance: &Path) {
    let release = sealwright_repo::staging::Release::new("hello", version, None)
        .unwrap()
        .with_evidence(
            [(
                "provenance".to_owned(),
                sealwright_repo::staging::EvidenceFile {
                    path: format!("hello/{version}/provenance.intoto.json"),
                    sha256: sealwright_crypto::digest::sha256_hex(
                        &std::fs::read(provenance).unwrap(),
                    ),
                },
            )]
            .into(),
        );
    let policy = sealwright_repo::Policy::load(&s.repo()).unwrap();
    sealwright_repo::staging::add_artifacts(
        &s.repo(),
        &policy,
        "targets",
        &[artifact.to_path_buf(), provenance.to_path_buf()],
        &release,
        &|_| {},
    )
    .unwrap();
}

/// A git repository with a C program that prints its build date.
fn project(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("hello.c"),
        "#include <stdio.h>\nint main(void) { printf(\"hello, built %s %s\\n\", __DATE__, __TIME__); return 0; }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("Makefile"),
        "hello: hello.c\n\tcc -O2 -o hello hello.c\n",
    )
    .unwrap();
    commit_all(dir, &["hello.c", "Makefile"]);
}

#[test]
fn a_reproducible_build_with_verifiable_provenance_and_a_failed_one_signs_nothing() {
    let s = Scratch::new();
    let (key, public) = keypair(&s, "builder");
    let first = s.path().join("a/src");
    project(&first);
    let second = s.path().join("elsewhere/deeper/src");
    run_ok(
        Command::new("git")
            .arg("clone")
            .arg("-q")
            .arg(&first)
            .arg(&second),
    );

    let build = |source: &Path, out: &Path, command: &[&str]| {
        let mut args = vec!["--json".to_owned()];
        args.extend(build_args("hello", "1.0.0", "hello", &key, source, out));
        args.push("--".to_owned());
        args.extend(command.iter().map(|c| (*c).to_owned()));
        s.run(&strs(&args))
    };
    let out1 = s.path().join("out1");
    let made = build(&first, &out1, &["make", "hello"]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&made.stdout).unwrap();
    assert_eq!(
        report["sandbox"], "bubblewrap",
        "scripts/test installs bubblewrap"
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out2 = s.path().join("out2");
    let again = build(&second, &out2, &["make", "hello"]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let product = std::fs::read(out1.join("hello")).unwrap();
    assert_eq!(
        product,
        std::fs::read(out2.join("hello")).unwrap(),
        "not reproducible"
    );
    let ran = run_ok(&mut Command::new(out1.join("hello")));
    assert!(ran.contains("Jan  2 2026 03:04:05"), "{ran}");

    // Other people's verifiers accept the provenance, over the product.
    let verdict = dsse_verify(
        &out1.join("provenance.intoto.json"),
        &out1.join("hello"),
        &public,
    );
    assert_eq!(verdict["builder"], "https://sealwright.dev/builders/local");
    // Sigstore's own verifier accepts the keyed bundle of the same envelope.
    let der = s.path().join("builder.spki.der");
    run_ok(
        Command::new("openssl")
            .arg("pkey")
            .arg("-pubin")
            .arg("-in")
            .arg(&public)
            .args(["-outform", "DER", "-out"])
            .arg(&der),
    );
    let (_, interop) = common::python();
    let modules = std::env::var_os("SEALWRIGHT_NODE_MODULES").expect(
        "SEALWRIGHT_NODE_MODULES is not set: run scripts/test (it installs @sigstore/verify)",
    );
    let sigstore = |bundle: &Path| {
        Command::new("node")
            .arg(interop.join("sigstore_verify.js"))
            .arg(bundle)
            .arg(&der)
            .env("NODE_PATH", &modules)
            .output()
            .unwrap()
    };
    let verified = sigstore(&out1.join("provenance.sigstore.json"));
    assert!(
        verified.status.success() && String::from_utf8_lossy(&verified.stdout).contains("OK"),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    let mut tampered: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out1.join("provenance.sigstore.json")).unwrap())
            .unwrap();
    tampered["dsseEnvelope"]["payloadType"] = "application/json".into();
    let tampered_path = s.path().join("tampered.sigstore.json");
    std::fs::write(&tampered_path, serde_json::to_vec(&tampered).unwrap()).unwrap();
    assert!(!sigstore(&tampered_path).status.success());
    // So does ours; and it names the commit, the clean environment and the sandbox.
    let ok = s.ok(&[
        "verify-provenance",
        "--key",
        public.to_str().unwrap(),
        out1.join("provenance.intoto.json").to_str().unwrap(),
        out1.join("hello").to_str().unwrap(),
    ]);
    let head = run_ok(
        Command::new("git")
            .arg("-C")
            .arg(&first)
            .args(["rev-parse", "HEAD"]),
    );
    assert!(ok.contains(head.trim()), "{ok}");
    let envelope = sealwright_attest::dsse::Envelope::parse(
        &std::fs::read(out1.join("provenance.intoto.json")).unwrap(),
    )
    .unwrap();
    let statement: serde_json::Value = serde_json::from_slice(&envelope.payload).unwrap();
    let internal = &statement["predicate"]["buildDefinition"]["internalParameters"];
    assert_eq!(internal["environment"]["SOURCE_DATE_EPOCH"], "1767323045");
    assert_eq!(internal["sandbox"], "bubblewrap");
    assert!(internal["toolchain"]["make"]
        .as_str()
        .unwrap()
        .contains("Make"));
    assert!(out1.join("build.log").is_file());
    // Both SBOMs of the build pass the other side's strict validators.
    for (kind, file) in [("cyclonedx", "sbom.cdx.json"), ("spdx", "sbom.spdx.json")] {
        common::sbom_validate(kind, &out1.join(file));
    }
    // Other bytes are not what was built.
    let other = s.path().join("other");
    std::fs::write(&other, b"not the product").unwrap();
    assert!(!s
        .run(&[
            "verify-provenance",
            "--key",
            public.to_str().unwrap(),
            out1.join("provenance.intoto.json").to_str().unwrap(),
            other.to_str().unwrap(),
        ])
        .status
        .success());

    // A failed build — here, one that tries to write outside its source, which the sandbox
    // forbids — signs nothing and says why.
    let out3 = s.path().join("out3");
    let failed = build(
        &first,
        &out3,
        &[
            "sh",
            "-c",
            "touch /etc/sealwright-build-escape && make hello",
        ],
    );
    assert!(!failed.status.success());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("nothing was signed") && stderr.contains("Read-only"),
        "{stderr}"
    );
    assert!(!out3.join("provenance.intoto.json").exists());
    assert!(!Path::new("/etc/sealwright-build-escape").exists());

    // With a dependency policy in the source, a lockfile it refuses stops the build before
    // anything runs.
    std::fs::write(
        first.join("sealwright-deps.toml"),
        "[pypi]\nregistries = [\"https://pypi.org/simple\"]\n",
    )
    .unwrap();
    std::fs::write(first.join("requirements.txt"), "requests==2.32.3\n").unwrap();
    let out4 = s.path().join("out4");
    let refused = build(&first, &out4, &["make", "hello"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("dependency policy") && stderr.contains("pkg:pypi/requests@2.32.3"),
        "{stderr}"
    );
    assert!(!out4.join("provenance.intoto.json").exists() && !out4.join("build.log").exists());
}

/// C7: a device that requires provenance from a builder installs a release `build --stage`
/// published, and refuses one with no provenance, one whose provenance another builder
/// signed, and one whose (genuine) provenance is about other bytes.
#[test]
fn a_device_requiring_provenance_installs_only_what_a_trusted_builder_built() {
    let s = Scratch::new();
    let repo = s.repo_arg();
    s.ok(&["init", &repo]);
    let (key, public) = keypair(&s, "builder");
    let (_, stranger) = keypair(&s, "stranger");
    let source = s.path().join("src");
    project(&source);
    let build = |version: &str, out: &Path, stage: bool| {
        let mut args = vec!["--repo".to_owned(), repo.clone()];
        args.extend(build_args("hello", version, "hello", &key, &source, out));
        if stage {
            args.push("--stage".to_owned());
        }
        args.extend(["--", "make", "hello"].map(str::to_owned));
        s.ok(&strs(&args));
    };
    let root = s.repo().join("published/metadata/1.root.json");
    let device = |name: &str, builder: &Path| {
        s.device(
            name,
            &root,
            "hello",
            &["--builder-key", builder.to_str().unwrap()],
        )
    };
    let bundle = |n: &str| s.bundle("hello", &s.path().join(format!("{n}.bundle")));
    let update = |dir: &Path, bundle: &Path| s.update_from(dir, bundle);

    build("1.0.0", &s.path().join("out-1.0.0"), true);
    s.ok(&["--repo", &repo, "publish"]);
    let trusting = device("trusting", &public);
    let suspicious = device("suspicious", &stranger);
    let b1 = bundle("1.0.0");
    let out = update(&trusting, &b1);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["version"], "1.0.0");
    let out = update(&suspicious, &b1);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("not signed by the builders this device trusts"));

    // An auditor decides offline from the release's evidence, which carries the provenance:
    // the built artifact passes with the builder's key and not with another.
    let evidence = s.path().join("hello-1.0.0.evidence");
    s.ok(&[
        "--repo",
        &repo,
        "evidence",
        "hello/1.0.0/hello",
        "-o",
        evidence.to_str().unwrap(),
    ]);
    let decide = |builder: &Path| {
        s.run(&[
            "verify-release",
            "--root",
            s.repo()
                .join("published/metadata/1.root.json")
                .to_str()
                .unwrap(),
            "--evidence",
            evidence.to_str().unwrap(),
            "--builder-key",
            builder.to_str().unwrap(),
            s.path().join("out-1.0.0/hello").to_str().unwrap(),
        ])
    };
    let ok = decide(&public);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        String::from_utf8_lossy(&ok.stdout)
            .contains("provenance: SLSA Provenance v1 over these bytes"),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert!(!decide(&stranger).status.success());

    // A release added without a build: no provenance.
    s.add_release(&repo, b"unbuilt", "hello", "1.1.0");
    s.ok(&["--repo", &repo, "publish"]);
    let out = update(&trusting, &bundle("1.1.0"));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has no provenance"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Someone who can stage (the targets key) but is not the builder links a genuine
    // provenance to other bytes.
    let genuine = s.path().join("out-genuine");
    build("1.2.0", &genuine, false);
    let evil = s.path().join("evil/hello");
    std::fs::create_dir_all(evil.parent().unwrap()).unwrap();
    std::fs::write(&evil, b"#!/bin/sh\necho evil\n").unwrap();
    let provenance = genuine.join("provenance.intoto.json");
    stage_linking_provenance(&s, "1.2.0", &evil, &provenance);
    s.ok(&["--repo", &repo, "publish"]);
    let out = update(&trusting, &bundle("1.2.0"));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("about other bytes"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Nothing but the built release was ever installed.
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(trusting.join("state.json")).unwrap()).unwrap();
    assert_eq!(state["current_version"], "1.0.0", "{state}");
}

/// P7: a rebuilder rebuilds from the provenance alone (the recorded commit, cloned afresh;
/// the recorded command) and, the bytes matching, signs a reproduction attestation that
/// securesystemslib and in-toto-attestation accept over the product; a deliberately
/// non-deterministic build is reported as not reproducible and nothing is signed.
#[test]
fn rebuilds_reproduce_a_deterministic_build_and_report_a_nondeterministic_one() {
    let s = Scratch::new();
    let (builder, builder_pub) = keypair(&s, "builder");
    let (rebuilder, rebuilder_pub) = keypair(&s, "rebuilder");
    let source = s.path().join("src");
    project(&source);
    let out = s.path().join("out");
    let mut args = build_args("hello", "1.0.0", "hello", &builder, &source, &out);
    args.extend(["--", "make", "hello"].map(str::to_owned));
    s.ok(&strs(&args));
    let provenance = out.join("provenance.intoto.json");
    let again = s.path().join("again");
    let report: serde_json::Value = serde_json::from_str(&s.ok(&[
        "--json",
        "rebuild",
        provenance.to_str().unwrap(),
        "--key",
        rebuilder.to_str().unwrap(),
        "--builder-key",
        builder_pub.to_str().unwrap(),
        "--out-dir",
        again.to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(report["reproduced"], serde_json::json!(["hello"]));
    let verdict = dsse_verify(
        &again.join("reproduction.intoto.json"),
        &out.join("hello"),
        &rebuilder_pub,
    );
    assert_eq!(
        verdict["predicate_type"],
        "https://sealwright.dev/reproduction/v1"
    );

    // A build that stamps the clock into its output does not reproduce.
    let noisy = s.path().join("noisy");
    std::fs::create_dir_all(&noisy).unwrap();
    std::fs::write(noisy.join("Makefile"), "stamp:\n\tdate +%s%N > stamp\n").unwrap();
    commit_all(&noisy, &["Makefile"]);
    let noisy_out = s.path().join("noisy-out");
    let mut args = build_args("noisy", "1.0.0", "stamp", &builder, &noisy, &noisy_out);
    args.extend(["--", "make", "stamp"].map(str::to_owned));
    s.ok(&strs(&args));
    let retry = s.path().join("retry");
    let failed = s.run(&[
        "rebuild",
        noisy_out.join("provenance.intoto.json").to_str().unwrap(),
        "--key",
        rebuilder.to_str().unwrap(),
        "--out-dir",
        retry.to_str().unwrap(),
    ]);
    assert!(!failed.status.success());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("not reproducible") && stderr.contains("stamp: rebuilt sha256"),
        "{stderr}"
    );
    assert!(stderr.contains("diffoscope"), "{stderr}");
    assert!(!retry.join("reproduction.intoto.json").exists());
    assert!(
        retry.join("rebuilt/stamp").is_file(),
        "the rebuilt file is kept"
    );
}

/// P7 policy, repository and device: with `reproductions = 2` in `[attestations]`, a build
/// is staged and published only with reproductions by two distinct named rebuilders (one
/// rebuilder twice is one; a publisher who stages around the check is stopped by
/// `publish`); a device asking for two reproductions by its rebuilders installs it, one
/// asking for a reproduction by a rebuilder who never rebuilt it refuses, and
/// `verify-release` decides the same offline.
#[test]
fn releases_need_k_reproductions_by_named_rebuilders_to_publish_and_install() {
    let s = Scratch::new();
    let repo = s.repo_arg();
    s.ok(&["init", &repo]);
    let (builder, builder_pub) = keypair(&s, "builder");
    let (rebuilder_a, a_pub) = keypair(&s, "rebuilder-a");
    let (rebuilder_b, b_pub) = keypair(&s, "rebuilder-b");
    let (_, stranger_pub) = keypair(&s, "stranger");
    for (public, name) in [
        (&builder_pub, "builder"),
        (&a_pub, "rebuilder-a"),
        (&b_pub, "rebuilder-b"),
    ] {
        s.ok(&[
            "--repo",
            &repo,
            "key",
            "import",
            public.to_str().unwrap(),
            "--name",
            name,
        ]);
    }
    let policy_file = s.repo().join("sealwright.toml");
    let mut policy = std::fs::read_to_string(&policy_file).unwrap();
    policy.push_str(
        "\n[attestations]\nbuilders = [\"builder\"]\nrebuilders = [\"rebuilder-a\", \"rebuilder-b\"]\nreproductions = 2\n",
    );
    std::fs::write(&policy_file, policy).unwrap();

    let source = s.path().join("src");
    project(&source);
    let out = s.path().join("out");
    let mut args = build_args("hello", "1.0.0", "hello", &builder, &source, &out);
    args.extend(["--", "make", "hello"].map(str::to_owned));
    s.ok(&strs(&args));
    let provenance = out.join("provenance.intoto.json");
    let rebuild = |key: &Path, dir: &str| {
        let dir = s.path().join(dir);
        s.ok(&[
            "rebuild",
            provenance.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "--out-dir",
            dir.to_str().unwrap(),
        ]);
        dir.join("reproduction.intoto.json")
    };
    let by_a = rebuild(&rebuilder_a, "rebuild-a");
    let by_b = rebuild(&rebuilder_b, "rebuild-b");

    let stage = |reproductions: &[&Path]| {
        let mut args = vec!["--repo".to_owned(), repo.clone(), "stage-build".to_owned()];
        args.push(out.to_str().unwrap().to_owned());
        for r in reproductions {
            args.extend(["--reproduction".to_owned(), r.to_str().unwrap().to_owned()]);
        }
        s.run(&strs(&args))
    };
    for (given, counted) in [
        (vec![], 0),
        (vec![by_a.as_path()], 1),
        (vec![by_a.as_path(), by_a.as_path()], 1),
    ] {
        let refused = stage(&given);
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success(), "{given:?} staged");
        assert!(
            stderr.contains(&format!("{counted} of the 2 reproductions")),
            "{given:?}: {stderr}"
        );
        assert!(
            !s.repo().join("staged/targets.json").exists(),
            "{given:?}: something was staged"
        );
    }

    // A publisher who stages around the check (the library, provenance alone): `publish`
    // refuses, and nothing is published.
    stage_linking_provenance(&s, "1.0.0", &out.join("hello"), &provenance);
    let refused = s.run(&["--repo", &repo, "publish"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("0 of the 2 reproductions") && stderr.contains("[attestations]"),
        "{stderr}"
    );
    assert!(!s.repo().join("published/metadata/2.targets.json").exists());
    std::fs::remove_dir_all(s.repo().join("staged")).unwrap();

    // A product swapped after the build (in a copy of the output) is not what the
    // provenance signs: stage-build refuses it, reproductions or not.
    let tampered = s.path().join("tampered");
    common::copy_tree(&out, &tampered);
    std::fs::write(tampered.join("hello"), b"#!/bin/sh\necho swapped\n").unwrap();
    let refused = s.run(&[
        "--repo",
        &repo,
        "stage-build",
        tampered.to_str().unwrap(),
        "--reproduction",
        by_a.to_str().unwrap(),
        "--reproduction",
        by_b.to_str().unwrap(),
    ]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("changed after the build"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(!s.repo().join("staged/targets.json").exists());

    let staged = stage(&[&by_a, &by_b]);
    assert!(
        staged.status.success(),
        "{}",
        String::from_utf8_lossy(&staged.stderr)
    );
    s.ok(&["--repo", &repo, "publish"]);

    let root = s.repo().join("published/metadata/1.root.json");
    let bundle = s.bundle("hello", &s.path().join("hello.bundle"));
    let device = |name: &str, rebuilders: &[&Path], k: &str| {
        let mut extra = vec![
            "--builder-key",
            builder_pub.to_str().unwrap(),
            "--reproductions",
            k,
        ];
        for r in rebuilders {
            extra.extend(["--rebuilder-key", r.to_str().unwrap()]);
        }
        s.update_from(&s.device(name, &root, "hello", &extra), &bundle)
    };
    let installed = device("two-rebuilders", &[&a_pub, &b_pub], "2");
    assert!(
        installed.status.success(),
        "{}",
        String::from_utf8_lossy(&installed.stderr)
    );
    let refused = device("other-rebuilder", &[&stranger_pub], "1");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(stderr.contains("0 of the 1 reproductions"), "{stderr}");

    // Offline, from the release's evidence: the same decision.
    let evidence = s.path().join("hello.evidence");
    s.ok(&[
        "--repo",
        &repo,
        "evidence",
        "hello/1.0.0/hello",
        "-o",
        evidence.to_str().unwrap(),
    ]);
    let decide = |rebuilders: &[&Path], k: &str| {
        let mut args = vec![
            "verify-release".to_owned(),
            "--root".to_owned(),
            root.to_str().unwrap().to_owned(),
            "--evidence".to_owned(),
            evidence.to_str().unwrap().to_owned(),
            "--builder-key".to_owned(),
            builder_pub.to_str().unwrap().to_owned(),
            "--reproductions".to_owned(),
            k.to_owned(),
        ];
        for r in rebuilders {
            args.extend(["--rebuilder-key".to_owned(), r.to_str().unwrap().to_owned()]);
        }
        args.push(out.join("hello").to_str().unwrap().to_owned());
        s.run(&strs(&args))
    };
    let ok = decide(&[&a_pub, &b_pub], "2");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        String::from_utf8_lossy(&ok.stdout).contains("reproduced bit for bit by 2"),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert!(!decide(&[&stranger_pub], "1").status.success());
}
