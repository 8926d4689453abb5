//! TLS: certificates from PEM files or a generated development certificate; rustls with the
//! aws-lc-rs provider; ALPN `h2` then `http/1.1`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sealwright_crypto::keyfile::MAX_PEM_FILE;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// TLS setup failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// Generating the development certificate failed.
    #[error("generating the development certificate: {0}")]
    Generate(String),
    /// rustls refused the certificate/key pair.
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// The CA certificates a publisher's client certificate must chain to.
#[derive(Debug, Clone)]
pub struct ClientCa {
    roots: Arc<rustls::RootCertStore>,
}

impl ClientCa {
    /// Reads the PEM CA certificates in `path`.
    pub fn from_pem_file(path: &Path) -> Result<Self, TlsError> {
        let pem_err = |reason: String| TlsError::Pem {
            path: path.to_path_buf(),
            reason,
        };
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| pem_err(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem_err(e.to_string()))?;
        if certs.is_empty() {
            return Err(pem_err("holds no CERTIFICATE block".into()));
        }
        let mut roots = rustls::RootCertStore::empty();
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| pem_err(format!("not a usable CA certificate: {e}")))?;
        }
        Ok(ClientCa {
            roots: Arc::new(roots),
        })
    }
}

/// A certificate chain and its private key.
#[derive(Debug)]
pub struct Identity {
    /// Leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key.
    pub key: PrivateKeyDer<'static>,
    /// PEM of the leaf (for a development certificate: what clients should trust).
    pub leaf_pem: String,
}

impl Identity {
    /// Reads a PEM certificate chain and a PEM private key.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let pem_err = |path: &Path, reason: String| TlsError::Pem {
            path: path.to_path_buf(),
            reason,
        };
        let read = |path: &Path| {
            sealwright_fs::read_capped(path, MAX_PEM_FILE).map_err(|e| pem_err(path, e.to_string()))
        };
        let cert_pem = read(cert)?;
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| pem_err(cert, e.to_string()))?;
        if chain.is_empty() {
            return Err(pem_err(cert, "no CERTIFICATE block".into()));
        }
        let key_pem = zeroize::Zeroizing::new(read(key)?);
        let key_der = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| pem_err(key, format!("no usable private key: {e}")))?;
        let leaf_pem =
            String::from_utf8(cert_pem).map_err(|_| pem_err(cert, "not UTF-8 text".into()))?;
        Ok(Identity {
            chain,
            key: key_der,
            leaf_pem,
        })
    }

    /// A fresh self-signed certificate for `127.0.0.1`, `::1` and `localhost` (ECDSA P-256).
    /// The key lives only in memory.
    pub fn generate_dev() -> Result<Self, TlsError> {
        let names = ["127.0.0.1", "::1", "localhost"].map(str::to_owned);
        Ok(Self::self_signed(&names, "Sealwright development server")?.0)
    }

    /// A fresh self-signed certificate (ECDSA P-256) for `names` (DNS names or IP
    /// addresses), and its private key as PKCS#8 PEM for whoever must keep it.
    pub fn self_signed(
        names: &[String],
        common_name: &str,
    ) -> Result<(Self, zeroize::Zeroizing<String>), TlsError> {
        let mut params = rcgen::CertificateParams::new(names.to_vec())
            .map_err(|e| TlsError::Generate(e.to_string()))?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        let key = rcgen::KeyPair::generate().map_err(|e| TlsError::Generate(e.to_string()))?;
        let cert = params
            .self_signed(&key)
            .map_err(|e| TlsError::Generate(e.to_string()))?;
        let key_pem = zeroize::Zeroizing::new(key.serialize_pem());
        let identity = Identity {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            leaf_pem: cert.pem(),
        };
        Ok((identity, key_pem))
    }

    /// SHA-256 of the leaf certificate (DER), as `AB:CD:...` like `openssl x509 -fingerprint`.
    pub fn fingerprint(&self) -> String {
        let der = self.chain.first().map(|c| c.as_ref()).unwrap_or_default();
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
        d.as_ref()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }

    /// The rustls server configuration (aws-lc-rs, TLS 1.2/1.3, ALPN h2 + http/1.1).
    ///
    /// With `client_ca`, a client *may* present a certificate, which must then chain to one
    /// of those CAs (rustls's WebPKI client verifier; a bad one fails the handshake). Clients
    /// without one are still served the public tree: a certificate only authenticates a
    /// publisher, and only when its fingerprint is registered (`token add --client-cert`).
    pub fn server_config(
        &self,
        client_ca: Option<&ClientCa>,
    ) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::clone(&ca.roots),
                    provider,
                )
                .allow_unauthenticated()
                .build()
                .map_err(|e| TlsError::Config(format!("client CA: {e}")))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut cfg = builder
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| TlsError::Config(e.to_string()))?;
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pem_files_load_and_fingerprint_matches_the_der() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (c, k) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        let id = Identity::from_pem_files(&c, &k).unwrap();
        assert_eq!(id.chain.len(), 1);
        let want = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, cert.der());
        assert_eq!(
            id.fingerprint().replace(':', ""),
            hex::encode_upper(want.as_ref())
        );
        id.server_config(None).unwrap();

        // Swapped files, or a key that is not a key: a clear error naming the file.
        let err = Identity::from_pem_files(&k, &k).unwrap_err().to_string();
        assert!(err.contains("key.pem"), "{err}");
        let err = Identity::from_pem_files(&c, &c).unwrap_err().to_string();
        assert!(
            err.contains("cert.pem") && err.contains("private key"),
            "{err}"
        );

        // A file past the limit (a certificate with megabytes of padding, /dev/zero named
        // as a key) is refused without being read whole.
        let big = dir.path().join("big.pem");
        let mut padded = cert.pem().into_bytes();
        padded.resize(MAX_PEM_FILE as usize + 1, b'\n');
        std::fs::write(&big, padded).unwrap();
        let err = Identity::from_pem_files(&big, &k).unwrap_err().to_string();
        assert!(err.contains("big.pem") && err.contains("limit"), "{err}");
        let err = Identity::from_pem_files(&c, Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/dev/zero") && err.contains("limit"), "{err}");
    }

    #[test]
    fn dev_certificate_names_loopback() {
        let id = Identity::generate_dev().unwrap();
        assert!(id.leaf_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(!id.leaf_pem.contains("PRIVATE KEY"));
        assert_eq!(id.fingerprint().len(), 32 * 3 - 1);
        id.server_config(None).unwrap();
    }
}
