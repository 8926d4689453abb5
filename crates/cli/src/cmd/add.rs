//! `sealwright add`: stage files and directory trees as a release.

use std::path::PathBuf;

use serde::Serialize;

use sealwright_repo::staging::add_artifacts;
use sealwright_repo::staging::Release;

use super::Context;
use crate::output::{emit, Progress};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files or directory trees to add. Each file becomes NAME/VERSION/<file name>; a
    /// directory contributes every file below it as NAME/VERSION/<relative path>.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Product name, bound into signed metadata (custom.sealwright.name).
    #[arg(long)]
    name: String,
    /// Semantic version (x.y.z), bound into signed metadata.
    #[arg(long)]
    version: String,
    /// Release channel, e.g. stable or beta. A single-file release also moves the signed
    /// channel pointer NAME/channels/CHANNEL.json (default channel: stable) that
    /// `sealwright update` follows.
    #[arg(long)]
    channel: Option<String>,
    /// Mark this as a recovery release: clients install it even if it is older than what
    /// they run. This is the only way to roll devices back; use it for a known-good build.
    #[arg(long)]
    recovery: bool,
    /// Add to this delegated role (or succinct bin set) instead of top-level targets.
    #[arg(long, value_name = "ROLE")]
    delegation: Option<String>,
}

#[derive(Serialize)]
struct Report {
    role: String,
    targets: Vec<AddedTarget>,
    channel_pointer: Option<String>,
    recovery: bool,
}

#[derive(Serialize)]
struct AddedTarget {
    path: String,
    length: u64,
    sha256: String,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let policy = ctx.policy()?;
    let role = args
        .delegation
        .clone()
        .unwrap_or_else(|| "targets".to_owned());
    let release = Release::new(&args.name, &args.version, args.channel.as_deref())?
        .with_recovery(args.recovery);
    let progress = std::sync::OnceLock::new();
    let added = add_artifacts(&ctx.repo, &policy, &role, &args.paths, &release, &|total| {
        let bar = progress.get_or_init(|| Progress::new(total as u64, "hashing"));
        if total == 0 {
            bar.inc();
        }
    })?;
    if let Some(bar) = progress.get() {
        bar.finish();
    }
    let report = Report {
        role: added.role.clone(),
        targets: added
            .targets
            .iter()
            .map(|(path, e)| AddedTarget {
                path: path.clone(),
                length: e.length,
                sha256: e.sha256.clone(),
            })
            .collect(),
        channel_pointer: added.pointer.as_ref().map(|(p, _)| p.clone()),
        recovery: release.recovery,
    };
    emit(ctx.json, &report, || {
        println!(
            "staged {} file(s) of {} {} for role {}; run `sealwright publish` to sign and publish (or `sealwright push` to a server)",
            report.targets.len(),
            release.name,
            release.version,
            report.role
        );
        if let Some(p) = &report.channel_pointer {
            println!(
                "channel pointer {p} will point to version {}",
                release.version
            );
        }
    })
}
