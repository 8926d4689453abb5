//! A hostile mirror: an HTTPS server on 127.0.0.1 that serves a copy of a published
//! repository tree, except for the paths a test tells it to tamper with.
//!
//! It is deliberately simple (HTTP/1.1, one request per connection, one thread per
//! connection) and deliberately dishonest: it can serve other bytes, an endless body,
//! a body trickled one byte at a time, or an error status for any path.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the mirror answers for one path.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// These bytes instead of the file.
    Bytes(Vec<u8>),
    /// An endless body with no declared length.
    Endless,
    /// The real file, one byte every `every`.
    Trickle { every: Duration },
}

#[derive(Debug, Default)]
struct Shared {
    /// The tree served when nothing is overridden (`metadata/`, `targets/`).
    root: PathBuf,
    overrides: HashMap<String, Behaviour>,
    requests: Vec<String>,
}

/// A running hostile mirror; stopped on drop.
#[derive(Debug)]
pub struct Mirror {
    /// `https://127.0.0.1:PORT/`.
    pub url: String,
    /// PEM of the mirror's certificate (the client's `--ca`).
    pub ca_pem: PathBuf,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    port: u16,
    thread: Option<JoinHandle<()>>,
}

impl Mirror {
    /// Starts a mirror serving `root`; writes its certificate under `work`.
    pub fn start(root: &Path, work: &Path) -> Mirror {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .unwrap()
                .self_signed(&key)
                .unwrap();
        let ca_pem = work.join("mirror-ca.pem");
        std::fs::write(&ca_pem, cert.pem()).unwrap();
        let certs = vec![cert.der().clone()];
        let private = rustls::pki_types::PrivateKeyDer::Pkcs8(
            rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der()),
        );
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(certs, private)
                .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Mutex::new(Shared {
            root: root.to_owned(),
            ..Shared::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (shared, stop) = (shared.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (shared, stop, config) = (shared.clone(), stop.clone(), config.clone());
                    std::thread::spawn(move || {
                        let _ = serve_one(conn, config, &shared, &stop);
                    });
                }
            })
        };
        Mirror {
            url: format!("https://127.0.0.1:{port}/"),
            ca_pem,
            shared,
            stop,
            port,
            thread: Some(thread),
        }
    }

    /// From now on, answer `path` (e.g. `metadata/timestamp.json`) with `behaviour`.
    pub fn tamper(&self, path: &str, behaviour: Behaviour) {
        self.shared
            .lock()
            .unwrap()
            .overrides
            .insert(path.to_owned(), behaviour);
    }

    /// Serves `root` from now on (e.g. a frozen, older or foreign tree).
    pub fn serve_tree(&self, root: &Path) {
        self.shared.lock().unwrap().root = root.to_owned();
    }

    /// Stops lying about every path.
    pub fn behave(&self) {
        self.shared.lock().unwrap().overrides.clear();
    }

    /// The paths requested since the last call.
    pub fn take_requests(&self) -> Vec<String> {
        std::mem::take(&mut self.shared.lock().unwrap().requests)
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_one(
    tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
    shared: &Mutex<Shared>,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let conn = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut reader = BufReader::new(&mut tls);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" || header == "\n" {
            break;
        }
    }
    drop(reader);
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .trim_start_matches('/')
        .to_owned();
    let (root, behaviour) = {
        let mut s = shared.lock().unwrap();
        s.requests.push(path.clone());
        (s.root.clone(), s.overrides.get(&path).cloned())
    };
    let root = root.as_path();
    let file = |base: &Path| -> Option<Vec<u8>> {
        // The mirror is hostile to its clients, not to the machine running the tests.
        if path.split('/').any(|c| c == ".." || c.is_empty()) {
            return None;
        }
        std::fs::read(base.join(&path)).ok()
    };
    match behaviour {
        None => respond(&mut tls, file(root)),
        Some(Behaviour::Bytes(b)) => respond(&mut tls, Some(b)),
        Some(Behaviour::Endless) => {
            tls.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")?;
            let chunk = vec![b'A'; 64 * 1024];
            while !stop.load(Ordering::SeqCst) {
                tls.write_all(&chunk)?;
            }
            Ok(())
        }
        Some(Behaviour::Trickle { every }) => match file(root) {
            None => respond(&mut tls, None),
            Some(body) => {
                write!(
                    tls,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )?;
                tls.flush()?;
                for byte in body {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    tls.write_all(&[byte])?;
                    tls.flush()?;
                    std::thread::sleep(every);
                }
                Ok(())
            }
        },
    }
}

fn respond(tls: &mut impl Write, body: Option<Vec<u8>>) -> std::io::Result<()> {
    match body {
        Some(body) => {
            write!(
                tls,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            tls.write_all(&body)?;
        }
        None => tls.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )?,
    }
    tls.flush()
}
