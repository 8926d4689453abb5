//! Offline signing: `sign-request ROLE` on the online machine, `sign REQ --key K` on the
//! offline one, `sign-import SIG` back online (the checks are in
//! `sealwright_repo::publish::offline`). Root keys never touch the online machine.

use std::path::PathBuf;

use anyhow::Context as _;
use chrono::Utc;

use sealwright_repo::fsutil::read_capped;
use sealwright_repo::publish::{
    check_request, import_signature, request_signature, sign_request, MAX_REQUEST_BYTES,
    MAX_SIGNATURE_BYTES,
};
use sealwright_repo::Keyring;

use super::Context;

#[derive(Debug, clap::Args)]
pub struct RequestArgs {
    /// Role to sign: root, targets or a delegated role.
    role: String,
    /// Write the request to this file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// The signing request file (from `sign-request`).
    request: PathBuf,
    /// Private key file (PEM, usually encrypted).
    #[arg(long)]
    key: PathBuf,
    /// Write the signature to this file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Show the changes against your own copy of the role's current metadata (the file
    /// devices have now) instead of the copy the request carries.
    #[arg(long, value_name = "FILE")]
    against: Option<PathBuf>,
    /// Sign even though changes are flagged (threshold lowered, keys added or removed,
    /// expiry beyond policy, a target re-pointed, a delegation widened). Without it, flagged
    /// changes are confirmed at the terminal, or refused when there is none.
    #[arg(long)]
    accept_flagged: bool,
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The signature file (from `sign`).
    signature: PathBuf,
}

pub fn request(ctx: &Context, args: RequestArgs) -> anyhow::Result<()> {
    let policy = ctx.policy()?;
    let req = request_signature(&ctx.repo, &policy, &args.role, Utc::now())?;
    show_request(&req);
    let written = write_output(args.output.as_deref(), &req)?;
    eprintln!(
        "signing request for {} version {} written to {written}; sign it offline with `sealwright sign REQ --key KEY`",
        req.role, req.version
    );
    Ok(())
}

pub fn sign(ctx: &Context, args: SignArgs) -> anyhow::Result<()> {
    let shown = args.request.display();
    let bytes = read_capped(&args.request, MAX_REQUEST_BYTES)
        .with_context(|| format!("reading {shown}"))?;
    let (mut req, canonical) = check_request(&bytes).with_context(|| shown.to_string())?;
    if let Some(own) = &args.against {
        let text = read_capped(own, MAX_REQUEST_BYTES)
            .with_context(|| format!("reading {}", own.display()))?;
        let value: serde_json::Value = serde_json::from_slice(&text)
            .with_context(|| format!("{} is not JSON metadata", own.display()))?;
        req.published = Some(value.get("signed").cloned().unwrap_or(value));
    }
    let changes = show_request(&req);
    confirm_flagged(&changes, args.accept_flagged)?;
    let source = ctx.passphrases()?;
    let keyring = Keyring::new(&ctx.repo, &source);
    let key = keyring.open_file(&args.key, &args.key.display().to_string())?;
    let out = sign_request(&req, &canonical, &key)?;
    let written = write_output(args.output.as_deref(), &out)?;
    eprintln!(
        "signature by {} written to {written}; import it on the repository machine with `sealwright sign-import`",
        out.keyid
    );
    Ok(())
}

/// What the offline signer is about to sign, for the person at its keyboard.
/// Prints the request and the changes it asks for, which it returns.
fn show_request(
    req: &sealwright_repo::publish::SignRequest,
) -> Vec<sealwright_repo::review::Change> {
    let field = |k: &str| req.signed.get(k).and_then(|t| t.as_str()).unwrap_or("?");
    eprintln!(
        "signing {} version {} (_type {}), expires {}",
        req.role,
        req.version,
        field("_type"),
        field("expires")
    );
    eprintln!("  content sha256 {}", req.signed_sha256);
    if let Some(roles) = req.signed.get("roles").and_then(|r| r.as_object()) {
        for (name, r) in roles {
            let n = r
                .get("keyids")
                .and_then(|k| k.as_array())
                .map_or(0, Vec::len);
            let t = r.get("threshold").and_then(|t| t.as_u64()).unwrap_or(0);
            eprintln!("  role {name}: threshold {t} of {n} key(s)");
        }
    }
    if let Some(t) = req.signed.get("targets").and_then(|t| t.as_object()) {
        eprintln!("  {} target(s)", t.len());
    }
    eprintln!("changes against the published version:");
    let changes = req.review(Utc::now());
    for change in &changes {
        match change.flag {
            Some(flag) => eprintln!("  ! {} [{flag}]", change.what),
            None => eprintln!("    {}", change.what),
        }
    }
    changes
}

/// Flagged changes are signed only when the signer says so: `--accept-flagged`, or "yes"
/// at the terminal.
fn confirm_flagged(
    changes: &[sealwright_repo::review::Change],
    accepted: bool,
) -> anyhow::Result<()> {
    let flagged: Vec<&'static str> = changes.iter().filter_map(|c| c.flag).collect();
    if flagged.is_empty() || accepted {
        return Ok(());
    }
    let flags = flagged.join(", ");
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        eprint!("this request has flagged changes ({flags}); type yes to sign it: ");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if answer.trim() == "yes" {
            return Ok(());
        }
    }
    anyhow::bail!(
        "not signed: the request has flagged changes ({flags}); read them above, and sign with --accept-flagged only if you meant them"
    )
}

/// Writes `value` as JSON to `file` (atomically), or to stdout; says where it went.
fn write_output(
    file: Option<&std::path::Path>,
    value: &impl serde::Serialize,
) -> anyhow::Result<String> {
    let text = format!("{}\n", serde_json::to_string_pretty(value)?);
    match file {
        Some(path) => {
            sealwright_repo::fsutil::write_atomic(path, text.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(path.display().to_string())
        }
        None => {
            print!("{text}");
            Ok("stdout".to_owned())
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {}

/// `sign-status`: each pending version, who signed it and who has not.
pub fn status(ctx: &Context, _args: StatusArgs) -> anyhow::Result<()> {
    let policy = ctx.policy()?;
    let pending = sealwright_repo::publish::pending_status(&ctx.repo, &policy, Utc::now())?;
    crate::output::emit(ctx.json, &pending, || {
        if pending.is_empty() {
            println!("nothing is waiting for offline signatures");
        }
        for p in &pending {
            println!(
                "{} version {}: {} of {} signature(s); signed by: {}; not yet: {}",
                p.role,
                p.version,
                p.signed_by.len(),
                p.threshold,
                if p.signed_by.is_empty() {
                    "nobody".to_owned()
                } else {
                    p.signed_by.join(", ")
                },
                if p.missing.is_empty() {
                    "nobody".to_owned()
                } else {
                    p.missing.join(", ")
                }
            );
        }
    })
}

pub fn import(ctx: &Context, args: ImportArgs) -> anyhow::Result<()> {
    let policy = ctx.policy()?;
    let shown = args.signature.display();
    let bytes = read_capped(&args.signature, MAX_SIGNATURE_BYTES)
        .with_context(|| format!("reading {shown}"))?;
    let (sig, count) = import_signature(&ctx.repo, &policy, &bytes, Utc::now())
        .with_context(|| shown.to_string())?;
    println!("imported signature by {} for {} version {} ({count} signature(s) pending); run `sealwright publish`", sig.keyid, sig.role, sig.version);
    Ok(())
}
