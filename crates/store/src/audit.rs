//! The audit log: append-only and hash-chained, in `DATA/audit.sqlite3`.
//!
//! Every record carries the SHA-256 of the record before it (`prev_hash`) and its own
//! `hash` over the canonical JSON of all its fields, `prev_hash` and `seq` included. So:
//!
//! - an **edited** record no longer matches its hash;
//! - a **removed** record leaves a gap in `seq` and breaks the next record's `prev_hash`;
//! - **reordered** records carry a `seq` or `prev_hash` that does not fit where they are;
//! - a **truncated** tail is caught by the head anchor `DATA/audit.head` (count and last
//!   hash, replaced atomically after each append), which must match a record of the log.
//!
//! What the chain cannot do alone: someone who can rewrite the whole database *and* the
//! anchor can forge a consistent history. Copy the anchor elsewhere (a transparency log,
//! a monitor, a backup) to close that; `sealwright audit verify --json` prints it.
//!
//! SQLite triggers also refuse `UPDATE` and `DELETE` on the table, so an honest mistake
//! cannot rewrite history; they are a guard rail, the chain is the proof.

use std::path::{Path, PathBuf};

use chrono::{SecondsFormat, Utc};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;
use serde_json::Value;

/// The database file in the data directory.
pub const DB_FILE: &str = "audit.sqlite3";
/// The head anchor file in the data directory.
pub const HEAD_FILE: &str = "audit.head";
/// `prev_hash` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Largest `details` object accepted (bytes of JSON), and largest anchor file read.
const MAX_DETAILS: usize = 64 * 1024;
const MAX_HEAD: u64 = 4096;

/// Why the log could not be opened, written or read.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// SQLite failed.
    #[error("audit log {path}: {source}")]
    Db {
        /// The database file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// The anchor file could not be read or written.
    #[error("audit head {path}: {source}")]
    Head {
        /// The anchor file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A record to append is unusable.
    #[error("audit record refused: {0}")]
    Invalid(String),
    /// The log no longer matches its head anchor; it is not extended, so the evidence of
    /// the tampering is not buried under new records.
    #[error("refusing to extend the audit log {path}: {reason}; run `sealwright audit verify` and restore the log and audit.head from a backup")]
    Tampered {
        /// The database file.
        path: PathBuf,
        /// What does not match.
        reason: String,
    },
}

/// Before an append: the anchor must name a record of the log, unchanged (the log may
/// be one record ahead after a crash between commit and anchor). Without this, deleting
/// the tail and appending once would rebuild the anchor from the truncated log, and
/// `verify` would call it intact.
fn check_against_anchor(
    tx: &rusqlite::Transaction<'_>,
    anchor: Option<(u64, String)>,
    last: Option<&(u64, String)>,
    db_path: &Path,
    head_path: &Path,
) -> Result<(), AuditError> {
    let tampered = |reason: String| AuditError::Tampered {
        path: db_path.to_owned(),
        reason,
    };
    match (anchor, last) {
        (None, None) | (Some((0, _)), None) => Ok(()),
        (None, Some((count, _))) => Err(tampered(format!(
            "it holds {count} records but its head anchor {} is missing",
            head_path.display()
        ))),
        (Some((n, _)), None) => Err(tampered(format!(
            "its head anchor says {n} records but the log is empty"
        ))),
        (Some((n, hash)), Some((count, _))) => {
            if n > *count {
                return Err(tampered(format!(
                    "its head anchor says {n} records but it holds {count}: records were removed from the end"
                )));
            }
            let anchored: Option<String> = tx
                .query_row("SELECT hash FROM audit WHERE seq = ?1", params![n], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(|source| AuditError::Db {
                    path: db_path.to_owned(),
                    source,
                })?;
            if anchored.as_deref() != Some(hash.as_str()) {
                return Err(tampered(format!(
                    "record {n} does not match its head anchor: the log was rewritten"
                )));
            }
            Ok(())
        }
    }
}

/// A record to append.
#[derive(Debug, Clone)]
pub struct NewRecord<'a> {
    /// Who acted (a user, a token name, a uid, `sealwright-cli`).
    pub actor: &'a str,
    /// What kind of action (`publish`, `sign`, `reject`, `key-generate`, `policy-change`...).
    pub action: &'a str,
    /// What it acted on (a role, a path, a key id).
    pub subject: &'a str,
    /// Anything else, as a JSON object.
    pub details: Value,
}

/// A stored record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    /// Position in the log, from 1, without gaps.
    pub seq: u64,
    /// When it was appended (RFC 3339 UTC).
    pub time: String,
    /// Who acted.
    pub actor: String,
    /// What kind of action.
    pub action: String,
    /// What it acted on.
    pub subject: String,
    /// Anything else.
    pub details: Value,
    /// `hash` of the previous record ([`GENESIS`] for the first).
    pub prev_hash: String,
    /// SHA-256 of the canonical JSON of every other field.
    pub hash: String,
}

