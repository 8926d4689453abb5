//! `sealwright monitor`: follow a repository's transparency log and the repository, and
//! report what an honest one never shows (see `sealwright_client::monitor`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

use sealwright_client::monitor::{Finding, Monitor, MonitorConfig, Report};

use super::Context;

#[derive(Debug, clap::Args)]
#[command(after_help = "Each finding is one JSON line on standard output:
  {\"finding\":\"target-repointed\",\"index\":41,\"message\":\"...\"}
Findings: bad-checkpoint, log-not-append-only, entries-do-not-match-tree, unreadable-entry,
version-not-increasing, version-jump, unknown-key, published-differs-from-log,
published-not-logged, logged-not-published, target-repointed, audit-head-backwards,
repository-refused.

Exit status (without --every): 0 nothing found, 1 findings or the run failed.

Example, from cron or a systemd timer:
  sealwright monitor --log https://updates.example.com/log/ --key \"$(cat log.vkey)\" \\
      --repo-url https://updates.example.com --state /var/lib/sealwright-monitor")]
pub struct Args {
    /// The transparency log's URL (its checkpoint is at URL/checkpoint).
    #[arg(long, value_name = "URL")]
    log: String,
    /// The log's verifier key (`sealwright log key` on the server), obtained out of band.
    #[arg(long, value_name = "VKEY")]
    key: String,
    /// The repository (its metadata at URL/metadata/).
    #[arg(long, value_name = "URL")]
    repo_url: String,
    /// The root.json to trust on the first run (the repository's 1.root.json, obtained out
    /// of band); later runs follow the root chain from the state. Without it, the first run
    /// trusts the repository's 1.root.json only if the log holds exactly those bytes as
    /// root version 1.
    #[arg(long, value_name = "ROOT.json")]
    root: Option<PathBuf>,
    /// Where the monitor keeps what it has seen (checkpoint, tree edge, newest versions):
    /// keep it between runs, or every run starts over.
    #[arg(long, value_name = "DIR", default_value = "sealwright-monitor")]
    state: PathBuf,
    /// CA certificate(s) for the log and repository (default: the Mozilla roots).
    #[arg(long, value_name = "CA.pem")]
    ca: Option<PathBuf>,
    /// POST the findings of each run that has any to this URL, as JSON.
    #[arg(long, value_name = "URL")]
    webhook: Option<String>,
    /// Keep running: a run every SECONDS (findings and failures are reported, and the next
    /// run goes on).
    #[arg(long, value_name = "SECONDS")]
    every: Option<u64>,
    /// How long to wait for a version the repository publishes to appear in the log
    /// before reporting it.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    grace: u64,
}

/// Largest root file read.
const MAX_ROOT: u64 = 16 * 1024 * 1024;

pub fn run(_ctx: &Context, args: Args) -> anyhow::Result<()> {
    for url in [&args.log, &args.repo_url] {
        sealwright_client::fetch::check_transport(url).map_err(anyhow::Error::msg)?;
    }
    let mut tls = sealwright_client::tls::TlsOptions::default();
    if let Some(ca) = &args.ca {
        tls = tls.with_ca_file(ca)?;
    }
    let initial_root = args
        .root
        .as_ref()
        .map(|p| {
            sealwright_repo::fsutil::read_capped(p, MAX_ROOT)
                .with_context(|| format!("reading {}", p.display()))
        })
        .transpose()?;
    let config = MonitorConfig {
        state_dir: args.state.clone(),
        log_url: args.log.clone(),
        log_key: sealwright_tlog::Verifier::from_vkey(args.key.trim()).context("--key")?,
        repo_url: args.repo_url.clone(),
        initial_root,
        tls: tls.clone(),
        grace: Duration::from_secs(args.grace),
    };
    let mut monitor = Monitor::open(config)?;
    let webhook = args
        .webhook
        .as_deref()
        .map(|url| Webhook::new(url, &tls))
        .transpose()?;
    let Some(every) = args.every else {
        let report = monitor.run_once()?;
        announce(&report, webhook.as_ref())?;
        if !report.findings.is_empty() {
            anyhow::bail!("{} finding(s)", report.findings.len());
        }
        return Ok(());
    };
    loop {
        match monitor.run_once() {
            Ok(report) => {
                if let Err(e) = announce(&report, webhook.as_ref()) {
                    eprintln!("sealwright monitor: {e:#}");
                }
            }
            Err(e) => eprintln!("sealwright monitor: this run failed, the next one retries: {e}"),
        }
        std::thread::sleep(Duration::from_secs(every.max(1)));
    }
}

/// One JSON line per finding on stdout, a summary on stderr, and the webhook.
fn announce(report: &Report, webhook: Option<&Webhook>) -> anyhow::Result<()> {
    for finding in &report.findings {
        println!("{}", serde_json::to_string(finding)?);
    }
    eprintln!(
        "sealwright monitor: log at {} entries ({} read this run), {} finding(s)",
        report.log_size,
        report.entries_read,
        report.findings.len()
    );
    if report.entries_behind > 0 {
        eprintln!(
            "sealwright monitor: {} more entries to read: run again (a run reads at most 262144)",
            report.entries_behind
        );
    }
    match webhook {
        Some(hook) if !report.findings.is_empty() => hook.post(&report.findings),
        _ => Ok(()),
    }
}

/// Where findings are POSTed.
struct Webhook {
    url: String,
    agent: ureq::Agent,
}

impl Webhook {
    fn new(url: &str, tls: &sealwright_client::tls::TlsOptions) -> anyhow::Result<Self> {
        sealwright_client::fetch::check_transport(url)
            .map_err(|e| anyhow::anyhow!("--webhook {e}"))?;
        let config = sealwright_client::fetch::HttpConfig {
            proxy_from_env: !sealwright_client::fetch::is_loopback(url),
            request_timeout: Duration::from_secs(30),
            ..Default::default()
        };
        Ok(Webhook {
            url: url.to_owned(),
            agent: sealwright_client::fetch::https_agent(&config, tls)?,
        })
    }

    fn post(&self, findings: &[Finding]) -> anyhow::Result<()> {
        let body = serde_json::json!({ "findings": findings });
        let response = self
            .agent
            .post(&self.url)
            .header("content-type", "application/json")
            .send(serde_json::to_vec(&body)?)
            .with_context(|| format!("posting the findings to {}", self.url))?;
        anyhow::ensure!(
            response.status().is_success(),
            "the webhook {} answered HTTP {}",
            self.url,
            response.status()
        );
        Ok(())
    }
}
