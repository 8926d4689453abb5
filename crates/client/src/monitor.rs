//! O1: a monitor that follows a repository's transparency log and the repository itself,
//! and reports what an honest repository would never show.
//!
//! One run ([`Monitor::run_once`]) reads, in this order (the server publishes, then logs, so
//! reading the log first never mistakes a push in flight for a missing one):
//! 1. [`Monitor::follow_log`]: the checkpoint, verified with the log key; proof that it
//!    extends the one accepted last run (from the log's tiles); the new entries, from which
//!    the tree is rebuilt (from the right edge kept in the state) and must give the signed
//!    root; then each entry is judged against the newest statement about the same role, path
//!    or audit log;
//! 2. [`Monitor::read_repository`]: the repository through the TUF client workflow (the same
//!    trust engine as every device), from the root kept in the state;
//! 3. [`Monitor::check_logged_files`]: each newly logged metadata file, fetched from the
//!    repository: its bytes must be the ones logged, and every signature on it must be by a
//!    key the root (or the delegating role) names for that role;
//! 4. [`Monitor::compare`]: each role version the repository publishes must be in the log,
//!    and each version the log holds must be published. A published version missing from the
//!    log is looked for again after a grace period before it is reported.
//!
//! What a run learned is stored in one transaction ([`MonitorState::advance`]): a monitor
//! killed at any point resumes from its last whole run. A run that finds the log rewritten
//! keeps the checkpoint it trusted, so the finding repeats until someone looks.
//!
//! Not detected: a log and repository that show this monitor one consistent history and
//! devices another (a split view aimed at devices only); witnesses are for that. Signatures
//! on roles delegated below the top-level targets role are checked only for their bytes,
//! not their keys.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use sealwright_store::monitor_state::{
    Advance, Followed, LoggedRole, MonitorState, MonitorStateError,
};
use sealwright_tlog::entry::Entry;
use sealwright_tlog::merkle::{leaf_hash, verify_consistency, Frontier};
use sealwright_tlog::{Checkpoint, Note, Verifier};
use sealwright_tuf::metadata::{parse_envelope, Root};
use sealwright_tuf::Limits;

use crate::fetch::{FetchError, Fetcher, HttpFetcher};
use crate::log_reader::{LogReadError, LogReader};
use crate::metadata_dir::{quote, MetadataDir};
use crate::tls::TlsOptions;
use crate::updater::{UpdateError, Updater, UpdaterConfig};

/// What a monitor reports. Each names what an honest repository and log never show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// The checkpoint is not signed by the log key.
    BadCheckpoint,
    /// The log is smaller than before, has another root at the same size, or its tree does
    /// not extend the one accepted before: history was rewritten or forked.
    LogNotAppendOnly,
    /// The entries served do not make the tree the checkpoint signs.
    EntriesDoNotMatchTree,
    /// An entry that is not a Sealwright log entry.
    UnreadableEntry,
    /// A role's logged version is not above the one logged before it.
    VersionNotIncreasing,
    /// A role's logged version skips versions the log never held.
    VersionJump,
    /// A metadata file signed by a key that the root (or the delegating role) does not name
    /// for that role.
    UnknownKey,
    /// The repository serves other bytes for a metadata version than the log recorded.
    PublishedDiffersFromLog,
    /// The repository publishes a metadata version the log does not hold.
    PublishedNotLogged,
    /// The log holds a metadata version the repository does not publish.
    LoggedNotPublished,
    /// An artifact path logged again with other bytes (channel pointers change by design).
    TargetRepointed,
    /// The audit log's head, as logged, went backwards or was rewritten.
    AuditHeadBackwards,
    /// The repository's metadata does not verify with the trusted root.
    RepositoryRefused,
}

/// One finding: what, where in the log, and an explanation for a person.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// What kind.
    pub finding: FindingKind,
    /// The log entry it is about, if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// What was seen.
    pub message: String,
}

