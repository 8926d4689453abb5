//! C2SP tlog-tiles: the tree stored as tiles of 256 hashes, entries as bundles of 256.
//!
//! Guarantees:
//! - one spelling of every path: [`TilePath::parse`] accepts exactly what
//!   [`TilePath::to_string`] writes (levels 0..=63 without leading zeros, index groups of
//!   three digits with `x` on all but the last, partial widths 1..=255), so a server never
//!   serves one tile under two names and a cache never confuses two tiles;
//! - tile contents are computed from the tree's own definition ([`crate::merkle`]), and
//!   [`TileHashes`] answers subtree questions from tiles, so proofs built from tiles are the
//!   proofs the verifier checks;
//! - entry bundles refuse entries over 65,535 bytes (the format's length prefix) instead of
//!   truncating them.
//!
//! Not guaranteed: that tiles read from elsewhere are genuine. A proof built from forged
//! tiles fails [`crate::merkle::verify_inclusion`] against the signed root, which is where
//! tiles are authenticated.

use std::collections::HashMap;
use std::fmt;

use crate::merkle::{node_hash, Hash, SubtreeHashes};

/// Hashes (or entries) per full tile.
pub const TILE_WIDTH: u64 = 256;
/// Tree levels per tile level.
pub const TILE_HEIGHT: u32 = 8;
/// Bytes of a full hash tile.
pub const FULL_TILE_BYTES: usize = 256 * 32;
/// Largest entry an entry bundle can carry.
pub const MAX_ENTRY_BYTES: usize = u16::MAX as usize;

/// What went wrong with a tile or bundle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileError {
    /// A tile's bytes are not a whole number of hashes, or not as many as its width.
    #[error("tile {path}: {got} bytes where {expected} are needed")]
    WrongSize {
        /// The tile.
        path: String,
        /// Bytes expected.
        expected: usize,
        /// Bytes found.
        got: usize,
    },
    /// A tile the question needs is not available.
    #[error("tile {0} is not available")]
    Missing(String),
    /// An entry too large for a bundle.
    #[error("an entry of {0} bytes does not fit an entry bundle (at most 65535)")]
    EntryTooLarge(usize),
    /// A bundle's bytes do not parse as length-prefixed entries.
    #[error("entry bundle is malformed: {0}")]
    MalformedBundle(&'static str),
    /// A question about leaves the tree does not have.
    #[error("leaves up to {end} are outside a tree of size {size}")]
    OutOfRange {
        /// One past the last leaf asked about.
        end: u64,
        /// Tree size.
        size: u64,
    },
}

/// Which kind of tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TileKind {
    /// Hashes at tile level `0..=63`.
    Hashes(u8),
    /// Entry bundle.
    Entries,
}

/// One tile or entry bundle: kind, index, width (256 = full, fewer = partial).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TilePath {
    /// Hashes at a level, or entries.
    pub kind: TileKind,
    /// Tile index at its level.
    pub index: u64,
    /// Hashes or entries in it, 1..=256.
    pub width: u16,
}

impl TilePath {
    /// Whether this is a full tile (served with immutable caching).
    pub fn is_full(&self) -> bool {
        u64::from(self.width) == TILE_WIDTH
    }

    /// Parses a path relative to the log prefix (`tile/0/x001/234`, `tile/entries/000.p/7`).
    pub fn parse(path: &str) -> Option<TilePath> {
        let rest = path.strip_prefix("tile/")?;
        let (kind, rest) = match rest.strip_prefix("entries/") {
            Some(rest) => (TileKind::Entries, rest),
            None => {
                let (level, rest) = rest.split_once('/')?;
                let level = decimal(level)?;
                if level > 63 {
                    return None;
                }
                (TileKind::Hashes(level as u8), rest)
            }
        };
        let (index, width) = match rest.split_once(".p/") {
            Some((index, width)) => {
                let width = decimal(width)?;
                if !(1..TILE_WIDTH).contains(&width) {
                    return None;
                }
                (index, width as u16)
            }
            None => (rest, TILE_WIDTH as u16),
        };
        Some(TilePath {
            kind,
            index: parse_index(index)?,
            width,
        })
    }
}

