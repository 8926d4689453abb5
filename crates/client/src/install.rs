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
//! Guarantees, each enforced next to its check below:
//! - nothing is unpacked, placed or switched to before the length and every hash listed in
//!   signed metadata matched (C2). The channel pointer is only a hint naming a path and a
//!   version: the artifact must itself be a target, found by the delegation search for
//!   *its own* path, and its own signed entry is what the download is checked against (a
//!   role trusted only for `app/channels/*` can name an artifact but never grant one);
//! - a version at or below the highest ever installed is refused unless the artifact's own
//!   entry is signed as a recovery release (C3); the highest version survives in `state.json`;
//! - a failure never changes `current` or `state.json`; every failure is appended to
//!   `failures.log`; a retry starts over with every check (C4).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use sealwright_crypto::digest::Hasher;
use sealwright_tuf::{TargetFile, TrustedMetadataSet};
use serde::{Deserialize, Serialize};

use crate::fetch::Fetcher;
use crate::store::{read_capped, sync_dir, write_atomic};
use crate::tls::TlsOptions;
use crate::updater::{check_target, Updater, UpdaterConfig};

/// The client configuration file in `DIR`.
pub const CONFIG_FILE: &str = "client.toml";
/// The state file in `DIR`.
pub const STATE_FILE: &str = "state.json";
/// The failure log in `DIR`.
pub const FAILURE_LOG: &str = "failures.log";
/// Channel used when none is configured.
pub const DEFAULT_CHANNEL: &str = "stable";

const MAX_CONFIG: usize = 64 * 1024;
const MAX_STATE: usize = 64 * 1024;
/// Unpacked size cap of an archive: a decompression bomb stops here.
pub const MAX_UNPACKED_BYTES: u64 = 16 * 1024 * 1024 * 1024;
/// Entry-count cap of an archive.
pub const MAX_ARCHIVE_ENTRIES: u64 = 1_000_000;

/// `DIR/client.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientConfig {
    /// Base URL of the metadata (ends with `/`).
    pub metadata_url: String,
    /// Base URL of the artifacts (ends with `/`).
    pub targets_url: String,
    /// Product to install.
    pub name: Option<String>,
    /// Channel to follow.
    #[serde(default = "default_channel")]
    pub channel: String,
    /// PEM file of the CA certificates to trust instead of the Mozilla roots (relative
    /// paths are relative to `DIR`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// SPKI pins (`sha256/BASE64`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spki_pins: Vec<String>,
}

fn default_channel() -> String {
    DEFAULT_CHANNEL.to_owned()
}

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

/// What the signed channel pointer says (`custom.sealwright` of `NAME/channels/CHANNEL.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelPointer {
    /// Product.
    pub name: String,
    /// Version the channel points to.
    pub version: String,
    /// Channel.
    pub channel: String,
    /// Target path of the artifact.
    pub target: String,
    /// Artifact length.
    pub length: u64,
    /// Artifact hashes.
    pub hashes: std::collections::BTreeMap<String, String>,
    /// Signed as a recovery release (may go below the highest installed version).
    #[serde(default)]
    pub recovery: bool,
}

