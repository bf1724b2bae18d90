//! Protocol tests for AUTH XOAUTH2: the exact initial response (Google's documented example),
//! Google's error flow (`334` with a base64 JSON error, an empty line, `535`), and that the
//! token shows neither in the transcript nor in errors.

use std::time::Duration;

use tokio::time::timeout;

use super::tests::{config, pair, Peer};
use super::*;

const LIMIT: Duration = Duration::from_secs(10);
/// The user and token of Google's XOAUTH2 documentation, and the line it shows for them.
const USER: &str = "someuser@example.com";
const TOKEN: &str = "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg";
const GOOGLE_LINE: &str = "AUTH XOAUTH2 dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5\
                           LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ==\r\n";
/// Google's `334` error challenge: base64 of `{"status":"401","schemes":"bearer",…}`.
const GOOGLE_ERROR: &str = "334 eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOiJod\
                            HRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ==\r\n";

fn with_token() -> SessionConfig {
    let mut cfg = config();
    cfg.credentials = Some(Credentials::xoauth2(USER, TOKEN.into()));
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

#[test]
fn initial_response_is_googles_format() {
    let raw = client::xoauth2_response(USER, &TOKEN.into());
    assert_eq!(
        raw,
        format!("user={USER}\x01auth=Bearer {TOKEN}\x01\x01").into_bytes()
    );
}

#[tokio::test]
async fn xoauth2_exact_bytes_and_redacted_transcript() {
    let mut session = run(&with_token(), |mut peer| async move {
        peer.greet("250-mx.example\r\n250 AUTH LOGIN PLAIN XOAUTH2\r\n")
            .await;
        peer.expect(GOOGLE_LINE).await;
        peer.say("235 2.7.0 Accepted\r\n").await;
    })
    .await
    .unwrap();
    let transcript = session.take_transcript();
    assert_eq!(transcript[4], "C: AUTH XOAUTH2 <redacted>");
    let all = transcript.join("\n");
    assert!(!all.contains("dXNlcj1") && !all.contains(TOKEN), "{all}");
}

#[tokio::test]
async fn googles_error_challenge_gets_an_empty_line_then_auth_failed() {
    let (client, peer, _) = pair();
    let server = tokio::spawn(async move {
        let mut peer = peer;
        peer.greet("250-mx.example\r\n250 AUTH XOAUTH2\r\n").await;
        peer.expect(GOOGLE_LINE).await;
        peer.say(GOOGLE_ERROR).await;
        peer.expect("\r\n").await;
        peer.say("535-5.7.8 Username and Password not accepted.\r\n535 5.7.8 Learn more\r\n")
            .await;
    });
    let err = timeout(LIMIT, Session::connect_stream(client, &with_token()))
        .await
        .unwrap()
        .unwrap_err();
    timeout(LIMIT, server).await.unwrap().unwrap();
    assert!(matches!(&err, SmtpError::AuthFailed { reply, .. } if reply.code == 535));
    assert!(err.is_configuration());
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains(TOKEN) && !shown.contains("dXNlcj1"),
        "{shown}"
    );
}

#[tokio::test]
async fn microsofts_plain_535_is_auth_failed() {
    let err = run(&with_token(), |mut peer| async move {
        peer.greet("250-mx.example\r\n250 AUTH LOGIN XOAUTH2\r\n")
            .await;
        peer.expect(GOOGLE_LINE).await;
        peer.say("535 5.7.3 Authentication unsuccessful\r\n").await;
    })
    .await
    .unwrap_err();
    assert!(matches!(&err, SmtpError::AuthFailed { reply, .. } if reply.code == 535));
}

#[tokio::test]
async fn a_server_without_xoauth2_is_auth_unsupported_and_gets_no_token() {
    let err = run(&with_token(), |mut peer| async move {
        peer.greet("250-mx.example\r\n250 AUTH PLAIN LOGIN\r\n")
            .await;
        peer.expect_eof().await;
    })
    .await
    .unwrap_err();
    assert!(matches!(&err, SmtpError::AuthUnsupported { offered, .. }
        if offered == &["PLAIN", "LOGIN"]));
}

#[tokio::test]
async fn no_token_over_clear_text_unless_allowed() {
    let mut cfg = with_token();
    cfg.allow_plain_auth = false;
    let err = run(&cfg, |mut peer| async move {
        peer.greet("250-mx.example\r\n250 AUTH XOAUTH2\r\n").await;
        peer.expect_eof().await;
    })
    .await
    .unwrap_err();
    assert!(matches!(err, SmtpError::AuthWithoutTls { .. }));
}
