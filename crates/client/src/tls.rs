//! TLS for the updater (PRODUCT.md C9): strict certificate and host validation by rustls's
//! WebPKI verifier against either the bundled Mozilla roots (`webpki-roots`) or exactly the
//! CA certificates the operator gave, plus optional SPKI pinning.
//!
//! Guarantees:
//! - the chain and the host name are always verified first; a pin is an *extra* condition,
//!   never a replacement (a pinned key on a certificate for the wrong host is refused);
//! - there is no code path that skips verification: no "insecure" flag exists;
//! - a pin is `sha256/BASE64` of a certificate's DER SubjectPublicKeyInfo (the format of
//!   HPKP and `curl --pinnedpubkey`); it matches when a certificate of a *verified path* —
//!   the leaf, the intermediates the path was built through, or its trust anchor — carries
//!   that key, so pinning an intermediate CA survives leaf renewals. Certificates the server
//!   merely presented but no path uses never satisfy a pin (a rogue chain with the pinned
//!   certificate appended is refused).
//!
//! ureq does not accept a custom rustls verifier, so this module also provides the small
//! ureq connector that wraps the TCP stream in rustls with our configuration.

use std::fmt;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use sealwright_crypto::keyfile::MAX_PEM_FILE;

use base64::Engine as _;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, StreamOwned};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, Transport,
    TransportAdapter,
};

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The CA file is unreadable or holds no certificate.
    #[error("CA file {path}: {reason}")]
    CaFile {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A pin is not `sha256/<base64 of 32 bytes>`.
    #[error("SPKI pin {0:?} is not of the form sha256/BASE64 (32 bytes): compute it with `openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`")]
    BadPin(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(String),
    /// The client certificate or key file is unreadable or unusable.
    #[error("client certificate {path}: {reason}")]
    ClientIdentity {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// Whom to trust for HTTPS.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// PEM CA certificates to trust *instead of* the bundled Mozilla roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Where `ca_pem` came from (for error messages).
    pub ca_source: Option<String>,
    /// SPKI pins (`sha256/BASE64`); when non-empty one must match the server's chain.
    pub spki_pins: Vec<String>,
    /// A certificate (chain, leaf first) and key to present when the server asks (a
    /// publisher authenticating to the publish API by mTLS).
    pub client_identity: Option<ClientIdentity>,
}

/// A TLS client certificate chain and its private key.
pub struct ClientIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
}

impl Clone for ClientIdentity {
    fn clone(&self) -> Self {
        ClientIdentity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        f.debug_struct("ClientIdentity")
            .field("certificates", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// SHA-256 (hex) of the DER of the first certificate in the PEM file `path`: how the
/// publish API names a client certificate.
pub fn certificate_sha256(path: &Path) -> Result<String, TlsError> {
    let bad = |reason: String| TlsError::ClientIdentity {
        path: path.display().to_string(),
        reason,
    };
    let pem = read_pem_file(path).map_err(|e| bad(e.to_string()))?;
    let first = CertificateDer::pem_slice_iter(&pem)
        .next()
        .ok_or_else(|| bad("holds no CERTIFICATE block".into()))?
        .map_err(|e| bad(format!("not a PEM certificate: {e}")))?;
    Ok(sealwright_crypto::digest::sha256_hex(first.as_ref()))
}

/// Reads a PEM file of at most [`MAX_PEM_FILE`] bytes; a longer one is an error, never
/// silently truncated.
fn read_pem_file(path: &Path) -> std::io::Result<Vec<u8>> {
    sealwright_fs::read_capped(path, MAX_PEM_FILE)
}

impl ClientIdentity {
    /// Reads a PEM certificate chain and a PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let read = |path: &Path| {
            read_pem_file(path).map_err(|e| TlsError::ClientIdentity {
                path: path.display().to_string(),
                reason: e.to_string(),
            })
        };
        let cert_pem = read(cert)?;
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::ClientIdentity {
                path: cert.display().to_string(),
                reason: format!("not PEM certificates: {e}"),
            })?;
        if chain.is_empty() {
            return Err(TlsError::ClientIdentity {
                path: cert.display().to_string(),
                reason: "holds no CERTIFICATE block".into(),
            });
        }
        let key_pem = zeroize::Zeroizing::new(read(key)?);
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
            TlsError::ClientIdentity {
                path: key.display().to_string(),
                reason: format!("no unencrypted PEM private key: {e}"),
            }
        })?;
        Ok(ClientIdentity { chain, key })
    }
}

