//! `sealwright serve`: serve `published/` over HTTPS (see `sealwright-server`).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use sealwright_server::{Ready, ServeOptions, TlsSource};

use super::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// PEM certificate chain (leaf first); needs --key.
    #[arg(
        long,
        value_name = "FILE",
        requires = "key",
        conflicts_with = "dev_cert_out"
    )]
    cert: Option<PathBuf>,
    /// PEM private key for --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// Without --cert: generate a development certificate for 127.0.0.1/localhost and write
    /// it here for clients to trust [default: DIR/dev-ca.pem].
    #[arg(long, value_name = "FILE")]
    dev_cert_out: Option<PathBuf>,
    /// Also accept pushes (`sealwright push`) at /api/v1/: publishers with a token from
    /// `sealwright token add` upload artifacts and signed targets roles; the server verifies
    /// them and signs snapshot and timestamp through the signer agent. The repository must
    /// then hold no private key at all, and its snapshot and timestamp keys must be at
    /// agent:SOCKET locations (docs/push.md).
    #[arg(long)]
    push: bool,
    /// With --push: also accept publishers that connect with a TLS client certificate issued
    /// by this CA (PEM) and registered with `token add NAME --role ROLE --client-cert`.
    /// Clients without a certificate are still served the repository.
    #[arg(long, value_name = "CA.pem", requires = "push")]
    client_ca: Option<PathBuf>,
    /// Largest artifact one upload may carry, in bytes (with --push).
    #[arg(long, value_name = "BYTES", default_value_t = sealwright_server::push::DEFAULT_MAX_BLOB, requires = "push")]
    max_blob: u64,
    /// With --push: keep what replicas share in a PostgreSQL database and an S3 bucket
    /// instead of the data directory alone, which becomes this replica's working copy and
    /// cache (docs/scale-out.md).
    #[command(flatten)]
    shared: super::shared_store::StoreArgs,
}

/// Refuses, with what to pass instead, a directory `serve` cannot serve: one that does not
/// exist, a published tree given in place of its repository, or something else entirely.
fn check_serve_dir(repo: &std::path::Path) -> anyhow::Result<()> {
    let shown = repo.display();
    if !repo.is_dir() {
        anyhow::bail!("{shown} does not exist or is not a directory: pass the repository (the directory holding sealwright.toml and published/) with --repo");
    }
    if repo.join("metadata").is_dir() && !repo.join("sealwright.toml").exists() {
        let parent = repo
            .parent()
            .map_or_else(|| "..".into(), |p| p.display().to_string());
        anyhow::bail!("{shown} is a published tree, not a repository: pass the directory that holds it and sealwright.toml (--repo {parent})");
    }
    if !repo.join("sealwright.toml").is_file() {
        anyhow::bail!("{shown} is not a Sealwright repository (no sealwright.toml): create one with `sealwright init {shown}`, or pass the repository that holds published/");
    }
    if !repo.join("published").is_dir() {
        anyhow::bail!(
            "{shown} has nothing published yet: run `sealwright --repo {shown} publish` first"
        );
    }
    Ok(())
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    check_serve_dir(&ctx.repo)?;
    if args.shared.store.is_some() && !args.push {
        anyhow::bail!("--store serves replicas that take pushes: add --push (docs/scale-out.md)");
    }
    let published = ctx.repo.join("published");
    let tls = match (args.cert, args.key) {
        (Some(cert), Some(key)) => TlsSource::Files { cert, key },
        _ => TlsSource::Dev {
            ca_out: args
                .dev_cert_out
                .unwrap_or_else(|| ctx.repo.join("dev-ca.pem")),
        },
    };
    let opts = ServeOptions {
        published: published.clone(),
        listen: args.listen,
        tls,
        push: args.push.then(|| sealwright_server::push::PushOptions {
            repo_dir: ctx.repo.clone(),
            max_blob: args.max_blob,
            client_ca: args.client_ca,
            shared: args.shared.config(),
        }),
    };
    let push = args.push;
    let json = ctx.json;
    let root = published.join("metadata").join("1.root.json");
    sealwright_server::serve_blocking(opts, |r| announce(json, r, &published, &root, push))
        .context("serve")?;
    Ok(())
}

fn announce(
    json: bool,
    r: &Ready,
    published: &std::path::Path,
    root: &std::path::Path,
    push: bool,
) {
    if json {
        let v = serde_json::json!({
            "push_url": push.then(|| format!("{}/api/v1/", r.url)),
            "url": r.url,
            "listen": r.local_addr.to_string(),
            "fingerprint_sha256": r.fingerprint,
            "dev_ca": r.dev_ca,
            "published": published,
            "metadata_url": format!("{}/metadata/", r.url),
            "targets_url": format!("{}/targets/", r.url),
        });
        println!("{v}");
        return;
    }
    println!("Serving {} at {}", published.display(), r.url);
    println!("Certificate SHA-256 fingerprint: {}", r.fingerprint);
    let log_vkey = published
        .parent()
        .map(|dir| dir.join(sealwright_repo::server_dir::LOG_VKEY_FILE));
    if let Some(Ok(vkey)) = log_vkey.as_deref().map(super::Context::read_text) {
        println!("Transparency log: {}/log/ (key {})", r.url, vkey.trim());
    }
    let ca = match &r.dev_ca {
        Some(ca) => {
            println!(
                "Development certificate (give it to clients as their CA): {}",
                ca.display()
            );
            ca.display().to_string()
        }
        None => "CA.pem".to_owned(),
    };
    println!(
        "Metadata: {}/metadata/   Targets: {}/targets/",
        r.url, r.url
    );
    println!("Health: {}/healthz   Metrics: {}/metrics", r.url, r.url);
    if push {
        println!(
            "Publish API: {}/api/v1/ (publishers: sealwright push --server {} --token-file FILE; tokens: sealwright token add)",
            r.url, r.url
        );
    }
    println!("Clients start from the trusted root {}", root.display());
    println!(
        "  python-tuf: SSL_CERT_FILE={ca} and Updater(metadata_base_url=\"{}/metadata/\", target_base_url=\"{}/targets/\", bootstrap=<root bytes>, ...)",
        r.url, r.url
    );
    println!(
        "  sealwright clients: use {} with {ca} as the custom CA",
        r.url
    );
    println!("  curl --cacert {ca} {}/metadata/timestamp.json", r.url);
    println!("Stop with Ctrl-C or SIGTERM.");
}
