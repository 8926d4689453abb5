//! `sealwright rebuild`: rebuild a release from what its provenance records and, only when
//! every product comes out with the same bytes, sign a reproduction attestation
//! (PRODUCT.md P7).
//!
//! Guarantees:
//! - the source is the exact commit the provenance names, cloned afresh, and its tree must
//!   be the recorded tree (a rewritten history cannot pass for the same source);
//! - the build is `build`'s: the same clean environment and sandbox
//!   ([`super::build::clean_build`]), `SOURCE_DATE_EPOCH` from that commit;
//! - a mismatch signs nothing, names each product that differs with both digests, and keeps
//!   the rebuilt files for `diffoscope`.

use std::path::PathBuf;
use std::process::Command;

use anyhow::Context as _;
use serde::Serialize;

use sealwright_attest::dsse::{Envelope, IN_TOTO_PAYLOAD_TYPE, MAX_ENVELOPE_BYTES};
use sealwright_attest::provenance::read_provenance;
use sealwright_attest::reproduction::{
    RebuiltSource, ReproducedProvenance, Reproduction, REPRODUCTION_V1,
};
use sealwright_attest::slsa::Provenance;
use sealwright_attest::statement::Statement;

use super::build::{clean_build, git, Built, BUILD_TYPE};
use super::Context;
use crate::output::emit;

#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  sealwright rebuild dist/app-1.2.0/provenance.intoto.json --key rebuilder.pem \\
      --builder-key builder.pub.pem

