//! The server's transparency log (c2sp.org/tlog-tiles, served at `/log/`): every accepted
//! push appends typed entries ([`Entry`]) for the metadata files and targets it published.
//!
//! Guarantees, each enforced in one function:
//! - a push's entries are sequenced before anything of it is published
//!   (`push::sequence_before_publishing`): a server killed at any point of a push leaves
//!   nothing published that the log will not hold, and a log that cannot record refuses
//!   the push; a publish that fails after its entries were sequenced, before devices are
//!   switched to it, takes them back ([`TransparencyLog::retract`]);
//! - [`TransparencyLog::sequence`]: a batch gets its indices in one SQLite transaction
//!   ([`LogSequence`]) before anything of it is written to the tree; an entry whose index
//!   another replica of a shared store gave to its own entry meanwhile is sequenced again
//!   after the log, never dropped (`TransparencyLog::requeue_overtaken`);
//! - [`TransparencyLog::integrate`]: entry bundles and tiles are written (each atomically)
//!   before the checkpoint that names their size, so a reader never finds a checkpoint its
//!   tiles do not match, whenever the process is killed; a rerun after a kill writes the same
//!   bytes ([`sealwright_tlog::writer`]); a full tile or bundle already present with other
//!   bytes stops integration — corruption is reported, never overwritten;
//! - the checkpoint is signed by the log key in the signer agent, which signs only
//!   extensions of what it signed before: not even this process can fork the log;
//! - each witness of `DIR/witnesses.toml` is asked to cosign it (c2sp.org/tlog-witness), and
//!   only cosignatures that verify with that witness's key are attached.
//!
//! Not guaranteed: that everything logged was published. A server killed after sequencing
//! a push and before switching `timestamp.json` leaves entries for a push nobody was
//! served (its roles were signed, so the log holding them over-states, never hides); the
//! audit log has no "push" record for it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use sealwright_repo::fsutil;
use sealwright_repo::policy::Policy;
use sealwright_repo::publish::PUBLISHED_DIR;
use sealwright_repo::server_dir::LOG_VKEY_FILE;
use sealwright_store::log_sequence::{LogSequence, LogSequenceError};
use sealwright_tlog::entry::Entry;
use sealwright_tlog::merkle::consistency_proof;
use sealwright_tlog::proof::TlogProof;
use sealwright_tlog::tile::{decode_bundle, TileError, TileHashes, TileKind, TilePath, TILE_WIDTH};
use sealwright_tlog::{Checkpoint, Note, Verifier};

/// Where the log's files live, under the server directory (inside the published tree, so
/// any static server serves them too).
pub const LOG_DIR: &str = "published/log";
/// Largest tile, bundle or checkpoint read back.
pub const MAX_LOG_FILE: u64 = 64 * 1024 * 1024;

