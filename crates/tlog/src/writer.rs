//! Growing a tiled log: from the log as it is (its size, its tiles, the entries of its
//! partial entry bundle) and a batch of new entries, everything to write — entry bundles
//! and hash tiles — and the new root to sign.
//!
//! Guarantees:
//! - what is written is a function of the old log and the batch alone: a writer killed
//!   half-way and run again on the same sequenced batch writes the same bytes, so a file
//!   written twice never differs (full tiles are immutable; a full tile found with other
//!   bytes is corruption, which the storage layer reports);
//! - the root returned is the root of the tiles returned ([`crate::merkle::tree_root`] over
//!   them), so a checkpoint signed over it matches what readers fetch.
//!
//! Not here: ordering the writes (bundles and tiles before the checkpoint) and durability;
//! that is the storage layer's, which writes every file of a [`Growth`] before the
//! checkpoint that names its size.

use crate::merkle::{leaf_hash, node_hash, tree_root, Hash, SubtreeHashes};
use crate::tile::{
    encode_bundle, tile_hashes, tiles_between, TileError, TileKind, TilePath, TILE_WIDTH,
};

/// What appending a batch writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Growth {
    /// The new size.
    pub size: u64,
    /// The new root.
    pub root: Hash,
    /// Entry bundles and hash tiles to write (full and the right edge's partial ones), all
    /// before a checkpoint of `size`.
    pub files: Vec<(TilePath, Vec<u8>)>,
}

/// Subtree hashes of the grown tree: the old tree's from its tiles, the rest from the new
/// leaves.
struct Grown<'a, S> {
    old: &'a mut S,
    old_size: u64,
    new_leaves: &'a [Hash],
}

impl<S> SubtreeHashes for Grown<'_, S>
where
    S: SubtreeHashes,
    S::Error: From<TileError>,
{
    type Error = S::Error;

    fn subtree(&mut self, height: u8, index: u64) -> Result<Hash, S::Error> {
        let width = 1u64 << height;
        let start = index.saturating_mul(width);
        let end = start.saturating_add(width);
        if end <= self.old_size {
            return self.old.subtree(height, index);
        }
        if start >= self.old_size {
            let from = (start - self.old_size) as usize;
            let to = (end - self.old_size) as usize;
            let mut leaves = self.new_leaves.get(from..to).ok_or(TileError::OutOfRange {
                end,
                size: self.old_size + self.new_leaves.len() as u64,
            })?;
            return leaves.subtree(height, 0).map_err(|_| {
                TileError::OutOfRange {
                    end,
                    size: self.old_size,
                }
                .into()
            });
        }
        // Straddles the old edge (only along the right edge of the old tree).
        let left = self.subtree(height - 1, index * 2)?;
        let right = self.subtree(height - 1, index * 2 + 1)?;
        Ok(node_hash(&left, &right))
    }
}

/// Appends `entries` to the log of `old_size` whose tiles `old` reads and whose partial
/// entry bundle held `old_partial` (the `old_size % 256` entries after the last full
/// bundle; empty when there is none).
pub fn grow<S>(
    old: &mut S,
    old_size: u64,
    old_partial: &[&[u8]],
    entries: &[&[u8]],
) -> Result<Growth, S::Error>
where
    S: SubtreeHashes,
    S::Error: From<TileError>,
{
    if old_partial.len() as u64 != old_size % TILE_WIDTH {
        return Err(
            TileError::MalformedBundle("the partial bundle does not match the log size").into(),
        );
    }
    let size = old_size + entries.len() as u64;
    let new_leaves: Vec<Hash> = entries.iter().map(|e| leaf_hash(e)).collect();
    let mut grown = Grown {
        old,
        old_size,
        new_leaves: &new_leaves,
    };
    let mut files = Vec::new();
    let bundle_start = old_size - old_size % TILE_WIDTH;
    for tile in tiles_between(old_size, size) {
        let bytes = match tile.kind {
            TileKind::Hashes(_) => tile_hashes(&mut grown, &tile)?,
            TileKind::Entries => {
                let first = tile.index * TILE_WIDTH;
                let in_bundle = (first..first + u64::from(tile.width)).map(|i| {
                    if i < old_size {
                        old_partial.get((i - bundle_start) as usize).copied()
                    } else {
                        entries.get((i - old_size) as usize).copied()
                    }
                });
                let listed: Option<Vec<&[u8]>> = in_bundle.collect();
                let listed = listed.ok_or(TileError::MalformedBundle("an entry is missing"))?;
                encode_bundle(listed)?
            }
        };
        files.push((tile, bytes));
    }
    let root = tree_root(&mut grown, size)?;
    Ok(Growth { size, root, files })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tile::TileHashes;
    use std::collections::HashMap;

    fn entry(i: u64) -> Vec<u8> {
        format!("leaf {i}").into_bytes()
    }

    /// Grows a log in uneven batches, keeping only its files, and compares every step with
    /// the tree built from all leaves at once.
    #[test]
    fn batches_grow_the_same_tree_as_one_build() {
        let mut files: HashMap<TilePath, Vec<u8>> = HashMap::new();
        let mut size = 0u64;
        for batch in [1u64, 254, 1, 300, 0, 66_000 - 556, 200] {
            let partial_bundle = files
                .get(&TilePath {
                    kind: TileKind::Entries,
                    index: size / 256,
                    width: (size % 256) as u16,
                })
                .cloned()
                .unwrap_or_default();
            let old_partial = crate::tile::decode_bundle(&partial_bundle).unwrap();
            let new: Vec<Vec<u8>> = (size..size + batch).map(entry).collect();
            let refs: Vec<&[u8]> = new.iter().map(Vec::as_slice).collect();
            let snapshot = files.clone();
            let mut old = TileHashes::new(size, |t: &TilePath| {
                snapshot
                    .get(t)
                    .cloned()
                    .ok_or(TileError::Missing(t.to_string()))
            });
            let g = grow(&mut old, size, &old_partial, &refs).unwrap();
            size += batch;
            let all: Vec<Hash> = (0..size).map(|i| leaf_hash(&entry(i))).collect();
            let mut from_leaves: &[Hash] = &all;
            assert_eq!(
                g.root,
                tree_root(&mut from_leaves, size).unwrap(),
                "size {size}"
            );
            for (path, bytes) in g.files {
                if let Some(before) = files.get(&path) {
                    assert_eq!(before, &bytes, "{path} rewritten with other bytes");
                }
                files.insert(path, bytes);
            }
        }
        assert_eq!(size, 66_000 - 556 + 556 + 200);
    }

    #[test]
    fn a_partial_bundle_of_the_wrong_size_is_refused() {
        let mut none = TileHashes::new(0, |t: &TilePath| Err(TileError::Missing(t.to_string())));
        assert!(grow(&mut none, 0, &[b"x".as_slice()], &[]).is_err());
    }
}