/// Why a run could not be completed (as opposed to what it found).
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// The state directory could not be read or written.
    #[error(transparent)]
    State(#[from] MonitorStateError),
    /// Reading the log failed (network, a file missing).
    #[error("reading the log: {0}")]
    Log(#[from] FetchError),
    /// Reading the repository failed (network).
    #[error("reading the repository: {0}")]
    Repository(String),
    /// The monitor is not set up.
    #[error("{0}")]
    Config(String),
}

/// What a monitor watches and where it keeps its memory.
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    /// State directory (created): `monitor.sqlite3` and the TUF metadata in `metadata/`.
    pub state_dir: PathBuf,
    /// The log's URL prefix (its checkpoint is at URL/checkpoint).
    pub log_url: String,
    /// The log's verifier key.
    pub log_key: Verifier,
    /// The repository (its metadata at URL/metadata/).
    pub repo_url: String,
    /// The root to trust on the first run (later runs use the one in the state). Without
    /// it, the first run trusts the repository's `1.root.json` only if the log holds those
    /// exact bytes as root version 1.
    pub initial_root: Option<Vec<u8>>,
    /// HTTPS trust for both.
    pub tls: TlsOptions,
    /// How long to wait for a published version to appear in the log before reporting it.
    pub grace: Duration,
}

/// What one run did.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The size of the log now followed.
    pub log_size: u64,
    /// Entries read and judged this run.
    pub entries_read: u64,
    /// Entries of the current checkpoint not read yet (the next run goes on).
    pub entries_behind: u64,
    /// The findings, in the order found.
    pub findings: Vec<Finding>,
}

/// Most entries one run reads (a thousand bundles): memory and time per run stay bounded
/// whatever size a log claims; a longer log is read over several runs.
const MAX_ENTRIES_PER_RUN: u64 = 256 * 1024;

/// The TUF metadata directory inside the state directory.
const METADATA_DIR: &str = "metadata";

/// A monitor of one log and repository.
#[derive(Debug)]
pub struct Monitor {
    config: MonitorConfig,
    state: MonitorState,
    log: LogReader<HttpFetcher>,
    repo: HttpFetcher,
}

/// What one run gathers before it is stored.
#[derive(Debug, Default)]
struct Run {
    findings: Vec<Finding>,
    advance: Advance,
    /// Metadata entries read this run: (index, role, version, sha256).
    logged_files: Vec<(u64, String, u64, String)>,
    log_size: u64,
    entries_read: u64,
    /// The log cannot be trusted past what was accepted before: stop following it.
    log_stopped: bool,
    /// Entries of the checkpoint left for the next run.
    log_behind: u64,
    /// SHA-256 of each root version logged this run.
    logged_roots: BTreeMap<u64, String>,
}

impl Run {
    fn find(&mut self, finding: FindingKind, index: Option<u64>, message: String) {
        self.findings.push(Finding {
            finding,
            index,
            message,
        });
    }
}

/// What the repository publishes now: each role's version and, where known, the SHA-256 of
/// its bytes.
#[derive(Debug)]
struct Published {
    versions: BTreeMap<String, (u64, Option<String>)>,
    root: Root,
    delegations: Option<sealwright_tuf::metadata::Delegations>,
}

impl Monitor {
    /// Opens the state in `config.state_dir` (creating it, with `config.initial_root` as the
    /// trusted root the first time).
    pub fn open(config: MonitorConfig) -> Result<Self, MonitorError> {
        let io = |what: &str, e: std::io::Error| {
            MonitorError::Config(format!("{what} {}: {e}", config.state_dir.display()))
        };
        std::fs::create_dir_all(config.state_dir.join(METADATA_DIR))
            .map_err(|e| io("creating", e))?;
        let metadata = MetadataDir::new(config.state_dir.join(METADATA_DIR));
        let has_root = metadata
            .load("root", Limits::default().root)
            .map_err(|e| io("reading", e))?
            .is_some();
        if let (false, Some(root)) = (has_root, config.initial_root.as_deref()) {
            crate::updater::init(metadata.dir(), root)
                .map_err(|e| MonitorError::Config(format!("the root to trust: {e}")))?;
        }
        let tls = |url: &str| {
            HttpFetcher::with_tls(url, &config.tls)
                .map_err(|e| MonitorError::Config(format!("TLS for {url}: {e}")))
        };
        let log = LogReader::new(
            tls(&config.log_url)?,
            &config.log_url,
            config.log_key.clone(),
        );
        let repo = tls(&config.repo_url)?;
        let state = MonitorState::open(&config.state_dir)?;
        Ok(Monitor {
            config,
            state,
            log,
            repo,
        })
    }

