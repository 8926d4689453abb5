//! `sealwright stage-build DIR`: stage a finished build — the output directory of
//! `sealwright build` — as a release: its products, and beside them its evidence
//! (provenance, build log, SBOMs, reproductions), bound to every product in the signed
//! targets metadata (`custom.sealwright.evidence`, read by `sealwright_attest::evidence`).
//! `build --stage` is this, run right after the build.
//!
//! Guarantees:
//! - the products staged are exactly the provenance's subjects, found in DIR with the
//!   digests it states (a product changed after the build is refused);
//! - a reproduction is staged only when it is a reproduction of this very provenance;
//! - when the repository's `[attestations]` policy applies, the release is checked against
//!   it here, with the check `publish` and the server run, so a release that could not be
//!   published is not staged.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Serialize;

use sealwright_attest::dsse::{Envelope, MAX_ENVELOPE_BYTES};
use sealwright_attest::evidence::{check_attestations, PROVENANCE, REPRODUCTION_PREFIX};
use sealwright_attest::provenance::read_provenance;
use sealwright_attest::slsa::Provenance;
use sealwright_repo::staging::{EvidenceFile, Release};

use super::Context;
use crate::output::emit;

/// The provenance file in a build's output directory.
pub const PROVENANCE_FILE: &str = "provenance.intoto.json";
/// The build log in a build's output directory.
pub const LOG_FILE: &str = "build.log";
/// The CycloneDX SBOM in a build's output directory.
pub const CYCLONEDX_FILE: &str = "sbom.cdx.json";
/// The SPDX SBOM in a build's output directory.
pub const SPDX_FILE: &str = "sbom.spdx.json";

/// The evidence files `build` writes, by kind (those present are staged).
pub const BUILD_EVIDENCE: [(&str, &str); 4] = [
    (PROVENANCE, PROVENANCE_FILE),
    ("build-log", LOG_FILE),
    ("sbom", CYCLONEDX_FILE),
    ("sbom-spdx", SPDX_FILE),
];

#[derive(Debug, clap::Args)]
#[command(after_help = "Example, a release that needs two reproductions:
  sealwright build --name app --version 1.2.0 --output app --key builder.pem -- make app
  # each rebuilder, on its own machine:
  sealwright rebuild dist/app-1.2.0/provenance.intoto.json --key rebuilder-a.pem
  sealwright stage-build dist/app-1.2.0 \\
      --reproduction a/reproduction.intoto.json --reproduction b/reproduction.intoto.json
  sealwright publish")]
pub struct Args {
    /// The build's output directory (holds provenance.intoto.json and the products).
    dir: PathBuf,
    /// A reproduction attestation of this build (`sealwright rebuild`); repeatable.
    #[arg(long = "reproduction", value_name = "FILE")]
    reproductions: Vec<PathBuf>,
    /// Channel of the release.
    #[arg(long)]
    channel: Option<String>,
    /// Stage for this delegated role instead of the top-level targets role.
    #[arg(long, value_name = "ROLE")]
    delegation: Option<String>,
}