/// The first place the log stops proving itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Broken {
    /// The first record that does not fit (or the count where records are missing).
    pub seq: u64,
    /// What is wrong, in words.
    pub reason: String,
}

/// An intact log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verified {
    /// Number of records.
    pub records: u64,
    /// Hash of the last record (the value to anchor elsewhere).
    pub head: String,
}

/// An open audit log.
#[derive(Debug)]
pub struct AuditLog {
    conn: Connection,
    db_path: PathBuf,
    head_path: PathBuf,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit (
    seq       INTEGER PRIMARY KEY,
    time      TEXT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    details   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
";

/// Holds the lock that serialises appends (and opens) across processes, next to the anchor,
/// until dropped.
fn lock_appends(head_path: &Path) -> Result<std::fs::File, AuditError> {
    let lock_path = head_path.with_extension("lock");
    sealwright_fs::lock_exclusive(&lock_path).map_err(|source| AuditError::Head {
        path: lock_path,
        source,
    })
}

/// The hash of a record: SHA-256 of the canonical JSON of its fields (not `hash` itself).
pub fn record_hash(
    seq: u64,
    time: &str,
    actor: &str,
    action: &str,
    subject: &str,
    details: &Value,
    prev_hash: &str,
) -> Result<String, AuditError> {
    let body = serde_json::json!({
        "seq": seq, "time": time, "actor": actor, "action": action,
        "subject": subject, "details": details, "prev_hash": prev_hash,
    });
    let bytes = sealwright_crypto::canonical::to_canonical_json(&body)
        .map_err(|e| AuditError::Invalid(format!("details cannot be canonicalised: {e}")))?;
    Ok(sealwright_crypto::digest::sha256_hex(&bytes))
}

/// The chain rule, checked one record at a time in log order — the one check every store
/// of the log (SQLite here, PostgreSQL for replicas) runs: `seq` from 1 without gaps, each
/// `prev_hash` the hash of the record before, each `hash` its content's.
#[derive(Debug)]
pub struct ChainCheck {
    expected_seq: u64,
    prev: String,
    broken: Option<Broken>,
}

impl Default for ChainCheck {
    fn default() -> Self {
        ChainCheck {
            expected_seq: 1,
            prev: GENESIS.to_owned(),
            broken: None,
        }
    }
}

impl ChainCheck {
    /// Checks the next record (after the first broken one, nothing more is checked).
    pub fn next(&mut self, r: &Record) -> Result<(), AuditError> {
        if self.broken.is_some() {
            return Ok(());
        }
        let reason = if r.seq != self.expected_seq {
            Some(format!(
                "found record {} where record {} belongs: records were removed or reordered",
                r.seq, self.expected_seq
            ))
        } else if r.prev_hash != self.prev {
            Some("its prev_hash is not the hash of the record before it: a record before it was removed, replaced or reordered".into())
        } else if record_hash(
            r.seq,
            &r.time,
            &r.actor,
            &r.action,
            &r.subject,
            &r.details,
            &r.prev_hash,
        )? != r.hash
        {
            Some("its content does not match its hash: it was edited".into())
        } else {
            None
        };
        if let Some(reason) = reason {
            self.broken = Some(Broken { seq: r.seq, reason });
        }
        self.prev.clone_from(&r.hash);
        self.expected_seq = self.expected_seq.saturating_add(1);
        Ok(())
    }

    /// The number of records and the last hash, or the first record that broke the chain.
    pub fn finish(self) -> Result<(u64, String), Broken> {
        match self.broken {
            Some(b) => Err(b),
            None => Ok((self.expected_seq.saturating_sub(1), self.prev)),
        }
    }
}

/// Checks a record to append; returns its details as text.
pub fn check_new(new: &NewRecord<'_>) -> Result<String, AuditError> {
    if !new.details.is_object() {
        return Err(AuditError::Invalid("details must be a JSON object".into()));
    }
    let text =
        serde_json::to_string(&new.details).map_err(|e| AuditError::Invalid(e.to_string()))?;
    if text.len() > MAX_DETAILS {
        return Err(AuditError::Invalid(format!(
            "details larger than {MAX_DETAILS} bytes"
        )));
    }
    Ok(text)
}

/// The record `new` becomes when appended after `last` (seq and hash of the newest record;
/// none for an empty log): the one way a link of the chain is made, for either store.
pub fn next_record(last: Option<(u64, String)>, new: &NewRecord<'_>) -> Result<Record, AuditError> {
    let (seq, prev_hash) = match last {
        Some((s, h)) => (s.saturating_add(1), h),
        None => (1, GENESIS.to_owned()),
    };
    let time = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    let hash = record_hash(
        seq,
        &time,
        new.actor,
        new.action,
        new.subject,
        &new.details,
        &prev_hash,
    )?;
    Ok(Record {
        seq,
        time,
        actor: new.actor.to_owned(),
        action: new.action.to_owned(),
        subject: new.subject.to_owned(),
        details: new.details.clone(),
        prev_hash,
        hash,
    })
}

/// Who acts when a person runs a command on this machine: `cli:$USER`.
pub fn local_actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned())
    )
}

