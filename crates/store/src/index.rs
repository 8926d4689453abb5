//! The server's index, in `DATA/index.sqlite3`: which artifacts its blob store holds, and
//! which targets each published role lists.
//!
//! The index is derived data, never a source of trust: clients verify everything against
//! signed metadata, and the server checks a blob's hash from its bytes when it is stored.
//! It answers the questions that would otherwise need a walk of the blob store or a parse of
//! every targets role ("is this artifact already uploaded?", "what is published under
//! `app/`?"), and it can be rebuilt from the data directory at any time (delete the file;
//! `sealwright serve --push` rebuilds it at start).

use std::path::{Path, PathBuf};

use chrono::{SecondsFormat, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

/// The database file in the data directory.
pub const INDEX_FILE: &str = "index.sqlite3";
/// Most rows one listing returns.
pub const MAX_LISTING: u32 = 10_000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS blobs (
    sha256      TEXT PRIMARY KEY NOT NULL,
    length      INTEGER NOT NULL,
    stored_at   TEXT NOT NULL,
    stored_by   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS targets (
    path          TEXT NOT NULL,
    role          TEXT NOT NULL,
    role_version  INTEGER NOT NULL,
    length        INTEGER NOT NULL,
    sha256        TEXT NOT NULL,
    indexed_at    TEXT NOT NULL,
    PRIMARY KEY (path, role)
);
CREATE INDEX IF NOT EXISTS targets_by_role ON targets (role);
";

/// The index could not be opened, written or read.
#[derive(Debug, thiserror::Error)]
#[error("index {path}: {source}")]
pub struct IndexError {
    /// The database file.
    pub path: PathBuf,
    /// Why.
    pub source: rusqlite::Error,
}

/// A stored artifact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Blob {
    /// SHA-256 of its bytes (hex), also its name in the blob store.
    pub sha256: String,
    /// Its length.
    pub length: u64,
    /// When it was stored (RFC 3339, UTC).
    pub stored_at: String,
    /// Who stored it (`token:NAME`, or `rebuild`).
    pub stored_by: String,
}

/// A target as the published role lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Target {
    /// Target path.
    pub path: String,
    /// The role listing it.
    pub role: String,
    /// That role's version.
    pub role_version: u64,
    /// Length it is signed with.
    pub length: u64,
    /// SHA-256 it is signed with (hex).
    pub sha256: String,
}

