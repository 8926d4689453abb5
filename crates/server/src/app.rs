//! The HTTP application: `/metadata/...`, `/targets/...`, `/healthz`, `/metrics`.

use std::collections::HashMap;
use std::io::{self, SeekFrom};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::metrics::{CountingBody, Metrics};
use crate::path::{Area, FileKind, PathError, TreePath};
use crate::tree::{Content, ObjectReader, Tree, TreeError};

/// Bytes read from storage per body frame.
const CHUNK: usize = 256 * 1024;

#[derive(Clone)]
struct AppState {
    tree: Arc<dyn Tree>,
    metrics: Arc<Metrics>,
    gzipped: Arc<Mutex<GzipCache>>,
}

/// Compressed metadata by the SHA-256 of its uncompressed bytes: content-addressed, so an
/// entry is never stale, and a snapshot of thousands of bins is compressed once, not per
/// request.
#[derive(Default)]
struct GzipCache {
    by_etag: HashMap<String, Bytes>,
    bytes: usize,
}

/// Compressed bytes kept before the gzip cache is emptied.
const GZIP_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// The router serving `tree`, counting into `metrics`.
pub fn router(tree: Arc<dyn Tree>, metrics: Arc<Metrics>) -> Router {
    let state = AppState {
        tree,
        metrics: Arc::clone(&metrics),
        gzipped: Arc::new(Mutex::new(GzipCache::default())),
    };
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .fallback(serve_file)
        .with_state(state)
        .layer(middleware::from_fn_with_state(metrics, count))
}

async fn count(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let guard = metrics.start_request();
    let resp = next.run(req).await;
    metrics.record_status(resp.status().as_u16());
    let (parts, body) = resp.into_parts();
    Response::from_parts(parts, Body::new(CountingBody::new(body, metrics, guard)))
}

async fn healthz(State(st): State<AppState>) -> Response {
    let ok = st.tree.healthy().await;
    let body = serde_json::json!({
        "status": if ok { "ok" } else { "unavailable" },
        "service": "sealwright-server",
        "version": env!("CARGO_PKG_VERSION"),
    });
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(body),
    )
        .into_response()
}

async fn metrics_text(State(st): State<AppState>) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        st.metrics.render(),
    )
        .into_response()
}

fn plain(status: StatusCode, msg: &str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        format!("{msg}\n"),
    )
        .into_response()
}

