//! `sealwright status`: what is staged, what is pending offline signature, and when each
//! published role expires.

use chrono::Utc;
use serde::Serialize;

use sealwright_repo::publish::Published;
use sealwright_repo::staging::Staging;

use super::Context;
use crate::output::emit;

#[derive(Debug, clap::Args)]
pub struct Args {}

#[derive(Debug, Serialize)]
struct RoleStatus {
    role: String,
    version: Option<u64>,
    expires: Option<String>,
    expires_in_days: Option<i64>,
    staged_targets: usize,
}

#[derive(Debug, Serialize)]
struct Status {
    repository: String,
    roles: Vec<RoleStatus>,
    staged_targets: usize,
    pending_signatures: Vec<String>,
    warnings: Vec<String>,
}

pub fn run(ctx: &Context, _args: Args) -> anyhow::Result<()> {
    let policy = ctx.policy()?;
    let staged = Staging::load(&ctx.repo)?;
    let published = Published::load(&ctx.repo)?;
    let now = Utc::now();
    let mut roles = Vec::new();
    let mut warnings = Vec::new();
    let mut push = |role: &str, version: Option<u64>, expires: Option<chrono::DateTime<Utc>>| {
        let days = expires.map(|e| (e - now).num_days());
        if let (Some(d), Some(e)) = (days, expires) {
            if e <= now {
                warnings.push(format!(
                    "{role} EXPIRED at {}: clients refuse it; run `sealwright publish`",
                    e.to_rfc3339()
                ));
            } else if d < 7 && role != "timestamp" && role != "snapshot" {
                warnings.push(format!("{role} expires in {d} day(s)"));
            }
        }
        roles.push(RoleStatus {
            role: role.to_owned(),
            version,
            expires: expires.map(|e| e.to_rfc3339()),
            expires_in_days: days,
            staged_targets: staged.targets.get(role).map_or(0, |t| t.len()),
        });
    };
    push(
        "root",
        published.root.as_ref().map(|r| r.signed.version),
        published.root.as_ref().map(|r| r.signed.expires),
    );
    push(
        "timestamp",
        published.timestamp.as_ref().map(|r| r.signed.version),
        published.timestamp.as_ref().map(|r| r.signed.expires),
    );
    push(
        "snapshot",
        published.snapshot.as_ref().map(|r| r.signed.version),
        published.snapshot.as_ref().map(|r| r.signed.expires),
    );
    let mut names = vec!["targets".to_owned()];
    names.extend(
        policy
            .delegations
            .iter()
            .filter(|d| d.succinct_bits.is_none())
            .map(|d| d.name.clone()),
    );
    for name in &names {
        let md = published.targets_role(name)?;
        push(
            name,
            md.as_ref().map(|m| m.signed.version),
            md.as_ref().map(|m| m.signed.expires),
        );
    }
    for d in policy
        .delegations
        .iter()
        .filter(|d| d.succinct_bits.is_some())
    {
        push(
            &format!(
                "{}-* ({} bins)",
                d.name,
                1u64 << d.succinct_bits.unwrap_or(0)
            ),
            None,
            None,
        );
    }
    let pending_dir = ctx.repo.join(sealwright_repo::publish::PENDING_DIR);
    let pending_signatures = std::fs::read_dir(&pending_dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(|n| n.strip_suffix(".pending"))
                        .map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default();
    if published.root.is_none() {
        warnings.push("nothing published yet: run `sealwright publish`".into());
    }
    let status = Status {
        repository: ctx.repo.display().to_string(),
        roles,
        staged_targets: staged.len(),
        pending_signatures,
        warnings,
    };
    emit(ctx.json, &status, || {
        println!("repository {}", status.repository);
        println!(
            "{:<28} {:>8} {:<28} {:>7}",
            "ROLE", "VERSION", "EXPIRES", "STAGED"
        );
        for r in &status.roles {
            println!(
                "{:<28} {:>8} {:<28} {:>7}",
                r.role,
                r.version.map_or("-".to_owned(), |v| v.to_string()),
                r.expires.clone().unwrap_or_else(|| "-".into()),
                r.staged_targets
            );
        }
        println!("{} target(s) staged", status.staged_targets);
        if !status.pending_signatures.is_empty() {
            println!(
                "pending offline signatures for: {}",
                status.pending_signatures.join(", ")
            );
        }
        for w in &status.warnings {
            println!("warning: {w}");
        }
    })
}
