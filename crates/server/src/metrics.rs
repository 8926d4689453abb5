//! Counters for `/metrics` (Prometheus text format) and the body wrapper that feeds them.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// Server-wide counters.
#[derive(Debug, Default)]
pub struct Metrics {
    by_class: [AtomicU64; 5],
    bytes_sent: AtomicU64,
    in_flight: AtomicU64,
    connections_total: AtomicU64,
    connections_open: AtomicU64,
    tls_handshake_failures: AtomicU64,
    /// Seconds until each top-level role expires (negative: expired).
    role_expiry: std::sync::Mutex<std::collections::BTreeMap<String, i64>>,
    /// When an expiry warning was last logged, per role.
    warned: std::sync::Mutex<std::collections::BTreeMap<String, chrono::DateTime<chrono::Utc>>>,
}

impl Metrics {
    /// Counts a response status.
    pub fn record_status(&self, status: u16) {
        let class = usize::from(status / 100).saturating_sub(1).min(4);
        if let Some(c) = self.by_class.get(class) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A request started; the guard ends it when dropped (after its body was sent).
    pub fn start_request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }

    /// A connection was accepted; the guard closes it when dropped.
    pub fn open_connection(self: &Arc<Self>) -> OpenConnection {
        self.connections_total.fetch_add(1, Ordering::Relaxed);
        self.connections_open.fetch_add(1, Ordering::Relaxed);
        OpenConnection(Arc::clone(self))
    }

    /// A TLS handshake failed or timed out.
    pub fn handshake_failed(&self) {
        self.tls_handshake_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Records the seconds left before `role` expires.
    pub fn set_role_expiry(&self, role: &str, seconds: i64) {
        if let Ok(mut m) = self.role_expiry.lock() {
            m.insert(role.to_owned(), seconds);
        }
    }

    /// Whether an expiry warning for `role` is due (at most one a day).
    pub fn should_warn(&self, role: &str, now: chrono::DateTime<chrono::Utc>) -> bool {
        let Ok(mut m) = self.warned.lock() else {
            return false;
        };
        match m.get(role) {
            Some(last) if now - *last < chrono::Duration::days(1) => false,
            _ => {
                m.insert(role.to_owned(), now);
                true
            }
        }
    }

    /// Body bytes sent so far.
    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent.load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut s = String::new();
        s.push_str("# HELP sealwright_http_requests_total HTTP responses by status class.\n");
        s.push_str("# TYPE sealwright_http_requests_total counter\n");
        for (i, c) in self.by_class.iter().enumerate() {
            s.push_str(&format!(
                "sealwright_http_requests_total{{class=\"{}xx\"}} {}\n",
                i + 1,
                c.load(Ordering::Relaxed)
            ));
        }
        let gauge = |s: &mut String, name: &str, kind: &str, help: &str, v: u64| {
            s.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"
            ));
        };
        gauge(
            &mut s,
            "sealwright_http_response_bytes_total",
            "counter",
            "Response body bytes sent.",
            self.bytes_sent(),
        );
        gauge(
            &mut s,
            "sealwright_http_requests_in_flight",
            "gauge",
            "Requests being answered (until their body is sent).",
            self.in_flight.load(Ordering::Relaxed),
        );
        gauge(
            &mut s,
            "sealwright_connections_total",
            "counter",
            "TCP connections accepted.",
            self.connections_total.load(Ordering::Relaxed),
        );
        gauge(
            &mut s,
            "sealwright_connections_open",
            "gauge",
            "TCP connections open.",
            self.connections_open.load(Ordering::Relaxed),
        );
        gauge(
            &mut s,
            "sealwright_tls_handshake_failures_total",
            "counter",
            "TLS handshakes that failed or timed out.",
            self.tls_handshake_failures.load(Ordering::Relaxed),
        );
        if let Ok(m) = self.role_expiry.lock() {
            if !m.is_empty() {
                s.push_str("# HELP sealwright_role_expires_in_seconds Seconds until each top-level role's published version expires.\n# TYPE sealwright_role_expires_in_seconds gauge\n");
                for (role, left) in m.iter() {
                    s.push_str(&format!(
                        "sealwright_role_expires_in_seconds{{role=\"{role}\"}} {left}\n"
                    ));
                }
            }
        }
        s
    }
}

/// Decrements the in-flight gauge when dropped.
#[derive(Debug)]
pub struct InFlight(Arc<Metrics>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Decrements the open-connections gauge when dropped.
#[derive(Debug)]
pub struct OpenConnection(Arc<Metrics>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connections_open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that counts the bytes it yields and holds the request's in-flight guard.
#[derive(Debug)]
pub struct CountingBody<B> {
    inner: B,
    metrics: Arc<Metrics>,
    _guard: InFlight,
}

impl<B> CountingBody<B> {
    /// Wraps `inner`.
    pub fn new(inner: B, metrics: Arc<Metrics>, guard: InFlight) -> Self {
        CountingBody {
            inner,
            metrics,
            _guard: guard,
        }
    }
}

impl<B> Body for CountingBody<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.metrics
                    .bytes_sent
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
