//! Protocol tests: the client against scripted peers over `tokio::io::duplex`, asserting on
//! the exact bytes it writes (and, through [`Recorder`], on how many writes it makes).

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};
use tokio::time::timeout;

use super::*;

const LIMIT: Duration = Duration::from_secs(10);
const EHLO_FULL: &str = "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 100000\r\n\
                         250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n";
const EHLO_PLAIN: &str = "250 mx.example\r\n";

/// The server side of a scripted conversation.
pub(super) struct Peer {
    io: DuplexStream,
    pending: Vec<u8>,
}

impl Peer {
    pub(super) async fn say(&mut self, text: &str) {
        self.io.write_all(text.as_bytes()).await.unwrap();
    }

    /// Reads exactly `want` and fails with what came instead.
    pub(super) async fn expect(&mut self, want: &str) {
        while self.pending.len() < want.len() {
            let mut chunk = [0u8; 4096];
            let n = self.io.read(&mut chunk).await.unwrap();
            assert!(
                n > 0,
                "client closed; wanted {want:?}, got {:?}",
                String::from_utf8_lossy(&self.pending)
            );
            self.pending.extend_from_slice(&chunk[..n]);
        }
        let got: Vec<u8> = self.pending.drain(..want.len()).collect();
        assert_eq!(String::from_utf8_lossy(&got), want);
    }

    /// Banner, then the EHLO exchange with `ehlo` as the reply.
    pub(super) async fn greet(&mut self, ehlo: &str) {
        self.say("220 mx.example ESMTP\r\n").await;
        self.expect("EHLO client.example\r\n").await;
        self.say(ehlo).await;
    }

    /// Waits until the client closes its side, then checks nothing else was sent.
    pub(super) async fn expect_eof(&mut self) {
        let mut rest = Vec::new();
        self.io.read_to_end(&mut rest).await.unwrap();
        assert!(self.pending.is_empty() && rest.is_empty(), "{rest:?}");
    }
}

/// Records every write the client makes, so tests can count them.
pub(super) struct Recorder {
    inner: DuplexStream,
    writes: Arc<Mutex<Vec<String>>>,
}

impl AsyncRead for Recorder {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Recorder {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &result {
            let text = String::from_utf8_lossy(&buf[..*n]).into_owned();
            self.writes.lock().unwrap().push(text);
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

type Writes = Arc<Mutex<Vec<String>>>;

pub(super) fn pair() -> (Recorder, Peer, Writes) {
    let (client, server) = tokio::io::duplex(1 << 20);
    let writes = Writes::default();
    let recorder = Recorder {
        inner: client,
        writes: writes.clone(),
    };
    let peer = Peer {
        io: server,
        pending: Vec::new(),
    };
    (recorder, peer, writes)
}

pub(super) fn config() -> SessionConfig {
    let mut config = SessionConfig::new("mx.example", 25, tls_client_config(None).unwrap());
    config.helo = "client.example".to_owned();
    config.record_transcript = true;
    config
}

fn envelope(rcpts: &[&str]) -> Envelope {
    Envelope {
        mail_from: "sender@example.org".to_owned(),
        rcpt_to: rcpts.iter().map(|r| r.to_string()).collect(),
    }
}

/// Connects a client over a fresh pipe while `script` plays the server.
async fn scripted<F, Fut>(config: &SessionConfig, script: F) -> (Session, Writes)
where
    F: FnOnce(Peer) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (client, peer, writes) = pair();
    tokio::spawn(script(peer));
    let session = timeout(LIMIT, Session::connect_stream(client, config))
        .await
        .unwrap()
        .unwrap();
    writes.lock().unwrap().clear();
    (session, writes)
}

async fn connect_err<F, Fut>(config: &SessionConfig, script: F) -> SmtpError
where
    F: FnOnce(Peer) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (client, peer, _) = pair();
    let server = tokio::spawn(script(peer));
    let result = timeout(LIMIT, Session::connect_stream(client, config)).await;
    timeout(LIMIT, server).await.unwrap().unwrap();
    result.unwrap().unwrap_err()
}

#[test]
fn session_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Session>();
}

