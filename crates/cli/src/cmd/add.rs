//! `sealwright add`: stage files and directory trees as a release.

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use serde::Serialize;

use sealwright_repo::staging::{self, Release, Staging};

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
    /// Release channel, e.g. stable or beta.
    #[arg(long)]
    channel: Option<String>,
    /// Add to this delegated role (or succinct bin set) instead of top-level targets.
    #[arg(long, value_name = "ROLE")]
    delegation: Option<String>,
}

#[derive(Serialize)]
struct Added {
    role: String,
    targets: Vec<AddedTarget>,
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
    if role != "targets" && policy.delegation(&role).is_none() {
        bail!("--delegation {role}: no such delegated role (create it with `sealwright delegate`)");
    }
    let release = Release::new(&args.name, &args.version, args.channel.as_deref())?;
    let inputs = staging::collect_inputs(&args.paths, &release.prefix())?;
    if inputs.is_empty() {
        bail!("nothing to add: the given directories contain no files");
    }
    let mut staged = Staging::load(&ctx.repo)?;
    // Check every path against the role's delegation and against what is already staged or
    // published before copying a single byte.
    sealwright_repo::publish::check_addable(
        &ctx.repo,
        &policy,
        &role,
        inputs.iter().map(|i| i.target.as_str()),
    )?;
    let existing = staged.targets.entry(role.clone()).or_default();
    if let Some(dup) = inputs.iter().find(|i| existing.contains_key(&i.target)) {
        bail!(
            "duplicate target {:?}: already staged (publish or remove staged/ first)",
            dup.target
        );
    }
    let progress = Progress::new(inputs.len() as u64, "hashing");
    let entries = staging::hash_and_copy(&ctx.repo, &inputs, &release.custom(), &|| progress.inc())
        .context("staging artifacts")?;
    progress.finish();
    let existing = staged.targets.entry(role.clone()).or_default();
    let mut report = Vec::with_capacity(entries.len());
    for (path, entry) in entries {
        report.push(AddedTarget {
            path: path.clone(),
            length: entry.length,
            sha256: entry.sha256().unwrap_or_default().to_owned(),
        });
        existing.insert(path, entry);
    }
    staged.save(&ctx.repo)?;
    let added = Added {
        role,
        targets: report,
    };
    emit(ctx.json, &added, || {
        println!(
            "staged {} file(s) of {} {} for role {}; run `sealwright publish` to sign and publish",
            added.targets.len(),
            release.name,
            release.version,
            added.role
        );
    })
}
