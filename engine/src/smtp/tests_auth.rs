//! Protocol tests for AUTH (exact bytes, failures, redaction) and per-phase timeouts, against
//! scripted peers. The timeout tests use short real timeouts: tokio's `test-util` feature
//! (needed for paused time) is not enabled in this workspace.

use std::time::Duration;

use tokio::time::{timeout, Instant};

use super::tests::{config, pair, Peer};
use super::*;

const LIMIT: Duration = Duration::from_secs(10);
const PASSWORD: &str = "s3cret pass";

fn with_credentials() -> SessionConfig {
    let mut cfg = config();
    cfg.credentials = Some(Credentials::password("user", PASSWORD.into()));
    // A scripted peer over a plain pipe stands for a server on loopback.
    cfg.allow_plain_auth = true;
    cfg
}

async fn run<F, Fut>(cfg: &SessionConfig, script: F) -> Result<Session, SmtpError>
where
    F: FnOnce(Peer) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (client, peer, _) = pair();
    tokio::spawn(script(peer));
    timeout(LIMIT, Session::connect_stream(client, cfg))
        .await
        .unwrap()
}

#[tokio::test]
async fn auth_plain_exact_bytes_and_redacted_transcript() {
    let mut session = run(&with_credentials(), |mut peer| async move {
        peer.greet("250-mx.example\r\n250 AUTH LOGIN PLAIN\r\n")
            .await;
        peer.expect("AUTH PLAIN AHVzZXIAczNjcmV0IHBhc3M=\r\n").await;
        peer.say("235 2.7.0 accepted\r\n").await;
    })
    .await
    .unwrap();
    let transcript = session.take_transcript();
    assert_eq!(transcript[4], "C: AUTH PLAIN <redacted>");
    assert!(
        !transcript.iter().any(|l| l.contains("AHVz")),
        "{transcript:?}"
    );
}

#[tokio::test]
async fn auth_login_exact_bytes() {
    let mut session = run(&with_credentials(), |mut peer| async move {
        peer.greet("250-mx.example\r\n250 AUTH=LOGIN\r\n").await;
        peer.expect("AUTH LOGIN\r\n").await;
        peer.say("334 VXNlcm5hbWU6\r\n").await;
        peer.expect("dXNlcg==\r\n").await;
        peer.say("334 UGFzc3dvcmQ6\r\n").await;
        peer.expect("czNjcmV0IHBhc3M=\r\n").await;
        peer.say("235 2.7.0 accepted\r\n").await;
    })
    .await
    .unwrap();
    let transcript = session.take_transcript().join("\n");
    assert!(transcript.contains("C: <redacted>\nS: 334 UGFzc3dvcmQ6\nC: <redacted>\nS: 235"));
    assert!(!transcript.contains("dXNlcg") && !transcript.contains("czNj"));
}

#[tokio::test]
async fn refused_credentials_are_auth_failed_and_configuration() {
    let err = run(&with_credentials(), |mut peer| async move {
        peer.greet("250-mx.example\r\n250 AUTH PLAIN\r\n").await;
        peer.expect("AUTH PLAIN AHVzZXIAczNjcmV0IHBhc3M=\r\n").await;
        peer.say("535 5.7.8 authentication credentials invalid\r\n")
            .await;
    })
    .await
    .unwrap_err();
    assert!(matches!(&err, SmtpError::AuthFailed { reply, .. } if reply.code == 535));
    assert!(err.is_configuration() && !err.is_transient());
    assert_eq!(err.phase(), Phase::Auth);
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains(PASSWORD) && !shown.contains("AHVz"),
        "{shown}"
    );
}

#[tokio::test]
async fn temporary_auth_failure_is_transient() {
    let err = run(&with_credentials(), |mut peer| async move {
        peer.greet("250-mx.example\r\n250 AUTH PLAIN\r\n").await;
        peer.expect("AUTH PLAIN AHVzZXIAczNjcmV0IHBhc3M=\r\n").await;
        peer.say("454 4.7.0 temporary authentication failure\r\n")
            .await;
    })
    .await
    .unwrap_err();
    assert!(matches!(err, SmtpError::AuthFailed { .. }));
    assert!(err.is_transient() && !err.is_configuration());
}

#[tokio::test]
async fn no_usable_mechanism_is_auth_unsupported() {
    let err = run(&with_credentials(), |mut peer| async move {
        peer.greet("250-mx.example\r\n250 AUTH CRAM-MD5 XOAUTH2\r\n")
            .await;
    })
    .await
    .unwrap_err();
    assert!(matches!(&err, SmtpError::AuthUnsupported { offered, .. }
        if offered == &["CRAM-MD5", "XOAUTH2"]));
    assert!(err.is_configuration());
    assert_eq!(
        err.to_string(),
        "mx.example: no supported AUTH mechanism (offered: CRAM-MD5 XOAUTH2)"
    );
}

