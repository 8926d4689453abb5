//! The local metadata directory: one `<role>.json` per trusted role holding the exact bytes
//! received, delegated roles under their URL-quoted names (python-tuf's layout), written
//! atomically (temporary file, fsync, rename, fsync of the directory).

use std::fs;
use std::io;

use sealwright_fs::{read_capped_if_exists, write_atomic};
use std::path::{Path, PathBuf};

/// `urllib.parse.quote(s, safe="")`: every byte except ASCII letters, digits and `_.-~` is
/// percent-encoded (upper-case hex), so `/`, `?`, `#` and `%` never reach a URL or a file
/// name unescaped.
pub fn quote(s: &str) -> String {
    quote_except(s, b"")
}

/// As [`quote`], but also leaving the bytes in `safe` as they are.
pub fn quote_except(s: &str, safe: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"_.-~".contains(&b) || safe.contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The client's metadata directory (`MD`).
#[derive(Debug, Clone)]
pub struct MetadataDir {
    dir: PathBuf,
}

impl MetadataDir {
    /// The store in `dir` (which must exist to load or persist anything).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        MetadataDir { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where role `role` is stored: `<quoted role>.json`.
    pub fn path(&self, role: &str) -> PathBuf {
        self.dir.join(format!("{}.json", quote(role)))
    }

    /// The stored bytes of `role`, at most `max` bytes; `None` when not stored.
    pub fn load(&self, role: &str, max: usize) -> io::Result<Option<Vec<u8>>> {
        read_capped_if_exists(&self.path(role), u64::try_from(max).unwrap_or(u64::MAX))
    }

    /// Stores the exact bytes of `role`, atomically.
    pub fn persist(&self, role: &str, bytes: &[u8]) -> io::Result<()> {
        write_atomic(&self.path(role), bytes)
    }

    /// Forgets `role` (no error if it was not stored).
    pub fn remove(&self, role: &str) -> io::Result<()> {
        match fs::remove_file(self.path(role)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn quote_matches_python_with_no_safe_characters() {
        assert_eq!(quote("targets"), "targets");
        assert_eq!(quote("bin-0a"), "bin-0a");
        assert_eq!(quote("?"), "%3F");
        assert_eq!(quote("#"), "%23");
        assert_eq!(quote("/delegatedrole"), "%2Fdelegatedrole");
        assert_eq!(quote("../delegatedrole"), "..%2Fdelegatedrole");
        assert_eq!(quote("a b%c~é"), "a%20b%25c~%C3%A9");
        assert_eq!(quote_except("a/b c", b"/"), "a/b%20c");
    }

    #[test]
    fn store_round_trip_and_caps() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetadataDir::new(dir.path());
        assert!(store.load("?", 10).unwrap().is_none());
        store.persist("?", b"{}").unwrap();
        assert_eq!(store.path("?"), dir.path().join("%3F.json"));
        assert_eq!(store.load("?", 10).unwrap().unwrap(), b"{}");
        assert!(store.load("?", 1).is_err());
        store.remove("?").unwrap();
        store.remove("?").unwrap();
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert!(names.is_empty(), "no temporary files left: {names:?}");
    }
}
