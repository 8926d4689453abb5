//! `sealwright status`: what is staged, what is pending offline signature, and when each
//! published role expires. A role with less than a quarter of its validity left (when
//! `publish` re-signs it) is a warning; when its keys are offline, a signing request for its
//! next version is prepared in `signing-requests/ROLE.json`, so re-signing before expiry
//! waits only for the key holders.

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
    let mut expiring = Vec::new();
    let mut push = |role: &str, version: Option<u64>, expires: Option<chrono::DateTime<Utc>>| {
        let days = expires.map(|e| (e - now).num_days());
        let period = policy.role(role).map(|(_, _, p)| p);
        if let (Some(d), Some(e)) = (days, expires) {
            if e <= now {
                warnings.push(format!(
                    "{role} EXPIRED at {}: clients refuse it; run `sealwright publish`",
                    e.to_rfc3339()
                ));
            } else if period
                .is_some_and(|p| sealwright_repo::publish::expiring(e, p.duration(), now))
                && role != "timestamp"
                && role != "snapshot"
            {
                warnings.push(format!("{role} expires in {d} day(s)"));
                expiring.push(role.to_owned());
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
    let mut pending_signatures = sealwright_repo::publish::Pending::new(&ctx.repo).roles()?;
    for role in expiring {
        match prepare_signing_request(ctx, &policy, &role, &pending_signatures, now) {
            Ok(Some(file)) => {
                warnings.push(format!(
                    "{role} is signed offline: a signing request for its next version is ready in {file}; sign it with `sealwright sign` where its key is, then `sealwright sign-import` and `sealwright publish`"
                ));
                pending_signatures.push(role);
            }
            Ok(None) => {}
            Err(e) => warnings.push(format!("{role}: could not prepare a signing request: {e}")),
        }
    }
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

/// For an expiring role no key here can sign (all offline) and with no request pending:
/// writes a signing request for its next version to `signing-requests/ROLE.json`; returns
/// that path. `None` when the keys are here (`publish` re-signs it) or a request is pending.
fn prepare_signing_request(
    ctx: &Context,
    policy: &sealwright_repo::Policy,
    role: &str,
    pending: &[String],
    now: chrono::DateTime<Utc>,
) -> anyhow::Result<Option<String>> {
    let keys = policy.role(role).map_or(&[][..], |(k, _, _)| k);
    let offline = !keys.is_empty()
        && keys
            .iter()
            .all(|k| policy.keys.get(k).is_some_and(|e| e.private.is_none()));
    if !offline || pending.iter().any(|p| p == role) {
        return Ok(None);
    }
    let request = sealwright_repo::publish::request_signature(&ctx.repo, policy, role, now)?;
    let relative = format!(
        "{}/{role}.json",
        sealwright_repo::publish::SIGNING_REQUESTS_DIR
    );
    let path = ctx.repo.join(&relative);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    sealwright_repo::fsutil::write_atomic(
        &path,
        format!("{}\n", serde_json::to_string_pretty(&request)?).as_bytes(),
    )?;
    Ok(Some(relative))
}