#[tokio::test]
async fn banner_and_ehlo_exact_bytes() {
    let (mut session, _) = scripted(&config(), |mut peer| async move {
        peer.greet(EHLO_FULL).await;
        peer.expect("QUIT\r\n").await;
        peer.say("221 bye\r\n").await;
        peer.expect_eof().await;
    })
    .await;
    let caps = session.capabilities();
    assert!(caps.pipelining && caps.eight_bit_mime && caps.enhanced_status_codes);
    assert_eq!(caps.size, Some(100_000));
    assert!(!session.is_tls() && session.is_usable());
    assert_eq!(
        session.take_transcript(),
        [
            "S: 220 mx.example ESMTP",
            "C: EHLO client.example",
            "S: 250-mx.example",
            "S: 250-PIPELINING",
            "S: 250-SIZE 100000",
            "S: 250-8BITMIME",
            "S: 250 ENHANCEDSTATUSCODES",
        ]
    );
    timeout(LIMIT, session.quit()).await.unwrap().unwrap();
}

#[tokio::test]
async fn helo_fallback_when_ehlo_refused() {
    let (session, _) = scripted(&config(), |mut peer| async move {
        peer.say("220 old.example\r\n").await;
        peer.expect("EHLO client.example\r\n").await;
        peer.say("502 5.5.1 command not recognised\r\n").await;
        peer.expect("HELO client.example\r\n").await;
        peer.say("250 old.example\r\n").await;
    })
    .await;
    assert_eq!(session.capabilities(), &Capabilities::default());
}

#[tokio::test]
async fn refused_banner_is_rejected_error() {
    let err = connect_err(&config(), |mut peer| async move {
        peer.say("554-5.7.1 go away\r\n554 5.7.1 really\r\n").await;
    })
    .await;
    assert!(
        matches!(&err, SmtpError::Rejected { phase: Phase::Banner, reply, .. }
        if reply.code == 554 && reply.text == "go away\nreally")
    );
    assert!(!err.is_transient() && err.is_connection_level());
    assert_eq!(
        err.to_string(),
        "mx.example: rejected during banner: 554 5.7.1 go away really"
    );
}