    /// One pass over log and repository; stores what it learned.
    pub fn run_once(&mut self) -> Result<Report, MonitorError> {
        let mut run = Run::default();
        self.follow_log(&mut run)?;
        if let Some(published) = self.read_repository(&mut run)? {
            self.check_logged_files(&mut run, &published, 0)?;
            self.report_logged_not_published(&mut run, &published, 0);
            let mut published = published;
            let mut missing = self.unlogged_versions(&run, &published)?;
            if run.log_behind > 0 {
                // What is published may be in the part of the log not read yet.
                missing.clear();
            }
            if !missing.is_empty() && !run.log_stopped {
                // Published just before the log was read and not logged yet, or never
                // logged: look again after the grace period, log first as before.
                std::thread::sleep(self.config.grace);
                let before = run.logged_files.len();
                self.follow_log(&mut run)?;
                if let Some(again) = self.read_repository(&mut run)? {
                    self.check_logged_files(&mut run, &again, before)?;
                    self.report_logged_not_published(&mut run, &again, before);
                    missing = self.unlogged_versions(&run, &again)?;
                    published = again;
                }
            }
            self.report_published_differs(&mut run, &published)?;
            for (role, version) in missing {
                run.find(
                    FindingKind::PublishedNotLogged,
                    None,
                    format!("the repository publishes {role} version {version}, which the transparency log does not hold"),
                );
            }
        }
        self.state.advance(&run.advance)?;
        Ok(Report {
            log_size: run.log_size,
            entries_read: run.entries_read,
            entries_behind: run.log_behind,
            findings: run.findings,
        })
    }

    /// The checkpoint accepted last run, with the tree's right edge at its size.
    fn followed(&self, run: &Run) -> Result<Option<(Checkpoint, Frontier)>, MonitorError> {
        let stored = match &run.advance.followed {
            Some(f) => Some(f.clone()),
            None => self.state.followed()?,
        };
        let Some(Followed { note, frontier }) = stored else {
            return Ok(None);
        };
        let damaged = |what: &str| {
            MonitorError::Config(format!(
                "the monitor's state in {} is damaged ({what}); move it away to start over",
                self.config.state_dir.display()
            ))
        };
        let note = Note::parse(&note).map_err(|_| damaged("checkpoint"))?;
        let checkpoint = Checkpoint::parse(note.text()).map_err(|_| damaged("checkpoint"))?;
        // The edge may be behind the checkpoint (a run reads at most MAX_ENTRIES_PER_RUN);
        // at its size it must be the checkpoint's tree.
        let frontier = Frontier::from_bytes(&frontier)
            .filter(|f| {
                f.size() < checkpoint.size
                    || (f.size() == checkpoint.size && f.root() == checkpoint.root)
            })
            .ok_or_else(|| damaged("tree edge"))?;
        Ok(Some((checkpoint, frontier)))
    }

