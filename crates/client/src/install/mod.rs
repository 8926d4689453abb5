//! The installer (PRODUCT.md C2–C4, C8): find the newest release of a product on a channel
//! through its signed channel pointer, download and verify it, install it next to the
//! running release and switch atomically, with health check, rollback, quarantine and a
//! failure log.
//!
//! Layout of a client directory `DIR` (a contract other tools rely on):
//!
//! ```text
//! DIR/client.toml                      where the repository is and whom to trust (see init)
//! DIR/metadata/root.json ...           the TUF metadata store
//! DIR/releases/<name>-<version>/       installed releases (the artifact under its basename,
//!                                      or the unpacked content of a .tar / .tar.gz)
//! DIR/current -> releases/<name>-<version>   switched atomically (symlink + rename)
//! DIR/state.json                       versions (current, highest, last good, previous)
//! DIR/quarantine/<UTC time>-<basename>/      a download that failed verification, 0600,
//!                                      never unpacked, with reason.txt
//! DIR/failures.log                     one JSON object per failure, appended and fsynced
//! ```
//!
//! Guarantees, each enforced in the module named after it:
//! - nothing is unpacked, placed or switched to before the length and every hash listed in
//!   signed metadata matched (C2, [`download`]). The channel pointer is only a hint naming a path and a
//!   version: the artifact must itself be a target, found by the delegation search for
//!   *its own* path, and its own signed entry is what the download is checked against (a
//!   role trusted only for `app/channels/*` can name an artifact but never grant one);
//! - a version at or below the highest ever installed is refused unless the artifact's own
//!   entry is signed as a recovery release (C3, [`version_floor`]); the highest version survives in `state.json`;
//! - a failure never changes `current` or `state.json`; every failure is appended to
//!   `failures.log`; a retry starts over with every check (C4, [`switch`], [`health`]).

mod config;
mod download;
mod health;
pub(crate) mod log_check;
mod pointer;
pub(crate) mod provenance_check;
mod self_replace;
mod state;
mod switch;
#[cfg(test)]
mod tests;
mod unpack;
mod version_floor;

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use config::{
    init_client, load_config, require_log, require_provenance, tls_options, ClientConfig,
    CONFIG_FILE, DEFAULT_CHANNEL,
};
pub use log_check::{LogPolicy, SEEN_FILE as LOG_SEEN_FILE};
pub use pointer::{parse_pointer, pointer_path, ChannelPointer};
pub(crate) use pointer::{resolve_release, ResolvedRelease};
pub use provenance_check::ProvenancePolicy;
pub use state::{load_state, log_failure, State, FAILURE_LOG, STATE_FILE};
pub use switch::switch_current;
pub use unpack::{unpack, MAX_ARCHIVE_ENTRIES, MAX_UNPACKED_BYTES};

use crate::fetch::Fetcher;
use crate::updater::{Updater, UpdaterConfig};
use sealwright_fs::sync_dir;

/// Why an update was refused or failed. `stage` says where (for the failure log and for
/// scripts): `config`, `metadata`, `pointer`, `version`, `download`, `verify`, `install`,
/// `health-check`.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct InstallError {
    /// Where it failed.
    pub stage: &'static str,
    /// One line for the operator: what failed and what to do.
    pub message: String,
    /// The version involved, when known.
    pub version: Option<String>,
    /// The target involved, when known.
    pub target: Option<String>,
    /// Where a failed download was quarantined.
    pub quarantined: Option<PathBuf>,
}

impl InstallError {
    pub(crate) fn new(stage: &'static str, message: impl Into<String>) -> Self {
        InstallError {
            stage,
            message: message.into(),
            version: None,
            target: None,
            quarantined: None,
        }
    }

    pub(crate) fn about(mut self, p: &ChannelPointer) -> Self {
        self.version = Some(p.version.clone());
        self.target = Some(p.target.clone());
        self
    }
}

fn io_fail(
    stage: &'static str,
    what: impl std::fmt::Display,
) -> impl FnOnce(io::Error) -> InstallError {
    let what = what.to_string();
    move |e| InstallError::new(stage, format!("{what}: {e}"))
}

