//! The certificate verifier: a certificate pinned in the CA file (even `CA:TRUE`, as
//! `openssl req -x509` makes them) is accepted for its names and dates only; everything else
//! goes through WebPKI; every refusal reads as a sentence. Certificates come from rcgen; the
//! end-to-end test with an openssl-made certificate is in the CLI tests (`tls_relay`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::CertificateError;
use tokio::time::timeout;

use super::tls::{handshake, trust_verifier};
use super::verify::{CertRefusal, TrustVerifier};
use super::*;

const LIMIT: Duration = Duration::from_secs(20);
const CA_FILE: &str = "/etc/volley/relay-ca.pem";

/// A self-signed certificate for `relay.test` and 127.0.0.1, marked `CA:TRUE` like the
/// ones `openssl req -x509` makes, valid from `from` to `until` (years).
fn self_signed_ca(from: i32, until: i32) -> (CertificateDer<'static>, String, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let names = vec!["relay.test".to_owned(), "127.0.0.1".to_owned()];
    let mut params = CertificateParams::new(names).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "relay.test");
    params.not_before = rcgen::date_time_ymd(from, 1, 1);
    params.not_after = rcgen::date_time_ymd(until, 1, 1);
    let cert = params.self_signed(&key).unwrap();
    (cert.der().clone(), cert.pem(), key)
}

fn verifier(pem: Option<&str>) -> TrustVerifier {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let ca_file = pem.map(|_| PathBuf::from(CA_FILE));
    trust_verifier(pem.map(str::as_bytes), ca_file, &provider).unwrap()
}

fn check(
    verifier: &TrustVerifier,
    cert: &CertificateDer<'_>,
    name: &str,
) -> Result<(), CertRefusal> {
    let name = ServerName::try_from(name.to_owned()).unwrap();
    match verifier.verify_server_cert(cert, &[], &name, &[], UnixTime::now()) {
        Ok(_) => Ok(()),
        Err(rustls::Error::InvalidCertificate(CertificateError::Other(other))) => {
            Err(other.0.downcast_ref::<CertRefusal>().unwrap().clone())
        }
        Err(other) => panic!("not a worded refusal: {other:?}"),
    }
}

fn message(refusal: &CertRefusal, host: &str) -> String {
    refusal.detail.describe(refusal.problem, host)
}

#[test]
fn pinned_ca_true_certificate_is_accepted_for_its_names() {
    let (cert, pem, _) = self_signed_ca(2020, 2090);
    let verifier = verifier(Some(&pem));
    check(&verifier, &cert, "relay.test").unwrap();
    check(&verifier, &cert, "127.0.0.1").unwrap();
}

#[test]
fn pinned_certificate_is_refused_for_another_name_saying_which_names_it_has() {
    let (cert, pem, _) = self_signed_ca(2020, 2090);
    let refusal = check(&verifier(Some(&pem)), &cert, "smtp.example.com").unwrap_err();
    assert_eq!(refusal.problem, TlsProblem::CertificateNameMismatch);
    assert_eq!(
        message(&refusal, "smtp.example.com"),
        "the TLS certificate is for relay.test, 127.0.0.1, not smtp.example.com"
    );
}

#[test]
fn expired_pinned_certificate_is_refused_with_its_date() {
    let (cert, pem, _) = self_signed_ca(2000, 2001);
    let refusal = check(&verifier(Some(&pem)), &cert, "relay.test").unwrap_err();
    assert_eq!(refusal.problem, TlsProblem::CertificateExpired);
    assert_eq!(
        message(&refusal, "relay.test"),
        "the TLS certificate expired on 2001-01-01T00:00:00Z"
    );
}

#[test]
fn pinned_certificate_not_yet_valid_is_refused() {
    let (cert, pem, _) = self_signed_ca(2090, 2095);
    let refusal = check(&verifier(Some(&pem)), &cert, "relay.test").unwrap_err();
    assert_eq!(refusal.problem, TlsProblem::CertificateNotYetValid);
    assert!(message(&refusal, "relay.test").contains("not valid before 2090-01-01"));
}

#[test]
fn self_signed_certificate_not_in_the_file_is_refused_in_words() {
    let (cert, _, _) = self_signed_ca(2020, 2090);
    let (_, other_pem, _) = self_signed_ca(2020, 2090);
    let refusal = check(&verifier(Some(&other_pem)), &cert, "relay.test").unwrap_err();
    assert_eq!(refusal.problem, TlsProblem::SelfSigned);
    assert_eq!(
        message(&refusal, "relay.test"),
        format!("the TLS certificate is self-signed and not trusted (not in ca_file {CA_FILE})")
    );
    let refusal = check(&verifier(None), &cert, "relay.test").unwrap_err();
    assert_eq!(refusal.problem, TlsProblem::SelfSigned);
    assert!(message(&refusal, "relay.test").ends_with("(no ca_file is set)"));
}

