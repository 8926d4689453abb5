//! Where a push server keeps its state: [`Storage::Embedded`], the data directory alone
//! (files and SQLite; the default), or [`Storage::Shared`], PostgreSQL and S3 shared by
//! replicas behind a load balancer (`serve --push --store postgres://… --objects s3://…`).
//!
//! A push or renewal runs in a [`Session`]: one at a time across every replica, on a working
//! copy of the published metadata in the data directory that [`Storage::begin`] brings up
//! to the last committed publish. The checks of `accept` read that working copy exactly as
//! they read an embedded repository; [`Session::write`] then makes the new state live —
//! for a shared store, by uploading its bytes and committing them in one transaction
//! ([`sealwright_store::Shared::commit`]).
//!
//! Guarantees:
//! - a working copy is trusted only at the sequence recorded in `DIR/shared-sequence`; the
//!   record is removed before the working copy is changed and written back only after the
//!   commit, so a replica killed in between resynchronises everything at its next session
//!   ([`Session::write`]);
//! - the versions sent to the signer agent rise across replicas: each session starts from
//!   the shared floor and raises it before signing ([`Session::next_online_versions`]);
//! - an uploaded blob is in the object store before the upload is acknowledged
//!   ([`Storage::keep_blob`]), so any replica can check and publish it.
//!
//! Push tokens of a shared store live in its database ([`crate::tokens::TokenHome`]); the
//! first replica to start brings its `push-tokens.toml`.
//!
//! So does the audit log of what the replicas did ([`Storage::audit`]); commands run on a
//! replica's machine (`token add`, ...) still record in its data directory's log.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use sealwright_repo::publish::{newest_root_version, write_tree, OnlineFloor, PUBLISHED_DIR};
use sealwright_repo::push::{PushError, MAX_ROLE_BYTES};
use sealwright_repo::{fsutil, staging};
use sealwright_store::{Catalog, Embedded, PublishLock, PublishedFile, Shared, StoreError};

use crate::tokens::{Tokens, TOKENS_FILE};

/// File in the data directory recording the shared publish its working copy holds.
pub const SYNCED_FILE: &str = "shared-sequence";

/// A push server's state.
#[derive(Debug)]
pub enum Storage {
    /// The data directory: files and `index.sqlite3`.
    Embedded {
        /// The data directory.
        dir: PathBuf,
        /// Its index.
        catalog: Embedded,
    },
    /// PostgreSQL and S3, with the data directory as this replica's working copy and cache.
    Shared {
        /// This replica's data directory.
        dir: PathBuf,
        /// The shared store.
        store: Arc<Shared>,
    },
}

fn internal(e: impl std::fmt::Display) -> PushError {
    PushError::Internal(e.to_string())
}

fn store_err(e: StoreError) -> PushError {
    match e {
        StoreError::Busy(m) => PushError::NotReady(m),
        other => internal(other),
    }
}

/// Runs a shared-store future from blocking code (the server's blocking pool).
fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Handle::current().block_on(f)
}

impl Storage {
    /// The embedded storage of data directory `dir`.
    pub fn embedded(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        Storage::Embedded {
            catalog: Embedded::new(&dir),
            dir,
        }
    }

    /// The data directory (working copy, blob cache, audit log).
    pub fn dir(&self) -> &Path {
        match self {
            Storage::Embedded { dir, .. } | Storage::Shared { dir, .. } => dir,
        }
    }

    /// The index.
    pub fn catalog(&self) -> &dyn Catalog {
        match self {
            Storage::Embedded { catalog, .. } => catalog,
            Storage::Shared { store, .. } => store.as_ref(),
        }
    }