#[tokio::test]
async fn pipelined_transaction_is_one_write_then_body_in_one_write() {
    let (mut session, writes) = scripted(&config(), |mut peer| async move {
        peer.greet(EHLO_FULL).await;
        peer.expect("MAIL FROM:<sender@example.org> SIZE=11\r\n")
            .await;
        peer.expect("RCPT TO:<a@example.net>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n")
            .await;
        // Replies split at awkward places, one multi-line.
        peer.say("250 2.1.0 ok\r\n250 2.1.5 ok\r\n250-2.1.5 fine\r\n250 2.1")
            .await;
        peer.say(".5 really\r\n354 go ahead\r\n").await;
        peer.expect("Hi\r\nthere\r\n.\r\n").await;
        peer.say("250 2.0.0 queued as X\r\n").await;
    })
    .await;
    let message = b"Hi\r\nthere";
    let tx = timeout(
        LIMIT,
        session.send(&envelope(&["a@example.net", "b@example.net"]), message),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(tx.accepted());
    assert_eq!(tx.recipients[1].as_ref().unwrap().text, "fine\nreally");
    assert_eq!(tx.outcome_for(0).to_string(), "250 2.0.0 queued as X");
    assert_eq!(
        *writes.lock().unwrap(),
        [
            "MAIL FROM:<sender@example.org> SIZE=11\r\nRCPT TO:<a@example.net>\r\n\
             RCPT TO:<b@example.net>\r\nDATA\r\n",
            "Hi\r\nthere\r\n.\r\n",
        ]
    );
    assert_eq!(session.messages_sent(), 1);
    let transcript = session.take_transcript();
    assert!(
        transcript.contains(&"C: <message, 9 bytes>".to_owned()),
        "{transcript:?}"
    );
}

#[tokio::test]
async fn rset_only_before_the_second_message() {
    let (mut session, writes) = scripted(&config(), |mut peer| async move {
        peer.greet("250-mx.example\r\n250 PIPELINING\r\n").await;
        for round in 0..2 {
            if round == 1 {
                peer.expect("RSET\r\n").await;
                peer.say("250 reset\r\n").await;
            }
            peer.expect("MAIL FROM:<sender@example.org>\r\nRCPT TO:<a@example.net>\r\nDATA\r\n")
                .await;
            peer.say("250 ok\r\n250 ok\r\n354 go\r\n").await;
            peer.expect("x\r\n.\r\n").await;
            peer.say("250 done\r\n").await;
        }
    })
    .await;
    let env = envelope(&["a@example.net"]);
    for _ in 0..2 {
        let tx = timeout(LIMIT, session.send(&env, b"x"))
            .await
            .unwrap()
            .unwrap();
        assert!(tx.accepted());
    }
    let writes = writes.lock().unwrap();
    let commands = "MAIL FROM:<sender@example.org>\r\nRCPT TO:<a@example.net>\r\nDATA\r\n";
    assert_eq!(writes[0], commands);
    assert_eq!(writes[2], format!("RSET\r\n{commands}"));
    assert_eq!(writes.len(), 4);
}

#[tokio::test]
async fn without_pipelining_one_command_at_a_time() {
    let mut cfg = config();
    cfg.pipelining = false;
    let (mut session, writes) = scripted(&cfg, |mut peer| async move {
        peer.greet(EHLO_FULL).await;
        for round in 0..2 {
            if round == 1 {
                peer.expect("RSET\r\n").await;
                peer.say("250 reset\r\n").await;
            }
            peer.expect("MAIL FROM:<sender@example.org> SIZE=3\r\n")
                .await;
            peer.say("250 ok\r\n").await;
            peer.expect("RCPT TO:<bad@example.net>\r\n").await;
            peer.say("550 5.1.1 no such user\r\n").await;
            peer.expect("RCPT TO:<a@example.net>\r\n").await;
            peer.say("250 ok\r\n").await;
            peer.expect("DATA\r\n").await;
            peer.say("354 go\r\n").await;
            peer.expect("x\r\n.\r\n").await;
            peer.say("250 done\r\n").await;
        }
    })
    .await;
    let env = envelope(&["bad@example.net", "a@example.net"]);
    for _ in 0..2 {
        let tx = timeout(LIMIT, session.send(&env, b"x\n"))
            .await
            .unwrap()
            .unwrap();
        assert!(tx.accepted());
        assert_eq!(tx.outcome_for(0).to_string(), "550 5.1.1 no such user");
        assert_eq!(tx.outcome_for(1).code, 250);
    }
    assert_eq!(writes.lock().unwrap().len(), 11);
}

#[tokio::test]
async fn dot_stuffing_and_smuggling_body_exact_bytes() {
    let (mut session, _) = scripted(&config(), |mut peer| async move {
        peer.greet(EHLO_PLAIN).await;
        peer.expect("MAIL FROM:<sender@example.org>\r\n").await;
        peer.say("250 ok\r\n").await;
        peer.expect("RCPT TO:<a@example.net>\r\n").await;
        peer.say("250 ok\r\n").await;
        peer.expect("DATA\r\n").await;
        peer.say("354 go\r\n").await;
        peer.expect(
            "Subject: t\r\n\r\n..leading dot\r\nsmuggle\r\n..\r\nMAIL FROM:<x@evil>\r\n\
             bare\r\ncr\r\n..\r\nend\r\n.\r\n",
        )
        .await;
        peer.say("250 done\r\n").await;
    })
    .await;
    let body =
        b"Subject: t\n\n.leading dot\r\nsmuggle\n.\nMAIL FROM:<x@evil>\nbare\rcr\r\n.\r\nend";
    let tx = timeout(LIMIT, session.send(&envelope(&["a@example.net"]), body))
        .await
        .unwrap()
        .unwrap();
    assert!(tx.accepted());
}

#[tokio::test]
async fn rejected_recipient_among_several() {
    let (mut session, _) = scripted(&config(), |mut peer| async move {
        peer.greet(EHLO_FULL).await;
        peer.say("250 ok\r\n250 ok\r\n550 5.1.1 unknown\r\n451 4.7.1 later\r\n354 go\r\n")
            .await;
        peer.expect("MAIL FROM:<sender@example.org> SIZE=3\r\nRCPT TO:<a@x>\r\n")
            .await;
        peer.expect("RCPT TO:<b@x>\r\nRCPT TO:<c@x>\r\nDATA\r\nx\r\n.\r\n")
            .await;
        peer.say("250 done\r\n").await;
    })
    .await;
    let tx = timeout(LIMIT, session.send(&envelope(&["a@x", "b@x", "c@x"]), b"x"))
        .await
        .unwrap()
        .unwrap();
    assert!(tx.accepted());
    assert_eq!(tx.outcome_for(0).code, 250);
    assert!(tx.outcome_for(1).is_permanent());
    assert_eq!(tx.outcome_for(1).enhanced.unwrap().to_string(), "5.1.1");
    assert!(tx.outcome_for(2).is_transient());
    assert!(session.is_usable());
}

#[tokio::test]
async fn no_recipient_accepted_sends_only_the_dot() {
    let (mut session, _) = scripted(&config(), |mut peer| async move {
        peer.greet(EHLO_FULL).await;
        peer.expect("MAIL FROM:<sender@example.org> SIZE=3\r\nRCPT TO:<a@x>\r\nDATA\r\n")
            .await;
        peer.say("250 ok\r\n550 5.1.1 unknown\r\n354 go\r\n").await;
        peer.expect(".\r\n").await;
        peer.say("554 5.5.1 no valid recipients\r\n").await;
    })
    .await;
    let tx = timeout(LIMIT, session.send(&envelope(&["a@x"]), b"x"))
        .await
        .unwrap()
        .unwrap();
    assert!(!tx.accepted());
    assert_eq!(tx.outcome_for(0).to_string(), "550 5.1.1 unknown");
    assert_eq!(tx.data_end.as_ref().unwrap().code, 554);
}

#[tokio::test]
async fn mail_refused_decides_every_recipient() {
    let (mut session, _) = scripted(&config(), |mut peer| async move {
        peer.greet(EHLO_FULL).await;
        peer.expect("MAIL FROM:<sender@example.org> SIZE=3\r\nRCPT TO:<a@x>\r\nRCPT TO:<b@x>\r\n")
            .await;
        peer.expect("DATA\r\n").await;
        peer.say("550 5.7.1 sender blocked\r\n503 5.5.1 no mail\r\n503 5.5.1 no mail\r\n")
            .await;
        peer.say("503 5.5.1 no valid recipients\r\n").await;
    })
    .await;
    let tx = timeout(LIMIT, session.send(&envelope(&["a@x", "b@x"]), b"x"))
        .await
        .unwrap()
        .unwrap();
    assert!(!tx.accepted());
    for i in 0..2 {
        assert_eq!(tx.outcome_for(i).to_string(), "550 5.7.1 sender blocked");
    }
    assert!(session.is_usable());
}

#[tokio::test]
async fn reply_421_mid_session_makes_session_unusable() {
    let (mut session, _) = scripted(&config(), |mut peer| async move {
        peer.greet(EHLO_FULL).await;
        peer.expect("MAIL FROM:<sender@example.org> SIZE=3\r\nRCPT TO:<a@x>\r\nRCPT TO:<b@x>\r\n")
            .await;
        peer.expect("RCPT TO:<c@x>\r\nDATA\r\n").await;
        peer.say("250 ok\r\n250 ok\r\n421 4.7.0 too many messages, closing\r\n")
            .await;
    })
    .await;
    let tx = timeout(LIMIT, session.send(&envelope(&["a@x", "b@x", "c@x"]), b"x"))
        .await
        .unwrap()
        .unwrap();
    assert!(!tx.accepted() && !session.is_usable());
    assert_eq!(tx.recipients[2], None);
    for i in 0..3 {
        assert_eq!(tx.outcome_for(i).code, 421, "recipient {i}");
    }
    let err = timeout(LIMIT, session.send(&envelope(&["a@x"]), b"x"))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, SmtpError::Unusable { .. }));
    timeout(LIMIT, session.quit()).await.unwrap().unwrap();
}

