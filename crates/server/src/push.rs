//! The publish API: `PUT /api/v1/blobs/{sha256}` and `POST /api/v1/push`, and two reads
//! of the index: `GET /api/v1/blobs/{sha256}` (is it stored? a publisher skips uploading
//! what is) and `GET /api/v1/targets?prefix=P&after=A&limit=N` (what is published).
//!
//! All need `Authorization: Bearer TOKEN` with a token from `DIR/push-tokens.toml` (read on
//! every request, so `sealwright token add` needs no restart). A blob is streamed to a
//! temporary file, hashed on the way, capped, and kept only when its SHA-256 is the one in
//! the URL; it is not served until signed targets metadata names it. A push is checked by
//! [`sealwright_repo::push::accept`] — the same threshold verification the client runs — and
//! published with snapshot and timestamp signed by the signer agent. Every request that
//! changes or tries to change the repository, accepted or refused, is written to the audit
//! log before the answer is sent.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Request, State};
use axum::extract::{Extension, Query};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use http_body_util::BodyExt as _;
use serde_json::json;

use sealwright_repo::publish::RoleCache;
use sealwright_repo::push::{self, PushError, PushRequest};

use crate::accept::{self, TokenEntry};
use sealwright_repo::{staging, Keyring, Policy};
use sealwright_store::{Catalog, Index};

use crate::storage::Storage;
use crate::ClientCert;

/// Largest artifact a single upload may carry, unless configured otherwise.
pub const DEFAULT_MAX_BLOB: u64 = 4 * 1024 * 1024 * 1024;
/// Largest push body (the signed roles, as JSON).
pub const MAX_PUSH_BODY: usize = 256 * 1024 * 1024;
/// How often the timestamp is checked for renewal.
pub const RENEW_CHECK: Duration = Duration::from_secs(60);

/// Settings of the publish API.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// The repository (data directory) whose `published/` is served.
    pub repo_dir: PathBuf,
    /// Largest accepted artifact.
    pub max_blob: u64,
    /// CA (PEM) whose client certificates may authenticate publishers, as an alternative to
    /// tokens; each certificate must also be registered (`token add --client-cert`).
    pub client_ca: Option<PathBuf>,
    /// A store shared with other replicas (PostgreSQL + S3) instead of the data directory
    /// alone; the data directory is then this replica's working copy and cache.
    pub shared: Option<sealwright_store::SharedConfig>,
}

#[derive(Clone)]
struct PushState {
    repo_dir: Arc<PathBuf>,
    storage: Arc<Storage>,
    max_blob: u64,
    refusals: Arc<Refusals>,
    /// Roles parsed by earlier pushes, for comparing the next push with them.
    roles: Arc<RoleCache>,
}

/// How often refusals of unauthenticated requests are summarised into the audit log, and
/// the window their rate limit counts over.
pub const REFUSAL_WINDOW: Duration = Duration::from_secs(10);
/// Unauthenticated refusals one source address gets per window before it is answered
/// 429 without the token file even being read.
pub const MAX_REFUSALS_PER_SOURCE: u64 = 30;

/// Requests refused for want of valid credentials, per source address and action, since
/// the last summary. Anyone can send such requests, so each one costs a counter increment,
/// not an fsynced audit record: the audit log gets one summary per source and action per
/// [`REFUSAL_WINDOW`] ([`summarise_refusals`]), and a source over
/// [`MAX_REFUSALS_PER_SOURCE`] is answered 429 until the window ends.
#[derive(Debug, Default)]
pub struct Refusals {
    window: std::sync::Mutex<RefusalCounts>,
}