// Paused time: the timeout passes as soon as both ends wait (no real socket here).
#[tokio::test(start_paused = true)]
async fn silent_server_times_out_waiting_for_banner() {
    let mut cfg = config();
    cfg.timeouts.banner = Duration::from_millis(200);
    let start = Instant::now();
    let err = run(&cfg, |mut peer| async move {
        // Waits for bytes the client never sends, keeping the connection open.
        peer.expect("anything").await;
    })
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            SmtpError::Timeout {
                phase: Phase::Banner,
                ..
            }
        ),
        "{err}"
    );
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert!(err.is_transient());
    assert_eq!(err.to_string(), "mx.example: timed out during banner");
}

// Paused time: the timeout passes as soon as both ends wait (no real socket here).
#[tokio::test(start_paused = true)]
async fn missing_final_reply_times_out_in_data_end() {
    let mut cfg = config();
    cfg.timeouts.data_end = Duration::from_millis(200);
    let mut session = run(&cfg, |mut peer| async move {
        peer.greet("250-mx.example\r\n250 PIPELINING\r\n").await;
        peer.say("250 ok\r\n250 ok\r\n354 go\r\n").await;
        peer.expect("MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nDATA\r\nbody\r\n.\r\n")
            .await;
        peer.expect("never sent").await;
    })
    .await
    .unwrap();
    let envelope = Envelope {
        mail_from: "s@x".to_owned(),
        rcpt_to: vec!["a@x".to_owned()],
    };
    let start = Instant::now();
    let err = timeout(LIMIT, session.send(&envelope, b"body"))
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(
            err,
            SmtpError::Timeout {
                phase: Phase::DataEnd,
                ..
            }
        ),
        "{err}"
    );
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert!(!session.is_usable());
}

/// Runs `cfg` against a peer that greets with `ehlo` and then only listens; returns the
/// error and every byte the client wrote.
async fn refused_before_auth(cfg: &SessionConfig, ehlo: &'static str) -> (SmtpError, String) {
    let (client, mut peer, writes) = pair();
    let server = tokio::spawn(async move {
        peer.greet(ehlo).await;
        peer.expect_eof().await;
    });
    let err = timeout(LIMIT, Session::connect_stream(client, cfg))
        .await
        .unwrap()
        .unwrap_err();
    timeout(LIMIT, server).await.unwrap().unwrap();
    let written = writes.lock().unwrap().concat();
    (err, written)
}

#[tokio::test]
async fn no_auth_bytes_on_a_plain_session() {
    let mut cfg = with_credentials();
    cfg.allow_plain_auth = false;
    let (err, written) =
        refused_before_auth(&cfg, "250-mx.example\r\n250 AUTH PLAIN LOGIN\r\n").await;
    assert_eq!(written, "EHLO client.example\r\n");
    assert!(matches!(&err, SmtpError::AuthWithoutTls { host } if host == "mx.example"));
    assert!(err.is_configuration() && !err.is_transient());
    assert_eq!(err.phase(), Phase::Auth);
    assert_eq!(
        err.to_string(),
        "mx.example: refusing to send the password or token in clear text: the session \
         is not encrypted (use STARTTLS or implicit TLS)"
    );
}

#[tokio::test]
async fn opportunistic_tls_not_offered_does_not_fall_back_to_clear_text_auth() {
    let mut cfg = with_credentials();
    cfg.allow_plain_auth = false;
    cfg.security = Security::Opportunistic;
    let (err, written) = refused_before_auth(&cfg, "250-mx.example\r\n250 AUTH PLAIN\r\n").await;
    assert_eq!(written, "EHLO client.example\r\n");
    assert!(matches!(err, SmtpError::AuthWithoutTls { .. }), "{err}");
}

#[tokio::test]
async fn required_starttls_not_offered_stops_before_auth() {
    let mut cfg = with_credentials();
    cfg.allow_plain_auth = false;
    cfg.security = Security::StartTls;
    let (err, written) = refused_before_auth(&cfg, "250-mx.example\r\n250 AUTH PLAIN\r\n").await;
    assert_eq!(written, "EHLO client.example\r\n");
    assert!(
        matches!(err, SmtpError::StartTlsUnavailable { .. }),
        "{err}"
    );
    assert!(err.is_configuration());
}
