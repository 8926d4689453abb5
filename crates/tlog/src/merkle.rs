//! RFC 6962 / RFC 9162 Merkle trees: hashing, inclusion and consistency proofs.
//!
//! Guarantees:
//! - leaves and interior nodes are hashed with distinct prefixes (`0x00`, `0x01`), so no
//!   leaf can pass for an interior node (second-preimage);
//! - a proof verifies only if it has exactly the length its index and sizes require: a
//!   proof with extra or missing hashes is refused, not trimmed or padded;
//! - hashes are [`Hash`] (32 bytes) by type, so a wrong-length hash cannot reach a
//!   comparison;
//! - verification is arithmetic on `u64` that cannot overflow (indices up to `u64::MAX`
//!   are refused cleanly, not wrapped).
//!
//! Proofs are also *built* here, from any source of subtree hashes ([`SubtreeHashes`]), so
//! the log that serves them and the client that checks them share one definition of the
//! tree.
//!
//! Not guaranteed here: consistency from the empty tree. RFC 9162 has no proof for it
//! (every tree is consistent with the empty one); [`verify_consistency`] refuses size 0 as
//! a useless question, and protocols that need it (tlog-witness `old 0`) answer it
//! themselves.

use aws_lc_rs::digest;

/// A SHA-256 tree hash.
pub type Hash = [u8; 32];

/// Why a proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not below the tree size.
    #[error("index {index} is outside a tree of size {size}")]
    IndexOutOfRange {
        /// Leaf index.
        index: u64,
        /// Tree size.
        size: u64,
    },
    /// The proof has the wrong number of hashes for its index and sizes.
    #[error("the proof has {got} hashes where {expected} are needed")]
    WrongLength {
        /// Hashes required.
        expected: usize,
        /// Hashes given.
        got: usize,
    },
    /// The proof does not lead to the expected root: the entry is not in the tree, or the
    /// two trees are not one history (a split view).
    #[error("the proof does not lead to the {0} root")]
    RootMismatch(&'static str),
    /// The new tree is smaller than the old one.
    #[error("tree size {new} is smaller than {old}")]
    Shrunk {
        /// Older size.
        old: u64,
        /// Newer size.
        new: u64,
    },
    /// Consistency with the empty tree has no proof (see the module notes).
    #[error("consistency from an empty tree needs no proof and has none")]
    FromEmpty,
}

/// SHA-256 of `parts` in order.
fn sha256(parts: &[&[u8]]) -> Hash {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    sha256(&[])
}

/// The hash of the leaf holding `entry`: SHA-256(0x00 || entry).
pub fn leaf_hash(entry: &[u8]) -> Hash {
    sha256(&[&[0x00], entry])
}

/// The hash of an interior node: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    sha256(&[&[0x01], left, right])
}

/// The length of an inclusion proof for `index` in a tree of `size` (> index), split as
/// transparency-dev does: `inner` hashes below the point where the path to the last leaf
/// departs, `border` above it.
fn inclusion_shape(index: u64, size: u64) -> (usize, usize) {
    let last = size.saturating_sub(1);
    let inner = (u64::BITS - (index ^ last).leading_zeros()) as usize;
    let border = index.checked_shr(inner as u32).unwrap_or(0).count_ones() as usize;
    (inner, border)
}

fn bit(value: u64, i: usize) -> bool {
    value.checked_shr(i as u32).unwrap_or(0) & 1 == 1
}

/// Folds the inner part of a path: the sibling is on the right where `index`'s bit is 0.
fn chain_inner(seed: Hash, proof: &[Hash], index: u64) -> Hash {
    proof.iter().enumerate().fold(seed, |acc, (i, h)| {
        if bit(index, i) {
            node_hash(h, &acc)
        } else {
            node_hash(&acc, h)
        }
    })
}

/// Like [`chain_inner`], but only the siblings on the left (the old tree's view).
fn chain_inner_right(seed: Hash, proof: &[Hash], index: u64) -> Hash {
    proof.iter().enumerate().fold(seed, |acc, (i, h)| {
        if bit(index, i) {
            node_hash(h, &acc)
        } else {
            acc
        }
    })
}

