//! TLS for the SMTP client: the rustls client configuration and the handshake that wraps a
//! plain stream (implicit TLS or after STARTTLS), with failures turned into plain words.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CertificateError, RootCertStore};
use tokio_rustls::TlsConnector;

use super::error::{Phase, SmtpError, TlsProblem};
use super::stream::BoxedStream;

/// Builds a rustls client configuration trusting the webpki (Mozilla) roots plus, when given,
/// every certificate of `extra_ca_pem` (a PEM bundle, e.g. a private relay's CA).
///
/// Fails with [`SmtpError::TlsConfig`] when the PEM is malformed, holds no certificate, or a
/// certificate is rejected as a trust anchor.
pub fn tls_client_config(
    extra_ca_pem: Option<&[u8]>,
) -> Result<Arc<rustls::ClientConfig>, SmtpError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = extra_ca_pem {
        add_pem_roots(&mut roots, pem)?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SmtpError::TlsConfig {
            detail: format!("cannot set up TLS protocol versions: {e}"),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn add_pem_roots(roots: &mut RootCertStore, pem: &[u8]) -> Result<(), SmtpError> {
    let mut count = 0;
    for (index, cert) in CertificateDer::pem_slice_iter(pem).enumerate() {
        let cert = cert.map_err(|e| SmtpError::TlsConfig {
            detail: format!("extra CA bundle is not valid PEM (certificate {index}): {e}"),
        })?;
        roots.add(cert).map_err(|e| SmtpError::TlsConfig {
            detail: format!("extra CA certificate {index} cannot be used as a trust root: {e}"),
        })?;
        count += 1;
    }
    if count == 0 {
        return Err(SmtpError::TlsConfig {
            detail: "extra CA bundle contains no PEM certificate".to_owned(),
        });
    }
    Ok(())
}

/// Runs the TLS handshake over `stream` for `host`, bounded by `limit`.
pub(crate) async fn handshake(
    stream: BoxedStream,
    host: &str,
    config: Arc<rustls::ClientConfig>,
    limit: Duration,
) -> Result<BoxedStream, SmtpError> {
    let name = ServerName::try_from(host.to_owned()).map_err(|e| SmtpError::Tls {
        host: host.to_owned(),
        problem: TlsProblem::InvalidServerName,
        source: io::Error::new(io::ErrorKind::InvalidInput, e),
    })?;
    let connector = TlsConnector::from(config);
    match tokio::time::timeout(limit, connector.connect(name, stream)).await {
        Err(_) => Err(SmtpError::Timeout {
            host: host.to_owned(),
            phase: Phase::TlsHandshake,
        }),
        Ok(Err(source)) => Err(SmtpError::Tls {
            host: host.to_owned(),
            problem: classify(&source),
            source,
        }),
        Ok(Ok(tls)) => Ok(Box::new(tls)),
    }
}

/// Names the problem behind a failed handshake.
fn classify(error: &io::Error) -> TlsProblem {
    let Some(rustls_error) = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return TlsProblem::HandshakeFailed;
    };
    match rustls_error {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer => TlsProblem::CertificateNotTrusted,
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => TlsProblem::CertificateExpired,
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                TlsProblem::CertificateNameMismatch
            }
            _ => TlsProblem::CertificateInvalid,
        },
        rustls::Error::NoCertificatesPresented => TlsProblem::CertificateInvalid,
        _ => TlsProblem::HandshakeFailed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_builds() {
        tls_client_config(None).unwrap();
    }

    #[test]
    fn bad_pem_is_a_clear_error() {
        let err = tls_client_config(Some(b"not a certificate")).unwrap_err();
        assert!(err.is_configuration());
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
        let bad = b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n";
        let err = tls_client_config(Some(bad)).unwrap_err();
        assert!(err.to_string().contains("not valid PEM"), "{err}");
    }

    #[test]
    fn unknown_issuer_reads_as_not_trusted() {
        let inner = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let error = io::Error::new(io::ErrorKind::InvalidData, inner);
        assert_eq!(classify(&error), TlsProblem::CertificateNotTrusted);
        let plain = io::Error::new(io::ErrorKind::UnexpectedEof, "eof");
        assert_eq!(classify(&plain), TlsProblem::HandshakeFailed);
    }
}
