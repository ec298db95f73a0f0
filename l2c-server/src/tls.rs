//! HTTPS termination with rustls (ring provider), for `--tls-cert` / `--tls-key`.
//!
//! Each handshake runs in its connection's own task, bounded by `--tls-handshake-timeout` and
//! counted in `--max-connections` (see [`crate::connections`]), so one slow client never holds
//! up the others.

use std::sync::Arc;

use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{ConfigError, TlsFiles};

/// Reads the PEM certificate chain and private key into a rustls server configuration
/// (TLS 1.2 and 1.3, ALPN `h2` and `http/1.1`).
///
/// # Errors
///
/// [`ConfigError::Tls`] naming the file that could not be read or used.
pub fn load_server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, ConfigError> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|e| ConfigError::Tls(format!("{}: {e}", path.display())))
    };
    let cert_pem = read(&files.cert)?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConfigError::Tls(format!("{}: {e}", files.cert.display())))?;
    if certs.is_empty() {
        return Err(ConfigError::Tls(format!(
            "{}: no certificate found",
            files.cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_slice(&read(&files.key)?)
        .map_err(|e| ConfigError::Tls(format!("{}: {e}", files.key.display())))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ConfigError::Tls(format!("certificate and key do not fit: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