    /// Waits for the publish lock and brings the working copy up to date. Blocking; call
    /// from the blocking pool of the runtime the shared store was opened on.
    pub fn begin(&self) -> Result<Session<'_>, PushError> {
        match self {
            Storage::Embedded { dir, .. } => Ok(Session {
                storage: self,
                held: Held::File(lock_file(dir)?),
            }),
            Storage::Shared { dir, store } => {
                let lock = block_on(store.lock_publish()).map_err(store_err)?;
                let mut session = Session {
                    storage: self,
                    held: Held::Shared(lock),
                };
                session.synchronise(dir, store)?;
                Ok(session)
            }
        }
    }

    /// Keeps an uploaded blob, already hashed and renamed into the data directory's blob
    /// store: a shared store gets it too before the upload is acknowledged.
    pub fn keep_blob(&self, sha256: &str, length: u64) -> Result<(), PushError> {
        if let Storage::Shared { dir, store } = self {
            let path = staging::blob_path(dir, sha256);
            block_on(store.put_file(sha256, &path, length)).map_err(store_err)?;
        }
        Ok(())
    }

    /// Appends an audit record: to the data directory's log, or to the shared one every
    /// replica appends to.
    pub fn audit(&self, new: &sealwright_store::NewRecord<'_>) -> Result<(), String> {
        match self {
            Storage::Embedded { dir, .. } => sealwright_store::AuditLog::open(dir)
                .and_then(|mut log| log.append(new))
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Storage::Shared { store, .. } => store
                .append_audit(new)
                .map(|_| ())
                .map_err(|e| e.to_string()),
        }
    }

    /// Where the tokens are kept.
    pub fn token_home(&self) -> crate::tokens::TokenHome<'_> {
        match self {
            Storage::Embedded { dir, .. } => crate::tokens::TokenHome::Dir(dir),
            Storage::Shared { store, .. } => crate::tokens::TokenHome::Shared(store),
        }
    }

    /// Whether a blob is stored (and, embedded, still on disk at its recorded length).
    pub fn has_blob(
        &self,
        sha256: &str,
    ) -> Result<Option<sealwright_store::index::Blob>, PushError> {
        let blob = self.catalog().blob(sha256).map_err(store_err)?;
        Ok(match self {
            Storage::Embedded { dir, .. } => blob.filter(|b| {
                std::fs::metadata(staging::blob_path(dir, &b.sha256))
                    .is_ok_and(|m| m.is_file() && m.len() == b.length)
            }),
            Storage::Shared { .. } => blob,
        })
    }

    /// For a shared store: under the lock, publishes the data directory's tree as the first
    /// publish when the store has none (the first replica of a repository), or brings the
    /// working copy up to date. Nothing for embedded storage.
    pub fn start(&self) -> Result<(), PushError> {
        let Storage::Shared { dir, store } = self else {
            return Ok(());
        };
        // The first replica brings its tokens; later ones use the shared document (a replica
        // that lost the race to bring them leaves the other's in place).
        if store.document(TOKENS_FILE).map_err(store_err)?.is_none() {
            let local = Tokens::load(dir)?;
            if !local.tokens.is_empty() {
                let text = local.to_text()?;
                store
                    .replace_document(TOKENS_FILE, text.as_bytes(), None)
                    .map_err(store_err)?;
            }
        }
        let mut lock = block_on(store.lock_publish()).map_err(store_err)?;
        if block_on(store.sequence()).map_err(store_err)? == 0 {
            let files = import_tree(dir, store)?;
            if files.is_empty() {
                return Err(PushError::NotReady(
                    "the shared store is empty and this data directory has nothing published: publish the first version here (`sealwright publish`) and start again".into(),
                ));
            }
            let seq = block_on(store.commit(&mut lock, &files)).map_err(store_err)?;
            record_synced(dir, seq)?;
            return Ok(());
        }
        let mut session = Session {
            storage: self,
            held: Held::Shared(lock),
        };
        session.synchronise(dir, store)
    }
}

impl Storage {
    /// The c2sp.org/tlog-proof of the logged entry whose leaf hash is `leaf`, at the
    /// current checkpoint: from this server's files, or from the shared store (whichever
    /// replica logged the entry). Blocking.
    pub fn log_proof(
        &self,
        log: &crate::translog::TransparencyLog,
        leaf: &sealwright_tlog::Hash,
    ) -> Result<Option<sealwright_tlog::proof::TlogProof>, crate::translog::LogError> {
        use crate::translog::LogError;
        match self {
            Storage::Embedded { .. } => match log.index_of(leaf)? {
                Some(index) => log.proof_of(index, &|rel| log.local_file(rel)),
                None => Ok(None),
            },
            Storage::Shared { store, .. } => {
                let shared = |e: StoreError| LogError::Config(format!("the shared store: {e}"));
                let Some(index) = block_on(store.log_index_of(leaf)).map_err(shared)? else {
                    return Ok(None);
                };
                let read = |rel: &str| -> Result<Option<Vec<u8>>, LogError> {
                    match block_on(store.resolve(&format!("log/{rel}"))).map_err(shared)? {
                        Some(f) => Ok(Some(
                            block_on(store.object(&f.sha256, f.length))
                                .map_err(shared)?
                                .to_vec(),
                        )),
                        None => Ok(None),
                    }
                };
                log.proof_of(index, &read)
            }
        }
    }
}

