//! Offline bundles (PRODUCT.md C5): one tar file carrying exactly the files a client fetches
//! to install the newest release of a product on a channel — every root version from 1, the
//! timestamp, snapshot, targets and delegated roles on the pointer's search path, the channel
//! pointer and the artifact — stored under the paths the client would request
//! (`metadata/...`, `targets/...`), plus a `sealwright-bundle.json` manifest for people.
//!
//! The bundle is made by running the real client against the repository and recording
//! every file it fetched, so a bundle only exists if it verified at creation time. Applying
//! a bundle runs the very same engine ([`crate::install::update_with`]) with a
//! [`BundleFetcher`] in place of HTTPS: the device's own trusted root, the device's clock
//! for expiry, the signed lengths and hashes as size caps. Nothing in the manifest is
//! trusted.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use chrono::Utc;
use sealwright_crypto::digest::Hasher;
use serde::Serialize;

use crate::fetch::{FetchError, Fetcher};
use crate::install::{
    load_config, log_failure, pointer_path, resolve_release, InstallError, InstallOptions,
    ResolvedRelease, UpdateReport,
};
use crate::updater::{Updater, UpdaterConfig};

/// Name of the manifest entry.
pub const MANIFEST: &str = "sealwright-bundle.json";
/// URL scheme the bundle fetcher answers.
const BUNDLE_BASE: &str = "bundle:";
/// Most entries a bundle may have.
pub const MAX_BUNDLE_ENTRIES: usize = 100_000;
const MAX_NAME: usize = 4096;

/// Why a bundle could not be made or opened.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BundleError(pub String);

fn berr(e: impl std::fmt::Display) -> BundleError {
    BundleError(e.to_string())
}

/// Serves `url`s below `bundle:` from a bundle file, size-capped like any download.
#[derive(Debug)]
pub struct BundleFetcher {
    file: File,
    index: HashMap<String, (u64, u64)>,
}

impl BundleFetcher {
    /// Indexes the bundle at `path` (names and offsets only; contents are read on request).
    pub fn open(path: &Path) -> Result<Self, BundleError> {
        let file = File::open(path).map_err(|e| BundleError(format!("{}: {e}", path.display())))?;
        let mut index = HashMap::new();
        // Scoped: the archive borrows the file only while indexing.
        {
            let mut archive = tar::Archive::new(&file);
            // Seeking past each entry's content: indexing a bundle with a 1 GiB artifact
            // reads its headers, not the gigabyte (which verification then reads once).
            let entries = archive
                .entries_with_seek()
                .map_err(|e| BundleError(format!("{} is not a bundle: {e}", path.display())))?;
            for entry in entries {
                let entry = entry
                    .map_err(|e| BundleError(format!("{} is corrupt: {e}", path.display())))?;
                if index.len() >= MAX_BUNDLE_ENTRIES {
                    return Err(BundleError(format!(
                        "{} has more than {MAX_BUNDLE_ENTRIES} entries",
                        path.display()
                    )));
                }
                if !entry.header().entry_type().is_file() {
                    continue;
                }
                let name = String::from_utf8(entry.path_bytes().into_owned()).map_err(|_| {
                    BundleError(format!("{}: an entry name is not UTF-8", path.display()))
                })?;
                if name.len() > MAX_NAME {
                    return Err(BundleError(format!(
                        "{}: an entry name is too long",
                        path.display()
                    )));
                }
                index.insert(name, (entry.raw_file_position(), entry.size()));
            }
        }
        Ok(BundleFetcher { file, index })
    }
}

