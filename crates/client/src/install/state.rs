//! `DIR/state.json` (the versions installed, the rollback floor among them), the failure
//! log, and the lock that lets one update run at a time.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::{io_fail, InstallError};
use sealwright_fs::{read_capped_if_exists, write_atomic};

/// The state file in `DIR`.
pub const STATE_FILE: &str = "state.json";
/// The failure log in `DIR`.
pub const FAILURE_LOG: &str = "failures.log";
const MAX_STATE: u64 = 64 * 1024;

/// `DIR/state.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Product.
    pub name: Option<String>,
    /// Channel.
    pub channel: Option<String>,
    /// Version `current` points to.
    pub current_version: Option<String>,
    /// Highest version ever installed (the rollback floor).
    pub highest_version: Option<String>,
    /// Last version that passed its health check.
    pub last_good_version: Option<String>,
    /// Version before the current one.
    pub previous_version: Option<String>,
    /// When the state last changed (RFC 3339 UTC).
    pub updated_at: Option<String>,
}

impl State {
    /// The version `current` points to (when it is semantic).
    pub fn current(&self) -> Option<semver::Version> {
        semantic(self.current_version.as_deref())
    }

    /// The rollback floor: the highest version ever installed (when it is semantic).
    pub fn highest(&self) -> Option<semver::Version> {
        semantic(self.highest_version.as_deref())
    }
}

fn semantic(v: Option<&str>) -> Option<semver::Version> {
    v.and_then(|v| semver::Version::parse(v).ok())
}

/// Reads `DIR/state.json` (default when absent).
pub fn load_state(dir: &Path) -> Result<State, InstallError> {
    let path = dir.join(STATE_FILE);
    match read_capped_if_exists(&path, MAX_STATE)
        .map_err(io_fail("install", format!("reading {}", path.display())))?
    {
        None => Ok(State::default()),
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            InstallError::new(
                "install",
                format!(
                    "{} is corrupt ({e}): restore it from a backup or remove it to reinstall",
                    path.display()
                ),
            )
        }),
    }
}

pub(super) fn save_state(dir: &Path, state: &State) -> Result<(), InstallError> {
    let bytes = serde_json::to_vec_pretty(state)
        .map_err(|e| InstallError::new("install", e.to_string()))?;
    write_atomic(&dir.join(STATE_FILE), &bytes).map_err(io_fail("install", "writing state.json"))
}

/// Appends one failure to `DIR/failures.log` (O_APPEND, fsync): best effort, a failure to
/// log must not hide the failure being logged.
pub fn log_failure(dir: &Path, err: &InstallError, now: DateTime<Utc>) {
    let line = serde_json::json!({
        "time": now.to_rfc3339_opts(SecondsFormat::Secs, true),
        "stage": err.stage,
        "target": err.target,
        "version": err.version,
        "reason": err.message,
    });
    let _ = (|| -> io::Result<()> {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(dir.join(FAILURE_LOG))?;
        f.write_all(format!("{line}\n").as_bytes())?;
        f.sync_all()
    })();
}

/// Holds an exclusive `flock` on `DIR/.lock` until dropped.
pub(super) fn lock_dir(dir: &Path) -> Result<File, InstallError> {
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(dir.join(".lock"))
        .map_err(io_fail(
            "config",
            format!("opening {}/.lock", dir.display()),
        ))?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(|_| {
        InstallError::new(
            "config",
            format!(
                "another update is running on {} (wait for it to finish)",
                dir.display()
            ),
        )
    })?;
    Ok(f)
}
