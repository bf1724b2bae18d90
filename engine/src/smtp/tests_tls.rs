//! Real TLS on 127.0.0.1: a tokio-rustls server with an rcgen certificate, reached through
//! [`connect`] with STARTTLS and with implicit TLS; an untrusted certificate must fail clearly.

use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::PrivateKeyDer;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;

use super::*;

const LIMIT: Duration = Duration::from_secs(20);

/// A CA, and a server certificate for 127.0.0.1 signed by it.
fn test_pki() -> (String, TlsAcceptor) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Volley test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca_cert, &ca_key)
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    (ca_cert.pem(), TlsAcceptor::from(Arc::new(server)))
}

/// Line-level server side over any stream.
struct Wire<S> {
    io: S,
    pending: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Wire<S> {
    async fn say(&mut self, text: &str) {
        self.io.write_all(text.as_bytes()).await.unwrap();
        self.io.flush().await.unwrap();
    }

    async fn expect(&mut self, want: &str) {
        while self.pending.len() < want.len() {
            let mut chunk = [0u8; 4096];
            let n = self.io.read(&mut chunk).await.unwrap();
            assert!(n > 0, "client closed before {want:?}");
            self.pending.extend_from_slice(&chunk[..n]);
        }
        let got: Vec<u8> = self.pending.drain(..want.len()).collect();
        assert_eq!(String::from_utf8_lossy(&got), want);
    }

    /// Everything after the TLS handshake (or after STARTTLS): EHLO, one message, QUIT.
    async fn converse(mut self, banner: bool) {
        if banner {
            self.say("220 mx.test ESMTP\r\n").await;
        }
        self.expect("EHLO client.example\r\n").await;
        self.say("250-mx.test\r\n250 PIPELINING\r\n").await;
        self.expect("MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nDATA\r\n")
            .await;
        self.say("250 ok\r\n250 ok\r\n354 go\r\n").await;
        self.expect("hello\r\n.\r\n").await;
        self.say("250 2.0.0 queued\r\n").await;
        self.expect("QUIT\r\n").await;
        self.say("221 bye\r\n").await;
    }
}

/// Accepts one connection; `implicit` starts TLS at once, else after STARTTLS.
async fn serve(listener: TcpListener, acceptor: TlsAcceptor, implicit: bool) {
    let (tcp, _) = listener.accept().await.unwrap();
    serve_on(tcp, acceptor, implicit).await;
}

/// Serves one accepted connection.
async fn serve_on(tcp: tokio::net::TcpStream, acceptor: TlsAcceptor, implicit: bool) {
    tcp.set_nodelay(true).unwrap();
    let tcp = if implicit {
        tcp
    } else {
        let mut wire = Wire {
            io: tcp,
            pending: Vec::new(),
        };
        wire.say("220 mx.test ESMTP\r\n").await;
        wire.expect("EHLO client.example\r\n").await;
        wire.say("250-mx.test\r\n250-STARTTLS\r\n250 SIZE 1000\r\n")
            .await;
        wire.expect("STARTTLS\r\n").await;
        wire.say("220 2.0.0 ready\r\n").await;
        wire.io
    };
    // A client that refuses our certificate ends the handshake: nothing more to do.
    let Ok(tls) = acceptor.accept(tcp).await else {
        return;
    };
    let wire = Wire {
        io: tls,
        pending: Vec::new(),
    };
    wire.converse(implicit).await;
}

async fn start(implicit: bool) -> (String, u16, tokio::task::JoinHandle<()>) {
    let (ca_pem, acceptor) = test_pki();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(serve(listener, acceptor, implicit));
    (ca_pem, port, server)
}

fn tls_config(port: u16, security: Security, tls: Arc<rustls::ClientConfig>) -> SessionConfig {
    let mut config = SessionConfig::new("127.0.0.1", port, tls);
    config.security = security;
    config.helo = "client.example".to_owned();
    config
}

async fn deliver_one(config: &SessionConfig) {
    let mut session = timeout(LIMIT, connect(config)).await.unwrap().unwrap();
    assert!(session.is_tls());
    assert!(session.capabilities().pipelining);
    let envelope = Envelope {
        mail_from: "s@x".to_owned(),
        rcpt_to: vec!["a@x".to_owned()],
    };
    let tx = timeout(LIMIT, session.send(&envelope, b"hello"))
        .await
        .unwrap()
        .unwrap();
    assert!(tx.accepted());
    timeout(LIMIT, session.quit()).await.unwrap().unwrap();
}

#[tokio::test]
async fn starttls_with_trusted_private_ca() {
    let (ca_pem, port, server) = start(false).await;
    let tls = tls_client_config(Some(ca_pem.as_bytes())).unwrap();
    deliver_one(&tls_config(port, Security::StartTls, tls)).await;
    timeout(LIMIT, server).await.unwrap().unwrap();
}

#[tokio::test]
async fn opportunistic_starttls_upgrades_when_offered() {
    let (ca_pem, port, server) = start(false).await;
    let tls = tls_client_config(Some(ca_pem.as_bytes())).unwrap();
    deliver_one(&tls_config(port, Security::Opportunistic, tls)).await;
    timeout(LIMIT, server).await.unwrap().unwrap();
}

#[tokio::test]
async fn implicit_tls_with_trusted_private_ca() {
    let (ca_pem, port, server) = start(true).await;
    let tls = tls_client_config(Some(ca_pem.as_bytes())).unwrap();
    deliver_one(&tls_config(port, Security::Tls, tls)).await;
    timeout(LIMIT, server).await.unwrap().unwrap();
}

#[tokio::test]
async fn untrusted_certificate_is_a_clear_configuration_error() {
    let (_, port, server) = start(false).await;
    let config = tls_config(port, Security::StartTls, tls_client_config(None).unwrap());
    let err = timeout(LIMIT, connect(&config)).await.unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            SmtpError::Tls {
                problem: TlsProblem::CertificateNotTrusted,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_configuration() && !err.is_transient());
    assert_eq!(err.phase(), Phase::TlsHandshake);
    assert_eq!(
        err.to_string(),
        "127.0.0.1: the TLS certificate is not trusted: its issuer is not a public CA \
         (no ca_file is set)"
    );
    timeout(LIMIT, server).await.unwrap().unwrap();
}

#[tokio::test]
async fn refused_connection_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let config = tls_config(port, Security::None, tls_client_config(None).unwrap());
    let err = timeout(LIMIT, connect(&config)).await.unwrap().unwrap_err();
    assert!(matches!(err, SmtpError::Connect { .. }), "{err:?}");
    assert!(err.is_transient() && err.phase() == Phase::Connect);
}

