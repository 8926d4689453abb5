//! c2sp.org/tlog-witness: the `add-checkpoint` exchange, both sides, without I/O.
//!
//! A witness cosigns a log's checkpoint only after checking that it extends the last one it
//! cosigned for that log; clients that require a quorum of witnesses are then safe from a
//! log showing them a split view. [`decide`] makes the witness's checks in the
//! specification's order, each failure named with its HTTP status:
//!
//! | check | status |
//! |---|---|
//! | the origin is a known log | 404 |
//! | a trusted log signature verifies, and none fails | 403 |
//! | the request parses; `old` ≤ the checkpoint's size | 400 |
//! | `old` is the size this witness last cosigned (0 if never) | 409, body `SIZE\n` |
//! | the proof: empty from 0 (and an empty tree has the empty root), else a valid consistency proof; at equal sizes, equal roots | 422 |
//!
//! What the caller must add: persisting the new state *before* answering, with the
//! compare-and-store of the size atomic (two requests racing must not both pass the 409
//! check), and signing the cosignature ([`crate::note::sign`] with a cosignature key).

use crate::checkpoint::Checkpoint;
use crate::merkle::{empty_root, verify_consistency, Hash};
use crate::note::{Note, NoteSignature, Verifier};

/// Most proof lines a request may carry (the specification's bound).
pub const MAX_PROOF_LINES: usize = 63;
/// Largest request body.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// The content type of a 409 answer's body.
pub const SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";

/// An `add-checkpoint` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The size the submitter believes the witness last cosigned.
    pub old_size: u64,
    /// Consistency proof from `old_size` to the checkpoint's size.
    pub proof: Vec<Hash>,
    /// The signed checkpoint note.
    pub checkpoint: Vec<u8>,
}

/// Why a witness refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The origin is not a log this witness follows.
    #[error("unknown log {0}")]
    UnknownLog(String),
    /// No trusted log signature verifies, or one fails.
    #[error("the checkpoint's log signature: {0}")]
    BadSignature(String),
    /// The request does not parse, or `old` is above the checkpoint's size.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// `old` is not what the witness last cosigned; the answer carries that size.
    #[error("the witness last cosigned size {0}")]
    Conflict(u64),
    /// The proof does not show the checkpoint extends what was cosigned.
    #[error("not consistent with what the witness cosigned: {0}")]
    Inconsistent(String),
}

impl Refusal {
    /// The HTTP status the specification gives this refusal.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::UnknownLog(_) => 404,
            Refusal::BadSignature(_) => 403,
            Refusal::BadRequest(_) => 400,
            Refusal::Conflict(_) => 409,
            Refusal::Inconsistent(_) => 422,
        }
    }
}

impl AddCheckpoint {
    /// Parses a request body.
    pub fn parse(body: &[u8]) -> Result<Self, Refusal> {
        let bad = |m: &str| Refusal::BadRequest(m.to_owned());
        let (head, checkpoint) =
            crate::lines::header_and_note(body, MAX_REQUEST_BYTES).map_err(bad)?;
        let mut lines = head.split('\n');
        let old = lines
            .next()
            .and_then(|l| l.strip_prefix("old "))
            .ok_or_else(|| bad("the first line is not 'old SIZE'"))?;
        if old.is_empty()
            || (old.len() > 1 && old.starts_with('0'))
            || !old.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad("the old size is not a decimal without leading zeros"));
        }
        let old_size = old
            .parse()
            .map_err(|_| bad("the old size is not a 64-bit decimal"))?;
        let proof = crate::lines::hashes(lines).map_err(bad)?;
        if proof.len() > MAX_PROOF_LINES {
            return Err(bad("more than 63 proof lines"));
        }
        Ok(AddCheckpoint {
            old_size,
            proof,
            checkpoint: checkpoint.as_bytes().to_vec(),
        })
    }

    /// The request body.
    pub fn to_body(&self) -> Vec<u8> {
        let mut out = format!("old {}\n", self.old_size);
        crate::lines::write_hashes(&mut out, &self.proof);
        out.push('\n');
        let mut out = out.into_bytes();
        out.extend_from_slice(&self.checkpoint);
        out
    }
}

