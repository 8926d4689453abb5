//! Offline signing: `sign-request ROLE` on the online machine, `sign REQ --key K` on the
//! offline one, `sign-import SIG` back online. Root keys never touch the online machine.
//!
//! The request carries the exact `signed` object and its SHA-256 (of the canonical JSON);
//! `sign` shows what it is about to sign and signs only bytes whose digest matches, and
//! `sign-import` accepts only a signature that verifies, by a key authorised for that role,
//! over the version still pending.

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use sealwright_crypto::canonical::to_canonical_json;
use sealwright_crypto::digest::sha256_hex;
use sealwright_crypto::Signer;
use sealwright_repo::fsutil::read_capped;
use sealwright_repo::publish::{self, Pending};
use sealwright_repo::Keyring;

use super::Context;

const REQUEST_TYPE: &str = "sealwright-sign-request/v1";
const SIGNATURE_TYPE: &str = "sealwright-signature/v1";
const MAX_REQUEST_BYTES: u64 = 512 * 1024 * 1024;

#[derive(Debug, Serialize, Deserialize)]
struct SignRequest {
    #[serde(rename = "type")]
    kind: String,
    role: String,
    version: u64,
    signed_sha256: String,
    signed: serde_json::Value,
}

#[derive(Debug, Serialize, Deserialize)]
struct SignatureFile {
    #[serde(rename = "type")]
    kind: String,
    role: String,
    version: u64,
    signed_sha256: String,
    keyid: String,
    sig: String,
}

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
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The signature file (from `sign`).
    signature: PathBuf,
}

pub fn request(ctx: &Context, args: RequestArgs) -> anyhow::Result<()> {
    if args.role == "timestamp" || args.role == "snapshot" {
        bail!("{} is an online role: its keys sign at publish time (it pins the bytes of the roles below it)", args.role);
    }
    let policy = ctx.policy()?;
    let mut plan = publish::plan(&ctx.repo, &policy, Utc::now())?;
    let Some(document) = plan.role_document(&ctx.repo, &args.role)? else {
        bail!(
            "role {} has no change to sign: nothing staged for it and it is not expiring",
            args.role
        );
    };
    Pending::new(&ctx.repo).save(&args.role, &document)?;
    let signed = document.get("signed").cloned().unwrap_or_default();
    let canonical = to_canonical_json(&signed)?;
    let version = signed.get("version").and_then(|v| v.as_u64()).unwrap_or(0);
    let req = SignRequest {
        kind: REQUEST_TYPE.into(),
        role: args.role.clone(),
        version,
        signed_sha256: sha256_hex(&canonical),
        signed,
    };
    let written = write_output(args.output.as_deref(), &req)?;
    eprintln!(
        "signing request for {} version {version} written to {written}; sign it offline with `sealwright sign REQ --key KEY`",
        args.role
    );
    Ok(())
}

pub fn sign(ctx: &Context, args: SignArgs) -> anyhow::Result<()> {
    let bytes = read_capped(&args.request, MAX_REQUEST_BYTES)
        .with_context(|| format!("reading {}", args.request.display()))?;
    let req: SignRequest = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a signing request", args.request.display()))?;
    if req.kind != REQUEST_TYPE {
        bail!("{}: not a {REQUEST_TYPE} file", args.request.display());
    }
    let canonical = to_canonical_json(&req.signed)?;
    if sha256_hex(&canonical) != req.signed_sha256 {
        bail!(
            "{}: the signed content does not match its digest; the request was altered",
            args.request.display()
        );
    }
    let declared_type = req
        .signed
        .get("_type")
        .and_then(|t| t.as_str())
        .unwrap_or("?");
    let expires = req
        .signed
        .get("expires")
        .and_then(|t| t.as_str())
        .unwrap_or("?");
    eprintln!(
        "signing {} version {} (_type {declared_type}), expires {expires}",
        req.role, req.version
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
    let source = ctx.passphrases()?;
    let keyring = Keyring::new(&ctx.repo, &source);
    let key = keyring.open_file(&args.key, &args.key.display().to_string())?;
    let sig = key.sign(&canonical)?;
    let out = SignatureFile {
        kind: SIGNATURE_TYPE.into(),
        role: req.role,
        version: req.version,
        signed_sha256: req.signed_sha256,
        keyid: key.keyid().to_owned(),
        sig: hex::encode(sig),
    };
    let written = write_output(args.output.as_deref(), &out)?;
    eprintln!(
        "signature by {} written to {written}; import it on the repository machine with `sealwright sign-import`",
        out.keyid
    );
    Ok(())
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

pub fn import(ctx: &Context, args: ImportArgs) -> anyhow::Result<()> {
    let policy = ctx.policy()?;
    let bytes = read_capped(&args.signature, 1024 * 1024)
        .with_context(|| format!("reading {}", args.signature.display()))?;
    let sig: SignatureFile = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a signature file", args.signature.display()))?;
    if sig.kind != SIGNATURE_TYPE {
        bail!("{}: not a {SIGNATURE_TYPE} file", args.signature.display());
    }
    let pending = Pending::new(&ctx.repo);
    let Some(mut document) = pending.load(&sig.role)? else {
        bail!(
            "no pending signing request for role {}: run `sealwright sign-request {}` first",
            sig.role,
            sig.role
        );
    };
    let signed = document.get("signed").cloned().unwrap_or_default();
    let canonical = to_canonical_json(&signed)?;
    if sha256_hex(&canonical) != sig.signed_sha256 {
        bail!("this signature is for a different version of {} than the one pending (request it again)", sig.role);
    }
    let plan = publish::plan(&ctx.repo, &policy, Utc::now())?;
    let (keys, allowed) = plan
        .signing_authority(&sig.role)
        .ok_or_else(|| anyhow::anyhow!("role {} has nothing pending to sign", sig.role))?;
    if !allowed.contains(&sig.keyid) {
        bail!(
            "key {} is not authorised to sign role {}",
            sig.keyid,
            sig.role
        );
    }
    let key = keys
        .get(&sig.keyid)
        .ok_or_else(|| anyhow::anyhow!("unknown key {}", sig.keyid))?;
    let raw = hex::decode(&sig.sig).context("signature is not hex")?;
    key.verify(&canonical, &raw).with_context(|| {
        format!(
            "signature by {} does not verify over the pending {}",
            sig.keyid, sig.role
        )
    })?;
    let sigs = document
        .get_mut("signatures")
        .and_then(|s| s.as_array_mut())
        .ok_or_else(|| anyhow::anyhow!("pending {} is corrupt", sig.role))?;
    sigs.retain(|s| s.get("keyid").and_then(|k| k.as_str()) != Some(sig.keyid.as_str()));
    sigs.push(serde_json::json!({"keyid": sig.keyid, "sig": sig.sig}));
    let count = sigs.len();
    pending.save(&sig.role, &document)?;
    ctx.audit(
        "signature-import",
        &sig.role,
        serde_json::json!({"keyid": sig.keyid, "version": sig.version}),
    )?;
    println!("imported signature by {} for {} version {} ({count} signature(s) pending); run `sealwright publish`", sig.keyid, sig.role, sig.version);
    Ok(())
}