impl Fetcher for BundleFetcher {
    fn fetch_to(&self, url: &str, max_len: u64, sink: &mut dyn Write) -> Result<u64, FetchError> {
        let name = url.strip_prefix(BUNDLE_BASE).unwrap_or(url);
        let Some(&(offset, size)) = self.index.get(name) else {
            return Err(FetchError::NotFound {
                url: url.to_owned(),
                status: 404,
            });
        };
        if size > max_len {
            return Err(FetchError::TooLarge {
                url: url.to_owned(),
                max: max_len,
            });
        }
        let mut buf = vec![0u8; 64 * 1024];
        let mut done: u64 = 0;
        while done < size {
            let want = usize::try_from((size - done).min(buf.len() as u64)).unwrap_or(buf.len());
            let chunk = buf.get_mut(..want).unwrap_or_default();
            let n = self
                .file
                .read_at(chunk, offset.saturating_add(done))
                .map_err(|e| FetchError::Transport {
                    url: url.to_owned(),
                    message: e.to_string(),
                })?;
            if n == 0 {
                return Err(FetchError::Transport {
                    url: url.to_owned(),
                    message: "bundle is truncated".into(),
                });
            }
            sink.write_all(chunk.get(..n).unwrap_or_default())
                .map_err(|source| FetchError::Io {
                    url: url.to_owned(),
                    source,
                })?;
            done += n as u64;
        }
        Ok(done)
    }
}

/// Serves `url`s below `base` from a published tree on disk (`published/`).
#[derive(Debug)]
pub struct DirFetcher {
    base: String,
    root: PathBuf,
}

impl DirFetcher {
    /// `root` answers URLs starting with `base`.
    pub fn new(base: impl Into<String>, root: impl Into<PathBuf>) -> Self {
        DirFetcher {
            base: base.into(),
            root: root.into(),
        }
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl Fetcher for DirFetcher {
    fn fetch_to(&self, url: &str, max_len: u64, sink: &mut dyn Write) -> Result<u64, FetchError> {
        let not_found = || FetchError::NotFound {
            url: url.to_owned(),
            status: 404,
        };
        let rel = url
            .strip_prefix(&self.base)
            .and_then(percent_decode)
            .ok_or_else(not_found)?;
        if rel
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(not_found());
        }
        let file = match File::open(self.root.join(&rel)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(not_found()),
            Err(e) => {
                return Err(FetchError::Transport {
                    url: url.to_owned(),
                    message: e.to_string(),
                })
            }
        };
        let mut reader = file.take(max_len.saturating_add(1));
        let n = io::copy(&mut reader, sink).map_err(|source| FetchError::Io {
            url: url.to_owned(),
            source,
        })?;
        if n > max_len {
            return Err(FetchError::TooLarge {
                url: url.to_owned(),
                max: max_len,
            });
        }
        Ok(n)
    }
}

/// Records every file fetched through it (into temporary files).
struct Recording<F> {
    inner: F,
    base: String,
    /// Scratch space: recorded files in `files/`, the client's metadata in `metadata/`.
    work: tempfile::TempDir,
    files: RefCell<Vec<(String, PathBuf)>>,
}

impl<F: Fetcher> Fetcher for Recording<F> {
    fn fetch_to(&self, url: &str, max_len: u64, sink: &mut dyn Write) -> Result<u64, FetchError> {
        let io_err = |source| FetchError::Io {
            url: url.to_owned(),
            source,
        };
        let n_files = self.files.borrow().len();
        let path = self.work.path().join("files").join(format!("{n_files}"));
        let mut file = File::create(&path).map_err(io_err)?;
        let mut tee = Tee {
            a: sink,
            b: &mut file,
        };
        let n = self.inner.fetch_to(url, max_len, &mut tee)?;
        let name = url.strip_prefix(&self.base).unwrap_or(url).to_owned();
        self.files.borrow_mut().push((name, path));
        Ok(n)
    }
}

struct Tee<'a> {
    a: &'a mut dyn Write,
    b: &'a mut File,
}

impl Write for Tee<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.a.write_all(buf)?;
        self.b.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.a.flush()?;
        self.b.flush()
    }
}

