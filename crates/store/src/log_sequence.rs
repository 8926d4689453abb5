//! The transparency log's sequence, in `DATA/log-sequence.sqlite3`: entries that have their
//! index but are not in the log's tiles yet.
//!
//! Guarantees:
//! - [`LogSequence::append`] gives a batch consecutive indices in one transaction: after it
//!   returns, the entries survive a crash and keep their indices; after it fails, none of
//!   them has one;
//! - indices never go backwards or skip: the next index is one past the highest pending
//!   entry, or the size of the integrated log when none is pending (the caller says which,
//!   from its signed checkpoint);
//! - [`LogSequence::pending`] returns entries from an index on, refusing a gap (which only
//!   a damaged database could show).
//!
//! Entries leave the sequence ([`LogSequence::forget_below`]) only once a checkpoint of
//! their tiles is written; until then the writer can always rebuild the same tiles. The one
//! other way out is [`LogSequence::retract`], of pending entries only: what a publish that
//! failed after sequencing its entries takes back. An entry whose index the log gave to
//! another entry (replicas of a shared store sequence locally) is moved after the log by
//! [`LogSequence::requeue`], never dropped.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

/// The database file in the data directory.
pub const LOG_SEQUENCE_FILE: &str = "log-sequence.sqlite3";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS log_pending (
    idx     INTEGER PRIMARY KEY NOT NULL,
    entry   BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS log_index (
    leaf    BLOB PRIMARY KEY NOT NULL,
    idx     INTEGER NOT NULL
);
";

/// The sequence could not be read or written, or is damaged.
#[derive(Debug, thiserror::Error)]
pub enum LogSequenceError {
    /// SQLite failed.
    #[error("log sequence {path}: {source}")]
    Db {
        /// The database file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// Indices are not consecutive.
    #[error("log sequence: expected entry {expected}, found {found} (the database is damaged)")]
    Gap {
        /// The index that should come next.
        expected: u64,
        /// The one found.
        found: u64,
    },
    /// Entries a signed checkpoint holds cannot be taken back.
    #[error(
        "log sequence: entries from {first} on cannot be taken back, the log holds {size} already"
    )]
    Integrated {
        /// The first index asked for.
        first: u64,
        /// The integrated size.
        size: u64,
    },
}

/// The pending part of the log.
#[derive(Debug)]
pub struct LogSequence {
    path: PathBuf,
    conn: Connection,
}

impl LogSequence {
    /// Opens (creating) the sequence in `dir`.
    pub fn open(dir: &Path) -> Result<Self, LogSequenceError> {
        let path = dir.join(LOG_SEQUENCE_FILE);
        let db = |source| LogSequenceError::Db {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(db)?;
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")
            .map_err(db)?;
        conn.execute_batch(SCHEMA).map_err(db)?;
        Ok(LogSequence { path, conn })
    }

    fn db(&self) -> impl Fn(rusqlite::Error) -> LogSequenceError + '_ {
        |source| LogSequenceError::Db {
            path: self.path.clone(),
            source,
        }
    }

    /// Gives `entries` the next indices (from `integrated_size` when nothing is pending);
    /// returns the first.
    ///
    /// Each entry's leaf hash (`leaf_of`) is indexed in the same transaction, so an entry's
    /// index can be found for a proof ([`LogSequence::index_of`]); an entry logged twice is
    /// found at its first index.
    pub fn append(
        &mut self,
        integrated_size: u64,
        entries: &[Vec<u8>],
        leaf_of: impl Fn(&[u8]) -> [u8; 32],
    ) -> Result<u64, LogSequenceError> {
        self.in_transaction(|tx| sequence_after_pending(tx, integrated_size, entries, &leaf_of))
    }

    /// Runs `change` in one transaction: all of it is committed, or none.
    fn in_transaction<T>(
        &mut self,
        change: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, rusqlite::Error>,
    ) -> Result<T, LogSequenceError> {
        let path = self.path.clone();
        let db = |source| LogSequenceError::Db { path, source };
        let run = |conn: &mut Connection| {
            let tx = conn.transaction()?;
            let out = change(&tx)?;
            tx.commit()?;
            Ok(out)
        };
        run(&mut self.conn).map_err(db)
    }

