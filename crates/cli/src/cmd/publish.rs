//! `sealwright publish`: sign what is staged and switch `published/` to it atomically.

use chrono::Utc;

use sealwright_repo::publish::{self, PublishReport};
use sealwright_repo::KeyStore;

use super::Context;
use crate::output::emit;

#[derive(Debug, clap::Args)]
pub struct Args {}

/// Plans and executes a publish with `store`'s keys.
pub fn publish_with(
    ctx: &Context,
    store: &KeyStore<'_>,
    _interactive: bool,
) -> anyhow::Result<PublishReport> {
    let policy = ctx.policy()?;
    let plan = publish::plan(&ctx.repo, &policy, Utc::now())?;
    Ok(publish::execute(&ctx.repo, &policy, store, plan)?)
}

pub fn run(ctx: &Context, _args: Args) -> anyhow::Result<()> {
    let source = ctx.passphrases()?;
    let store = KeyStore::new(&ctx.repo, &source);
    let report = publish_with(ctx, &store, true)?;
    emit(ctx.json, &report, || print_report(&report))
}

/// Human summary of a publish.
pub fn print_report(report: &PublishReport) {
    let bins = report.roles.len().saturating_sub(20);
    println!(
        "published {} new target(s); new role versions:",
        report.targets_added
    );
    for (i, (role, version)) in report.roles.iter().enumerate() {
        if bins > 0 && i >= 20 {
            println!("  ... and {bins} more roles");
            break;
        }
        let expires = report.expires.get(role).map(String::as_str).unwrap_or("?");
        println!("  {role:<24} v{version:<6} expires {expires}");
    }
}
