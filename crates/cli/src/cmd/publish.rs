//! `sealwright publish`: sign what is staged and switch `published/` to it atomically.

use chrono::Utc;

use sealwright_repo::publish::{self, PublishReport};
use sealwright_repo::Keyring;

use super::Context;
use crate::output::{emit, Spinner};

#[derive(Debug, clap::Args)]
pub struct Args {}

/// Plans and executes a publish with `keyring`'s keys; `None` when there was nothing to do
/// (nothing staged, root unchanged, snapshot and timestamp far from expiry: no key is
/// opened and nothing is signed). A spinner is shown only when asked (never while a
/// passphrase prompt could interleave with it).
pub fn publish_with(
    ctx: &Context,
    keyring: &Keyring<'_>,
    show_progress: bool,
) -> anyhow::Result<Option<PublishReport>> {
    let policy = ctx.policy()?;
    let spinner = show_progress
        .then(|| Spinner::new("planning: comparing policy, staged files and published metadata"));
    let result = (|| {
        let plan = publish::plan(&ctx.repo, &policy, Utc::now())?;
        if plan.nothing_to_do {
            return Ok(None);
        }
        if let Some(s) = &spinner {
            s.set(&format!(
                "signing {} role(s) and writing the new tree",
                plan.targets.len() + 2
            ));
        }
        Ok::<_, anyhow::Error>(Some(publish::execute(&ctx.repo, &policy, keyring, plan)?))
    })();
    drop(spinner);
    match &result {
        // Nothing signed, nothing changed: nothing to record.
        Ok(None) => {}
        Ok(Some(report)) => ctx.audit(
            "publish",
            "repository",
            serde_json::json!({"roles": report.roles, "targets_added": report.targets_added}),
        )?,
        Err(e) => ctx.audit(
            "publish-refused",
            "repository",
            serde_json::json!({"error": format!("{e:#}")}),
        )?,
    }
    result
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
}