/// What an update did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpdateReport {
    /// `installed` or `up-to-date`.
    pub status: &'static str,
    /// Product.
    pub name: String,
    /// Channel.
    pub channel: String,
    /// Version now current.
    pub version: String,
    /// Version current before (when one was).
    pub previous_version: Option<String>,
    /// Whether the installed release was signed as a recovery release.
    pub recovery: bool,
    /// The release directory (or the replaced file in self-replace mode).
    pub installed_at: PathBuf,
}

/// Options of one update run.
pub struct InstallOptions<'a> {
    /// Shell command run after the switch (env `SEALWRIGHT_RELEASE_DIR`); a non-zero exit
    /// or a timeout rolls back to the last known good release.
    pub health_check: Option<String>,
    /// Time allowed to the health check.
    pub health_timeout: Duration,
    /// Replace this single file with the artifact instead of installing a release
    /// directory (keeps `PATH.previous` for rollback).
    pub self_replace: Option<PathBuf>,
    /// Called with (bytes so far, total) while the artifact downloads.
    pub progress: Option<&'a dyn Fn(u64, u64)>,
    /// The clock that metadata expiry is checked against.
    pub now: DateTime<Utc>,
}

impl std::fmt::Debug for InstallOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstallOptions")
            .field("health_check", &self.health_check)
            .field("self_replace", &self.self_replace)
            .finish()
    }
}

impl Default for InstallOptions<'_> {
    fn default() -> Self {
        InstallOptions {
            health_check: None,
            health_timeout: Duration::from_secs(60),
            self_replace: None,
            progress: None,
            now: Utc::now(),
        }
    }
}

/// One update over HTTPS as `DIR/client.toml` says.
pub fn update(dir: &Path, opts: &InstallOptions<'_>) -> Result<UpdateReport, InstallError> {
    let result = (|| {
        let config = load_config(dir)?;
        let fetcher = config::https_fetcher(dir, &config)?;
        run_update(dir, &config, fetcher, opts)
    })();
    if let Err(e) = &result {
        log_failure(dir, e, Utc::now());
    }
    result
}

/// One update with any transport (an offline bundle, a test double). Failures are *not*
/// logged here; [`update`] and the CLI do that.
pub fn update_with<F: Fetcher>(
    dir: &Path,
    config: &ClientConfig,
    fetcher: F,
    opts: &InstallOptions<'_>,
) -> Result<UpdateReport, InstallError> {
    run_update(dir, config, fetcher, opts)
}

/// One update, step by step; every step either passes or ends the run with nothing changed
/// (the health check's rollback restores what was current).
fn run_update<F: Fetcher>(
    dir: &Path,
    config: &ClientConfig,
    fetcher: F,
    opts: &InstallOptions<'_>,
) -> Result<UpdateReport, InstallError> {
    let name = config::product_name(config)?;
    let channel = config.channel.clone();
    // One update at a time per client directory: a second one would empty DIR/tmp under
    // the first and race it on `current`.
    let _lock = state::lock_dir(dir)?;
    let state = load_state(dir)?;
    switch::clean_leftovers(dir);
    let mut updater = refresh_metadata(dir, config, fetcher, opts.now)?;
    let ResolvedRelease {
        pointer,
        artifact,
        artifact_role,
        ..
    } = resolve_release(&mut updater, &name, &channel)?;
    if let Some(policy) = &config.log {
        require_in_log(
            dir,
            config,
            policy,
            &updater,
            &pointer,
            &artifact,
            &artifact_role,
        )?;
    }
    if let Some(policy) = &config.provenance {
        provenance_check::require_provenance(&mut updater, &pointer.target, &artifact, policy)
            .map_err(|e| e.about(&pointer))?;
    }
    let version = pointer::semantic_version(&pointer)?;
    let release = Release {
        name,
        channel,
        pointer,
        version,
    };
    if state.current().as_ref() == Some(&release.version) {
        return Ok(release.report("up-to-date", &state, release.dir(dir, opts)));
    }
    version_floor::check_version_floor(
        &release.name,
        &release.version,
        state.highest().as_ref(),
        &release.pointer,
    )?;
    let verified = download::download_verified(dir, &updater, &artifact, &release.pointer, opts)?;
    match &opts.self_replace {
        Some(target) => replace_file(dir, target, verified, &release, &state, opts),
        None => install_release(dir, verified, &release, &state, opts),
    }
}

