//! `sealwright evidence`: one file that proves a release offline (O3).

use std::path::PathBuf;

use super::Context;
use crate::output::emit;

#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  sealwright evidence app/1.1.0/app.bin --repo-url https://updates.example.com/ \\
      --root 1.root.json -o app-1.1.0.evidence
  sealwright verify-release --root 1.root.json --evidence app-1.1.0.evidence \\
      --log-key \"$(cat log.vkey)\" app.bin")]
pub struct Args {
    /// The artifact's target path, e.g. app/1.1.0/app.bin.
    target: String,
    #[command(flatten)]
    source: super::bundle::Source,
    /// Evidence file to write.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: PathBuf,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let (fetcher, base, root) = args.source.open(ctx)?;
    let manifest = sealwright_client::bundle::create_evidence(
        &*fetcher,
        &base,
        &root,
        &args.target,
        &args.output,
    )?;
    let proofs = manifest
        .files
        .iter()
        .any(|(n, _)| n.starts_with("log/proof/"));
    emit(ctx.json, &manifest, || {
        println!(
            "evidence {} for {}: the metadata chain ({} files){}; check it with `sealwright verify-release --root ROOT --evidence {} ARTIFACT`",
            args.output.display(),
            manifest.target,
            manifest.files.len(),
            if proofs { " and the transparency log's proofs" } else { ", no transparency-log proofs (the repository serves none)" },
            args.output.display()
        );
    })
}
