//! `sealwright verify-release`: decide offline whether an artifact is a published release,
//! from evidence (an offline bundle) and a root you trust, explaining each check.

use std::path::PathBuf;

use super::Context;
use crate::output::emit;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The root.json you trust (e.g. the repository's 1.root.json, obtained out of band).
    #[arg(long)]
    root: PathBuf,
    /// The evidence: `sealwright evidence PATH` (one release's metadata chain and the
    /// transparency log's proofs) or an offline bundle (`sealwright bundle create`).
    #[arg(long)]
    evidence: PathBuf,
    #[command(flatten)]
    log: super::log::RequireLogArgs,
    #[command(flatten)]
    provenance: super::verify_provenance::RequireProvenanceArgs,
    /// The artifact to decide about.
    artifact: PathBuf,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let root = Context::read_root(&args.root)?;
    let log = args.log.policy()?;
    let report = sealwright_client::bundle::verify_release(
        &root,
        &args.evidence,
        &args.artifact,
        log.as_ref(),
        args.provenance.policy()?.as_ref(),
        chrono::Utc::now(),
    )?;
    emit(ctx.json, &report, || {
        for check in &report.checks {
            println!("ok  {check}");
        }
        println!(
            "{} is {} version {} as published",
            args.artifact.display(),
            report.target,
            report.version
        );
    })
}
