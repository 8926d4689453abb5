//! Where served files come from: the [`TreeStore`] trait and its file-system implementation.
//!
//! A store opens a validated [`TreePath`] and hands back a seekable async reader, the length
//! and the [`FileKind`]. The file-system store resolves paths with `openat2(RESOLVE_BENEATH)`
//! (falling back to a canonicalise-and-compare check), so symbolic links may not lead out of
//! the tree, and it serves regular files only.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncSeek};

use crate::path::{content_hash, FileKind, TreePath};

/// A reader a served file can be streamed from, from any offset.
pub trait ObjectReader: AsyncRead + AsyncSeek + Send + Unpin {}
impl<T: AsyncRead + AsyncSeek + Send + Unpin> ObjectReader for T {}

/// An opened file: everything needed to answer a request for it.
pub struct StoredObject {
    /// The content, positioned at offset 0.
    pub reader: Box<dyn ObjectReader>,
    /// Length in bytes (of the file that `reader` reads, not of whatever the path names now).
    pub len: u64,
    /// Caching class.
    pub kind: FileKind,
    /// Strong entity tag value (without quotes): the content's SHA-256 in hex.
    pub etag: String,
}

impl std::fmt::Debug for StoredObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredObject")
            .field("len", &self.len)
            .field("kind", &self.kind)
            .field("etag", &self.etag)
            .finish_non_exhaustive()
    }
}

/// Why a file could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Nothing servable at this path (missing, a directory, a special file).
    #[error("not found")]
    NotFound,
    /// The path resolves outside the tree (a symbolic link leading out).
    #[error("path leads outside the served tree")]
    Escapes,
    /// Reading failed.
    #[error("storage error: {0}")]
    Io(#[from] io::Error),
}

/// A boxed future, so that stores can be used as `dyn TreeStore`.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Read-only access to a published tree. The file system today; PostgreSQL or S3 later.
pub trait TreeStore: Send + Sync + 'static {
    /// Opens the file at `path`.
    fn open<'a>(&'a self, path: &'a TreePath) -> StoreFuture<'a, Result<StoredObject, StoreError>>;

    /// Whether the store can serve at all (for `/healthz`).
    fn healthy(&self) -> StoreFuture<'_, bool>;
}

/// Entries kept in the digest cache before it is emptied.
const DIGEST_CACHE_MAX: usize = 16_384;

/// Identity of a file's bytes on disk: same key, same content (files are replaced by rename,
/// which gives a new inode).
type FileIdentity = (u64, u64, u64, i64, i64);

/// Serves `DIR/published/` from the local file system.
#[derive(Debug)]
pub struct FsStore {
    root: PathBuf,
    digests: Arc<Mutex<HashMap<FileIdentity, String>>>,
}

impl FsStore {
    /// A store for the tree at `published` (the directory holding `metadata/` and `targets/`).
    pub fn new(published: impl Into<PathBuf>) -> io::Result<Self> {
        let root = std::fs::canonicalize(published.into())?;
        if !root.is_dir() {
            return Err(io::Error::new(io::ErrorKind::NotFound, "not a directory"));
        }
        Ok(FsStore {
            root,
            digests: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// The canonical directory served.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl TreeStore for FsStore {
    fn open<'a>(&'a self, path: &'a TreePath) -> StoreFuture<'a, Result<StoredObject, StoreError>> {
        Box::pin(async move {
            let root = self.root.clone();
            let rel = path.relative();
            let kind = FileKind::of(path);
            let name_hash = content_hash(path.file_name()).map(str::to_owned);
            let digests = Arc::clone(&self.digests);
            let (file, len, etag) = tokio::task::spawn_blocking(move || {
                open_blocking(&root, &rel, name_hash, &digests)
            })
            .await
            .map_err(|e| StoreError::Io(io::Error::other(e)))??;
            Ok(StoredObject {
                reader: Box::new(tokio::fs::File::from_std(file)),
                len,
                kind,
                etag,
            })
        })
    }

    fn healthy(&self) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            tokio::fs::metadata(&self.root)
                .await
                .is_ok_and(|m| m.is_dir())
        })
    }
}

fn open_blocking(
    root: &Path,
    rel: &Path,
    name_hash: Option<String>,
    digests: &Mutex<HashMap<FileIdentity, String>>,
) -> Result<(std::fs::File, u64, String), StoreError> {
    use std::os::unix::fs::MetadataExt;

    let file = open_beneath(root, rel)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(StoreError::NotFound);
    }
    let len = meta.len();
    let etag = match name_hash {
        Some(h) => h,
        None => {
            let id: FileIdentity = (meta.dev(), meta.ino(), len, meta.mtime(), meta.mtime_nsec());
            let cached = digests.lock().ok().and_then(|m| m.get(&id).cloned());
            match cached {
                Some(h) => h,
                None => {
                    let h = sha256_file(&file, len)?;
                    if let Ok(mut m) = digests.lock() {
                        if m.len() >= DIGEST_CACHE_MAX {
                            m.clear();
                        }
                        m.insert(id, h.clone());
                    }
                    h
                }
            }
        }
    };
    Ok((file, len, etag))
}

/// SHA-256 of the first `len` bytes, read with `pread` so the file position stays at 0.
fn sha256_file(file: &std::fs::File, len: u64) -> io::Result<String> {
    use std::os::unix::fs::FileExt;
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut buf = vec![0u8; 64 * 1024];
    let mut off = 0u64;
    while off < len {
        let n = file.read_at(&mut buf, off)?;
        if n == 0 {
            break;
        }
        ctx.update(buf.get(..n).unwrap_or_default());
        off += n as u64;
    }
    Ok(hex::encode(ctx.finish().as_ref()))
}

#[cfg(target_os = "linux")]
fn open_beneath(root: &Path, rel: &Path) -> Result<std::fs::File, StoreError> {
    use rustix::fs::{openat2, Mode, OFlags, ResolveFlags};
    use rustix::io::Errno;

    let dir = rustix::fs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| StoreError::Io(e.into()))?;
    match openat2(
        &dir,
        rel,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => {
            let file = std::fs::File::from(fd);
            // O_NONBLOCK only kept a FIFO from blocking the open; regular files ignore it.
            Ok(file)
        }
        Err(Errno::XDEV) => Err(StoreError::Escapes),
        Err(Errno::NOENT | Errno::NOTDIR | Errno::ISDIR | Errno::LOOP | Errno::NAMETOOLONG) => {
            Err(StoreError::NotFound)
        }
        Err(Errno::NOSYS | Errno::PERM) => open_checked(root, rel),
        Err(e) => Err(StoreError::Io(e.into())),
    }
}

#[cfg(not(target_os = "linux"))]
fn open_beneath(root: &Path, rel: &Path) -> Result<std::fs::File, StoreError> {
    open_checked(root, rel)
}

/// Portable fallback: resolve every link, check the result is inside the tree, open it, and
/// check that the opened file is the one that was checked.
fn open_checked(root: &Path, rel: &Path) -> Result<std::fs::File, StoreError> {
    use std::os::unix::fs::MetadataExt;
    let real = match std::fs::canonicalize(root.join(rel)) {
        Ok(p) => p,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StoreError::NotFound),
        Err(e) => return Err(StoreError::Io(e)),
    };
    if !real.starts_with(root) {
        return Err(StoreError::Escapes);
    }
    let before = std::fs::symlink_metadata(&real)?;
    let file = std::fs::File::open(&real)?;
    let after = file.metadata()?;
    if before.ino() != after.ino() || before.dev() != after.dev() {
        return Err(StoreError::NotFound);
    }
    Ok(file)
}