/// Appends one record to the log of `data_dir`.
pub fn record(data_dir: &Path, new: &NewRecord<'_>) -> Result<Record, AuditError> {
    AuditLog::open(data_dir)?.append(new)
}

/// Records an action taken by the person at this machine ([`local_actor`]) in the log of
/// `data_dir`: the one way the libraries record what they did to a repository or a server
/// directory, so a program embedding them leaves the same trail as the `sealwright` binary.
/// Callers fail when the record cannot be written: an action that leaves no trace is worse
/// than one that has to be repeated.
pub fn record_local(
    data_dir: &Path,
    action: &str,
    subject: &str,
    details: Value,
) -> Result<Record, AuditError> {
    let actor = local_actor();
    record(
        data_dir,
        &NewRecord {
            actor: &actor,
            action,
            subject,
            details,
        },
    )
}

impl AuditLog {
    /// Opens (creating if needed) the log in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, AuditError> {
        let db_path = data_dir.join(DB_FILE);
        let db = |source| AuditError::Db {
            path: db_path.clone(),
            source,
        };
        std::fs::create_dir_all(data_dir).map_err(|source| AuditError::Head {
            path: data_dir.to_owned(),
            source,
        })?;
        let head_path = data_dir.join(HEAD_FILE);
        let conn = Connection::open(&db_path).map_err(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(db)?;
        {
            // Switching to WAL can answer SQLITE_BUSY without waiting when another
            // connection opens the file at the same moment (the server's handlers do):
            // the appenders' lock serialises this too.
            let _lock = lock_appends(&head_path)?;
            conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")
                .map_err(db)?;
            conn.execute_batch(SCHEMA).map_err(db)?;
        }
        Ok(AuditLog {
            conn,
            head_path,
            db_path,
        })
    }