/// The target path of the pointer of `name` on `channel`.
pub fn pointer_path(name: &str, channel: &str) -> String {
    format!("{name}/channels/{channel}.json")
}

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
    fn new(stage: &'static str, message: impl Into<String>) -> Self {
        InstallError {
            stage,
            message: message.into(),
            version: None,
            target: None,
            quarantined: None,
        }
    }

    fn about(mut self, p: &ChannelPointer) -> Self {
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

/// `client init`: validates `root` as a self-signed TUF root, writes `DIR/client.toml`
/// and pins `DIR/metadata/root.json`. `url` is the repository base (as served by
/// `sealwright serve`): metadata under `url/metadata/`, artifacts under `url/targets/`.
///
/// Plain `http://` is accepted only for the loopback interface (local tests and
/// development); anything else must be `https://`.
pub fn init_client(
    dir: &Path,
    root: &[u8],
    url: &str,
    ca_pem: Option<&[u8]>,
    spki_pins: &[String],
    name: Option<&str>,
    channel: Option<&str>,
) -> Result<ClientConfig, InstallError> {
    check_url(url)?;
    for (what, v) in [("name", name), ("channel", channel)] {
        if let Some(v) = v {
            check_component(what, v)?;
        }
    }
    // A root that does not verify under its own keys is refused before anything is written.
    TrustedMetadataSet::new(root, Utc::now()).map_err(|e| {
        InstallError::new(
            "config",
            format!("the given root.json is not a valid self-signed TUF root ({e}): copy it again from the repository owner"),
        )
    })?;
    for pin in spki_pins {
        crate::tls::parse_pin(pin).map_err(|e| InstallError::new("config", e.to_string()))?;
    }
    let base = if url.ends_with('/') {
        url.to_owned()
    } else {
        format!("{url}/")
    };
    fs::create_dir_all(dir.join("metadata"))
        .map_err(io_fail("config", format!("creating {}", dir.display())))?;
    let ca_file = match ca_pem {
        Some(pem) => {
            let opts = TlsOptions {
                ca_pem: Some(pem.to_vec()),
                ca_source: Some("the CA file".into()),
                ..TlsOptions::default()
            };
            crate::tls::client_config(&opts)
                .map_err(|e| InstallError::new("config", e.to_string()))?;
            write_atomic(&dir.join("ca.pem"), pem).map_err(io_fail("config", "writing ca.pem"))?;
            Some(PathBuf::from("ca.pem"))
        }
        None => None,
    };
    let config = ClientConfig {
        metadata_url: format!("{base}metadata/"),
        targets_url: format!("{base}targets/"),
        name: name.map(str::to_owned),
        channel: channel.unwrap_or(DEFAULT_CHANNEL).to_owned(),
        ca_file,
        spki_pins: spki_pins.to_vec(),
    };
    let text = toml::to_string(&config).map_err(|e| InstallError::new("config", e.to_string()))?;
    write_atomic(&dir.join(CONFIG_FILE), text.as_bytes())
        .map_err(io_fail("config", "writing client.toml"))?;
    crate::updater::init(&dir.join("metadata"), root)
        .map_err(|e| InstallError::new("config", e.to_string()))?;
    Ok(config)
}

/// A product or channel name becomes part of target paths and directory names: letters,
/// digits, `.`, `_`, `-`, not starting with a dot.
fn check_component(what: &str, v: &str) -> Result<(), InstallError> {
    let ok = !v.is_empty()
        && v.len() <= 128
        && !v.starts_with('.')
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(InstallError::new(
            "config",
            format!("{what} {v:?} may only hold letters, digits, '.', '_' and '-' (and not start with '.')"),
        ))
    }
}

fn check_url(url: &str) -> Result<(), InstallError> {
    crate::fetch::check_transport(url)
        .map_err(|e| InstallError::new("config", format!("the repository URL {e}")))
}

/// Reads `DIR/client.toml`.
pub fn load_config(dir: &Path) -> Result<ClientConfig, InstallError> {
    let path = dir.join(CONFIG_FILE);
    let bytes = read_capped(&path, MAX_CONFIG)
        .map_err(io_fail("config", format!("reading {}", path.display())))?
        .ok_or_else(|| {
            InstallError::new(
                "config",
                format!("{} is not a client directory (no client.toml): run `sealwright client init --dir {}` first", dir.display(), dir.display()),
            )
        })?;
    let text = String::from_utf8(bytes)
        .map_err(|_| InstallError::new("config", format!("{} is not UTF-8", path.display())))?;
    let config: ClientConfig = toml::from_str(&text)
        .map_err(|e| InstallError::new("config", format!("{}: {e}", path.display())))?;
    check_url(&config.metadata_url)?;
    check_url(&config.targets_url)?;
    if let Some(n) = &config.name {
        check_component("name", n)?;
    }
    check_component("channel", &config.channel)?;
    Ok(config)
}

