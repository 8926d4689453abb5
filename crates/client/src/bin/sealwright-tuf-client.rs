//! `sealwright-tuf-client`: the TUF conformance-test CLI over Sealwright's updater
//! (`init`, `refresh`, `download`; see docs/tuf-client-cli.md). Exit status is exactly 0
//! on success and 1 on any failure, including usage errors and panics.

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use clap::Parser;
use sealwright_client::{init, HttpFetcher, Updater, UpdaterConfig};

#[derive(Debug, Parser)]
#[command(
    name = "sealwright-tuf-client",
    version,
    about = "TUF client for conformance tests"
)]
struct Cli {
    /// Local metadata directory (trusted state).
    #[arg(long, global = true, value_name = "MD")]
    metadata_dir: Option<PathBuf>,
    /// Base URL of the repository's metadata (ends with `/`).
    #[arg(long, global = true, value_name = "MURL")]
    metadata_url: Option<String>,
    /// A target to download (repeatable, in order).
    #[arg(long = "target-name", global = true, value_name = "PATH")]
    target_names: Vec<String>,
    /// Where downloaded targets are stored.
    #[arg(long, global = true, value_name = "TD")]
    target_dir: Option<PathBuf>,
    /// Base URL of the targets (ends with `/`).
    #[arg(long, global = true, value_name = "TURL")]
    target_base_url: Option<String>,
    /// Accepted and ignored.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Trust TRUSTED_ROOT_FILE: copy it to MD/root.json (no network).
    Init {
        /// The root metadata to trust.
        trusted_root: PathBuf,
    },
    /// Update the trusted metadata from MURL.
    Refresh,
    /// Refresh, then download every --target-name into TD.
    Download,
}

fn required<T>(value: Option<T>, flag: &str) -> anyhow::Result<T> {
    value.with_context(|| format!("{flag} is required"))
}

fn updater(cli: &Cli, now: chrono::DateTime<chrono::Utc>) -> anyhow::Result<Updater<HttpFetcher>> {
    let md = required(cli.metadata_dir.clone(), "--metadata-dir")?;
    let url = required(cli.metadata_url.clone(), "--metadata-url")?;
    let fetcher = HttpFetcher::for_base_url(&url);
    let mut config = UpdaterConfig::new(md, url);
    if let (Some(td), Some(turl)) = (&cli.target_dir, &cli.target_base_url) {
        config = config.with_targets(td.clone(), turl.clone());
    }
    Ok(Updater::new(config, fetcher, now)?)
}

fn run(cli: Cli) -> anyhow::Result<()> {
    // The clock is read once, here; every expiry check of this process uses it.
    let now = chrono::Utc::now();
    match &cli.command {
        Command::Init { trusted_root } => {
            let md = required(cli.metadata_dir.clone(), "--metadata-dir")?;
            let max = sealwright_tuf::engine::Limits::default().root as u64;
            let bytes = sealwright_fs::read_capped(trusted_root, max)
                .with_context(|| format!("reading {}", trusted_root.display()))?;
            init(&md, &bytes)?;
        }
        Command::Refresh => {
            updater(&cli, now)?.refresh()?;
        }
        Command::Download => {
            required(cli.target_dir.as_ref(), "--target-dir")?;
            required(cli.target_base_url.as_ref(), "--target-base-url")?;
            let mut updater = updater(&cli, now)?;
            updater.refresh()?;
            for name in &cli.target_names {
                let Some(found) = updater.get_targetinfo(name)? else {
                    bail!("target {name} not found in the trusted metadata");
                };
                if let Some(path) = updater.find_cached_target(&found.target, name)? {
                    eprintln!("{name}: already in {}", path.display());
                    continue;
                }
                let path = updater
                    .download_target(&found.target, name)
                    .with_context(|| format!("downloading {name}"))?;
                eprintln!("{name}: verified, stored as {}", path.display());
            }
        }
    }
    Ok(())
}

/// A failure as `main` reports it: one line with the whole cause chain (exit status 1).
struct Failure(anyhow::Error);

impl std::fmt::Debug for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

fn main() -> Result<(), Failure> {
    // A panic is a failure like any other: exit 1, never 101.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("error: internal error: {info}");
        std::process::exit(1);
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    Ok(())
                }
                _ => Err(Failure(anyhow::anyhow!("invalid command line"))),
            };
        }
    };
    run(cli).map_err(Failure)
}