/// What went into a bundle.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct BundleManifest {
    /// Format version.
    pub format: u32,
    /// Product.
    pub name: String,
    /// Channel.
    pub channel: String,
    /// Version the bundle installs.
    pub version: String,
    /// Artifact target path.
    pub target: String,
    /// When it was made.
    pub created: String,
    /// Entries (bundle path, length).
    pub files: Vec<(String, u64)>,
}

/// Makes a bundle of the newest `name` on `channel` from the repository at `base` (served
/// by `fetcher`: HTTPS or a [`DirFetcher`]), starting from the trusted `root` (version 1 of
/// the repository's root is requested too, so devices pinned to any root version can
/// follow the chain). Written atomically to `out`.
pub fn create_bundle<F: Fetcher>(
    fetcher: F,
    base: &str,
    root: &[u8],
    name: &str,
    channel: &str,
    out: &Path,
) -> Result<BundleManifest, BundleError> {
    let rec = Recording::new(fetcher, base)?;
    let mut updater = rec.refresh(root)?;
    let md = rec.metadata_dir();
    let ptr_path = pointer_path(name, channel);
    // The same resolution a device runs: the artifact's own entry, found by the delegation
    // search for its path, so the bundle carries every role on both search paths.
    let ResolvedRelease {
        pointer,
        pointer_entry,
        artifact: tf,
        artifact_role,
    } = resolve_release(&mut updater, name, channel).map_err(berr)?;
    // The pointer file itself (for tools reading the bundle as a TUF tree).
    let mut sink = io::sink();
    let ptr_url = updater
        .target_url(&pointer_entry, &ptr_path)
        .map_err(berr)?;
    rec.fetch_to(&ptr_url, pointer_entry.length, &mut sink)
        .map_err(berr)?;
    let url = updater.target_url(&tf, &pointer.target).map_err(berr)?;
    let mut hasher = HashSink(tf.hasher());
    rec.fetch_to(&url, tf.length, &mut hasher).map_err(berr)?;
    tf.check_digests(&hasher.0.finish())
        .map_err(|e| BundleError(format!("{}: {e}", pointer.target)))?;
    record_provenance(&rec, &mut updater, &tf)?;
    // The transparency log's proofs, when the repository serves them: a device that requires
    // the log checks them from the bundle exactly as it would online.
    if let Ok(entries) =
        crate::install::log_entries(&md, &updater, &pointer.target, &tf, &artifact_role)
    {
        record_log_proofs(&rec, base, &entries);
    }
    drop(updater);

    let manifest = BundleManifest {
        format: 1,
        name: name.to_owned(),
        channel: channel.to_owned(),
        version: pointer.version.clone(),
        target: pointer.target.clone(),
        created: String::new(),
        files: Vec::new(),
    };
    write_bundle(out, manifest, &rec.files.into_inner())
}

