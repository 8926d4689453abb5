//! Durable, atomic file writes and size-capped reads.
//!
//! A write goes to a temporary file in the destination directory, is fsynced, renamed over
//! the destination, and the directory is fsynced: a crash leaves either the old or the new
//! file, never a torn one. Bulk publishing writes many files without per-file fsync and then
//! calls [`sync_filesystem`] once before the single pointer switch that makes them live.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

/// Writes `bytes` to `path` atomically and durably.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_mode(path, bytes, 0o666)
}

/// [`write_atomic`] for a secret: the file is created readable by its owner only, so it is
/// never readable by others, not even for a moment.
pub fn write_atomic_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_mode(path, bytes, 0o600)
}

fn write_atomic_mode(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    write_through_temp(path, bytes, mode, Durability::Synced)
}

/// Writes `bytes` to `path` without fsync (the caller syncs the file system before anything
/// refers to the file). Goes through a temporary name so a reader never sees a partial file.
pub fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_through_temp(path, bytes, 0o666, Durability::Unsynced)
}

/// The one write path: a temporary file beside `path`, renamed over it (and, synced, the file
/// and then its directory fsynced). A failure at any step leaves no temporary file.
fn write_through_temp(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    durability: Durability,
) -> io::Result<()> {
    let dir = parent_dir(path);
    fs::create_dir_all(dir)?;
    let tmp = temp_name(path);
    write_temp(&tmp, bytes, mode, durability)?;
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    match durability {
        Durability::Synced => sync_dir(dir),
        Durability::Unsynced => Ok(()),
    }
}

/// Whether a temporary file is fsynced before it is renamed into place.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Durability {
    Synced,
    Unsynced,
}

/// Creates the new file `tmp` holding `bytes`. A write that fails once the file exists
/// (a full disk, most often) removes it: leftovers would eat the space the retry needs.
fn write_temp(tmp: &Path, bytes: &[u8], mode: u32, durability: Durability) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(tmp)?;
    let written = f.write_all(bytes).and_then(|()| match durability {
        Durability::Synced => f.sync_all(),
        Durability::Unsynced => Ok(()),
    });
    if written.is_err() {
        drop(f);
        let _ = fs::remove_file(tmp);
    }
    written
}

/// Copies `from` to the new file `to` (never replacing one), streaming, then fsyncs it.
pub fn copy_new(from: &Path, to: &Path) -> io::Result<()> {
    let mut source = fs::File::open(from)?;
    let mut dest = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(to)?;
    io::copy(&mut source, &mut dest)?;
    dest.sync_all()
}

/// Copies `from` to `path` atomically (temp, fsync, rename, fsync dir), streaming, with
/// `from`'s permissions: a reader finds the old file or the whole new one — with its mode
/// already set — never a part.
pub fn copy_atomic(from: &Path, path: &Path) -> io::Result<()> {
    let dir = parent_dir(path);
    fs::create_dir_all(dir)?;
    let tmp = temp_name(path);
    let copied = copy_new(from, &tmp)
        .and_then(|()| fs::set_permissions(&tmp, fs::metadata(from)?.permissions()))
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = copied {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir)
}

/// Opens (creating it if needed) the lock file `path` and waits for an exclusive `flock` on
/// it, held until the returned file is dropped — or its process dies, so a crash never
/// leaves a lock behind.
pub fn lock_exclusive(path: &Path) -> io::Result<File> {
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)?;
    Ok(f)
}

/// Whether `dir` can become something new: it does not exist, or is an empty directory.
pub fn is_absent_or_empty(dir: &Path) -> io::Result<bool> {
    match fs::read_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e),
        Ok(mut entries) => Ok(entries.next().is_none()),
    }
}

/// fsyncs a directory so renames inside it are durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Flushes every dirty page of the file system holding `dir` (one `syncfs(2)`).
pub fn sync_filesystem(dir: &Path) -> io::Result<()> {
    let f = File::open(dir)?;
    rustix::fs::syncfs(&f).map_err(io::Error::from)
}

/// Reads at most `max` bytes; a longer file is an error, never silently truncated.
pub fn read_capped(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    read_open_capped(File::open(path)?, path, max)
}

/// The rest of the open file `f` (named `path`), at most `max` bytes.
fn read_open_capped(f: File, path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    f.take(max.saturating_add(1)).read_to_end(&mut buf)?;
    if buf.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is larger than the {max}-byte limit", path.display()),
        ));
    }
    Ok(buf)
}

/// [`read_capped`], with a file that does not exist read as `None`.
pub fn read_capped_if_exists(path: &Path, max: u64) -> io::Result<Option<Vec<u8>>> {
    match read_capped(path, max) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// [`read_capped`] for a private key: refused, like ssh does, when the file is readable or
/// writable by group or others — a key others can read is a key others may have copied,
/// and silently using it hides that.
pub fn read_secret(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::PermissionsExt;
    let f = File::open(path)?;
    let mode = f.metadata()?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{0} is accessible by others (mode {mode:04o}); a private key must be readable by its owner only: run `chmod 600 {0}` (and consider the key exposed if others could read it)",
                path.display()
            ),
        ));
    }
    read_open_capped(f, path, max)
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn temp_name(path: &Path) -> std::path::PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parent_dir(path).join(format!(".{name}.{}.tmp", unique_suffix()))
}

/// A name unique within this machine: pid, a process-wide counter and the clock. Temporary
/// names need uniqueness, not secrecy (files are opened with `create_new`), and this avoids
/// initialising the CSPRNG's entropy source just to name a file.
pub fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{}-{n}-{nanos}", std::process::id())
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_that_cannot_land_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let in_the_way = dir.path().join("a.json");
        fs::create_dir(&in_the_way).unwrap();
        fs::write(in_the_way.join("x"), b"x").unwrap();
        assert!(write_atomic(&in_the_way, b"one").is_err());
        assert!(write_new(&in_the_way, b"one").is_err());
        assert!(write_atomic_private(&in_the_way, b"one").is_err());
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.json")]);
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        sync_filesystem(dir.path()).unwrap();
    }

    #[test]
    fn atomic_copy_replaces_keeps_the_mode_and_leaves_no_temp() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("src");
        fs::write(&from, b"#!/bin/sh\n").unwrap();
        fs::set_permissions(&from, fs::Permissions::from_mode(0o755)).unwrap();
        let out = dir.path().join("out");
        fs::create_dir(&out).unwrap();
        let to = out.join("copy");
        fs::write(&to, b"old").unwrap();
        copy_atomic(&from, &to).unwrap();
        assert_eq!(fs::read(&to).unwrap(), b"#!/bin/sh\n");
        assert_eq!(
            fs::metadata(&to).unwrap().permissions().mode() & 0o777,
            0o755
        );
        assert_eq!(fs::read_dir(&out).unwrap().count(), 1);
        assert!(copy_atomic(&dir.path().join("missing"), &to).is_err());
        assert_eq!(
            fs::read_dir(&out).unwrap().count(),
            1,
            "no temporary file left"
        );
    }

    #[test]
    fn capped_read_refuses_oversize() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        fs::write(&p, vec![0u8; 11]).unwrap();
        assert!(read_capped(&p, 10).is_err());
        assert_eq!(read_capped(&p, 11).unwrap().len(), 11);
    }
}
