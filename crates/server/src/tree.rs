//! Where served files come from: the [`Tree`] trait and its file-system implementation.
//!
//! A tree opens a validated [`TreePath`] and hands back the content (in memory for small
//! files, a seekable async reader otherwise), the length and the [`FileKind`]. The file-system tree resolves paths with `openat2(RESOLVE_BENEATH)`
//! (falling back to a canonicalise-and-compare check), so symbolic links may not lead out of
//! the tree, and it serves regular files only.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncSeek};

use crate::path::{content_hash, FileKind, TreePath};

/// A reader a served file can be streamed from, from any offset.
pub trait ObjectReader: AsyncRead + AsyncSeek + Send + Unpin {}
impl<T: AsyncRead + AsyncSeek + Send + Unpin> ObjectReader for T {}

/// The bytes of an opened file.
pub enum Content {
    /// Small files (metadata, mostly), read whole: answering from memory skips a trip to the
    /// blocking thread pool per read, which dominates the cost of serving `timestamp.json`.
    InMemory(Bytes),
    /// Larger files, positioned at offset 0, streamed.
    Stream(Box<dyn ObjectReader>),
}

/// An opened file: everything needed to answer a request for it.
pub struct TreeObject {
    /// The content.
    pub content: Content,
    /// Length in bytes (of the file that was opened, not of whatever the path names now).
    pub len: u64,
    /// Caching class.
    pub kind: FileKind,
    /// Strong entity tag value (without quotes): the content's SHA-256 in hex.
    pub etag: String,
}

impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Content::InMemory(b) => write!(f, "InMemory({} bytes)", b.len()),
            Content::Stream(_) => f.write_str("Stream"),
        }
    }
}

impl std::fmt::Debug for TreeObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TreeObject")
            .field("len", &self.len)
            .field("kind", &self.kind)
            .field("etag", &self.etag)
            .finish_non_exhaustive()
    }
}

/// Why a file could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
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

/// A boxed future, so that stores can be used as `dyn Tree`.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Read-only access to a published tree. The file system today; PostgreSQL or S3 later.
pub trait Tree: Send + Sync + 'static {
    /// Opens the file at `path`.
    fn open<'a>(&'a self, path: &'a TreePath) -> StoreFuture<'a, Result<TreeObject, TreeError>>;

    /// Whether the tree can serve at all (for `/healthz`).
    fn healthy(&self) -> StoreFuture<'_, bool>;
}

/// Entries kept in the digest cache before it is emptied.
const DIGEST_CACHE_MAX: usize = 16_384;
/// Files up to this size are read whole and kept in memory.
pub(crate) const SMALL_FILE: u64 = 256 * 1024;
/// Bytes of small files kept in memory before the cache is emptied.
pub(crate) const SMALL_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// Identity of a file's bytes on disk: same key, same content (files are replaced by rename,
/// which gives a new inode).
type FileIdentity = (u64, u64, u64, i64, i64);

/// Serves `DIR/published/` from the local file system.
#[derive(Debug)]
pub struct FsTree {
    root: PathBuf,
    digests: Arc<Mutex<HashMap<FileIdentity, String>>>,
    small: Arc<Mutex<SmallFiles>>,
}

/// Contents of small files by identity. A file is replaced by rename (a new inode, so a new
/// identity), so an entry can never serve bytes the path no longer names.
#[derive(Debug, Default)]
struct SmallFiles {
    files: HashMap<FileIdentity, (String, Bytes)>,
    bytes: usize,
}

impl FsTree {
    /// A tree for the tree at `published` (the directory holding `metadata/` and `targets/`).
    pub fn new(published: impl Into<PathBuf>) -> io::Result<Self> {
        let root = std::fs::canonicalize(published.into())?;
        if !root.is_dir() {
            return Err(io::Error::new(io::ErrorKind::NotFound, "not a directory"));
        }
        Ok(FsTree {
            root,
            digests: Arc::new(Mutex::new(HashMap::new())),
            small: Arc::new(Mutex::new(SmallFiles::default())),
        })
    }

