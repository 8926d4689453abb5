//! `sealwright witness`: a c2sp.org/tlog-witness server — it cosigns a log's checkpoint only
//! when it extends the last one it cosigned for that log ([`sealwright_tlog::witness`]).
//!
//! Guarantees (beyond the checks of [`sealwright_tlog::witness::decide`]):
//! - one process per witness directory (an exclusive lock on `witness.lock`);
//! - the compare-and-store of a log's size is atomic (one mutex around check, store and
//!   cosign), and the new state is on disk (`state.json`, written atomically) before the
//!   cosignature is answered: a witness that crashes never cosigns a size it would not
//!   remember, and two racing requests can't both pass;
//! - the key is an encrypted key file (the passphrase as for every key: prompt,
//!   `SEALWRIGHT_PASSPHRASE_FILE`), opened once at start.
//!
//! Served over plain HTTP: a cosignature carries its own signature, so transport security
//! adds nothing to what a client checks; put TLS in front when the network asks for it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

use sealwright_crypto::{PrivateKey, Signer};
use sealwright_repo::fsutil;
use sealwright_tlog::note::{KeyKind, NoteError, NoteSigner, Verifier};
use sealwright_tlog::witness::{
    decide, AddCheckpoint, Cosigned, Refusal, MAX_REQUEST_BYTES, SIZE_CONTENT_TYPE,
};

/// The witness's configuration, `DIR/witness.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessConfig {
    /// The witness's name (its key's name in cosignatures).
    pub name: String,
    /// Verifier keys of the logs it follows (each log's origin is its key's name).
    #[serde(default)]
    pub logs: Vec<String>,
}

/// The config file.
pub const CONFIG_FILE: &str = "witness.toml";
/// The encrypted key file.
pub const KEY_FILE: &str = "witness-key.pem";
/// What it last cosigned, per origin.
pub const STATE_FILE: &str = "state.json";
const LOCK_FILE: &str = "witness.lock";

/// Why the witness cannot start or be configured.
#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    /// A file.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why.
        source: std::io::Error,
    },
    /// Anything else, said plainly.
    #[error("{0}")]
    Invalid(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> WitnessError {
    let what = what.into();
    move |source| WitnessError::Io { what, source }
}

/// A witness's last cosigned head for one log, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredHead {
    size: u64,
    root: String,
}

/// A cosignature key held in memory, from a key file.
#[derive(Debug)]
pub struct CosignerKey {
    key: PrivateKey,
    verifier: Verifier,
}

impl CosignerKey {
    /// `key` (Ed25519) as the cosigner `name`.
    pub fn new(name: &str, key: PrivateKey) -> Result<Self, WitnessError> {
        let public = key
            .public_key()
            .ed25519_bytes()
            .ok_or_else(|| WitnessError::Invalid("a witness key is Ed25519".into()))?;
        let verifier = Verifier::new(name, KeyKind::Cosignature, public)
            .map_err(|e| WitnessError::Invalid(e.to_string()))?;
        Ok(CosignerKey { key, verifier })
    }
}

impl NoteSigner for CosignerKey {
    fn verifier(&self) -> &Verifier {
        &self.verifier
    }
    fn sign_message(&self, message: &[u8]) -> Result<[u8; 64], NoteError> {
        self.key
            .sign(message)
            .map_err(|e| NoteError::Sign(e.to_string()))?
            .try_into()
            .map_err(|_| NoteError::Sign("an Ed25519 signature is 64 bytes".into()))
    }
}

/// Reads `DIR/witness.toml`.
pub fn load_config(dir: &Path) -> Result<WitnessConfig, WitnessError> {
    let path = dir.join(CONFIG_FILE);
    let bytes = fsutil::read_capped(&path, 1024 * 1024)
        .map_err(io(format!("reading {}", path.display())))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| WitnessError::Invalid(format!("{} is not UTF-8", path.display())))?;
    toml::from_str(&text).map_err(|e| WitnessError::Invalid(format!("{}: {e}", path.display())))
}

/// Writes `DIR/witness.toml`.
pub fn save_config(dir: &Path, config: &WitnessConfig) -> Result<(), WitnessError> {
    let text = toml::to_string_pretty(config).map_err(|e| WitnessError::Invalid(e.to_string()))?;
    fsutil::write_atomic(&dir.join(CONFIG_FILE), text.as_bytes())
        .map_err(io("writing witness.toml"))
}

