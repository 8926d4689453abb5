//! c2sp.org/tlog-proof@v1: an entry's inclusion proof with the (cosigned) checkpoint it
//! leads to, in one file a device or auditor checks offline.
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! [extra BASE64]
//! index N
//! BASE64 hash…            (the inclusion path, the leaf's sibling first)
//!
//! CHECKPOINT NOTE         (verbatim, with its signatures and cosignatures)
//! ```
//!
//! [`TlogProof::verify`] decides whether a leaf is in the log the verifier trusts: the
//! checkpoint signed by the log's key, of its origin, cosigned by at least `quorum` of the
//! given witnesses, and the path leading from the leaf to its root. The `extra` line is
//! unauthenticated and carried, never believed.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use crate::checkpoint::Checkpoint;
use crate::merkle::{verify_inclusion, Hash};
use crate::note::{Note, Verifier};

const HEADER: &str = "c2sp.org/tlog-proof@v1";
/// Largest proof file read.
pub const MAX_PROOF_BYTES: usize = 1 << 20;

/// Why a proof file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofFileError {
    /// Not a tlog-proof.
    #[error("not a c2sp.org/tlog-proof@v1 file: {0}")]
    Malformed(String),
    /// The checkpoint is not the trusted log's, or not signed by it.
    #[error("the proof's checkpoint: {0}")]
    Checkpoint(String),
    /// Fewer witnesses cosigned than required.
    #[error("{got} of the required {required} witness cosignatures")]
    Quorum {
        /// Valid cosignatures from the given witnesses.
        got: usize,
        /// Required.
        required: usize,
    },
    /// The path does not lead to the checkpoint's root.
    #[error(transparent)]
    Inclusion(#[from] crate::merkle::ProofError),
}

/// A parsed proof file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogProof {
    /// Unauthenticated extra data, if any.
    pub extra: Option<Vec<u8>>,
    /// The entry's index.
    pub index: u64,
    /// The inclusion path.
    pub path: Vec<Hash>,
    /// The checkpoint note, verbatim.
    pub checkpoint: Vec<u8>,
}