    /// The canonical directory served.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Tree for FsTree {
    fn open<'a>(&'a self, path: &'a TreePath) -> StoreFuture<'a, Result<TreeObject, TreeError>> {
        Box::pin(async move {
            let root = &self.root;
            let rel = path.relative();
            let kind = FileKind::of(path);
            let name_hash = content_hash(path.file_name()).map(str::to_owned);
            let (content, len, etag) = match open_and_look_up(
                root,
                &rel,
                name_hash.as_deref(),
                &self.digests,
                &self.small,
            )? {
                Lookup::Ready(content, len, etag) => (content, len, etag),
                Lookup::MustRead(file, id, len) => {
                    let digests = Arc::clone(&self.digests);
                    let small = Arc::clone(&self.small);
                    tokio::task::spawn_blocking(move || {
                        read_blocking(file, id, len, name_hash, &digests, &small)
                    })
                    .await
                    .map_err(|e| TreeError::Io(io::Error::other(e)))??
                }
            };
            Ok(TreeObject {
                content,
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

/// What [`open_and_look_up`] found: the answer, or an open file whose bytes must be read.
enum Lookup {
    Ready(Content, u64, String),
    MustRead(std::fs::File, FileIdentity, u64),
}

/// Opens the file and answers from the caches when they hold its identity.
///
/// This runs on the async worker thread, not the blocking pool: it is an `openat2` and an
/// `fstat` on a local tree, microseconds once the dentries are cached (nginx makes the same
/// calls in its event loop), while a trip through the blocking pool halves the requests per
/// second for `timestamp.json`. Reading and hashing, which can take long, are left to
/// [`read_blocking`].
fn open_and_look_up(
    root: &Path,
    rel: &Path,
    name_hash: Option<&str>,
    digests: &Mutex<HashMap<FileIdentity, String>>,
    small: &Mutex<SmallFiles>,
) -> Result<Lookup, TreeError> {
    use std::os::unix::fs::MetadataExt;

    let file = open_beneath(root, rel)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(TreeError::NotFound);
    }
    let len = meta.len();
    let id: FileIdentity = (meta.dev(), meta.ino(), len, meta.mtime(), meta.mtime_nsec());
    if len <= SMALL_FILE {
        if let Some((etag, bytes)) = small.lock().ok().and_then(|m| m.files.get(&id).cloned()) {
            return Ok(Lookup::Ready(Content::InMemory(bytes), len, etag));
        }
    } else if let Some(etag) = name_hash
        .map(str::to_owned)
        .or_else(|| digests.lock().ok().and_then(|m| m.get(&id).cloned()))
    {
        return Ok(Lookup::Ready(stream(file), len, etag));
    }
    Ok(Lookup::MustRead(file, id, len))
}

/// Reads a small file whole, or hashes a large one, and remembers the result.
fn read_blocking(
    file: std::fs::File,
    id: FileIdentity,
    len: u64,
    name_hash: Option<String>,
    digests: &Mutex<HashMap<FileIdentity, String>>,
    small: &Mutex<SmallFiles>,
) -> Result<(Content, u64, String), TreeError> {
    use std::os::unix::fs::FileExt;

    if len <= SMALL_FILE {
        // `len` is at most SMALL_FILE, so this allocation is bounded.
        let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
        file.read_exact_at(&mut buf, 0)?;
        let etag = match name_hash {
            Some(h) => h,
            None => {
                hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &buf).as_ref())
            }
        };
        let bytes = Bytes::from(buf);
        if let Ok(mut m) = small.lock() {
            if m.bytes + bytes.len() > SMALL_CACHE_BYTES {
                m.files.clear();
                m.bytes = 0;
            }
            m.bytes += bytes.len();
            m.files.insert(id, (etag.clone(), bytes.clone()));
        }
        return Ok((Content::InMemory(bytes), len, etag));
    }
    let etag = sha256_file(&file, len)?;
    if let Ok(mut m) = digests.lock() {
        if m.len() >= DIGEST_CACHE_MAX {
            m.clear();
        }
        m.insert(id, etag.clone());
    }
    Ok((stream(file), len, etag))
}

fn stream(file: std::fs::File) -> Content {
    Content::Stream(Box::new(tokio::fs::File::from_std(file)))
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
fn open_beneath(root: &Path, rel: &Path) -> Result<std::fs::File, TreeError> {
    use rustix::fs::{openat2, Mode, OFlags, ResolveFlags};
    use rustix::io::Errno;

    let dir = rustix::fs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| TreeError::Io(e.into()))?;
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
        Err(Errno::XDEV) => Err(TreeError::Escapes),
        Err(Errno::NOENT | Errno::NOTDIR | Errno::ISDIR | Errno::LOOP | Errno::NAMETOOLONG) => {
            Err(TreeError::NotFound)
        }
        Err(Errno::NOSYS | Errno::PERM) => open_checked(root, rel),
        Err(e) => Err(TreeError::Io(e.into())),
    }
}

#[cfg(not(target_os = "linux"))]
fn open_beneath(root: &Path, rel: &Path) -> Result<std::fs::File, TreeError> {
    open_checked(root, rel)
}

/// Portable fallback: resolve every link, check the result is inside the tree, open it, and
/// check that the opened file is the one that was checked.
fn open_checked(root: &Path, rel: &Path) -> Result<std::fs::File, TreeError> {
    use std::os::unix::fs::MetadataExt;
    let real = match std::fs::canonicalize(root.join(rel)) {
        Ok(p) => p,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(TreeError::NotFound),
        Err(e) => return Err(TreeError::Io(e)),
    };
    if !real.starts_with(root) {
        return Err(TreeError::Escapes);
    }
    let before = std::fs::symlink_metadata(&real)?;
    let file = std::fs::File::open(&real)?;
    let after = file.metadata()?;
    if before.ino() != after.ino() || before.dev() != after.dev() {
        return Err(TreeError::NotFound);
    }
    Ok(file)
}
