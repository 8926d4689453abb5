//! Deadlines and admission for connections, below HTTP.
//!
//! Guarantees:
//! - a connection that completes TLS and then sends nothing, or goes quiet between requests
//!   (HTTP/1 keep-alive or HTTP/2), is closed after [`IDLE_TIMEOUT`] without a byte read
//!   or written while no request of it is being answered — enforced here on the byte
//!   stream, so it holds before hyper has even detected the HTTP version, where its own
//!   timers do not yet run, and for HTTP/2, which has no idle timer of its own;
//! - connections that have not yet sent a byte of HTTP hold one of a smaller number of
//!   *unproven* slots ([`Admission`]), so silent or handshaking connections can take at
//!   most three quarters of the connection cap and a slot always remains for clients that
//!   talk;
//! - the cap follows the process's file-descriptor limit, keeping descriptors free for the
//!   files being served.
//!
//! Not guaranteed: a client that trickles one byte per [`IDLE_TIMEOUT`] keeps its slot
//! (HTTP/1 header reads have their own deadline, `HEADER_READ_TIMEOUT`; bodies are capped
//! by size).

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// A connection with no byte read or written for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(20);

/// File descriptors kept for everything but client connections (served files, SQLite,
/// the agent socket, logs).
const RESERVED_FDS: u64 = 128;

/// How many connections may be open at once, and how many of them may not yet have sent
/// a request.
#[derive(Debug, Clone)]
pub struct Admission {
    total: Arc<Semaphore>,
    unproven: Arc<Semaphore>,
}

/// A connection's slots: the total slot for its whole life, the unproven slot until its
/// first byte of HTTP arrives.
#[derive(Debug)]
pub struct Slots {
    _total: OwnedSemaphorePermit,
    unproven: Option<OwnedSemaphorePermit>,
}

impl Admission {
    /// At most `max` connections (lowered to what the descriptor limit allows).
    pub fn new(max: usize) -> Self {
        let max = max.min(descriptor_budget()).max(4);
        Admission {
            total: Arc::new(Semaphore::new(max)),
            unproven: Arc::new(Semaphore::new(max * 3 / 4)),
        }
    }

    /// Slots for a new connection, or `None` when it must be refused.
    pub fn admit(&self) -> Option<Slots> {
        let unproven = Arc::clone(&self.unproven).try_acquire_owned().ok()?;
        let total = Arc::clone(&self.total).try_acquire_owned().ok()?;
        Some(Slots {
            _total: total,
            unproven: Some(unproven),
        })
    }
}

/// Connections the descriptor limit leaves room for.
fn descriptor_budget() -> usize {
    match rustix::process::getrlimit(rustix::process::Resource::Nofile).current {
        Some(n) => usize::try_from(n.saturating_sub(RESERVED_FDS)).unwrap_or(usize::MAX),
        None => usize::MAX,
    }
}

/// A byte stream that fails with `TimedOut` once it has been idle for [`IDLE_TIMEOUT`], and
/// gives up its connection's unproven slot at the first byte read.
#[derive(Debug)]
pub struct Guarded<S> {
    inner: S,
    idle: Pin<Box<Sleep>>,
    slots: Slots,
    busy: Arc<AtomicUsize>,
}

impl<S> Guarded<S> {
    /// Wraps `inner`, which holds `slots`; `busy` counts the connection's requests being
    /// answered (a slow handler is not an idle connection).
    pub fn new(inner: S, slots: Slots, busy: Arc<AtomicUsize>) -> Self {
        Guarded {
            inner,
            idle: Box::pin(tokio::time::sleep(IDLE_TIMEOUT)),
            slots,
            busy,
        }
    }

    fn progressed(&mut self) {
        self.idle.as_mut().reset(Instant::now() + IDLE_TIMEOUT);
    }

    /// Whether the idle deadline has passed (the clock restarts while a request is being
    /// answered).
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        if self.busy.load(Ordering::Relaxed) > 0 {
            self.progressed();
            return false;
        }
        self.idle.as_mut().poll(cx).is_ready()
    }

    /// A write's outcome: bytes written restart the idle clock; a write stuck past the
    /// deadline fails.
    fn after_write(
        &mut self,
        cx: &mut Context<'_>,
        written: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match written {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.progressed();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(timed_out())),
            other => other,
        }
    }
}

/// Counts a connection's requests in flight for [`Guarded`]; decrements when dropped.
#[derive(Debug)]
pub struct Busy(Arc<AtomicUsize>);

impl Busy {
    /// One more request in flight on the connection counted by `count`.
    pub fn start(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Busy(Arc::clone(count))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection idle")
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.slots.unproven = None;
                    self.progressed();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(timed_out())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, data);
        self.after_write(cx, written)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.after_write(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
