//! The TUF client workflow (TUF 1.0.34 §5) over the sans-IO [`TrustedMetadataSet`]: this
//! module does the I/O — local metadata store, HTTP, target files — and the engine decides.
//!
//! Read top to bottom, one function per step of the specification, named after it (the
//! layout follows python-tuf's `ngclient.Updater`):
//!
//! - [`Updater::new`]: §5.2 load the trusted root from the metadata directory (no network);
//! - [`Updater::refresh`]: §5.3 root chain → §5.4 timestamp → §5.5 snapshot → §5.6 targets;
//! - [`Updater::get_targetinfo`]: §5.7 the delegation search, loading delegated roles
//!   only when the search reaches them;
//! - [`Updater::find_cached_target`] / [`Updater::download_target`]: the artifact itself,
//!   verified (length and every known hash) before it is renamed into the target directory.
//!
//! Local metadata is loaded without expiry checks and reused when it is the version the
//! trusted parent names; only missing or outdated roles are fetched, so an unchanged
//! repository costs two requests (`N+1.root.json`, `timestamp.json`).

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use sealwright_tuf::{
    EngineError, FoundTarget, LengthOrHashMismatch, Limits, MetaFile, TargetFile,
    TrustedMetadataSet,
};

use crate::fetch::{FetchError, Fetcher};
use crate::metadata_dir::{quote, quote_except, MetadataDir};
use sealwright_fs::sync_dir;

/// Where the updater keeps its state and where it finds the repository.
#[derive(Debug, Clone)]
pub struct UpdaterConfig {
    /// Local metadata directory (`root.json` must be there: see [`crate::init`]).
    pub metadata_dir: PathBuf,
    /// Base URL of the repository's metadata; file names are appended verbatim, so it
    /// should end with `/`.
    pub metadata_base_url: String,
    /// Where verified artifacts are stored.
    pub target_dir: Option<PathBuf>,
    /// Base URL of the artifacts (ends with `/`).
    pub target_base_url: Option<String>,
    /// Size caps and work bounds.
    pub limits: Limits,
}

impl UpdaterConfig {
    /// Metadata only (refresh and target search, no downloads).
    pub fn new(metadata_dir: impl Into<PathBuf>, metadata_base_url: impl Into<String>) -> Self {
        UpdaterConfig {
            metadata_dir: metadata_dir.into(),
            metadata_base_url: metadata_base_url.into(),
            target_dir: None,
            target_base_url: None,
            limits: Limits::default(),
        }
    }

    /// Adds where artifacts come from and go to.
    pub fn with_targets(
        mut self,
        target_dir: impl Into<PathBuf>,
        base_url: impl Into<String>,
    ) -> Self {
        self.target_dir = Some(target_dir.into());
        self.target_base_url = Some(base_url.into());
        self
    }
}

/// Why an update or a download failed.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// The trusted root is missing from the metadata directory.
    #[error("no trusted root at {0}: run `init` with the root you trust first")]
    NoTrustedRoot(PathBuf),
    /// The trust engine refused metadata.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A download failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// Reading or writing local state failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being read or written.
        what: String,
        /// Why.
        source: io::Error,
    },
    /// A delegated role was reached by the search but snapshot does not list it.
    #[error("role {0} is delegated but not listed in snapshot")]
    NotInSnapshot(String),
    /// No trusted role lists the target.
    #[error("target {0} not found in the trusted metadata")]
    TargetNotFound(String),
    /// The artifact does not match its signed length or hashes.
    #[error("target {path}: {source}")]
    TargetMismatch {
        /// Target path.
        path: String,
        /// What differed.
        source: LengthOrHashMismatch,
    },
    /// The target path has no safe local file name.
    #[error("target path {0:?} cannot be stored safely")]
    UnsafeTargetPath(String),
    /// Downloads need a target directory and base URL.
    #[error("no target directory or target base URL configured")]
    NoTargetConfig,
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> UpdateError {
    let what = what.into();
    move |source| UpdateError::Io { what, source }
}

/// §5.1 is the caller's: copy the root it trusts into the metadata directory. No network.
pub fn init(metadata_dir: &Path, trusted_root: &[u8]) -> Result<(), UpdateError> {
    fs::create_dir_all(metadata_dir)
        .map_err(io_err(format!("creating {}", metadata_dir.display())))?;
    MetadataDir::new(metadata_dir)
        .persist("root", trusted_root)
        .map_err(io_err("storing root.json"))
}

