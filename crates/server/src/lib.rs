//! Sealwright's distribution server: serves a published TUF tree (`metadata/`, `targets/`)
//! read-only over HTTPS (rustls, HTTP/2 and HTTP/1.1), with caching headers, range requests,
//! `/healthz` and `/metrics`.
//!
//! Files come from a [`Tree`]; [`FsTree`] serves `DIR/published/` from the file system.
//! The server refuses to start when the tree holds a private key
//! ([`check_no_private_keys`]).

pub mod accept;
pub mod app;
pub mod conn;
pub mod keyscan;
pub mod metrics;
pub mod path;
pub mod push;
pub mod setup;
pub mod shared_tree;
pub mod storage;
pub mod tls;
pub mod tokens;
pub mod translog;
pub mod tree;
pub mod witness;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

pub use keyscan::{check_no_private_keys, KeyScanError};
pub use metrics::Metrics;
pub use path::{FileKind, TreePath};
pub use tls::{Identity, TlsError};
pub use tree::{FsTree, Tree, TreeError, TreeObject};

/// Time a client gets to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time an HTTP/1 client gets to send a request's headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(15);
/// Connections served at once; further ones are closed at once.
pub const MAX_CONNECTIONS: usize = 10_000;
/// How long shutdown waits for requests in progress.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The server could not start or failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// No published tree at this path.
    #[error("{0} does not exist: publish the repository first (`sealwright publish`)")]
    NoTree(PathBuf),
    /// A private key in the tree.
    #[error("refusing to serve: {0}")]
    KeyFound(#[from] KeyScanError),
    /// Certificates.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Binding the address.
    #[error("listening on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    /// The data directory cannot take pushes.
    #[error("refusing to serve the publish API: {0}")]
    PushNotReady(String),
    /// Writing the development CA file.
    #[error("writing the development certificate to {0}: {1}")]
    WriteCert(PathBuf, std::io::Error),
    /// Anything else from the operating system.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Where the TLS identity comes from.
#[derive(Debug, Clone)]
pub enum TlsSource {
    /// PEM certificate chain and private key files.
    Files {
        /// Certificate chain (leaf first).
        cert: PathBuf,
        /// Private key.
        key: PathBuf,
    },
    /// A fresh self-signed certificate for 127.0.0.1/localhost; its PEM is written here.
    Dev {
        /// Where clients find the certificate to trust.
        ca_out: PathBuf,
    },
}

/// What `serve` needs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The tree to serve (`DIR/published`).
    pub published: PathBuf,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Certificates.
    pub tls: TlsSource,
    /// The publish API, when enabled.
    pub push: Option<push::PushOptions>,
}

/// Reported once the server listens.
#[derive(Debug, Clone)]
pub struct Ready {
    /// `https://ADDR`.
    pub url: String,
    /// The bound address (the real port when 0 was asked for).
    pub local_addr: SocketAddr,
    /// SHA-256 fingerprint of the served certificate.
    pub fingerprint: String,
    /// The development certificate file, when one was generated.
    pub dev_ca: Option<PathBuf>,
}

/// Checks the tree and opens it as a file-system tree.
pub fn open_published(published: &Path) -> Result<FsTree, ServeError> {
    if !published.is_dir() {
        return Err(ServeError::NoTree(published.to_path_buf()));
    }
    check_no_private_keys(published)?;
    Ok(FsTree::new(published)?)
}

/// Loads or generates the TLS identity; for a development certificate, writes its PEM.
pub fn load_identity(tls: &TlsSource) -> Result<Identity, ServeError> {
    match tls {
        TlsSource::Files { cert, key } => Ok(Identity::from_pem_files(cert, key)?),
        TlsSource::Dev { ca_out } => {
            let id = Identity::generate_dev()?;
            sealwright_fs::write_atomic(ca_out, id.leaf_pem.as_bytes())
                .map_err(|e| ServeError::WriteCert(ca_out.clone(), e))?;
            Ok(id)
        }
    }
}

/// SHA-256 (hex) of the DER certificate a client presented and the server's client CA
/// verified; set on the requests of that connection only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert(pub Arc<str>);

