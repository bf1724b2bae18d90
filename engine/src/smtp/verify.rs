//! The certificate verifier for servers whose certificate must be trusted (relays, MX hosts
//! with required TLS): the WebPKI verifier over the Mozilla roots plus a CA file, except for a
//! certificate listed itself in that file (pinned, compared byte for byte), which is accepted
//! even when it is a CA certificate or lacks the server-auth purpose, as long as it covers the
//! host name and is within its dates. Handshake signatures are always checked.
//!
//! Every refusal carries a [`CertRefusal`] (inside `rustls::Error`) so the handshake error can
//! say what is wrong in words: which names the certificate has, when it expired, which file.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};

use super::der;
use super::error::{TlsDetail, TlsProblem};

/// Why the verifier refused a certificate: the problem and its facts. Travels inside
/// `rustls::Error::InvalidCertificate(CertificateError::Other(..))` to the handshake's caller.
#[derive(Debug, Clone)]
pub(crate) struct CertRefusal {
    pub(crate) problem: TlsProblem,
    pub(crate) detail: TlsDetail,
}

impl fmt::Display for CertRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail.describe(self.problem, "the server"))
    }
}

impl std::error::Error for CertRefusal {}

/// WebPKI verification with pinned certificates and worded refusals.
#[derive(Debug)]
pub(crate) struct TrustVerifier {
    webpki: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
    ca_file: Option<PathBuf>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl TrustVerifier {
    /// A verifier delegating to `webpki`, accepting the `pinned` certificates as described in
    /// the module docs; `ca_file` is named in refusals.
    pub(crate) fn new(
        webpki: Arc<WebPkiServerVerifier>,
        pinned: Vec<CertificateDer<'static>>,
        ca_file: Option<PathBuf>,
        algorithms: WebPkiSupportedAlgorithms,
    ) -> TrustVerifier {
        TrustVerifier {
            webpki,
            pinned,
            ca_file,
            algorithms,
        }
    }

    /// A pinned certificate: the host name and the dates are checked, nothing else.
    fn verify_pinned(
        &self,
        cert: &CertificateDer<'_>,
        server_name: &ServerName<'_>,
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(dates) = der::read(cert) else {
            return Err(self.refuse(TlsProblem::CertificateInvalid, |d| {
                d.reason = Some("it cannot be read".to_owned());
            }));
        };
        let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        if now > dates.not_after {
            return Err(self.refuse(TlsProblem::CertificateExpired, |d| {
                d.date = Some(der::system_time(dates.not_after));
            }));
        }
        if now < dates.not_before {
            return Err(self.refuse(TlsProblem::CertificateNotYetValid, |d| {
                d.date = Some(der::system_time(dates.not_before));
            }));
        }
        let parsed = ParsedCertificate::try_from(cert).map_err(|e| self.explain(e, cert))?;
        rustls::client::verify_server_name(&parsed, server_name)
            .map_err(|e| self.explain(e, cert))?;
        Ok(ServerCertVerified::assertion())
    }

    /// A refusal with `problem`, the CA file, and what `fill` adds.
    fn refuse(&self, problem: TlsProblem, fill: impl FnOnce(&mut TlsDetail)) -> rustls::Error {
        let mut detail = TlsDetail {
            ca_file: self.ca_file.clone(),
            ..TlsDetail::default()
        };
        fill(&mut detail);
        let refusal = CertRefusal { problem, detail };
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(refusal))))
    }

    /// Turns a rustls/webpki certificate error into a worded refusal; other errors pass.
    fn explain(&self, error: rustls::Error, cert: &CertificateDer<'_>) -> rustls::Error {
        let rustls::Error::InvalidCertificate(cert_error) = &error else {
            return error;
        };
        let dates = der::read(cert);
        let self_issued = dates.is_some_and(|d| d.self_issued);
        match cert_error {
            CertificateError::UnknownIssuer if self_issued => {
                self.refuse(TlsProblem::SelfSigned, |_| {})
            }
            CertificateError::UnknownIssuer => {
                self.refuse(TlsProblem::CertificateNotTrusted, |_| {})
            }
            CertificateError::Other(other) if is_ca_used_as_end_entity(other) => {
                let problem = if self_issued {
                    TlsProblem::SelfSigned
                } else {
                    TlsProblem::CaUsedAsEndEntity
                };
                self.refuse(problem, |_| {})
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                self.refuse(TlsProblem::CertificateExpired, |d| {
                    d.date = dates.map(|x| der::system_time(x.not_after));
                })
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => self
                .refuse(TlsProblem::CertificateNotYetValid, |d| {
                    d.date = dates.map(|x| der::system_time(x.not_before));
                }),
            CertificateError::NotValidForNameContext { presented, .. } => {
                self.refuse(TlsProblem::CertificateNameMismatch, |d| {
                    d.names = presented.iter().filter_map(|n| presented_name(n)).collect();
                })
            }
            CertificateError::NotValidForName => {
                self.refuse(TlsProblem::CertificateNameMismatch, |_| {})
            }
            other => {
                let reason = certificate_reason(other);
                self.refuse(TlsProblem::CertificateInvalid, |d| d.reason = Some(reason))
            }
        }
    }
}

/// webpki's "a CA certificate was presented as the server's own".
fn is_ca_used_as_end_entity(other: &OtherError) -> bool {
    matches!(
        other.0.downcast_ref::<webpki::Error>(),
        Some(webpki::Error::CaUsedAsEndEntity)
    )
}

/// webpki shows the names it found as `DnsName("relay.test")` and `IpAddress(127.0.0.1)`: the
/// bare name for a person; other kinds of names (URIs, directory names) are left out.
fn presented_name(presented: &str) -> Option<String> {
    let (kind, rest) = presented.split_once('(')?;
    let inner = rest.strip_suffix(')')?;
    matches!(kind, "DnsName" | "IpAddress").then(|| inner.trim_matches('"').to_owned())
}

/// A short reason for certificate errors without a problem of their own.
fn certificate_reason(error: &CertificateError) -> String {
    match error {
        CertificateError::BadEncoding => "it is not properly encoded".to_owned(),
        CertificateError::BadSignature => "its signature does not verify".to_owned(),
        CertificateError::Revoked => "it has been revoked".to_owned(),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "it is not meant for TLS servers".to_owned()
        }
        CertificateError::UnsupportedSignatureAlgorithmContext { .. } => {
            "it is signed with an unsupported algorithm".to_owned()
        }
        CertificateError::Other(other) => words(&other.0.to_string()),
        _ => "it was refused".to_owned(),
    }
}

/// `CamelCaseWords` (how webpki names its errors) as `camel case words`.
pub(crate) fn words(name: &str) -> String {
    let mut out = String::new();
    for (i, ch) in name.chars().enumerate() {
        if ch.is_ascii_uppercase() {
            if i > 0 && !out.ends_with(' ') {
                out.push(' ');
            }
            out.push(ch.to_ascii_lowercase());
        } else if ch.is_alphanumeric() || " :,.-".contains(ch) {
            out.push(ch);
        } else {
            out.push(' ');
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl ServerCertVerifier for TrustVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self
            .pinned
            .iter()
            .any(|p| p.as_ref() == end_entity.as_ref())
        {
            return self.verify_pinned(end_entity, server_name, now);
        }
        self.webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map_err(|e| self.explain(e, end_entity))
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