/// C6: the artifact's entry and the entry of the exact targets metadata that lists it are
/// in the transparency log ([`log_check`]).
fn require_in_log<F: Fetcher>(
    dir: &Path,
    config: &ClientConfig,
    policy: &LogPolicy,
    updater: &Updater<F>,
    pointer: &ChannelPointer,
    artifact: &sealwright_tuf::TargetFile,
    role: &str,
) -> Result<(), InstallError> {
    let entries = log_entries(
        &dir.join("metadata"),
        updater,
        &pointer.target,
        artifact,
        role,
    )
    .map_err(|e| e.about(pointer))?;
    let base = config
        .metadata_url
        .strip_suffix("metadata/")
        .ok_or_else(|| {
            InstallError::new("log", "the metadata URL does not end in metadata/").about(pointer)
        })?;
    log_check::require_logged(
        dir,
        policy,
        updater.fetcher(),
        &format!("{base}log/"),
        &entries,
    )
    .map_err(|e| e.about(pointer))
}

/// What the transparency log must show for a release: the artifact's entry (path, length,
/// SHA-256, the role listing it) and the entry of the exact targets metadata file that lists
/// it, as verified and stored in `metadata_dir`.
pub(crate) fn log_entries<F: Fetcher>(
    metadata_dir: &Path,
    updater: &Updater<F>,
    target_path: &str,
    artifact: &sealwright_tuf::TargetFile,
    role: &str,
) -> Result<[sealwright_tlog::entry::Entry; 2], InstallError> {
    let refuse = |m: String| InstallError::new("log", m);
    let sha256 = artifact
        .hashes
        .get("sha256")
        .ok_or_else(|| refuse("the artifact has no sha256 hash to look up in the log".into()))?
        .clone();
    let version = updater
        .trusted()
        .targets_role(role)
        .map(|md| md.signed.version)
        .ok_or_else(|| refuse(format!("role {role} is not loaded")))?;
    let role_bytes = crate::metadata_dir::MetadataDir::new(metadata_dir)
        .load(role, updater.trusted().limits().targets)
        .ok()
        .flatten()
        .ok_or_else(|| refuse(format!("the metadata of {role} is not stored")))?;
    Ok([
        sealwright_tlog::entry::Entry::Target {
            path: target_path.to_owned(),
            length: artifact.length,
            sha256,
            role: role.to_owned(),
        },
        sealwright_tlog::entry::Entry::Metadata {
            role: role.to_owned(),
            version,
            length: role_bytes.len() as u64,
            sha256: sealwright_crypto::digest::sha256_hex(&role_bytes),
        },
    ])
}

/// TUF §5: the whole chain from the pinned root, with expiry against `now`.
fn refresh_metadata<F: Fetcher>(
    dir: &Path,
    config: &ClientConfig,
    fetcher: F,
    now: DateTime<Utc>,
) -> Result<Updater<F>, InstallError> {
    let md_config = UpdaterConfig::new(dir.join("metadata"), &config.metadata_url)
        .with_targets(dir.join("tmp"), &config.targets_url);
    let mut updater = Updater::new(md_config, fetcher, now)
        .map_err(|e| InstallError::new("metadata", format!("{e}")))?;
    updater.refresh().map_err(|e| {
        let what = match &e {
            crate::updater::UpdateError::Fetch(f) if !matches!(f, crate::fetch::FetchError::TooLarge { .. }) => {
                "could not fetch repository metadata"
            }
            _ => "repository metadata refused",
        };
        InstallError::new(
            "metadata",
            format!("{what}: {e} (nothing was changed; retry later, and if it persists tell the repository owner)"),
        )
    })?;
    Ok(updater)
}

/// The release this run installs.
struct Release {
    name: String,
    channel: String,
    pointer: ChannelPointer,
    version: semver::Version,
}

impl Release {
    /// `releases/NAME-VERSION`, relative to the client directory.
    fn relative_dir(&self) -> String {
        format!("releases/{}-{}", self.name, self.pointer.version)
    }

    /// Where it is installed: its release directory, or the replaced file.
    fn dir(&self, dir: &Path, opts: &InstallOptions<'_>) -> PathBuf {
        opts.self_replace
            .clone()
            .unwrap_or_else(|| dir.join(self.relative_dir()))
    }

    /// `state` once this release is installed and healthy.
    fn recorded_in(&self, state: &State, now: DateTime<Utc>) -> State {
        let mut next = state.clone();
        version_floor::record_install(
            &mut next,
            &self.name,
            &self.channel,
            &self.pointer,
            &self.version,
            state.highest().as_ref(),
            now,
        );
        next
    }

