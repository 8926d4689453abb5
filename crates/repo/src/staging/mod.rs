//! `staged/`: artifacts added but not yet published.
//!
//! `add` reads each input file exactly once, hashing it (SHA-256 + SHA-512) while copying it
//! into `staged/blobs/<sha256>`, so what gets published is the bytes that were hashed even if
//! the source changes afterwards. `staged/targets.json` maps each policy role to the target
//! entries it will gain at the next publish. Every target path is checked before any byte is
//! copied: no `..`, no absolute paths, no NUL or control characters, no duplicates.

mod add;

pub(crate) use add::landing_role;
pub use add::{add_artifacts, check_addable, path_allowed, Added};

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use sealwright_crypto::digest::Hasher;

use crate::fsutil;

/// Directory of staged state, relative to the repository.
pub const STAGED_DIR: &str = "staged";
const INDEX_FILE: &str = "targets.json";
const BLOBS_DIR: &str = "blobs";
const MAX_INDEX_BYTES: u64 = 4 * 1024 * 1024 * 1024;
/// Longest target path we publish.
pub const MAX_TARGET_PATH: usize = 1024;

/// A staged target: what its TUF `targets` entry will say.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedTarget {
    /// Length in bytes.
    pub length: u64,
    /// SHA-256, lowercase hex (also the blob's name).
    pub sha256: String,
    /// Index into [`Staging::releases`]: the `custom` object of this file's release.
    pub release: usize,
}

impl StagedTarget {
    /// The SHA-256 (the blob's name).
    pub fn sha256(&self) -> Option<&str> {
        Some(self.sha256.as_str())
    }

    /// The `hashes` object of the TUF entry: SHA-256 alone, as python-tuf and tough list by
    /// default. A second algorithm adds no security a client relies on but halves its
    /// verification speed (SHA-512 has no CPU instructions; SHA-256 has).
    pub fn hashes(&self) -> BTreeMap<String, String> {
        BTreeMap::from([("sha256".to_owned(), self.sha256.clone())])
    }
}

/// The staged index: the releases' `custom` objects (each stored once) and, per role, the
/// target entries to add.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Staging {
    /// `custom` objects, referenced by index from each target.
    #[serde(default)]
    pub releases: Vec<Value>,
    /// Targets to add, per policy role (a succinct delegation's name stands for its bins).
    pub targets: BTreeMap<String, BTreeMap<String, StagedTarget>>,
}

