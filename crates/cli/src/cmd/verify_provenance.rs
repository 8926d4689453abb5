//! `sealwright verify-provenance`: decide whether an artifact is what a trusted builder
//! built, from its signed provenance — offline.

use std::path::PathBuf;

use anyhow::Context as _;
use serde::Serialize;

use sealwright_attest::dsse::Envelope;
use sealwright_attest::provenance::check_provenance;

use super::Context;
use crate::output::emit;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A builder's public key (PEM SubjectPublicKeyInfo); repeatable.
    #[arg(long = "key", value_name = "PUB.pem", required = true)]
    keys: Vec<PathBuf>,
    /// How many of the --key builders must have signed.
    #[arg(long, default_value_t = 1)]
    threshold: usize,
    /// The provenance (DSSE envelope, `provenance.intoto.json`).
    provenance: PathBuf,
    /// The artifact to decide about.
    artifact: PathBuf,
}

#[derive(Serialize)]
struct Report {
    artifact: String,
    sha256: String,
    signed_by: Vec<String>,
    builder: String,
    build_type: String,
    source: Vec<String>,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let keys = read_public_keys(&args.keys)?;
    let bytes = sealwright_repo::fsutil::read_capped(
        &args.provenance,
        sealwright_attest::dsse::MAX_ENVELOPE_BYTES as u64,
    )
    .with_context(|| format!("reading {}", args.provenance.display()))?;
    let envelope = Envelope::parse(&bytes)?;
    let file = std::fs::File::open(&args.artifact)
        .with_context(|| format!("reading {}", args.artifact.display()))?;
    let sha256 = hex::encode(
        sealwright_crypto::digest::Hasher::sha256_only()
            .consume(file)?
            .sha256,
    );
    let accepted =
        check_provenance(&envelope, &keys, args.threshold, &sha256).with_context(|| {
            format!(
                "{} (sha256 {sha256}) is not attested by the given builders",
                args.artifact.display()
            )
        })?;
    let provenance = accepted.provenance;
    let verified_keyids = accepted.signed_by;
    let report = Report {
        artifact: args.artifact.display().to_string(),
        sha256,
        signed_by: verified_keyids,
        builder: provenance.run_details.builder.id,
        build_type: provenance.build_definition.build_type,
        source: provenance
            .build_definition
            .resolved_dependencies
            .iter()
            .filter_map(|d| Some(format!("{} {}", d.uri, d.digest.get("gitCommit")?)))
            .collect(),
    };
    emit(ctx.json, &report, || {
        println!(
            "ok  {} is a product of {} (build type {}), signed by {} trusted builder key(s); source: {}",
            report.artifact,
            report.builder,
            report.build_type,
            report.signed_by.len(),
            report.source.join(", ")
        );
    })
}

/// Public keys (PEM SubjectPublicKeyInfo files) given on the command line.
pub fn read_public_keys(paths: &[PathBuf]) -> anyhow::Result<Vec<sealwright_crypto::PublicKey>> {
    paths
        .iter()
        .map(|p| {
            sealwright_crypto::keyfile::read_public_key(&Context::read_text(p)?)
                .with_context(|| format!("{}", p.display()))
        })
        .collect()
}

/// What a device or auditor requires of provenance: one set of options for `client init`
/// and `verify-release`.
#[derive(Debug, clap::Args)]
pub struct RequireProvenanceArgs {
    /// Require provenance signed by this builder (its public key, PEM): a release counts
    /// only when its signed entry links SLSA provenance over its exact bytes; repeatable.
    #[arg(long = "builder-key", value_name = "PUB.pem")]
    builder_keys: Vec<PathBuf>,
    /// How many of the --builder-key builders must have signed the provenance.
    #[arg(long, default_value_t = 1, requires = "builder_keys")]
    builder_threshold: usize,
    /// A rebuilder whose reproductions count (its public key, PEM); repeatable.
    #[arg(
        long = "rebuilder-key",
        value_name = "PUB.pem",
        requires = "builder_keys"
    )]
    rebuilder_keys: Vec<PathBuf>,
    /// Also require this many reproductions by distinct --rebuilder-key rebuilders: each
    /// an attestation (`sealwright rebuild`) that rebuilding this provenance's source gave
    /// the same bytes, linked in the release's signed entry.
    #[arg(long, default_value_t = 0, requires = "rebuilder_keys")]
    reproductions: usize,
}

impl RequireProvenanceArgs {
    /// The policy these options give (none without --builder-key), checked.
    pub fn policy(&self) -> anyhow::Result<Option<sealwright_client::install::ProvenancePolicy>> {
        if self.builder_keys.is_empty() {
            return Ok(None);
        }
        let read = |paths: &[PathBuf]| {
            paths
                .iter()
                .map(|p| Context::read_text(p))
                .collect::<anyhow::Result<Vec<_>>>()
        };
        sealwright_client::install::ProvenancePolicy::new(
            read(&self.builder_keys)?,
            self.builder_threshold,
            read(&self.rebuilder_keys)?,
            self.reproductions,
        )
        .map(Some)
        .map_err(anyhow::Error::msg)
    }
}
