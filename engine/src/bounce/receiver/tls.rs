//! STARTTLS material: a certificate chain and private key from PEM files, as a rustls server
//! configuration (aws-lc provider, safe default protocol versions).

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::error::ReceiverError;

/// Reads `cert` (PEM chain, leaf first) and `key` (PEM PKCS#8, PKCS#1 or SEC1) into a server
/// configuration. Errors name the file, never its contents.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, ReceiverError> {
    let tls_error = |path: &Path, reason: String| ReceiverError::Tls {
        path: path.to_path_buf(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| tls_error(cert, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(tls_error(cert, "no CERTIFICATE block".to_owned()));
    }
    // The key's parse error is summarised: its text could quote the file.
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|_| tls_error(key, "no readable PEM private key".to_owned()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| tls_error(key, format!("the key does not fit the certificate: {e}")))?;
    Ok(Arc::new(config))
}
