//! Request paths → safe relative paths inside the published tree.
//!
//! The raw request path is split on `/` and each segment is percent-decoded exactly once.
//! Anything that could name a file outside the tree, or a file that is not meant to be
//! served, is refused before the store is asked: `.`/`..`, empty segments (`//`, which is how
//! an absolute path would appear), an encoded `/` or `\`, NUL and other control characters,
//! invalid UTF-8, and names starting with `.` (temporary and hidden files).

use std::path::PathBuf;

/// Longest request path accepted, in bytes (before decoding).
pub const MAX_PATH_LEN: usize = 4096;

/// The two trees that are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// `/metadata/...` → `published/metadata/...`.
    Metadata,
    /// `/targets/...` → `published/targets/...`.
    Targets,
    /// `/log/...` → `published/log/...`: the transparency log (c2sp.org/tlog-tiles), only
    /// `checkpoint` and tile paths in their one spelling.
    Log,
}

/// Why a request path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Not under `/metadata/` or `/targets/`.
    #[error("not a served path")]
    NotServed,
    /// The path is hostile or malformed.
    #[error("refused path: {0}")]
    Refused(&'static str),
}

/// A validated path below `published/`: an area and at least one clean segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreePath {
    area: Area,
    segments: Vec<String>,
}

impl TreePath {
    /// Parses the raw (still percent-encoded) path of a request.
    pub fn from_request_path(raw: &str) -> Result<Self, PathError> {
        if raw.len() > MAX_PATH_LEN {
            return Err(PathError::Refused("path too long"));
        }
        let rest = raw
            .strip_prefix('/')
            .ok_or(PathError::Refused("not an absolute request path"))?;
        let mut parts = rest.split('/');
        let area = match parts.next() {
            Some("metadata") => Area::Metadata,
            Some("targets") => Area::Targets,
            Some("log") => Area::Log,
            _ => return Err(PathError::NotServed),
        };
        let mut segments = Vec::new();
        for part in parts {
            segments.push(decode_segment(part)?);
        }
        if segments.is_empty() {
            return Err(PathError::NotServed);
        }
        if area == Area::Log && log_file(&segments).is_none() {
            return Err(PathError::NotServed);
        }
        Ok(TreePath { area, segments })
    }

    /// Builds a path from already-decoded segments (same checks as for requests).
    pub fn new(area: Area, segments: &[&str]) -> Result<Self, PathError> {
        if segments.is_empty() {
            return Err(PathError::NotServed);
        }
        for s in segments {
            check_segment(s)?;
        }
        Ok(TreePath {
            area,
            segments: segments.iter().map(|s| (*s).to_owned()).collect(),
        })
    }

    /// Which tree.
    pub fn area(&self) -> Area {
        self.area
    }

    /// The decoded segments below the area directory.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// The last segment (the file name).
    pub fn file_name(&self) -> &str {
        self.segments.last().map(String::as_str).unwrap_or("")
    }

    /// The path relative to `published/`, e.g. `targets/ab/<sha>.app`.
    pub fn relative(&self) -> PathBuf {
        let mut p = PathBuf::from(match self.area {
            Area::Metadata => "metadata",
            Area::Targets => "targets",
            Area::Log => "log",
        });
        for s in &self.segments {
            p.push(s);
        }
        p
    }
}

fn decode_segment(raw: &str) -> Result<String, PathError> {
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(raw).collect();
    let s = String::from_utf8(bytes).map_err(|_| PathError::Refused("path is not UTF-8"))?;
    check_segment(&s)?;
    Ok(s)
}

fn check_segment(s: &str) -> Result<(), PathError> {
    if s.is_empty() {
        return Err(PathError::Refused("empty path segment"));
    }
    if s == "." || s == ".." {
        return Err(PathError::Refused("dot segment"));
    }
    if s.starts_with('.') {
        return Err(PathError::Refused("hidden or temporary file"));
    }
    if s.contains('\0') {
        return Err(PathError::Refused("NUL in path"));
    }
    if s.contains('/') || s.contains('\\') {
        return Err(PathError::Refused("encoded path separator"));
    }
    if s.chars().any(char::is_control) {
        return Err(PathError::Refused("control character in path"));
    }
    Ok(())
}