impl TlsOptions {
    /// Trust the CA certificates in the PEM file `path` (read now).
    pub fn with_ca_file(mut self, path: &Path) -> Result<Self, TlsError> {
        let pem = read_pem_file(path).map_err(|e| TlsError::CaFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        self.ca_pem = Some(pem);
        self.ca_source = Some(path.display().to_string());
        Ok(self)
    }
}

/// Parses `sha256/BASE64` into the 32-byte digest.
pub fn parse_pin(pin: &str) -> Result<[u8; 32], TlsError> {
    let bad = || TlsError::BadPin(pin.to_owned());
    let b64 = pin.strip_prefix("sha256/").ok_or_else(bad)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| bad())?;
    bytes.try_into().map_err(|_| bad())
}

/// The pin of a DER certificate: `sha256/` + base64(SHA-256(SubjectPublicKeyInfo)).
pub fn spki_pin_of(cert_der: &[u8]) -> Option<String> {
    spki_sha256(cert_der).map(|d| {
        format!(
            "sha256/{}",
            base64::engine::general_purpose::STANDARD.encode(d)
        )
    })
}

fn spki_sha256(cert_der: &[u8]) -> Option<[u8; 32]> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    Some(sealwright_crypto::digest::sha256(
        cert.tbs_certificate.subject_pki.raw,
    ))
}