/// Folds the border part: every sibling is on the left.
fn chain_border_right(seed: Hash, proof: &[Hash]) -> Hash {
    proof.iter().fold(seed, |acc, h| node_hash(h, &acc))
}

/// Checks that `leaf` is entry `index` of the tree of `size` whose root is `root`.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (inner, border) = inclusion_shape(index, size);
    let expected = inner.saturating_add(border);
    if proof.len() != expected {
        return Err(ProofError::WrongLength {
            expected,
            got: proof.len(),
        });
    }
    let (below, above) = proof.split_at(inner);
    let got = chain_border_right(chain_inner(*leaf, below, index), above);
    if &got != root {
        return Err(ProofError::RootMismatch("tree"));
    }
    Ok(())
}

/// Checks that the tree of `old_size` with root `old_root` is a prefix of the tree of
/// `new_size` with root `new_root`: the log only appended.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    proof: &[Hash],
    old_root: &Hash,
    new_root: &Hash,
) -> Result<(), ProofError> {
    if new_size < old_size {
        return Err(ProofError::Shrunk {
            old: old_size,
            new: new_size,
        });
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength {
                expected: 0,
                got: proof.len(),
            });
        }
        if old_root != new_root {
            return Err(ProofError::RootMismatch("new"));
        }
        return Ok(());
    }
    if old_size == 0 {
        return Err(ProofError::FromEmpty);
    }
    // The old tree's last leaf, seen from the new tree: its inclusion path, from the level
    // where the old tree's rightmost complete subtree begins.
    let (inner, border) = inclusion_shape(old_size - 1, new_size);
    let shift = old_size.trailing_zeros() as usize;
    let inner = inner.saturating_sub(shift);
    // When the old tree is one complete subtree its root is the first node of the path;
    // otherwise the proof carries that subtree's hash first.
    let old_is_complete = old_size.is_power_of_two();
    let start = usize::from(!old_is_complete);
    let expected = start.saturating_add(inner).saturating_add(border);
    if proof.len() != expected {
        return Err(ProofError::WrongLength {
            expected,
            got: proof.len(),
        });
    }
    let (seed, path) = match proof.split_first() {
        Some((first, rest)) if !old_is_complete => (*first, rest),
        _ => (*old_root, proof),
    };
    let (below, above) = path.split_at(inner);
    let mask = (old_size - 1).checked_shr(shift as u32).unwrap_or(0);
    let old = chain_border_right(chain_inner_right(seed, below, mask), above);
    if &old != old_root {
        return Err(ProofError::RootMismatch("old"));
    }
    let new = chain_border_right(chain_inner(seed, below, mask), above);
    if &new != new_root {
        return Err(ProofError::RootMismatch("new"));
    }
    Ok(())
}

/// A source of the hashes of complete, aligned subtrees of a log: the hash of the
/// `2^height` leaves starting at leaf `index << height`. Tiles are such a source
/// ([`crate::tile::TileHashes`]); so is a list of leaf hashes.
pub trait SubtreeHashes {
    /// Why a hash could not be had (a tile missing, a read failing).
    type Error;
    /// The hash of subtree `index` at `height`.
    fn subtree(&mut self, height: u8, index: u64) -> Result<Hash, Self::Error>;
}

/// In-memory leaf hashes (tests, small logs, and the entries of one batch).
impl SubtreeHashes for &[Hash] {
    type Error = ProofError;
    fn subtree(&mut self, height: u8, index: u64) -> Result<Hash, ProofError> {
        let width = 1u64.checked_shl(u32::from(height)).unwrap_or(0);
        let start = index.saturating_mul(width);
        let end = start.saturating_add(width);
        let size = self.len() as u64;
        if width == 0 || end > size {
            return Err(ProofError::IndexOutOfRange { index: end, size });
        }
        Ok(range_from_leaves(self, start, end))
    }
}

