//! The server over real TLS on 127.0.0.1: caching headers, ranges, hostile paths, HTTP/2,
//! /healthz, /metrics, and a bounded load test with slow clients.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::{CertificateDer, ServerName};
use sealwright_server::{FsTree, Identity, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Every test gives up after this long rather than hanging CI.
const TEST_LIMIT: Duration = Duration::from_secs(60);

const BIG_LEN: usize = 1024 * 1024 + 17;

struct Fixture {
    _dir: tempfile::TempDir,
    addr: SocketAddr,
    ca: CertificateDer<'static>,
    big_url: String,
    big: Vec<u8>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b).as_ref())
}

fn write(p: &Path, b: &[u8]) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, b).unwrap();
}

/// A repository directory with a secret next to `published/` and a few traps inside it.
/// A metadata file large enough to be compressed (like a hash bin).
fn bins_json() -> Vec<u8> {
    let entries: Vec<String> = (0..200)
        .map(|i| {
            format!(
                "\"f/{i:06}.txt\":{{\"length\":{i},\"hashes\":{{\"sha256\":\"{}\"}}}}",
                sha256_hex(&[i as u8])
            )
        })
        .collect();
    format!("{{\"signed\":{{\"targets\":{{{}}}}}}}", entries.join(",")).into_bytes()
}

fn make_tree(dir: &Path) -> (PathBuf, String, Vec<u8>) {
    write(&dir.join("sealwright.toml"), b"SECRET-POLICY");
    write(&dir.join("keys/root.pem"), b"SECRET-KEY");
    let p = dir.join("published");
    write(
        &p.join("metadata/1.root.json"),
        br#"{"signed":{"version":1}}"#,
    );
    write(
        &p.join("metadata/root.json"),
        br#"{"signed":{"version":1}}"#,
    );
    write(
        &p.join("metadata/timestamp.json"),
        br#"{"signed":{"ts":1}}"#,
    );
    write(
        &p.join("metadata/3.snapshot.json"),
        br#"{"signed":{"snap":3}}"#,
    );
    write(&p.join("metadata/.timestamp.json.123.tmp"), b"SECRET-TEMP");
    write(&p.join("metadata/7.bins-0.json"), &bins_json());
    let big: Vec<u8> = (0..BIG_LEN).map(|i| (i * 7 % 251) as u8).collect();
    let name = format!("{}.big.bin", sha256_hex(&big));
    write(&p.join("targets/app/1.0.0").join(&name), &big);
    write(&p.join("targets/plain.txt"), b"not content addressed");
    std::os::unix::fs::symlink("../../sealwright.toml", p.join("targets/escape.txt")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", p.join("targets/abs.txt")).unwrap();
    (p, format!("/targets/app/1.0.0/{name}"), big)
}

async fn start() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let (published, big_url, big) = make_tree(dir.path());
    let identity = Identity::generate_dev().unwrap();
    let tree = Arc::new(FsTree::new(&published).unwrap());
    let server = Server::bind("127.0.0.1:0".parse().unwrap(), &identity, tree, None)
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = rx.await;
    }));
    Fixture {
        _dir: dir,
        addr,
        ca: identity.chain[0].clone(),
        big_url,
        big,
        shutdown: Some(tx),
        task: Some(task),
    }
}

impl Fixture {
    async fn stop(mut self) {
        let _ = self.shutdown.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(15), self.task.take().unwrap())
            .await
            .expect("server stops promptly")
            .unwrap();
    }

    fn connector(&self, alpn: &[&[u8]]) -> TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        cfg.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
        TlsConnector::from(Arc::new(cfg))
    }

    async fn tls(&self, alpn: &[&[u8]]) -> tokio_rustls::client::TlsStream<TcpStream> {
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        self.connector(alpn)
            .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
            .await
            .unwrap()
    }

    /// Sends `METHOD TARGET HTTP/1.1` byte for byte (no client-side normalisation).
    async fn raw(&self, method: &str, target: &str, headers: &[(&str, &str)]) -> Resp {
        let mut s = self.tls(&[b"http/1.1"]).await;
        let mut req =
            format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        // A close_notify-less close is fine for these tests.
        let _ = s.read_to_end(&mut buf).await;
        Resp::parse(&buf)
    }
}

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Resp {
    fn parse(buf: &[u8]) -> Resp {
        let end = buf
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(buf)));
        let head = std::str::from_utf8(&buf[..end]).unwrap();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Resp {
            status,
            headers,
            body: buf[end + 4..].to_vec(),
        }
    }

    fn h(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }
}

