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
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
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
    };
    let json = ctx.json;
    let root = published.join("metadata").join("1.root.json");
    sealwright_server::serve_blocking(opts, |r| announce(json, r, &published, &root))
        .context("serve")?;
    Ok(())
}

fn announce(json: bool, r: &Ready, published: &std::path::Path, root: &std::path::Path) {
    if json {
        let v = serde_json::json!({
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