/// The I/O half of the updater: metadata store, fetcher, URLs. Kept apart from the trusted
/// set so the delegation search can borrow both at once.
#[derive(Debug)]
struct Remote<F> {
    fetcher: F,
    store: MetadataDir,
    base_url: String,
    limits: Limits,
}

impl<F: Fetcher> Remote<F> {
    /// A stored role, or `None` when it is absent or unreadable (then it is fetched).
    fn load_local(&self, role: &str, max: usize) -> Option<Vec<u8>> {
        self.store.load(role, max).ok().flatten()
    }

    fn persist(&self, role: &str, bytes: &[u8]) -> Result<(), UpdateError> {
        self.store.persist(role, bytes).map_err(io_err(format!(
            "storing {}",
            self.store.path(role).display()
        )))
    }

    /// `V.<quoted role>.json` with consistent snapshots, else `<quoted role>.json`.
    fn metadata_url(&self, role: &str, version: Option<u64>) -> String {
        match version {
            Some(v) => format!("{}{v}.{}.json", self.base_url, quote(role)),
            None => format!("{}{}.json", self.base_url, quote(role)),
        }
    }

    fn download_metadata(&self, url: &str, max: u64) -> Result<Vec<u8>, UpdateError> {
        Ok(self.fetcher.fetch(url, max)?)
    }
}

fn pinned_cap(meta: &MetaFile, default: usize) -> u64 {
    meta.length
        .unwrap_or_else(|| u64::try_from(default).unwrap_or(u64::MAX))
}

/// §5.6 load targets role `role` as delegated by `delegator` (`root` for top-level targets):
/// the stored copy if it verifies and is the version snapshot names, else the version
/// snapshot names from the repository. A role snapshot does not list is never requested.
fn load_targets<F: Fetcher>(
    remote: &Remote<F>,
    trusted: &mut TrustedMetadataSet,
    role: &str,
    delegator: &str,
) -> Result<(), UpdateError> {
    if trusted.trusted_delegator(role) == Some(delegator) {
        return Ok(());
    }
    if let Some(bytes) = remote.load_local(role, remote.limits.targets) {
        if trusted
            .update_delegated_targets(&bytes, role, delegator)
            .is_ok()
        {
            return Ok(());
        }
    }
    let meta = trusted
        .check_final_snapshot()?
        .signed
        .meta
        .get(&format!("{role}.json"))
        .cloned()
        .ok_or_else(|| UpdateError::NotInSnapshot(role.to_owned()))?;
    let version = trusted
        .root()
        .signed
        .consistent_snapshot
        .then_some(meta.version);
    let url = remote.metadata_url(role, version);
    let bytes = remote.download_metadata(&url, pinned_cap(&meta, remote.limits.targets))?;
    trusted.update_delegated_targets(&bytes, role, delegator)?;
    remote.persist(role, &bytes)
}

/// A TUF client session: one trusted state, one clock reading.
#[derive(Debug)]
pub struct Updater<F> {
    remote: Remote<F>,
    trusted: TrustedMetadataSet,
    target_dir: Option<PathBuf>,
    target_base_url: Option<String>,
    refreshed: bool,
}

impl<F: Fetcher> Updater<F> {
    /// §5.2 load the trusted root from `config.metadata_dir` (signed by a threshold of its
    /// own keys; expiry is checked after the root update). Makes no request: a missing or
    /// invalid root fails here.
    pub fn new(config: UpdaterConfig, fetcher: F, now: DateTime<Utc>) -> Result<Self, UpdateError> {
        let store = MetadataDir::new(&config.metadata_dir);
        let root = store
            .load("root", config.limits.root)
            .map_err(io_err(format!("reading {}", store.path("root").display())))?
            .ok_or_else(|| UpdateError::NoTrustedRoot(store.path("root")))?;
        let trusted = TrustedMetadataSet::with_limits(&root, now, config.limits)?;
        Ok(Updater {
            remote: Remote {
                fetcher,
                store,
                base_url: config.metadata_base_url,
                limits: config.limits,
            },
            trusted,
            target_dir: config.target_dir,
            target_base_url: config.target_base_url,
            refreshed: false,
        })
    }