/// The witness's state and key while it serves.
struct Witness {
    dir: PathBuf,
    logs: Vec<Verifier>,
    key: CosignerKey,
    state: Mutex<BTreeMap<String, StoredHead>>,
}

impl std::fmt::Debug for Witness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Witness")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Witness {
    /// One `add-checkpoint`: check, store, cosign — under one lock.
    fn add_checkpoint(&self, body: &[u8]) -> Result<String, Refusal> {
        let request = AddCheckpoint::parse(body)?;
        let mut state = self
            .state
            .lock()
            .map_err(|_| Refusal::BadRequest("the witness state is poisoned".into()))?;
        let (checkpoint, note) = decide(&request, &self.logs, |origin| {
            let head = state.get(origin)?;
            let root = B64.decode(&head.root).ok()?.try_into().ok()?;
            Some(Cosigned {
                size: head.size,
                root,
            })
        })?;
        let mut next = state.clone();
        next.insert(
            checkpoint.origin.clone(),
            StoredHead {
                size: checkpoint.size,
                root: B64.encode(checkpoint.root),
            },
        );
        let bytes =
            serde_json::to_vec_pretty(&next).map_err(|e| Refusal::BadRequest(e.to_string()))?;
        // Stored before it is answered: a cosignature is never out before its state.
        fsutil::write_atomic(&self.dir.join(STATE_FILE), &bytes)
            .map_err(|e| Refusal::BadRequest(format!("cannot store the witness state: {e}")))?;
        *state = next;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        sealwright_tlog::note::sign(note.text(), &self.key, now)
            .map(|s| s.line())
            .map_err(|e| Refusal::BadRequest(e.to_string()))
    }
}

async fn add_checkpoint(State(w): State<Arc<Witness>>, body: Bytes) -> Response {
    let witness = Arc::clone(&w);
    let result = tokio::task::spawn_blocking(move || witness.add_checkpoint(&body)).await;
    match result {
        Ok(Ok(line)) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            line,
        )
            .into_response(),
        Ok(Err(Refusal::Conflict(size))) => (
            StatusCode::CONFLICT,
            [(header::CONTENT_TYPE, SIZE_CONTENT_TYPE)],
            format!("{size}\n"),
        )
            .into_response(),
        Ok(Err(refusal)) => (
            StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::BAD_REQUEST),
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{refusal}\n"),
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Serves the witness in `dir` on `listen` until SIGINT or SIGTERM; `on_ready` gets the
/// bound address and the witness's verifier key.
pub fn serve(
    dir: &Path,
    key: PrivateKey,
    listen: SocketAddr,
    on_ready: impl FnOnce(SocketAddr, &str),
) -> Result<(), WitnessError> {
    let config = load_config(dir)?;
    let _lock = fsutil::lock_exclusive(&dir.join(LOCK_FILE)).map_err(io(
        "locking the witness directory (is another witness serving it?)",
    ))?;
    let logs = config
        .logs
        .iter()
        .map(|v| {
            Verifier::from_vkey(v).map_err(|e| WitnessError::Invalid(format!("log key {v}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let state = match fsutil::read_capped(&dir.join(STATE_FILE), 16 * 1024 * 1024) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            WitnessError::Invalid(format!(
                "{} is corrupt ({e}): it is what stops this witness cosigning a fork; restore it rather than delete it",
                dir.join(STATE_FILE).display()
            ))
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => return Err(io("reading the witness state")(e)),
    };
    let key = CosignerKey::new(&config.name, key)?;
    let vkey = key.verifier.vkey();
    let witness = Arc::new(Witness {
        dir: dir.to_owned(),
        logs,
        key,
        state: Mutex::new(state),
    });
    let app = Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(witness);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(io("starting the runtime"))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(io(format!("listening on {listen}")))?;
        let addr = listener
            .local_addr()
            .map_err(io("reading the bound address"))?;
        on_ready(addr, &vkey);
        let shutdown = crate::shutdown_signal().map_err(io("installing the signal handlers"))?;
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(io("serving"))
    })
}