/// What a witness last cosigned for a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cosigned {
    /// Tree size.
    pub size: u64,
    /// Its root.
    pub root: Hash,
}

/// The witness's checks (module notes). `logs` are the trusted log keys (a log's origin is
/// its key's name); `last` is what this witness last cosigned for an origin. Returns the
/// verified checkpoint (the caller stores it, then cosigns its note text).
pub fn decide(
    request: &AddCheckpoint,
    logs: &[Verifier],
    last: impl FnOnce(&str) -> Option<Cosigned>,
) -> Result<(Checkpoint, Note), Refusal> {
    let note = Note::parse(&request.checkpoint)
        .map_err(|e| Refusal::BadRequest(format!("the checkpoint: {e}")))?;
    let origin = note.text().split('\n').next().unwrap_or_default();
    let keys: Vec<Verifier> = logs
        .iter()
        .filter(|k| k.name() == origin)
        .cloned()
        .collect();
    if keys.is_empty() {
        return Err(Refusal::UnknownLog(origin.to_owned()));
    }
    note.verify(&keys)
        .map_err(|e| Refusal::BadSignature(e.to_string()))?;
    let checkpoint = Checkpoint::parse(note.text())
        .map_err(|e| Refusal::BadRequest(format!("the checkpoint: {e}")))?;
    if request.old_size > checkpoint.size {
        return Err(Refusal::BadRequest(format!(
            "old size {} is above the checkpoint's {}",
            request.old_size, checkpoint.size
        )));
    }
    let previous = last(origin);
    let cosigned_size = previous.map_or(0, |p| p.size);
    if request.old_size != cosigned_size {
        return Err(Refusal::Conflict(cosigned_size));
    }
    match previous {
        Some(prev) if prev.size > 0 => {
            verify_consistency(
                prev.size,
                checkpoint.size,
                &request.proof,
                &prev.root,
                &checkpoint.root,
            )
            .map_err(|e| Refusal::Inconsistent(e.to_string()))?;
        }
        _ => {
            if !request.proof.is_empty() {
                return Err(Refusal::Inconsistent(
                    "a proof from size 0 must be empty".into(),
                ));
            }
            if checkpoint.size == 0 && checkpoint.root != empty_root() {
                return Err(Refusal::Inconsistent(
                    "an empty tree has the empty root".into(),
                ));
            }
        }
    }
    Ok((checkpoint, note))
}