/// The server certificate verifier for `opts`: rustls's WebPKI verifier against the
/// configured roots, wrapped by the pin check when pins are configured.
fn server_verifier(opts: &TlsOptions) -> Result<Arc<dyn ServerCertVerifier>, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    match &opts.ca_pem {
        Some(pem) => {
            let source = opts.ca_source.clone().unwrap_or_else(|| "CA".into());
            let ca_err = |reason: String| TlsError::CaFile {
                path: source.clone(),
                reason,
            };
            let mut n = 0;
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| ca_err(format!("not PEM certificates: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| ca_err(format!("unusable certificate: {e}")))?;
                n += 1;
            }
            if n == 0 {
                return Err(ca_err("holds no CERTIFICATE block".into()));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let pins = opts
        .spki_pins
        .iter()
        .map(|p| parse_pin(p))
        .collect::<Result<Vec<_>, _>>()?;
    let roots_for_pins = roots.roots.clone();
    let provider_algorithms = provider.signature_verification_algorithms.all;
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    if pins.is_empty() {
        return Ok(webpki);
    }
    Ok(Arc::new(PinningVerifier {
        inner: webpki,
        anchors: roots_for_pins,
        algorithms: provider_algorithms,
        pins,
    }))
}

/// The rustls client configuration for `opts` (aws-lc-rs provider, TLS 1.2 and 1.3).
pub fn client_config(opts: &TlsOptions) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = server_verifier(opts)?;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        // Always WebPKI (plus pins when configured): the verifier below is never weaker.
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match &opts.client_identity {
        Some(id) => builder
            .with_client_auth_cert(id.chain.clone(), id.key.clone_key())
            .map_err(|e| TlsError::Rustls(format!("client certificate: {e}")))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// WebPKI verification, then an SPKI pin match on a path that verification builds.
#[derive(Debug)]
struct PinningVerifier {
    inner: Arc<WebPkiServerVerifier>,
    anchors: Vec<rustls::pki_types::TrustAnchor<'static>>,
    algorithms: &'static [&'static dyn rustls::pki_types::SignatureVerificationAlgorithm],
    pins: Vec<[u8; 32]>,
}

impl PinningVerifier {
    /// Whether some valid path from `end_entity` to a trust anchor carries a pinned key.
    /// The path is built by webpki (rustls's own verifier) with the pin as one more
    /// condition on each candidate path; certificates outside every valid path never count.
    fn pinned_path_exists(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> bool {
        let Ok(cert) = webpki::EndEntityCert::try_from(end_entity) else {
            return false;
        };
        let pinned = |spki: &[u8]| {
            let digest: [u8; 32] = sealwright_crypto::digest::sha256(spki);
            self.pins.contains(&digest)
        };
        let on_path = |path: &webpki::VerifiedPath<'_>| {
            let leaf = path.end_entity().subject_public_key_info();
            let anchor = webpki::spki_for_anchor(path.anchor());
            let hit = pinned(leaf.as_ref())
                || path
                    .intermediate_certificates()
                    .any(|c| pinned(c.subject_public_key_info().as_ref()))
                || pinned(anchor.as_ref());
            if hit {
                Ok(())
            } else {
                Err(webpki::Error::UnknownIssuer)
            }
        };
        cert.verify_for_usage(
            self.algorithms,
            &self.anchors,
            intermediates,
            now,
            webpki::KeyUsage::server_auth(),
            None,
            Some(&on_path),
        )
        .is_ok()
    }
}

impl ServerCertVerifier for PinningVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // Chain and host first: a pin never makes an otherwise invalid certificate valid.
        let verified = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        if self.pinned_path_exists(end_entity, intermediates, now) {
            Ok(verified)
        } else {
            Err(rustls::Error::General(
                "the server's certificate chain matches none of the pinned SPKI hashes".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A ureq connector that wraps the chained (TCP or proxy) transport in rustls with our
/// configuration. Plain `http://` passes through untouched (the caller decides whether
/// plain HTTP is acceptable at all).
pub(crate) struct TlsConnector {
    pub(crate) config: Arc<ClientConfig>,
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector").finish()
    }
}

impl<In: Transport> Connector<In> for TlsConnector {
    type Out = Either<In, TlsTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else {
            return Ok(None);
        };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let host = details
            .uri
            .authority()
            .map(|a| a.host().trim_start_matches('[').trim_end_matches(']'))
            .ok_or(ureq::Error::Tls("URL has no host"))?;
        let name = ServerName::try_from(host.to_owned())
            .map_err(|_| ureq::Error::Tls("URL host is not a valid DNS name or IP address"))?;
        let mut conn = ClientConnection::new(self.config.clone(), name)?;
        let mut sock = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        sock.set_timeout(details.timeout);
        conn.complete_io(&mut sock)?;
        Ok(Some(Either::B(TlsTransport {
            buffers: LazyBuffers::new(
                details.config.input_buffer_size(),
                details.config.output_buffer_size(),
            ),
            stream: StreamOwned { conn, sock },
        })))
    }
}

/// A TLS stream for ureq.
pub(crate) struct TlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsTransport").finish()
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = self
            .buffers
            .output()
            .get(..amount)
            .ok_or(ureq::Error::Tls("output larger than the buffer"))?;
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn pins_parse_strictly() {
        let ok = format!(
            "sha256/{}",
            base64::engine::general_purpose::STANDARD.encode([7u8; 32])
        );
        assert_eq!(parse_pin(&ok).unwrap(), [7u8; 32]);
        for bad in ["", "sha1/AAAA", "sha256/", "sha256/AAAA", "sha256/!!!"] {
            assert!(parse_pin(bad).is_err(), "{bad}");
        }
        let opts = TlsOptions {
            spki_pins: vec!["sha256/short".into()],
            ..TlsOptions::default()
        };
        assert!(client_config(&opts).is_err());
        assert!(client_config(&TlsOptions::default()).is_ok());
        let opts = TlsOptions {
            ca_pem: Some(b"not a pem".to_vec()),
            ..TlsOptions::default()
        };
        assert!(client_config(&opts).is_err());
    }

    fn ca(name: &str) -> rcgen::CertifiedIssuer<'static, rcgen::KeyPair> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        rcgen::CertifiedIssuer::self_signed(params, key).unwrap()
    }

    fn leaf(issuer: &rcgen::CertifiedIssuer<'static, rcgen::KeyPair>) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["updates.example".to_owned()]).unwrap();
        params.signed_by(&key, issuer).unwrap().der().clone()
    }

    #[test]
    fn a_pin_counts_only_on_a_path_that_verification_built() {
        let public_ca = ca("some trusted CA");
        let pinned_ca = ca("our own CA");
        let pem = format!("{}{}", public_ca.pem(), pinned_ca.pem());
        let pin = spki_pin_of(pinned_ca.der()).unwrap();
        let opts = TlsOptions {
            ca_pem: Some(pem.into_bytes()),
            spki_pins: vec![pin],
            ..TlsOptions::default()
        };
        let verifier = server_verifier(&opts).unwrap();
        let host = ServerName::try_from("updates.example").unwrap();
        let now = UnixTime::now();
        // A certificate from the other (trusted) CA, with our CA's certificate appended but
        // used by no path: refused.
        let rogue = leaf(&public_ca);
        let appended = [pinned_ca.der().clone()];
        let err = verifier
            .verify_server_cert(&rogue, &appended, &host, &[], now)
            .unwrap_err();
        assert!(err.to_string().contains("pinned"), "{err}");
        // The same certificate without the pin: valid (the pin is what refused it).
        server_verifier(&TlsOptions {
            spki_pins: Vec::new(),
            ..opts.clone()
        })
        .unwrap()
        .verify_server_cert(&rogue, &appended, &host, &[], now)
        .unwrap();
        // A certificate issued by the pinned CA: accepted.
        let genuine = leaf(&pinned_ca);
        verifier
            .verify_server_cert(&genuine, &[], &host, &[], now)
            .unwrap();
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_pin_text_parses_or_errors(pin in "(sha256/)?[A-Za-z0-9+/=]{0,60}|.{0,80}") {
            if let Ok(bytes) = parse_pin(&pin) {
                prop_assert_eq!(bytes.len(), 32);
            }
        }
    }
}
