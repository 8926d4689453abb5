//! Self-replace mode: one file (a binary updating itself) is replaced by the verified
//! artifact, the old one kept as `FILE.previous` for rollback.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::io_fail;
use super::pointer::ChannelPointer;
use super::InstallError;
use sealwright_fs::sync_dir;

pub(super) fn previous_file(target: &Path) -> PathBuf {
    let mut s = target.as_os_str().to_owned();
    s.push(".previous");
    PathBuf::from(s)
}

/// Self-replace: the verified file is copied beside `target`, made executable and renamed
/// over it; the old file is kept as `target.previous` (a hard link, so `target` never
/// disappears).
pub(super) fn self_replace(
    target: &Path,
    verified: &Path,
    pointer: &ChannelPointer,
) -> Result<(), InstallError> {
    let parent = target.parent().unwrap_or(Path::new("."));
    let prev = previous_file(target);
    if target.exists() {
        let _ = fs::remove_file(&prev);
        fs::hard_link(target, &prev)
            .or_else(|_| fs::copy(target, &prev).map(|_| ()))
            .map_err(|e| {
                io_fail("install", format!("keeping {}", prev.display()))(e).about(pointer)
            })?;
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(".sealwright-replace-")
        .tempfile_in(parent)
        .map_err(io_fail(
            "install",
            format!("creating a file in {}", parent.display()),
        ))?;
    let mut src = File::open(verified).map_err(io_fail("install", "reading the download"))?;
    io::copy(&mut src, tmp.as_file_mut()).map_err(io_fail("install", "copying the download"))?;
    tmp.as_file()
        .sync_all()
        .map_err(io_fail("install", "syncing"))?;
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755))
        .map_err(io_fail("install", "setting permissions"))?;
    tmp.persist(target)
        .map_err(|e| io_fail("install", format!("replacing {}", target.display()))(e.error))?;
    sync_dir(parent).map_err(io_fail("install", "syncing"))
}