/// Staging failed; nothing was added to the index.
#[derive(Debug, thiserror::Error)]
pub enum StagingError {
    /// I/O, with the path.
    #[error("{path}: {source}")]
    Io {
        /// Which path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A target path is unsafe or malformed.
    #[error("target path {path:?}: {reason}")]
    BadPath {
        /// The path.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The same target path twice with different content.
    #[error("duplicate target {0:?}: it is already staged or given twice with different content")]
    Duplicate(String),
    /// Bad release name, version or channel.
    #[error("{0}")]
    Release(String),
    /// The index is corrupt.
    #[error("staged/targets.json is corrupt: {0}")]
    Corrupt(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StagingError + '_ {
    move |source| StagingError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Name, version and channel of a release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// Product name (first component of every target path).
    pub name: String,
    /// Semantic version.
    pub version: semver::Version,
    /// Channel, e.g. `stable` or `beta`.
    pub channel: Option<String>,
    /// A recovery release: clients may install it even when it is older than what they
    /// run (the only signed way to roll a fleet back, PRODUCT.md C3).
    #[serde(default)]
    pub recovery: bool,
    /// Evidence published beside the release's artifacts and bound to them in the signed
    /// `custom` field: kind (`provenance`, `build-log`, `sbom`) → its target path and
    /// SHA-256. A device that requires provenance follows this, and only this, link.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub evidence: BTreeMap<String, EvidenceFile>,
}

/// One evidence file of a release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceFile {
    /// Its target path.
    pub path: String,
    /// SHA-256 of its bytes, lowercase hex.
    pub sha256: String,
}

impl Release {
    /// Validates the parts of a release.
    pub fn new(name: &str, version: &str, channel: Option<&str>) -> Result<Self, StagingError> {
        crate::policy::check_name("release", name)
            .map_err(|e| StagingError::Release(e.to_string()))?;
        let version = semver::Version::parse(version).map_err(|e| {
            StagingError::Release(format!("version {version:?} is not semantic (x.y.z): {e}"))
        })?;
        if let Some(c) = channel {
            crate::policy::check_name("channel", c)
                .map_err(|e| StagingError::Release(e.to_string()))?;
        }
        Ok(Release {
            name: name.to_owned(),
            version,
            channel: channel.map(str::to_owned),
            recovery: false,
            evidence: BTreeMap::new(),
        })
    }

    /// Binds evidence files to this release.
    pub fn with_evidence(mut self, evidence: BTreeMap<String, EvidenceFile>) -> Self {
        self.evidence = evidence;
        self
    }

    /// Whether `path` is one of this release's evidence files (not an artifact).
    pub fn is_evidence(&self, path: &str) -> bool {
        self.evidence.values().any(|e| e.path == path)
    }

    /// Marks (or unmarks) this release as a recovery release.
    pub fn with_recovery(mut self, recovery: bool) -> Self {
        self.recovery = recovery;
        self
    }

    /// The channel its pointer is published on: the given one, else [`DEFAULT_CHANNEL`].
    pub fn pointer_channel(&self) -> &str {
        self.channel.as_deref().unwrap_or(DEFAULT_CHANNEL)
    }

    /// The `custom` metadata of every target of this release.
    pub fn custom(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("name".into(), Value::String(self.name.clone()));
        m.insert("version".into(), Value::String(self.version.to_string()));
        if let Some(c) = &self.channel {
            m.insert("channel".into(), Value::String(c.clone()));
        }
        if self.recovery {
            m.insert("recovery".into(), Value::Bool(true));
        }
        if !self.evidence.is_empty() {
            m.insert(
                "evidence".into(),
                serde_json::to_value(&self.evidence).unwrap_or_default(),
            );
        }
        serde_json::json!({ "sealwright": m })
    }

    /// The directory all of this release's targets live under: `NAME/VERSION`.
    pub fn prefix(&self) -> String {
        format!("{}/{}", self.name, self.version)
    }
}

/// Channel a release's pointer is published on when `add` names none.
pub const DEFAULT_CHANNEL: &str = "stable";

pub use sealwright_tuf::layout::{channel_pointer_path, is_channel_pointer};

/// The pointer of `release` to its artifact `target` (with that artifact's staged entry):
/// the content of the pointer file and, identical, its `custom.sealwright` object. Clients
/// trust the copy in `custom` (it is inside signed targets metadata) and use the file only
/// for tools that read targets, such as python-tuf.
pub fn channel_pointer(release: &Release, target: &str, entry: &StagedTarget) -> Value {
    serde_json::json!({
        "name": release.name,
        "version": release.version.to_string(),
        "channel": release.pointer_channel(),
        "target": target,
        "length": entry.length,
        "hashes": entry.hashes(),
        "recovery": release.recovery,
    })
}

/// Stages `data` as a blob (for generated targets such as channel pointers).
pub fn stage_bytes(
    repo_dir: &Path,
    data: &[u8],
    release: usize,
) -> Result<StagedTarget, StagingError> {
    let d = sealwright_crypto::digest::Digests::of(data);
    let sha256 = hex::encode(d.sha256);
    let path = blob_path(repo_dir, &sha256);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    write_blob(&path, data)?;
    Ok(entry_for(&d, release))
}

/// Checks a target path is safe to publish and to store on a client.
pub fn validate_target_path(path: &str) -> Result<(), StagingError> {
    let bad = |reason: &str| {
        Err(StagingError::BadPath {
            path: path.to_owned(),
            reason: reason.to_owned(),
        })
    };
    if path.is_empty() {
        return bad("empty");
    }
    if path.len() > MAX_TARGET_PATH {
        return bad("longer than 1024 bytes");
    }
    if path.starts_with('/') {
        return bad("absolute paths are not allowed");
    }
    if path.chars().any(|c| c.is_control()) {
        return bad("contains a NUL or control character");
    }
    if path.contains('\\') {
        return bad("contains a backslash");
    }
    for part in path.split('/') {
        match part {
            "" => return bad("contains an empty component (//) or ends with /"),
            "." | ".." => return bad("contains a . or .. component"),
            p if p.len() > MAX_PATH_COMPONENT => {
                return bad("has a directory name longer than 255 bytes")
            }
            _ => {}
        }
    }
    // Served as `<sha256>.<name>` (consistent snapshots): 65 bytes go to the hash.
    let name = path.rsplit('/').next().unwrap_or(path);
    if name.len() > MAX_TARGET_FILE_NAME {
        return bad("has a file name longer than 190 bytes (it is stored as <sha256>.<name>, and a file name has at most 255 bytes)");
    }
    Ok(())
}

/// Longest directory name in a target path (file systems' `NAME_MAX`).
pub const MAX_PATH_COMPONENT: usize = 255;
/// Longest file name of a target: `NAME_MAX` less the `<sha256>.` prefix it is stored under.
pub const MAX_TARGET_FILE_NAME: usize = MAX_PATH_COMPONENT - 65;

/// One input file and the target path it will have.
#[derive(Clone, Debug)]
pub struct Input {
    /// File on disk.
    pub source: PathBuf,
    /// Target path.
    pub target: String,
}

/// Expands files and directory trees into inputs named `PREFIX/<relative path>`.
///
/// A file given directly is named by its file name; a directory contributes every regular
/// file below it, named by its path relative to the directory. Symbolic links and special
/// files are refused rather than followed: a link could smuggle in a file from elsewhere.
pub fn collect_inputs(paths: &[PathBuf], prefix: &str) -> Result<Vec<Input>, StagingError> {
    let mut out = Vec::new();
    for p in paths {
        let meta = fs::symlink_metadata(p).map_err(io_err(p))?;
        if meta.is_file() {
            let name = file_name_utf8(p)?;
            out.push(Input {
                source: p.clone(),
                target: format!("{prefix}/{name}"),
            });
        } else if meta.is_dir() {
            walk(p, p, prefix, &mut out)?;
        } else {
            return Err(StagingError::BadPath {
                path: p.display().to_string(),
                reason: "not a regular file or directory (symbolic links are not followed)".into(),
            });
        }
    }
    let mut seen = std::collections::HashSet::with_capacity(out.len());
    for i in &out {
        validate_target_path(&i.target)?;
        if !seen.insert(i.target.as_str()) {
            return Err(StagingError::Duplicate(i.target.clone()));
        }
    }
    Ok(out)
}

fn file_name_utf8(p: &Path) -> Result<String, StagingError> {
    p.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or_else(|| StagingError::BadPath {
            path: p.display().to_string(),
            reason: "file name is not UTF-8".into(),
        })
}

fn walk(root: &Path, dir: &Path, prefix: &str, out: &mut Vec<Input>) -> Result<(), StagingError> {
    let mut entries: Vec<fs::DirEntry> = fs::read_dir(dir)
        .map_err(io_err(dir))?
        .collect::<Result<_, _>>()
        .map_err(io_err(dir))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let ft = e.file_type().map_err(io_err(&path))?;
        if ft.is_dir() {
            walk(root, &path, prefix, out)?;
        } else if ft.is_file() {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let rel = rel.to_str().ok_or_else(|| StagingError::BadPath {
                path: path.display().to_string(),
                reason: "path is not UTF-8".into(),
            })?;
            out.push(Input {
                source: path.clone(),
                target: format!("{prefix}/{rel}"),
            });
        } else {
            return Err(StagingError::BadPath {
                path: path.display().to_string(),
                reason: "not a regular file or directory (symbolic links are not followed)".into(),
            });
        }
    }
    Ok(())
}

impl Staging {
    /// Reads `staged/targets.json` (empty when absent).
    pub fn load(repo_dir: &Path) -> Result<Self, StagingError> {
        let path = repo_dir.join(STAGED_DIR).join(INDEX_FILE);
        match fsutil::read_capped(&path, MAX_INDEX_BYTES) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| StagingError::Corrupt(e.to_string()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Staging::default()),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Writes the index atomically.
    pub fn save(&self, repo_dir: &Path) -> Result<(), StagingError> {
        let path = repo_dir.join(STAGED_DIR).join(INDEX_FILE);
        let bytes = serde_json::to_vec(self).map_err(|e| StagingError::Corrupt(e.to_string()))?;
        fsutil::write_atomic(&path, &bytes).map_err(io_err(&path))
    }

    /// Removes the index after a successful publish. Blobs stay: published targets are hard
    /// links to them (no extra space), and they serve as the content store for re-adds.
    pub fn clear(repo_dir: &Path) -> Result<(), StagingError> {
        let p = repo_dir.join(STAGED_DIR).join(INDEX_FILE);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&p)(e)),
        }
    }

    /// Index of `custom` in the release table, adding it if new.
    pub fn release_index(&mut self, custom: &Value) -> usize {
        match self.releases.iter().position(|r| r == custom) {
            Some(i) => i,
            None => {
                self.releases.push(custom.clone());
                self.releases.len() - 1
            }
        }
    }

    /// The `custom` object of a staged target.
    pub fn custom(&self, target: &StagedTarget) -> Result<&Value, StagingError> {
        self.releases.get(target.release).ok_or_else(|| {
            StagingError::Corrupt(format!("release {} is not in the index", target.release))
        })
    }

    /// Number of staged targets.
    pub fn len(&self) -> usize {
        self.targets.values().map(BTreeMap::len).sum()
    }

    /// Whether nothing is staged.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Path of the blob holding content with this SHA-256.