    /// The transport.
    pub fn fetcher(&self) -> &F {
        &self.remote.fetcher
    }

    /// The trusted metadata so far.
    pub fn trusted(&self) -> &TrustedMetadataSet {
        &self.trusted
    }

    /// §5.3–§5.6: update root, timestamp, snapshot and top-level targets, persisting each
    /// role as soon as it is verified (what was persisted before a failure stays).
    pub fn refresh(&mut self) -> Result<(), UpdateError> {
        self.load_root()?;
        self.load_timestamp()?;
        self.load_snapshot()?;
        self.load_targets("targets", "root")?;
        self.refreshed = true;
        Ok(())
    }

    /// §5.3 update the root role: `N+1.root.json` until the server has none (404/403),
    /// each signed by the old and the new root keys; §5.3.10 the final root must not be
    /// expired; §5.3.11 if timestamp/snapshot keys rotated, forget the stored timestamp and
    /// snapshot (fast-forward attack recovery).
    fn load_root(&mut self) -> Result<(), UpdateError> {
        let lower = self.trusted.root().signed.version;
        let upper = lower.saturating_add(u64::from(self.remote.limits.max_root_rotations));
        loop {
            let version = self.trusted.root().signed.version;
            if version >= upper {
                break;
            }
            let next = version.saturating_add(1);
            let url = format!("{}{next}.root.json", self.remote.base_url);
            let bytes = match self.remote.fetcher.fetch(
                &url,
                pinned_cap(&MetaFile::new(next), self.remote.limits.root),
            ) {
                Ok(bytes) => bytes,
                Err(e) if e.is_not_found() => break,
                Err(e) => return Err(e.into()),
            };
            self.trusted.update_root(&bytes)?;
            self.remote.persist("root", &bytes)?;
        }
        self.trusted.check_final_root()?;
        if self.trusted.fast_forward_recovery_needed() {
            for role in ["timestamp", "snapshot"] {
                self.remote
                    .store
                    .remove(role)
                    .map_err(io_err(format!("removing stored {role}")))?;
            }
        }
        Ok(())
    }