/// Why the log could not be appended to or read.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The sequence database failed.
    #[error(transparent)]
    Sequence(#[from] LogSequenceError),
    /// A file of the log could not be read or written.
    #[error("log file {path}: {source}")]
    Io {
        /// Which.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The log on disk is not what it must be (a tile rewritten with other bytes, a
    /// checkpoint that does not verify).
    #[error("the transparency log is damaged: {0}")]
    Corrupt(String),
    /// The signer agent would not sign.
    #[error("signing the checkpoint: {0}")]
    Sign(#[from] sealwright_repo::agent::AgentError),
    /// The server has no log configured correctly.
    #[error("{0}")]
    Config(String),
}

impl From<TileError> for LogError {
    fn from(e: TileError) -> Self {
        LogError::Corrupt(e.to_string())
    }
}

/// The log of one server directory.
#[derive(Debug)]
pub struct TransparencyLog {
    dir: PathBuf,
    root: PathBuf,
    key: Verifier,
    agent: PathBuf,
}

impl TransparencyLog {
    /// The log of server directory `dir`, if it has one (`server setup` made its key).
    pub fn open(dir: &Path, policy: &Policy) -> Result<Option<Self>, LogError> {
        let vkey_path = dir.join(LOG_VKEY_FILE);
        let vkey = match fsutil::read_capped(&vkey_path, 64 * 1024) {
            Ok(bytes) => String::from_utf8(bytes)
                .map_err(|_| LogError::Config(format!("{} is not UTF-8", vkey_path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(LogError::Io {
                    path: vkey_path,
                    source,
                })
            }
        };
        let key = Verifier::from_vkey(vkey.trim_end())
            .map_err(|e| LogError::Config(format!("{}: {e}", vkey_path.display())))?;
        let agent = policy
            .keys
            .values()
            .find_map(|k| k.private.as_deref()?.strip_prefix("agent:"))
            .map(PathBuf::from)
            .ok_or_else(|| {
                LogError::Config(
                    "the log key is in a signer agent, but the policy names none".into(),
                )
            })?;
        Ok(Some(TransparencyLog {
            dir: dir.to_owned(),
            root: dir.join(LOG_DIR),
            key,
            agent,
        }))
    }

    /// The log's verifier key.
    pub fn key(&self) -> &Verifier {
        &self.key
    }

    fn file(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn read(&self, rel: &str) -> Result<Option<Vec<u8>>, LogError> {
        let path = self.file(rel);
        fsutil::read_capped_if_exists(&path, MAX_LOG_FILE)
            .map_err(|source| LogError::Io { path, source })
    }

    /// The current signed checkpoint, verified with the log key (none before the first).
    pub fn checkpoint(&self) -> Result<Option<Checkpoint>, LogError> {
        Ok(self.checkpoint_note()?.map(|(_, checkpoint)| checkpoint))
    }

    /// The current checkpoint note as served (with its cosignatures), and what it says,
    /// verified with the log key.
    fn checkpoint_note(&self) -> Result<Option<(Vec<u8>, Checkpoint)>, LogError> {
        verified_checkpoint(&self.key, &|rel| self.read(rel))
    }

    /// Gives `entries` their indices, durably; returns the first (none for no entries).
    pub fn sequence(&self, entries: &[Entry]) -> Result<Option<u64>, LogError> {
        if entries.is_empty() {
            return Ok(None);
        }
        let bytes = entries
            .iter()
            .map(Entry::to_bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| LogError::Corrupt(e.to_string()))?;
        let size = self.checkpoint()?.map_or(0, |c| c.size);
        let first = LogSequence::open(&self.dir)?.append(
            size,
            &bytes,
            sealwright_tlog::merkle::leaf_hash,
        )?;
        Ok(Some(first))
    }

    /// Takes back the entries [`TransparencyLog::sequence`] gave indices from `first` on:
    /// a publish that failed after sequencing them published nothing for the log to claim.
    /// Entries a checkpoint holds are refused ([`LogSequence::retract`]).
    pub fn retract(&self, first: u64) -> Result<(), LogError> {
        let size = self.checkpoint()?.map_or(0, |c| c.size);
        LogSequence::open(&self.dir)?.retract(first, size)?;
        Ok(())
    }

    /// The top-level metadata files the server publishes — every root version, and the
    /// timestamp, snapshot and targets it serves now — that the log does not hold yet: what
    /// `server setup`, offline signing and the renewal of online roles published outside a
    /// push. Logging them too makes the log hold every version a client can be shown.
    pub fn unlogged_published(&self) -> Result<Vec<Entry>, LogError> {
        use sealwright_tuf::{Metadata, Snapshot, Timestamp};
        let metadata = self.dir.join(PUBLISHED_DIR).join("metadata");
        let read = |name: &str| -> Result<Option<Vec<u8>>, LogError> {
            let path = metadata.join(name);
            fsutil::read_capped_if_exists(&path, MAX_LOG_FILE)
                .map_err(|source| LogError::Io { path, source })
        };
        let corrupt = |name: &str, e: sealwright_tuf::MetadataError| {
            LogError::Corrupt(format!("published {name}: {e}"))
        };
        let mut files = Vec::new();
        for version in 1.. {
            let name = sealwright_tuf::layout::metadata_file("root", version);
            let Some(bytes) = read(&name)? else { break };
            files.push(("root", version, bytes));
        }
        if let Some(bytes) = read("timestamp.json")? {
            let timestamp = Metadata::<Timestamp>::from_bytes(&bytes, MAX_LOG_FILE as usize)
                .map_err(|e| corrupt("timestamp.json", e))?;
            if let Some(snapshot_version) = timestamp
                .signed
                .meta
                .get("snapshot.json")
                .map(|m| m.version)
            {
                let name = sealwright_tuf::layout::metadata_file("snapshot", snapshot_version);
                if let Some(snapshot_bytes) = read(&name)? {
                    let snapshot =
                        Metadata::<Snapshot>::from_bytes(&snapshot_bytes, MAX_LOG_FILE as usize)
                            .map_err(|e| corrupt(&name, e))?;
                    if let Some(targets) = snapshot.signed.meta.get("targets.json") {
                        let name =
                            sealwright_tuf::layout::metadata_file("targets", targets.version);
                        if let Some(b) = read(&name)? {
                            files.push(("targets", targets.version, b));
                        }
                    }
                    files.push(("snapshot", snapshot_version, snapshot_bytes));
                }
            }
            files.push(("timestamp", timestamp.signed.version, bytes));
        }
        let sequence = LogSequence::open(&self.dir)?;
        let mut unlogged = Vec::new();
        for (role, version, bytes) in files {
            let entry = Entry::Metadata {
                role: role.to_owned(),
                version,
                length: bytes.len() as u64,
                sha256: sealwright_crypto::digest::sha256_hex(&bytes),
            };
            let leaf = entry
                .leaf_hash()
                .map_err(|e| LogError::Corrupt(e.to_string()))?;
            if sequence.index_of(&leaf)?.is_none() {
                unlogged.push(entry);
            }
        }
        Ok(unlogged)
    }

    /// Writes the sequenced entries into the tiles, then a signed checkpoint of them.
    /// Returns what it wrote (none when nothing was pending and a checkpoint exists): a
    /// shared store publishes the same files for every replica.
    pub fn integrate(&self) -> Result<Option<Integrated>, LogError> {
        let old = self.checkpoint()?;
        let old_size = old.as_ref().map_or(0, |c| c.size);
        let mut sequence = LogSequence::open(&self.dir)?;
        self.requeue_overtaken(&mut sequence, old_size)?;
        let pending = sequence.pending(old_size)?;
        if pending.is_empty() && old.is_some() {
            return Ok(None);
        }
        let partial_bundle = match old_size % TILE_WIDTH {
            0 => Vec::new(),
            width => {
                let path = TilePath {
                    kind: TileKind::Entries,
                    index: old_size / TILE_WIDTH,
                    width: width as u16,
                };
                self.read(&path.to_string())?
                    .ok_or_else(|| LogError::Corrupt(format!("{path} is missing")))?
            }
        };
        let old_partial = decode_bundle(&partial_bundle)?;
        let refs: Vec<&[u8]> = pending.iter().map(Vec::as_slice).collect();
        let mut old_tiles = TileHashes::new(old_size, |t: &TilePath| self.tile(t));
        let growth = sealwright_tlog::writer::grow(&mut old_tiles, old_size, &old_partial, &refs)?;
        for (path, bytes) in &growth.files {
            self.write_tile(path, bytes)?;
        }
        let mut new_tiles = TileHashes::new(growth.size, |t: &TilePath| self.tile(t));
        let proof = consistency_proof(&mut new_tiles, old_size, growth.size)?;
        let checkpoint = Checkpoint {
            origin: self.key.name().to_owned(),
            size: growth.size,
            root: growth.root,
            extensions: Vec::new(),
        };
        let text = checkpoint.to_text();
        let sign = |proof: &[sealwright_tlog::Hash]| {
            sealwright_repo::agent::request_checkpoint_signature(
                &self.agent,
                &self.key,
                &text,
                proof,
            )
        };
        let signature = match sign(&proof) {
            // Killed after the agent signed a later checkpoint and before it was written:
            // the agent asks for consistency from what it signed, which these tiles extend
            // (the same sequenced entries give the same tree).
            Err(sealwright_repo::agent::AgentError::LogSigned { signed_size, .. })
                if signed_size != old_size && signed_size <= growth.size =>
            {
                let from_signed = consistency_proof(&mut new_tiles, signed_size, growth.size)?;
                sign(&from_signed)?
            }
            other => other?,
        };
        let mut note = Note::new(&text).map_err(|e| LogError::Corrupt(e.to_string()))?;
        note.add_signature(signature);
        // Witnesses cosign what they can check is an extension of what they cosigned; one
        // that cannot be reached or refuses is reported, and the checkpoint is published
        // with the cosignatures there are (devices decide what quorum they need). They are
        // asked all at once: this runs under the publish lock, and a witness that hangs
        // must cost every push one timeout, not one per witness.
        let witnesses = Witnesses::load(&self.dir)?.witness;
        let tiles = std::sync::Mutex::new(&mut new_tiles);
        let proof = |old: u64| -> Result<Vec<sealwright_tlog::Hash>, String> {
            let mut tiles = tiles
                .lock()
                .map_err(|_| "a witness request failed".to_owned())?;
            consistency_proof(&mut **tiles, old, growth.size).map_err(|e| e.to_string())
        };
        let answers: Vec<Result<_, String>> = std::thread::scope(|scope| {
            let asking: Vec<_> = witnesses
                .iter()
                .map(|w| scope.spawn(|| cosign(w, &note, old_size, growth.size, &proof)))
                .collect();
            asking
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err("the request failed".into()))
                })
                .collect()
        });
        for (witness, answer) in witnesses.iter().zip(answers) {
            match answer {
                Ok(cosignatures) => cosignatures.into_iter().for_each(|c| note.add_signature(c)),
                Err(e) => eprintln!("sealwright serve: witness {}: {e}", witness.url),
            }
        }
        let path = self.file("checkpoint");
        let note_bytes = note.to_bytes();
        fsutil::write_atomic(&path, &note_bytes).map_err(|source| LogError::Io { path, source })?;
        sequence.forget_below(growth.size)?;
        let leaves = pending
            .iter()
            .zip(old_size..)
            .map(|(entry, index)| (sealwright_tlog::merkle::leaf_hash(entry), index))
            .collect();
        let mut files: Vec<(String, Vec<u8>)> = growth
            .files
            .into_iter()
            .map(|(path, bytes)| (path.to_string(), bytes))
            .collect();
        files.push(("checkpoint".to_owned(), note_bytes));
        Ok(Some(Integrated {
            checkpoint,
            files,
            leaves,
        }))
    }

    /// Settles what this server sequenced below the log's `size`: an entry the log holds at
    /// its index was integrated by a process killed before it forgot it; one the log does
    /// not hold there was overtaken — another replica of the shared store gave the index to
    /// its own entry while this one was down or killed — and is sequenced again after the
    /// log. Without this the overtaken entries would be dropped: published, never logged.
    fn requeue_overtaken(&self, sequence: &mut LogSequence, size: u64) -> Result<(), LogError> {
        let below = sequence.pending_below(size)?;
        if below.is_empty() {
            return Ok(());
        }
        let mut bundles: std::collections::BTreeMap<u64, Vec<Vec<u8>>> = Default::default();
        let mut overtaken = Vec::new();
        for (index, entry) in below {
            let bundle = index / TILE_WIDTH;
            if let std::collections::btree_map::Entry::Vacant(slot) = bundles.entry(bundle) {
                let path = TilePath {
                    kind: TileKind::Entries,
                    index: bundle,
                    width: (size - bundle * TILE_WIDTH).min(TILE_WIDTH) as u16,
                };
                let bytes = self
                    .read(&path.to_string())?
                    .ok_or_else(|| LogError::Corrupt(format!("{path} is missing")))?;
                slot.insert(
                    decode_bundle(&bytes)?
                        .into_iter()
                        .map(<[u8]>::to_vec)
                        .collect(),
                );
            }
            let logged = bundles
                .get(&bundle)
                .and_then(|b| b.get((index % TILE_WIDTH) as usize));
            if logged != Some(&entry) {
                overtaken.push((index, entry));
            }
        }
        if !overtaken.is_empty() {
            eprintln!(
                "sealwright serve: {} log entries sequenced here were overtaken by another replica; they are logged again after entry {size}",
                overtaken.len()
            );
        }
        sequence.requeue(size, &overtaken, sealwright_tlog::merkle::leaf_hash)?;
        Ok(())
    }

    /// The c2sp.org/tlog-proof of entry `index` at the current checkpoint (with its
    /// cosignatures), from the log's files as `read` gives them (this server's, or the
    /// shared store every replica writes); none when the entry is not in it yet.
    pub fn proof_of(
        &self,
        index: u64,
        read: &ReadLogFile<'_>,
    ) -> Result<Option<TlogProof>, LogError> {
        let Some((note, Checkpoint { size, .. })) = verified_checkpoint(&self.key, read)? else {
            return Ok(None);
        };
        if index >= size {
            return Ok(None);
        }
        let mut tiles = TileHashes::new(size, |t: &TilePath| {
            read(&t.to_string())?.ok_or_else(|| LogError::Corrupt(format!("{t} is missing")))
        });
        let path = sealwright_tlog::merkle::inclusion_proof(&mut tiles, index, size)?;
        Ok(Some(TlogProof {
            extra: None,
            index,
            path,
            checkpoint: note,
        }))
    }

    /// The index of the entry whose leaf hash is `leaf`, as this server sequenced it.
    pub fn index_of(&self, leaf: &sealwright_tlog::Hash) -> Result<Option<u64>, LogError> {
        Ok(LogSequence::open(&self.dir)?.index_of(leaf)?)
    }

    /// A file of the log in this server's directory (`checkpoint`, a tile path).
    pub fn local_file(&self, rel: &str) -> Result<Option<Vec<u8>>, LogError> {
        self.read(rel)
    }

    fn tile(&self, t: &TilePath) -> Result<Vec<u8>, LogError> {
        self.read(&t.to_string())?
            .ok_or_else(|| LogError::Corrupt(format!("{t} is missing")))
    }

    /// Writes one tile or bundle; a full one already there must hold the same bytes.
    fn write_tile(&self, t: &TilePath, bytes: &[u8]) -> Result<(), LogError> {
        if t.is_full() {
            if let Some(existing) = self.read(&t.to_string())? {
                if existing == bytes {
                    return Ok(());
                }
                return Err(LogError::Corrupt(format!(
                    "{t} exists with other bytes; a full tile never changes"
                )));
            }
        }
        let path = self.file(&t.to_string());
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| LogError::Io {
                path: parent.to_owned(),
                source,
            })?;
        }
        fsutil::write_atomic(&path, bytes).map_err(|source| LogError::Io { path, source })
    }
}

