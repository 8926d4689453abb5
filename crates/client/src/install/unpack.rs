//! Placing a verified download in a release directory: an archive is unpacked with every
//! hostile entry refused (absolute paths, `..`, links, special files, bombs).

use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use super::{io_fail, InstallError};

/// Unpacked size cap of an archive: a decompression bomb stops here.
pub const MAX_UNPACKED_BYTES: u64 = 16 * 1024 * 1024 * 1024;
/// Entry-count cap of an archive.
pub const MAX_ARCHIVE_ENTRIES: u64 = 1_000_000;

/// Puts the verified download into `dest`: an archive (`.tar`, `.tar.gz`, `.tgz`) is
/// unpacked with hostile-entry checks, anything else is placed under its basename.
pub(super) fn place_artifact(
    verified: tempfile::NamedTempFile,
    dest: &Path,
    basename: &str,
) -> Result<(), InstallError> {
    let gz = basename.ends_with(".tar.gz") || basename.ends_with(".tgz");
    if gz || basename.ends_with(".tar") {
        let file = verified
            .reopen()
            .map_err(io_fail("install", "reading the download"))?;
        let reader: Box<dyn Read> = if gz {
            Box::new(flate2::read::GzDecoder::new(file))
        } else {
            Box::new(file)
        };
        return unpack(reader, dest).map_err(|e| {
            InstallError::new("install", format!("{basename}: refusing to unpack: {e}"))
        });
    }
    let path = dest.join(basename);
    verified
        .persist(&path)
        .map_err(|e| io_fail("install", format!("placing {}", path.display()))(e.error))?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
        .map_err(io_fail("install", format!("placing {}", path.display())))?;
    Ok(())
}

/// Unpacks a tar stream into the empty directory `dest`, refusing absolute paths, `..`,
/// links of any kind, device and other special entries, and archives over the size and
/// entry caps (a hostile archive could otherwise write outside `dest` or fill the disk).
pub fn unpack(reader: impl Read, dest: &Path) -> Result<(), String> {
    let mut archive = tar::Archive::new(reader);
    let mut total: u64 = 0;
    let mut count: u64 = 0;
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        count += 1;
        if count > MAX_ARCHIVE_ENTRIES {
            return Err(format!("more than {MAX_ARCHIVE_ENTRIES} entries"));
        }
        let path = entry.path().map_err(|e| e.to_string())?.into_owned();
        let mut rel = PathBuf::new();
        for c in path.components() {
            match c {
                Component::Normal(p) => rel.push(p),
                Component::CurDir => {}
                _ => {
                    return Err(format!(
                        "entry {} is absolute or contains ..",
                        path.display()
                    ))
                }
            }
        }
        if rel.as_os_str().is_empty() {
            continue;
        }
        let out = dest.join(&rel);
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", rel.display()))?;
            continue;
        }
        if !kind.is_file() {
            return Err(format!(
                "entry {} is a link or special file; only regular files and directories are allowed",
                path.display()
            ));
        }
        let size = entry.header().size().map_err(|e| e.to_string())?;
        total = total.saturating_add(size);
        if total > MAX_UNPACKED_BYTES {
            return Err(format!("unpacks to more than {MAX_UNPACKED_BYTES} bytes"));
        }
        if let Some(parent) = out.parent() {
            fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", rel.display()))?;
        }
        let mode = entry.header().mode().unwrap_or(0o644);
        let mode = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
        // create_new: a duplicate entry cannot overwrite (or follow) what is already there.
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&out)
            .map_err(|e| format!("{}: {e}", rel.display()))?;
        let copied = io::copy(&mut (&mut entry).take(size), &mut f)
            .map_err(|e| format!("{}: {e}", rel.display()))?;
        if copied != size {
            return Err(format!("{}: truncated entry", rel.display()));
        }
    }
    Ok(())
}
