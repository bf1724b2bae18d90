//! End-to-end tests of the sink over real loopback sockets, driven by a raw client that
//! writes exact SMTP bytes (the sink must not depend on Volley's own client).

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::*;

pub(super) const LIMIT: Duration = Duration::from_secs(10);

pub(super) async fn within<F: std::future::Future>(future: F) -> F::Output {
    timeout(LIMIT, future).await.expect("timed out")
}

/// A raw SMTP client: writes bytes as given, reads whole (multi-line) replies.
pub(super) struct Client<S> {
    io: BufReader<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    pub(super) async fn send(&mut self, bytes: &str) {
        within(self.io.get_mut().write_all(bytes.as_bytes()))
            .await
            .unwrap();
    }

    /// One reply, its lines joined by '\n'.
    pub(super) async fn reply(&mut self) -> String {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = within(self.io.read_line(&mut line)).await.unwrap();
            assert!(n > 0, "connection closed; replies so far: {lines:?}");
            let line = line.trim_end().to_owned();
            let last = line.len() < 4 || line.as_bytes()[3] == b' ';
            lines.push(line);
            if last {
                return lines.join("\n");
            }
        }
    }

    pub(super) async fn cmd(&mut self, line: &str) -> String {
        self.send(&format!("{line}\r\n")).await;
        self.reply().await
    }

    /// True when the server closed the connection (EOF or reset).
    pub(super) async fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        match within(self.io.read_to_end(&mut rest)).await {
            Ok(_) => rest.is_empty(),
            Err(_) => true,
        }
    }
}

pub(super) async fn connect(sink: &Sink) -> Client<TcpStream> {
    let stream = within(TcpStream::connect(sink.addr())).await.unwrap();
    let mut client = Client {
        io: BufReader::new(stream),
    };
    assert!(client.reply().await.starts_with("220 sink.test"));
    client
}

pub(super) async fn greeted(sink: &Sink) -> Client<TcpStream> {
    let mut client = connect(sink).await;
    assert!(client
        .cmd("EHLO client.test")
        .await
        .starts_with("250-sink.test"));
    client
}

pub(super) async fn start(config: SinkConfig) -> Sink {
    within(Sink::start(config)).await.unwrap()
}

/// Runs MAIL, one RCPT and DATA with `body`; returns the RCPT reply and the final reply.
pub(super) async fn send_one<S: AsyncRead + AsyncWrite + Unpin>(
    client: &mut Client<S>,
    to: &str,
    body: &str,
) -> (String, String) {
    assert!(client
        .cmd("MAIL FROM:<from@sender.test>")
        .await
        .starts_with("250"));
    let rcpt = client.cmd(&format!("RCPT TO:<{to}>")).await;
    if !rcpt.starts_with("250") {
        client.cmd("RSET").await;
        return (rcpt, String::new());
    }
    assert!(client.cmd("DATA").await.starts_with("354"));
    client.send(body).await;
    client.send(".\r\n").await;
    (rcpt, client.reply().await)
}

#[tokio::test]
async fn plain_session_delivers_and_records_exact_bytes() {
    let sink = start(SinkConfig::default()).await;
    let mut client = greeted(&sink).await;
    let body = "Subject: hi\r\n\r\nhello\r\n";
    let (_, done) = send_one(&mut client, "ok@example.com", body).await;
    assert!(done.starts_with("250 2.0.0"), "{done}");
    assert!(client.cmd("QUIT").await.starts_with("221"));
    let got = within(sink.wait_for(1, LIMIT)).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].mail_from, "from@sender.test");
    assert_eq!(got[0].rcpt_to, vec!["ok@example.com"]);
    assert_eq!(got[0].data, body.as_bytes());
    assert_eq!(got[0].size, body.len());
    assert!(!got[0].tls);
    assert_eq!(got[0].auth_user, None);
}

#[tokio::test]
async fn ehlo_advertises_what_is_configured() {
    let sink = start(SinkConfig {
        chunking: true,
        size_limit: Some(1000),
        ..SinkConfig::default()
    })
    .await;
    let mut client = connect(&sink).await;
    let ehlo = client.cmd("EHLO client.test").await;
    for want in [
        "PIPELINING",
        "8BITMIME",
        "SIZE 1000",
        "CHUNKING",
        "250 ENHANCEDSTATUSCODES",
    ] {
        assert!(ehlo.contains(want), "{want} missing from {ehlo}");
    }
    assert!(
        !ehlo.contains("STARTTLS") && !ehlo.contains("AUTH"),
        "{ehlo}"
    );
    assert!(client
        .cmd("HELO client.test")
        .await
        .starts_with("250 sink.test"));
    assert!(client.cmd("NOOP").await.starts_with("250"));
    assert!(client.cmd("VRFY x").await.starts_with("500 5.5.2"));
    assert!(client.cmd("RCPT TO:<a@b>").await.starts_with("503"));
}

