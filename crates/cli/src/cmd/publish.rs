//! `sealwright publish`: sign what is staged and switch `published/` to it atomically.

use chrono::Utc;

use sealwright_repo::publish::{self, PublishReport};
use sealwright_repo::Keyring;

use super::Context;
use crate::output::{emit, Spinner};

#[derive(Debug, clap::Args)]
pub struct Args {}

/// A publish with `keyring`'s keys (see `sealwright_repo::publish::publish`); `None` when
/// there was nothing to do. A spinner is shown only when asked (never while a passphrase
/// prompt could interleave with it).
pub fn publish_with(
    ctx: &Context,
    keyring: &Keyring<'_>,
    show_progress: bool,
) -> anyhow::Result<Option<PublishReport>> {
    let policy = ctx.policy()?;
    let spinner = show_progress.then(|| Spinner::new("publishing"));
    let progress = |what: &str| {
        if let Some(s) = &spinner {
            s.set(what);
        }
    };
    Ok(publish::publish(
        &ctx.repo,
        &policy,
        keyring,
        Utc::now(),
        &progress,
    )?)
}

pub fn run(ctx: &Context, _args: Args) -> anyhow::Result<()> {
    let source = ctx.passphrases()?;
    let keyring = Keyring::new(&ctx.repo, &source);
    let report = publish_with(
        ctx,
        &keyring,
        !sealwright_repo::PassphraseSource::interactive(&source),
    )?;
    match report {
        Some(report) => emit(ctx.json, &report, || print_report(&report)),
        None => emit(
            ctx.json,
            &serde_json::json!({"nothing_to_publish": true, "roles": {}, "targets_added": 0}),
            || {
                println!(
                    "nothing to publish: nothing is staged, root is unchanged and snapshot and timestamp are far from expiry (stage with `sealwright add`; `sealwright status` shows expiry)"
                )
            },
        ),
    }
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
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
}
