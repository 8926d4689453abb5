//! `sealwright audit`: read and check the hash-chained audit log of a repository (or of
//! any data directory holding `audit.sqlite3`).

use std::path::PathBuf;

use anyhow::Context as _;

use super::Context;
use crate::output::emit;

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Check the whole chain: every record matches its hash, follows the one before it, and
    /// the head anchor (audit.head) still names the last record. Exit 1 names the first
    /// record that was edited, removed or reordered.
    ///
    /// Copy the printed head hash somewhere else (a ticket, a monitor, a backup): with it, not
    /// even someone able to rewrite the whole log and its anchor can go unnoticed. A server's
    /// transparency log keeps those heads for you: with --log, every audit head it recorded
    /// must still be in this audit log, so a truncated log with a consistently rewritten anchor
    /// is caught too.
    Verify {
        #[command(flatten)]
        at: Where,
        #[command(flatten)]
        against: AgainstLog,
    },
    /// Show the newest records.
    List {
        #[command(flatten)]
        at: Where,
        /// How many records, newest last.
        #[arg(long, default_value_t = 20)]
        limit: u64,
    },
}

/// A server's transparency log to check against (`audit verify --log`, `key audit --log`).
#[derive(Debug, clap::Args)]
pub struct AgainstLog {
    /// The server's transparency log, e.g. https://updates.example.com:8443/log/
    #[arg(long, value_name = "URL", requires = "log_key")]
    log: Option<String>,
    /// Its verifier key (`sealwright log key`), obtained out of band.
    #[arg(long, value_name = "VKEY", requires = "log")]
    log_key: Option<String>,
    /// CA certificate(s) for --log (default: the Mozilla roots).
    #[arg(long, value_name = "CA.pem", requires = "log")]
    ca: Option<PathBuf>,
}

impl AgainstLog {
    /// Every entry of the log (none without --log), authenticated together: the tree they
    /// make must have the root of the checkpoint --log-key signed.
    pub fn entries(&self) -> anyhow::Result<Option<Vec<sealwright_tlog::entry::Entry>>> {
        let (Some(url), Some(vkey)) = (&self.log, &self.log_key) else {
            return Ok(None);
        };
        let key = sealwright_tlog::Verifier::from_vkey(vkey).context("--log-key")?;
        let mut tls = sealwright_client::tls::TlsOptions::default();
        if let Some(ca) = &self.ca {
            tls = tls.with_ca_file(ca)?;
        }
        let fetcher = sealwright_client::HttpFetcher::with_tls(url, &tls)?;
        let log = sealwright_client::log_reader::LogReader::new(fetcher, url, key);
        let (_, checkpoint) = log
            .checkpoint()
            .context("the log's checkpoint is not signed by --log-key")?;
        let entries = log.entries(0, checkpoint.size)?;
        let leaves: Vec<sealwright_tlog::Hash> = entries
            .iter()
            .map(|e| sealwright_tlog::merkle::leaf_hash(e))
            .collect();
        let mut source: &[sealwright_tlog::Hash] = &leaves;
        if leaves.len() as u64 != checkpoint.size
            || sealwright_tlog::merkle::tree_root(&mut source, checkpoint.size)? != checkpoint.root
        {
            anyhow::bail!("the log's entries do not make its signed checkpoint's tree");
        }
        Ok(Some(
            entries
                .iter()
                .filter_map(|e| sealwright_tlog::entry::Entry::parse(e).ok())
                .collect(),
        ))
    }
}

/// Every audit head in `logged` (a transparency log's entries) is in `records` (the whole
/// local audit log, in order); returns how many heads were checked.
fn check_against_log(
    records: &[sealwright_store::Record],
    logged: Vec<sealwright_tlog::entry::Entry>,
) -> anyhow::Result<usize> {
    let mut checked = 0;
    for entry in logged {
        let sealwright_tlog::entry::Entry::AuditHead { records: n, head } = entry else {
            continue;
        };
        let Some(record) = usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| records.get(i))
        else {
            anyhow::bail!(
                "the transparency log shows this audit log had {n} records (head {head}); it has {} now: records were removed",
                records.len()
            );
        };
        if record.hash != head {
            anyhow::bail!(
                "audit record {n} is not the one the transparency log recorded (head {head}): the log was rewritten"
            );
        }
        checked += 1;
    }
    Ok(checked)
}

#[derive(Debug, clap::Args)]
pub struct Where {
    /// Data directory holding audit.sqlite3 (default: the repository, --repo).
    #[arg(long, value_name = "DIR", conflicts_with = "store")]
    data: Option<PathBuf>,
    /// The shared log of server replicas (their --store and --objects) instead.
    #[command(flatten)]
    shared: super::shared_store::StoreArgs,
}

fn open(ctx: &Context, at: &Where) -> anyhow::Result<sealwright_store::AuditLog> {
    let dir = at.data.clone().unwrap_or_else(|| ctx.repo.clone());
    if !dir.join(sealwright_store::audit::DB_FILE).is_file() {
        anyhow::bail!(
            "{} holds no audit log ({}): pass the repository with --repo or the data directory with --data",
            dir.display(),
            sealwright_store::audit::DB_FILE
        );
    }
    sealwright_store::AuditLog::open(&dir).context("opening the audit log")
}

pub fn run(ctx: &Context, cmd: AuditCommand) -> anyhow::Result<()> {
    match cmd {
        AuditCommand::Verify { at, against } => {
            let verified = match at.shared.open()? {
                Some(s) => s.store().verify_audit()?,
                None => open(ctx, &at)?.verify()?,
            };
            if let (Ok(_), Some(_)) = (&verified, &against.log) {
                if at.shared.open()?.is_some() {
                    anyhow::bail!(
                        "--log checks a local audit log (--data or --repo), not the shared one"
                    );
                }
                let records = open(ctx, &at)?.records(None)?;
                let logged = against.entries()?.unwrap_or_default();
                let checked = check_against_log(&records, logged)?;
                if !ctx.json {
                    println!("audit log matches the transparency log: {checked} recorded head(s) found in it");
                }
            }
            match verified {
                Ok(v) => emit(
                    ctx.json,
                    &serde_json::json!({"ok": true, "records": v.records, "head": v.head}),
                    || println!("audit log intact: {} record(s), head {}", v.records, v.head),
                ),
                Err(b) => {
                    if ctx.json {
                        println!(
                            "{}",
                            serde_json::json!({"ok": false, "seq": b.seq, "reason": b.reason})
                        );
                    }
                    anyhow::bail!("audit log broken at record {}: {}", b.seq, b.reason)
                }
            }
        }
        AuditCommand::List { at, limit } => {
            let records = match at.shared.open()? {
                Some(s) => s.store().audit_records(Some(limit))?,
                None => open(ctx, &at)?.records(Some(limit))?,
            };
            emit(ctx.json, &records, || {
                for r in &records {
                    println!(
                        "{:>6}  {}  {:<18} {:<20} {:<16} {}",
                        r.seq, r.time, r.action, r.subject, r.actor, r.details
                    );
                }
            })
        }
    }
}
