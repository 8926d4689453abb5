//! `sealwright sbom`: what we write is accepted by the formats' own validators —
//! cyclonedx-python-lib's strict CycloneDX 1.6 schema and spdx-tools' SPDX 2.3 rules — for
//! a release with an artifact and real lockfiles (this workspace's Cargo.lock, an npm v3
//! lockfile, hashed requirements); the same inputs and SOURCE_DATE_EPOCH give the same bytes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::Path;

use common::Scratch;

const PACKAGE_LOCK: &str = r#"{
  "name": "web",
  "version": "1.0.0",
  "lockfileVersion": 3,
  "requires": true,
  "packages": {
    "": {"name": "web", "version": "1.0.0", "dependencies": {"@scope/ui": "^2.0.0", "left-pad": "^1.3.0"}},
    "node_modules/@scope/ui": {
      "version": "2.0.1",
      "resolved": "https://registry.npmjs.org/@scope/ui/-/ui-2.0.1.tgz",
      "integrity": "sha512-VDv8qjoa336QBvEXaMvGwyEi23lB5WZ3QRmA8Tp0qEo8tDxoQSfEuudA78HfenDYBMZmedqeQkuzoxbP+27gLA=="
    },
    "node_modules/left-pad": {
      "version": "1.3.0",
      "resolved": "https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz",
      "integrity": "sha512-TeVnb1b5RqbS+Ry1NqOz7UpIycza595godPBUamp5+ur7Rr2XyFntWyMehVZd1tfyxcCWfhw3lL826H+U85ncg=="
    }
  }
}"#;

const REQUIREMENTS: &str = "--index-url https://pypi.org/simple\nidna==3.10 \\\n    --hash=sha256:946d195a0d259cbba61165e88e65941f16e9b36ea6ddb97f00452bae8b1287d3\n";

#[test]
fn cyclonedx_and_spdx_validators_accept_our_sboms() {
    let s = Scratch::new();
    let artifact = s.path().join("app.bin");
    std::fs::write(&artifact, b"release bytes").unwrap();
    let npm = s.path().join("package-lock.json");
    std::fs::write(&npm, PACKAGE_LOCK).unwrap();
    let pip = s.path().join("requirements.txt");
    std::fs::write(&pip, REQUIREMENTS).unwrap();
    let cargo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.lock");
    let crates = std::fs::read_to_string(&cargo)
        .unwrap()
        .matches("[[package]]")
        .count();
    assert!(crates > 100);
    let sbom = |format: &str, out: &Path| {
        let status = common::sealwright(None)
            .args([
                "sbom",
                "--name",
                "app",
                "--version",
                "1.0.0",
                "--format",
                format,
            ])
            .arg("--artifact")
            .arg(&artifact)
            .args(["--lockfile", cargo.to_str().unwrap()])
            .args(["--lockfile", npm.to_str().unwrap()])
            .args(["--lockfile", pip.to_str().unwrap()])
            .arg("-o")
            .arg(out)
            .env("SOURCE_DATE_EPOCH", "1764460800")
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::read(out).unwrap()
    };
    let cdx = s.path().join("app.cdx.json");
    let first = sbom("cyclonedx", &cdx);
    let verdict = common::sbom_validate("cyclonedx", &cdx);
    // Every crate, both npm packages, idna; and the artifact.
    assert_eq!(verdict["components"], crates + 2 + 1 + 1, "{verdict}");
    let purls: Vec<&str> = verdict["purls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    for expected in [
        "pkg:npm/%40scope/ui@2.0.1",
        "pkg:pypi/idna@3.10",
        "pkg:cargo/serde@",
    ] {
        assert!(
            purls.iter().any(|p| p.starts_with(expected)),
            "{expected} not in {purls:?}"
        );
    }
    assert_eq!(
        sbom("cyclonedx", &s.path().join("again.json")),
        first,
        "not deterministic"
    );
    let doc: serde_json::Value = serde_json::from_slice(&first).unwrap();
    assert_eq!(doc["metadata"]["timestamp"], "2025-11-30T00:00:00Z");

    let spdx = s.path().join("app.spdx.json");
    sbom("spdx", &spdx);
    let verdict = common::sbom_validate("spdx", &spdx);
    // The release, its artifact, every component.
    assert_eq!(verdict["packages"], crates + 2 + 1 + 2, "{verdict}");

    // A lockfile we cannot read is refused, not skipped.
    let odd = s.path().join("yarn.lock");
    std::fs::write(&odd, "# yarn lockfile v1\n").unwrap();
    let out = s.run(&[
        "sbom",
        "--name",
        "app",
        "--version",
        "1",
        "--lockfile",
        odd.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a lockfile Sealwright reads"));
}