/// (source address, refused action) → (count, last error).
type RefusalCounts = std::collections::BTreeMap<(String, &'static str), (u64, String)>;

impl Refusals {
    /// Counts one refusal; whether `source` is over its limit for this window.
    fn record(&self, source: &str, action: &'static str, error: &str) -> bool {
        let Ok(mut w) = self.window.lock() else {
            return true;
        };
        let entry = w
            .entry((source.to_owned(), action))
            .or_insert((0, String::new()));
        entry.0 = entry.0.saturating_add(1);
        error.clone_into(&mut entry.1);
        Self::count_in(&w, source) > MAX_REFUSALS_PER_SOURCE
    }

    /// Refusals of `source` in this window, over every action.
    fn count(&self, source: &str) -> u64 {
        self.window
            .lock()
            .map(|w| Self::count_in(&w, source))
            .unwrap_or(0)
    }

    fn count_in(window: &RefusalCounts, source: &str) -> u64 {
        window
            .iter()
            .filter(|((s, _), _)| s == source)
            .map(|(_, (n, _))| *n)
            .sum()
    }

    fn take(&self) -> RefusalCounts {
        self.window
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default()
    }
}

/// Writes one audit record per source and action refused in the last window; runs until
/// the server stops.
pub async fn summarise_refusals(storage: Arc<Storage>, refusals: Arc<Refusals>) {
    let mut tick = tokio::time::interval(REFUSAL_WINDOW);
    loop {
        tick.tick().await;
        let counted = refusals.take();
        if counted.is_empty() {
            continue;
        }
        let storage = Arc::clone(&storage);
        let _ = tokio::task::spawn_blocking(move || {
            for ((source, action), (count, last_error)) in counted {
                audit(
                    &storage,
                    "unauthenticated",
                    "refused-summary",
                    &source,
                    json!({"refused": action, "count": count, "window_seconds": REFUSAL_WINDOW.as_secs(), "last_error": last_error}),
                );
            }
        })
        .await;
    }
}

impl PushState {
    /// The publisher of a request, or the response refusing it. A refusal is counted for
    /// the summary (never written to the audit log one by one) and a source over its limit
    /// gets 429 without any lookup.
    async fn publisher(
        &self,
        headers: &HeaderMap,
        cert: Option<&ClientCert>,
        peer: Option<&crate::PeerAddr>,
        action: &'static str,
    ) -> Result<TokenEntry, Response> {
        let source = peer.map_or_else(|| "unknown".to_owned(), |p| p.0.ip().to_string());
        if self.refusals.count(&source) >= MAX_REFUSALS_PER_SOURCE {
            self.refusals.record(&source, action, "rate limited");
            return Err(too_many());
        }
        let storage = Arc::clone(&self.storage);
        let (headers, cert) = (headers.clone(), cert.cloned());
        match blocking(move || authenticate(storage.token_home(), &headers, cert.as_ref())).await {
            Ok(token) => Ok(token),
            Err(e) => {
                let over = self.refusals.record(&source, action, &e.to_string());
                Err(if over { too_many() } else { refusal(&e) })
            }
        }
    }
}

fn too_many() -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, HeaderValue::from_static("10"))],
        axum::Json(json!({"error": "rate-limited", "message": "too many requests without valid credentials from this address; wait and send a valid token"})),
    )
        .into_response()
}

/// Checks that the data directory can take pushes: a policy whose online keys are all in
/// the signer agent. (The private-key scan of the whole directory runs at startup too.)
pub fn check_ready(repo_dir: &Path) -> Result<(), PushError> {
    let policy = Policy::load(repo_dir).map_err(|e| PushError::NotReady(e.to_string()))?;
    push::check_online_keys_in_agent(&policy)
}