    fn report(&self, status: &'static str, before: &State, installed_at: PathBuf) -> UpdateReport {
        UpdateReport {
            status,
            name: self.name.clone(),
            channel: self.channel.clone(),
            version: self.pointer.version.clone(),
            previous_version: if status == "up-to-date" {
                before.previous_version.clone()
            } else {
                before.current_version.clone()
            },
            recovery: self.pointer.recovery,
            installed_at,
        }
    }
}

/// Self-replace mode: the file is replaced, then health-checked; on failure the previous
/// file comes back and `state.json` is untouched.
fn replace_file(
    dir: &Path,
    target: &Path,
    verified: tempfile::NamedTempFile,
    release: &Release,
    state: &State,
    opts: &InstallOptions<'_>,
) -> Result<UpdateReport, InstallError> {
    self_replace::self_replace(target, verified.path(), &release.pointer)?;
    if let Err(e) = health::run_health_check(opts, target.parent().unwrap_or(Path::new("."))) {
        let _ = fs::rename(self_replace::previous_file(target), target);
        return Err(e.about(&release.pointer));
    }
    state::save_state(dir, &release.recorded_in(state, opts.now))?;
    Ok(release.report("installed", state, target.to_path_buf()))
}

/// Release mode: build the release directory, switch `current` to it, health-check it
/// (rolling back on failure), then record it and prune old releases.
fn install_release(
    dir: &Path,
    verified: tempfile::NamedTempFile,
    release: &Release,
    state: &State,
    opts: &InstallOptions<'_>,
) -> Result<UpdateReport, InstallError> {
    let release_dir = dir.join(release.relative_dir());
    let previous_target = stage_release(dir, verified, release, &release_dir)?;
    switch_current(dir, &release.relative_dir())?;
    if let Err(e) = health::run_health_check(opts, &release_dir) {
        roll_back(dir, &release.name, state, previous_target)?;
        return Err(e.about(&release.pointer));
    }
    let next = release.recorded_in(state, opts.now);
    state::save_state(dir, &next)?;
    switch::prune_releases(&dir.join("releases"), &release.name, &next);
    Ok(release.report("installed", state, release_dir))
}

/// Builds the release in a staging directory and renames it into place (unless `current`
/// already points at it); returns what `current` pointed to before.
fn stage_release(
    dir: &Path,
    verified: tempfile::NamedTempFile,
    release: &Release,
    release_dir: &Path,
) -> Result<Option<PathBuf>, InstallError> {
    let releases = dir.join("releases");
    fs::create_dir_all(&releases).map_err(io_fail(
        "install",
        format!("creating {}", releases.display()),
    ))?;
    let current_target = fs::read_link(dir.join("current")).ok();
    if current_target.as_deref() == Some(Path::new(&release.relative_dir())) {
        return Ok(current_target);
    }
    let basename = pointer::artifact_basename(&release.pointer)?;
    let staging = tempfile::Builder::new()
        .prefix(".staging-")
        .tempdir_in(&releases)
        .map_err(io_fail("install", "creating a staging directory"))?;
    unpack::place_artifact(verified, staging.path(), &basename)
        .map_err(|e| e.about(&release.pointer))?;
    // tempdir is 0700; a release is readable like any installed software.
    fs::set_permissions(staging.path(), fs::Permissions::from_mode(0o755))
        .map_err(io_fail("install", "setting release permissions"))?;
    switch::sync_tree(staging.path()).map_err(io_fail("install", "syncing the release"))?;
    let staged = staging.keep();
    switch::replace_dir(&staged, release_dir)?;
    Ok(current_target)
}

/// After a failed health check: back to the last good release, else to what was current,
/// else no `current` at all.
fn roll_back(
    dir: &Path,
    name: &str,
    state: &State,
    previous_target: Option<PathBuf>,
) -> Result<(), InstallError> {
    let last_good = state
        .last_good_version
        .as_ref()
        .map(|v| format!("releases/{name}-{v}"));
    match (last_good, previous_target) {
        (Some(good), _) if dir.join(&good).is_dir() => switch_current(dir, &good),
        (_, Some(previous)) => switch_current(dir, &previous.to_string_lossy()),
        (_, None) => {
            let _ = fs::remove_file(dir.join("current"));
            let _ = sync_dir(dir);
            Ok(())
        }
    }
}
