//! STARTTLS on the bounce receiver: offered only with a certificate, the session starts over
//! after the handshake (RFC 3207), commands smuggled before the handshake end the session,
//! and a DSN delivered over TLS is ingested.

use std::sync::Arc;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::{dsn, first_reply, read_reply, stuffed, Mx};
use crate::support::LIMIT;

/// A self-signed certificate for `localhost`, written as PEM files into `dir`; returns the
/// receiver's TLS configuration and a client configuration that trusts it.
fn certificate(dir: &std::path::Path) -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let server = volley::bounce::receiver::tls::server_config(&cert_file, &key_file).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (server, Arc::new(client))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_starts_the_session_over_and_a_dsn_over_tls_is_ingested() {
    let dir = tempfile::tempdir().unwrap();
    let (server, client_config) = certificate(dir.path());
    let mut mx = Mx::start(|c| c.tls = Some(server)).await;
    let (mut client, _) = first_reply(&mx).await;
    let ehlo = client.command("EHLO tls.example").await;
    assert!(ehlo.contains("STARTTLS"), "{ehlo}");
    assert_eq!(client.command("MAIL FROM:<>").await, "250 2.1.0 Ok");
    assert_eq!(
        client.command("STARTTLS").await,
        "220 2.0.0 Ready to start TLS"
    );
    let stream = client
        .replies
        .0
        .into_inner()
        .reunite(client.writer)
        .unwrap();
    let connector = tokio_rustls::TlsConnector::from(client_config);
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio::time::timeout(LIMIT, connector.connect(name, stream))
        .await
        .unwrap()
        .unwrap();
    let mut tls = BufReader::new(tls);
    let mut command = async |line: &str| {
        tls.get_mut()
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .unwrap();
        read_reply(&mut tls).await.unwrap_or_default()
    };
    // The transaction begun in plaintext is forgotten, and so is the EHLO.
    assert!(command("RCPT TO:<bounces@bounce.example.com>")
        .await
        .starts_with("503"));
    assert!(command("MAIL FROM:<>").await.starts_with("503 5.5.1"));
    let ehlo = command("EHLO tls.example").await;
    assert!(!ehlo.contains("STARTTLS"), "not offered twice: {ehlo}");
    assert_eq!(command("MAIL FROM:<>").await, "250 2.1.0 Ok");
    assert_eq!(
        command("RCPT TO:<bounces@bounce.example.com>").await,
        "250 2.1.5 Ok"
    );
    assert!(command("DATA").await.starts_with("354"));
    let message = dsn("postfix-delayed.eml");
    let body = stuffed(&message);
    let text = String::from_utf8(body).unwrap();
    let text = text.strip_suffix("\r\n").unwrap();
    assert!(command(text).await.starts_with("250 2.0.0"));
    mx.wait_ingested(&message).await;
    mx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_pipelined_behind_starttls_end_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = certificate(dir.path());
    let mut mx = Mx::start(|c| c.tls = Some(server)).await;
    let mut stream = TcpStream::connect(mx.addr).await.unwrap();
    let mut reader = BufReader::new(&mut stream);
    assert!(read_reply(&mut reader).await.unwrap().starts_with("220 "));
    stream
        .write_all(b"EHLO x.example\r\nSTARTTLS\r\nMAIL FROM:<evil@example.com>\r\n")
        .await
        .unwrap();
    let mut reader = BufReader::new(&mut stream);
    assert!(read_reply(&mut reader).await.unwrap().starts_with("250"));
    let refusal = read_reply(&mut reader).await.unwrap();
    assert!(refusal.starts_with("554 5.5.0"), "{refusal}");
    assert_eq!(read_reply(&mut reader).await, None);
    mx.stop().await;
}
