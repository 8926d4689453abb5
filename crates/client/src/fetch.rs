//! Transport: a [`Fetcher`] trait (so tests and the updater can swap transports) and a
//! blocking HTTP(S) implementation on `ureq` + rustls (aws-lc-rs provider).
//!
//! Every download is size-capped by the caller (the engine's [`sealwright_tuf::Limits`] or
//! a length pinned by signed metadata) and redirects are never followed: a TUF repository
//! names its files exactly, so a redirect is an error like any other non-200 answer.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The server does not have the file (HTTP 404 or 403; python-tuf treats both alike).
    #[error("{url}: not found (HTTP {status})")]
    NotFound {
        /// What was requested.
        url: String,
        /// 404 or 403.
        status: u16,
    },
    /// Any other non-200 status (including redirects, which are never followed).
    #[error("{url}: unexpected HTTP status {status}")]
    Status {
        /// What was requested.
        url: String,
        /// The status.
        status: u16,
    },
    /// The body is longer than the cap.
    #[error("{url}: larger than the {max} bytes allowed")]
    TooLarge {
        /// What was requested.
        url: String,
        /// The cap.
        max: u64,
    },
    /// The body arrived slower than the speed floor allows (slow-retrieval defence).
    #[error("{url}: download too slow ({received} bytes in {seconds} s, at least {min_bytes_per_sec} bytes/s required); abandoned as a possible slow-retrieval attack")]
    TooSlow {
        /// What was requested.
        url: String,
        /// Bytes received before giving up.
        received: u64,
        /// Seconds spent.
        seconds: u64,
        /// The floor.
        min_bytes_per_sec: u64,
    },
    /// Connection, TLS or protocol failure.
    #[error("{url}: {message}")]
    Transport {
        /// What was requested.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// Writing the body to its destination failed.
    #[error("{url}: writing the download: {source}")]
    Io {
        /// What was requested.
        url: String,
        /// Why.
        source: std::io::Error,
    },
}

impl FetchError {
    /// Whether the file is simply absent (404/403).
    pub fn is_not_found(&self) -> bool {
        matches!(self, FetchError::NotFound { .. })
    }
}

/// Downloads whole files by URL, at most `max_len` bytes each.
pub trait Fetcher {
    /// Streams the body of `url` into `sink`; fails with [`FetchError::TooLarge`] as soon as
    /// more than `max_len` bytes arrive. Returns the number of bytes written.
    fn fetch_to(&self, url: &str, max_len: u64, sink: &mut dyn Write) -> Result<u64, FetchError>;

    /// The body of `url` in memory, at most `max_len` bytes.
    fn fetch(&self, url: &str, max_len: u64) -> Result<Vec<u8>, FetchError> {
        let mut buf = Vec::new();
        self.fetch_to(url, max_len, &mut buf)?;
        Ok(buf)
    }
}

impl<F: Fetcher + ?Sized> Fetcher for &F {
    fn fetch_to(&self, url: &str, max_len: u64, sink: &mut dyn Write) -> Result<u64, FetchError> {
        (**self).fetch_to(url, max_len, sink)
    }
}

/// Blocking HTTP(S) fetcher: no redirects, no compression, no retries.
#[derive(Debug, Clone)]
pub struct HttpFetcher {
    agent: ureq::Agent,
    speed_floor: SpeedFloor,
}

/// The slow-retrieval defence: a body must average at least `min_bytes_per_sec` once
/// `grace` has passed. A per-read timeout alone would let a mirror trickle one byte just
/// inside it forever; the average catches that, the grace spares slow starts.
#[derive(Debug, Clone, Copy)]
struct SpeedFloor {
    min_bytes_per_sec: u64,
    grace: Duration,
}

impl SpeedFloor {
    fn of(config: &HttpConfig) -> Self {
        SpeedFloor {
            min_bytes_per_sec: config.min_bytes_per_sec,
            grace: config.speed_grace,
        }
    }

    fn too_slow(&self, received: u64, elapsed: Duration) -> bool {
        elapsed > self.grace
            && u128::from(received) * 1000
                < u128::from(self.min_bytes_per_sec) * elapsed.as_millis()
    }
}

/// Options for [`HttpFetcher`].
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Use the proxy named by the environment (`HTTPS_PROXY`, `ALL_PROXY`...).
    pub proxy_from_env: bool,
    /// Time allowed to connect.
    pub connect_timeout: Duration,
    /// Time allowed for one whole request, body included.
    pub request_timeout: Duration,
    /// Longest wait for the next bytes of a body (a stalled server).
    pub stall_timeout: Duration,
    /// Slowest average a body may arrive at, in bytes per second, once
    /// [`HttpConfig::speed_grace`] has passed (a slow-retrieval attack).
    pub min_bytes_per_sec: u64,
    /// How long a download may run before its average speed is judged.
    pub speed_grace: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            proxy_from_env: true,
            connect_timeout: Duration::from_secs(15),
            request_timeout: Duration::from_secs(600),
            stall_timeout: Duration::from_secs(30),
            min_bytes_per_sec: 1024,
            speed_grace: Duration::from_secs(10),
        }
    }
}