/// The publish API's routes, publishing into `storage`.
pub fn routes(opts: &PushOptions, storage: Arc<Storage>, refusals: Arc<Refusals>) -> Router {
    let state = PushState {
        repo_dir: Arc::new(opts.repo_dir.clone()),
        storage,
        max_blob: opts.max_blob,
        refusals,
        roles: Arc::default(),
    };
    Router::new()
        .route("/api/v1/blobs/{sha256}", put(upload_blob).get(blob_info))
        .route("/api/v1/push", post(push_roles))
        .route("/api/v1/targets", get(list_targets))
        .route("/log/proof/{leaf}", get(log_proof))
        // Bodies are capped by each handler while streaming.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// Renews the online roles through the agent whenever less than a quarter of a role's
/// validity is left (snapshot and timestamp: [`accept::renew_online_roles`]), and warns about
/// offline roles nearing expiry; runs until the server stops.
pub async fn renew_online_roles(storage: Arc<Storage>, metrics: Arc<crate::Metrics>) {
    let mut tick = tokio::time::interval(RENEW_CHECK);
    loop {
        tick.tick().await;
        let storage = Arc::clone(&storage);
        let metrics = Arc::clone(&metrics);
        let outcome = tokio::task::spawn_blocking(move || {
            let dir = storage.dir();
            let policy = Policy::load(dir).map_err(|e| PushError::NotReady(e.to_string()))?;
            let store = Keyring::new(dir, &accept::NoKeyFiles);
            let now = chrono::Utc::now();
            let r = storage.begin().and_then(|mut session| {
                let renewed = accept::renew_online_roles(&mut session, &policy, &store, now)?;
                if renewed.timestamp.is_some() {
                    // Renewed versions are published versions: the log holds them too.
                    append_to_log(&storage, &mut session, &policy);
                }
                drop(session);
                Ok(renewed)
            });
            match &r {
                Ok(renewed) if renewed.timestamp.is_some() => audit(
                    &storage,
                    "server",
                    "online-renew",
                    "snapshot+timestamp",
                    json!({"snapshot": renewed.snapshot, "timestamp": renewed.timestamp}),
                ),
                Ok(_) => {}
                Err(e) => audit(
                    &storage,
                    "server",
                    "online-renew-failed",
                    "snapshot+timestamp",
                    json!({"error": e.to_string()}),
                ),
            }
            report_expiry(dir, &policy, &metrics, now);
            r
        })
        .await;
        if let Ok(Err(e)) = outcome {
            eprintln!("sealwright serve: renewing the online roles failed: {e}");
        }
    }
}

/// Publishes each top-level role's time to expiry in `/metrics`, and warns in the server log
/// (once a day per role) when an offline role — root or targets, which only their key
/// holders can re-sign — has less than a quarter of its validity period left.
fn report_expiry(
    repo_dir: &Path,
    policy: &Policy,
    metrics: &crate::Metrics,
    now: chrono::DateTime<chrono::Utc>,
) {
    let Ok(published) = sealwright_repo::publish::Published::load(repo_dir) else {
        return;
    };
    let expires = [
        ("root", published.root.as_ref().map(|m| m.signed.expires)),
        (
            "targets",
            published
                .targets_role("targets")
                .ok()
                .flatten()
                .map(|m| m.signed.expires),
        ),
        (
            "snapshot",
            published.snapshot.as_ref().map(|m| m.signed.expires),
        ),
        (
            "timestamp",
            published.timestamp.as_ref().map(|m| m.signed.expires),
        ),
    ];
    for (role, at) in expires {
        let Some(at) = at else { continue };
        let left = (at - now).num_seconds();
        metrics.set_role_expiry(role, left);
        let Some((_, _, period)) = policy.role(role) else {
            continue;
        };
        let offline = matches!(role, "root" | "targets");
        if offline
            && sealwright_repo::publish::expiring(at, period.duration(), now)
            && metrics.should_warn(role, now)
        {
            eprintln!(
                "sealwright serve: warning: {role} expires at {at} ({} hours left); it is signed offline: sign a new version (`sealwright publish` where its keys are, then push or copy it here)",
                left / 3600
            );
        }
    }
}

/// Appends an audit record; a failure to audit is reported on stderr (the request's own
/// outcome is already decided).
fn audit(storage: &Storage, actor: &str, action: &str, subject: &str, details: serde_json::Value) {
    let result = storage.audit(&sealwright_store::NewRecord {
        actor,
        action,
        subject,
        details,
    });
    if let Err(e) = result {
        eprintln!("sealwright serve: could not write the audit record for {action} {subject}: {e}");
    }
}

/// A push's entries, sequenced in the transparency log before the push is published.
struct Sequenced {
    log: crate::translog::TransparencyLog,
    first: u64,
}

impl Sequenced {
    /// The publish failed: unless it failed after devices were switched to it (`timestamp`
    /// is served — an fsync of the directory, the local record of a shared commit), the log
    /// must not claim it. When that cannot be told, or the entries cannot be taken back,
    /// they stay: the log over-states (reported), it never hides.
    fn retract_unless_served(self, session: &crate::storage::Session<'_>, timestamp: &[u8]) {
        let outcome = match session.serves_timestamp(timestamp) {
            Ok(true) => return,
            Ok(false) => self.log.retract(self.first).map_err(|e| e.to_string()),
            Err(e) => Err(format!("is it served? {e}")),
        };
        if let Err(e) = outcome {
            eprintln!(
                "sealwright serve: taking back the log entries of a push that failed: {e} (the log will hold entries of a push that may not be published)"
            );
        }
    }
}

/// Gives a signed push's entries their place in the transparency log before anything of
/// it is published — after the published metadata the log does not hold yet, so the log
/// keeps the order of publishes — with the audit log's head. A server killed once this
/// returned cannot publish what the log will not show (the next push or start integrates
/// it); a log that cannot record refuses the push, with nothing published. Nothing when the
/// server has no log.
fn sequence_before_publishing(
    storage: &Storage,
    session: &mut crate::storage::Session<'_>,
    policy: &Policy,
    entries: &[sealwright_tlog::entry::Entry],
) -> Result<Option<Sequenced>, PushError> {
    let refused = |e: String| {
        PushError::Internal(format!(
            "the transparency log could not record this push, so nothing of it was published: {e}"
        ))
    };
    let dir = session.log_dir_for_writing()?;
    let Some(log) =
        crate::translog::TransparencyLog::open(&dir, policy).map_err(|e| refused(e.to_string()))?
    else {
        return Ok(None);
    };
    let fail = |e: crate::translog::LogError| refused(e.to_string());
    // Published before this push: logged whatever becomes of it.
    log.sequence(&log.unlogged_published().map_err(fail)?)
        .map_err(fail)?;
    let mut batch: Vec<_> = audit_head(storage).into_iter().collect();
    batch.extend_from_slice(entries);
    Ok(log
        .sequence(&batch)
        .map_err(fail)?
        .map(|first| Sequenced { log, first }))
}

/// Integrates what `sequenced` put in the log once its push is published (the checkpoint is
/// signed by the agent's log key); a shared store publishes the log's new files for every
/// replica. The push is published already: a failure is reported (audit record, stderr),
/// not returned, and the sequenced entries are integrated by the next push or start.
fn integrate_after_publishing(
    storage: &Storage,
    session: &mut crate::storage::Session<'_>,
    sequenced: Sequenced,
) {
    let integrated = session
        .log_dir_for_writing()
        .map_err(|e| e.to_string())
        .and_then(|_| integrate_and_publish(session, &sequenced.log));
    if let Err(e) = integrated {
        report_log_failure(storage, &e, None);
    }
}

/// Integrates everything the log's sequence holds and publishes the new files (a shared
/// store commits them for every replica). The caller has called
/// [`crate::storage::Session::log_dir_for_writing`].
fn integrate_and_publish(
    session: &mut crate::storage::Session<'_>,
    log: &crate::translog::TransparencyLog,
) -> Result<(), String> {
    match log.integrate().map_err(|e| e.to_string())? {
        Some(integrated) => session.publish_log(&integrated).map_err(|e| e.to_string()),
        None => Ok(()),
    }
}

/// A log that could not be appended to after a publish: on stderr and in the audit log
/// (`log-failed`, with how many `entries` were to be sequenced when that was part of the
/// step); what was sequenced is integrated by the next push or start.
fn report_log_failure(storage: &Storage, error: &str, entries: Option<usize>) {
    eprintln!("sealwright serve: the transparency log: {error}");
    let details = match entries {
        Some(n) => json!({"error": error, "entries": n}),
        None => json!({"error": error}),
    };
    audit(storage, "server", "log-failed", "log", details);
}

/// The audit log's head, for the transparency log: whoever later cuts its tail or rewrites
/// its anchor contradicts what the public log shows. None for a shared store (its audit log
/// is in its database, not on a replica's disk) or an empty audit log.
fn audit_head(storage: &Storage) -> Option<sealwright_tlog::entry::Entry> {
    let Storage::Embedded { dir, .. } = storage else {
        return None;
    };
    match sealwright_store::AuditLog::open(dir).and_then(|log| log.head()) {
        Ok(Some((records, head))) if records != u64::MAX => {
            Some(sealwright_tlog::entry::Entry::AuditHead { records, head })
        }
        Ok(_) => None,
        Err(e) => {
            eprintln!("sealwright serve: the audit log's head, for the transparency log: {e}");
            None
        }
    }
}

/// Logs what was published without a push (renewed snapshot and timestamp), with the audit
/// log's head, and integrates. Runs under the publish lock of `session`. A failure is
/// reported (audit record, stderr), not returned: the next push or start logs what is
/// published then.
fn append_to_log(storage: &Storage, session: &mut crate::storage::Session<'_>, policy: &Policy) {
    let entries: Vec<_> = audit_head(storage).into_iter().collect();
    if let Err(e) = log_and_publish(session, policy, &entries) {
        report_log_failure(storage, &e, Some(entries.len()));
    }
}

/// Sequences the unlogged published metadata and `entries`, integrates everything pending
/// and publishes the log's new files. Nothing when the server has no log.
fn log_and_publish(
    session: &mut crate::storage::Session<'_>,
    policy: &Policy,
    entries: &[sealwright_tlog::entry::Entry],
) -> Result<(), String> {
    let dir = session.log_dir_for_writing().map_err(|e| e.to_string())?;
    let Some(log) =
        crate::translog::TransparencyLog::open(&dir, policy).map_err(|e| e.to_string())?
    else {
        return Ok(());
    };
    let fail = |e: crate::translog::LogError| e.to_string();
    let mut all = log.unlogged_published().map_err(fail)?;
    all.extend_from_slice(entries);
    log.sequence(&all).map_err(fail)?;
    integrate_and_publish(session, &log)
}

/// `GET /log/proof/LEAF`: the c2sp.org/tlog-proof of the logged entry whose leaf hash is
/// LEAF (64 hex digits) at the current checkpoint — what a device or auditor checks offline
/// against the log key and its witnesses. Public, like the log itself; 404 for an entry not
/// in the log (yet).
async fn log_proof(State(st): State<PushState>, UrlPath(leaf): UrlPath<String>) -> Response {
    let Some(leaf) = Some(&leaf)
        .filter(|l| sealwright_crypto::digest::is_sha256_hex(l))
        .and_then(|l| hex::decode(l).ok())
        .and_then(|l| <[u8; 32]>::try_from(l).ok())
    else {
        return (
            StatusCode::BAD_REQUEST,
            "a leaf hash is 64 lowercase hex digits\n",
        )
            .into_response();
    };
    let storage = Arc::clone(&st.storage);
    let result = tokio::task::spawn_blocking(move || -> Result<Option<Vec<u8>>, String> {
        let dir = storage.dir();
        let policy = Policy::load(dir).map_err(|e| e.to_string())?;
        let Some(log) =
            crate::translog::TransparencyLog::open(dir, &policy).map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        Ok(storage
            .log_proof(&log, &leaf)
            .map_err(|e| e.to_string())?
            .map(|p| p.to_bytes()))
    })
    .await;
    match result {
        Ok(Ok(Some(proof))) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            proof,
        )
            .into_response(),
        Ok(Ok(None)) => (StatusCode::NOT_FOUND, "no such entry in the log\n").into_response(),
        Ok(Err(e)) => {
            eprintln!("sealwright serve: a log proof: {e}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// At start, under the publish lock: integrates what a server killed between sequencing and
/// its checkpoint left pending, and the published top-level metadata no push logged (or
/// signs the empty log's first checkpoint), so `/log/checkpoint` exists before the first
/// push; a replica publishes it to the shared store. Failures (an agent not started yet) are
/// reported; the next push tries again.
pub fn catch_up_log(storage: &Storage) {
    let result = (|| -> Result<(), String> {
        let mut session = storage.begin().map_err(|e| e.to_string())?;
        let policy = Policy::load(storage.dir()).map_err(|e| e.to_string())?;
        log_and_publish(&mut session, &policy, &[])
    })();
    if let Err(e) = result {
        eprintln!(
            "sealwright serve: the transparency log, at start: {e} (the next push tries again)"
        );
    }
}

/// Applies `change` to the index. The index is derived data: a failure is reported on stderr
/// (an embedded index is repaired by deleting `index.sqlite3`: it is rebuilt at the next
/// start).
fn index_update(
    catalog: &dyn Catalog,
    change: impl FnOnce(&dyn Catalog) -> Result<(), sealwright_store::StoreError>,
) {
    if let Err(e) = change(catalog) {
        eprintln!("sealwright serve: updating the index: {e}");
    }
}

/// Builds the index from the data directory when it has none (first start, or deleted to
/// be rebuilt): every blob in the store, every targets role the published snapshot names.
pub fn ensure_index(repo_dir: &Path) -> Result<(), PushError> {
    if Index::exists(repo_dir) {
        return Ok(());
    }
    let listings = accept::published_listings(repo_dir)?;
    let blobs = staging::stored_blobs(repo_dir).map_err(|e| PushError::Internal(e.to_string()))?;
    // Built under a temporary name and renamed: a crash never leaves a half-built index
    // that would be taken for a whole one.
    let building =
        tempfile::tempdir_in(repo_dir).map_err(|e| PushError::Internal(e.to_string()))?;
    let as_internal = |e: sealwright_store::IndexError| PushError::Internal(e.to_string());
    {
        let mut index = Index::open(building.path()).map_err(as_internal)?;
        for (sha256, length) in &blobs {
            index
                .record_blob(sha256, *length, "rebuild")
                .map_err(as_internal)?;
        }
        for l in &listings {
            index
                .replace_role(&l.role, l.version, &l.targets)
                .map_err(as_internal)?;
        }
        index.checkpoint().map_err(as_internal)?;
    }
    let file = sealwright_store::index::INDEX_FILE;
    std::fs::rename(building.path().join(file), repo_dir.join(file))
        .map_err(|e| PushError::Internal(e.to_string()))?;
    sealwright_repo::fsutil::sync_dir(repo_dir).map_err(|e| PushError::Internal(e.to_string()))
}

/// `GET /api/v1/blobs/{sha256}`: whether the blob store holds it (from the index, confirmed
/// on disk), so a publisher uploads only what is missing.
async fn blob_info(
    State(st): State<PushState>,
    UrlPath(sha256): UrlPath<String>,
    headers: HeaderMap,
    cert: Option<Extension<ClientCert>>,
    peer: Option<Extension<crate::PeerAddr>>,
) -> Response {
    if let Err(refused) = st
        .publisher(&headers, cert.as_deref(), peer.as_deref(), "blob-info")
        .await
    {
        return refused;
    }
    let storage = Arc::clone(&st.storage);
    let outcome = blocking(move || storage.has_blob(&sha256)).await;
    match outcome {
        Ok(Some(blob)) => (StatusCode::OK, axum::Json(blob)).into_response(),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": "not-found", "message": "no such blob: upload it"})),
        )
            .into_response(),
        Err(e) => refusal(&e),
    }
}

/// Query of `GET /api/v1/targets`.
#[derive(Debug, serde::Deserialize)]
struct TargetsQuery {
    #[serde(default)]
    prefix: String,
    after: Option<String>,
    limit: Option<u32>,
}

/// `GET /api/v1/targets`: published targets under a path prefix, from the index, in path
/// order; `next` is the `after` of the following page when there may be one.
async fn list_targets(
    State(st): State<PushState>,
    headers: HeaderMap,
    cert: Option<Extension<ClientCert>>,
    peer: Option<Extension<crate::PeerAddr>>,
    Query(q): Query<TargetsQuery>,
) -> Response {
    if let Err(refused) = st
        .publisher(&headers, cert.as_deref(), peer.as_deref(), "targets-list")
        .await
    {
        return refused;
    }
    let storage = Arc::clone(&st.storage);
    let limit = q
        .limit
        .unwrap_or(1000)
        .clamp(1, sealwright_store::index::MAX_LISTING);
    let outcome = blocking(move || {
        storage
            .catalog()
            .targets(&q.prefix, q.after.as_deref(), limit)
            .map_err(|e| PushError::Internal(e.to_string()))
    })
    .await;
    match outcome {
        Ok(targets) => {
            let next = (targets.len() == limit as usize)
                .then(|| targets.last().map(|t| t.path.clone()))
                .flatten();
            (
                StatusCode::OK,
                axum::Json(json!({"targets": targets, "next": next})),
            )
                .into_response()
        }
        Err(e) => refusal(&e),
    }
}

fn refusal(e: &PushError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    // A server failure's detail (file-system paths, errno) is for the operator's log and
    // audit record, never for the client: it maps the server for an attacker.
    let message = match e {
        PushError::Internal(detail) => {
            eprintln!("sealwright serve: internal error: {detail}");
            "the server failed to complete this request; nothing was published. The operator finds the reason in the server log and the audit log (sealwright audit list).".to_owned()
        }
        _ => e.to_string(),
    };
    let mut r = (
        status,
        axum::Json(json!({"error": e.kind(), "message": message})),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    r
}

/// The publisher: the token in `Authorization: Bearer ...` if one is sent, otherwise the
/// client certificate of the connection (already verified against `--client-ca` by the
/// TLS handshake) if its fingerprint is registered.
fn authenticate(
    home: crate::tokens::TokenHome<'_>,
    headers: &HeaderMap,
    cert: Option<&ClientCert>,
) -> Result<TokenEntry, PushError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let (tokens, _) = home.load()?;
    match (presented, cert) {
        (Some(token), _) => tokens
            .authenticate(token)
            .cloned()
            .ok_or_else(|| PushError::Unauthorized("unknown token".into())),
        (None, Some(cert)) => tokens
            .authenticate_client_cert(&cert.0)
            .cloned()
            .ok_or_else(|| {
                PushError::Unauthorized(format!(
                    "client certificate sha256:{} is not registered (`sealwright token add NAME --role ROLE --client-cert CERT.pem`)",
                    cert.0
                ))
            }),
        (None, None) => Err(PushError::Unauthorized(
            "send Authorization: Bearer TOKEN (`sealwright token add`), or connect with a registered client certificate".into(),
        )),
    }
}

/// Runs `f` on the blocking pool (file system, SQLite, the agent's socket).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, PushError> + Send + 'static,
) -> Result<T, PushError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| PushError::Internal(e.to_string()))?
}

