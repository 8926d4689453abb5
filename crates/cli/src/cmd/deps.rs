//! `sealwright deps check`: judge a build's lockfiles against the project's dependency
//! policy (see `sealwright_attest::deps`).

use std::path::PathBuf;

use anyhow::Context as _;

use sealwright_attest::{deps, lockfile};

use super::Context;
use crate::output::emit;

#[derive(Debug, clap::Subcommand)]
pub enum DepsCommand {
    /// Check lockfiles against a policy; exit status 1 on any finding.
    ///
    /// The policy (TOML), e.g. sealwright-deps.toml:
    ///
    ///   [cargo]
    ///   registries = ["https://github.com/rust-lang/crates.io-index"]
    ///   [npm]
    ///   registries = ["https://registry.npmjs.org"]
    ///   [pypi]
    ///   registries = ["https://pypi.org/simple"]
    ///   [git]
    ///   allow = ["https://github.com/acme/"]      # and pinned to a full commit
    ///   [internal]
    ///   names = ["acme-core", "@acme/*"]          # only from these registries:
    ///   registries = ["https://npm.acme.internal"]
    ///
    /// Findings: source-not-allowed, insecure-transport, url-source, git-not-allowed,
    /// git-unpinned, missing-checksum, weak-checksum, dependency-confusion,
    /// mimics-internal-name, resolved-name-mismatch.
    #[command(verbatim_doc_comment)]
    Check {
        /// The policy file.
        #[arg(long, value_name = "FILE", default_value = "sealwright-deps.toml")]
        policy: PathBuf,
        /// Lockfiles: Cargo.lock, package-lock.json, requirements*.txt, poetry.lock, uv.lock.
        #[arg(required = true)]
        lockfiles: Vec<PathBuf>,
    },
}

/// The dependency policy file at `path`.
pub fn load_policy(path: &std::path::Path) -> anyhow::Result<deps::Policy> {
    toml::from_str(&Context::read_text(path)?)
        .with_context(|| format!("the dependency policy {}", path.display()))
}

pub fn run(ctx: &Context, cmd: DepsCommand) -> anyhow::Result<()> {
    let DepsCommand::Check { policy, lockfiles } = cmd;
    let policy = load_policy(&policy)?;
    let mut components = Vec::new();
    for path in &lockfiles {
        let bytes = sealwright_repo::fsutil::read_capped(path, lockfile::MAX_LOCKFILE_BYTES as u64)
            .with_context(|| format!("reading {}", path.display()))?;
        components.extend(lockfile::parse(&path.to_string_lossy(), &bytes)?);
    }
    let findings = deps::check(&policy, &components);
    emit(ctx.json, &findings, || {
        for f in &findings {
            let kind = serde_json::to_value(f.finding)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            println!("deny  {kind:<24} {}  {}", f.component, f.message);
        }
        if findings.is_empty() {
            println!(
                "{} component(s) checked: nothing the policy forbids",
                components.len()
            );
        }
    })?;
    anyhow::ensure!(
        findings.is_empty(),
        "{} finding(s) in {} component(s)",
        findings.len(),
        components.len()
    );
    Ok(())
}