fn run<F: std::future::Future<Output = ()>>(f: F) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(TEST_LIMIT, f)
            .await
            .expect("test took too long");
    });
}

#[test]
fn caching_headers_per_file_kind() {
    run(async {
        let fx = start().await;
        let immutable = "public, max-age=31536000, immutable";
        for (url, cc, ct) in [
            ("/metadata/1.root.json", immutable, "application/json"),
            ("/metadata/3.snapshot.json", immutable, "application/json"),
            ("/metadata/timestamp.json", "no-cache", "application/json"),
            ("/metadata/root.json", "no-cache", "application/json"),
            (fx.big_url.as_str(), immutable, "application/octet-stream"),
        ] {
            let r = fx.raw("GET", url, &[]).await;
            assert_eq!(r.status, 200, "{url}");
            assert_eq!(r.h("cache-control"), cc, "{url}");
            assert_eq!(r.h("content-type"), ct, "{url}");
            assert_eq!(r.h("accept-ranges"), "bytes");
            assert_eq!(r.h("content-length"), r.body.len().to_string(), "{url}");
            // ETag is the SHA-256 of the content.
            assert_eq!(r.h("etag"), format!("\"{}\"", sha256_hex(&r.body)), "{url}");
        }
        let r = fx.raw("GET", &fx.big_url, &[]).await;
        assert_eq!(r.body, fx.big);
        // Conditional request.
        let etag = r.h("etag").to_owned();
        let r = fx.raw("GET", "/metadata/timestamp.json", &[]).await;
        let ts_etag = r.h("etag").to_owned();
        let r = fx
            .raw(
                "GET",
                "/metadata/timestamp.json",
                &[("If-None-Match", &ts_etag)],
            )
            .await;
        assert_eq!(r.status, 304);
        assert!(r.body.is_empty());
        // HEAD: headers, no body.
        let r = fx.raw("HEAD", &fx.big_url, &[]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.h("content-length"), BIG_LEN.to_string());
        assert_eq!(r.h("etag"), etag);
        assert!(r.body.is_empty());
        // Missing files and other methods.
        assert_eq!(
            fx.raw("GET", "/metadata/2.root.json", &[]).await.status,
            404
        );
        assert_eq!(
            fx.raw("POST", "/metadata/1.root.json", &[]).await.status,
            405
        );
        fx.stop().await;
    });
}

#[test]
fn metadata_is_gzipped_only_when_the_client_accepts_it() {
    run(async {
        let fx = start().await;
        let url = "/metadata/7.bins-0.json";
        let plain = fx.raw("GET", url, &[]).await;
        assert_eq!(plain.status, 200);
        assert_eq!(plain.body, bins_json());
        assert_eq!(plain.h("vary"), "accept-encoding");
        assert_eq!(plain.h("content-encoding"), "");
        let gz = fx.raw("GET", url, &[("Accept-Encoding", "br, gzip")]).await;
        assert_eq!(gz.status, 200);
        assert_eq!(gz.h("content-encoding"), "gzip");
        assert_eq!(gz.h("vary"), "accept-encoding");
        assert_eq!(gz.h("content-length"), gz.body.len().to_string());
        assert!(
            gz.body.len() * 2 < plain.body.len(),
            "{} vs {}",
            gz.body.len(),
            plain.body.len()
        );
        let mut unzipped = Vec::new();
        use std::io::Read as _;
        flate2::read::GzDecoder::new(&gz.body[..])
            .read_to_end(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, plain.body);
        // Each representation has its own validator, and revalidates against it.
        assert_eq!(
            gz.h("etag"),
            format!("\"{}-gzip\"", sha256_hex(&plain.body))
        );
        let again = fx
            .raw(
                "GET",
                url,
                &[("Accept-Encoding", "gzip"), ("If-None-Match", gz.h("etag"))],
            )
            .await;
        assert_eq!(again.status, 304);
        // Refused by q=0, ranges, small files and artifacts: sent as stored.
        for (target, headers) in [
            (url, vec![("Accept-Encoding", "gzip;q=0")]),
            (
                url,
                vec![("Accept-Encoding", "gzip"), ("Range", "bytes=0-9")],
            ),
            (
                "/metadata/timestamp.json",
                vec![("Accept-Encoding", "gzip")],
            ),
            (fx.big_url.as_str(), vec![("Accept-Encoding", "gzip")]),
        ] {
            let r = fx.raw("GET", target, &headers).await;
            assert_eq!(r.h("content-encoding"), "", "{target} {headers:?}");
        }
        fx.stop().await;
    });
}