#[tokio::test]
async fn pipelined_commands_get_replies_in_order() {
    let sink = start(SinkConfig::default()).await;
    let mut client = connect(&sink).await;
    client
        .send(
            "EHLO client.test\r\nMAIL FROM:<f@s.test> SIZE=100 BODY=8BITMIME\r\n\
             RCPT TO:<a@example.com>\r\nRCPT TO:<bounce@example.com>\r\n\
             RCPT TO:<b@example.org>\r\nDATA\r\n",
        )
        .await;
    assert!(client.reply().await.starts_with("250-sink.test"));
    assert!(client.reply().await.starts_with("250 2.1.0"));
    assert!(client.reply().await.starts_with("250 2.1.5"));
    assert_eq!(
        client.reply().await,
        "550 5.1.1 <bounce@example.com>: user unknown"
    );
    assert!(client.reply().await.starts_with("250 2.1.5"));
    assert!(client.reply().await.starts_with("354"));
    // The body, its dot and the whole next transaction in one write.
    client
        .send("one\r\n.\r\nMAIL FROM:<f@s.test>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n")
        .await;
    assert!(client.reply().await.starts_with("250 2.0.0"));
    assert!(client.reply().await.starts_with("250 2.1.0"));
    assert!(client.reply().await.starts_with("250 2.1.5"));
    assert!(client.reply().await.starts_with("354"));
    client.send("two\r\n.\r\nQUIT\r\n").await;
    assert!(client.reply().await.starts_with("250 2.0.0"));
    assert!(client.reply().await.starts_with("221"));
    let got = within(sink.wait_for(2, LIMIT)).await.unwrap();
    assert_eq!(got[0].rcpt_to, vec!["a@example.com", "b@example.org"]);
    assert_eq!(got[0].data, b"one\r\n");
    assert_eq!(got[1].rcpt_to, vec!["c@example.com"]);
    assert_eq!(got[1].data, b"two\r\n");
    let stats = sink.stats();
    assert_eq!(stats.rejected_recipients, 1);
    assert_eq!(stats.domains["example.com"].messages, 2);
    assert_eq!(stats.domains["example.com"].recipients, 2);
    assert_eq!(stats.domains["example.org"].connections, 1);
}

#[tokio::test]
async fn dot_stuffed_lines_are_unstuffed() {
    let sink = start(SinkConfig::default()).await;
    let mut client = greeted(&sink).await;
    let (_, done) = send_one(&mut client, "ok@example.com", "..dot\r\n...\r\nplain.\r\n").await;
    assert!(done.starts_with("250"), "{done}");
    let got = within(sink.wait_for(1, LIMIT)).await.unwrap();
    assert_eq!(got[0].data, b".dot\r\n..\r\nplain.\r\n");
}

fn plain_auth(user: &str, pass: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{pass}"))
}

fn with_auth() -> SinkConfig {
    SinkConfig {
        auth: Some(("user".to_owned(), "s3cret".to_owned())),
        ..SinkConfig::default()
    }
}

#[tokio::test]
async fn auth_plain_accepts_the_right_password_and_refuses_a_wrong_one() {
    let sink = start(with_auth()).await;
    let mut client = greeted(&sink).await;
    let wrong = client
        .cmd(&format!("AUTH PLAIN {}", plain_auth("user", "nope")))
        .await;
    assert_eq!(wrong, "535 5.7.8 authentication failed");
    assert_eq!(client.cmd("AUTH PLAIN").await, "334");
    let ok = client.cmd(&plain_auth("user", "s3cret")).await;
    assert!(ok.starts_with("235 2.7.0"), "{ok}");
    let (_, done) = send_one(&mut client, "ok@example.com", "x\r\n").await;
    assert!(done.starts_with("250"), "{done}");
    let got = within(sink.wait_for(1, LIMIT)).await.unwrap();
    assert_eq!(got[0].auth_user.as_deref(), Some("user"));
    assert_eq!(sink.stats().auth_failures, 1);
    assert!(!format!("{:?}", sink.config()).contains("s3cret"));
}

#[tokio::test]
async fn auth_login_works() {
    let sink = start(with_auth()).await;
    let mut client = greeted(&sink).await;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    assert_eq!(client.cmd("AUTH LOGIN").await, "334 VXNlcm5hbWU6");
    assert_eq!(client.cmd(&b64("user")).await, "334 UGFzc3dvcmQ6");
    assert!(client.cmd(&b64("s3cret")).await.starts_with("235"));
}

#[tokio::test]
async fn mail_before_auth_gets_530() {
    let sink = start(with_auth()).await;
    let mut client = greeted(&sink).await;
    assert!(client
        .cmd("MAIL FROM:<f@s.test>")
        .await
        .starts_with("530 5.7.0"));
}

