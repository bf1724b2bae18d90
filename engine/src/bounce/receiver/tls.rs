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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_files_are_named_and_the_key_is_never_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        assert!(server_config(&cert_file, &key_file).is_ok());

        let secret =
            "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----\n";
        let broken = dir.path().join("broken.pem");
        std::fs::write(&broken, secret).unwrap();
        let error = server_config(&cert_file, &broken).unwrap_err().to_string();
        assert!(error.contains("broken.pem"), "{error}");
        assert!(!error.contains("c2VjcmV0"), "{error}");

        let error = server_config(&key_file, &key_file).unwrap_err().to_string();
        assert!(
            error.contains("key.pem") && error.contains("no CERTIFICATE"),
            "{error}"
        );
        let missing = dir.path().join("missing.pem");
        let error = server_config(&missing, &key_file).unwrap_err().to_string();
        assert!(error.contains("missing.pem"), "{error}");
    }
}