#[test]
fn range_requests() {
    run(async {
        let fx = start().await;
        let len = BIG_LEN;
        let r = fx.raw("GET", &fx.big_url, &[("Range", "bytes=0-9")]).await;
        assert_eq!(r.status, 206);
        assert_eq!(r.body, fx.big[..10]);
        assert_eq!(r.h("content-range"), format!("bytes 0-9/{len}"));
        assert_eq!(r.h("content-length"), "10");

        let r = fx.raw("GET", &fx.big_url, &[("Range", "bytes=-100")]).await;
        assert_eq!(r.status, 206);
        assert_eq!(r.body, fx.big[len - 100..]);
        assert_eq!(
            r.h("content-range"),
            format!("bytes {}-{}/{len}", len - 100, len - 1)
        );

        let r = fx
            .raw("GET", &fx.big_url, &[("Range", "bytes=1000000-")])
            .await;
        assert_eq!(r.status, 206);
        assert_eq!(r.body, fx.big[1_000_000..]);

        for bad in [
            format!("bytes={len}-"),
            "bytes=50-10".to_owned(),
            "bytes=-0".to_owned(),
            "bytes=x-y".to_owned(),
        ] {
            let r = fx.raw("GET", &fx.big_url, &[("Range", &bad)]).await;
            assert_eq!(r.status, 416, "{bad}");
            assert_eq!(r.h("content-range"), format!("bytes */{len}"), "{bad}");
        }
        // If-Range with a stale validator: the whole file.
        let r = fx
            .raw(
                "GET",
                &fx.big_url,
                &[("Range", "bytes=0-9"), ("If-Range", "\"stale\"")],
            )
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body.len(), len);
        fx.stop().await;
    });
}

#[test]
fn hostile_paths_never_reach_outside_the_tree() {
    run(async {
        let fx = start().await;
        for target in [
            "/targets/../sealwright.toml",
            "/targets/%2e%2e/sealwright.toml",
            "/targets/%2E%2E/%2e%2e/sealwright.toml",
            "/metadata/..%2f..%2fsealwright.toml",
            "/targets/app/..%5c..%5csealwright.toml",
            "/targets/%00",
            "/targets/sealwright.toml%00.json",
            "/targets//etc/passwd",
            "/targets/%2fetc%2fpasswd",
            "/../sealwright.toml",
            "/sealwright.toml",
            "/keys/root.pem",
            "/targets/../keys/root.pem",
            "/metadata/.timestamp.json.123.tmp",
            "/targets/escape.txt",
            "/targets/abs.txt",
            "/targets/app",
            "/metadata/",
            "https://127.0.0.1/targets/../sealwright.toml",
        ] {
            let r = fx.raw("GET", target, &[]).await;
            assert!(
                r.status == 400 || r.status == 404,
                "{target} gave {}",
                r.status
            );
            let body = String::from_utf8_lossy(&r.body);
            assert!(!body.contains("SECRET"), "{target} leaked: {body}");
        }
        fx.stop().await;
    });
}

#[test]
fn http2_is_negotiated_and_serves() {
    run(async {
        let fx = start().await;
        let tls = fx.tls(&[b"h2", b"http/1.1"]).await;
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(conn);
        for _ in 0..3 {
            let req = hyper::Request::get(format!("https://127.0.0.1{}", fx.big_url))
                .body(Empty::<Bytes>::new())
                .unwrap();
            let resp = send.send_request(req).await.unwrap();
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.version(), hyper::Version::HTTP_2);
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body.as_ref(), &fx.big[..]);
        }
        // HTTP/1.1 still works when the client offers only that.
        let tls = fx.tls(&[b"http/1.1"]).await;
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
        fx.stop().await;
    });
}

