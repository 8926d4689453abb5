//! `sealwright verify`: check the published tree exactly as a client would.

use std::path::PathBuf;

use anyhow::Context as _;
use chrono::Utc;

use sealwright_repo::verify::verify_published;

use super::Context;
use crate::output::emit;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Trusted root to start from (default: published/metadata/1.root.json, i.e. trust on
    /// first use of this repository's own first root).
    #[arg(long)]
    root: Option<PathBuf>,
    /// Directory holding metadata/ and targets/ (default: REPO/published).
    #[arg(long)]
    published: Option<PathBuf>,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let published = args.published.unwrap_or_else(|| ctx.repo.join("published"));
    let root_path = args
        .root
        .unwrap_or_else(|| published.join("metadata/1.root.json"));
    let root = sealwright_repo::fsutil::read_capped(&root_path, 512 * 1024)
        .with_context(|| format!("reading trusted root {}", root_path.display()))?;
    let report = verify_published(&published, &root, Utc::now())
        .with_context(|| format!("verifying {}", published.display()))?;
    emit(ctx.json, &report, || {
        println!(
            "verified {}: root v{}, {} role(s), {} target file(s) match their signed length and hashes",
            published.display(),
            report.root_version,
            report.roles.len(),
            report.targets_verified
        );
    })
}