pub fn blob_path(repo_dir: &Path, sha256: &str) -> PathBuf {
    blob_file(&repo_dir.join(STAGED_DIR).join(BLOBS_DIR), sha256)
}

/// Every blob in `staged/blobs/`: its SHA-256 (its name) and length. Files whose name is
/// not a SHA-256 (temporary files of an upload in progress) are skipped.
pub fn stored_blobs(repo_dir: &Path) -> std::io::Result<Vec<(String, u64)>> {
    let blobs = repo_dir.join(STAGED_DIR).join(BLOBS_DIR);
    let mut out = Vec::new();
    let shards = match std::fs::read_dir(&blobs) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for shard in shards {
        let shard = shard?;
        if !shard.file_type()?.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(shard.path())? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let meta = entry.metadata()?;
            if sealwright_crypto::digest::is_sha256_hex(&name) && meta.is_file() {
                out.push((name, meta.len()));
            }
        }
    }
    Ok(out)
}

/// Hashes and copies every input into `staged/blobs/` (in parallel), returning each target's
/// entry. `progress` is called once per finished file.
pub fn hash_and_copy(
    repo_dir: &Path,
    inputs: &[Input],
    release: usize,
    progress: &(dyn Fn() + Sync),
) -> Result<Vec<(String, StagedTarget)>, StagingError> {
    let blobs = repo_dir.join(STAGED_DIR).join(BLOBS_DIR);
    // Blobs are spread over 256 subdirectories by hash prefix: creating thousands of files
    // in parallel in one directory serialises on the directory's lock in the kernel.
    for i in 0..=255u8 {
        let d = blobs.join(format!("{i:02x}"));
        fs::create_dir_all(&d).map_err(io_err(&d))?;
    }
    inputs
        .par_iter()
        .map(|input| {
            let entry = copy_one(&blobs, &input.source, release)?;
            progress();
            Ok((input.target.clone(), entry))
        })
        .collect()
}

