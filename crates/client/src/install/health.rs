//! C4, the health check: the new release must run before it counts as good; a failure or a
//! timeout rolls back.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{InstallError, InstallOptions};

/// Runs the health check with a timeout; `Ok` when there is none or it exits 0.
pub(super) fn run_health_check(
    opts: &InstallOptions<'_>,
    release_dir: &Path,
) -> Result<(), InstallError> {
    let Some(cmd) = &opts.health_check else {
        return Ok(());
    };
    let fail = |why: String| {
        InstallError::new(
            "health-check",
            format!("health check `{cmd}` {why}; rolled back to the last known good release"),
        )
    };
    let abs = fs::canonicalize(release_dir).unwrap_or_else(|_| release_dir.to_path_buf());
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .env("SEALWRIGHT_RELEASE_DIR", &abs)
        .current_dir(&abs)
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| fail(format!("could not start ({e})")))?;
    let deadline = Instant::now() + opts.health_timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(fail(format!("failed ({status})"))),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!(
                    "timed out after {} s",
                    opts.health_timeout.as_secs()
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(fail(format!("could not be waited for ({e})"))),
        }
    }
}