/// Reads a file of the log by its path under the log (`checkpoint`, a tile path); none
/// when it does not exist.
pub type ReadLogFile<'a> = dyn Fn(&str) -> Result<Option<Vec<u8>>, LogError> + 'a;

/// What one integration wrote.
#[derive(Debug)]
pub struct Integrated {
    /// The new checkpoint.
    pub checkpoint: Checkpoint,
    /// Every file written, by its path under the log (tiles and bundles first, `checkpoint`
    /// last), with its bytes.
    pub files: Vec<(String, Vec<u8>)>,
    /// The new entries' leaf hashes and indices.
    pub leaves: Vec<(sealwright_tlog::Hash, u64)>,
}

/// The checkpoint `read` gives, verified with `key`: its note bytes as served and what it
/// says; none before the first.
fn verified_checkpoint(
    key: &Verifier,
    read: &ReadLogFile<'_>,
) -> Result<Option<(Vec<u8>, Checkpoint)>, LogError> {
    let Some(bytes) = read("checkpoint")? else {
        return Ok(None);
    };
    let corrupt = |e: sealwright_tlog::NoteError| LogError::Corrupt(format!("checkpoint: {e}"));
    let note = Note::parse(&bytes).map_err(corrupt)?;
    note.verify(std::slice::from_ref(key)).map_err(corrupt)?;
    let checkpoint = Checkpoint::parse(note.text()).map_err(corrupt)?;
    Ok(Some((bytes, checkpoint)))
}

