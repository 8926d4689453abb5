//! [`SharedTree`]: a replica serves the published tree of a shared store — each path looked
//! up in PostgreSQL, its bytes read from S3 under their SHA-256 and checked against it.
//!
//! Every path except `timestamp.json` and `root.json` names the same bytes forever once
//! published ([`sealwright_store::shared::MUTABLE_PATHS`]), so its lookup is cached for the
//! life of the process; the two mutable ones are looked up on every request, so a replica
//! serves a new publish as soon as it is committed, whichever replica took it. Small files
//! are kept in memory by hash, large ones in `DIR/cache/` (downloaded once, checked, then
//! streamed from disk with range support).

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use sealwright_store::shared::MUTABLE_PATHS;
use sealwright_store::{PublishedFile, Shared};

use crate::path::{FileKind, TreePath};
use crate::tree::{
    Content, StoreFuture, Tree, TreeError, TreeObject, SMALL_CACHE_BYTES, SMALL_FILE,
};

/// Path lookups kept before the cache is emptied.
const PATH_CACHE_MAX: usize = 65_536;

/// The published tree of a shared store.
#[derive(Debug)]
pub struct SharedTree {
    store: Arc<Shared>,
    cache_dir: PathBuf,
    paths: Mutex<HashMap<String, PublishedFile>>,
    small: Mutex<(HashMap<String, Bytes>, usize)>,
}

fn io_err(e: impl std::fmt::Display) -> TreeError {
    TreeError::Io(io::Error::other(e.to_string()))
}

impl SharedTree {
    /// Serves `store`, caching large files in `cache_dir`.
    pub fn new(store: Arc<Shared>, cache_dir: PathBuf) -> Self {
        SharedTree {
            store,
            cache_dir,
            paths: Mutex::new(HashMap::new()),
            small: Mutex::new((HashMap::new(), 0)),
        }
    }

    async fn look_up(&self, rel: &str) -> Result<PublishedFile, TreeError> {
        let mutable = MUTABLE_PATHS.contains(&rel);
        if !mutable {
            if let Some(f) = self.paths.lock().ok().and_then(|p| p.get(rel).cloned()) {
                return Ok(f);
            }
        }
        let found = self
            .store
            .resolve(rel)
            .await
            .map_err(io_err)?
            .ok_or(TreeError::NotFound)?;
        if !mutable {
            if let Ok(mut paths) = self.paths.lock() {
                if paths.len() >= PATH_CACHE_MAX {
                    paths.clear();
                }
                paths.insert(rel.to_owned(), found.clone());
            }
        }
        Ok(found)
    }

    async fn small_bytes(&self, file: &PublishedFile) -> Result<Bytes, TreeError> {
        if let Some(b) = self
            .small
            .lock()
            .ok()
            .and_then(|s| s.0.get(&file.sha256).cloned())
        {
            return Ok(b);
        }
        let bytes = self
            .store
            .object(&file.sha256, file.length)
            .await
            .map_err(io_err)?;
        if let Ok(mut s) = self.small.lock() {
            if s.1 + bytes.len() > SMALL_CACHE_BYTES {
                *s = (HashMap::new(), 0);
            }
            s.1 += bytes.len();
            s.0.insert(file.sha256.clone(), bytes.clone());
        }
        Ok(bytes)
    }
}

impl Tree for SharedTree {
    fn open<'a>(&'a self, path: &'a TreePath) -> StoreFuture<'a, Result<TreeObject, TreeError>> {
        Box::pin(async move {
            let rel = path.relative();
            let rel = rel.to_str().ok_or(TreeError::NotFound)?;
            let file = self.look_up(rel).await?;
            let content = if file.length <= SMALL_FILE {
                Content::InMemory(self.small_bytes(&file).await?)
            } else {
                let local = self.cache_dir.join(&file.sha256);
                if !tokio::fs::try_exists(&local).await.unwrap_or(false) {
                    self.store
                        .object_to_file(&file.sha256, &local, file.length)
                        .await
                        .map_err(io_err)?;
                }
                Content::Stream(Box::new(tokio::fs::File::open(&local).await?))
            };
            Ok(TreeObject {
                content,
                len: file.length,
                kind: FileKind::of(path),
                etag: file.sha256,
            })
        })
    }

    fn healthy(&self) -> StoreFuture<'_, bool> {
        Box::pin(self.store.healthy())
    }
}