async fn upload_blob(
    State(st): State<PushState>,
    UrlPath(sha256): UrlPath<String>,
    headers: HeaderMap,
    req: Request,
) -> Response {
    let actor = match st
        .publisher(
            &headers,
            req.extensions().get::<ClientCert>(),
            req.extensions().get::<crate::PeerAddr>(),
            "blob-upload",
        )
        .await
    {
        Ok(t) => format!("token:{}", t.name),
        Err(refused) => return refused,
    };
    let mut outcome = receive_blob(&st, &sha256, req.into_body()).await;
    if let Ok((len, _)) = outcome {
        // Kept where every replica finds it before the upload is acknowledged.
        let (storage, sha) = (Arc::clone(&st.storage), sha256.clone());
        if let Err(e) = blocking(move || storage.keep_blob(&sha, len)).await {
            outcome = Err(e);
        }
    }
    let storage = Arc::clone(&st.storage);
    let subject = format!("blob {}", printable(&sha256));
    let details = match &outcome {
        Ok((len, fresh)) => json!({"length": len, "new": fresh}),
        Err(e) => json!({"error": e.to_string()}),
    };
    let action = if outcome.is_ok() {
        "blob-upload"
    } else {
        "blob-refused"
    };
    let stored = outcome.as_ref().ok().map(|(len, _)| (sha256.clone(), *len));
    let _ = blocking(move || {
        audit(&storage, &actor, action, &subject, details);
        if let Some((sha256, len)) = stored {
            index_update(storage.catalog(), |index| {
                index.record_blob(&sha256, len, &actor)
            });
        }
        Ok(())
    })
    .await;
    match outcome {
        Ok((len, fresh)) => (
            if fresh {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            },
            axum::Json(json!({"sha256": sha256, "length": len})),
        )
            .into_response(),
        Err(e) => refusal(&e),
    }
}