    /// Step 1: the new checkpoint and entries, proven to extend what was accepted before.
    fn follow_log(&self, run: &mut Run) -> Result<(), MonitorError> {
        let (note, checkpoint) = match self.log.checkpoint() {
            Ok(c) => c,
            Err(LogReadError::Fetch(e)) => return Err(e.into()),
            Err(e) => {
                run.find(FindingKind::BadCheckpoint, None, e.to_string());
                run.log_stopped = true;
                return Ok(());
            }
        };
        let (old, mut frontier) = match self.followed(run)? {
            Some((old, frontier)) => (Some(old), frontier),
            None => (None, Frontier::new()),
        };
        let old_size = frontier.size();
        run.log_size = old_size;
        if let Some(old) = &old {
            if let Err(why) = self.check_append_only(old, &checkpoint) {
                run.find(FindingKind::LogNotAppendOnly, None, why);
                run.log_stopped = true;
                return Ok(());
            }
        }
        if checkpoint.size == old_size {
            return Ok(());
        }
        // A log of any size is read in bounded steps: this run's entries, proven to be a
        // prefix of the signed tree, and the rest next run.
        let upto = checkpoint
            .size
            .min(old_size.saturating_add(MAX_ENTRIES_PER_RUN));
        let entries = match self.log.entries(old_size, upto) {
            Ok(e) => e,
            Err(LogReadError::Fetch(e)) => return Err(e.into()),
            Err(e) => {
                run.find(FindingKind::EntriesDoNotMatchTree, None, e.to_string());
                run.log_stopped = true;
                return Ok(());
            }
        };
        entries.iter().for_each(|e| frontier.push(leaf_hash(e)));
        let in_tree = if upto == checkpoint.size {
            frontier.root() == checkpoint.root
        } else {
            match self.log.consistency_proof(upto, checkpoint.size) {
                Ok(proof) => verify_consistency(
                    upto,
                    checkpoint.size,
                    &proof,
                    &frontier.root(),
                    &checkpoint.root,
                )
                .is_ok(),
                Err(LogReadError::Fetch(e)) => return Err(e.into()),
                Err(_) => false,
            }
        };
        if !in_tree {
            run.find(
                FindingKind::EntriesDoNotMatchTree,
                None,
                format!(
                    "entries {old_size}..{upto} do not make the tree the checkpoint of {} entries signs",
                    checkpoint.size
                ),
            );
            run.log_stopped = true;
            return Ok(());
        }
        for (i, bytes) in entries.iter().enumerate() {
            self.judge(run, old_size + i as u64, bytes)?;
        }
        run.entries_read += entries.len() as u64;
        run.log_size = upto;
        run.log_behind = checkpoint.size - upto;
        run.advance.followed = Some(Followed {
            note,
            frontier: frontier.to_bytes(),
        });
        Ok(())
    }

    /// The new checkpoint extends `old`: not smaller, the same root at the same size, and a
    /// consistency proof from the log's tiles that verifies against both signed roots.
    fn check_append_only(&self, old: &Checkpoint, new: &Checkpoint) -> Result<(), String> {
        if new.size < old.size {
            return Err(format!(
                "the log has {} entries, fewer than the {} it had: it was cut or replaced",
                new.size, old.size
            ));
        }
        if new.size == old.size {
            return if new.root == old.root {
                Ok(())
            } else {
                Err(format!(
                    "two checkpoints of size {} with different roots: the log forked",
                    new.size
                ))
            };
        }
        if old.size == 0 {
            return Ok(());
        }
        let proof = self
            .log
            .consistency_proof(old.size, new.size)
            .map_err(|e| {
                format!(
                    "no consistency proof from {} to {}: {e}",
                    old.size, new.size
                )
            })?;
        verify_consistency(old.size, new.size, &proof, &old.root, &new.root).map_err(|e| {
            format!(
                "the tree of {} entries does not extend the one of {} accepted before ({e}): history was rewritten",
                new.size, old.size
            )
        })
    }

    /// The newest logged version of `role`: learned this run, else stored by an earlier one.
    fn logged_role(&self, run: &Run, role: &str) -> Result<Option<LoggedRole>, MonitorError> {
        match run.advance.roles.get(role) {
            Some(r) => Ok(Some(r.clone())),
            None => Ok(self.state.role(role)?),
        }
    }