impl fmt::Display for TilePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            TileKind::Hashes(level) => write!(f, "tile/{level}/")?,
            TileKind::Entries => f.write_str("tile/entries/")?,
        }
        f.write_str(&format_index(self.index))?;
        if !self.is_full() {
            write!(f, ".p/{}", self.width)?;
        }
        Ok(())
    }
}

/// A decimal number without leading zeros (or `0`).
fn decimal(s: &str) -> Option<u64> {
    if s.is_empty() || (s.len() > 1 && s.starts_with('0')) || !s.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    s.parse().ok()
}

/// `1234067` → `x001/x234/067`; `5` → `005`.
fn format_index(index: u64) -> String {
    let digits = index.to_string();
    let pad = (3 - digits.len() % 3) % 3;
    let padded = format!("{}{digits}", "0".repeat(pad));
    let groups: Vec<&str> = padded
        .as_bytes()
        .chunks(3)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    let last = groups.len().saturating_sub(1);
    groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            if i < last {
                format!("x{g}")
            } else {
                (*g).to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn parse_index(s: &str) -> Option<u64> {
    let groups: Vec<&str> = s.split('/').collect();
    let (last, upper) = groups.split_last()?;
    let mut digits = String::new();
    for g in upper {
        digits.push_str(g.strip_prefix('x')?);
    }
    digits.push_str(last);
    let three_digits = |g: &str| g.len() == 3 && g.bytes().all(|b| b.is_ascii_digit());
    if !upper
        .iter()
        .all(|g| g.strip_prefix('x').is_some_and(three_digits))
        || !three_digits(last)
    {
        return None;
    }
    // No leading all-zero group: one spelling per index.
    if upper.first().is_some_and(|g| *g == "x000") {
        return None;
    }
    digits.parse().ok()
}

/// 256^level, or `None` past 2^64.
fn tile_span(level: u32) -> Option<u64> {
    TILE_WIDTH.checked_pow(level)
}

/// The hash tiles and entry bundles a tree of `size` has, at every level: full tiles from
/// index `from_size`'s tile on (the ones a growth from `from_size` touched) and the partial
/// tile at the right edge. What a log writes when it grows from `from_size` to `size`.
pub fn tiles_between(from_size: u64, size: u64) -> Vec<TilePath> {
    let mut out = Vec::new();
    for level in 0..64u32 {
        let Some(span) = tile_span(level) else { break };
        let hashes_at_level = size / span;
        if hashes_at_level == 0 {
            break;
        }
        let first = (from_size / span) / TILE_WIDTH;
        let full = hashes_at_level / TILE_WIDTH;
        let partial = (hashes_at_level % TILE_WIDTH) as u16;
        let mut push = |kind, index, width| out.push(TilePath { kind, index, width });
        for index in first..full {
            push(TileKind::Hashes(level as u8), index, TILE_WIDTH as u16);
            if level == 0 {
                push(TileKind::Entries, index, TILE_WIDTH as u16);
            }
        }
        if partial > 0 {
            push(TileKind::Hashes(level as u8), full, partial);
            if level == 0 {
                push(TileKind::Entries, full, partial);
            }
        }
    }
    out
}

/// The hashes of hash tile `tile` (its width of them), from the tree.
pub fn tile_hashes<S: SubtreeHashes>(source: &mut S, tile: &TilePath) -> Result<Vec<u8>, S::Error> {
    let TileKind::Hashes(level) = tile.kind else {
        return Ok(Vec::new());
    };
    let height = (u32::from(level) * TILE_HEIGHT) as u8;
    let mut out = Vec::with_capacity(usize::from(tile.width) * 32);
    for i in 0..u64::from(tile.width) {
        out.extend_from_slice(&source.subtree(height, tile.index * TILE_WIDTH + i)?);
    }
    Ok(out)
}

/// Subtree hashes answered from the hash tiles of a tree of `size`, fetched through
/// `fetch` (which returns the tile's bytes) and kept for the next question.
pub struct TileHashes<F> {
    size: u64,
    fetch: F,
    tiles: HashMap<TilePath, Vec<u8>>,
}

impl<F> fmt::Debug for TileHashes<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TileHashes")
            .field("size", &self.size)
            .field("tiles", &self.tiles.len())
            .finish()
    }
}