#[tokio::test]
async fn peer_closing_mid_data_is_an_error() {
    let (mut session, _) = scripted(&config(), |mut peer| async move {
        peer.greet(EHLO_PLAIN).await;
        peer.expect("MAIL FROM:<sender@example.org>\r\n").await;
        peer.say("250 ok\r\n").await;
        peer.expect("RCPT TO:<a@x>\r\n").await;
        peer.say("250 ok\r\n").await;
        peer.expect("DATA\r\n").await;
        peer.say("354 go\r\n").await;
        peer.expect("x").await;
        drop(peer);
    })
    .await;
    let err = timeout(LIMIT, session.send(&envelope(&["a@x"]), b"x\r\n"))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err.phase(), Phase::Data | Phase::DataEnd), "{err}");
    assert!(err.is_transient() && err.is_connection_level());
    assert!(!session.is_usable());
}

#[tokio::test]
async fn peer_gone_before_pipelined_write_is_an_error() {
    let (mut session, _) = scripted(&config(), |mut peer| async move {
        peer.greet(EHLO_FULL).await;
    })
    .await;
    let err = timeout(LIMIT, session.send(&envelope(&["a@x"]), b"x"))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.phase(), Phase::MailFrom, "{err}");
    assert!(err.is_transient() && err.is_connection_level() && !session.is_usable());
}