    /// One entry, against the newest statement before it about the same thing.
    fn judge(&self, run: &mut Run, index: u64, bytes: &[u8]) -> Result<(), MonitorError> {
        let entry = match Entry::parse(bytes) {
            Ok(e) => e,
            Err(e) => {
                run.find(FindingKind::UnreadableEntry, Some(index), e.to_string());
                return Ok(());
            }
        };
        match entry {
            Entry::Metadata {
                role,
                version,
                sha256,
                ..
            } => {
                let before = self.logged_role(run, &role)?;
                if let Some(before) = &before {
                    if version == before.version && sha256 == before.sha256 {
                        return Ok(());
                    }
                    if version <= before.version {
                        run.find(
                            FindingKind::VersionNotIncreasing,
                            Some(index),
                            format!("{role} version {version} logged after version {} ({}): a version reused or rolled back", before.version, if version == before.version { "with other bytes" } else { "lower" }),
                        );
                    } else if version > before.version + 1 {
                        run.find(
                            FindingKind::VersionJump,
                            Some(index),
                            format!(
                                "{role} jumped from version {} to {version}: versions in between were never logged",
                                before.version
                            ),
                        );
                    }
                }
                if role == "root" {
                    run.logged_roots
                        .entry(version)
                        .or_insert_with(|| sha256.clone());
                }
                let is_newest = before.as_ref().is_none_or(|b| version > b.version);
                run.logged_files
                    .push((index, role.clone(), version, sha256.clone()));
                if is_newest {
                    run.advance
                        .roles
                        .insert(role, LoggedRole { version, sha256 });
                }
            }
            Entry::Target { path, sha256, .. } => {
                let before = match run.advance.targets.get(&path) {
                    Some(s) => Some(s.clone()),
                    None => self.state.target(&path)?,
                };
                // A channel pointer names the newest release: it changes by design.
                let repointed = before
                    .filter(|b| *b != sha256 && !sealwright_tuf::layout::is_channel_pointer(&path));
                if let Some(before) = repointed {
                    run.find(
                        FindingKind::TargetRepointed,
                        Some(index),
                        format!("{path} was logged with SHA-256 {before} and now {sha256}: the same path re-pointed to other bytes"),
                    );
                }
                run.advance.targets.insert(path, sha256);
            }
            Entry::AuditHead { records, head } => {
                let before = match &run.advance.audit_head {
                    Some(h) => Some(h.clone()),
                    None => self.state.audit_head()?,
                };
                if let Some((n, h)) = before {
                    if records < n || (records == n && head != h) {
                        run.find(
                            FindingKind::AuditHeadBackwards,
                            Some(index),
                            format!("the audit log's head went from {n} records ({h}) to {records} ({head}): records were removed or rewritten"),
                        );
                    }
                }
                run.advance.audit_head = Some((records, head));
            }
        }
        Ok(())
    }

    /// Step 2: the repository, verified by the TUF client workflow from the stored root.
    fn read_repository(&self, run: &mut Run) -> Result<Option<Published>, MonitorError> {
        self.trust_root_from_log(run)?;
        let metadata_dir = self.config.state_dir.join(METADATA_DIR);
        let config = UpdaterConfig::new(&metadata_dir, self.metadata_url());
        let mut updater = Updater::new(config, &self.repo, chrono::Utc::now())
            .map_err(|e| MonitorError::Config(format!("the trusted root: {e}")))?;
        match updater.refresh() {
            Ok(()) => {}
            Err(UpdateError::Fetch(e)) if !e.is_not_found() => {
                return Err(MonitorError::Repository(e.to_string()))
            }
            Err(e) => {
                run.find(FindingKind::RepositoryRefused, None, e.to_string());
                return Ok(None);
            }
        }
        let trusted = updater.trusted();
        let stored = MetadataDir::new(&metadata_dir);
        let sha_of = |role: &str| -> Option<String> {
            stored
                .load(role, Limits::default().targets)
                .ok()
                .flatten()
                .map(|b| sealwright_crypto::digest::sha256_hex(&b))
        };
        let mut versions = BTreeMap::new();
        let root = trusted.root().signed.clone();
        versions.insert("root".to_owned(), (root.version, sha_of("root")));
        if let Some(ts) = trusted.timestamp() {
            versions.insert(
                "timestamp".to_owned(),
                (ts.signed.version, sha_of("timestamp")),
            );
        }
        if let Some(snapshot) = trusted.snapshot() {
            versions.insert(
                "snapshot".to_owned(),
                (snapshot.signed.version, sha_of("snapshot")),
            );
            for (file, meta) in &snapshot.signed.meta {
                let Some(role) = sealwright_tuf::layout::role_of_meta_key(file) else {
                    continue;
                };
                let sha = if role == "targets" {
                    sha_of("targets")
                } else {
                    meta.hashes.as_ref().and_then(|h| h.get("sha256").cloned())
                };
                versions.insert(role.to_owned(), (meta.version, sha));
            }
        }
        let delegations = trusted
            .targets_role("targets")
            .and_then(|t| t.signed.delegations.clone());
        Ok(Some(Published {
            versions,
            root,
            delegations,
        }))
    }