async fn serve_file(
    State(st): State<AppState>,
    method: Method,
    headers: HeaderMap,
    req: Request,
) -> Response {
    if method != Method::GET && method != Method::HEAD {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let path = match TreePath::from_request_path(req.uri().path()) {
        Ok(p) => p,
        Err(PathError::NotServed) => return plain(StatusCode::NOT_FOUND, "not found"),
        Err(PathError::Refused(why)) => return plain(StatusCode::BAD_REQUEST, why),
    };
    let obj = match st.tree.open(&path).await {
        Ok(o) => o,
        Err(TreeError::NotFound | TreeError::Escapes) => {
            return plain(StatusCode::NOT_FOUND, "not found")
        }
        Err(TreeError::Io(_)) => return plain(StatusCode::INTERNAL_SERVER_ERROR, "storage error"),
    };
    // Metadata is JSON full of repeated keys and hex: gzip shrinks a snapshot of 4096 hash
    // bins about eightfold, which is most of what a first update check costs. Artifacts are
    // sent as stored (they are usually compressed already, and ranges address their bytes).
    let gzip = method == Method::GET
        && matches!(
            obj.kind,
            FileKind::VersionedMetadata | FileKind::MutableMetadata
        )
        && (MIN_GZIP..=MAX_GZIP).contains(&obj.len)
        && !headers.contains_key(header::RANGE)
        && accepts_gzip(&headers);
    // Each representation has its own validator (RFC 9110 §8.8.3).
    let etag = if gzip {
        format!("\"{}-gzip\"", obj.etag)
    } else {
        format!("\"{}\"", obj.etag)
    };
    let len = obj.len;

    let mut h = HeaderMap::new();
    let hv = |s: &str| HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static(""));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(obj.kind.cache_control()),
    );
    h.insert(header::ETAG, hv(&etag));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&path, obj.kind)),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if matches!(
        obj.kind,
        FileKind::VersionedMetadata | FileKind::MutableMetadata
    ) {
        h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }

    if let Some(inm) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        if etag_matches(inm, &etag) {
            let mut r = StatusCode::NOT_MODIFIED.into_response();
            h.remove(header::CONTENT_TYPE);
            *r.headers_mut() = h;
            return r;
        }
    }

    if gzip {
        let Some(compressed) = gzipped(&st.gzipped, &obj.etag, obj.content, len).await else {
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "storage or compression error",
            );
        };
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(compressed.len()));
        h.remove(header::ACCEPT_RANGES);
        let mut r = Response::new(Body::from(compressed));
        *r.headers_mut() = h;
        return r;
    }

    let if_range_ok = headers
        .get(header::IF_RANGE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.trim() == etag);
    let range = match headers.get(header::RANGE) {
        Some(v) if if_range_ok => match v.to_str() {
            Ok(s) => parse_range(s, len),
            Err(_) => RangeOutcome::Unsatisfiable,
        },
        _ => RangeOutcome::Full,
    };
    let (status, start, count) = match range {
        RangeOutcome::Full => (StatusCode::OK, 0, len),
        RangeOutcome::Partial(a, b) => {
            h.insert(header::CONTENT_RANGE, hv(&format!("bytes {a}-{b}/{len}")));
            (StatusCode::PARTIAL_CONTENT, a, b - a + 1)
        }
        RangeOutcome::Unsatisfiable => {
            let mut r = plain(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable");
            r.headers_mut()
                .insert(header::CONTENT_RANGE, hv(&format!("bytes */{len}")));
            if let Some(e) = h.get(header::ETAG) {
                r.headers_mut().insert(header::ETAG, e.clone());
            }
            return r;
        }
    };
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(count));

    let body = if method == Method::HEAD || count == 0 {
        Body::empty()
    } else {
        match obj.content {
            Content::InMemory(bytes) => {
                // `parse_range` keeps `start + count <= len`, and `len` is these bytes' length.
                let (Ok(a), Ok(n)) = (usize::try_from(start), usize::try_from(count)) else {
                    return plain(StatusCode::INTERNAL_SERVER_ERROR, "storage error");
                };
                if a.saturating_add(n) > bytes.len() {
                    return plain(StatusCode::INTERNAL_SERVER_ERROR, "storage error");
                }
                Body::from(bytes.slice(a..a + n))
            }
            Content::Stream(mut reader) => {
                if start > 0 {
                    if let Err(_e) = reader.seek(SeekFrom::Start(start)).await {
                        return plain(StatusCode::INTERNAL_SERVER_ERROR, "storage error");
                    }
                }
                Body::new(FileBody {
                    reader: reader.take(count),
                    remaining: count,
                    buf: BytesMut::new(),
                })
            }
        }
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    *r.headers_mut() = h;
    r
}

/// Metadata smaller than this is not worth compressing.
const MIN_GZIP: u64 = 1024;
/// Metadata larger than this is sent as stored rather than compressed in memory.
const MAX_GZIP: u64 = 32 * 1024 * 1024;

/// The gzip encoding of a file whose SHA-256 is `etag`, from the cache or compressed now.
async fn gzipped(
    cache: &Mutex<GzipCache>,
    etag: &str,
    content: Content,
    len: u64,
) -> Option<Bytes> {
    if let Some(hit) = cache.lock().ok().and_then(|c| c.by_etag.get(etag).cloned()) {
        return Some(hit);
    }
    let raw = match content {
        Content::InMemory(bytes) => bytes,
        Content::Stream(reader) => {
            let mut raw = Vec::new();
            reader.take(len).read_to_end(&mut raw).await.ok()?;
            Bytes::from(raw)
        }
    };
    let compressed = Bytes::from(
        tokio::task::spawn_blocking(move || gzip_bytes(&raw))
            .await
            .ok()?
            .ok()?,
    );
    if let Ok(mut c) = cache.lock() {
        if c.bytes + compressed.len() > GZIP_CACHE_BYTES {
            c.by_etag.clear();
            c.bytes = 0;
        }
        c.bytes += compressed.len();
        c.by_etag.insert(etag.to_owned(), compressed.clone());
    }
    Some(compressed)
}