impl TlogProof {
    /// Parses a proof file.
    pub fn parse(bytes: &[u8]) -> Result<Self, ProofFileError> {
        let bad = |m: &str| ProofFileError::Malformed(m.to_owned());
        let (head, checkpoint) =
            crate::lines::header_and_note(bytes, MAX_PROOF_BYTES).map_err(bad)?;
        let mut lines = head.split('\n').peekable();
        if lines.next() != Some(HEADER) {
            return Err(bad("the first line is not c2sp.org/tlog-proof@v1"));
        }
        let extra = match lines.peek().and_then(|l| l.strip_prefix("extra ")) {
            Some(b64) => {
                let extra = B64.decode(b64).map_err(|_| bad("extra is not base64"))?;
                lines.next();
                Some(extra)
            }
            None => None,
        };
        let index = lines
            .next()
            .and_then(|l| l.strip_prefix("index "))
            .filter(|n| {
                !n.is_empty()
                    && (n.len() == 1 || !n.starts_with('0'))
                    && n.bytes().all(|b| b.is_ascii_digit())
            })
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| bad("no 'index N' line"))?;
        let path = crate::lines::hashes(lines).map_err(bad)?;
        if path.len() > 64 {
            return Err(bad("a path longer than 64 hashes"));
        }
        Ok(TlogProof {
            extra,
            index,
            path,
            checkpoint: checkpoint.as_bytes().to_vec(),
        })
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("{HEADER}\n");
        if let Some(extra) = &self.extra {
            out.push_str(&format!("extra {}\n", B64.encode(extra)));
        }
        out.push_str(&format!("index {}\n", self.index));
        crate::lines::write_hashes(&mut out, &self.path);
        out.push('\n');
        let mut out = out.into_bytes();
        out.extend_from_slice(&self.checkpoint);
        out
    }

    /// Checks that `leaf` is in the log of `log`, at a checkpoint cosigned by at least
    /// `quorum` of `witnesses`; returns that checkpoint.
    pub fn verify(
        &self,
        leaf: &Hash,
        log: &Verifier,
        witnesses: &[Verifier],
        quorum: usize,
    ) -> Result<Checkpoint, ProofFileError> {
        let note =
            Note::parse(&self.checkpoint).map_err(|e| ProofFileError::Checkpoint(e.to_string()))?;
        note.verify(std::slice::from_ref(log))
            .map_err(|e| ProofFileError::Checkpoint(e.to_string()))?;
        let checkpoint = Checkpoint::parse(note.text())
            .map_err(|e| ProofFileError::Checkpoint(e.to_string()))?;
        if checkpoint.origin != log.name() {
            return Err(ProofFileError::Checkpoint(format!(
                "its origin is {}, not the log's {}",
                checkpoint.origin,
                log.name()
            )));
        }
        let got = if quorum == 0 {
            0
        } else {
            note.verify(witnesses)
                .map_err(|e| ProofFileError::Checkpoint(format!("a witness cosignature: {e}")))?
                .len()
        };
        if got < quorum {
            return Err(ProofFileError::Quorum {
                got,
                required: quorum,
            });
        }
        verify_inclusion(
            self.index,
            checkpoint.size,
            leaf,
            &self.path,
            &checkpoint.root,
        )?;
        Ok(checkpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{inclusion_proof, leaf_hash, tree_root};
    use crate::note::{sign, Ed25519NoteKey, KeyKind, NoteSigner};

    #[test]
    fn a_proof_file_round_trips_and_verifies_only_what_it_proves() {
        let log = Ed25519NoteKey::from_seed("example.com/log", KeyKind::Ed25519, &[1; 32]).unwrap();
        let w1 = Ed25519NoteKey::from_seed("w1", KeyKind::Cosignature, &[2; 32]).unwrap();
        let w2 = Ed25519NoteKey::from_seed("w2", KeyKind::Cosignature, &[3; 32]).unwrap();
        let leaves: Vec<Hash> = (0..7).map(|i| leaf_hash(&[i])).collect();
        let mut src: &[Hash] = &leaves;
        let cp = Checkpoint {
            origin: "example.com/log".into(),
            size: 7,
            root: tree_root(&mut src, 7).unwrap(),
            extensions: vec![],
        };
        let text = cp.to_text();
        let mut note = Note::new(&text).unwrap();
        note.add_signature(sign(&text, &log, 0).unwrap());
        note.add_signature(sign(&text, &w1, 1_767_225_600).unwrap());
        let proof = TlogProof {
            extra: Some(b"hint".to_vec()),
            index: 4,
            path: inclusion_proof(&mut src, 4, 7).unwrap(),
            checkpoint: note.to_bytes(),
        };
        let back = TlogProof::parse(&proof.to_bytes()).unwrap();
        assert_eq!(back, proof);
        let witnesses = [w1.verifier().clone(), w2.verifier().clone()];
        assert_eq!(
            back.verify(&leaves[4], log.verifier(), &witnesses, 1)
                .unwrap(),
            cp
        );
        assert!(back
            .verify(&leaves[3], log.verifier(), &witnesses, 1)
            .is_err());
        assert!(matches!(
            back.verify(&leaves[4], log.verifier(), &witnesses, 2),
            Err(ProofFileError::Quorum {
                got: 1,
                required: 2
            })
        ));
        let other_log =
            Ed25519NoteKey::from_seed("example.com/log", KeyKind::Ed25519, &[9; 32]).unwrap();
        assert!(back
            .verify(&leaves[4], other_log.verifier(), &witnesses, 0)
            .is_err());
        for bad in [
            &b"c2sp.org/tlog-proof@v2\nindex 1\n\nx"[..],
            b"c2sp.org/tlog-proof@v1\nindex 01\n\nx",
            b"c2sp.org/tlog-proof@v1\nindex +1\n\nx",
            b"nothing",
        ] {
            assert!(TlogProof::parse(bad).is_err());
        }
    }
}