    /// §5.4 update the timestamp role: the stored one (expiry not checked) is the rollback
    /// floor; the remote one (never versioned) replaces it unless it has the same version,
    /// in which case the new bytes are discarded and the stored file kept.
    fn load_timestamp(&mut self) -> Result<(), UpdateError> {
        if let Some(bytes) = self
            .remote
            .load_local("timestamp", self.remote.limits.timestamp)
        {
            // An invalid stored timestamp is no floor at all; the remote one decides.
            let _ = self.trusted.load_local_timestamp(&bytes);
        }
        let url = format!("{}timestamp.json", self.remote.base_url);
        let max = pinned_cap(&MetaFile::new(1), self.remote.limits.timestamp);
        let bytes = self.remote.download_metadata(&url, max)?;
        match self.trusted.update_timestamp(&bytes) {
            Ok(_) => self.remote.persist("timestamp", &bytes),
            Err(EngineError::EqualVersion { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// §5.5 update the snapshot role: the stored one if it verifies and is the version the
    /// timestamp names (then no request), else the pinned version from the repository,
    /// checked against the timestamp's length and hashes.
    fn load_snapshot(&mut self) -> Result<(), UpdateError> {
        if let Some(bytes) = self
            .remote
            .load_local("snapshot", self.remote.limits.snapshot)
        {
            if self.trusted.load_local_snapshot(&bytes).is_ok() {
                return Ok(());
            }
        }
        let meta = self
            .trusted
            .check_final_timestamp()?
            .signed
            .snapshot_meta()
            .cloned()
            .ok_or_else(|| {
                UpdateError::Engine(EngineError::Order(
                    "trusted timestamp pins no snapshot".into(),
                ))
            })?;
        let version = self
            .trusted
            .root()
            .signed
            .consistent_snapshot
            .then_some(meta.version);
        let url = self.remote.metadata_url("snapshot", version);
        let bytes = self
            .remote
            .download_metadata(&url, pinned_cap(&meta, self.remote.limits.snapshot))?;
        self.trusted.update_snapshot(&bytes)?;
        self.remote.persist("snapshot", &bytes)
    }

    /// §5.6 update a targets role (see [`load_targets`]).
    fn load_targets(&mut self, role: &str, delegator: &str) -> Result<(), UpdateError> {
        load_targets(&self.remote, &mut self.trusted, role, delegator)
    }

    /// §5.7 find `target_path`: pre-order depth-first search of the delegation graph,
    /// fetching a delegated role only when the search reaches it. Refreshes first if that
    /// has not happened yet. `None` when no reachable role lists it.
    pub fn get_targetinfo(
        &mut self,
        target_path: &str,
    ) -> Result<Option<FoundTarget>, UpdateError> {
        if !self.refreshed {
            self.refresh()?;
        }
        let remote = &self.remote;
        self.trusted
            .find_target_role_path(target_path, |set, role, delegator| {
                load_targets(remote, set, role, delegator)
            })
    }

    /// The target paths listed by the top-level targets role and the named roles it
    /// delegates to (pre-order, each role once, at most `max_roles` roles; TAP 15 hash bins
    /// are not walked). A listed path is only the claim of the role listing it: confirm it
    /// with [`Updater::get_targetinfo`], which applies the delegation search, before use.
    pub fn listed_target_paths(&mut self, max_roles: usize) -> Result<Vec<String>, UpdateError> {
        if !self.refreshed {
            self.refresh()?;
        }
        let mut paths = Vec::new();
        let mut visited = std::collections::BTreeSet::new();
        let mut stack = vec![("targets".to_owned(), "root".to_owned())];
        while let Some((role, delegator)) = stack.pop() {
            if visited.len() >= max_roles || !visited.insert(role.clone()) {
                continue;
            }
            self.load_targets(&role, &delegator)?;
            let Some(md) = self.trusted.targets_role(&role) else {
                continue;
            };
            paths.extend(md.signed.targets.keys().cloned());
            let children = md
                .signed
                .delegations
                .as_ref()
                .and_then(|d| d.roles.as_ref())
                .map(|roles| roles.iter().map(|r| r.name.clone()).collect::<Vec<_>>())
                .unwrap_or_default();
            // Reversed onto the stack, so the first delegation is visited first.
            stack.extend(children.into_iter().rev().map(|c| (c, role.clone())));
        }
        Ok(paths)
    }

    fn target_config(&self) -> Result<(&Path, &str), UpdateError> {
        match (&self.target_dir, &self.target_base_url) {
            (Some(d), Some(u)) => Ok((d.as_path(), u.as_str())),
            _ => Err(UpdateError::NoTargetConfig),
        }
    }

    /// The local file for `target_path` in `target_dir`: one flat, URL-quoted name
    /// (python-tuf's layout), so no path can escape the directory.
    pub fn local_target_path(target_dir: &Path, target_path: &str) -> Result<PathBuf, UpdateError> {
        let name = quote(target_path);
        if name.is_empty() || name == "." || name == ".." {
            return Err(UpdateError::UnsafeTargetPath(target_path.to_owned()));
        }
        Ok(target_dir.join(name))
    }

    /// The artifact URL: with consistent snapshots `dir/<hash>.<basename>` (sha256 when
    /// listed, else sha512), else the path itself.
    pub fn target_url(
        &self,
        target: &TargetFile,
        target_path: &str,
    ) -> Result<String, UpdateError> {
        let (_, base) = self.target_config()?;
        let encode = |s: &str| quote_except(s, b"/!$&'()*+,;=:@");
        if !self.trusted.root().signed.consistent_snapshot {
            return Ok(format!("{base}{}", encode(target_path)));
        }
        let hash = ["sha256", "sha512"]
            .iter()
            .find_map(|alg| target.hashes.get(*alg))
            .ok_or_else(|| UpdateError::TargetMismatch {
                path: target_path.to_owned(),
                source: LengthOrHashMismatch::NoSupportedHash(
                    target.hashes.keys().cloned().collect::<Vec<_>>().join(", "),
                ),
            })?;
        let (dir, basename) = match target_path.rsplit_once('/') {
            Some((d, b)) => (format!("{d}/"), b),
            None => (String::new(), target_path),
        };
        Ok(format!(
            "{base}{}{}.{}",
            encode(&dir),
            encode(hash),
            encode(basename)
        ))
    }

    /// The stored artifact for `target_path`, if the target directory already holds one
    /// whose length and hashes match `target` (then no download is needed).
    pub fn find_cached_target(
        &self,
        target: &TargetFile,
        target_path: &str,
    ) -> Result<Option<PathBuf>, UpdateError> {
        let (dir, _) = self.target_config()?;
        let path = Self::local_target_path(dir, target_path)?;
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(format!("reading {}", path.display()))(e)),
        };
        let len = file
            .metadata()
            .map_err(io_err(format!("reading {}", path.display())))?
            .len();
        if len != target.length {
            return Ok(None);
        }
        let mut hasher = target.hasher();
        let mut reader = file.take(target.length);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = reader
                .read(&mut buf)
                .map_err(io_err(format!("reading {}", path.display())))?;
            if n == 0 {
                break;
            }
            hasher.update(buf.get(..n).unwrap_or_default());
        }
        Ok(target
            .check_digests(&hasher.finish())
            .is_ok()
            .then_some(path))
    }

    /// Downloads `target_path` (at most its signed length), verifies its length and every
    /// known hash while writing a temporary file in the target directory, and only then
    /// renames it into place. A failed download leaves nothing behind.
    pub fn download_target(
        &self,
        target: &TargetFile,
        target_path: &str,
    ) -> Result<PathBuf, UpdateError> {
        let (dir, _) = self.target_config()?;
        let dest = Self::local_target_path(dir, target_path)?;
        let url = self.target_url(target, target_path)?;
        fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".sealwright-download-")
            .suffix(".part")
            .tempfile_in(dir)
            .map_err(io_err(format!(
                "creating a temporary file in {}",
                dir.display()
            )))?;
        let digests = {
            let mut sink = HashingWriter {
                inner: BufWriter::new(tmp.as_file_mut()),
                hasher: target.hasher().in_background(),
            };
            self.remote
                .fetcher
                .fetch_to(&url, target.length, &mut sink)?;
            sink.inner
                .flush()
                .map_err(io_err(format!("writing {}", dest.display())))?;
            sink.hasher
                .finish()
                .map_err(io_err(format!("hashing {}", dest.display())))?
        };
        target
            .check_digests(&digests)
            .map_err(|source| UpdateError::TargetMismatch {
                path: target_path.to_owned(),
                source,
            })?;
        tmp.as_file()
            .sync_all()
            .map_err(io_err(format!("writing {}", dest.display())))?;
        tmp.persist(&dest)
            .map_err(|e| io_err(format!("renaming into {}", dest.display()))(e.error))?;
        sync_dir(dir).map_err(io_err(format!("syncing {}", dir.display())))?;
        Ok(dest)
    }
}