fn range_from_leaves(leaves: &[Hash], start: u64, end: u64) -> Hash {
    let n = end - start;
    if n == 1 {
        return leaves.get(start as usize).copied().unwrap_or_default();
    }
    let k = split_point(n);
    node_hash(
        &range_from_leaves(leaves, start, start + k),
        &range_from_leaves(leaves, start + k, end),
    )
}

/// The largest power of two strictly below `n` (n ≥ 2): where RFC 6962 splits a range.
fn split_point(n: u64) -> u64 {
    1u64 << (u64::BITS - 1 - (n - 1).leading_zeros())
}

/// The root hash of leaves `[start, end)` (`start < end`), from complete subtrees.
pub fn range_hash<S: SubtreeHashes>(
    source: &mut S,
    start: u64,
    end: u64,
) -> Result<Hash, S::Error> {
    let n = end - start;
    // A complete, aligned subtree is one lookup.
    if n.is_power_of_two() && start % n == 0 {
        let height = n.trailing_zeros() as u8;
        return source.subtree(height, start >> height);
    }
    let k = split_point(n);
    let left = range_hash(source, start, start + k)?;
    let right = range_hash(source, start + k, end)?;
    Ok(node_hash(&left, &right))
}

/// The root of the tree of `size` leaves.
pub fn tree_root<S: SubtreeHashes>(source: &mut S, size: u64) -> Result<Hash, S::Error> {
    if size == 0 {
        return Ok(empty_root());
    }
    range_hash(source, 0, size)
}

/// The inclusion proof of leaf `index` in the tree of `size` (RFC 6962 §2.1.1 PATH),
/// leaf's sibling first. `index < size` is the caller's to check.
pub fn inclusion_proof<S: SubtreeHashes>(
    source: &mut S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, S::Error> {
    let mut proof = Vec::new();
    path(source, index, 0, size, &mut proof)?;
    Ok(proof)
}

fn path<S: SubtreeHashes>(
    source: &mut S,
    index: u64,
    start: u64,
    end: u64,
    out: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    let n = end - start;
    if n <= 1 {
        return Ok(());
    }
    let k = split_point(n);
    if index < start + k {
        path(source, index, start, start + k, out)?;
        out.push(range_hash(source, start + k, end)?);
    } else {
        path(source, index, start + k, end, out)?;
        out.push(range_hash(source, start, start + k)?);
    }
    Ok(())
}

/// The consistency proof from the tree of `old_size` to the tree of `new_size`
/// (RFC 6962 §2.1.2 PROOF); empty when the sizes are equal or `old_size` is 0.
pub fn consistency_proof<S: SubtreeHashes>(
    source: &mut S,
    old_size: u64,
    new_size: u64,
) -> Result<Vec<Hash>, S::Error> {
    let mut proof = Vec::new();
    if old_size > 0 && old_size < new_size {
        subproof(source, old_size, 0, new_size, true, &mut proof)?;
    }
    Ok(proof)
}

fn subproof<S: SubtreeHashes>(
    source: &mut S,
    m: u64,
    start: u64,
    end: u64,
    whole: bool,
    out: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    let n = end - start;
    if m == n {
        if !whole {
            out.push(range_hash(source, start, end)?);
        }
        return Ok(());
    }
    let k = split_point(n);
    if m <= k {
        subproof(source, m, start, start + k, whole, out)?;
        out.push(range_hash(source, start + k, end)?);
    } else {
        subproof(source, m - k, start + k, end, false, out)?;
        out.push(range_hash(source, start, start + k)?);
    }
    Ok(())
}

/// The right edge of a tree, enough to extend it leaf by leaf and compute its root: the
/// roots of its perfect subtrees, largest first (one per 1 bit of the size). A monitor keeps
/// it between runs so it rebuilds the tree from the entries it reads, with work and state
/// that follow the number of new entries and log2 of the size, never the whole log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    peaks: Vec<Hash>,
}

