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
    /// even someone able to rewrite the whole log and its anchor can go unnoticed.
    Verify(Where),
    /// Show the newest records.
    List {
        #[command(flatten)]
        at: Where,
        /// How many records, newest last.
        #[arg(long, default_value_t = 20)]
        limit: u64,
    },
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
        AuditCommand::Verify(at) => {
            let verified = match at.shared.open()? {
                Some(s) => s.store().verify_audit()?,
                None => open(ctx, &at)?.verify()?,
            };
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