/// Makes the evidence for the release whose artifact is `target_path` (O3): the files a
/// client fetches to verify that path — the metadata chain from root version 1 through the
/// role that lists it — and the transparency log's proofs of its entry and of that role's
/// metadata, with the hash tiles to prove consistency; not the artifact itself (the auditor
/// has it). `verify-release` decides from it with no network. Written atomically to `out`.
pub fn create_evidence<F: Fetcher>(
    fetcher: F,
    base: &str,
    root: &[u8],
    target_path: &str,
    out: &Path,
) -> Result<BundleManifest, BundleError> {
    let rec = Recording::new(fetcher, base)?;
    let mut updater = rec.refresh(root)?;
    let md = rec.metadata_dir();
    let found = updater
        .get_targetinfo(target_path)
        .map_err(berr)?
        .ok_or_else(|| {
            BundleError(format!(
                "{target_path} is not in the signed metadata: no role trusted for that path lists it"
            ))
        })?;
    record_provenance(&rec, &mut updater, &found.target)?;
    let entries =
        crate::install::log_entries(&md, &updater, target_path, &found.target, &found.role)
            .map_err(berr)?;
    if !record_log_proofs(&rec, base, &entries) {
        eprintln!("note: the repository serves no transparency-log proof for {target_path}; the evidence holds the metadata chain only");
    }
    let signed = |k: &str| {
        found
            .target
            .custom
            .as_ref()
            .and_then(|c| c.get("sealwright")?.get(k)?.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    drop(updater);
    let manifest = BundleManifest {
        format: 1,
        name: signed("name"),
        channel: String::new(),
        version: signed("version"),
        target: target_path.to_owned(),
        created: String::new(),
        files: Vec::new(),
    };
    write_bundle(out, manifest, &rec.files.into_inner())
}

impl<F: Fetcher> Recording<F> {
    fn new(inner: F, base: &str) -> Result<Self, BundleError> {
        let work = tempfile::tempdir().map_err(berr)?;
        std::fs::create_dir_all(work.path().join("files")).map_err(berr)?;
        Ok(Recording {
            inner,
            base: base.to_owned(),
            work,
            files: RefCell::new(Vec::new()),
        })
    }

    fn metadata_dir(&self) -> PathBuf {
        self.work.path().join("metadata")
    }

    /// Runs the client's refresh from `root`, recording every file, root version 1 included
    /// (a device may be pinned to it; a repository without versioned root files is refused
    /// by the engine later anyway).
    fn refresh(&self, root: &[u8]) -> Result<Updater<&Self>, BundleError> {
        let md = self.metadata_dir();
        crate::updater::init(&md, root).map_err(berr)?;
        let metadata_url = format!("{}metadata/", self.base);
        let mut sink = io::sink();
        self.fetch_to(
            &format!("{metadata_url}1.root.json"),
            512 * 1024 * 1024,
            &mut sink,
        )
        .map_err(berr)?;
        let config = UpdaterConfig::new(&md, &metadata_url)
            .with_targets(self.work.path().join("t"), format!("{}targets/", self.base));
        let mut updater = Updater::new(config, self, Utc::now()).map_err(berr)?;
        updater.refresh().map_err(berr)?;
        Ok(updater)
    }
}

/// Records the attestations (provenance, reproductions) the artifact's signed entry links,
/// so a device or auditor that requires them checks them from the file exactly as it
/// would online. (Malformed links are left for that check to refuse.)
fn record_provenance<F: Fetcher>(
    rec: &Recording<F>,
    updater: &mut Updater<&Recording<F>>,
    artifact: &sealwright_tuf::TargetFile,
) -> Result<(), BundleError> {
    let Ok(links) =
        sealwright_attest::evidence::EvidenceLinks::from_custom(artifact.custom.as_deref())
    else {
        return Ok(());
    };
    for link in links.provenance().into_iter().chain(links.reproductions()) {
        if let Some(found) = updater.get_targetinfo(&link.path).map_err(berr)? {
            let url = updater
                .target_url(&found.target, &link.path)
                .map_err(berr)?;
            rec.fetch(&url, found.target.length).map_err(berr)?;
        }
    }
    Ok(())
}

/// Writes the recorded `files` (bundle path, file) and `manifest` (its file list and time
/// filled in here) as a bundle at `out`, atomically.
fn write_bundle(
    out: &Path,
    mut manifest: BundleManifest,
    files: &[(String, PathBuf)],
) -> Result<BundleManifest, BundleError> {
    for (n, p) in files {
        manifest
            .files
            .push((n.clone(), std::fs::metadata(p).map_err(berr)?.len()));
    }
    manifest.created = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".sealwright-bundle-")
        .tempfile_in(parent)
        .map_err(berr)?;
    {
        let mut builder = tar::Builder::new(tmp.as_file_mut());
        let mbytes = serde_json::to_vec_pretty(&manifest).map_err(berr)?;
        append(
            &mut builder,
            MANIFEST,
            &mut &mbytes[..],
            mbytes.len() as u64,
        )?;
        let mut seen = std::collections::HashSet::new();
        for (n, p) in files {
            if !seen.insert(n.clone()) {
                continue;
            }
            let mut f = File::open(p).map_err(berr)?;
            let len = f.metadata().map_err(berr)?.len();
            append(&mut builder, n, &mut f, len)?;
        }
        builder.finish().map_err(berr)?;
    }
    tmp.as_file().sync_all().map_err(berr)?;
    tmp.persist(out).map_err(|e| berr(e.error))?;
    sealwright_fs::sync_dir(parent).map_err(berr)?;
    Ok(manifest)
}

/// Records the log's proof of each entry and every hash tile of the newest checkpoint among
/// them (from which a device proves consistency with whatever checkpoint it saw before);
/// whether it could. Best effort: a repository without a log gives a bundle without proofs,
/// which a device that requires the log refuses.
fn record_log_proofs<F: Fetcher>(
    rec: &Recording<F>,
    base: &str,
    entries: &[sealwright_tlog::entry::Entry],
) -> bool {
    let mut size = 0;
    for entry in entries {
        let Ok(bytes) = entry.to_bytes() else {
            return false;
        };
        let leaf = sealwright_tlog::merkle::leaf_hash(&bytes);
        let url = format!("{base}log/proof/{}", hex::encode(leaf));
        let Ok(proof) = rec.fetch(&url, sealwright_tlog::proof::MAX_PROOF_BYTES as u64) else {
            return false;
        };
        let Some(checkpoint) = sealwright_tlog::proof::TlogProof::parse(&proof)
            .ok()
            .and_then(|p| sealwright_tlog::Note::parse(&p.checkpoint).ok())
            .and_then(|n| sealwright_tlog::Checkpoint::parse(n.text()).ok())
        else {
            return false;
        };
        size = size.max(checkpoint.size);
    }
    for tile in sealwright_tlog::tile::tiles_between(0, size) {
        if matches!(tile.kind, sealwright_tlog::tile::TileKind::Hashes(_)) {
            let url = format!("{base}log/{tile}");
            if rec
                .fetch(&url, sealwright_tlog::tile::FULL_TILE_BYTES as u64)
                .is_err()
            {
                return false;
            }
        }
    }
    true
}

fn append(
    b: &mut tar::Builder<&mut File>,
    name: &str,
    data: &mut dyn Read,
    len: u64,
) -> Result<(), BundleError> {
    let mut h = tar::Header::new_gnu();
    h.set_size(len);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, name, data).map_err(berr)
}

