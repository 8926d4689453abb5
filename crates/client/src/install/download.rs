//! C2: the download into `DIR/tmp`, capped at the signed length and checked against every
//! signed hash; what fails verification goes to `DIR/quarantine/`, never further.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use sealwright_tuf::TargetFile;

use super::pointer::{artifact_basename, ChannelPointer};
use super::{io_fail, InstallError, InstallOptions};
use crate::fetch::Fetcher;
use crate::updater::Updater;
use sealwright_fs::{sync_dir, write_atomic};

/// Removes leftovers of a download interrupted by a crash (never trusted, never used).
fn clean_tmp(tmp_dir: &Path) {
    if let Ok(rd) = fs::read_dir(tmp_dir) {
        for e in rd.flatten() {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// Downloads the artifact whose own signed entry is `tf` into `DIR/tmp` and verifies it;
/// quarantines it when it does not match.
pub(super) fn download_verified<F: Fetcher>(
    dir: &Path,
    updater: &Updater<F>,
    tf: &TargetFile,
    pointer: &ChannelPointer,
    opts: &InstallOptions<'_>,
) -> Result<tempfile::NamedTempFile, InstallError> {
    let url = updater
        .target_url(tf, &pointer.target)
        .map_err(|e| InstallError::new("pointer", e.to_string()).about(pointer))?;
    let basename = artifact_basename(pointer)?;
    let tmp_dir = dir.join("tmp");
    fs::create_dir_all(&tmp_dir).map_err(io_fail(
        "download",
        format!("creating {}", tmp_dir.display()),
    ))?;
    clean_tmp(&tmp_dir);
    let (fetcher, url, basename, tmp_dir) = (
        updater.fetcher(),
        url.as_str(),
        basename.as_str(),
        tmp_dir.as_path(),
    );
    // 0600 and not executable until verified and placed.
    let mut tmp = tempfile::Builder::new()
        .prefix(".download-")
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(tmp_dir)
        .map_err(io_fail("download", "creating a temporary file"))?;
    let result = {
        let mut sink = ProgressWriter {
            inner: BufWriter::new(tmp.as_file_mut()),
            // Hashing beside the transfer, not between its reads and writes.
            hasher: tf.hasher().in_background(),
            done: 0,
            total: tf.length,
            progress: opts.progress,
        };
        // At most the signed length is accepted (endless-data attack).
        let r = fetcher.fetch_to(url, tf.length, &mut sink);
        let flushed = sink.inner.flush();
        let digests = sink.hasher.finish();
        match (r, digests) {
            (Ok(_), Ok(d)) => Ok(d),
            (Ok(_), Err(e)) => Err((
                crate::fetch::FetchError::Io {
                    url: url.to_owned(),
                    source: e,
                },
                flushed.is_ok(),
            )),
            (Err(e), _) => Err((e, flushed.is_ok())),
        }
    };
    let digests = match result {
        Ok(d) => d,
        Err((e, _)) => {
            // Endless data and slow retrieval are the mirror's doing, not the network's:
            // keep what arrived for inspection.
            let hostile = matches!(
                e,
                crate::fetch::FetchError::TooLarge { .. }
                    | crate::fetch::FetchError::TooSlow { .. }
            );
            let reason = format!("download of {} refused: {e}", pointer.target);
            if hostile {
                let q = quarantine(dir, tmp, basename, &reason, opts.now);
                let mut err = InstallError::new(
                    "verify",
                    format!("{reason}; quarantined, nothing installed"),
                )
                .about(pointer);
                err.quarantined = q;
                return Err(err);
            }
            // A transport failure is not a verification failure: the partial file goes.
            drop(tmp);
            return Err(InstallError::new(
                "download",
                format!("{reason} (nothing installed; retry later)"),
            )
            .about(pointer));
        }
    };
    if let Err(mismatch) = tf.check_digests(&digests) {
        let reason = format!(
            "{} does not match its signed metadata ({mismatch}): it may have been tampered with",
            pointer.target
        );
        let q = quarantine(dir, tmp, basename, &reason, opts.now);
        let mut err = InstallError::new(
            "verify",
            format!(
                "{reason}; quarantined in {}, nothing installed",
                q.as_deref().unwrap_or(Path::new("quarantine/")).display()
            ),
        )
        .about(pointer);
        err.quarantined = q;
        return Err(err);
    }
    tmp.as_file()
        .sync_all()
        .map_err(io_fail("download", "syncing the download"))?;
    Ok(tmp)
}

/// Moves a refused download to `DIR/quarantine/<UTC time>-<basename>/` with `reason.txt`.
fn quarantine(
    dir: &Path,
    tmp: tempfile::NamedTempFile,
    basename: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Option<PathBuf> {
    let qroot = dir.join("quarantine");
    fs::create_dir_all(&qroot).ok()?;
    let stamp = now.format("%Y%m%dT%H%M%S%.3fZ");
    let mut qdir = qroot.join(format!("{stamp}-{basename}"));
    let mut n = 1;
    while qdir.exists() {
        qdir = qroot.join(format!("{stamp}-{n}-{basename}"));
        n += 1;
    }
    fs::create_dir_all(&qdir).ok()?;
    let file = qdir.join(basename);
    let _ = fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o600));
    tmp.persist(&file).ok()?;
    let _ = write_atomic(&qdir.join("reason.txt"), format!("{reason}\n").as_bytes());
    let _ = sync_dir(&qroot);
    Some(qdir)
}

/// Hashes and counts what it writes, reporting progress.
struct ProgressWriter<'a, W> {
    inner: W,
    hasher: sealwright_crypto::digest::BackgroundHasher,
    done: u64,
    total: u64,
    progress: Option<&'a dyn Fn(u64, u64)>,
}

impl<W: Write> Write for ProgressWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(buf.get(..n).unwrap_or_default());
        self.done = self.done.saturating_add(n as u64);
        if let Some(p) = self.progress {
            p(self.done, self.total);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
