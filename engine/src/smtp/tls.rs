//! TLS for the SMTP client: the rustls client configuration and the handshake that wraps a
//! plain stream (implicit TLS or after STARTTLS), with failures turned into plain words.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::crypto::{
    verify_tls12_signature, verify_tls13_signature, CryptoProvider, WebPkiSupportedAlgorithms,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_rustls::TlsConnector;

use super::error::{Phase, SmtpError, TlsDetail, TlsProblem};
use super::stream::BoxedStream;
use super::verify::{words, CertRefusal, TrustVerifier};

/// TLS sessions remembered for resumption, across all the hosts one configuration talks to.
/// Reconnecting to a host resumes its session (an abbreviated handshake) as long as the same
/// `Arc<ClientConfig>` is used.
const RESUMABLE_SESSIONS: usize = 4_096;

/// Builds a rustls client configuration trusting the webpki (Mozilla) roots plus, when given,
/// every certificate of `extra_ca_pem` (a PEM bundle, e.g. a private relay's CA). A server
/// certificate that is itself in the bundle (byte for byte) is accepted even if it is a CA
/// certificate, as long as it covers the host name and is within its dates. Sessions are
/// resumed when reconnecting to the same host with the same configuration.
///
/// Fails with [`SmtpError::TlsConfig`] when the PEM is malformed or holds no certificate.
pub fn tls_client_config(
    extra_ca_pem: Option<&[u8]>,
) -> Result<Arc<rustls::ClientConfig>, SmtpError> {
    build_trusting(extra_ca_pem, None)
}

/// Like [`tls_client_config`] with the bundle read from `ca_file`, which certificate errors
/// name ("not in ca_file …") so the user knows where to add a certificate.
pub fn tls_client_config_for_file(
    pem: &[u8],
    ca_file: &Path,
) -> Result<Arc<rustls::ClientConfig>, SmtpError> {
    build_trusting(Some(pem), Some(ca_file.to_path_buf()))
}

fn build_trusting(
    extra_ca_pem: Option<&[u8]>,
    ca_file: Option<PathBuf>,
) -> Result<Arc<rustls::ClientConfig>, SmtpError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = trust_verifier(extra_ca_pem, ca_file, &provider)?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(protocol_versions_error)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.resumption = Resumption::in_memory_sessions(RESUMABLE_SESSIONS);
    Ok(Arc::new(config))
}

/// The verifier of [`tls_client_config`]: the public roots plus `extra_ca_pem`, pinned.
pub(crate) fn trust_verifier(
    extra_ca_pem: Option<&[u8]>,
    ca_file: Option<PathBuf>,
    provider: &Arc<CryptoProvider>,
) -> Result<TrustVerifier, SmtpError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let pinned = match extra_ca_pem {
        Some(pem) => add_pem_roots(&mut roots, pem)?,
        None => Vec::new(),
    };
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| SmtpError::TlsConfig {
            detail: format!("cannot set up certificate verification: {e}"),
        })?;
    let algorithms = provider.signature_verification_algorithms;
    Ok(TrustVerifier::new(webpki, pinned, ca_file, algorithms))
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

