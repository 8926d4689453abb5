//! `sealwright push`: publish through a server's publish API instead of writing
//! `published/` here. Targets roles are signed on this machine (where the offline keys
//! are); the server verifies them, stores the artifacts and has its signer agent sign
//! snapshot and timestamp.

use std::path::PathBuf;

use anyhow::Context as _;

use sealwright_client::fetch::{https_agent, is_loopback, HttpConfig};
use sealwright_client::tls::{ClientIdentity, TlsOptions};
use sealwright_repo::push::https::{push_over_https, Server};
use sealwright_repo::Keyring;

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
    let bar = std::cell::OnceCell::new();
    let (report, accepted) = push_over_https(
        &ctx.repo,
        &policy,
        &keyring,
        &Server {
            url: &server,
            agent: &agent,
            token: token.as_deref().map(String::as_str),
        },
        &|_, total| bar.get_or_init(|| Progress::new(total, "uploading")).inc(),
    )?;
    if let Some(bar) = bar.get() {
        bar.finish();
    }
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
