//! C6: a device that requires the transparency log installs a release only when the log
//! shows it — the artifact's entry and the entry of the exact targets metadata that lists
//! it are included in a checkpoint signed by the log's key and cosigned by a quorum of the
//! configured witnesses — and only when that checkpoint extends the last one this device
//! saw (a log that shows this device a different history, a split view, is refused).
//!
//! Guarantees, each in one function:
//! - [`require_logged`]: every statement is proven with a c2sp.org/tlog-proof from the
//!   server, verified here against the configured keys (never against anything the server
//!   says about keys);
//! - [`check_consistent`]: the newest checkpoint is consistent with the one stored in
//!   `DIR/log-checkpoint.json`, proven from the log's tiles (fetched from the server, checked
//!   against both signed roots), then stored atomically; a smaller tree than the one seen is
//!   refused.
//!
//! Not guaranteed: freshness. A log that stops growing, or a server that serves an old (but
//! consistent) checkpoint, is not detected here; monitors and witnesses' timestamps are for
//! that.

use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

use sealwright_tlog::entry::Entry;
use sealwright_tlog::merkle::{consistency_proof, verify_consistency, Hash};
use sealwright_tlog::proof::{TlogProof, MAX_PROOF_BYTES};
use sealwright_tlog::tile::{TileError, TileHashes, TilePath, FULL_TILE_BYTES};
use sealwright_tlog::{Checkpoint, Verifier};

use super::InstallError;
use crate::fetch::Fetcher;

/// What a device requires of the log (`client init --log-key --witness --witness-quorum`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogPolicy {
    /// The log's verifier key (`sealwright log key`).
    pub key: String,
    /// Witnesses' verifier keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub witnesses: Vec<String>,
    /// How many of them must have cosigned.
    #[serde(default)]
    pub quorum: usize,
}

/// The last checkpoint this device accepted.
pub const SEEN_FILE: &str = "log-checkpoint.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Seen {
    size: u64,
    root: String,
}

fn refuse(message: String) -> InstallError {
    InstallError::new("log", message)
}

impl LogPolicy {
    /// Checks the keys and the quorum.
    pub fn new(key: &str, witnesses: &[String], quorum: usize) -> Result<Self, String> {
        let log = Verifier::from_vkey(key).map_err(|e| format!("--log-key: {e}"))?;
        if log.kind() != sealwright_tlog::note::KeyKind::Ed25519 {
            return Err("--log-key: a log's key is Ed25519 (signed-note type 0x01)".into());
        }
        for w in witnesses {
            let v = Verifier::from_vkey(w).map_err(|e| format!("--witness {w}: {e}"))?;
            if v.kind() != sealwright_tlog::note::KeyKind::Cosignature {
                return Err(format!("--witness {w}: not a witness key (cosignature/v1)"));
            }
        }
        if quorum > witnesses.len() {
            return Err(format!(
                "--witness-quorum {quorum} is more than the {} witnesses given",
                witnesses.len()
            ));
        }
        Ok(LogPolicy {
            key: log.vkey(),
            witnesses: witnesses.to_vec(),
            quorum,
        })
    }

    fn keys(&self) -> Result<(Verifier, Vec<Verifier>), InstallError> {
        let bad = |e: sealwright_tlog::NoteError| refuse(format!("client.toml's log keys: {e}"));
        let log = Verifier::from_vkey(&self.key).map_err(bad)?;
        let witnesses = self
            .witnesses
            .iter()
            .map(|w| Verifier::from_vkey(w).map_err(bad))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((log, witnesses))
    }
}

/// Requires every entry of `entries` in the log at `log_url` (ending in `/`), then the
/// log's consistency with what this device saw in `dir`.
pub(crate) fn require_logged<F: Fetcher>(
    dir: &Path,
    policy: &LogPolicy,
    fetcher: &F,
    log_url: &str,
    entries: &[Entry],
) -> Result<(), InstallError> {
    let (log, witnesses) = policy.keys()?;
    let mut newest: Option<Checkpoint> = None;
    for entry in entries {
        let bytes = entry
            .to_bytes()
            .map_err(|e| refuse(format!("an entry: {e}")))?;
        let leaf = sealwright_tlog::merkle::leaf_hash(&bytes);
        let url = format!("{log_url}proof/{}", hex::encode(leaf));
        let proof = fetcher.fetch(&url, MAX_PROOF_BYTES as u64).map_err(|e| {
            refuse(format!(
                "{} is not in the transparency log ({url}: {e}); nothing was installed",
                describe(entry)
            ))
        })?;
        let checkpoint = TlogProof::parse(&proof)
            .and_then(|p| p.verify(&leaf, &log, &witnesses, policy.quorum))
            .map_err(|e| {
                refuse(format!(
                    "the transparency log's proof for {}: {e}; nothing was installed",
                    describe(entry)
                ))
            })?;
        if newest.as_ref().is_none_or(|n| checkpoint.size > n.size) {
            newest = Some(checkpoint);
        }
    }
    match newest {
        Some(cp) => check_consistent(dir, fetcher, log_url, &cp),
        None => Ok(()),
    }
}

fn describe(entry: &Entry) -> String {
    match entry {
        Entry::Target { path, .. } => format!("the artifact {path}"),
        Entry::Metadata { role, version, .. } => format!("{role} version {version}"),
        Entry::AuditHead { .. } => "an audit head".to_owned(),
    }
}

/// The checkpoint extends the one stored in `dir` (proven from the log's tiles); stores it.
fn check_consistent<F: Fetcher>(
    dir: &Path,
    fetcher: &F,
    log_url: &str,
    checkpoint: &Checkpoint,
) -> Result<(), InstallError> {
    let path = dir.join(SEEN_FILE);
    let seen: Option<Seen> = match sealwright_fs::read_capped(&path, 64 * 1024) {
        Ok(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| {
            refuse(format!(
                "{} is corrupt ({e}); it is how this device detects a split view of the log",
                path.display()
            ))
        })?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(refuse(format!("reading {}: {e}", path.display()))),
    };
    if let Some(seen) = seen.as_ref().filter(|s| s.size > 0) {
        let seen_root: Hash = B64
            .decode(&seen.root)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or_else(|| refuse(format!("{} is corrupt", path.display())))?;
        if checkpoint.size < seen.size {
            return Err(refuse(format!(
                "the log shows {} entries, fewer than the {} this device saw before: a rollback or a split view; nothing was installed",
                checkpoint.size, seen.size
            )));
        }
        let mut tiles = TileHashes::new(checkpoint.size, |t: &TilePath| {
            fetcher
                .fetch(&format!("{log_url}{t}"), FULL_TILE_BYTES as u64)
                .map_err(|e| TileError::Missing(format!("{t}: {e}")))
        });
        let proof = consistency_proof(&mut tiles, seen.size, checkpoint.size)
            .map_err(|e| refuse(format!("reading the log's tiles: {e}")))?;
        verify_consistency(seen.size, checkpoint.size, &proof, &seen_root, &checkpoint.root)
            .map_err(|e| {
                refuse(format!(
                    "the log's checkpoint of {} entries does not extend the one of {} this device saw ({e}): a split view; nothing was installed",
                    checkpoint.size, seen.size
                ))
            })?;
    }
    let next = Seen {
        size: checkpoint.size,
        root: B64.encode(checkpoint.root),
    };
    let bytes = serde_json::to_vec_pretty(&next).map_err(|e| refuse(e.to_string()))?;
    sealwright_fs::write_atomic(&path, &bytes)
        .map_err(|e| refuse(format!("storing {}: {e}", path.display())))
}