/// What was staged.
#[derive(Debug, Serialize)]
pub struct Staged {
    name: String,
    version: String,
    products: Vec<String>,
    evidence: BTreeMap<String, EvidenceFile>,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let staged = stage(
        ctx,
        &args.dir,
        &args.reproductions,
        args.channel.as_deref(),
        args.delegation.as_deref(),
    )?;
    emit(ctx.json, &staged, || {
        println!(
            "staged {} {}: {} with {}; run `sealwright publish` (or `sealwright push`)",
            staged.name,
            staged.version,
            staged.products.join(", "),
            staged
                .evidence
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    })
}

/// A string parameter the build recorded.
fn parameter(provenance: &Provenance, key: &str) -> anyhow::Result<String> {
    provenance
        .parameter(key)
        .map(str::to_owned)
        .with_context(|| format!("the provenance records no {key}"))
}

/// Reads a reproduction of the provenance whose bytes have `provenance_sha256`.
fn reproduction_file(path: &Path, provenance_sha256: &str) -> anyhow::Result<Vec<u8>> {
    let bytes = sealwright_repo::fsutil::read_capped(path, MAX_ENVELOPE_BYTES as u64)
        .with_context(|| format!("reading {}", path.display()))?;
    let envelope = Envelope::parse(&bytes).with_context(|| format!("{}", path.display()))?;
    sealwright_attest::evidence::read_reproduction(
        &envelope.payload_type,
        &envelope.payload,
        provenance_sha256,
    )
    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(bytes)
}

/// Stages the build in `dir` with `reproductions` (see the module documentation).
pub fn stage(
    ctx: &Context,
    dir: &Path,
    reproductions: &[PathBuf],
    channel: Option<&str>,
    delegation: Option<&str>,
) -> anyhow::Result<Staged> {
    let provenance_path = dir.join(PROVENANCE_FILE);
    let provenance_bytes =
        sealwright_repo::fsutil::read_capped(&provenance_path, MAX_ENVELOPE_BYTES as u64)
            .with_context(|| {
                format!(
                    "reading {} (is {} the output directory of `sealwright build`?)",
                    provenance_path.display(),
                    dir.display()
                )
            })?;
    let envelope = Envelope::parse(&provenance_bytes)?;
    let (statement, provenance) = read_provenance(&envelope.payload_type, &envelope.payload)
        .with_context(|| provenance_path.display().to_string())?;
    let name = parameter(&provenance, "name")?;
    let version = parameter(&provenance, "version")?;
    let release = Release::new(&name, &version, channel)?;
    let prefix = release.prefix();
    let provenance_sha256 = sealwright_crypto::digest::sha256_hex(&provenance_bytes);

    let mut files = Vec::new();
    let mut products = Vec::new();
    for subject in &statement.subject {
        // A subject is a file name in DIR: nothing the provenance says reaches outside it.
        anyhow::ensure!(
            !subject.name.is_empty()
                && Path::new(&subject.name).file_name() == Some(subject.name.as_ref()),
            "the provenance names a product {:?} that is not a file name",
            subject.name
        );
        let path = dir.join(&subject.name);
        let digests = std::fs::File::open(&path)
            .and_then(|f| sealwright_crypto::digest::Hasher::sha256_only().consume(f))
            .map(|d| hex::encode(d.sha256))
            .with_context(|| format!("reading the product {}", path.display()))?;
        anyhow::ensure!(
            subject.digest.get("sha256") == Some(&digests),
            "{} is not the product the provenance signs (sha256 {digests}): it changed after the build",
            path.display()
        );
        products.push((subject.name.clone(), digests));
        files.push(path);
    }

    let mut evidence = BTreeMap::new();
    let mut link = |kind: String, path: PathBuf, bytes: &[u8]| {
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        evidence.insert(
            kind,
            EvidenceFile {
                path: format!("{prefix}/{file_name}"),
                sha256: sealwright_crypto::digest::sha256_hex(bytes),
            },
        );
        files.push(path);
    };
    for (kind, file) in BUILD_EVIDENCE {
        let path = dir.join(file);
        let max = MAX_ENVELOPE_BYTES.max(super::build::MAX_LOG as usize) as u64;
        if let Some(bytes) = sealwright_repo::fsutil::read_capped_if_exists(&path, max)
            .with_context(|| format!("reading {}", path.display()))?
        {
            link(kind.to_owned(), path, &bytes);
        }
    }
    let mut reproduction_bytes = Vec::new();
    for given in reproductions {
        let bytes = reproduction_file(given, &provenance_sha256)?;
        // Published under a name its bytes choose: two rebuilders never collide, the same
        // file given twice is one reproduction.
        let short = &sealwright_crypto::digest::sha256_hex(&bytes)[..16];
        let copy = dir.join(format!("reproduction-{short}.intoto.json"));
        sealwright_repo::fsutil::write_atomic(&copy, &bytes)?;
        link(format!("{REPRODUCTION_PREFIX}{short}"), copy, &bytes);
        reproduction_bytes.push(bytes);
    }

    let policy = ctx.policy()?;
    if let Some(requirement) = policy.attestation_requirement()? {
        let reproductions: Vec<&[u8]> = reproduction_bytes.iter().map(Vec::as_slice).collect();
        for (product, sha256) in &products {
            check_attestations(&requirement, sha256, &provenance_bytes, &reproductions)
                .with_context(|| {
                    format!(
                        "{product}: not staged, this repository's [attestations] policy would refuse it"
                    )
                })?;
        }
    }
    let release = release.with_evidence(evidence.clone());
    sealwright_repo::staging::add_artifacts(
        &ctx.repo,
        &policy,
        delegation.unwrap_or("targets"),
        &files,
        &release,
        &|_| {},
    )?;
    Ok(Staged {
        name,
        version,
        products: products.into_iter().map(|(n, _)| n).collect(),
        evidence,
    })
}