/// Whether `Accept-Encoding` allows gzip (a `q=0` refuses it).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

fn gzip_bytes(raw: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write as _;
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(raw.len() / 4),
        flate2::Compression::new(6),
    );
    enc.write_all(raw)?;
    enc.finish()
}

fn content_type(path: &TreePath, kind: FileKind) -> &'static str {
    let name = path.file_name();
    match kind {
        FileKind::LogCheckpoint => return "text/plain; charset=utf-8",
        FileKind::LogTile => return "application/octet-stream",
        _ => {}
    }
    if path.area() == Area::Metadata || name.ends_with(".json") {
        return "application/json";
    }
    if name.ends_with(".txt") {
        "text/plain; charset=utf-8"
    } else {
        "application/octet-stream"
    }
}

fn etag_matches(header_value: &str, etag: &str) -> bool {
    header_value.split(',').any(|t| {
        let t = t.trim();
        t == "*" || t == etag || t.strip_prefix("W/") == Some(etag)
    })
}

/// What a `Range` header asks for, for a representation of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeOutcome {
    /// Ignore it and send everything (other units, several ranges).
    Full,
    /// Bytes `first..=last`.
    Partial(u64, u64),
    /// 416.
    Unsatisfiable,
}

fn digits(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses one `bytes=` range (RFC 9110 §14.1.2). Several ranges are answered with the whole
/// representation, which the RFC allows.
pub fn parse_range(value: &str, len: u64) -> RangeOutcome {
    let value = value.trim();
    let Some((unit, spec)) = value.split_once('=') else {
        return RangeOutcome::Unsatisfiable;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return RangeOutcome::Full;
    }
    if spec.contains(',') {
        return RangeOutcome::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeOutcome::Unsatisfiable;
    };
    if a.trim().is_empty() {
        let Some(n) = digits(b) else {
            return RangeOutcome::Unsatisfiable;
        };
        if n == 0 || len == 0 {
            return RangeOutcome::Unsatisfiable;
        }
        return RangeOutcome::Partial(len.saturating_sub(n), len - 1);
    }
    let Some(first) = digits(a) else {
        return RangeOutcome::Unsatisfiable;
    };
    if first >= len {
        return RangeOutcome::Unsatisfiable;
    }
    let last = if b.trim().is_empty() {
        len - 1
    } else {
        match digits(b) {
            Some(l) if l >= first => l.min(len - 1),
            _ => return RangeOutcome::Unsatisfiable,
        }
    };
    RangeOutcome::Partial(first, last)
}

/// Streams `remaining` bytes from a tree reader, one chunk at a time.
struct FileBody {
    reader: tokio::io::Take<Box<dyn ObjectReader>>,
    remaining: u64,
    buf: BytesMut,
}

impl http_body::Body for FileBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        if this.buf.capacity() < CHUNK {
            this.buf.reserve(CHUNK);
        }
        match tokio_util::io::poll_read_buf(Pin::new(&mut this.reader), cx, &mut this.buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(0)) => Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file ended before its length",
            )))),
            Poll::Ready(Ok(n)) => {
                this.remaining = this.remaining.saturating_sub(n as u64);
                Poll::Ready(Some(Ok(Frame::data(this.buf.split().freeze()))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeOutcome::*;
        assert_eq!(parse_range("bytes=0-9", 100), Partial(0, 9));
        assert_eq!(parse_range("bytes=90-", 100), Partial(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), Partial(90, 99));
        assert_eq!(parse_range("bytes=-1000", 100), Partial(0, 99));
        assert_eq!(parse_range("bytes=50-1000", 100), Partial(50, 99));
        assert_eq!(parse_range("bytes=100-", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=9-3", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=+1-2", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=abc", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-0", 0), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Full);
        assert_eq!(parse_range("items=0-1", 100), Full);
    }
}