/// A shared store opened outside any async runtime (for commands such as `token add`):
/// owns the runtime its connections run on.
#[derive(Debug)]
pub struct SharedHandle {
    store: Arc<Shared>,
    // Declared after `store`, so the connections go before the runtime that drives them.
    _runtime: tokio::runtime::Runtime,
}

impl SharedHandle {
    /// Connects to the shared store named by `config`.
    pub fn open(config: &sealwright_store::SharedConfig) -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| StoreError::Config(format!("starting a runtime: {e}")))?;
        let store = Arc::new(runtime.block_on(Shared::open(config))?);
        Ok(SharedHandle {
            store,
            _runtime: runtime,
        })
    }

    /// The store.
    pub fn store(&self) -> &Shared {
        &self.store
    }
}

/// Uploads every file of `DIR/published/` (metadata last is not needed: nothing is visible
/// before the commit) and returns them as published files.
fn import_tree(dir: &Path, store: &Shared) -> Result<Vec<PublishedFile>, PushError> {
    let published = dir.join(PUBLISHED_DIR);
    let mut files = Vec::new();
    let mut stack = vec![published.clone()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(internal(format!("{}: {e}", d.display()))),
        };
        for entry in entries {
            let entry = entry.map_err(internal)?;
            let path = entry.path();
            let kind = entry.file_type().map_err(internal)?;
            if kind.is_dir() {
                stack.push(path);
                continue;
            }
            if !kind.is_file() {
                continue;
            }
            let rel = path
                .strip_prefix(&published)
                .map_err(internal)?
                .to_str()
                .ok_or_else(|| internal(format!("{}: not UTF-8", path.display())))?
                .to_owned();
            if rel.rsplit('/').next().is_some_and(|n| n.starts_with('.')) {
                continue;
            }
            let digests = sealwright_crypto::digest::Hasher::sha256_only()
                .consume(File::open(&path).map_err(internal)?)
                .map_err(internal)?;
            let sha256 = hex::encode(digests.sha256);
            block_on(store.put_file(&sha256, &path, digests.length)).map_err(store_err)?;
            files.push(PublishedFile {
                path: rel,
                sha256,
                length: digests.length,
            });
        }
    }
    Ok(files)
}

/// Brings the transparency log's files among `files` into the working copy, tiles before
/// the checkpoint (the order the writer keeps). Pulled from scratch, the local log is
/// replaced whole: files a killed session wrote and never committed must not survive to
/// contradict what other replicas committed since.
fn pull_log(
    dir: &Path,
    store: &Shared,
    files: &[PublishedFile],
    from_scratch: bool,
) -> Result<(), PushError> {
    let log_dir = dir.join(crate::translog::LOG_DIR);
    if from_scratch {
        match std::fs::remove_dir_all(&log_dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(internal(format!("{}: {e}", log_dir.display()))),
        }
    }
    let mut wanted: Vec<(&str, &PublishedFile)> = files
        .iter()
        .filter_map(|f| Some((f.path.strip_prefix("log/")?, f)))
        .collect();
    wanted.sort_by_key(|(rel, _)| *rel == "checkpoint");
    for (rel, f) in wanted {
        if rel != "checkpoint" && sealwright_tlog::tile::TilePath::parse(rel).is_none() {
            return Err(internal(format!("the shared store lists {}", f.path)));
        }
        let bytes: Bytes =
            block_on(store.object(&f.sha256, crate::translog::MAX_LOG_FILE)).map_err(store_err)?;
        fsutil::write_atomic(&log_dir.join(rel), &bytes).map_err(internal)?;
    }
    Ok(())
}

/// Holds the embedded publish lock (`DIR/.publish.lock`) until dropped.
fn lock_file(dir: &Path) -> Result<File, PushError> {
    sealwright_fs::lock_exclusive(&dir.join(".publish.lock")).map_err(internal)
}