#[tokio::test]
async fn a_source_address_binds_the_connection_and_its_helo_is_said_before_and_after_starttls() {
    let (ca_pem, acceptor) = test_pki();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (tcp, peer) = listener.accept().await.unwrap();
        // `converse` expects `EHLO client.example` again over TLS.
        serve_on(tcp, acceptor, false).await;
        peer
    });
    let tls = tls_client_config(Some(ca_pem.as_bytes())).unwrap();
    let mut config = tls_config(port, Security::StartTls, tls);
    config.source = Some("127.0.0.2".parse().unwrap());
    config.record_transcript = true;
    let mut session = timeout(LIMIT, connect(&config)).await.unwrap().unwrap();
    let local = session.local_address().unwrap();
    assert_eq!(local.ip().to_string(), "127.0.0.2");
    let transcript = session.take_transcript();
    assert_eq!(
        transcript[0],
        format!("* connected from {local} to 127.0.0.1:{port}")
    );
    let envelope = Envelope {
        mail_from: "s@x".to_owned(),
        rcpt_to: vec!["a@x".to_owned()],
    };
    let tx = timeout(LIMIT, session.send(&envelope, b"hello"))
        .await
        .unwrap()
        .unwrap();
    assert!(tx.accepted());
    timeout(LIMIT, session.quit()).await.unwrap().unwrap();
    let peer = timeout(LIMIT, server).await.unwrap().unwrap();
    assert_eq!(
        peer, local,
        "the server saw the connection come from the source address"
    );
}

#[tokio::test]
async fn a_source_address_not_on_this_host_is_a_bind_error_naming_it() {
    let mut config = tls_config(25, Security::None, tls_client_config(None).unwrap());
    config.source = Some("192.0.2.10".parse().unwrap());
    let err = timeout(LIMIT, connect(&config)).await.unwrap().unwrap_err();
    assert!(matches!(err, SmtpError::Bind { .. }), "{err:?}");
    assert_eq!(err.phase(), Phase::Connect);
    let text = err.to_string();
    assert!(
        text.starts_with("cannot connect to 127.0.0.1 from source address 192.0.2.10: "),
        "{text}"
    );
}

#[tokio::test]
async fn an_ipv6_source_cannot_reach_an_ipv4_server() {
    let mut config = tls_config(25, Security::None, tls_client_config(None).unwrap());
    config.source = Some("::1".parse().unwrap());
    let err = timeout(LIMIT, connect(&config)).await.unwrap().unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("no IPv6 address to reach from source address ::1"),
        "{text}"
    );
}