#[test]
fn healthz_and_metrics() {
    run(async {
        let fx = start().await;
        let r = fx.raw("GET", "/healthz", &[]).await;
        assert_eq!(r.status, 200);
        assert!(r.h("content-type").starts_with("application/json"));
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["status"], "ok");

        fx.raw("GET", &fx.big_url, &[]).await;
        fx.raw("GET", "/metadata/nope.json", &[]).await;
        let r = fx.raw("GET", "/metrics", &[]).await;
        assert_eq!(r.status, 200);
        assert!(r.h("content-type").starts_with("text/plain"));
        let text = String::from_utf8(r.body).unwrap();
        let metric = |name: &str| -> u64 {
            text.lines()
                .find(|l| l.starts_with(name))
                .unwrap_or_else(|| panic!("{name} missing:\n{text}"))
                .rsplit(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        assert!(metric("sealwright_http_requests_total{class=\"2xx\"}") >= 2);
        assert!(metric("sealwright_http_requests_total{class=\"4xx\"}") >= 1);
        assert!(metric("sealwright_http_response_bytes_total") >= BIG_LEN as u64);
        // The /metrics request itself is in flight while it is rendered.
        assert!(metric("sealwright_http_requests_in_flight") >= 1);
        assert!(text.contains("# TYPE sealwright_http_requests_total counter"));
        fx.stop().await;
    });
}

/// 256 keep-alive connections hammer the server for ~3 s while one client stalls on a large
/// download and another sends its headers one byte at a time: zero errors, and every
/// connection gets answers throughout.
#[test]
fn load_256_connections_with_slow_clients() {
    run(async {
        let fx = Arc::new(start().await);
        let deadline = Instant::now() + Duration::from_secs(3);

        // A client that asks for the big file and never reads it.
        let stalled = {
            let mut s = fx.tls(&[b"http/1.1"]).await;
            let req = format!("GET {} HTTP/1.1\r\nHost: x\r\n\r\n", fx.big_url);
            s.write_all(req.as_bytes()).await.unwrap();
            s
        };
        // A client that dribbles its request, one byte every 200 ms.
        let dribbler = {
            let fx = Arc::clone(&fx);
            tokio::spawn(async move {
                let mut s = fx.tls(&[b"http/1.1"]).await;
                for b in b"GET /metadata/timestamp.json HTTP/1.1\r\nHost: x\r\n".iter() {
                    if Instant::now() > deadline {
                        break;
                    }
                    if s.write_all(&[*b]).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            })
        };

        let ok = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for i in 0..256usize {
            let fx = Arc::clone(&fx);
            let ok = Arc::clone(&ok);
            tasks.push(tokio::spawn(async move {
                let tls = fx.tls(&[b"http/1.1"]).await;
                let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                    .await
                    .map_err(|e| format!("handshake: {e}"))?;
                tokio::spawn(conn);
                let mut n = 0u64;
                while Instant::now() < deadline || n == 0 {
                    let url = if i % 4 == 0 {
                        fx.big_url.clone()
                    } else {
                        "/metadata/timestamp.json".to_owned()
                    };
                    let range = if i % 4 == 0 {
                        "bytes=0-65535"
                    } else {
                        "bytes=0-"
                    };
                    let req = hyper::Request::get(url)
                        .header("host", "127.0.0.1")
                        .header("range", range)
                        .body(Empty::<Bytes>::new())
                        .unwrap();
                    send.ready().await.map_err(|e| format!("ready: {e}"))?;
                    let resp = send
                        .send_request(req)
                        .await
                        .map_err(|e| format!("request: {e}"))?;
                    if resp.status() != 206 {
                        return Err(format!("status {}", resp.status()));
                    }
                    let body = resp
                        .into_body()
                        .collect()
                        .await
                        .map_err(|e| format!("body: {e}"))?
                        .to_bytes();
                    let want = if i % 4 == 0 { 65536 } else { 19 };
                    if body.len() != want {
                        return Err(format!("body length {}", body.len()));
                    }
                    n += 1;
                    ok.fetch_add(1, Ordering::Relaxed);
                }
                Ok::<u64, String>(n)
            }));
        }
        let mut errors = Vec::new();
        let mut per_conn = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(n) => per_conn.push(n),
                Err(e) => errors.push(e),
            }
        }
        assert!(
            errors.is_empty(),
            "{} errors, first: {:?}",
            errors.len(),
            errors.first()
        );
        assert_eq!(per_conn.len(), 256);
        assert!(per_conn.iter().all(|&n| n >= 1));
        let total = ok.load(Ordering::Relaxed);
        eprintln!("load: {total} requests over 256 connections in ~3 s (debug build)");
        assert!(total >= 512, "only {total} requests completed");

        // The slow clients were not starved by the load either: the stalled one can still
        // read its whole file.
        dribbler.await.unwrap();
        let mut stalled = stalled;
        let mut got = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        while got
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .is_none_or(|p| got.len() < p + 4 + BIG_LEN)
        {
            let n = stalled.read(&mut buf).await.unwrap();
            assert!(n > 0, "stalled client's connection closed early");
            got.extend_from_slice(&buf[..n]);
        }
        let r = Resp::parse(&got);
        assert_eq!(r.status, 200);
        assert_eq!(r.body, fx.big);

        let fx = Arc::into_inner(fx).expect("all tasks done");
        fx.stop().await;
    });
}