fn client_config(pem: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pem.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

async fn tls_handshake(
    sink: &Sink,
    tcp: TcpStream,
) -> Client<tokio_rustls::client::TlsStream<TcpStream>> {
    let connector = tokio_rustls::TlsConnector::from(client_config(sink.ca_pem().unwrap()));
    let name = ServerName::try_from("sink.test").unwrap();
    let tls = within(connector.connect(name, tcp)).await.unwrap();
    Client {
        io: BufReader::new(tls),
    }
}

#[tokio::test]
async fn starttls_upgrades_then_offers_auth() {
    let sink = start(SinkConfig {
        tls: SinkTls::StartTls,
        ..with_auth()
    })
    .await;
    let mut client = connect(&sink).await;
    let ehlo = client.cmd("EHLO client.test").await;
    assert!(
        ehlo.contains("STARTTLS") && !ehlo.contains("AUTH"),
        "{ehlo}"
    );
    assert!(client.cmd("AUTH PLAIN").await.starts_with("530"));
    assert!(client.cmd("STARTTLS").await.starts_with("220"));
    let mut tls = tls_handshake(&sink, client.io.into_inner()).await;
    let ehlo = tls.cmd("EHLO client.test").await;
    assert!(
        ehlo.contains("AUTH PLAIN LOGIN") && !ehlo.contains("STARTTLS"),
        "{ehlo}"
    );
    let auth = tls
        .cmd(&format!("AUTH PLAIN {}", plain_auth("user", "s3cret")))
        .await;
    assert!(auth.starts_with("235"), "{auth}");
    let (_, done) = send_one(&mut tls, "ok@example.com", "secure\r\n").await;
    assert!(done.starts_with("250"), "{done}");
    let got = within(sink.wait_for(1, LIMIT)).await.unwrap();
    assert!(got[0].tls);
    assert_eq!(got[0].auth_user.as_deref(), Some("user"));
    assert_eq!(sink.stats().tls_sessions, 1);
}

#[tokio::test]
async fn implicit_tls_speaks_tls_from_the_first_byte() {
    let sink = start(SinkConfig {
        tls: SinkTls::Implicit,
        ..SinkConfig::default()
    })
    .await;
    let tcp = within(TcpStream::connect(sink.addr())).await.unwrap();
    let mut tls = tls_handshake(&sink, tcp).await;
    assert!(tls.reply().await.starts_with("220"));
    let ehlo = tls.cmd("EHLO client.test").await;
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    let (_, done) = send_one(&mut tls, "ok@example.com", "x\r\n").await;
    assert!(done.starts_with("250"), "{done}");
    assert!(within(sink.wait_for(1, LIMIT)).await.unwrap()[0].tls);
}

#[tokio::test]
async fn bounce_script_refuses_the_recipient() {
    let sink = start(SinkConfig::default()).await;
    let mut client = greeted(&sink).await;
    let (rcpt, _) = send_one(&mut client, "Bounce-1@example.com", "x\r\n").await;
    assert_eq!(rcpt, "550 5.1.1 <Bounce-1@example.com>: user unknown");
    assert_eq!(sink.count(), 0);
}

#[tokio::test]
async fn defer_script_defers_once_then_accepts() {
    let sink = start(SinkConfig::default()).await;
    let mut client = greeted(&sink).await;
    let (rcpt, _) = send_one(&mut client, "defer@example.com", "x\r\n").await;
    assert_eq!(rcpt, "451 4.7.1 try again later");
    let (rcpt, done) = send_one(&mut client, "defer@example.com", "x\r\n").await;
    assert!(
        rcpt.starts_with("250") && done.starts_with("250"),
        "{rcpt} / {done}"
    );
    assert_eq!(sink.count(), 1);
}

#[tokio::test]
async fn drop_script_closes_in_the_middle_of_data_once() {
    let sink = start(SinkConfig::default()).await;
    let mut client = greeted(&sink).await;
    assert!(client.cmd("MAIL FROM:<f@s.test>").await.starts_with("250"));
    assert!(client
        .cmd("RCPT TO:<drop@example.com>")
        .await
        .starts_with("250"));
    assert!(client.cmd("DATA").await.starts_with("354"));
    client.send("Subject: half\r\n").await;
    assert!(client.closed().await);
    assert_eq!(sink.count(), 0);

    let mut again = greeted(&sink).await;
    let (_, done) = send_one(&mut again, "drop@example.com", "x\r\n").await;
    assert!(done.starts_with("250"), "{done}");
    assert_eq!(sink.count(), 1);
}

#[tokio::test]
async fn script_421_closes_once() {
    let sink = start(SinkConfig::default()).await;
    let mut client = greeted(&sink).await;
    assert!(client.cmd("MAIL FROM:<f@s.test>").await.starts_with("250"));
    assert_eq!(
        client.cmd("RCPT TO:<421@example.com>").await,
        "421 4.7.0 closing"
    );
    assert!(client.closed().await);

    let mut again = greeted(&sink).await;
    let (rcpt, done) = send_one(&mut again, "421@example.com", "x\r\n").await;
    assert!(
        rcpt.starts_with("250") && done.starts_with("250"),
        "{rcpt} / {done}"
    );
}

#[tokio::test]
async fn reject_script_refuses_after_the_dot_every_time() {
    let sink = start(SinkConfig::default()).await;
    let mut client = greeted(&sink).await;
    for _ in 0..2 {
        let (rcpt, done) = send_one(&mut client, "reject@example.com", "x\r\n").await;
        assert!(rcpt.starts_with("250"), "{rcpt}");
        assert_eq!(done, "554 5.7.1 message rejected");
    }
    assert_eq!(sink.count(), 0);
    assert_eq!(sink.stats().rejected_messages, 2);
}

#[tokio::test]
async fn slow_script_holds_the_final_reply() {
    let slow = Duration::from_millis(200);
    let sink = start(SinkConfig {
        slow_delay: slow,
        ..SinkConfig::default()
    })
    .await;
    let mut client = greeted(&sink).await;
    let started = Instant::now();
    let (_, done) = send_one(&mut client, "slow@example.com", "x\r\n").await;
    assert!(done.starts_with("250"), "{done}");
    assert!(started.elapsed() >= slow);
}

#[tokio::test]
async fn bdat_chunks_are_received_when_chunking_is_on() {
    let sink = start(SinkConfig {
        chunking: true,
        ..SinkConfig::default()
    })
    .await;
    let mut client = greeted(&sink).await;
    client
        .send("MAIL FROM:<f@s.test>\r\nRCPT TO:<ok@example.com>\r\nBDAT 7\r\n.a\r\nb\r\nBDAT 3 LAST\r\nc\r\n")
        .await;
    assert!(client.reply().await.starts_with("250"));
    assert!(client.reply().await.starts_with("250"));
    assert_eq!(client.reply().await, "250 2.0.0 7 octets received");
    assert!(client.reply().await.starts_with("250 2.0.0 Ok"));
    let got = within(sink.wait_for(1, LIMIT)).await.unwrap();
    assert_eq!(got[0].data, b".a\r\nb\r\nc\r\n");
}

#[tokio::test]
async fn size_limit_refuses_big_messages() {
    let sink = start(SinkConfig {
        size_limit: Some(10),
        ..SinkConfig::default()
    })
    .await;
    let mut client = greeted(&sink).await;
    assert!(client
        .cmd("MAIL FROM:<f@s.test> SIZE=11")
        .await
        .starts_with("552"));
    let (_, done) = send_one(&mut client, "ok@example.com", "0123456789abc\r\n").await;
    assert!(done.starts_with("552 5.3.4"), "{done}");
    assert_eq!(sink.count(), 0);
}

#[tokio::test]
async fn wait_for_timing_out_reports_what_arrived() {
    let sink = start(SinkConfig::default()).await;
    let mut client = greeted(&sink).await;
    send_one(&mut client, "ok@example.com", "x\r\n").await;
    send_one(&mut client, "bounce@example.com", "x\r\n").await;
    let err = within(sink.wait_for(3, Duration::from_millis(100)))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("3 message(s): 1 arrived"), "{err}");
    assert!(err.contains("1 refused recipient(s)"), "{err}");
    assert!(err.contains("ok@example.com"), "{err}");
}

#[tokio::test]
async fn stats_count_concurrent_connections() {
    let sink = start(SinkConfig::default()).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(connect(&sink).await);
    }
    let stats = sink.stats();
    assert_eq!(stats.connections_total, 3);
    assert_eq!(stats.current_connections, 3);
    assert_eq!(stats.max_concurrent_connections, 3);
    // Two connections open towards example.com at once.
    for client in clients.iter_mut().take(2) {
        assert!(client.cmd("EHLO c.test").await.starts_with("250"));
        assert!(client.cmd("MAIL FROM:<f@s.test>").await.starts_with("250"));
        assert!(client
            .cmd("RCPT TO:<x@Example.com>")
            .await
            .starts_with("250"));
    }
    let domain = &sink.stats().domains["example.com"];
    assert_eq!(domain.connections, 2);
    assert_eq!(domain.max_concurrent_connections, 2);
    for client in &mut clients {
        assert!(client.cmd("QUIT").await.starts_with("221"));
    }
    drop(clients);
    let _late = connect(&sink).await;
    assert_eq!(sink.stats().connections_total, 4);
    within(sink.shutdown()).await;
}
