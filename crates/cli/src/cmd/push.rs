//! `sealwright push`: publish through a server's publish API instead of writing
//! `published/` here. Targets roles are signed on this machine (where the offline keys
//! are); the server verifies them, stores the artifacts and has its signer agent sign
//! snapshot and timestamp.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::Utc;

use sealwright_client::fetch::{https_agent, is_loopback, HttpConfig};
use sealwright_client::tls::{ClientIdentity, TlsOptions};
use sealwright_repo::publish::{PublishError, PublishReport};
use sealwright_repo::push::{Accepted, Outgoing};
use sealwright_repo::{publish, staging, Keyring, Policy};

use super::Context;
use crate::output::{emit, Progress};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The server, as printed by `sealwright serve --push` (https://HOST:PORT).
    #[arg(long, value_name = "URL")]
    server: String,
    /// File holding the push token (from `sealwright token add` on the server).
    #[arg(long, value_name = "FILE", required_unless_present = "client_cert")]
    token_file: Option<PathBuf>,
    /// Authenticate with this TLS client certificate (PEM) instead of a token; the server
    /// must have it registered (`token add --client-cert`) and trust its CA (`--client-ca`).
    #[arg(
        long,
        value_name = "CERT.pem",
        requires = "client_key",
        conflicts_with = "token_file"
    )]
    client_cert: Option<PathBuf>,
    /// The private key (PEM, unencrypted) of --client-cert.
    #[arg(long, value_name = "KEY.pem", requires = "client_cert")]
    client_key: Option<PathBuf>,
    /// Trust only this CA certificate (PEM) for the server, instead of the Mozilla roots.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
}

/// Largest token file read.
const MAX_TOKEN_FILE: u64 = 4096;

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let server = args.server.trim_end_matches('/').to_owned();
    sealwright_client::fetch::check_transport(&server)
        .map_err(|e| anyhow::anyhow!("--server {e}"))?;
    let token = match &args.token_file {
        Some(file) => Some(zeroize::Zeroizing::new(
            String::from_utf8(
                sealwright_repo::fsutil::read_capped(file, MAX_TOKEN_FILE)
                    .with_context(|| format!("reading the token file {}", file.display()))?,
            )
            .context("the token file is not text")?
            .trim()
            .to_owned(),
        )),
        None => None,
    };
    let mut tls = TlsOptions::default();
    if let (Some(cert), Some(key)) = (&args.client_cert, &args.client_key) {
        tls.client_identity = Some(ClientIdentity::from_pem_files(cert, key)?);
    }
    if let Some(ca) = &args.ca {
        tls = tls.with_ca_file(ca)?;
    }
    let config = HttpConfig {
        proxy_from_env: !is_loopback(&server),
        ..HttpConfig::default()
    };
    let agent = https_agent(&config, &tls)?;

    let policy = ctx.policy()?;
    let source = ctx.passphrases()?;
    let keyring = Keyring::new(&ctx.repo, &source);
    let result = push_over_https(
        &ctx.repo,
        &policy,
        &keyring,
        &agent,
        &server,
        token.as_deref().map(String::as_str),
    );
    match &result {
        Ok((report, _)) => ctx.audit(
            "push",
            &server,
            serde_json::json!({"roles": report.roles, "targets_added": report.targets_added}),
        )?,
        Err(e) => ctx.audit(
            "push-refused",
            &server,
            serde_json::json!({"error": e.to_string()}),
        )?,
    }
    let (report, accepted) = result?;
    let out = serde_json::json!({
        "server": server,
        "roles": report.roles,
        "targets_added": report.targets_added,
        "artifacts_uploaded": accepted.artifacts,
    });
    emit(ctx.json, &out, || {
        println!(
            "pushed to {server}: {} new target(s), {} artifact(s) now served",
            report.targets_added, accepted.artifacts
        );
        for (role, version) in &report.roles {
            println!("  {role:<24} v{version}");
        }
    })
}

/// Signs what is staged in `repo` (targets roles only) and pushes it, with its artifacts, to
/// the publish API at `server` (an `https://HOST:PORT` base URL) with `token`, or with the
/// client certificate `agent` presents when there is none.
pub fn push_over_https(
    repo: &Path,
    policy: &Policy,
    keyring: &Keyring<'_>,
    agent: &ureq::Agent,
    server: &str,
    token: Option<&str>,
) -> Result<(PublishReport, Accepted), PublishError> {
    let plan = publish::plan(repo, policy, Utc::now())?;
    let mut send = |out: &Outgoing| -> Result<Accepted, String> {
        let progress = Progress::new(out.blobs.len() as u64, "uploading");
        for (sha256, path) in &out.blobs {
            let url = format!("{server}/api/v1/blobs/{sha256}");
            // Upload only what the server does not hold yet: a file unchanged between
            // releases, or a push retried after its uploads went through, costs nothing.
            let held = authorize(agent.get(&url), token)
                .config()
                .http_status_as_error(false)
                .build()
                .call()
                .map_err(|e| format!("asking {server} for {path}: {e}"))?;
            match held.status().as_u16() {
                200 => {
                    progress.inc();
                    continue;
                }
                404 => {}
                _ => {
                    check_status(held, &format!("asking for {path}"))?;
                }
            }
            let blob = staging::blob_path(repo, sha256);
            let mut file = std::fs::File::open(&blob)
                .map_err(|e| format!("{path}: staged blob {}: {e}", blob.display()))?;
            let resp = authorize(agent.put(&url), token)
                .send(ureq::SendBody::from_reader(&mut file))
                .map_err(|e| format!("uploading {path} to {server}: {e}"))?;
            check_status(resp, &format!("uploading {path}"))?;
            progress.inc();
        }
        progress.finish();
        let body = serde_json::to_vec(&out.request).map_err(|e| e.to_string())?;
        let resp = authorize(agent.post(format!("{server}/api/v1/push")), token)
            .header("Content-Type", "application/json")
            .send(&body[..])
            .map_err(|e| format!("pushing to {server}: {e}"))?;
        let text = check_status(resp, "the push")?;
        serde_json::from_str(&text)
            .map_err(|e| format!("the server's answer is not a push result: {e}"))
    };
    sealwright_repo::push::push(repo, policy, keyring, plan, &mut send)
}

/// Adds the bearer token, if there is one (without, the client certificate authenticates).
fn authorize<B>(req: ureq::RequestBuilder<B>, token: Option<&str>) -> ureq::RequestBuilder<B> {
    match token {
        Some(t) => req.header("Authorization", format!("Bearer {t}")),
        None => req,
    }
}

/// The body of a 2xx answer, or the server's reason for refusing.
fn check_status(resp: ureq::http::Response<ureq::Body>, what: &str) -> Result<String, String> {
    let status = resp.status().as_u16();
    let text = resp
        .into_body()
        .with_config()
        .limit(16 * 1024 * 1024)
        .read_to_string()
        .map_err(|e| format!("{what}: reading the answer: {e}"))?;
    if (200..300).contains(&status) {
        return Ok(text);
    }
    let reason = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_else(|| text.chars().take(300).collect());
    Err(format!(
        "the server refused {what} (HTTP {status}): {reason}"
    ))
}