fn synced(dir: &Path) -> u64 {
    fsutil::read_capped(&dir.join(SYNCED_FILE), 64)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn record_synced(dir: &Path, seq: u64) -> Result<(), PushError> {
    fsutil::write_atomic(&dir.join(SYNCED_FILE), format!("{seq}\n").as_bytes()).map_err(internal)
}

/// Forgets the recorded sequence before the working copy changes: until the change is
/// committed (and recorded again), the next session resynchronises from scratch.
fn forget_synced(dir: &Path) -> Result<(), PushError> {
    match std::fs::remove_file(dir.join(SYNCED_FILE)) {
        Ok(()) => fsutil::sync_dir(dir).map_err(internal),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(internal(e)),
    }
}

enum Held {
    File(#[allow(dead_code)] File),
    Shared(PublishLock),
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Held::File(_) => "Held::File",
            Held::Shared(_) => "Held::Shared",
        })
    }
}

/// One push or renewal, holding the publish lock.
#[derive(Debug)]
pub struct Session<'a> {
    storage: &'a Storage,
    held: Held,
}

impl Session<'_> {
    /// The data directory whose working copy this session reads and writes.
    pub fn dir(&self) -> &Path {
        self.storage.dir()
    }

    /// Whether `timestamp` is the `timestamp.json` devices are served now: after a write
    /// that failed, whether it failed before its push became visible or after.
    pub fn serves_timestamp(&self, timestamp: &[u8]) -> Result<bool, PushError> {
        match self.storage {
            Storage::Embedded { dir, .. } => {
                let path = dir.join(PUBLISHED_DIR).join("metadata/timestamp.json");
                let served = fsutil::read_capped(&path, MAX_ROLE_BYTES as u64).map_err(internal)?;
                Ok(served == timestamp)
            }
            Storage::Shared { store, .. } => {
                let served =
                    block_on(store.resolve("metadata/timestamp.json")).map_err(store_err)?;
                Ok(served
                    .is_some_and(|f| f.sha256 == sealwright_crypto::digest::sha256_hex(timestamp)))
            }
        }
    }

    /// Brings the working copy up to the last committed publish (and the local floor of
    /// signed versions up to the shared one), then publishes a root copied into it.
    fn synchronise(&mut self, dir: &Path, store: &Shared) -> Result<(), PushError> {
        self.pull(dir, store)?;
        self.publish_copied_root(dir, store)
    }

    /// A root change reaches a server as files: the operator copies the new `N.root.json`
    /// and `root.json` into the data directory (docs/push.md). Replicas serve the store, not
    /// their working copies, so the first session after the copy publishes it — each version
    /// after the store's, checked first as a client will check it (signed by a threshold of
    /// the previous root's keys and of its own), so a broken copy is refused here rather
    /// than served to every device.
    fn publish_copied_root(&mut self, dir: &Path, store: &Shared) -> Result<(), PushError> {
        let (Held::Shared(lock), metadata) =
            (&mut self.held, dir.join(PUBLISHED_DIR).join("metadata"))
        else {
            return Ok(());
        };
        let Some(local) = newest_root_version(&metadata).map_err(internal)? else {
            return Ok(());
        };
        // The usual case, answered by the database alone: this version is published.
        let newest = format!(
            "metadata/{}",
            sealwright_tuf::layout::metadata_file("root", local)
        );
        if block_on(store.resolve(&newest))
            .map_err(store_err)?
            .is_some()
        {
            return Ok(());
        }
        let Some(served) = block_on(store.resolve("metadata/root.json")).map_err(store_err)? else {
            return Ok(());
        };
        let served_bytes =
            block_on(store.object(&served.sha256, MAX_ROLE_BYTES as u64)).map_err(store_err)?;
        let served_version =
            sealwright_tuf::metadata::Metadata::<sealwright_tuf::metadata::Root>::from_bytes(
                &served_bytes,
                MAX_ROLE_BYTES,
            )
            .map_err(internal)?
            .signed
            .version;
        if local <= served_version {
            return Ok(());
        }
        let refused = |m: String| {
            PushError::NotReady(format!(
                "the data directory holds root version {local}, newer than the one served ({served_version}), but {m}; fix or remove the copied root files"
            ))
        };
        let mut set =
            sealwright_tuf::engine::TrustedMetadataSet::new(&served_bytes, chrono::Utc::now())
                .map_err(|e| refused(e.to_string()))?;
        let mut files = Vec::new();
        let mut newest = Vec::new();
        for version in served_version + 1..=local {
            let name = sealwright_tuf::layout::metadata_file("root", version);
            let bytes = fsutil::read_capped(&metadata.join(&name), MAX_ROLE_BYTES as u64)
                .map_err(|e| refused(format!("{name}: {e}")))?;
            set.update_root(&bytes)
                .map_err(|e| refused(format!("{name}: {e}")))?;
            let sha256 =
                block_on(store.put_object(Bytes::copy_from_slice(&bytes))).map_err(store_err)?;
            files.push(PublishedFile {
                path: format!("metadata/{name}"),
                sha256,
                length: bytes.len() as u64,
            });
            newest = bytes;
        }
        let sha256 =
            block_on(store.put_object(Bytes::copy_from_slice(&newest))).map_err(store_err)?;
        files.push(PublishedFile {
            path: "metadata/root.json".into(),
            sha256,
            length: newest.len() as u64,
        });
        forget_synced(dir)?;
        fsutil::write_atomic(&metadata.join("root.json"), &newest).map_err(internal)?;
        let seq = block_on(store.commit(lock, &files)).map_err(store_err)?;
        record_synced(dir, seq)
    }

    /// Brings the working copy's metadata up to the last committed publish, and the local
    /// floor of signed versions up to the shared one.
    fn pull(&mut self, dir: &Path, store: &Shared) -> Result<(), PushError> {
        let Held::Shared(lock) = &self.held else {
            return Ok(());
        };
        let (files, seq) = block_on(store.published_since(lock, synced(dir))).map_err(store_err)?;
        let (snapshot, timestamp) = block_on(store.raise_floor(lock, 0, 0)).map_err(store_err)?;
        OnlineFloor::record(dir, Some(snapshot), timestamp).map_err(internal)?;
        if files.is_empty() {
            return Ok(());
        }
        let from_scratch = synced(dir) == 0;
        forget_synced(dir)?;
        pull_log(dir, store, &files, from_scratch)?;
        let metadata = dir.join(PUBLISHED_DIR).join("metadata");
        std::fs::create_dir_all(&metadata).map_err(internal)?;
        // Versioned files first, then root.json, and timestamp.json last: the order a
        // publish writes them in, so the working copy is never ahead of itself.
        let rank = |p: &str| match p {
            "metadata/timestamp.json" => 2,
            "metadata/root.json" => 1,
            _ => 0,
        };
        let mut wanted: Vec<&PublishedFile> = files
            .iter()
            .filter(|f| f.path.starts_with("metadata/"))
            .collect();
        wanted.sort_by_key(|f| rank(&f.path));
        for f in wanted {
            let name = f
                .path
                .strip_prefix("metadata/")
                .filter(|n| !n.contains('/') && !n.starts_with('.'))
                .ok_or_else(|| internal(format!("the shared store lists {}", f.path)))?;
            let bytes: Bytes =
                block_on(store.object(&f.sha256, MAX_ROLE_BYTES as u64)).map_err(store_err)?;
            fsutil::write_atomic(&metadata.join(name), &bytes).map_err(internal)?;
        }
        record_synced(dir, seq)
    }

    /// The next snapshot (when one is signed) and timestamp versions: above what is
    /// published and above every version sent to be signed, by any replica; recorded
    /// (locally and, shared, in the database) before they are signed.
    pub fn next_online_versions(
        &mut self,
        published_snapshot: Option<u64>,
        published_timestamp: u64,
    ) -> Result<(Option<u64>, u64), PushError> {
        let dir = self.dir().to_path_buf();
        let floor = OnlineFloor::load(&dir).map_err(internal)?;
        let snapshot = match published_snapshot {
            Some(v) => Some(
                floor
                    .next_snapshot(Some(v))
                    .ok_or_else(|| internal("snapshot version overflow"))?,
            ),
            None => None,
        };
        let timestamp = floor
            .next_timestamp(Some(published_timestamp))
            .ok_or_else(|| internal("timestamp version overflow"))?;
        OnlineFloor::record(&dir, snapshot, timestamp).map_err(internal)?;
        if let (Held::Shared(lock), Storage::Shared { store, .. }) = (&self.held, self.storage) {
            block_on(store.raise_floor(lock, snapshot.unwrap_or(0), timestamp))
                .map_err(store_err)?;
        }
        Ok((snapshot, timestamp))
    }

    /// The local file of blob `sha256`, fetched from the shared store when another replica
    /// took the upload. (A blob nobody uploaded is left missing, for the caller to refuse.)
    pub fn blob_file(&mut self, sha256: &str) -> Result<PathBuf, PushError> {
        let path = staging::blob_path(self.dir(), sha256);
        if let Storage::Shared { store, .. } = self.storage {
            if !path.is_file() {
                if let Some(blob) = store.blob(sha256).map_err(store_err)? {
                    block_on(store.object_to_file(sha256, &path, blob.length))
                        .map_err(store_err)?;
                }
            }
        }
        Ok(path)
    }

    /// The data directory, about to have the transparency log's files written into its
    /// working copy: a shared session forgets its synchronised state first, so a replica
    /// killed before [`Session::publish_log`] commits them resynchronises from scratch.
    pub fn log_dir_for_writing(&mut self) -> Result<PathBuf, PushError> {
        let dir = self.dir().to_path_buf();
        if let Held::Shared(_) = self.held {
            forget_synced(&dir)?;
        }
        Ok(dir)
    }

    /// Publishes what the transparency log just wrote into the working copy: for an
    /// embedded store those are the served files already; a shared store gets them
    /// uploaded and committed in one transaction with the new entries' index, so every
    /// replica serves one log and answers proofs of every entry.
    pub fn publish_log(
        &mut self,
        integrated: &crate::translog::Integrated,
    ) -> Result<(), PushError> {
        let dir = self.dir().to_path_buf();
        let (Held::Shared(lock), Storage::Shared { store, .. }) = (&mut self.held, self.storage)
        else {
            return Ok(());
        };
        let shas = block_on(
            store.put_objects(
                integrated
                    .files
                    .iter()
                    .map(|(_, b)| Bytes::copy_from_slice(b))
                    .collect(),
            ),
        )
        .map_err(store_err)?;
        let files: Vec<PublishedFile> = integrated
            .files
            .iter()
            .zip(shas)
            .map(|((rel, bytes), sha256)| PublishedFile {
                path: format!("log/{rel}"),
                sha256,
                length: bytes.len() as u64,
            })
            .collect();
        let seq =
            block_on(store.commit_with_log(lock, &files, &integrated.leaves)).map_err(store_err)?;
        record_synced(&dir, seq)
    }

    /// Makes a signed state live: targets (`blobs`: SHA-256 and target path), versioned
    /// metadata `files`, then `timestamp.json`.
    pub fn write(
        &mut self,
        blobs: &[(String, String)],
        files: &[(String, Vec<u8>)],
        timestamp: &[u8],
    ) -> Result<(), PushError> {
        let dir = self.dir().to_path_buf();
        let (Held::Shared(lock), Storage::Shared { store, .. }) = (&mut self.held, self.storage)
        else {
            return write_tree(&dir, blobs, files, None, timestamp).map_err(internal);
        };
        forget_synced(&dir)?;
        write_tree(&dir, blobs, files, None, timestamp).map_err(internal)?;
        let mut published = Vec::with_capacity(blobs.len() + files.len() + 1);
        for (sha256, path) in blobs {
            let local = staging::blob_path(&dir, sha256);
            let length = std::fs::metadata(&local).map_err(internal)?.len();
            // A blob is recorded only once it is in the object store (`Storage::keep_blob`).
            if store.blob(sha256).map_err(store_err)?.is_none() {
                block_on(store.put_file(sha256, &local, length)).map_err(store_err)?;
            }
            published.push(PublishedFile {
                path: format!(
                    "targets/{}",
                    sealwright_tuf::layout::target_file(path, sha256)
                ),
                sha256: sha256.clone(),
                length,
            });
        }
        let mut metadata: Vec<(String, &[u8])> = files
            .iter()
            .map(|(name, bytes)| (format!("metadata/{name}"), bytes.as_slice()))
            .collect();
        metadata.push(("metadata/timestamp.json".into(), timestamp));
        let shas = block_on(
            store.put_objects(
                metadata
                    .iter()
                    .map(|(_, b)| Bytes::copy_from_slice(b))
                    .collect(),
            ),
        )
        .map_err(store_err)?;
        for ((path, bytes), sha256) in metadata.into_iter().zip(shas) {
            published.push(PublishedFile {
                path,
                sha256,
                length: bytes.len() as u64,
            });
        }
        let seq = block_on(store.commit(lock, &published)).map_err(store_err)?;
        record_synced(&dir, seq)
    }
}