#[tokio::test]
async fn oversized_message_gets_synthetic_552_and_nothing_is_sent() {
    let (mut session, writes) = scripted(&config(), |mut peer| async move {
        peer.greet("250-mx.example\r\n250 SIZE 10\r\n").await;
    })
    .await;
    let tx = timeout(LIMIT, session.send(&envelope(&["a@x"]), &[b'y'; 20]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tx.outcome_for(0).code, 552);
    assert_eq!(tx.mail_from.enhanced.unwrap().to_string(), "5.3.4");
    assert!(writes.lock().unwrap().is_empty() && session.is_usable());
    assert_eq!(session.messages_sent(), 0);
}

#[tokio::test]
async fn eight_bit_body_announced_when_offered() {
    let (mut session, writes) = scripted(&config(), |mut peer| async move {
        peer.greet("250-mx.example\r\n250-8BITMIME\r\n250 SIZE\r\n")
            .await;
        peer.expect("MAIL FROM:<sender@example.org> SIZE=4 BODY=8BITMIME\r\n")
            .await;
        peer.say("250 ok\r\n").await;
        peer.expect("RCPT TO:<a@x>\r\n").await;
        peer.say("250 ok\r\n").await;
        peer.expect("DATA\r\n").await;
        peer.say("354 go\r\n").await;
        peer.expect("é\r\n.\r\n").await;
        peer.say("250 done\r\n").await;
    })
    .await;
    let tx = timeout(LIMIT, session.send(&envelope(&["a@x"]), "é".as_bytes()))
        .await
        .unwrap()
        .unwrap();
    assert!(tx.accepted());
    assert_eq!(writes.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn injected_address_is_refused_before_sending() {
    let (mut session, writes) = scripted(&config(), |mut peer| async move {
        peer.greet(EHLO_FULL).await;
    })
    .await;
    for bad in ["a@x>\r\nRSET", "a@x\nDATA", ""] {
        let err = timeout(LIMIT, session.send(&envelope(&[bad]), b"x"))
            .await
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, SmtpError::InvalidAddress { .. }), "{err}");
        assert!(err.was_due_to_message() && !err.is_connection_level());
    }
    let empty = Envelope {
        mail_from: String::new(),
        rcpt_to: Vec::new(),
    };
    assert!(timeout(LIMIT, session.send(&empty, b"x"))
        .await
        .unwrap()
        .is_err());
    assert!(writes.lock().unwrap().is_empty() && session.is_usable());
}

#[tokio::test]
async fn starttls_required_but_not_offered() {
    let mut cfg = config();
    cfg.security = Security::StartTls;
    let err = connect_err(&cfg, |mut peer| async move {
        peer.greet(EHLO_FULL).await;
    })
    .await;
    assert!(matches!(err, SmtpError::StartTlsUnavailable { .. }));
    assert!(err.is_configuration() && !err.is_transient());
}

#[tokio::test]
async fn opportunistic_tls_stays_plain_when_not_offered() {
    let mut cfg = config();
    cfg.security = Security::Opportunistic;
    let (session, _) = scripted(&cfg, |mut peer| async move {
        peer.greet(EHLO_FULL).await;
    })
    .await;
    assert!(!session.is_tls() && session.is_usable());
}

#[tokio::test]
async fn data_after_starttls_reply_is_refused() {
    let mut cfg = config();
    cfg.security = Security::StartTls;
    let err = connect_err(&cfg, |mut peer| async move {
        peer.greet("250-mx.example\r\n250 STARTTLS\r\n").await;
        peer.expect("STARTTLS\r\n").await;
        peer.say("220 go ahead\r\n250 injected\r\n").await;
    })
    .await;
    assert!(
        matches!(
            err,
            SmtpError::Protocol {
                phase: Phase::StartTls,
                ..
            }
        ),
        "{err}"
    );
}