    /// Without a root given, the first run trusts the repository's `1.root.json` only if
    /// the log — trusted through its key — holds exactly those bytes as root version 1:
    /// the log vouches for the root, and a repository showing the monitor another root is
    /// caught at once.
    fn trust_root_from_log(&self, run: &Run) -> Result<(), MonitorError> {
        let metadata = MetadataDir::new(self.config.state_dir.join(METADATA_DIR));
        let cap = Limits::default().root;
        let stored = metadata
            .load("root", cap)
            .map_err(|e| MonitorError::Config(format!("reading the trusted root: {e}")))?;
        if stored.is_some() {
            return Ok(());
        }
        let url = format!("{}1.root.json", self.metadata_url());
        let bytes = self
            .repo
            .fetch(&url, cap as u64)
            .map_err(|e| MonitorError::Repository(e.to_string()))?;
        let sha256 = sealwright_crypto::digest::sha256_hex(&bytes);
        match run.logged_roots.get(&1) {
            Some(logged) if *logged == sha256 => crate::updater::init(metadata.dir(), &bytes)
                .map_err(|e| MonitorError::Config(format!("{url}: {e}"))),
            Some(logged) => Err(MonitorError::Config(format!(
                "{url} has SHA-256 {sha256}, but the log holds root version 1 as {logged}: the repository shows another root than the log; pass --root ROOT.json (obtained out of band) to decide"
            ))),
            None => Err(MonitorError::Config(format!(
                "no trusted root yet and the log holds no root version 1 to vouch for {url}: pass --root ROOT.json (the repository's 1.root.json, obtained out of band) the first time"
            ))),
        }
    }

    fn metadata_url(&self) -> String {
        format!("{}/metadata/", self.config.repo_url.trim_end_matches('/'))
    }

    /// Step 3: each logged metadata file from the `from`-th of this run: the repository's
    /// bytes are the logged ones, and every signature on them is by a key named for the role.
    fn check_logged_files(
        &self,
        run: &mut Run,
        published: &Published,
        from: usize,
    ) -> Result<(), MonitorError> {
        let files: Vec<_> = run.logged_files.iter().skip(from).cloned().collect();
        for (index, role, version, sha256) in files {
            let current = published.versions.get(&role).map(|(v, _)| *v);
            let name =
                if role == "root" || (published.root.consistent_snapshot && role != "timestamp") {
                    format!("{version}.{}.json", quote(&role))
                } else if current == Some(version) {
                    format!("{}.json", quote(&role))
                } else {
                    continue; // an older version under an unversioned name: no longer served
                };
            let url = format!("{}{name}", self.metadata_url());
            let bytes = match self.repo.fetch(&url, Limits::default().targets as u64) {
                Ok(b) => b,
                Err(e) if e.is_not_found() => continue, // not (or no longer) published: step 4
                Err(e) => return Err(MonitorError::Repository(e.to_string())),
            };
            if sealwright_crypto::digest::sha256_hex(&bytes) != sha256 {
                run.find(
                    FindingKind::PublishedDiffersFromLog,
                    Some(index),
                    format!("{name} is not the file the log recorded for {role} version {version}"),
                );
                continue;
            }
            let Ok(envelope) = parse_envelope(&bytes, bytes.len()) else {
                continue; // the trust engine reports unreadable metadata in step 2
            };
            let Some(mut named) = authorized_keys(published, &role) else {
                continue; // delegated below the top-level targets role
            };
            if role == "root" {
                // A new root is signed by the keys of the previous root and its own.
                if let Ok(this) = sealwright_tuf::Metadata::<Root>::from_bytes(&bytes, bytes.len())
                {
                    named.extend(
                        this.signed
                            .roles
                            .get("root")
                            .into_iter()
                            .flat_map(|r| r.keyids.iter().cloned()),
                    );
                }
            }
            for signature in &envelope.signatures {
                if !named.contains(&signature.keyid) {
                    run.find(
                        FindingKind::UnknownKey,
                        Some(index),
                        format!(
                            "{name} carries a signature by key {}, which is not named for {role}",
                            signature.keyid
                        ),
                    );
                }
            }
        }
        Ok(())
    }