/// The TCP peer of the connection a request arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// A bound server, not yet accepting.
pub struct Server {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    router: axum::Router,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("listener", &self.listener)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Binds `listen` and prepares to serve `tree` with `identity`.
    /// With `client_ca`, clients may authenticate with a certificate from that CA (see
    /// [`Identity::server_config`]); its fingerprint reaches handlers as [`ClientCert`].
    pub async fn bind(
        listen: SocketAddr,
        identity: &Identity,
        tree: Arc<dyn Tree>,
        client_ca: Option<&tls::ClientCa>,
    ) -> Result<Server, ServeError> {
        let config = identity.server_config(client_ca)?;
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| ServeError::Bind(listen, e))?;
        let metrics = Arc::new(Metrics::default());
        Ok(Server {
            listener,
            acceptor: TlsAcceptor::from(config),
            router: app::router(tree, Arc::clone(&metrics)),
            metrics,
        })
    }

    /// Adds the publish API (`/api/v1/...`) for the repository in `opts.repo_dir`,
    /// publishing into `storage`.
    pub fn enable_push(&mut self, opts: &push::PushOptions, storage: Arc<storage::Storage>) {
        let refusals = Arc::new(push::Refusals::default());
        tokio::spawn(push::summarise_refusals(
            Arc::clone(&storage),
            Arc::clone(&refusals),
        ));
        let files = std::mem::take(&mut self.router);
        self.router = push::routes(opts, storage, refusals).merge(files);
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The server's counters.
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// Serves until `shutdown` completes, then stops accepting and waits (bounded) for the
    /// requests in progress.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(256)
            .keep_alive_interval(Some(Duration::from_secs(30)));
        let graceful = GracefulShutdown::new();
        let admission = conn::Admission::new(MAX_CONNECTIONS);
        let service = self.router.clone();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => {
                    let (tcp, peer) = match accepted {
                        Ok((tcp, peer)) => (tcp, peer),
                        Err(_) => {
                            // Out of file descriptors and the like: back off briefly.
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        }
                    };
                    let Some(slots) = admission.admit() else {
                        drop(tcp);
                        continue;
                    };
                    let _ = tcp.set_nodelay(true);
                    let acceptor = self.acceptor.clone();
                    let builder = builder.clone();
                    let service = service.clone();
                    let metrics = Arc::clone(&self.metrics);
                    let watcher = graceful.watcher();
                    tokio::spawn(async move {
                        let _open = metrics.open_connection();
                        let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                            Ok(Ok(s)) => s,
                            _ => {
                                metrics.handshake_failed();
                                return;
                            }
                        };
                        // The verified client certificate, if one was presented, for the
                        // publish API's authentication.
                        let client_cert = tls
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|chain| chain.first())
                            .map(|leaf| ClientCert(Arc::from(hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, leaf.as_ref())))));
                        let busy = Arc::new(std::sync::atomic::AtomicUsize::new(0));
                        let in_flight = Arc::clone(&busy);
                        let service = service.map_request(move |mut req: hyper::Request<hyper::body::Incoming>| {
                            if let Some(cert) = &client_cert {
                                req.extensions_mut().insert(cert.clone());
                            }
                            req.extensions_mut().insert(PeerAddr(peer));
                            req
                        }).map_future(move |answer| {
                            // A request being answered keeps the connection from idling out.
                            let busy = conn::Busy::start(&in_flight);
                            async move {
                                let response = answer.await;
                                drop(busy);
                                response
                            }
                        });
                        let stream = conn::Guarded::new(tls, slots, busy);
                        let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service));
                        let _ = watcher.watch(conn.into_owned()).await;
                    });
                }
            }
        }
        drop(self.listener);
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
    }
}

/// The URL clients use for a server bound to `addr`: a wildcard bind (`0.0.0.0`, `::`) is
/// not an address anyone can connect to, so it is named by `host` (this machine's name).
pub fn client_url(addr: SocketAddr, host: &str) -> String {
    if addr.ip().is_unspecified() {
        format!("https://{host}:{}", addr.port())
    } else {
        format!("https://{addr}")
    }
}

/// This machine's host name, or `localhost` when it has none.
pub(crate) fn host_name() -> String {
    let uname = rustix::system::uname();
    let name = uname.nodename().to_string_lossy().to_ascii_lowercase();
    if name.is_empty() || name == "(none)" {
        "localhost".to_owned()
    } else {
        name
    }
}

/// Hooks SIGINT and SIGTERM now; the returned future completes when either arrives.
/// Must be called inside a Tokio runtime.
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