/// The index of one data directory.
#[derive(Debug)]
pub struct Index {
    conn: Connection,
    path: PathBuf,
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// SQLite stores integers as i64; lengths above that are not real files.
fn to_db(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn from_db(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// The least string greater than every string starting with `prefix`: its last character
/// that can be incremented, incremented, and what follows it dropped; none when there is no
/// such string (the empty prefix, or one of only U+10FFFF), i.e. no upper bound.
pub(crate) fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        // The next scalar value, skipping the surrogate gap.
        let next = match u32::from(last) {
            0xD7FF => Some('\u{E000}'),
            n => n.checked_add(1).and_then(char::from_u32),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

impl Index {
    /// Whether `data_dir` has an index yet.
    pub fn exists(data_dir: &Path) -> bool {
        data_dir.join(INDEX_FILE).is_file()
    }

    /// Opens (creating if needed) the index in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, IndexError> {
        let path = data_dir.join(INDEX_FILE);
        let err = |source| IndexError {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
            .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        Ok(Index { conn, path })
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> IndexError + '_ {
        move |source| IndexError {
            path: self.path.clone(),
            source,
        }
    }

    /// Records a blob now in the store (the first record of a blob is kept).
    pub fn record_blob(
        &self,
        sha256: &str,
        length: u64,
        stored_by: &str,
    ) -> Result<(), IndexError> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO blobs (sha256, length, stored_at, stored_by) VALUES (?1, ?2, ?3, ?4)",
                params![sha256, to_db(length), now(), stored_by],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// The blob with this SHA-256, if recorded.
    pub fn blob(&self, sha256: &str) -> Result<Option<Blob>, IndexError> {
        self.conn
            .query_row(
                "SELECT sha256, length, stored_at, stored_by FROM blobs WHERE sha256 = ?1",
                params![sha256],
                |row| {
                    Ok(Blob {
                        sha256: row.get(0)?,
                        length: from_db(row.get(1)?),
                        stored_at: row.get(2)?,
                        stored_by: row.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(self.err())
    }

    /// Replaces what `role` lists with `targets` (path, length, sha256): a role's metadata
    /// lists all its targets, so the index mirrors the version just published. One
    /// transaction: a reader sees the old listing or the new one.
    pub fn replace_role(
        &mut self,
        role: &str,
        role_version: u64,
        targets: &[(String, u64, String)],
    ) -> Result<(), IndexError> {
        let path = self.path.clone();
        let err = |source| IndexError {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        tx.execute("DELETE FROM targets WHERE role = ?1", params![role])
            .map_err(err)?;
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO targets (path, role, role_version, length, sha256, indexed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(err)?;
            let at = now();
            for (target, length, sha256) in targets {
                insert
                    .execute(params![
                        target,
                        role,
                        to_db(role_version),
                        to_db(*length),
                        sha256,
                        at
                    ])
                    .map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// Targets whose path starts with `prefix`, in path order, at most `limit` (capped at
    /// [`MAX_LISTING`]) of them, starting after `after` (for paging).
    pub fn targets(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Target>, IndexError> {
        // A range scan instead of LIKE: no escaping of `%`/`_` in paths, and it uses the key.
        // Text compares by bytes, and UTF-8 byte order is code point order, so the paths
        // starting with `prefix` are exactly those in [prefix, successor(prefix)).
        let upper = prefix_successor(prefix);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT path, role, role_version, length, sha256 FROM targets
                 WHERE path >= ?1 AND (?2 IS NULL OR path < ?2) AND (?3 IS NULL OR path > ?3)
                 ORDER BY path, role LIMIT ?4",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map(
                params![prefix, upper, after, limit.min(MAX_LISTING)],
                |row| {
                    Ok(Target {
                        path: row.get(0)?,
                        role: row.get(1)?,
                        role_version: from_db(row.get(2)?),
                        length: from_db(row.get(3)?),
                        sha256: row.get(4)?,
                    })
                },
            )
            .map_err(self.err())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.err())
    }

    /// Moves everything written into the database file itself (out of the write-ahead log),
    /// so the file alone is complete — before it is renamed into place.
    pub fn checkpoint(&self) -> Result<(), IndexError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(self.err())
    }

    /// Counts of blobs and target rows.
    pub fn counts(&self) -> Result<(u64, u64), IndexError> {
        let count = |table: &str| -> Result<u64, IndexError> {
            self.conn
                .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| {
                    r.get::<_, i64>(0)
                })
                .map(from_db)
                .map_err(self.err())
        };
        Ok((count("blobs")?, count("targets")?))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn blobs_are_recorded_once_and_roles_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!Index::exists(dir.path()));
        let mut index = Index::open(dir.path()).unwrap();
        assert!(Index::exists(dir.path()));
        index.record_blob("aa", 3, "token:ci").unwrap();
        index.record_blob("aa", 3, "token:other").unwrap();
        assert_eq!(index.blob("aa").unwrap().unwrap().stored_by, "token:ci");
        assert_eq!(index.blob("bb").unwrap(), None);

        let t = |p: &str| (p.to_owned(), 1u64, "aa".to_owned());
        index
            .replace_role("targets", 2, &[t("app/1/a"), t("app/2/a"), t("apq/x")])
            .unwrap();
        index.replace_role("beta", 1, &[t("app/1/a")]).unwrap();
        let listed = index.targets("app/", None, 100).unwrap();
        let names: Vec<_> = listed
            .iter()
            .map(|t| format!("{}@{}", t.path, t.role))
            .collect();
        assert_eq!(
            names,
            ["app/1/a@beta", "app/1/a@targets", "app/2/a@targets"]
        );
        // Paging continues after the last path seen.
        let next = index.targets("app/", Some("app/1/a"), 100).unwrap();
        assert_eq!(next.len(), 1);
        // `%` and `_` are not wildcards.
        assert!(index.targets("app%", None, 100).unwrap().is_empty());
        // A new version of a role replaces its whole listing.
        index.replace_role("targets", 3, &[t("apq/x")]).unwrap();
        assert_eq!(index.targets("app/", None, 100).unwrap().len(), 1);
        assert_eq!(index.targets("", None, 100).unwrap().len(), 2);
        assert_eq!(index.counts().unwrap(), (1, 2));
    }

    proptest::proptest! {
        /// A listing's prefix and cursor come from the query string: any text gives rows that
        /// start with the prefix, in order, after the cursor — never an error or a panic.
        #[test]
        fn listings_honour_any_prefix_and_cursor(
            prefix in "[ab/%_\u{D7FF}\u{10FFFF}]{0,4}",
            after in proptest::option::of("[ab/%_]{0,4}"),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut index = Index::open(dir.path()).unwrap();
            let paths = [
                "a", "a/b", "a/b%c", "a_b", "b/\u{10FFFF}", "b/\u{10FFFF}x", "b/\u{D7FF}", "b/\u{E000}", "%", "",
            ];
            let rows: Vec<_> = paths.iter().map(|p| ((*p).to_owned(), 1u64, "aa".to_owned())).collect();
            index.replace_role("targets", 1, &rows).unwrap();
            let listed = index.targets(&prefix, after.as_deref(), 100).unwrap();
            let mut last: Option<String> = None;
            for t in &listed {
                proptest::prop_assert!(t.path.starts_with(prefix.as_str()), "{} vs {prefix:?}", t.path);
                if let Some(a) = &after {
                    proptest::prop_assert!(t.path.as_str() > a.as_str());
                }
                proptest::prop_assert!(last.as_deref() < Some(t.path.as_str()));
                last = Some(t.path.clone());
            }
            let expected = paths
                .iter()
                .filter(|p| p.starts_with(prefix.as_str()) && after.as_deref().is_none_or(|a| **p > a))
                .count();
            proptest::prop_assert_eq!(listed.len(), expected);
        }
    }

    #[test]
    fn survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        Index::open(dir.path())
            .unwrap()
            .record_blob("cc", 9, "rebuild")
            .unwrap();
        let index = Index::open(dir.path()).unwrap();
        assert_eq!(index.blob("cc").unwrap().unwrap().length, 9);
    }
}
