//! Refuse to serve a tree, or run on a data directory, that holds a private key where key
//! material could be configuration: metadata, policy, token and key folders, anything an
//! operator put there by hand.
//!
//! Not scanned: release content — the uploaded blobs (`staged/blobs/`) and the
//! content-addressed artifacts (`<sha256>.<name>`, as publish and push place them). Their
//! content is whatever publishers release (a test fixture may well be a PEM key), the
//! server neither interprets nor judges it, and a scan there let any token holder stop the
//! server from starting by uploading 60 bytes. A file put into the tree by hand under
//! another name is still scanned.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// A file in the served tree looks like a PEM private key.
#[derive(Debug, thiserror::Error)]
pub enum KeyScanError {
    /// The file at this path is a private key.
    #[error("{0} is a private key file; remove it from the served tree (nothing is served while a private key is in it)")]
    PrivateKey(PathBuf),
    /// The tree could not be read.
    #[error("scanning {0} for private keys: {1}")]
    Io(PathBuf, io::Error),
}

const PEM_BEGIN: &[u8] = b"-----BEGIN";
const NEEDLE: &[u8] = b"PRIVATE KEY";

/// Folders under a scanned directory that hold uploaded release content only.
const CONTENT_DIRS: &[&str] = &["staged/blobs"];

/// A content-addressed artifact's file name: `<64 lowercase hex>.<name>`.
fn is_content_addressed(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.get(..65))
        .is_some_and(|p| {
            p.ends_with('.')
                && p.bytes()
                    .take(64)
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

/// Walks `dir` (not following symbolic links, skipping release content: [`CONTENT_DIRS`]
/// and content-addressed artifacts) and fails on the first file whose content starts with
/// `-----BEGIN` and contains `PRIVATE KEY`.
pub fn check_no_private_keys(dir: &Path) -> Result<(), KeyScanError> {
    let skipped: Vec<PathBuf> = CONTENT_DIRS.iter().map(|c| dir.join(c)).collect();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if skipped.contains(&d) {
            continue;
        }
        let entries = std::fs::read_dir(&d).map_err(|e| KeyScanError::Io(d.clone(), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| KeyScanError::Io(d.clone(), e))?;
            let path = entry.path();
            let ft = entry
                .file_type()
                .map_err(|e| KeyScanError::Io(path.clone(), e))?;
            if ft.is_dir() {
                stack.push(path);
            } else if is_content_addressed(&path) {
                continue;
            } else if ft.is_file() {
                if is_private_key(&path).map_err(|e| KeyScanError::Io(path.clone(), e))? {
                    return Err(KeyScanError::PrivateKey(path));
                }
            } else if ft.is_symlink() {
                // Links are followed only if they stay in the tree, where the target is scanned
                // itself; a link to a private key elsewhere is served as nothing (404), but
                // it is still refused here to keep the rule simple.
                if let Ok(meta) = std::fs::metadata(&path) {
                    if meta.is_file()
                        && is_private_key(&path).map_err(|e| KeyScanError::Io(path.clone(), e))?
                    {
                        return Err(KeyScanError::PrivateKey(path));
                    }
                }
            }
        }
    }
    Ok(())
}

fn is_private_key(path: &Path) -> io::Result<bool> {
    let mut f = std::fs::File::open(path)?;
    let mut head = [0u8; PEM_BEGIN.len()];
    let mut got = 0;
    while got < head.len() {
        let n = f.read(head.get_mut(got..).unwrap_or_default())?;
        if n == 0 {
            return Ok(false);
        }
        got += n;
    }
    if head != PEM_BEGIN {
        return Ok(false);
    }
    // Stream the rest, keeping an overlap so a needle across two reads is still found.
    let mut buf = vec![0u8; 64 * 1024];
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(false);
        }
        carry.extend_from_slice(buf.get(..n).unwrap_or_default());
        if carry.windows(NEEDLE.len()).any(|w| w == NEEDLE) {
            return Ok(true);
        }
        let keep = carry.len().saturating_sub(NEEDLE.len() - 1);
        carry.drain(..keep);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_anywhere() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("targets/ab")).unwrap();
        std::fs::write(
            dir.path().join("targets/ab/x.pem"),
            "-----BEGIN CERTIFICATE-----\nAAA\n",
        )
        .unwrap();
        check_no_private_keys(dir.path()).unwrap();
        std::fs::write(dir.path().join("targets/ab/notkey"), "hello PRIVATE KEY").unwrap();
        check_no_private_keys(dir.path()).unwrap();
        std::fs::write(
            dir.path().join("targets/ab/.hidden"),
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n",
        )
        .unwrap();
        let err = check_no_private_keys(dir.path()).unwrap_err();
        assert!(
            matches!(err, KeyScanError::PrivateKey(ref p) if p.ends_with(".hidden")),
            "{err}"
        );
    }

    #[test]
    fn release_content_is_not_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n-----END PRIVATE KEY-----\n";
        let sha = "ab".repeat(32);
        std::fs::create_dir_all(dir.path().join("staged/blobs/ab")).unwrap();
        std::fs::write(dir.path().join("staged/blobs/ab").join(&sha), pem).unwrap();
        std::fs::create_dir_all(dir.path().join("published/targets/app/1.0.0")).unwrap();
        std::fs::write(
            dir.path()
                .join(format!("published/targets/app/1.0.0/{sha}.fixture.pem")),
            pem,
        )
        .unwrap();
        check_no_private_keys(dir.path()).unwrap();
        check_no_private_keys(&dir.path().join("published")).unwrap();
        // Not content-addressed: put there by hand, so scanned.
        std::fs::write(dir.path().join("published/targets/app/key.pem"), pem).unwrap();
        assert!(check_no_private_keys(dir.path()).is_err());
    }
}
