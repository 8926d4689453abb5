//! `sealwright update`: install the newest release of the configured product and channel
//! into a client directory, verifying everything first (see sealwright_client::install).

use std::path::PathBuf;
use std::time::Duration;

use super::Context;
use crate::output::emit;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Client directory made by `sealwright client init`.
    #[arg(long)]
    dir: PathBuf,
    /// Shell command run after the switch, with SEALWRIGHT_RELEASE_DIR set to the new
    /// release; a non-zero exit or a timeout rolls back to the last known good release.
    #[arg(long, value_name = "CMD")]
    health_check: Option<String>,
    /// Seconds the health check may take.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    health_timeout: u64,
    /// Replace this single file (e.g. the running binary) with the verified artifact instead
    /// of installing into DIR/releases; the old file is kept as PATH.previous.
    #[arg(long, value_name = "PATH")]
    self_replace: Option<PathBuf>,
    /// Apply an offline bundle (made by `sealwright bundle create`) instead of the network.
    #[arg(long, value_name = "FILE", conflicts_with = "every")]
    bundle: Option<PathBuf>,
    /// Periodic mode: check again every INTERVAL (e.g. 30m, 6h, 1d) until stopped; each
    /// refusal is reported and logged and the next check still runs.
    #[arg(long, value_name = "INTERVAL", value_parser = parse_interval)]
    every: Option<Duration>,
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?}: use <n>s, <n>m, <n>h or <n>d (at least 10s)");
    let (n, unit) = s.split_at(s.len().saturating_sub(1));
    let n: u64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86400),
        _ => return Err(bad()),
    };
    if secs < 10 {
        return Err(bad());
    }
    Ok(Duration::from_secs(secs))
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let Some(interval) = args.every else {
        return run_once(ctx, &args);
    };
    loop {
        if let Err(e) = run_once(ctx, &args) {
            // Already in failures.log; the operator also sees it live.
            eprintln!("error: {e}");
        }
        std::thread::sleep(interval);
    }
}

fn run_once(ctx: &Context, args: &Args) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let bar = std::cell::OnceCell::new();
    let show = std::io::stderr().is_terminal() && !ctx.json;
    let progress = |done: u64, total: u64| {
        // Only large downloads get a bar, and only on a terminal.
        if !show || total < 4 * 1024 * 1024 {
            return;
        }
        let b = bar.get_or_init(|| {
            let b = indicatif::ProgressBar::new(total);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "downloading [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            ) {
                b.set_style(style.progress_chars("=> "));
            }
            b
        });
        b.set_position(done);
    };
    let opts = sealwright_client::install::InstallOptions {
        health_check: args.health_check.clone(),
        health_timeout: Duration::from_secs(args.health_timeout),
        self_replace: args.self_replace.clone(),
        progress: Some(&progress),
        now: chrono::Utc::now(),
    };
    let result = match &args.bundle {
        Some(bundle) => sealwright_client::bundle::update_from_bundle(&args.dir, bundle, &opts),
        None => sealwright_client::install::update(&args.dir, &opts),
    };
    if let Some(b) = bar.get() {
        b.finish_and_clear();
    }
    match result {
        Ok(report) => emit(ctx.json, &report, || {
            if report.status == "up-to-date" {
                println!("{} {} is already up to date", report.name, report.version);
            } else {
                println!(
                    "installed {} {} ({}){}",
                    report.name,
                    report.version,
                    report.installed_at.display(),
                    if report.recovery {
                        " [recovery release]"
                    } else {
                        ""
                    }
                );
            }
        }),
        Err(e) => {
            if ctx.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "status": "refused",
                        "stage": e.stage,
                        "version": e.version,
                        "target": e.target,
                        "quarantined": e.quarantined,
                        "error": e.message,
                    })
                );
            }
            Err(anyhow::anyhow!(
                "update refused ({}): {}",
                e.stage,
                e.message
            ))
        }
    }
}
