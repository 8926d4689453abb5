//! What a transparency-log monitor remembers between runs, in `STATE/monitor.sqlite3`: the
//! checkpoint it last accepted with the tree's right edge (to rebuild the tree from new
//! entries only), and the newest logged statement about each role, target path and the
//! audit log's head (to judge the next one against it).
//!
//! Guarantees:
//! - [`MonitorState::advance`] writes everything a run learned in one transaction: a monitor
//!   killed at any point resumes from the last whole run, never from half of one;
//! - lookups are by key (role, path), so a run's work follows the entries it reads, not the
//!   size of the log.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

/// The database file in the monitor's state directory.
pub const MONITOR_STATE_FILE: &str = "monitor.sqlite3";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS followed (
    id       INTEGER PRIMARY KEY CHECK (id = 0),
    note     BLOB NOT NULL,
    frontier BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS roles (
    role    TEXT PRIMARY KEY NOT NULL,
    version INTEGER NOT NULL,
    sha256  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS targets (
    path    TEXT PRIMARY KEY NOT NULL,
    sha256  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_head (
    id      INTEGER PRIMARY KEY CHECK (id = 0),
    records INTEGER NOT NULL,
    head    TEXT NOT NULL
);
";

/// The state database failed.
#[derive(Debug, thiserror::Error)]
#[error("monitor state {path}: {source}")]
pub struct MonitorStateError {
    path: PathBuf,
    source: rusqlite::Error,
}

/// The newest logged version of a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRole {
    /// Its version.
    pub version: u64,
    /// SHA-256 of the file's bytes, hex.
    pub sha256: String,
}

/// The checkpoint a monitor follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Followed {
    /// The checkpoint note, as served.
    pub note: Vec<u8>,
    /// The tree's right edge at its size (`sealwright_tlog::merkle::Frontier::to_bytes`).
    pub frontier: Vec<u8>,
}

/// Everything one run learned, written together by [`MonitorState::advance`].
#[derive(Debug, Default)]
pub struct Advance {
    /// The checkpoint note now followed, and the tree's right edge at its size.
    pub followed: Option<Followed>,
    /// The newest logged version of each role seen in the run.
    pub roles: BTreeMap<String, LoggedRole>,
    /// The newest logged digest of each target path seen in the run.
    pub targets: BTreeMap<String, String>,
    /// The newest audit head logged in the run.
    pub audit_head: Option<(u64, String)>,
}

/// A monitor's memory.
#[derive(Debug)]
pub struct MonitorState {
    path: PathBuf,
    conn: Connection,
}

impl MonitorState {
    /// Opens (creating) the state in `dir`.
    pub fn open(dir: &Path) -> Result<Self, MonitorStateError> {
        let path = dir.join(MONITOR_STATE_FILE);
        let conn = Connection::open(&path).map_err(|source| MonitorStateError {
            path: path.clone(),
            source,
        })?;
        let state = MonitorState { path, conn };
        state
            .conn
            .execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")
            .and_then(|()| state.conn.execute_batch(SCHEMA))
            .map_err(state.db())?;
        Ok(state)
    }

    fn db(&self) -> impl Fn(rusqlite::Error) -> MonitorStateError + '_ {
        |source| MonitorStateError {
            path: self.path.clone(),
            source,
        }
    }

    /// The checkpoint note last accepted and the tree's right edge at its size.
    pub fn followed(&self) -> Result<Option<Followed>, MonitorStateError> {
        self.conn
            .query_row(
                "SELECT note, frontier FROM followed WHERE id = 0",
                [],
                |r| {
                    Ok(Followed {
                        note: r.get(0)?,
                        frontier: r.get(1)?,
                    })
                },
            )
            .optional()
            .map_err(self.db())
    }

    /// The newest logged version of `role`.
    pub fn role(&self, role: &str) -> Result<Option<LoggedRole>, MonitorStateError> {
        self.conn
            .query_row(
                "SELECT version, sha256 FROM roles WHERE role = ?1",
                params![role],
                |r| {
                    Ok(LoggedRole {
                        version: r.get::<_, i64>(0)? as u64,
                        sha256: r.get(1)?,
                    })
                },
            )
            .optional()
            .map_err(self.db())
    }

    /// Every role the log has shown, with its newest version.
    pub fn roles(&self) -> Result<BTreeMap<String, LoggedRole>, MonitorStateError> {
        let mut stmt = self
            .conn
            .prepare("SELECT role, version, sha256 FROM roles")
            .map_err(self.db())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    LoggedRole {
                        version: r.get::<_, i64>(1)? as u64,
                        sha256: r.get(2)?,
                    },
                ))
            })
            .map_err(self.db())?;
        rows.collect::<Result<_, _>>().map_err(self.db())
    }

    /// The digest last logged for target `path`.
    pub fn target(&self, path: &str) -> Result<Option<String>, MonitorStateError> {
        self.conn
            .query_row(
                "SELECT sha256 FROM targets WHERE path = ?1",
                params![path],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.db())
    }

    /// The audit head last logged: records and head hash.
    pub fn audit_head(&self) -> Result<Option<(u64, String)>, MonitorStateError> {
        self.conn
            .query_row(
                "SELECT records, head FROM audit_head WHERE id = 0",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)),
            )
            .optional()
            .map_err(self.db())
    }

    /// Records what a run learned, all of it or none.
    pub fn advance(&mut self, run: &Advance) -> Result<(), MonitorStateError> {
        let path = self.path.clone();
        let db = |source| MonitorStateError {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(db)?;
        if let Some(followed) = &run.followed {
            tx.execute(
                "INSERT OR REPLACE INTO followed (id, note, frontier) VALUES (0, ?1, ?2)",
                params![followed.note, followed.frontier],
            )
            .map_err(db)?;
        }
        for (role, logged) in &run.roles {
            tx.execute(
                "INSERT OR REPLACE INTO roles (role, version, sha256) VALUES (?1, ?2, ?3)",
                params![role, logged.version as i64, logged.sha256],
            )
            .map_err(db)?;
        }
        for (target, sha256) in &run.targets {
            tx.execute(
                "INSERT OR REPLACE INTO targets (path, sha256) VALUES (?1, ?2)",
                params![target, sha256],
            )
            .map_err(db)?;
        }
        if let Some((records, head)) = &run.audit_head {
            tx.execute(
                "INSERT OR REPLACE INTO audit_head (id, records, head) VALUES (0, ?1, ?2)",
                params![*records as i64, head],
            )
            .map_err(db)?;
        }
        tx.commit().map_err(db)
    }
}