/// Adds every certificate of `pem` to `roots` and returns them all (to be pinned). A
/// certificate webpki cannot use as a trust anchor is still pinned.
fn add_pem_roots(
    roots: &mut RootCertStore,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, SmtpError> {
    let mut pinned = Vec::new();
    for (index, cert) in CertificateDer::pem_slice_iter(pem).enumerate() {
        let cert = cert.map_err(|e| SmtpError::TlsConfig {
            detail: format!("extra CA bundle is not valid PEM (certificate {index}): {e}"),
        })?;
        if let Err(error) = roots.add(cert.clone()) {
            tracing::debug!(index, %error, "extra certificate is not a trust anchor; pinned only");
        }
        pinned.push(cert);
    }
    if pinned.is_empty() {
        return Err(SmtpError::TlsConfig {
            detail: "extra CA bundle contains no PEM certificate".to_owned(),
        });
    }
    Ok(pinned)
}

/// Runs the TLS handshake over `stream` for `host`, bounded by `limit`.
pub(crate) async fn handshake(
    stream: BoxedStream,
    host: &str,
    config: Arc<rustls::ClientConfig>,
    limit: Duration,
) -> Result<BoxedStream, SmtpError> {
    let name = ServerName::try_from(host.to_owned()).map_err(|_| SmtpError::Tls {
        host: host.to_owned(),
        problem: TlsProblem::InvalidServerName,
        detail: Box::default(),
    })?;
    let connector = TlsConnector::from(config);
    match tokio::time::timeout(limit, connector.connect(name, stream)).await {
        Err(_) => Err(SmtpError::Timeout {
            host: host.to_owned(),
            phase: Phase::TlsHandshake,
        }),
        Ok(Err(source)) => {
            tracing::debug!(host, error = %source, "TLS handshake failed");
            let (problem, detail) = classify(&source);
            Err(SmtpError::Tls {
                host: host.to_owned(),
                problem,
                detail: Box::new(detail),
            })
        }
        Ok(Ok(tls)) => Ok(Box::new(tls)),
    }
}

/// Names the problem behind a failed handshake, with its facts.
fn classify(error: &io::Error) -> (TlsProblem, TlsDetail) {
    let Some(rustls_error) = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        let reason = match error.kind() {
            io::ErrorKind::UnexpectedEof => "the server closed the connection".to_owned(),
            _ => error.to_string(),
        };
        return (TlsProblem::HandshakeFailed, with_reason(reason));
    };
    let problem = match rustls_error {
        rustls::Error::InvalidCertificate(CertificateError::Other(other)) => {
            if let Some(refusal) = other.0.downcast_ref::<CertRefusal>() {
                return (refusal.problem, refusal.detail.clone());
            }
            TlsProblem::CertificateInvalid
        }
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer => TlsProblem::CertificateNotTrusted,
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                TlsProblem::CertificateExpired
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                TlsProblem::CertificateNotYetValid
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                TlsProblem::CertificateNameMismatch
            }
            _ => TlsProblem::CertificateInvalid,
        },
        rustls::Error::NoCertificatesPresented => {
            let reason = "the server sent no certificate".to_owned();
            return (TlsProblem::CertificateInvalid, with_reason(reason));
        }
        rustls::Error::AlertReceived(alert) => {
            let reason = format!(
                "the server sent the alert \"{}\"",
                words(&format!("{alert:?}"))
            );
            return (TlsProblem::HandshakeFailed, with_reason(reason));
        }
        other => {
            // rustls' own words, with the names of its enums spelled out.
            let reason = words(&other.to_string());
            return (TlsProblem::HandshakeFailed, with_reason(reason));
        }
    };
    (problem, TlsDetail::default())
}

/// A detail holding only `reason`.
fn with_reason(reason: String) -> TlsDetail {
    TlsDetail {
        reason: Some(reason),
        ..TlsDetail::default()
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
    fn other_handshake_failures_are_worded_without_debug_names() {
        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::ProtocolVersion);
        let error = io::Error::new(io::ErrorKind::InvalidData, alert);
        let (problem, detail) = classify(&error);
        assert_eq!(problem, TlsProblem::HandshakeFailed);
        assert_eq!(
            detail.describe(problem, "relay.test"),
            "the TLS handshake failed: the server sent the alert \"protocol version\""
        );
        let peer =
            rustls::Error::PeerIncompatible(rustls::PeerIncompatible::NoCipherSuitesInCommon);
        let error = io::Error::new(io::ErrorKind::InvalidData, peer);
        let (_, detail) = classify(&error);
        assert_eq!(
            detail.reason.as_deref(),
            Some("peer is incompatible: no cipher suites in common")
        );
    }

    #[test]
    fn unknown_issuer_reads_as_not_trusted() {
        let inner = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let error = io::Error::new(io::ErrorKind::InvalidData, inner);
        assert_eq!(classify(&error).0, TlsProblem::CertificateNotTrusted);
        let plain = io::Error::new(io::ErrorKind::UnexpectedEof, "eof");
        let (problem, detail) = classify(&plain);
        assert_eq!(problem, TlsProblem::HandshakeFailed);
        assert_eq!(
            detail.reason.as_deref(),
            Some("the server closed the connection")
        );
    }
}