    /// Step 4a: the published role versions the log does not hold (or holds only older
    /// versions of).
    fn unlogged_versions(
        &self,
        run: &Run,
        published: &Published,
    ) -> Result<Vec<(String, u64)>, MonitorError> {
        let mut missing = Vec::new();
        for (role, (version, _)) in &published.versions {
            let logged = self.logged_role(run, role)?.map(|r| r.version);
            if logged.is_none_or(|l| l < *version) {
                missing.push((role.clone(), *version));
            }
        }
        Ok(missing)
    }

    /// Step 4c: a published version the log holds with other bytes.
    fn report_published_differs(
        &self,
        run: &mut Run,
        published: &Published,
    ) -> Result<(), MonitorError> {
        for (role, (version, sha)) in &published.versions {
            let Some(sha) = sha else { continue };
            let logged = self.logged_role(run, role)?;
            if let Some(l) = logged.filter(|l| l.version == *version && l.sha256 != *sha) {
                run.find(
                    FindingKind::PublishedDiffersFromLog,
                    None,
                    format!(
                        "the repository publishes {role} version {version} with SHA-256 {sha}; the log recorded {}",
                        l.sha256
                    ),
                );
            }
        }
        Ok(())
    }

    /// Step 4b: metadata logged this run (from the `from`-th) that the repository does not
    /// publish: a version above the published one, or a role it does not have.
    fn report_logged_not_published(&self, run: &mut Run, published: &Published, from: usize) {
        let mut reported = BTreeSet::new();
        let logged: Vec<_> = run.logged_files.iter().skip(from).cloned().collect();
        for (index, role, version, _) in logged {
            let current = published.versions.get(&role).map(|(v, _)| *v);
            if current.is_none_or(|c| c < version) && reported.insert((role.clone(), version)) {
                run.find(
                    FindingKind::LoggedNotPublished,
                    Some(index),
                    match current {
                        Some(c) => format!("the log holds {role} version {version}; the repository publishes version {c}"),
                        None => format!("the log holds {role} version {version}; the repository publishes no such role"),
                    },
                );
            }
        }
    }
}

/// The key ids the trusted metadata names for `role`: the root's for the top-level roles,
/// the top-level targets role's delegation for a role it delegates; none when the role is
/// delegated deeper (or not at all).
fn authorized_keys(published: &Published, role: &str) -> Option<BTreeSet<String>> {
    if let Some(r) = published.root.roles.get(role) {
        return Some(r.keyids.iter().cloned().collect());
    }
    let delegations = published.delegations.as_ref()?;
    if let Some(d) = delegations.roles.iter().flatten().find(|d| d.name == role) {
        return Some(d.keyids.iter().cloned().collect());
    }
    let succinct = delegations.succinct_roles.as_ref()?;
    sealwright_tuf::delegation::is_succinct_bin_name(
        &succinct.name_prefix,
        succinct.bit_length,
        role,
    )
    .then(|| succinct.keyids.iter().cloned().collect())
}
