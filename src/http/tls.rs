//! HTTPS with rustls: the certificate and key from PEM files, HTTP/2 or HTTP/1.1 by ALPN,
//! and a reload of both on SIGHUP. A reload changes what new handshakes present; open
//! connections keep the certificate they started with, so none is dropped.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// What goes wrong loading a certificate or key.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file that cannot be read or holds nothing usable.
    #[error("cannot read {what} from {path}: {message}")]
    Pem {
        what: &'static str,
        path: PathBuf,
        message: String,
    },
    /// rustls refused the pair (for example, a key that does not match the certificate).
    #[error("certificate {cert} and key {key} do not make a TLS configuration: {source}")]
    Config {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
}

/// The acceptor for new connections, swapped whole on reload.
pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    acceptor: RwLock<TlsAcceptor>,
}

impl Tls {
    /// Loads the certificate chain and private key (PEM).
    pub fn load(cert: &Path, key: &Path) -> Result<Tls, TlsError> {
        Ok(Tls {
            cert: cert.to_owned(),
            key: key.to_owned(),
            acceptor: RwLock::new(acceptor(cert, key)?),
        })
    }

    /// Reads both files again; on an error the previous certificate stays in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = acceptor(&self.cert, &self.key)?;
        *self.acceptor.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }

    /// The acceptor for the next connection.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    fn pem_error<'a>(what: &'static str, path: &'a Path) -> impl Fn(rustls::pki_types::pem::Error) -> TlsError + 'a {
        move |e| TlsError::Pem {
            what,
            path: path.to_owned(),
            message: e.to_string(),
        }
    }
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(pem_error("certificates", cert))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_error("certificates", cert))?;
    if chain.is_empty() {
        return Err(TlsError::Pem {
            what: "certificates",
            path: cert.to_owned(),
            message: "no CERTIFICATE block".into(),
        });
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(pem_error("a private key", key))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, private))
        .map_err(|source| TlsError::Config {
            cert: cert.to_owned(),
            key: key.to_owned(),
            source,
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Reloads `tls` on every SIGHUP until the process ends; a failed reload is logged and
/// keeps the old certificate.
pub fn reload_on_sighup(tls: Arc<Tls>) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    Ok(tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            match tls.reload() {
                Ok(()) => tracing::info!(cert = %tls.cert.display(), "TLS certificate reloaded"),
                Err(e) => tracing::error!(error = %e, "TLS certificate reload failed; the previous one stays in use"),
            }
        }
    }))
}