/// The cosignature lines of a witness's 200 answer, each checked against `witness` over
/// `text` (the checkpoint's note text): what a submitter attaches to its checkpoint.
pub fn cosignatures_from_answer(
    answer: &[u8],
    text: &str,
    witness: &Verifier,
) -> Result<Vec<NoteSignature>, crate::note::NoteError> {
    let mut note_bytes = text.as_bytes().to_vec();
    note_bytes.push(b'\n');
    note_bytes.extend_from_slice(answer);
    let note = Note::parse(&note_bytes)?;
    note.verify(std::slice::from_ref(witness))?;
    Ok(note
        .signatures()
        .iter()
        .filter(|s| s.name == witness.name() && s.key_id == witness.key_id())
        .cloned()
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{consistency_proof, leaf_hash, tree_root};
    use crate::note::{sign, Ed25519NoteKey, KeyKind};

    const ORIGIN: &str = "example.com/log";

    fn log_key() -> Ed25519NoteKey {
        Ed25519NoteKey::from_seed(ORIGIN, KeyKind::Ed25519, &[7; 32]).unwrap()
    }

    /// A checkpoint of the first `size` entries `prefix i`, signed by `key`, and the proof to
    /// it from `from`.
    fn request(
        key: &Ed25519NoteKey,
        prefix: &str,
        old: u64,
        from: u64,
        size: u64,
    ) -> (AddCheckpoint, Hash) {
        let leaves: Vec<Hash> = (0..size)
            .map(|i| leaf_hash(format!("{prefix} {i}").as_bytes()))
            .collect();
        let mut src: &[Hash] = &leaves;
        let root = tree_root(&mut src, size).unwrap();
        let text = Checkpoint {
            origin: ORIGIN.into(),
            size,
            root,
            extensions: vec![],
        }
        .to_text();
        let mut note = Note::new(&text).unwrap();
        note.add_signature(sign(&text, key, 0).unwrap());
        let proof = consistency_proof(&mut src, from, size).unwrap();
        (
            AddCheckpoint {
                old_size: old,
                proof,
                checkpoint: note.to_bytes(),
            },
            root,
        )
    }

    fn check(req: &AddCheckpoint, last: Option<Cosigned>) -> Result<Checkpoint, Refusal> {
        let logs = [crate::note::NoteSigner::verifier(&log_key()).clone()];
        let parsed = AddCheckpoint::parse(&req.to_body())?;
        assert_eq!(&parsed, req);
        decide(&parsed, &logs, |o| {
            assert_eq!(o, ORIGIN);
            last
        })
        .map(|(cp, _)| cp)
    }

    #[test]
    fn each_check_in_order_with_its_status() {
        let key = log_key();
        let (first, root3) = request(&key, "a", 0, 0, 3);
        assert_eq!(check(&first, None).unwrap().size, 3);
        let at3 = Some(Cosigned {
            size: 3,
            root: root3,
        });
        // Stale or unknown old size: 409 with the size.
        let (stale, _) = request(&key, "a", 0, 0, 5);
        assert_eq!(check(&stale, at3), Err(Refusal::Conflict(3)));
        // A proof for another history: 422.
        let (fork, _) = request(&key, "b", 3, 3, 5);
        assert_eq!(check(&fork, at3).unwrap_err().status(), 422);
        // Same size, other root: 422.
        let (same_size, _) = request(&key, "b", 3, 3, 3);
        assert_eq!(check(&same_size, at3).unwrap_err().status(), 422);
        // old above the size: 400.
        let (above, _) = request(&key, "a", 9, 3, 5);
        assert_eq!(check(&above, at3).unwrap_err().status(), 400);
        // A valid extension.
        let (next, _) = request(&key, "a", 3, 3, 5);
        assert_eq!(check(&next, at3).unwrap().size, 5);
        // Another key under the log's name: no trusted signature, 403.
        let other = Ed25519NoteKey::from_seed(ORIGIN, KeyKind::Ed25519, &[8; 32]).unwrap();
        let (forged, _) = request(&other, "a", 3, 3, 5);
        assert_eq!(check(&forged, at3).unwrap_err().status(), 403);
        // Unknown origin: 404.
        let stranger =
            Ed25519NoteKey::from_seed("example.org/log", KeyKind::Ed25519, &[7; 32]).unwrap();
        let text = Checkpoint {
            origin: "example.org/log".into(),
            size: 0,
            root: empty_root(),
            extensions: vec![],
        }
        .to_text();
        let mut note = Note::new(&text).unwrap();
        note.add_signature(sign(&text, &stranger, 0).unwrap());
        let unknown = AddCheckpoint {
            old_size: 0,
            proof: vec![],
            checkpoint: note.to_bytes(),
        };
        let logs = [crate::note::NoteSigner::verifier(&log_key()).clone()];
        assert_eq!(decide(&unknown, &logs, |_| None).unwrap_err().status(), 404);
        // From 0 a proof must be empty.
        let (with_proof, _) = request(&key, "a", 0, 2, 5);
        assert_eq!(check(&with_proof, None).unwrap_err().status(), 422);
        // Malformed bodies: 400.
        for body in [
            &b"old 01\n\n"[..],
            b"old x\n\n",
            b"old +5\n\n",
            b"nothing",
            b"old 1\nnot-base64\n\n",
        ] {
            assert_eq!(AddCheckpoint::parse(body).unwrap_err().status(), 400);
        }
    }
}