struct HashSink(Hasher);

impl Write for HashSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What [`verify_release`] checked, in the order it checked it.
#[derive(Debug, Serialize)]
pub struct ReleaseVerification {
    /// The artifact's target path.
    pub target: String,
    /// The release's version.
    pub version: String,
    /// One line per check that passed.
    pub checks: Vec<String>,
}

/// O3: decides offline — no network at all — whether `artifact` is the release that
/// `evidence` (an offline bundle) carries, trusting only `root`: the TUF chain from that root
/// (expiry at `now`), the artifact's own signed entry found by the client's delegation
/// search, its length and hashes; and with `log`, the transparency log's proofs of the
/// artifact's entry and of the metadata that lists it, against the log key and the witness
/// quorum. The bundle's manifest only says which release to look up; nothing in it is
/// trusted.
pub fn verify_release(
    root: &[u8],
    evidence: &Path,
    artifact: &Path,
    log: Option<&crate::install::LogPolicy>,
    provenance: Option<&crate::install::ProvenancePolicy>,
    now: chrono::DateTime<Utc>,
) -> Result<ReleaseVerification, InstallError> {
    let fail = |stage: &'static str| move |e: String| InstallError::new(stage, e);
    let work = tempfile::tempdir().map_err(|e| fail("evidence")(e.to_string()))?;
    let md = work.path().join("metadata");
    crate::updater::init(&md, root).map_err(|e| fail("metadata")(e.to_string()))?;
    let fetcher = BundleFetcher::open(evidence).map_err(|e| fail("evidence")(e.to_string()))?;
    let manifest: BundleManifest = fetcher
        .fetch(&format!("{BUNDLE_BASE}{MANIFEST}"), 16 * 1024 * 1024)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        .map_err(|e| fail("evidence")(format!("its manifest: {e}")))?;
    let config = UpdaterConfig::new(&md, format!("{BUNDLE_BASE}metadata/"))
        .with_targets(work.path().join("t"), format!("{BUNDLE_BASE}targets/"));
    let mut updater =
        Updater::new(config, &fetcher, now).map_err(|e| fail("metadata")(e.to_string()))?;
    updater
        .refresh()
        .map_err(|e| fail("metadata")(format!("the metadata chain does not verify: {e}")))?;
    let mut checks = Vec::new();
    let trusted = updater.trusted();
    checks.push(format!(
        "root: the chain from the given root verifies up to version {}",
        trusted.root().signed.version
    ));
    if let (Some(ts), Some(snap)) = (trusted.timestamp(), trusted.snapshot()) {
        checks.push(format!(
            "timestamp version {} and snapshot version {}: signed by the root's keys, unexpired at {}",
            ts.signed.version,
            snap.signed.version,
            now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ));
    }
    // A bundle names a product and channel (the release its pointer names); evidence
    // names one target path. Either way the artifact's entry comes from the delegation
    // search, never from the manifest.
    let (target, version, entry, artifact_role) = if manifest.channel.is_empty() {
        let found = updater
            .get_targetinfo(&manifest.target)
            .map_err(|e| fail("metadata")(format!("looking up {}: {e}", manifest.target)))?
            .ok_or_else(|| {
                fail("verify")(format!(
                    "{} is not in the signed metadata: no role trusted for that path lists it",
                    manifest.target
                ))
            })?;
        let version = found
            .target
            .custom
            .as_ref()
            .and_then(|c| c.get("sealwright")?.get("version")?.as_str())
            .unwrap_or("(none signed)")
            .to_owned();
        (manifest.target.clone(), version, found.target, found.role)
    } else {
        let ResolvedRelease {
            pointer,
            artifact,
            artifact_role,
            ..
        } = resolve_release(&mut updater, &manifest.name, &manifest.channel)?;
        (pointer.target, pointer.version, artifact, artifact_role)
    };
    checks.push(format!(
        "{target}: listed by role {artifact_role}, reached by the delegation search for its path"
    ));
    let mut file =
        File::open(artifact).map_err(|e| fail("verify")(format!("{}: {e}", artifact.display())))?;
    let mut hasher = HashSink(entry.hasher());
    let len = io::copy(&mut file, &mut hasher)
        .map_err(|e| fail("verify")(format!("{}: {e}", artifact.display())))?;
    if len != entry.length {
        return Err(fail("verify")(format!(
            "{} is {len} bytes; the signed entry says {}",
            artifact.display(),
            entry.length
        )));
    }
    entry
        .check_digests(&hasher.0.finish())
        .map_err(|e| fail("verify")(format!("{}: {e}", artifact.display())))?;
    checks.push(format!(
        "{}: {len} bytes and every signed hash match",
        artifact.display()
    ));
    if let Some(policy) = provenance {
        let builder = crate::install::provenance_check::require_provenance(
            &mut updater,
            &target,
            &entry,
            policy,
        )?;
        checks.push(format!(
            "provenance: SLSA Provenance v1 over these bytes, built by {builder}, signed by {} of the given builder keys{}",
            policy.threshold,
            match policy.reproductions {
                0 => String::new(),
                k => format!("; reproduced bit for bit by {k} of the given rebuilders"),
            }
        ));
    }
    if let Some(policy) = log {
        let entries = crate::install::log_entries(&md, &updater, &target, &entry, &artifact_role)?;
        crate::install::log_check::require_logged(
            work.path(),
            policy,
            updater.fetcher(),
            &format!("{BUNDLE_BASE}log/"),
            &entries,
        )?;
        checks.push(format!(
            "transparency log: the artifact's entry and role {artifact_role}'s are included in a checkpoint signed by {}{}",
            policy.key.split('+').next().unwrap_or_default(),
            if policy.quorum > 0 {
                format!(", cosigned by {} of the given witnesses", policy.quorum)
            } else {
                String::new()
            }
        ));
    }
    Ok(ReleaseVerification {
        target,
        version,
        checks,
    })
}