    /// The pending entries from index `from` on, in order.
    pub fn pending(&self, from: u64) -> Result<Vec<Vec<u8>>, LogSequenceError> {
        let mut stmt = self
            .conn
            .prepare("SELECT idx, entry FROM log_pending WHERE idx >= ?1 ORDER BY idx")
            .map_err(self.db())?;
        let rows = stmt
            .query_map(params![from as i64], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Vec<u8>>(1)?))
            })
            .map_err(self.db())?;
        let mut out = Vec::new();
        for row in rows {
            let (idx, entry) = row.map_err(self.db())?;
            let expected = from.saturating_add(out.len() as u64);
            if idx != expected {
                return Err(LogSequenceError::Gap {
                    expected,
                    found: idx,
                });
            }
            out.push(entry);
        }
        Ok(out)
    }

    /// The index of the entry whose leaf hash is `leaf`, if one was sequenced.
    pub fn index_of(&self, leaf: &[u8; 32]) -> Result<Option<u64>, LogSequenceError> {
        self.conn
            .query_row(
                "SELECT idx FROM log_index WHERE leaf = ?1",
                params![&leaf[..]],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map(|i| i.map(|i| i as u64))
            .map_err(self.db())
    }

    /// Takes back the batch [`LogSequence::append`] gave indices from `first` on, and
    /// anything sequenced after it — what a publish that failed after sequencing would
    /// otherwise have the log claim. Only pending entries can be taken back: an index below
    /// `integrated_size` is in a signed checkpoint already, and asking for it is refused
    /// without changing anything.
    pub fn retract(&mut self, first: u64, integrated_size: u64) -> Result<(), LogSequenceError> {
        if first < integrated_size {
            return Err(LogSequenceError::Integrated {
                first,
                size: integrated_size,
            });
        }
        self.in_transaction(|tx| {
            tx.execute(
                "DELETE FROM log_pending WHERE idx >= ?1",
                params![first as i64],
            )?;
            tx.execute(
                "DELETE FROM log_index WHERE idx >= ?1",
                params![first as i64],
            )?;
            Ok(())
        })
    }

    /// The entries still pending below `size`, with their indices: sequenced here, then the
    /// log reached `size` — with them (a checkpoint written by a process killed before it
    /// forgot them), or past them from elsewhere (another replica of a shared store).
    pub fn pending_below(&self, size: u64) -> Result<Vec<(u64, Vec<u8>)>, LogSequenceError> {
        let mut stmt = self
            .conn
            .prepare("SELECT idx, entry FROM log_pending WHERE idx < ?1 ORDER BY idx")
            .map_err(self.db())?;
        let rows = stmt
            .query_map(params![size as i64], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Vec<u8>>(1)?))
            })
            .map_err(self.db())?;
        rows.collect::<Result<_, _>>().map_err(self.db())
    }

    /// Settles the entries pending below `integrated_size`, in one transaction: those in
    /// `overtaken` (whose indices the log gave to other entries) get new indices after
    /// everything pending, their old index forgotten; the others are in the log and are
    /// dropped.
    pub fn requeue(
        &mut self,
        integrated_size: u64,
        overtaken: &[(u64, Vec<u8>)],
        leaf_of: impl Fn(&[u8]) -> [u8; 32],
    ) -> Result<(), LogSequenceError> {
        self.in_transaction(|tx| {
            tx.execute(
                "DELETE FROM log_pending WHERE idx < ?1",
                params![integrated_size as i64],
            )?;
            for (old, entry) in overtaken {
                tx.execute(
                    "DELETE FROM log_index WHERE leaf = ?1 AND idx = ?2",
                    params![&leaf_of(entry)[..], *old as i64],
                )?;
            }
            let entries: Vec<Vec<u8>> = overtaken.iter().map(|(_, e)| e.clone()).collect();
            sequence_after_pending(tx, integrated_size, &entries, &leaf_of)?;
            Ok(())
        })
    }

    /// Drops the entries below `size`: a checkpoint of `size` is written.
    pub fn forget_below(&self, size: u64) -> Result<(), LogSequenceError> {
        self.conn
            .execute(
                "DELETE FROM log_pending WHERE idx < ?1",
                params![size as i64],
            )
            .map_err(self.db())?;
        Ok(())
    }
}