/// Checks the tree, loads certificates, binds, calls `on_ready`, and serves until SIGINT or
/// SIGTERM. Blocks the calling thread (it runs its own Tokio runtime).
pub fn serve_blocking(opts: ServeOptions, on_ready: impl FnOnce(&Ready)) -> Result<(), ServeError> {
    let shared = opts.push.as_ref().and_then(|p| p.shared.clone());
    let files = match shared {
        Some(_) => None,
        None => Some(open_published(&opts.published)?),
    };
    if let Some(p) = &opts.push {
        // The whole data directory, not only the served tree: the server takes pushes into
        // it and must hold no private key anywhere in it.
        check_no_private_keys(&p.repo_dir)?;
        push::check_ready(&p.repo_dir).map_err(|e| ServeError::PushNotReady(e.to_string()))?;
        if shared.is_none() {
            push::ensure_index(&p.repo_dir).map_err(|e| ServeError::PushNotReady(e.to_string()))?;
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sealwright-serve")
        .build()?;
    runtime.block_on(async move {
        // Signals are hooked before anything is announced, so a prompt SIGTERM is graceful.
        let shutdown = shutdown_signal()?;
        let identity = load_identity(&opts.tls)?;
        let client_ca = match opts.push.as_ref().and_then(|p| p.client_ca.as_deref()) {
            Some(path) => Some(tls::ClientCa::from_pem_file(path)?),
            None => None,
        };
        let storage = match (&opts.push, &shared) {
            (Some(p), Some(config)) => {
                let store = sealwright_store::Shared::open(config)
                    .await
                    .map_err(|e| ServeError::PushNotReady(e.to_string()))?;
                let shared = Arc::new(storage::Storage::Shared {
                    dir: p.repo_dir.clone(),
                    store: Arc::new(store),
                });
                // The first replica publishes its tree into the empty store; the others bring
                // their working copies up to date.
                let starting = Arc::clone(&shared);
                tokio::task::spawn_blocking(move || starting.start())
                    .await
                    .map_err(std::io::Error::other)?
                    .map_err(|e| ServeError::PushNotReady(e.to_string()))?;
                let catching_up = Arc::clone(&shared);
                tokio::task::spawn_blocking(move || push::catch_up_log(&catching_up));
                Some(shared)
            }
            (Some(p), None) => {
                let embedded = Arc::new(storage::Storage::embedded(&p.repo_dir));
                let starting = Arc::clone(&embedded);
                tokio::task::spawn_blocking(move || push::catch_up_log(&starting));
                Some(embedded)
            }
            (None, _) => None,
        };
        let tree: Arc<dyn Tree> = match (storage.as_deref(), files) {
            (Some(storage::Storage::Shared { dir, store }), _) => Arc::new(
                shared_tree::SharedTree::new(Arc::clone(store), dir.join("cache")),
            ),
            (_, Some(files)) => Arc::new(files),
            (_, None) => return Err(ServeError::NoTree(opts.published.clone())),
        };
        let mut server = Server::bind(opts.listen, &identity, tree, client_ca.as_ref()).await?;
        if let (Some(p), Some(storage)) = (&opts.push, &storage) {
            server.enable_push(p, Arc::clone(storage));
            tokio::spawn(push::renew_online_roles(
                Arc::clone(storage),
                server.metrics(),
            ));
        }
        let local_addr = server.local_addr()?;
        let ready = Ready {
            url: client_url(local_addr, &host_name()),
            local_addr,
            fingerprint: identity.fingerprint(),
            dev_ca: match &opts.tls {
                TlsSource::Dev { ca_out } => Some(ca_out.clone()),
                TlsSource::Files { .. } => None,
            },
        };
        on_ready(&ready);
        server.run(shutdown).await;
        Ok(())
    })
}

#[cfg(test)]
mod url_tests {
    use super::*;

    #[test]
    fn a_wildcard_bind_is_announced_by_host_name() {
        let any: SocketAddr = "0.0.0.0:8443".parse().unwrap_or_else(|_| unreachable!());
        assert_eq!(client_url(any, "updates"), "https://updates:8443");
        let any6: SocketAddr = "[::]:8443".parse().unwrap_or_else(|_| unreachable!());
        assert_eq!(client_url(any6, "updates"), "https://updates:8443");
        let local: SocketAddr = "127.0.0.1:8443".parse().unwrap_or_else(|_| unreachable!());
        assert_eq!(client_url(local, "updates"), "https://127.0.0.1:8443");
        assert!(!host_name().is_empty());
    }
}