    fn db(&self) -> impl Fn(rusqlite::Error) -> AuditError + '_ {
        move |source| AuditError::Db {
            path: self.db_path.clone(),
            source,
        }
    }

    /// Appends one record (in a write transaction, so concurrent writers chain correctly),
    /// then replaces the head anchor.
    pub fn append(&mut self, new: &NewRecord<'_>) -> Result<Record, AuditError> {
        let details_text = check_new(new)?;
        let db_path = self.db_path.clone();
        let db = move |source| AuditError::Db {
            path: db_path.clone(),
            source,
        };
        // Appends are serialised across processes by a lock held until the anchor is written,
        // so the anchor lags the log by at most the one record of a crashed append.
        let lock = lock_appends(&self.head_path)?;
        let anchor = self.head()?;
        let (db_file, head_file) = (self.db_path.clone(), self.head_path.clone());
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&db)?;
        let last: Option<(u64, String)> = tx
            .query_row(
                "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(&db)?;
        check_against_anchor(&tx, anchor, last.as_ref(), &db_file, &head_file)?;
        let record = next_record(last, new)?;
        tx.execute(
            "INSERT INTO audit (seq, time, actor, action, subject, details, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                record.seq,
                record.time,
                record.actor,
                record.action,
                record.subject,
                details_text,
                record.prev_hash,
                record.hash
            ],
        )
        .map_err(&db)?;
        tx.commit().map_err(&db)?;
        self.write_head(record.seq, &record.hash)?;
        drop(lock);
        Ok(record)
    }

    fn write_head(&self, seq: u64, hash: &str) -> Result<(), AuditError> {
        sealwright_fs::write_atomic(&self.head_path, format!("{seq} {hash}\n").as_bytes()).map_err(
            |source| AuditError::Head {
                path: self.head_path.clone(),
                source,
            },
        )
    }

    /// The anchor: (count, last hash), if one was written.
    pub fn head(&self) -> Result<Option<(u64, String)>, AuditError> {
        let head = |source| AuditError::Head {
            path: self.head_path.clone(),
            source,
        };
        let text = match std::fs::File::open(&self.head_path) {
            Ok(f) => {
                let mut s = String::new();
                use std::io::Read as _;
                f.take(MAX_HEAD).read_to_string(&mut s).map_err(head)?;
                s
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(head(e)),
        };
        let mut parts = text.split_whitespace();
        match (
            parts.next().and_then(|n| n.parse().ok()),
            parts.next(),
            parts.next(),
        ) {
            (Some(n), Some(h), None) => Ok(Some((n, h.to_owned()))),
            _ => Ok(Some((u64::MAX, format!("unreadable anchor {text:?}")))),
        }
    }

    /// Records in `seq` order, at most `limit` from the end (all when `None`).
    pub fn records(&self, limit: Option<u64>) -> Result<Vec<Record>, AuditError> {
        let mut out = Vec::new();
        self.walk(|r| {
            out.push(r);
            Ok(())
        })?;
        if let Some(limit) = limit {
            let keep = usize::try_from(limit).unwrap_or(usize::MAX);
            let skip = out.len().saturating_sub(keep);
            out.drain(..skip);
        }
        Ok(out)
    }

    /// Visits every row in storage order (`rowid`), parsed leniently so that a damaged
    /// row can still be reported rather than aborting the walk.
    fn walk(
        &self,
        mut visit: impl FnMut(Record) -> Result<(), AuditError>,
    ) -> Result<(), AuditError> {
        let db = self.db();
        let mut stmt = self
            .conn
            .prepare(
                "SELECT seq, time, actor, action, subject, details, prev_hash, hash
                 FROM audit ORDER BY rowid",
            )
            .map_err(&db)?;
        let mut rows = stmt.query([]).map_err(&db)?;
        while let Some(row) = rows.next().map_err(&db)? {
            let text: String = row.get(5).map_err(&db)?;
            let details = serde_json::from_str(&text).unwrap_or(Value::String(text));
            visit(Record {
                seq: row.get::<_, i64>(0).map_err(&db)?.try_into().unwrap_or(0),
                time: row.get(1).map_err(&db)?,
                actor: row.get(2).map_err(&db)?,
                action: row.get(3).map_err(&db)?,
                subject: row.get(4).map_err(&db)?,
                details,
                prev_hash: row.get(6).map_err(&db)?,
                hash: row.get(7).map_err(&db)?,
            })?;
        }
        Ok(())
    }

    /// Walks the whole chain. `Ok(Err(broken))` names the first record that does not fit.
    pub fn verify(&self) -> Result<Result<Verified, Broken>, AuditError> {
        let mut chain = ChainCheck::default();
        self.walk(|r| chain.next(&r))?;
        let (count, prev) = match chain.finish() {
            Ok(end) => end,
            Err(b) => return Ok(Err(b)),
        };
        if let Some((n, hash)) = self.head()? {
            if n > count {
                return Ok(Err(Broken {
                    seq: count.saturating_add(1),
                    reason: format!(
                        "the head anchor says {n} records but the log holds {count}: records were removed from the end"
                    ),
                }));
            }
            // A crash between commit and anchor leaves the anchor behind: that is fine as
            // long as the record it names is still there, unchanged.
            let anchored: Option<String> = self
                .conn
                .query_row("SELECT hash FROM audit WHERE seq = ?1", params![n], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(self.db())?;
            if n > 0 && anchored.as_deref() != Some(hash.as_str()) {
                return Ok(Err(Broken {
                    seq: n,
                    reason: "the head anchor does not match this record: the log was rewritten"
                        .into(),
                }));
            }
        } else if count > 0 {
            return Ok(Err(Broken {
                seq: count,
                reason: format!("the head anchor {} is missing", self.head_path.display()),
            }));
        }
        Ok(Ok(Verified {
            records: count,
            head: prev,
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn log_with(n: usize) -> (tempfile::TempDir, AuditLog) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AuditLog::open(dir.path()).unwrap();
        for i in 0..n {
            log.append(&NewRecord {
                actor: "tester",
                action: "publish",
                subject: &format!("targets v{i}"),
                details: serde_json::json!({"i": i}),
            })
            .unwrap();
        }
        (dir, log)
    }

    /// Tampering goes around the guard-rail triggers, as an attacker with the file would.
    fn tamper(log: &AuditLog, sql: &str) {
        log.conn
            .execute_batch(&format!(
                "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete; {sql}"
            ))
            .unwrap();
    }

    #[test]
    fn an_intact_log_verifies_and_reports_its_head() {
        let (_d, log) = log_with(5);
        let v = log.verify().unwrap().unwrap();
        assert_eq!(v.records, 5);
        assert_eq!(v.head, log.records(Some(1)).unwrap()[0].hash);
        assert_eq!(log.records(None).unwrap().len(), 5);
    }

    #[test]
    fn the_triggers_refuse_update_and_delete() {
        let (_d, log) = log_with(2);
        assert!(log
            .conn
            .execute("DELETE FROM audit WHERE seq = 1", [])
            .is_err());
        assert!(log
            .conn
            .execute("UPDATE audit SET actor = 'x' WHERE seq = 1", [])
            .is_err());
    }

    #[test]
    fn an_edited_record_is_named() {
        let (_d, log) = log_with(5);
        tamper(&log, "UPDATE audit SET actor = 'mallory' WHERE seq = 3;");
        let b = log.verify().unwrap().unwrap_err();
        assert_eq!(b.seq, 3);
        assert!(b.reason.contains("edited"), "{}", b.reason);
    }

    #[test]
    fn edited_details_are_named() {
        let (_d, log) = log_with(5);
        tamper(
            &log,
            "UPDATE audit SET details = '{\"i\":99}' WHERE seq = 2;",
        );
        assert_eq!(log.verify().unwrap().unwrap_err().seq, 2);
    }

    #[test]
    fn a_removed_record_is_named() {
        let (_d, log) = log_with(5);
        tamper(&log, "DELETE FROM audit WHERE seq = 2;");
        let b = log.verify().unwrap().unwrap_err();
        assert_eq!(b.seq, 3);
        assert!(b.reason.contains("removed"), "{}", b.reason);
    }

    #[test]
    fn reordered_records_are_named() {
        let (_d, log) = log_with(5);
        // Swap the contents of records 2 and 3 (keeping each row's seq).
        tamper(
            &log,
            "CREATE TEMP TABLE t AS SELECT * FROM audit WHERE seq IN (2, 3);
             DELETE FROM audit WHERE seq IN (2, 3);
             INSERT INTO audit SELECT 2, time, actor, action, subject, details, prev_hash, hash FROM t WHERE seq = 3;
             INSERT INTO audit SELECT 3, time, actor, action, subject, details, prev_hash, hash FROM t WHERE seq = 2;",
        );
        assert_eq!(log.verify().unwrap().unwrap_err().seq, 2);
    }

    #[test]
    fn reordered_rows_with_their_seq_are_named() {
        let (_d, log) = log_with(5);
        // Re-insert record 2 after record 5 (storage order changes, seq values kept).
        tamper(
            &log,
            "CREATE TEMP TABLE t AS SELECT * FROM audit WHERE seq = 2;
             DELETE FROM audit WHERE seq = 2;
             INSERT INTO audit (seq, time, actor, action, subject, details, prev_hash, hash)
                 SELECT 6, time, actor, action, subject, details, prev_hash, hash FROM t;",
        );
        let b = log.verify().unwrap().unwrap_err();
        assert_eq!(b.seq, 3, "{b:?}");
    }

    #[test]
    fn a_truncated_tail_is_caught_by_the_anchor() {
        let (_d, log) = log_with(5);
        tamper(&log, "DELETE FROM audit WHERE seq >= 4;");
        let b = log.verify().unwrap().unwrap_err();
        assert!(b.reason.contains("removed from the end"), "{}", b.reason);
    }

    #[test]
    fn a_truncated_log_is_not_extended() {
        let (_d, mut log) = log_with(5);
        tamper(&log, "DELETE FROM audit WHERE seq >= 4;");
        log.conn.execute_batch(SCHEMA).unwrap();
        let next = NewRecord {
            actor: "cli",
            action: "publish",
            subject: "targets",
            details: serde_json::json!({}),
        };
        let e = log.append(&next).unwrap_err();
        assert!(e.to_string().contains("removed from the end"), "{e}");
        // The evidence stays: verify still names the truncation.
        let b = log.verify().unwrap().unwrap_err();
        assert!(b.reason.contains("removed from the end"), "{}", b.reason);
        // So does a deleted anchor.
        std::fs::remove_file(&log.head_path).unwrap();
        assert!(log
            .append(&next)
            .unwrap_err()
            .to_string()
            .contains("missing"));
    }

    #[test]
    fn a_rewritten_tail_is_caught_by_the_anchor() {
        let (_d, mut log) = log_with(3);
        let anchor = std::fs::read(&log.head_path).unwrap();
        tamper(&log, "DELETE FROM audit WHERE seq = 3;");
        // A consistent new record 3 appended by someone who can write the anchor for a
        // moment but not forge its old content back afterwards.
        log.conn.execute_batch(SCHEMA).unwrap();
        let hash2: String = log
            .conn
            .query_row("SELECT hash FROM audit WHERE seq = 2", [], |r| r.get(0))
            .unwrap();
        log.write_head(2, &hash2).unwrap();
        log.append(&NewRecord {
            actor: "mallory",
            action: "publish",
            subject: "targets",
            details: serde_json::json!({}),
        })
        .unwrap();
        std::fs::write(&log.head_path, anchor).unwrap();
        let b = log.verify().unwrap().unwrap_err();
        assert_eq!(b.seq, 3);
        assert!(b.reason.contains("rewritten"), "{}", b.reason);
    }

    #[test]
    fn details_must_be_an_object_of_bounded_size() {
        let (_d, mut log) = log_with(0);
        for details in [
            serde_json::json!("text"),
            serde_json::json!({"x": "y".repeat(MAX_DETAILS)}),
        ] {
            assert!(log
                .append(&NewRecord {
                    actor: "a",
                    action: "b",
                    subject: "c",
                    details,
                })
                .is_err());
        }
        assert_eq!(log.verify().unwrap().unwrap().records, 0);
    }

    #[test]
    fn two_writers_chain_correctly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_owned();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let mut log = AuditLog::open(&path).unwrap();
                    for i in 0..10 {
                        log.append(&NewRecord {
                            actor: "w",
                            action: "publish",
                            subject: &format!("{t}-{i}"),
                            details: serde_json::json!({}),
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let log = AuditLog::open(&path).unwrap();
        assert_eq!(log.verify().unwrap().unwrap().records, 40);
    }
}
