//! The audit log of replicas, in the shared database: the same records, the same hash chain
//! and the same check ([`crate::audit::ChainCheck`]) as the embedded log, appended by every
//! replica into one history.
//!
//! Appends are serialised by a transaction-level advisory lock, so two replicas never both
//! extend the same record; the head (count and last hash) is updated in the same transaction
//! and checked before each append, so a log whose tail was removed is not extended over the
//! evidence. As with the embedded log, someone who can rewrite the whole database can forge
//! a consistent history: copy the head (`sealwright audit verify --json`) elsewhere. An
//! `UPDATE` or `DELETE` on the table is refused by a trigger — a guard rail, the chain is the
//! proof.

use serde_json::Value;

use crate::audit::{check_new, next_record, Broken, ChainCheck, NewRecord, Record, Verified};
use crate::shared::{db_err, from_db, to_db, Shared};
use crate::StoreError;

/// Key of the advisory lock held while appending.
const AUDIT_LOCK: i64 = 0x5ea1_0003;

fn invalid(e: crate::AuditError) -> StoreError {
    StoreError::Database(e.to_string())
}

impl Shared {
    /// Appends one record. Blocking.
    pub fn append_audit(&self, new: &NewRecord<'_>) -> Result<Record, StoreError> {
        let details_text = check_new(new).map_err(invalid)?;
        self.block_on(async {
            let err = db_err("appending to the audit log");
            // A connection of its own: a transaction must not share the pipelined one.
            let mut client = self.transaction_client().await?;
            let tx = client.transaction().await.map_err(&err)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&AUDIT_LOCK])
                .await
                .map_err(&err)?;
            let last = tx
                .query_opt(
                    "SELECT seq, hash FROM sealwright_audit ORDER BY seq DESC LIMIT 1",
                    &[],
                )
                .await
                .map_err(&err)?
                .map(|r| (from_db(r.get(0)), r.get::<_, String>(1)));
            let head = tx
                .query_opt("SELECT count, hash FROM sealwright_audit_head WHERE id = 1", &[])
                .await
                .map_err(&err)?
                .map(|r| (from_db(r.get(0)), r.get::<_, String>(1)));
            if head != last {
                return Err(StoreError::Database(format!(
                    "refusing to extend the shared audit log: its head says {head:?} but its last record is {last:?}; run `sealwright audit verify --store ...`"
                )));
            }
            let r = next_record(last, new).map_err(invalid)?;
            tx.execute(
                "INSERT INTO sealwright_audit (seq, time, actor, action, subject, details, prev_hash, hash)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[&to_db(r.seq), &r.time, &r.actor, &r.action, &r.subject, &details_text, &r.prev_hash, &r.hash],
            )
            .await
            .map_err(&err)?;
            tx.execute(
                "INSERT INTO sealwright_audit_head (id, count, hash) VALUES (1, $1, $2)
                 ON CONFLICT (id) DO UPDATE SET count = EXCLUDED.count, hash = EXCLUDED.hash",
                &[&to_db(r.seq), &r.hash],
            )
            .await
            .map_err(&err)?;
            tx.commit().await.map_err(&err)?;
            self.give_back(client);
            Ok(r)
        })
    }

    /// Records in `seq` order, at most `limit` from the end (all when `None`). Blocking.
    pub fn audit_records(&self, limit: Option<u64>) -> Result<Vec<Record>, StoreError> {
        self.block_on(async {
            let limit = limit.map_or(i64::MAX, to_db);
            let rows = self
                .client()
                .await?
                .query(
                    "SELECT seq, time, actor, action, subject, details, prev_hash, hash FROM
                       (SELECT * FROM sealwright_audit ORDER BY seq DESC LIMIT $1) AS tail
                     ORDER BY seq",
                    &[&limit],
                )
                .await
                .map_err(db_err("reading the audit log"))?;
            Ok(rows
                .iter()
                .map(|r| {
                    let text: String = r.get(5);
                    Record {
                        seq: from_db(r.get(0)),
                        time: r.get(1),
                        actor: r.get(2),
                        action: r.get(3),
                        subject: r.get(4),
                        details: serde_json::from_str(&text).unwrap_or(Value::String(text)),
                        prev_hash: r.get(6),
                        hash: r.get(7),
                    }
                })
                .collect())
        })
    }

    /// Walks the whole chain and checks the head. `Ok(Err(broken))` names the first record
    /// that does not fit. Blocking.
    pub fn verify_audit(&self) -> Result<Result<Verified, Broken>, StoreError> {
        let mut chain = ChainCheck::default();
        for r in self.audit_records(None)? {
            chain.next(&r).map_err(invalid)?;
        }
        let (count, last) = match chain.finish() {
            Ok(end) => end,
            Err(b) => return Ok(Err(b)),
        };
        let head = self.block_on(async {
            Ok::<_, StoreError>(
                self.client()
                    .await?
                    .query_opt(
                        "SELECT count, hash FROM sealwright_audit_head WHERE id = 1",
                        &[],
                    )
                    .await
                    .map_err(db_err("reading the audit head"))?
                    .map(|r| (from_db(r.get(0)), r.get::<_, String>(1))),
            )
        })?;
        let expected = (count > 0).then(|| (count, last.clone()));
        if head != expected {
            return Ok(Err(Broken {
                seq: count,
                reason: format!(
                    "the head says {head:?} but the log ends at record {count}: records were removed from the end or the log was rewritten"
                ),
            }));
        }
        Ok(Ok(Verified {
            records: count,
            head: last,
        }))
    }
}