/// How a served file may be cached, decided from its path alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `metadata/N.ROLE.json`: never rewritten.
    VersionedMetadata,
    /// `metadata/timestamp.json`, `metadata/root.json` and any other unversioned metadata.
    MutableMetadata,
    /// `targets/.../<sha256>.<name>`: named by its content.
    ContentAddressedTarget,
    /// Any other target file.
    Target,
    /// `log/checkpoint`: replaced at every append.
    LogCheckpoint,
    /// `log/tile/...`: a tile or entry bundle, whose bytes never change at its path (a
    /// partial tile's width is in its name).
    LogTile,
}

/// What a `/log/` path names: the checkpoint (`None` inside) or a tile.
fn log_file(segments: &[String]) -> Option<Option<sealwright_tlog::tile::TilePath>> {
    if segments == ["checkpoint"] {
        return Some(None);
    }
    sealwright_tlog::tile::TilePath::parse(&segments.join("/")).map(Some)
}

impl FileKind {
    /// Classifies a path.
    pub fn of(path: &TreePath) -> FileKind {
        let name = path.file_name();
        match path.area() {
            Area::Metadata => {
                let versioned = name.split_once('.').is_some_and(|(n, rest)| {
                    !n.is_empty()
                        && n.bytes().all(|b| b.is_ascii_digit())
                        && rest.ends_with(".json")
                });
                if versioned && path.segments().len() == 1 {
                    FileKind::VersionedMetadata
                } else {
                    FileKind::MutableMetadata
                }
            }
            Area::Targets => {
                if content_hash(name).is_some() {
                    FileKind::ContentAddressedTarget
                } else {
                    FileKind::Target
                }
            }
            Area::Log => match log_file(path.segments()) {
                Some(Some(_)) => FileKind::LogTile,
                _ => FileKind::LogCheckpoint,
            },
        }
    }

    /// The `Cache-Control` value for this kind.
    pub fn cache_control(self) -> &'static str {
        match self {
            FileKind::VersionedMetadata | FileKind::ContentAddressedTarget | FileKind::LogTile => {
                "public, max-age=31536000, immutable"
            }
            FileKind::MutableMetadata | FileKind::LogCheckpoint => "no-cache",
            FileKind::Target => "public, max-age=60",
        }
    }
}

/// The SHA-256 (lowercase hex) a content-addressed file name starts with, if any.
pub fn content_hash(name: &str) -> Option<&str> {
    let (hash, rest) = name.split_once('.')?;
    (!rest.is_empty() && sealwright_crypto::digest::is_sha256_hex(hash)).then_some(hash)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn accepts_normal_paths() {
        let p = TreePath::from_request_path("/metadata/1.root.json").unwrap();
        assert_eq!(p.relative(), PathBuf::from("metadata/1.root.json"));
        assert_eq!(FileKind::of(&p), FileKind::VersionedMetadata);
        let p = TreePath::from_request_path("/metadata/timestamp.json").unwrap();
        assert_eq!(FileKind::of(&p), FileKind::MutableMetadata);
        let h = "a".repeat(64);
        let p = TreePath::from_request_path(&format!("/targets/x/{h}.app%20v1.tar")).unwrap();
        assert_eq!(p.file_name(), format!("{h}.app v1.tar"));
        assert_eq!(FileKind::of(&p), FileKind::ContentAddressedTarget);
    }

    #[test]
    fn refuses_hostile_paths() {
        for raw in [
            "/targets/../sealwright.toml",
            "/targets/%2e%2e/sealwright.toml",
            "/targets/%2E%2E/sealwright.toml",
            "/targets/a%2f..%2f..%2fsealwright.toml",
            "/targets/a%5c..",
            "/targets/a%00b",
            "/targets//etc/passwd",
            "/targets/.hidden",
            "/metadata/.timestamp.json.1.tmp",
            "/targets/%ff",
            "/targets/./x",
            "/targets/a%0ab",
        ] {
            assert!(
                matches!(TreePath::from_request_path(raw), Err(PathError::Refused(_))),
                "{raw} should be refused"
            );
        }
        for raw in [
            "/",
            "/sealwright.toml",
            "/metadata",
            "/keys/x",
            "/metadata/",
        ] {
            assert!(TreePath::from_request_path(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn decodes_once() {
        // %252e%252e decodes to the literal name "%2e%2e", which is harmless.
        let p = TreePath::from_request_path("/targets/%252e%252e").unwrap();
        assert_eq!(p.file_name(), "%2e%2e");
    }
}
