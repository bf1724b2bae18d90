//! TLS for the SMTP client: the rustls client configuration and the handshake that wraps a
//! plain stream (implicit TLS or after STARTTLS), with failures turned into plain words.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_rustls::TlsConnector;

use super::error::{Phase, SmtpError, TlsProblem};
use super::stream::BoxedStream;

/// TLS sessions remembered for resumption, across all the hosts one configuration talks to.
/// Reconnecting to a host resumes its session (an abbreviated handshake) as long as the same
/// `Arc<ClientConfig>` is used.
const RESUMABLE_SESSIONS: usize = 4_096;

/// Builds a rustls client configuration trusting the webpki (Mozilla) roots plus, when given,
/// every certificate of `extra_ca_pem` (a PEM bundle, e.g. a private relay's CA). Sessions
/// are resumed when reconnecting to the same host with the same configuration.
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
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(protocol_versions_error)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = Resumption::in_memory_sessions(RESUMABLE_SESSIONS);
    Ok(Arc::new(config))
}

/// A client configuration for opportunistic TLS to MX hosts (RFC 7435): the connection is
/// encrypted and the handshake signature checked, but the certificate is not required to
/// chain to a trusted root or to name the host, as MTAs do when TLS is not required (most MX
/// certificates would fail such checks, and the alternative is plain text). Sessions are
/// resumed as with [`tls_client_config`].
pub fn tls_opportunistic_config() -> Result<Arc<rustls::ClientConfig>, SmtpError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(AnyCertificate {
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(protocol_versions_error)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.resumption = Resumption::in_memory_sessions(RESUMABLE_SESSIONS);
    Ok(Arc::new(config))
}

fn protocol_versions_error(error: rustls::Error) -> SmtpError {
    SmtpError::TlsConfig {
        detail: format!("cannot set up TLS protocol versions: {error}"),
    }
}

/// Accepts any certificate, but still checks that the server holds its key.
#[derive(Debug)]
struct AnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
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
        tls_opportunistic_config().unwrap();
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