/// Applies the bundle at `bundle` to the client directory `dir` with exactly the checks of
/// a network update (the product, channel and trusted root are the device's own).
pub fn update_from_bundle(
    dir: &Path,
    bundle: &Path,
    opts: &InstallOptions<'_>,
) -> Result<UpdateReport, InstallError> {
    let result = (|| {
        let mut config = load_config(dir)?;
        config.metadata_url = format!("{BUNDLE_BASE}metadata/");
        config.targets_url = format!("{BUNDLE_BASE}targets/");
        let fetcher = BundleFetcher::open(bundle).map_err(|e| InstallError {
            stage: "config",
            message: format!("{e} (copy the bundle again)"),
            version: None,
            target: None,
            quarantined: None,
        })?;
        crate::install::update_with(dir, &config, fetcher, opts)
    })();
    if let Err(e) = &result {
        log_failure(dir, e, Utc::now());
    }
    result
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bundle_fetcher_caps_sizes_and_answers_only_what_it_holds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.tar");
        {
            let f = File::create(&path).unwrap();
            let mut b = tar::Builder::new(f);
            let mut h = tar::Header::new_gnu();
            h.set_size(5);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, "metadata/timestamp.json", &b"hello"[..])
                .unwrap();
            b.finish().unwrap();
        }
        let f = BundleFetcher::open(&path).unwrap();
        assert_eq!(
            f.fetch("bundle:metadata/timestamp.json", 5).unwrap(),
            b"hello"
        );
        assert!(matches!(
            f.fetch("bundle:metadata/timestamp.json", 4),
            Err(FetchError::TooLarge { .. })
        ));
        assert!(f
            .fetch("bundle:metadata/2.root.json", 100)
            .unwrap_err()
            .is_not_found());
        std::fs::write(dir.path().join("junk"), b"not a tar at all").unwrap();
        assert!(
            BundleFetcher::open(&dir.path().join("junk"))
                .map(|f| f.index.len())
                .unwrap_or(0)
                == 0
        );
    }

    #[test]
    fn dir_fetcher_stays_inside_its_tree() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("tree/metadata")).unwrap();
        std::fs::write(dir.path().join("tree/metadata/a b.json"), b"x").unwrap();
        std::fs::write(dir.path().join("secret"), b"s").unwrap();
        let f = DirFetcher::new("repo:", dir.path().join("tree"));
        assert_eq!(f.fetch("repo:metadata/a%20b.json", 10).unwrap(), b"x");
        for bad in [
            "repo:../secret",
            "repo:metadata/%2E%2E/../secret",
            "repo:/etc/passwd",
            "other:x",
        ] {
            assert!(f.fetch(bad, 10).is_err(), "{bad}");
        }
    }
}

/// A bundle is an untrusted file: any bytes give a fetcher or an error, never a panic, and
/// a fetcher answers at most the size asked for.
#[cfg(test)]
mod props {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_bundle_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..8192),
            name in "[a-z./]{0,20}",
            max in 0u64..64,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("b.tar");
            std::fs::write(&path, &bytes).unwrap();
            if let Ok(f) = BundleFetcher::open(&path) {
                if let Ok(body) = f.fetch(&format!("bundle:{name}"), max) {
                    prop_assert!(body.len() as u64 <= max);
                }
            }
        }
    }
}