impl HttpFetcher {
    /// A fetcher with `config`.
    pub fn new(config: &HttpConfig) -> Self {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .unversioned_rustls_crypto_provider(provider)
            .build();
        let proxy = if config.proxy_from_env {
            ureq::Proxy::try_from_env()
        } else {
            None
        };
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .proxy(proxy)
            .max_redirects(0)
            .http_status_as_error(false)
            .timeout_connect(Some(config.connect_timeout))
            .timeout_global(Some(config.request_timeout))
            .timeout_per_read(Some(config.stall_timeout))
            .user_agent(concat!("sealwright-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        HttpFetcher {
            agent,
            speed_floor: SpeedFloor::of(config),
        }
    }

    /// A fetcher for `base_url`: the environment's proxy is used unless the host is the
    /// loopback interface (a local test server must be reached directly).
    pub fn for_base_url(base_url: &str) -> Self {
        HttpFetcher::new(&HttpConfig {
            proxy_from_env: !is_loopback(base_url),
            ..HttpConfig::default()
        })
    }
}

impl HttpFetcher {
    /// A fetcher whose HTTPS trust is exactly `tls` (custom CA and/or SPKI pins, see
    /// [`crate::tls`]); the proxy is taken from the environment unless `base_url` is on the
    /// loopback interface.
    pub fn with_tls(
        base_url: &str,
        tls: &crate::tls::TlsOptions,
    ) -> Result<Self, crate::tls::TlsError> {
        let config = HttpConfig {
            proxy_from_env: !is_loopback(base_url),
            ..HttpConfig::default()
        };
        Ok(HttpFetcher {
            agent: https_agent(&config, tls)?,
            speed_floor: SpeedFloor::of(&config),
        })
    }
}

/// A ureq agent whose HTTPS trust is exactly `tls`: no redirects, HTTP errors returned as
/// responses, `config`'s timeouts and proxy choice. Also used to talk to the publish API.
pub fn https_agent(
    config: &HttpConfig,
    tls: &crate::tls::TlsOptions,
) -> Result<ureq::Agent, crate::tls::TlsError> {
    use ureq::unversioned::resolver::DefaultResolver;
    use ureq::unversioned::transport::{ConnectProxyConnector, Connector, TcpConnector};
    let rustls_config = crate::tls::client_config(tls)?;
    let proxy = if config.proxy_from_env {
        ureq::Proxy::try_from_env()
    } else {
        None
    };
    let agent_config = ureq::Agent::config_builder()
        .proxy(proxy)
        .max_redirects(0)
        .http_status_as_error(false)
        .timeout_connect(Some(config.connect_timeout))
        .timeout_global(Some(config.request_timeout))
        .timeout_per_read(Some(config.stall_timeout))
        .user_agent(concat!("sealwright-client/", env!("CARGO_PKG_VERSION")))
        .build();
    let connector =
        ().chain(ConnectProxyConnector::default())
            .chain(TcpConnector::default())
            .chain(crate::tls::TlsConnector {
                config: rustls_config,
            });
    Ok(ureq::Agent::with_parts(
        agent_config,
        connector,
        DefaultResolver::default(),
    ))
}

/// Whether `url` parses (WHATWG rules, the `url` crate) and its host is this machine's
/// loopback: an IP literal in 127.0.0.0/8 or `::1`, or exactly `localhost`. A host that
/// merely starts with `localhost` or `127.` (`localhost.attacker.example`) is not.
pub fn is_loopback(url: &str) -> bool {
    match url::Url::parse(url).ok().as_ref().and_then(url::Url::host) {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// The transport rule for every URL the client and `push` use: `https://` with a host, or
/// plain `http://` to the loopback interface only (local tests; nothing leaves the machine
/// unencrypted, and no bearer token crosses a network in clear).
pub fn check_transport(url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{url}: not a valid URL ({e})"))?;
    match parsed.scheme() {
        "https" if parsed.host().is_some() => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        _ => Err(format!(
            "{url}: must be an https:// URL (plain http:// only for 127.0.0.1, ::1 or localhost)"
        )),
    }
}

impl Default for HttpFetcher {
    fn default() -> Self {
        HttpFetcher::new(&HttpConfig::default())
    }
}

fn transport(url: &str, e: impl std::fmt::Display) -> FetchError {
    let raw = e.to_string();
    let message = match explain_tls(&raw) {
        Some(words) => format!("{words} ({raw})"),
        None => raw,
    };
    FetchError::Transport {
        url: url.to_owned(),
        message,
    }
}

/// A TLS failure in words a person understands, when `raw` (rustls's reason, as ureq
/// reports it) is one; the raw reason is kept after it by the caller.
pub fn explain_tls(raw: &str) -> Option<&'static str> {
    const WORDS: &[(&str, &str)] = &[
        ("UnknownIssuer", "the server's certificate is not signed by a CA this client trusts (the CA file given with --ca, or the system's roots)"),
        ("NotValidForName", "the server's certificate is not for this host name (check the URL's host against the certificate's names)"),
        ("Expired", "the server's certificate has expired, or this machine's clock is wrong"),
        ("NotValidYet", "the server's certificate is not valid yet, or this machine's clock is wrong"),
        ("CaUsedAsEndEntity", "the server presents a CA certificate as its own certificate (it needs a certificate issued by that CA)"),
        ("BadSignature", "the server's certificate chain has a bad signature"),
        ("Revoked", "the server's certificate has been revoked"),
        ("pinned SPKI", "the server's certificate chain carries none of the pinned public keys (--pin-spki)"),
        ("HandshakeFailure", "the server and this client share no TLS version or cipher suite"),
    ];
    WORDS
        .iter()
        .find(|(needle, _)| raw.contains(needle))
        .map(|(_, words)| *words)
}

impl Fetcher for HttpFetcher {
    fn fetch_to(&self, url: &str, max_len: u64, sink: &mut dyn Write) -> Result<u64, FetchError> {
        let response = self.agent.get(url).call().map_err(|e| transport(url, e))?;
        let status = response.status().as_u16();
        match status {
            200 => {}
            403 | 404 => {
                return Err(FetchError::NotFound {
                    url: url.to_owned(),
                    status,
                })
            }
            _ => {
                return Err(FetchError::Status {
                    url: url.to_owned(),
                    status,
                })
            }
        }
        let too_large = || FetchError::TooLarge {
            url: url.to_owned(),
            max: max_len,
        };
        if let Some(declared) = response
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            if declared > max_len {
                return Err(too_large());
            }
        }
        let mut reader = response
            .into_body()
            .into_reader()
            .take(max_len.saturating_add(1));
        let mut total: u64 = 0;
        let mut buf = vec![0u8; 64 * 1024];
        let started = Instant::now();
        loop {
            if self.speed_floor.too_slow(total, started.elapsed()) {
                return Err(FetchError::TooSlow {
                    url: url.to_owned(),
                    received: total,
                    seconds: started.elapsed().as_secs(),
                    min_bytes_per_sec: self.speed_floor.min_bytes_per_sec,
                });
            }
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(transport(url, e)),
            };
            total = total.saturating_add(n as u64);
            if total > max_len {
                return Err(too_large());
            }
            let chunk = buf.get(..n).unwrap_or_default();
            sink.write_all(chunk).map_err(|source| FetchError::Io {
                url: url.to_owned(),
                source,
            })?;
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_speed_floor_spares_the_grace_period_and_catches_trickles_after_it() {
        let floor = SpeedFloor::of(&HttpConfig::default());
        assert!(!floor.too_slow(0, Duration::from_secs(9)));
        assert!(floor.too_slow(0, Duration::from_secs(11)));
        assert!(floor.too_slow(11 * 1024 - 1, Duration::from_secs(11)));
        assert!(!floor.too_slow(11 * 1024, Duration::from_secs(11)));
        assert!(!floor.too_slow(u64::MAX, Duration::from_secs(u64::MAX / 2000)));
    }
}

#[cfg(test)]
mod transport_tests {
    use super::*;

    #[test]
    fn plain_http_only_for_real_loopback_hosts() {
        for ok in [
            "https://updates.example/",
            "http://127.0.0.1:8080/",
            "http://127.9.9.9/",
            "http://[::1]:80/",
            "http://localhost/",
            "http://LOCALHOST:1/x",
        ] {
            check_transport(ok).unwrap();
        }
        for bad in [
            "http://localhost.attacker.example/",
            "http://127.0.0.1.attacker.example/",
            "http://localhost@attacker.example/",
            "http://attacker.example/?localhost",
            "http://[::1].attacker.example/",
            "http://10.0.0.1/",
            "ftp://127.0.0.1/",
            "127.0.0.1:80",
            "",
        ] {
            assert!(check_transport(bad).is_err(), "{bad}");
        }
        assert!(!is_loopback("https://localhost.attacker.example/"));
    }

    #[test]
    fn tls_failures_are_explained_and_keep_their_reason() {
        let e = transport("https://x/", "io: invalid peer certificate: UnknownIssuer");
        let text = e.to_string();
        assert!(
            text.contains("not signed by a CA this client trusts"),
            "{text}"
        );
        assert!(text.contains("UnknownIssuer"), "{text}");
        assert!(explain_tls("connection refused").is_none());
    }
}