/// The witnesses a server submits its checkpoints to, `DIR/witnesses.toml`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Witnesses {
    /// Each witness: its `add-checkpoint` prefix and verifier key.
    #[serde(default)]
    pub witness: Vec<WitnessEntry>,
}

/// One witness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessEntry {
    /// Its submission prefix (`http://HOST:PORT`; `/add-checkpoint` is appended).
    pub url: String,
    /// Its cosignature verifier key.
    pub vkey: String,
}

/// The witnesses file in a server directory.
pub const WITNESSES_FILE: &str = "witnesses.toml";
/// Largest answer read from a witness.
const MAX_WITNESS_ANSWER: u64 = 64 * 1024;

impl Witnesses {
    /// The witnesses of server directory `dir` (none when it has no file).
    pub fn load(dir: &Path) -> Result<Self, LogError> {
        let path = dir.join(WITNESSES_FILE);
        match fsutil::read_capped(&path, 1024 * 1024) {
            Ok(bytes) => {
                let text = String::from_utf8(bytes)
                    .map_err(|_| LogError::Config(format!("{} is not UTF-8", path.display())))?;
                toml::from_str(&text)
                    .map_err(|e| LogError::Config(format!("{}: {e}", path.display())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Witnesses::default()),
            Err(source) => Err(LogError::Io { path, source }),
        }
    }

    /// Adds (or replaces, by URL) a witness, checking its key.
    pub fn add(dir: &Path, url: &str, vkey: &str) -> Result<Verifier, LogError> {
        let verifier =
            Verifier::from_vkey(vkey).map_err(|e| LogError::Config(format!("--vkey: {e}")))?;
        if verifier.kind() != sealwright_tlog::note::KeyKind::Cosignature {
            return Err(LogError::Config(
                "that is not a witness key (cosignature/v1, type 0x04)".into(),
            ));
        }
        // A cosignature carries its own signature, so plain HTTP loses nothing a device
        // checks; the client here has no TLS stack of its own yet.
        if !url.starts_with("http://") {
            return Err(LogError::Config(format!(
                "{url}: give the witness's http:// URL (https witnesses are not supported yet)"
            )));
        }
        let mut all = Self::load(dir)?;
        all.witness.retain(|w| w.url != url);
        all.witness.push(WitnessEntry {
            url: url.trim_end_matches('/').to_owned(),
            vkey: verifier.vkey(),
        });
        let text = toml::to_string_pretty(&all).map_err(|e| LogError::Config(e.to_string()))?;
        let path = dir.join(WITNESSES_FILE);
        fsutil::write_atomic(&path, text.as_bytes())
            .map_err(|source| LogError::Io { path, source })?;
        Ok(verifier)
    }
}

/// Asks `witness` to cosign `note` (a checkpoint of `size`, signed by the log, whose
/// previous checkpoint had `previous` entries; `proof_from(old)` proves `size` extends
/// `old`); returns its checked cosignatures. A witness
/// that last cosigned another size says so (409), and is asked once more with a proof from
/// that size.
fn cosign(
    witness: &WitnessEntry,
    note: &Note,
    previous: u64,
    size: u64,
    proof_from: &(dyn Fn(u64) -> Result<Vec<sealwright_tlog::Hash>, String> + Sync),
) -> Result<Vec<sealwright_tlog::note::NoteSignature>, String> {
    let verifier = Verifier::from_vkey(&witness.vkey).map_err(|e| e.to_string())?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("{}/add-checkpoint", witness.url);
    let mut old = previous;
    for _ in 0..2 {
        if old > size {
            return Err(format!(
                "it cosigned size {old}, above this log's {size}: a fork, or another log"
            ));
        }
        let proof = proof_from(old)?;
        let body = sealwright_tlog::witness::AddCheckpoint {
            old_size: old,
            proof,
            checkpoint: note.to_bytes(),
        }
        .to_body();
        let resp = agent
            .post(&url)
            .send(&body[..])
            .map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status().as_u16();
        let answer = resp
            .into_body()
            .with_config()
            .limit(MAX_WITNESS_ANSWER)
            .read_to_vec()
            .map_err(|e| format!("{url}: {e}"))?;
        match status {
            200 => {
                return sealwright_tlog::witness::cosignatures_from_answer(
                    &answer,
                    note.text(),
                    &verifier,
                )
                .map_err(|e| format!("{url}: its cosignature: {e}"));
            }
            409 => {
                old = std::str::from_utf8(&answer)
                    .ok()
                    .and_then(|t| t.trim_end().parse().ok())
                    .ok_or_else(|| format!("{url}: 409 without a size"))?;
            }
            _ => {
                return Err(format!(
                    "{url}: {status} {}",
                    String::from_utf8_lossy(&answer).trim_end()
                ))
            }
        }
    }
    Err(format!("{url}: its size kept changing"))
}