#[test]
fn replaced_files_are_served_fresh_not_from_memory() {
    run(async {
        let fx = start().await;
        let published = fx._dir.path().join("published");
        let before = fx.raw("GET", "/metadata/timestamp.json", &[]).await;
        assert_eq!(before.body, br#"{"signed":{"ts":1}}"#);
        // Replaced the way the publisher does it: write aside, rename over.
        let aside = published.join("metadata/.timestamp.json.new");
        write(&aside, br#"{"signed":{"ts":2}}"#);
        std::fs::rename(&aside, published.join("metadata/timestamp.json")).unwrap();
        let after = fx.raw("GET", "/metadata/timestamp.json", &[]).await;
        assert_eq!(after.body, br#"{"signed":{"ts":2}}"#);
        assert_eq!(after.h("etag"), format!("\"{}\"", sha256_hex(&after.body)));
        assert_ne!(after.h("etag"), before.h("etag"));
        // Rewritten in place (a new length): also seen, in both encodings.
        let url = "/metadata/7.bins-0.json";
        let gz_before = fx.raw("GET", url, &[("Accept-Encoding", "gzip")]).await;
        let mut longer = bins_json();
        longer.extend_from_slice(b"\n\n");
        std::fs::write(published.join("metadata/7.bins-0.json"), &longer).unwrap();
        assert_eq!(fx.raw("GET", url, &[]).await.body, longer);
        let gz_after = fx.raw("GET", url, &[("Accept-Encoding", "gzip")]).await;
        assert_ne!(gz_after.h("etag"), gz_before.h("etag"));
        let mut unzipped = Vec::new();
        use std::io::Read as _;
        flate2::read::GzDecoder::new(&gz_after.body[..])
            .read_to_end(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, longer);
        fx.stop().await;
    });
}

/// Connections that complete TLS and then say nothing are closed after the idle deadline,
/// whichever phase they stall in (before any request, between HTTP/1 requests, an idle
/// HTTP/2 connection), and while they are held a real client is still served.
#[test]
fn silent_connections_are_closed_and_never_crowd_out_real_clients() {
    run(async {
        let fx = start().await;
        let mut silent = Vec::new();
        for _ in 0..100 {
            silent.push(fx.tls(&[b"http/1.1"]).await);
        }
        for _ in 0..10 {
            silent.push(fx.tls(&[b"h2"]).await);
        }
        // One keep-alive connection that made a request and then went quiet.
        let mut kept = fx.tls(&[b"http/1.1"]).await;
        kept.write_all(b"GET /metadata/timestamp.json HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut head = [0u8; 12];
        kept.read_exact(&mut head).await.unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
        // Held connections do not stop a real client.
        let r = fx.raw("GET", "/metadata/timestamp.json", &[]).await;
        assert_eq!(r.status, 200);
        // Past the deadline every silent connection has been closed by the server.
        let started = Instant::now();
        tokio::time::sleep(sealwright_server::conn::IDLE_TIMEOUT + Duration::from_secs(2)).await;
        silent.push(kept);
        for (i, mut s) in silent.into_iter().enumerate() {
            let mut buf = vec![0u8; 64 * 1024];
            let closed = loop {
                match tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => break true,
                    Ok(Ok(_)) => continue, // the rest of a response, an h2 SETTINGS frame
                    Err(_) => break false,
                }
            };
            assert!(
                closed,
                "connection {i} still open {:?} after it went silent",
                started.elapsed()
            );
        }
        let r = fx.raw("GET", "/metadata/timestamp.json", &[]).await;
        assert_eq!(r.status, 200);
        fx.stop().await;
    });
}