/// Files up to this size are read whole (one read, no temporary file).
const SMALL_FILE: u64 = 4 * 1024 * 1024;

fn copy_one(blobs: &Path, source: &Path, release: usize) -> Result<StagedTarget, StagingError> {
    let mut src = fs::File::open(source).map_err(io_err(source))?;
    let len = src.metadata().map_err(io_err(source))?.len();
    let d = if len <= SMALL_FILE {
        let mut data = Vec::with_capacity(len as usize + 1);
        (&mut src)
            .take(SMALL_FILE + 1)
            .read_to_end(&mut data)
            .map_err(io_err(source))?;
        if data.len() as u64 > SMALL_FILE {
            // The file grew while we read it: take the streaming path from the start.
            return copy_streaming(blobs, source, release);
        }
        let d = sealwright_crypto::digest::Digests::of(&data);
        let sha256 = hex::encode(d.sha256);
        write_blob(&blob_file(blobs, &sha256), &data)?;
        d
    } else {
        return copy_streaming(blobs, source, release);
    };
    Ok(entry_for(&d, release))
}

fn copy_streaming(
    blobs: &Path,
    source: &Path,
    release: usize,
) -> Result<StagedTarget, StagingError> {
    let mut src = fs::File::open(source).map_err(io_err(source))?;
    let tmp = blobs.join(format!(".in-{}", fsutil::unique_suffix()));
    let mut dst = fs::File::create(&tmp).map_err(io_err(&tmp))?;
    let mut hasher = Hasher::sha256_only();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = src.read(&mut buf).map_err(io_err(source))?;
        let Some(chunk) = buf.get(..n) else { break };
        if n == 0 {
            break;
        }
        hasher.update(chunk);
        dst.write_all(chunk).map_err(io_err(&tmp))?;
    }
    drop(dst);
    let d = hasher.finish();
    let final_path = blob_file(blobs, &hex::encode(d.sha256));
    fs::rename(&tmp, &final_path).map_err(io_err(&final_path))?;
    Ok(entry_for(&d, release))
}