On a match, writes OUT/reproduction.intoto.json (DSSE, in-toto Statement v1, predicate type
https://sealwright.dev/reproduction/v1) signed with --key. On a mismatch, exits 1, names the
products that differ and keeps the rebuilt ones in OUT/rebuilt/ for diffoscope.")]
pub struct Args {
    /// The release's provenance (`provenance.intoto.json` from `sealwright build`).
    provenance: PathBuf,
    /// The rebuilder's private key (PKCS#8 PEM).
    #[arg(long, value_name = "KEY.pem")]
    key: PathBuf,
    /// Check the provenance's signature with this builder key first (repeatable; without
    /// it the provenance is rebuilt as given and the output says so).
    #[arg(long = "builder-key", value_name = "PUB.pem")]
    builder_keys: Vec<PathBuf>,
    /// The rebuilder's identity in the attestation (a URI).
    #[arg(long, default_value = "https://sealwright.dev/rebuilders/local")]
    rebuilder_id: String,
    /// Where to work and write (default: ./rebuild-NAME-VERSION).
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
}

#[derive(Serialize)]
struct Report {
    reproduced: Vec<String>,
    attestation: PathBuf,
    sandbox: &'static str,
}

/// A list of strings from the provenance's external parameters.
fn strings(provenance: &Provenance, key: &str) -> anyhow::Result<Vec<String>> {
    provenance
        .parameter_list(key)
        .with_context(|| format!("the provenance has no {key} list"))
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let bytes = sealwright_repo::fsutil::read_capped(&args.provenance, MAX_ENVELOPE_BYTES as u64)
        .with_context(|| format!("reading {}", args.provenance.display()))?;
    let envelope = Envelope::parse(&bytes)?;
    let payload = if args.builder_keys.is_empty() {
        eprintln!("note: the provenance's signature is not checked (give --builder-key)");
        envelope.payload.clone()
    } else {
        let keys = super::verify_provenance::read_public_keys(&args.builder_keys)?;
        envelope
            .verify(&keys, 1)
            .context("the provenance is not signed by the given builder keys")?
            .payload
            .to_vec()
    };
    let (statement, provenance) = read_provenance(&envelope.payload_type, &payload)?;
    anyhow::ensure!(
        provenance.build_definition.build_type == BUILD_TYPE,
        "the build type {:?} is not {BUILD_TYPE}: only Sealwright's own builds can be rerun",
        provenance.build_definition.build_type
    );
    let command = strings(&provenance, "command")?;
    let outputs: Vec<PathBuf> = strings(&provenance, "outputs")?
        .into_iter()
        .map(PathBuf::from)
        .collect();
    let name = provenance.parameter("name").unwrap_or("release").to_owned();
    let version = provenance.parameter("version").unwrap_or("0").to_owned();
    let source = provenance
        .build_definition
        .resolved_dependencies
        .iter()
        .find(|d| d.digest.contains_key("gitCommit"))
        .context("the provenance names no git source")?;
    let url = source
        .uri
        .strip_prefix("git+")
        .context("the source is not a git+ URI")?;
    let commit = source.digest.get("gitCommit").cloned().unwrap_or_default();
    let tree = source.digest.get("gitTree").cloned().unwrap_or_default();

    let out_dir = args
        .out_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("rebuild-{name}-{version}")));
    std::fs::create_dir_all(&out_dir)?;
    let work = tempfile::Builder::new()
        .prefix("sealwright-rebuild-")
        .tempdir()?;
    let checkout = work.path().join("src");
    let cloned = Command::new("git")
        .args(["clone", "--quiet", url])
        .arg(&checkout)
        .status()
        .context("running git clone")?;
    anyhow::ensure!(cloned.success(), "git clone {url} failed");
    git(&checkout, &["checkout", "--quiet", &commit])
        .with_context(|| format!("the source {url} has no commit {commit}"))?;
    let got_tree = git(&checkout, &["rev-parse", "HEAD^{tree}"])?;
    anyhow::ensure!(
        got_tree == tree,
        "commit {commit} of {url} has tree {got_tree}, but the provenance recorded {tree}: not the source that was built"
    );
    let time: i64 = git(&checkout, &["log", "-1", "--format=%ct"])?.parse()?;
    let rebuilt_dir = out_dir.join("rebuilt");
    let Built {
        products,
        sandbox,
        started,
        finished,
        ..
    } = clean_build(&checkout, &command, &outputs, &rebuilt_dir, time)?;

    let mut differ = Vec::new();
    let mut reproduced = Vec::new();
    for subject in &statement.subject {
        let claimed = subject.digest.get("sha256").cloned().unwrap_or_default();
        match products.iter().find(|p| p.name == subject.name) {
            Some(p) if p.sha256 == claimed => reproduced.push(p.name.clone()),
            Some(p) => differ.push(format!(
                "  {}: rebuilt sha256 {}, the provenance says {claimed}",
                p.name, p.sha256
            )),
            None => differ.push(format!("  {}: not produced by the rebuild", subject.name)),
        }
    }
    if !differ.is_empty() {
        anyhow::bail!(
            "not reproducible; nothing was signed:\n{}\nThe rebuilt files are in {}; compare each with the original: diffoscope ORIGINAL {}/NAME",
            differ.join("\n"),
            rebuilt_dir.display(),
            rebuilt_dir.display()
        );
    }
    let rfc3339 =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let predicate = Reproduction {
        provenance: ReproducedProvenance {
            sha256: sealwright_crypto::digest::sha256_hex(&bytes),
            builder_id: provenance.run_details.builder.id.clone(),
        },
        source: RebuiltSource {
            uri: source.uri.clone(),
            git_commit: commit,
            git_tree: tree,
        },
        rebuilder_id: args.rebuilder_id.clone(),
        sandbox: sandbox.to_owned(),
        started_on: rfc3339(started),
        finished_on: rfc3339(finished),
    };
    let attestation = Statement::new(
        statement.subject.clone(),
        REPRODUCTION_V1,
        serde_json::to_value(&predicate)?,
    );
    let key = ctx.open_private_key(&args.key, "rebuilder")?;
    let signed = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, attestation.to_bytes(), &[&key])?;
    let path = out_dir.join("reproduction.intoto.json");
    sealwright_repo::fsutil::write_atomic(&path, &signed.to_json())?;
    let report = Report {
        reproduced,
        attestation: path,
        sandbox,
    };
    emit(ctx.json, &report, || {
        println!(
            "reproduced {} bit for bit ({} sandbox); signed {}",
            report.reproduced.join(", "),
            report.sandbox,
            report.attestation.display()
        );
    })
}