/// Hashes what it writes (on a thread of its own, beside the transfer).
struct HashingWriter<W> {
    inner: W,
    hasher: sealwright_crypto::digest::BackgroundHasher,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(buf.get(..n).unwrap_or_default());
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
    use std::collections::BTreeMap;

    fn target(algs: &[&str], data: &[u8]) -> TargetFile {
        let full = sealwright_crypto::digest::Digests::of(data);
        let mut hashes = BTreeMap::new();
        for alg in algs {
            let hex = match *alg {
                "sha256" => hex::encode(full.sha256),
                _ => hex::encode(full.sha512.unwrap()),
            };
            hashes.insert((*alg).to_owned(), hex);
        }
        TargetFile::new(data.len() as u64, hashes)
    }

    #[test]
    fn every_listed_hash_is_computed_and_checked() {
        for algs in [&["sha256"][..], &["sha512"], &["sha256", "sha512"]] {
            let t = target(algs, b"payload");
            let mut h = t.hasher();
            h.update(b"payload");
            t.check_digests(&h.finish()).unwrap();
            let mut h = t.hasher();
            h.update(b"paylaod");
            assert!(t.check_digests(&h.finish()).is_err(), "{algs:?}");
        }
    }

    #[test]
    fn a_listed_sha512_that_was_not_computed_never_passes() {
        let t = target(&["sha256", "sha512"], b"payload");
        let mut h = sealwright_crypto::digest::Hasher::sha256_only();
        h.update(b"payload");
        assert!(matches!(
            t.check_digests(&h.finish()),
            Err(LengthOrHashMismatch::Hash { .. })
        ));
    }
}
