//! C4, the switch: a release is built in a staging directory, renamed into `releases/`, and
//! `current` is re-pointed by one atomic rename; leftovers of a crash are cleaned up first.

use std::fs::{self, File};
use std::io;
use std::path::Path;

use super::state::State;
use super::{io_fail, InstallError};
use sealwright_fs::sync_dir;

/// Removes what a crashed run left in `releases/` (staging and moved-aside directories are
/// never pointed to by `current`; their names start with a dot).
pub(super) fn clean_leftovers(dir: &Path) {
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            // Temporary `current` links of a crashed switch.
            if e.file_name().to_string_lossy().starts_with(".current-") {
                let _ = fs::remove_file(e.path());
            }
        }
    }
    if let Ok(rd) = fs::read_dir(dir.join("releases")) {
        for e in rd.flatten() {
            let n = e.file_name();
            let n = n.to_string_lossy();
            if n.starts_with(".staging-") || n.starts_with(".old-") {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
}

/// Keeps the current, previous and last good releases of `name`; removes older ones.
pub(super) fn prune_releases(releases: &Path, name: &str, state: &State) {
    let keep: Vec<String> = [
        &state.current_version,
        &state.previous_version,
        &state.last_good_version,
    ]
    .into_iter()
    .flatten()
    .map(|v| format!("{name}-{v}"))
    .collect();
    let prefix = format!("{name}-");
    if let Ok(rd) = fs::read_dir(releases) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with(&prefix) && !keep.contains(&n) {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
}

pub(super) fn sync_tree(dir: &Path) -> io::Result<()> {
    for e in fs::read_dir(dir)? {
        let e = e?;
        let ft = e.file_type()?;
        if ft.is_dir() {
            sync_tree(&e.path())?;
        } else if ft.is_file() {
            File::open(e.path())?.sync_all()?;
        }
    }
    sync_dir(dir)
}

/// Renames the complete `staged` directory to `dest`; an existing `dest` (not the current
/// release: the caller checked) is moved aside first and removed after.
pub(super) fn replace_dir(staged: &Path, dest: &Path) -> Result<(), InstallError> {
    let parent = dest.parent().unwrap_or(Path::new("."));
    if fs::symlink_metadata(dest).is_ok() {
        let aside = parent.join(format!(
            ".old-{}-{}",
            dest.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default(),
            std::process::id()
        ));
        fs::rename(dest, &aside).map_err(io_fail(
            "install",
            format!("moving {} aside", dest.display()),
        ))?;
        let _ = fs::remove_dir_all(&aside);
    }
    fs::rename(staged, dest).map_err(io_fail(
        "install",
        format!("renaming into {}", dest.display()),
    ))?;
    sync_dir(parent).map_err(io_fail("install", "syncing releases/"))
}

/// Points `DIR/current` at `target` (relative to DIR) atomically: a new symlink under a
/// temporary name, rename over `current`, fsync of DIR. A crash leaves the old or the new
/// link, never none.
pub fn switch_current(dir: &Path, target: &str) -> Result<(), InstallError> {
    let tmp = dir.join(format!(".current-{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)
        .map_err(io_fail("install", "creating the current link"))?;
    fs::rename(&tmp, dir.join("current")).map_err(io_fail("install", "switching current"))?;
    sync_dir(dir).map_err(io_fail("install", "syncing the client directory"))
}