/// A name safe to print and log: at most 80 visible ASCII characters.
fn printable(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(80)
        .collect()
}

/// Streams the body into `staged/blobs/`, hashing and counting; keeps it only if it hashes
/// to `sha256`. Returns its length and whether it was new.
async fn receive_blob(st: &PushState, sha256: &str, body: Body) -> Result<(u64, bool), PushError> {
    if !sealwright_crypto::digest::is_sha256_hex(sha256) {
        return Err(PushError::Invalid(
            "a blob is named by its SHA-256 in lowercase hex".into(),
        ));
    }
    let dest = sealwright_repo::staging::blob_path(&st.repo_dir, sha256);
    let parent = dest
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| PushError::Internal("blob path has no parent".into()))?;
    let tmp = parent.join(format!(
        ".upload-{}",
        sealwright_repo::fsutil::unique_suffix()
    ));
    let (tmp2, parent2) = (tmp.clone(), parent.clone());
    let file = blocking(move || {
        std::fs::create_dir_all(&parent2).map_err(|e| PushError::Internal(e.to_string()))?;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp2)
            .map_err(|e| PushError::Internal(e.to_string()))
    })
    .await?;

    let mut file = tokio::fs::File::from_std(file);
    let result = async {
        use tokio::io::AsyncWriteExt as _;
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        let mut len: u64 = 0;
        let mut body = body;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| PushError::Invalid(format!("reading the body: {e}")))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            len += data.len() as u64;
            if len > st.max_blob {
                return Err(PushError::TooLarge(format!(
                    "blobs are limited to {} bytes",
                    st.max_blob
                )));
            }
            ctx.update(&data);
            file.write_all(&data)
                .await
                .map_err(|e| PushError::Internal(e.to_string()))?;
        }
        file.flush()
            .await
            .map_err(|e| PushError::Internal(e.to_string()))?;
        let got = hex::encode(ctx.finish().as_ref());
        if got != sha256 {
            return Err(PushError::Artifact(format!(
                "the uploaded bytes hash to {got}, not {sha256}"
            )));
        }
        Ok(len)
    }
    .await;
    let tmp3 = tmp.clone();
    let file = file.into_std().await;
    match result {
        Ok(len) => {
            blocking(move || {
                file.sync_all()
                    .map_err(|e| PushError::Internal(e.to_string()))?;
                drop(file);
                if dest.exists() {
                    // Content-addressed: the same name holds the same bytes; never replaced.
                    let _ = std::fs::remove_file(&tmp3);
                    return Ok((len, false));
                }
                std::fs::rename(&tmp3, &dest).map_err(|e| PushError::Internal(e.to_string()))?;
                sealwright_repo::fsutil::sync_dir(&parent)
                    .map_err(|e| PushError::Internal(e.to_string()))?;
                Ok((len, true))
            })
            .await
        }
        Err(e) => {
            drop(file);
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

async fn push_roles(State(st): State<PushState>, headers: HeaderMap, req: Request) -> Response {
    let dir = Arc::clone(&st.repo_dir);
    let storage = Arc::clone(&st.storage);
    let roles = Arc::clone(&st.roles);
    let token = match st
        .publisher(
            &headers,
            req.extensions().get::<ClientCert>(),
            req.extensions().get::<crate::PeerAddr>(),
            "push",
        )
        .await
    {
        Ok(t) => t,
        Err(refused) => return refused,
    };
    let body = match http_body_util::Limited::new(req.into_body(), MAX_PUSH_BODY)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            let e = PushError::TooLarge(format!("a push body is limited to {MAX_PUSH_BODY} bytes"));
            let storage = Arc::clone(&st.storage);
            let (actor, msg) = (format!("token:{}", token.name), e.to_string());
            let _ = blocking(move || {
                audit(
                    &storage,
                    &actor,
                    "push-refused",
                    "push",
                    json!({"error": msg}),
                );
                Ok(())
            })
            .await;
            return refusal(&e);
        }
    };
    let outcome = blocking(move || {
        let actor = format!("token:{}", token.name);
        let result = (|| -> Result<push::Accepted, PushError> {
            let request: PushRequest = serde_json::from_slice(&body)
                .map_err(|e| PushError::Invalid(format!("the body is not a push request: {e}")))?;
            let policy = Policy::load(&dir).map_err(|e| PushError::Internal(format!("the policy: {e}")))?;
            push::check_online_keys_in_agent(&policy)?;
            let store = Keyring::new(&dir, &accept::NoKeyFiles);
            let mut session = storage.begin()?;
            let signed =
                accept::accept(&mut session, &policy, &store, &token, &request, &roles, chrono::Utc::now())?;
            let sequenced =
                sequence_before_publishing(&storage, &mut session, &policy, signed.entries())?;
            let timestamp = signed.timestamp().to_vec();
            let (accepted, listings) = match signed.publish(&mut session, &roles) {
                Ok(published) => published,
                Err(e) => {
                    if let Some(sequenced) = sequenced {
                        sequenced.retract_unless_served(&session, &timestamp);
                    }
                    return Err(e);
                }
            };
            // Still under the publish lock: the index and the log follow the order of
            // publishes.
            index_update(storage.catalog(), |index| {
                listings
                    .iter()
                    .try_for_each(|l| index.replace_role(&l.role, l.version, &l.targets))
            });
            if let Some(sequenced) = sequenced {
                integrate_after_publishing(&storage, &mut session, sequenced);
            }
            drop(session);
            Ok(accepted)
        })();
        match &result {
            Ok(a) => audit(
                &storage,
                &actor,
                "push",
                "push",
                json!({"roles": a.roles, "artifacts": a.artifacts, "snapshot": a.snapshot_version, "timestamp": a.timestamp_version}),
            ),
            Err(e) => audit(&storage, &actor, "push-refused", "push", json!({"error": e.to_string()})),
        }
        result
    })
    .await;
    match outcome {
        Ok(accepted) => (StatusCode::OK, axum::Json(accepted)).into_response(),
        Err(e) => refusal(&e),
    }
}