/// The TLS options `config` asks for.
pub fn tls_options(dir: &Path, config: &ClientConfig) -> Result<TlsOptions, InstallError> {
    let mut opts = TlsOptions {
        spki_pins: config.spki_pins.clone(),
        ..TlsOptions::default()
    };
    if let Some(ca) = &config.ca_file {
        opts = opts
            .with_ca_file(&dir.join(ca))
            .map_err(|e| InstallError::new("config", e.to_string()))?;
    }
    Ok(opts)
}

/// Reads `DIR/state.json` (default when absent).
pub fn load_state(dir: &Path) -> Result<State, InstallError> {
    let path = dir.join(STATE_FILE);
    match read_capped(&path, MAX_STATE)
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

fn save_state(dir: &Path, state: &State) -> Result<(), InstallError> {
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

/// One update over HTTPS as `DIR/client.toml` says.
pub fn update(dir: &Path, opts: &InstallOptions<'_>) -> Result<UpdateReport, InstallError> {
    let result = (|| {
        let config = load_config(dir)?;
        let tls = tls_options(dir, &config)?;
        let fetcher = crate::fetch::HttpFetcher::with_tls(&config.metadata_url, &tls)
            .map_err(|e| InstallError::new("config", e.to_string()))?;
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

fn run_update<F: Fetcher>(
    dir: &Path,
    config: &ClientConfig,
    fetcher: F,
    opts: &InstallOptions<'_>,
) -> Result<UpdateReport, InstallError> {
    let name = config.name.clone().ok_or_else(|| {
        InstallError::new(
            "config",
            "no product name configured: run `sealwright client init ... --name NAME`",
        )
    })?;
    let channel = config.channel.clone();
    // One update at a time per client directory: a second one would empty DIR/tmp under
    // the first and race it on `current`.
    let _lock = lock_dir(dir)?;
    let state = load_state(dir)?;
    clean_leftovers(dir);

    // TUF §5: the whole chain from the pinned root, with expiry against `now`.
    let md_config = UpdaterConfig::new(dir.join("metadata"), &config.metadata_url)
        .with_targets(dir.join("tmp"), &config.targets_url);
    let mut updater = Updater::new(md_config, fetcher, opts.now)
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
    let ResolvedRelease {
        pointer, artifact, ..
    } = resolve_release(&mut updater, &name, &channel)?;
    let ptr_path = pointer_path(&name, &channel);
    let version = semver::Version::parse(&pointer.version).map_err(|_| {
        InstallError::new(
            "pointer",
            format!("{ptr_path}: version {:?} is not semantic", pointer.version),
        )
        .about(&pointer)
    })?;

    let parse = |v: &Option<String>| v.as_deref().and_then(|v| semver::Version::parse(v).ok());
    let current = parse(&state.current_version);
    let highest = parse(&state.highest_version);
    let release_dir = dir
        .join("releases")
        .join(format!("{name}-{}", pointer.version));
    let installed_at = opts
        .self_replace
        .clone()
        .unwrap_or_else(|| release_dir.clone());
    if current.as_ref() == Some(&version) {
        return Ok(UpdateReport {
            status: "up-to-date",
            name,
            channel,
            version: pointer.version.clone(),
            previous_version: state.previous_version.clone(),
            recovery: pointer.recovery,
            installed_at,
        });
    }
    check_version_floor(&name, &version, highest.as_ref(), &pointer)?;

    // C2: download into DIR/tmp, verify length and every hash, quarantine on mismatch.
    let tf = artifact;
    let url = updater
        .target_url(&tf, &pointer.target)
        .map_err(|e| InstallError::new("pointer", e.to_string()).about(&pointer))?;
    let basename = artifact_basename(&pointer)?;
    let tmp_dir = dir.join("tmp");
    fs::create_dir_all(&tmp_dir).map_err(io_fail(
        "download",
        format!("creating {}", tmp_dir.display()),
    ))?;
    clean_tmp(&tmp_dir);
    let verified = download_verified(
        dir,
        &tmp_dir,
        updater.fetcher(),
        &url,
        &tf,
        &pointer,
        &basename,
        opts,
    )?;

    let previous = state.current_version.clone();
    if let Some(target) = &opts.self_replace {
        self_replace(target, verified.path(), &pointer)?;
        let mut next = state.clone();
        record_install(
            &mut next,
            &name,
            &channel,
            &pointer,
            &version,
            highest.as_ref(),
            opts.now,
        );
        if let Err(e) = run_health_check(opts, target.parent().unwrap_or(Path::new("."))) {
            // Roll the file back; state.json is untouched.
            let _ = fs::rename(previous_file(target), target);
            return Err(e.about(&pointer));
        }
        save_state(dir, &next)?;
        return Ok(UpdateReport {
            status: "installed",
            name,
            channel,
            version: pointer.version.clone(),
            previous_version: previous,
            recovery: pointer.recovery,
            installed_at,
        });
    }

    // Verified: build the release in a staging directory, then rename it into place.
    let releases = dir.join("releases");
    fs::create_dir_all(&releases).map_err(io_fail(
        "install",
        format!("creating {}", releases.display()),
    ))?;
    let current_link = dir.join("current");
    let current_target = fs::read_link(&current_link).ok();
    let rel_name = format!("releases/{name}-{}", pointer.version);
    if current_target.as_deref() != Some(Path::new(&rel_name)) {
        let staging = tempfile::Builder::new()
            .prefix(".staging-")
            .tempdir_in(&releases)
            .map_err(io_fail("install", "creating a staging directory"))?;
        place_artifact(verified, staging.path(), &basename).map_err(|e| e.about(&pointer))?;
        // tempdir is 0700; a release is readable like any installed software.
        fs::set_permissions(staging.path(), fs::Permissions::from_mode(0o755))
            .map_err(io_fail("install", "setting release permissions"))?;
        sync_tree(staging.path()).map_err(io_fail("install", "syncing the release"))?;
        let staged = staging.keep();
        replace_dir(&staged, &release_dir)?;
    }

    // C4: the atomic switch, then the health check with rollback.
    switch_current(dir, &rel_name)?;
    if let Err(e) = run_health_check(opts, &release_dir) {
        let back = state
            .last_good_version
            .as_ref()
            .map(|v| format!("releases/{name}-{v}"));
        match back {
            Some(b) if dir.join(&b).is_dir() => switch_current(dir, &b)?,
            _ => match current_target {
                Some(t) => switch_current(dir, &t.to_string_lossy())?,
                None => {
                    let _ = fs::remove_file(&current_link);
                    let _ = sync_dir(dir);
                }
            },
        }
        return Err(e.about(&pointer));
    }
    let mut next = state.clone();
    record_install(
        &mut next,
        &name,
        &channel,
        &pointer,
        &version,
        highest.as_ref(),
        opts.now,
    );
    save_state(dir, &next)?;
    prune_releases(&releases, &name, &next);
    Ok(UpdateReport {
        status: "installed",
        name,
        channel,
        version: pointer.version.clone(),
        previous_version: previous,
        recovery: pointer.recovery,
        installed_at,
    })
}

/// Removes what a crashed run left in `releases/` (staging and moved-aside directories are
/// never pointed to by `current`; their names start with a dot).
fn clean_leftovers(dir: &Path) {
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
fn prune_releases(releases: &Path, name: &str, state: &State) {
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

/// Holds an exclusive `flock` on `DIR/.lock` until dropped.
fn lock_dir(dir: &Path) -> Result<File, InstallError> {
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

fn record_install(
    state: &mut State,
    name: &str,
    channel: &str,
    pointer: &ChannelPointer,
    version: &semver::Version,
    highest: Option<&semver::Version>,
    now: DateTime<Utc>,
) {
    state.name = Some(name.to_owned());
    state.channel = Some(channel.to_owned());
    state.previous_version = state.current_version.take();
    state.current_version = Some(pointer.version.clone());
    // A recovery release lowers `current` but never the floor.
    if highest.is_none_or(|h| version > h) {
        state.highest_version = Some(pointer.version.clone());
    }
    state.last_good_version = Some(pointer.version.clone());
    state.updated_at = Some(now.to_rfc3339_opts(SecondsFormat::Secs, true));
}

/// C3, the rollback floor: a version at or below the highest ever installed here (not the
/// current one: a rollback after a failed health check must not lower the floor) is refused
/// unless the artifact's own entry signs it as a recovery release.
fn check_version_floor(
    name: &str,
    version: &semver::Version,
    highest: Option<&semver::Version>,
    pointer: &ChannelPointer,
) -> Result<(), InstallError> {
    match highest {
        Some(h) if version <= h && !pointer.recovery => Err(InstallError::new(
            "version",
            format!("refusing {name} {version}: it is not newer than {h}, the highest version installed here, and it is not signed as a recovery release"),
        )
        .about(pointer)),
        _ => Ok(()),
    }
}

/// A release found through its channel pointer and confirmed by the artifact's own entry.
pub(crate) struct ResolvedRelease {
    /// What the pointer says, `recovery` only where the artifact's own entry says so too.
    pub pointer: ChannelPointer,
    /// The pointer's own signed entry (for copying the pointer file, e.g. into a bundle).
    pub pointer_entry: TargetFile,
    /// The artifact's own signed entry: the only length and hashes a download is checked
    /// against.
    pub artifact: TargetFile,
}

/// Finds the release of `name` on `channel`: the pointer (a hint), then the artifact it
/// names through the client's own delegation search for the artifact's path.
///
/// Why: the pointer is signed by whichever role is trusted for `NAME/channels/*`, which may
/// be a narrower role than the one trusted for the artifact's path. Taking the pointer's
/// length and hashes as a grant let a role delegated only the channels directory install
/// any bytes it liked (arbitrary-installation attack through a narrow delegation).
pub(crate) fn resolve_release<F: Fetcher>(
    updater: &mut Updater<F>,
    name: &str,
    channel: &str,
) -> Result<ResolvedRelease, InstallError> {
    let ptr_path = pointer_path(name, channel);
    let found = updater
        .get_targetinfo(&ptr_path)
        .map_err(|e| InstallError::new("metadata", format!("looking up {ptr_path}: {e}")))?
        .ok_or_else(|| {
            InstallError::new(
                "pointer",
                format!("no release of {name} on channel {channel} ({ptr_path} is not in the signed metadata)"),
            )
        })?;
    let mut pointer = parse_pointer(&found.target, name, channel, &ptr_path)?;
    let refuse = |p: &ChannelPointer, why: String| {
        InstallError::new(
            "pointer",
            format!(
                "{ptr_path} names {}, but {why}; nothing was installed",
                p.target
            ),
        )
        .about(p)
    };
    let artifact = updater
        .get_targetinfo(&pointer.target)
        .map_err(|e| {
            InstallError::new("metadata", format!("looking up {}: {e}", pointer.target))
                .about(&pointer)
        })?
        .ok_or_else(|| refuse(&pointer, "no role trusted for that path signed it".into()))?
        .target;
    if artifact.length != pointer.length || artifact.hashes != pointer.hashes {
        return Err(refuse(
            &pointer,
            "the pointer's length or hashes disagree with the artifact's own signed entry".into(),
        ));
    }
    let own = artifact.custom.as_ref().and_then(|c| c.get("sealwright"));
    if let Some(own) = own {
        let field = |k: &str| own.get(k).and_then(serde_json::Value::as_str);
        if field("name") != Some(name) || field("version") != Some(pointer.version.as_str()) {
            return Err(refuse(
                &pointer,
                format!(
                    "the artifact is signed as {} {}, not {name} {}",
                    field("name").unwrap_or("?"),
                    field("version").unwrap_or("?"),
                    pointer.version
                ),
            ));
        }
    }
    // A downgrade is a claim about the artifact, so only the artifact's signer can make it.
    let own_recovery = own
        .and_then(|o| o.get("recovery"))
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    pointer.recovery &= own_recovery;
    Ok(ResolvedRelease {
        pointer,
        pointer_entry: found.target,
        artifact,
    })
}

/// The pointer's signed `custom.sealwright`, checked against what we asked for (a hint
/// only: [`resolve_release`] confirms it against the artifact's own entry).
pub fn parse_pointer(
    target: &TargetFile,
    name: &str,
    channel: &str,
    ptr_path: &str,
) -> Result<ChannelPointer, InstallError> {
    let bad = |why: String| {
        InstallError::new(
            "pointer",
            format!("{ptr_path}: {why}; the repository owner must publish the release again"),
        )
    };
    let custom = target
        .custom
        .as_ref()
        .and_then(|c| c.get("sealwright"))
        .ok_or_else(|| bad("no custom.sealwright in its signed entry".into()))?;
    let p: ChannelPointer = serde_json::from_value(custom.clone())
        .map_err(|e| bad(format!("malformed custom.sealwright ({e})")))?;
    // The pointer must describe the product and channel it is filed under, and the artifact
    // must live in that release's directory: a pointer copied from another product or
    // channel is refused.
    if p.name != name || p.channel != channel {
        return Err(bad(format!("it names {} on {}", p.name, p.channel)));
    }
    let prefix = format!("{name}/{}/", p.version);
    if !p.target.starts_with(&prefix) || !safe_relative(&p.target) {
        return Err(bad(format!(
            "artifact path {:?} is not under {prefix}",
            p.target
        )));
    }
    Ok(p)
}

fn safe_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && !path.chars().any(char::is_control)
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

fn artifact_basename(p: &ChannelPointer) -> Result<String, InstallError> {
    p.target
        .rsplit('/')
        .next()
        .filter(|b| !b.is_empty() && *b != "." && *b != "..")
        .map(str::to_owned)
        .ok_or_else(|| {
            InstallError::new(
                "pointer",
                format!("artifact path {:?} has no file name", p.target),
            )
            .about(p)
        })
}

/// Removes leftovers of a download interrupted by a crash (never trusted, never used).
fn clean_tmp(tmp_dir: &Path) {
    if let Ok(rd) = fs::read_dir(tmp_dir) {
        for e in rd.flatten() {
            let _ = fs::remove_file(e.path());
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn download_verified<F: Fetcher>(
    dir: &Path,
    tmp_dir: &Path,
    fetcher: &F,
    url: &str,
    tf: &TargetFile,
    pointer: &ChannelPointer,
    basename: &str,
    opts: &InstallOptions<'_>,
) -> Result<tempfile::NamedTempFile, InstallError> {
    // 0600 and not executable until verified and placed.
    let mut tmp = tempfile::Builder::new()
        .prefix(".download-")
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(tmp_dir)
        .map_err(io_fail("download", "creating a temporary file"))?;
    let result = {
        let mut sink = ProgressWriter {
            inner: BufWriter::new(tmp.as_file_mut()),
            hasher: crate::updater::hasher_for(tf),
            done: 0,
            total: tf.length,
            progress: opts.progress,
        };
        // At most the signed length is accepted (endless-data attack).
        let r = fetcher.fetch_to(url, tf.length, &mut sink);
        let flushed = sink.inner.flush();
        r.map(|_| sink.hasher.finish())
            .map_err(|e| (e, flushed.is_ok()))
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
    if let Err(mismatch) = check_target(tf, &digests) {
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

/// Puts the verified download into `dest`: an archive (`.tar`, `.tar.gz`, `.tgz`) is
/// unpacked with hostile-entry checks, anything else is placed under its basename.
fn place_artifact(
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

fn sync_tree(dir: &Path) -> io::Result<()> {
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
fn replace_dir(staged: &Path, dest: &Path) -> Result<(), InstallError> {
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

/// Runs the health check with a timeout; `Ok` when there is none or it exits 0.
fn run_health_check(opts: &InstallOptions<'_>, release_dir: &Path) -> Result<(), InstallError> {
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

fn previous_file(target: &Path) -> PathBuf {
    let mut s = target.as_os_str().to_owned();
    s.push(".previous");
    PathBuf::from(s)
}

/// Self-replace: the verified file is copied beside `target`, made executable and renamed
/// over it; the old file is kept as `target.previous` (a hard link, so `target` never
/// disappears).
fn self_replace(
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

/// Hashes and counts what it writes, reporting progress.
struct ProgressWriter<'a, W> {
    inner: W,
    hasher: Hasher,
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tar_with(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        b.into_inner().unwrap()
    }

    fn header(path: &str, size: u64, kind: tar::EntryType) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        // Written raw so hostile names are not sanitised by the builder.
        let name = h.as_old_mut();
        let bytes = path.as_bytes();
        name.name[..bytes.len()].copy_from_slice(bytes);
        h.set_size(size);
        h.set_entry_type(kind);
        h.set_mode(0o755);
        h.set_cksum();
        h
    }

    #[test]
    fn hostile_archives_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let good = tar_with(|b| {
            b.append(&header("bin/app", 2, tar::EntryType::Regular), &b"hi"[..])
                .unwrap();
        });
        let d = dir.path().join("good");
        fs::create_dir(&d).unwrap();
        unpack(&good[..], &d).unwrap();
        assert_eq!(fs::read(d.join("bin/app")).unwrap(), b"hi");
        assert_eq!(
            fs::metadata(d.join("bin/app"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o755
        );

        for (i, (path, kind)) in [
            ("../evil", tar::EntryType::Regular),
            ("/etc/evil", tar::EntryType::Regular),
            ("a/../../evil", tar::EntryType::Regular),
            ("link", tar::EntryType::Symlink),
            ("hard", tar::EntryType::Link),
            ("dev", tar::EntryType::Char),
        ]
        .into_iter()
        .enumerate()
        {
            let bad = tar_with(|b| {
                b.append(&header(path, 0, kind), &b""[..]).unwrap();
            });
            let d = dir.path().join(format!("bad{i}"));
            fs::create_dir(&d).unwrap();
            assert!(unpack(&bad[..], &d).is_err(), "{path}");
        }
        assert!(!dir.path().join("evil").exists());
        let dup = tar_with(|b| {
            b.append(&header("x", 1, tar::EntryType::Regular), &b"a"[..])
                .unwrap();
            b.append(&header("x", 1, tar::EntryType::Regular), &b"b"[..])
                .unwrap();
        });
        let d = dir.path().join("dup");
        fs::create_dir(&d).unwrap();
        assert!(unpack(&dup[..], &d).is_err());
    }

    #[test]
    fn pointer_must_match_product_channel_and_directory() {
        let mut custom = serde_json::json!({"sealwright": {
            "name": "app", "version": "1.0.0", "channel": "stable",
            "target": "app/1.0.0/app.bin", "length": 3,
            "hashes": {"sha256": "00"}, "recovery": false}});
        let mk = |c: &serde_json::Value| {
            let mut t = TargetFile::new(1, Default::default());
            t.custom = Some(std::sync::Arc::new(c.clone()));
            t
        };
        let p = "app/channels/stable.json";
        assert!(parse_pointer(&mk(&custom), "app", "stable", p).is_ok());
        assert!(parse_pointer(&mk(&custom), "other", "stable", p).is_err());
        assert!(parse_pointer(&mk(&custom), "app", "beta", p).is_err());
        custom["sealwright"]["target"] = "app/1.0.0/../../x".into();
        assert!(parse_pointer(&mk(&custom), "app", "stable", p).is_err());
        custom["sealwright"]["target"] = "app/2.0.0/app.bin".into();
        assert!(parse_pointer(&mk(&custom), "app", "stable", p).is_err());
    }
}

/// Parsers of untrusted bytes never panic and never write outside their directory.
#[cfg(test)]
mod props {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use proptest::prelude::*;

    fn files_under(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p.clone());
                }
                out.push(p);
            }
        }
        out
    }

    /// A tar whose entries have arbitrary (raw, unsanitised) names, kinds and contents.
    fn hostile_tar(entries: &[(Vec<u8>, u8, Vec<u8>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data) in entries {
            let mut h = tar::Header::new_gnu();
            let n = name.len().min(99);
            h.as_old_mut().name[..n].copy_from_slice(&name[..n]);
            h.set_size(data.len() as u64);
            h.set_entry_type(tar::EntryType::new(*kind));
            h.set_mode(0o755);
            h.set_cksum();
            b.append(&h, &data[..]).unwrap();
        }
        b.into_inner().unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn unpack_of_arbitrary_bytes_stays_inside_its_directory(
            bytes in proptest::collection::vec(any::<u8>(), 0..4096),
        ) {
            let root = tempfile::tempdir().unwrap();
            let dest = root.path().join("dest");
            fs::create_dir(&dest).unwrap();
            let _ = unpack(&bytes[..], &dest);
            let outside: Vec<_> = files_under(root.path())
                .into_iter()
                .filter(|p| !p.starts_with(&dest))
                .collect();
            prop_assert!(outside.is_empty(), "{:?}", outside);
        }

        #[test]
        fn unpack_of_hostile_entries_stays_inside_its_directory(
            entries in proptest::collection::vec(
                (
                    proptest::collection::vec(
                        prop_oneof![Just(b'/'), Just(b'.'), Just(b'a'), Just(b'b'), any::<u8>()],
                        0..24,
                    ),
                    prop_oneof![Just(b'0'), Just(b'1'), Just(b'2'), Just(b'5'), any::<u8>()],
                    proptest::collection::vec(any::<u8>(), 0..16),
                ),
                0..8,
            ),
        ) {
            let root = tempfile::tempdir().unwrap();
            let dest = root.path().join("dest");
            fs::create_dir(&dest).unwrap();
            let _ = unpack(&hostile_tar(&entries)[..], &dest);
            for p in files_under(root.path()) {
                prop_assert!(p.starts_with(&dest), "{} escaped", p.display());
                let meta = fs::symlink_metadata(&p).unwrap();
                prop_assert!(meta.is_file() || meta.is_dir(), "{} is a link or special", p.display());
            }
        }

        #[test]
        fn any_signed_custom_field_gives_a_pointer_or_an_error(
            custom in proptest::arbitrary::any::<String>().prop_map(serde_json::Value::String),
            version in "[0-9a-z./-]{0,12}",
            target in "[a-z./]{0,24}",
            length in any::<u64>(),
        ) {
            for value in [
                custom,
                serde_json::json!({"sealwright": {
                    "name": "app", "channel": "stable", "version": version,
                    "target": target, "length": length, "hashes": {}, "recovery": false,
                }}),
            ] {
                let tf = TargetFile {
                    custom: Some(std::sync::Arc::new(value)),
                    ..TargetFile::new(1, Default::default())
                };
                if let Ok(p) = parse_pointer(&tf, "app", "stable", "app/channels/stable.json") {
                    let release_dir = format!("app/{}/", p.version);
                    prop_assert!(p.target.starts_with(&release_dir));
                    prop_assert!(!p.target.split('/').any(|c| c == ".."));
                }
            }
        }

        #[test]
        fn corrupt_state_files_are_errors_not_panics(
            bytes in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            let dir = tempfile::tempdir().unwrap();
            fs::write(dir.path().join(STATE_FILE), &bytes).unwrap();
            let _ = load_state(dir.path());
            fs::write(dir.path().join(CONFIG_FILE), &bytes).unwrap();
            let _ = load_config(dir.path());
        }
    }
}