impl Frontier {
    /// The empty tree's.
    pub fn new() -> Self {
        Frontier::default()
    }

    /// Leaves in the tree.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends the leaf whose hash is `leaf`.
    pub fn push(&mut self, leaf: Hash) {
        let mut hash = leaf;
        let mut size = self.size;
        // Each trailing 1 bit of the size is a perfect subtree of the new leaf's height,
        // which the new leaf completes into one twice as large.
        while size & 1 == 1 {
            if let Some(left) = self.peaks.pop() {
                hash = node_hash(&left, &hash);
            }
            size >>= 1;
        }
        self.peaks.push(hash);
        self.size += 1;
    }

    /// The tree's root (RFC 6962 MTH).
    pub fn root(&self) -> Hash {
        let mut peaks = self.peaks.iter().rev();
        let Some(last) = peaks.next() else {
            return empty_root();
        };
        peaks.fold(*last, |acc, left| node_hash(left, &acc))
    }

    /// The size (8 bytes, big-endian) and then each peak.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.size.to_be_bytes().to_vec();
        self.peaks.iter().for_each(|p| out.extend_from_slice(p));
        out
    }

    /// Reads [`Frontier::to_bytes`]; none unless it holds exactly the peaks its size needs.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let (size, rest) = bytes.split_first_chunk::<8>()?;
        let size = u64::from_be_bytes(*size);
        if rest.len() != 32 * size.count_ones() as usize {
            return None;
        }
        let peaks = rest
            .chunks_exact(32)
            .map(|c| c.try_into().ok())
            .collect::<Option<Vec<Hash>>>()?;
        Some(Frontier { size, peaks })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("leaf {i}").as_bytes()))
            .collect()
    }

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, empty_root()),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    proptest::proptest! {
        /// Every proof this module builds verifies, and a proof for another index or size
        /// does not.
        #[test]
        fn built_proofs_verify(size in 1u64..300, a in 0u64..300, b in 0u64..300) {
            let all = leaves(size);
            let mut src: &[Hash] = &all;
            let root = tree_root(&mut src, size).unwrap();
            let index = a % size;
            let proof = inclusion_proof(&mut src, index, size).unwrap();
            proptest::prop_assert!(verify_inclusion(index, size, &all[index as usize], &proof, &root).is_ok());
            if size > 1 {
                let other = (index + 1) % size;
                proptest::prop_assert!(verify_inclusion(other, size, &all[index as usize], &proof, &root).is_err());
            }
            let old = 1 + b % size;
            let old_root = tree_root(&mut src, old).unwrap();
            let c = consistency_proof(&mut src, old, size).unwrap();
            proptest::prop_assert!(verify_consistency(old, size, &c, &old_root, &root).is_ok());
            if old < size {
                let mut forged = leaves(size);
                forged[(old - 1) as usize] = leaf_hash(b"rewritten history");
                let mut fsrc: &[Hash] = &forged;
                let forged_old = tree_root(&mut fsrc, old).unwrap();
                proptest::prop_assert!(verify_consistency(old, size, &c, &forged_old, &root).is_err());
            }
        }
    }

    #[test]
    fn a_frontier_gives_the_root_of_every_size_and_survives_a_round_trip() {
        let leaves: Vec<Hash> = (0u32..300).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut frontier = Frontier::new();
        assert_eq!(frontier.root(), empty_root());
        for (i, leaf) in leaves.iter().enumerate() {
            frontier.push(*leaf);
            let mut source: &[Hash] = &leaves;
            assert_eq!(
                frontier.root(),
                tree_root(&mut source, i as u64 + 1).unwrap(),
                "size {}",
                i + 1
            );
            let back = Frontier::from_bytes(&frontier.to_bytes()).unwrap();
            assert_eq!(back, frontier);
        }
        let mut bytes = frontier.to_bytes();
        bytes.pop();
        assert!(Frontier::from_bytes(&bytes).is_none());
        assert!(Frontier::from_bytes(&[0; 7]).is_none());
    }
}