impl<F, E> TileHashes<F>
where
    F: FnMut(&TilePath) -> Result<Vec<u8>, E>,
    E: From<TileError>,
{
    /// Tiles of the tree of `size`.
    pub fn new(size: u64, fetch: F) -> Self {
        TileHashes {
            size,
            fetch,
            tiles: HashMap::new(),
        }
    }

    /// The tile holding hash `index` of tile level `level`, as the tree of `self.size` has
    /// it (full, or partial at the right edge).
    fn tile_for(&self, level: u32, index: u64) -> Result<TilePath, TileError> {
        let span = tile_span(level).ok_or(TileError::OutOfRange {
            end: u64::MAX,
            size: self.size,
        })?;
        let hashes_at_level = self.size / span;
        let tile = index / TILE_WIDTH;
        let width = if (tile + 1).saturating_mul(TILE_WIDTH) <= hashes_at_level {
            TILE_WIDTH
        } else {
            hashes_at_level % TILE_WIDTH
        };
        if index >= hashes_at_level || width == 0 {
            return Err(TileError::OutOfRange {
                end: index.saturating_add(1).saturating_mul(span),
                size: self.size,
            });
        }
        Ok(TilePath {
            kind: TileKind::Hashes(level as u8),
            index: tile,
            width: width as u16,
        })
    }

    fn hash(&mut self, level: u32, index: u64) -> Result<Hash, E> {
        let tile = self.tile_for(level, index)?;
        if !self.tiles.contains_key(&tile) {
            let bytes = (self.fetch)(&tile)?;
            let expected = usize::from(tile.width) * 32;
            if bytes.len() != expected {
                return Err(TileError::WrongSize {
                    path: tile.to_string(),
                    expected,
                    got: bytes.len(),
                }
                .into());
            }
            self.tiles.insert(tile, bytes);
        }
        let at = ((index % TILE_WIDTH) as usize) * 32;
        self.tiles
            .get(&tile)
            .and_then(|t| t.get(at..at + 32))
            .and_then(|h| h.try_into().ok())
            .ok_or_else(|| TileError::Missing(tile.to_string()).into())
    }
}

impl<F, E> SubtreeHashes for TileHashes<F>
where
    F: FnMut(&TilePath) -> Result<Vec<u8>, E>,
    E: From<TileError>,
{
    type Error = E;

    /// A subtree of height `8l + r` is the root of `2^r` consecutive hashes of one tile
    /// at level `l`.
    fn subtree(&mut self, height: u8, index: u64) -> Result<Hash, E> {
        let level = u32::from(height) / TILE_HEIGHT;
        let r = u32::from(height) % TILE_HEIGHT;
        let first = index.checked_shl(r).ok_or(TileError::OutOfRange {
            end: u64::MAX,
            size: self.size,
        })?;
        let mut row = Vec::with_capacity(1 << r);
        for i in 0..(1u64 << r) {
            row.push(self.hash(level, first + i)?);
        }
        while row.len() > 1 {
            row = row
                .chunks(2)
                .map(|p| match p {
                    [l, r] => node_hash(l, r),
                    [one] => *one,
                    _ => Hash::default(),
                })
                .collect();
        }
        row.pop()
            .ok_or_else(|| TileError::Missing("empty subtree".into()).into())
    }
}