/// Writes a blob under its hash. One already there with the right length is kept (a torn
/// write from a crash has the wrong length and is replaced; publish re-hashes every blob it
/// links, so a blob is never trusted on its name alone).
fn write_blob(dest: &Path, data: &[u8]) -> Result<(), StagingError> {
    let create = || {
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dest)
    };
    let mut f = match create() {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            if fs::metadata(dest).is_ok_and(|m| m.len() == data.len() as u64) {
                return Ok(());
            }
            fs::remove_file(dest).map_err(io_err(dest))?;
            create().map_err(io_err(dest))?
        }
        Err(e) => return Err(io_err(dest)(e)),
    };
    f.write_all(data).map_err(io_err(dest))
}

fn entry_for(d: &sealwright_crypto::digest::Digests, release: usize) -> StagedTarget {
    StagedTarget {
        length: d.length,
        sha256: hex::encode(d.sha256),
        release,
    }
}

fn blob_file(blobs: &Path, sha256: &str) -> PathBuf {
    blobs.join(sha256.get(..2).unwrap_or("00")).join(sha256)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_paths_are_refused() {
        for p in [
            "",
            "/etc/passwd",
            "a/../b",
            "a/./b",
            "a//b",
            "a/",
            "a\0b",
            "a\\b",
            "..",
            "a\nb",
        ] {
            assert!(validate_target_path(p).is_err(), "{p:?}");
        }
        for p in ["a", "app/1.0.0/bin/app", "é/ü.txt", "a b/c"] {
            validate_target_path(p).unwrap();
        }
        // Names that could not be written once stored as <sha256>.<name>.
        let long_name = format!("app/1.0.0/{}", "n".repeat(MAX_TARGET_FILE_NAME + 1));
        assert!(validate_target_path(&long_name).is_err());
        validate_target_path(&format!("app/1.0.0/{}", "n".repeat(MAX_TARGET_FILE_NAME))).unwrap();
        let long_dir = format!("{}/app", "d".repeat(256));
        assert!(validate_target_path(&long_dir).is_err());
    }

    #[test]
    fn channel_pointer_paths() {
        assert_eq!(
            channel_pointer_path("app", "stable"),
            "app/channels/stable.json"
        );
        assert!(is_channel_pointer("app/channels/stable.json"));
        for p in [
            "app/1.0.0/app.json",
            "app/channels/.json",
            "channels/x.json",
            "a/channels/b/c.json",
        ] {
            assert!(!is_channel_pointer(p), "{p}");
        }
        let r = Release::new("app", "1.2.3", None)
            .unwrap()
            .with_recovery(true);
        assert_eq!(r.pointer_channel(), "stable");
        assert_eq!(r.custom()["sealwright"]["recovery"], true);
    }

    #[test]
    fn release_validation() {
        assert!(Release::new("app", "1.2.3", Some("stable")).is_ok());
        assert!(Release::new("app", "1.2", None).is_err());
        assert!(Release::new("../app", "1.2.3", None).is_err());
        assert!(Release::new("app", "1.2.3", Some("a/b")).is_err());
    }

    #[test]
    fn trees_are_collected_sorted_and_hashed_once() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        fs::create_dir_all(tree.join("sub")).unwrap();
        fs::write(tree.join("b.txt"), b"b").unwrap();
        fs::write(tree.join("sub/a.txt"), b"a").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", tree.join("link")).unwrap();
        assert!(
            collect_inputs(std::slice::from_ref(&tree), "app/1.0.0").is_err(),
            "symlink must be refused"
        );
        fs::remove_file(tree.join("link")).unwrap();
        let inputs = collect_inputs(std::slice::from_ref(&tree), "app/1.0.0").unwrap();
        let names: Vec<_> = inputs.iter().map(|i| i.target.as_str()).collect();
        assert_eq!(names, ["app/1.0.0/b.txt", "app/1.0.0/sub/a.txt"]);
        let repo = dir.path().join("repo");
        let out = hash_and_copy(&repo, &inputs, 0, &|| {}).unwrap();
        assert_eq!(out[0].1.length, 1);
        let sha = out[0].1.sha256().unwrap();
        assert_eq!(fs::read(blob_path(&repo, sha)).unwrap(), b"b");
        assert!(collect_inputs(&[tree.join("b.txt"), tree.join("b.txt")], "p").is_err());
    }
}