#[test]
fn certificate_from_an_unknown_ca_is_not_trusted() {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "Private CA");
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["relay.test".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let refusal = check(&verifier(None), leaf.der(), "relay.test").unwrap_err();
    assert_eq!(refusal.problem, TlsProblem::CertificateNotTrusted);
    assert_eq!(
        message(&refusal, "relay.test"),
        "the TLS certificate is not trusted: its issuer is not a public CA (no ca_file is set)"
    );
    // Trusting the CA (not the leaf) goes through WebPKI and works.
    check(&verifier(Some(&ca.pem())), leaf.der(), "relay.test").unwrap();
}

#[test]
fn ca_certificate_used_as_the_servers_own_is_named_when_not_self_signed() {
    let root_key = KeyPair::generate().unwrap();
    let mut root = CertificateParams::new(Vec::<String>::new()).unwrap();
    root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    root.distinguished_name.push(DnType::CommonName, "Root");
    let root = root.self_signed(&root_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut sub = CertificateParams::new(vec!["relay.test".to_owned()]).unwrap();
    sub.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    sub.distinguished_name.push(DnType::CommonName, "Sub CA");
    let sub = sub.signed_by(&key, &root, &root_key).unwrap();
    let refusal = check(&verifier(Some(&root.pem())), sub.der(), "relay.test").unwrap_err();
    assert_eq!(refusal.problem, TlsProblem::CaUsedAsEndEntity);
    assert!(message(&refusal, "relay.test").contains("CA certificate (CA:TRUE)"));
    // Pinning that very certificate accepts it.
    check(&verifier(Some(&sub.pem())), sub.der(), "relay.test").unwrap();
}

/// A TLS handshake over a pipe against a server presenting `cert`, as the client of
/// `tls_client_config_for_file(pem)` connecting to `host`.
async fn handshake_with(
    cert: CertificateDer<'static>,
    key: &KeyPair,
    pem: &str,
    host: &str,
) -> Result<(), SmtpError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], PrivateKeyDer::Pkcs8(key.serialize_der().into()))
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let (client_io, server_io) = tokio::io::duplex(1 << 16);
    let serving = tokio::spawn(async move { drop(acceptor.accept(server_io).await) });
    let config = tls_client_config_for_file(pem.as_bytes(), Path::new(CA_FILE)).unwrap();
    let result = timeout(LIMIT, handshake(Box::new(client_io), host, config, LIMIT))
        .await
        .unwrap();
    timeout(LIMIT, serving).await.unwrap().unwrap();
    result.map(drop)
}

#[tokio::test]
async fn handshake_with_a_pinned_ca_true_certificate_succeeds() {
    let (cert, pem, key) = self_signed_ca(2020, 2090);
    handshake_with(cert, &key, &pem, "relay.test")
        .await
        .unwrap();
}

#[tokio::test]
async fn handshake_with_the_wrong_name_is_a_worded_configuration_error() {
    let (cert, pem, key) = self_signed_ca(2020, 2090);
    let err = handshake_with(cert, &key, &pem, "localhost")
        .await
        .unwrap_err();
    assert!(err.is_configuration(), "{err:?}");
    assert_eq!(err.tls_problem(), Some(TlsProblem::CertificateNameMismatch));
    assert_eq!(
        err.to_string(),
        "localhost: the TLS certificate is for relay.test, 127.0.0.1, not localhost"
    );
}

#[tokio::test]
async fn pinned_certificate_with_another_key_fails_the_handshake() {
    // The certificate is pinned, but the server signs with a different key: the handshake
    // signature does not verify, whatever the pin says.
    let (cert, pem, _) = self_signed_ca(2020, 2090);
    let wrong_key = KeyPair::generate().unwrap();
    let der = PrivateKeyDer::Pkcs8(wrong_key.serialize_der().into());
    let signer = rustls::crypto::aws_lc_rs::sign::any_supported_type(&der).unwrap();
    let certified = rustls::sign::CertifiedKey::new(vec![cert], signer);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)));
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let (client_io, server_io) = tokio::io::duplex(1 << 16);
    let serving = tokio::spawn(async move { drop(acceptor.accept(server_io).await) });
    let config = tls_client_config_for_file(pem.as_bytes(), Path::new(CA_FILE)).unwrap();
    let result = timeout(
        LIMIT,
        handshake(Box::new(client_io), "relay.test", config, LIMIT),
    )
    .await
    .unwrap();
    timeout(LIMIT, serving).await.unwrap().unwrap();
    assert!(
        matches!(result, Err(SmtpError::Tls { .. })),
        "{:?}",
        result.map(drop)
    );
}