/// An entry bundle: each entry as a big-endian `u16` length, then its bytes.
pub fn encode_bundle<'a>(
    entries: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<u8>, TileError> {
    let mut out = Vec::new();
    for e in entries {
        let len = u16::try_from(e.len()).map_err(|_| TileError::EntryTooLarge(e.len()))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(e);
    }
    Ok(out)
}

/// The entries of a bundle.
pub fn decode_bundle(mut bytes: &[u8]) -> Result<Vec<&[u8]>, TileError> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (len, rest) = bytes
            .split_first_chunk::<2>()
            .ok_or(TileError::MalformedBundle("a length is cut short"))?;
        let len = usize::from(u16::from_be_bytes(*len));
        if rest.len() < len {
            return Err(TileError::MalformedBundle("an entry is cut short"));
        }
        let (entry, rest) = rest.split_at(len);
        out.push(entry);
        bytes = rest;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_have_one_spelling() {
        for (index, text) in [
            (5, "005"),
            (1000, "x001/000"),
            (1_234_067, "x001/x234/067"),
            (0, "000"),
        ] {
            let p = TilePath {
                kind: TileKind::Hashes(0),
                index,
                width: 256,
            };
            assert_eq!(p.to_string(), format!("tile/0/{text}"));
            assert_eq!(TilePath::parse(&p.to_string()), Some(p));
        }
        let partial = TilePath {
            kind: TileKind::Entries,
            index: 273,
            width: 112,
        };
        assert_eq!(partial.to_string(), "tile/entries/273.p/112");
        assert_eq!(TilePath::parse("tile/entries/273.p/112"), Some(partial));
        for bad in [
            "tile/0/5",
            "tile/0/0005",
            "tile/00/005",
            "tile/64/005",
            "tile/0/x000/005",
            "tile/0/001/005",
            "tile/0/005.p/0",
            "tile/0/005.p/256",
            "tile/0/005.p/07",
            "tile/0/005/",
            "tile/0/",
            "tile/entries/x1/000",
            "tile//005",
            "tiles/0/005",
            "tile/0/-05",
            "tile/0/005.p/",
            "tile/0/x/005",
        ] {
            assert_eq!(TilePath::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn tiles_of_the_spec_example() {
        // tlog-tiles: size 70,000 has 273 full level-0 tiles, 0.p/112 at index 273, one full
        // level-1 tile, a level-1 partial of width 17, and a level-2 partial of width 1.
        let tiles = tiles_between(0, 70_000);
        let level = |l| tiles.iter().filter(move |t| t.kind == TileKind::Hashes(l));
        assert_eq!(level(0).filter(|t| t.is_full()).count(), 273);
        assert!(level(0).any(|t| t.index == 273 && t.width == 112));
        assert_eq!(level(1).filter(|t| t.is_full()).count(), 1);
        assert!(level(1).any(|t| t.index == 1 && t.width == 17));
        assert!(level(2).any(|t| t.index == 0 && t.width == 1));
        assert_eq!(level(3).count(), 0);
        // Growing from 69,999 touches only the right edge.
        let grown = tiles_between(69_999, 70_000);
        assert!(grown.iter().all(|t| !t.is_full() || t.index >= 273));
    }

    #[test]
    fn bundles_round_trip_and_refuse_oversize() {
        let big = vec![7u8; MAX_ENTRY_BYTES];
        let b = encode_bundle([b"a".as_slice(), b"", &big]).unwrap();
        assert_eq!(decode_bundle(&b).unwrap(), vec![b"a".as_slice(), b"", &big]);
        assert!(encode_bundle([vec![0u8; MAX_ENTRY_BYTES + 1].as_slice()]).is_err());
        assert!(decode_bundle(&[0, 5, 1, 2]).is_err());
        assert!(decode_bundle(&[0]).is_err());
    }
}
