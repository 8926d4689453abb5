//! `sealwright sbom`: the software bill of materials of a release, CycloneDX 1.6 or SPDX 2.3.

use std::path::PathBuf;

use anyhow::Context as _;

use sealwright_attest::lockfile;
use sealwright_attest::sbom::{Artifact, Release};

use super::Context;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// CycloneDX 1.6 JSON.
    Cyclonedx,
    /// SPDX 2.3 JSON.
    Spdx,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  sealwright sbom --name app --version 1.2.0 --artifact target/release/app \\
      --lockfile Cargo.lock --lockfile web/package-lock.json -o app-1.2.0.cdx.json

Lockfiles: Cargo.lock, package-lock.json (v2, v3), requirements*.txt (pinned with ==,
--hash=sha256:...), poetry.lock, uv.lock. The time recorded is SOURCE_DATE_EPOCH when set
(a reproducible build gives the same SBOM bytes), else now.")]
pub struct Args {
    /// Product name.
    #[arg(long)]
    name: String,
    /// Version of the release.
    #[arg(long)]
    version: String,
    /// An artifact of the release (listed with its SHA-256); repeatable.
    #[arg(long = "artifact", value_name = "FILE")]
    artifacts: Vec<PathBuf>,
    /// A lockfile whose components the release contains; repeatable.
    #[arg(long = "lockfile", value_name = "FILE")]
    lockfiles: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "cyclonedx")]
    format: Format,
    /// Write here (atomically) instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
}

pub fn run(_ctx: &Context, args: Args) -> anyhow::Result<()> {
    let mut components = Vec::new();
    for path in &args.lockfiles {
        let bytes = sealwright_repo::fsutil::read_capped(path, lockfile::MAX_LOCKFILE_BYTES as u64)
            .with_context(|| format!("reading {}", path.display()))?;
        components.extend(lockfile::parse(&path.to_string_lossy(), &bytes)?);
    }
    let mut artifacts = Vec::new();
    for path in &args.artifacts {
        let file =
            std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
        let digests = sealwright_crypto::digest::Hasher::sha256_only()
            .consume(file)
            .with_context(|| format!("reading {}", path.display()))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .with_context(|| format!("{} names no file", path.display()))?;
        artifacts.push(Artifact {
            name,
            sha256: hex::encode(digests.sha256),
            length: digests.length,
        });
    }
    let release = Release {
        name: args.name,
        version: args.version,
        artifacts,
        components,
    };
    let created = created_time()?;
    let version = env!("CARGO_PKG_VERSION");
    let bytes = match args.format {
        Format::Cyclonedx => sealwright_attest::sbom::cyclonedx(&release, &created, version),
        Format::Spdx => sealwright_attest::sbom::spdx(&release, &created, version),
    };
    match &args.output {
        Some(path) => sealwright_repo::fsutil::write_atomic(path, &bytes)
            .with_context(|| format!("writing {}", path.display()))?,
        None => {
            use std::io::Write as _;
            std::io::stdout().write_all(&bytes)?;
            println!();
        }
    }
    Ok(())
}

/// SOURCE_DATE_EPOCH (reproducible-builds.org) when set, else now; RFC 3339 UTC seconds.
fn created_time() -> anyhow::Result<String> {
    let time = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => {
            let seconds: i64 = v
                .trim()
                .parse()
                .with_context(|| format!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds"))?;
            chrono::DateTime::from_timestamp(seconds, 0)
                .with_context(|| format!("SOURCE_DATE_EPOCH={v} is out of range"))?
        }
        Err(_) => chrono::Utc::now(),
    };
    Ok(time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}