/// Gives `entries` consecutive indices after everything pending (from `integrated_size`
/// when nothing is), indexing each one's leaf hash; returns the first. Within the caller's
/// transaction.
fn sequence_after_pending(
    tx: &rusqlite::Transaction<'_>,
    integrated_size: u64,
    entries: &[Vec<u8>],
    leaf_of: &impl Fn(&[u8]) -> [u8; 32],
) -> Result<u64, rusqlite::Error> {
    let highest: Option<i64> = tx
        .query_row("SELECT MAX(idx) FROM log_pending", [], |r| r.get(0))
        .optional()?
        .flatten();
    let first = highest.map_or(integrated_size, |h| {
        (h as u64).saturating_add(1).max(integrated_size)
    });
    for (i, e) in entries.iter().enumerate() {
        let idx = first.saturating_add(i as u64) as i64;
        tx.execute(
            "INSERT INTO log_pending (idx, entry) VALUES (?1, ?2)",
            params![idx, e],
        )?;
        tx.execute(
            "INSERT OR IGNORE INTO log_index (leaf, idx) VALUES (?1, ?2)",
            params![&leaf_of(e)[..], idx],
        )?;
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(e: &[u8]) -> [u8; 32] {
        let mut l = [0u8; 32];
        l[..e.len()].copy_from_slice(e);
        l
    }

    #[test]
    fn a_retracted_batch_leaves_no_index_and_its_indices_are_given_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut seq = LogSequence::open(dir.path()).unwrap();
        assert_eq!(seq.append(0, &[b"a".to_vec()], leaf).unwrap(), 0);
        let first = seq
            .append(0, &[b"b".to_vec(), b"a".to_vec()], leaf)
            .unwrap();
        assert_eq!(first, 1);
        seq.retract(first, 0).unwrap();
        assert_eq!(seq.pending(0).unwrap(), vec![b"a".to_vec()]);
        assert_eq!(seq.index_of(&leaf(b"b")).unwrap(), None);
        // An entry logged before the batch keeps its index.
        assert_eq!(seq.index_of(&leaf(b"a")).unwrap(), Some(0));
        assert_eq!(seq.append(0, &[b"c".to_vec()], leaf).unwrap(), 1);
        // What a checkpoint holds is never taken back.
        seq.forget_below(2).unwrap();
        assert!(matches!(
            seq.retract(1, 2),
            Err(LogSequenceError::Integrated { first: 1, size: 2 })
        ));
        assert_eq!(seq.index_of(&leaf(b"c")).unwrap(), Some(1));
    }

    #[test]
    fn overtaken_entries_move_after_the_log_and_logged_ones_go() {
        let dir = tempfile::tempdir().unwrap();
        let mut seq = LogSequence::open(dir.path()).unwrap();
        seq.append(0, &[b"in-log".to_vec(), b"lost".to_vec()], leaf)
            .unwrap();
        // Another writer took indices 0..3: index 0 holds our entry, index 1 another one.
        let below = seq.pending_below(3).unwrap();
        assert_eq!(below, vec![(0, b"in-log".to_vec()), (1, b"lost".to_vec())]);
        seq.requeue(3, &below[1..], leaf).unwrap();
        assert!(seq.pending_below(3).unwrap().is_empty());
        assert_eq!(seq.pending(3).unwrap(), vec![b"lost".to_vec()]);
        assert_eq!(seq.index_of(&leaf(b"lost")).unwrap(), Some(3));
        assert_eq!(seq.index_of(&leaf(b"in-log")).unwrap(), Some(0));
        assert_eq!(seq.append(3, &[b"next".to_vec()], leaf).unwrap(), 4);
    }

    #[test]
    fn batches_get_consecutive_indices_that_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let mut seq = LogSequence::open(dir.path()).unwrap();
        assert_eq!(
            seq.append(5, &[b"a".to_vec(), b"b".to_vec()], leaf)
                .unwrap(),
            5
        );
        assert_eq!(seq.append(5, &[b"c".to_vec()], leaf).unwrap(), 7);
        drop(seq);
        let mut seq = LogSequence::open(dir.path()).unwrap();
        assert_eq!(
            seq.pending(5).unwrap(),
            vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
        );
        assert_eq!(seq.pending(6).unwrap(), vec![b"b".to_vec(), b"c".to_vec()]);
        seq.forget_below(7).unwrap();
        assert_eq!(seq.pending(7).unwrap(), vec![b"c".to_vec()]);
        // Nothing pending below the integrated size: the next index follows it.
        seq.forget_below(8).unwrap();
        assert_eq!(
            seq.append(8, &[b"d".to_vec(), b"a".to_vec()], leaf)
                .unwrap(),
            8
        );
        // Entries are found by leaf hash, at their first index, after they left the queue.
        assert_eq!(seq.index_of(&leaf(b"b")).unwrap(), Some(6));
        assert_eq!(seq.index_of(&leaf(b"d")).unwrap(), Some(8));
        assert_eq!(seq.index_of(&leaf(b"a")).unwrap(), Some(5));
        assert_eq!(seq.index_of(&leaf(b"z")).unwrap(), None);
        // A gap is damage, not something to paper over.
        seq.conn
            .execute(
                "INSERT INTO log_pending (idx, entry) VALUES (11, x'00')",
                [],
            )
            .unwrap();
        assert!(matches!(
            seq.pending(8),
            Err(LogSequenceError::Gap {
                expected: 10,
                found: 11
            })
        ));
    }
}
