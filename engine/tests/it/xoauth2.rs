//! A relay that takes only XOAUTH2 (Gmail's and Microsoft 365's login for programs): the token
//! comes from a command whose first token is stale. The relay answers it the way Gmail does
//! (`334` + JSON error, then `535`); Volley fetches one fresh token and the send goes through,
//! and neither token shows in the transcript, the logs or the errors. A relay that refuses
//! the fresh token too stops the send with a clear login error.

use std::os::unix::fs::PermissionsExt as _;

use volley::runtime::{self, SendOptions};
use volley_testkit::sink::{SinkConfig, SinkTls};

use crate::support::logs::Logs;
use crate::support::{self, Fixture, Setup, LIMIT, USER};

const STALE: &str = "ya29.stale-token-0000";
const GOOD: &str = "ya29.fresh-token-1111";

/// A relay on STARTTLS that accepts `USER` with the token `GOOD` only, and a campaign whose
/// `token_command` prints `STALE` the first time and `then` afterwards (each run logged in
/// `runs.log`).
async fn fixture(then: &str, connections: usize) -> Fixture {
    let setup = Setup {
        tls: SinkTls::StartTls,
        auth: false,
        connections,
        relay_extra: format!(
            "username = \"{USER}\"\nauth = \"xoauth2\"\ntoken_command = [\"./get-token\", \"--user\", \"{USER}\"]"
        ),
        sink: SinkConfig {
            xoauth2: Some((USER.to_owned(), GOOD.to_owned())),
            ..SinkConfig::default()
        },
        ..Setup::default()
    };
    let fixture = Fixture::new(setup, &support::list(20, 4)).await;
    let script = format!(
        "#!/bin/sh\ndir=$(dirname \"$0\")\necho run >> \"$dir/runs.log\"\n\
         if [ -e \"$dir/fetched\" ]; then echo '{then}'; else touch \"$dir/fetched\"; echo '{STALE}'; fi\n"
    );
    let path = fixture.path("get-token");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
    fixture
}

fn runs(fixture: &Fixture) -> usize {
    std::fs::read_to_string(fixture.path("runs.log"))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

fn assert_no_token(what: &str, text: &str) {
    use base64::Engine as _;
    let line = |token: &str| {
        base64::engine::general_purpose::STANDARD
            .encode(format!("user={USER}\x01auth=Bearer {token}\x01\x01"))
    };
    let (stale_line, good_line) = (line(STALE), line(GOOD));
    for secret in [
        STALE,
        GOOD,
        "stale-token",
        "fresh-token",
        &stale_line,
        &good_line,
    ] {
        assert!(!text.contains(secret), "{what} shows {secret}: {text}");
    }
}

// One thread: every task logs where the logs are captured.
#[tokio::test]
async fn a_stale_token_is_refreshed_once_and_the_send_goes_through() {
    let (logs, _guard) = Logs::capture(tracing::Level::DEBUG);
    let fixture = fixture(GOOD, 3).await;
    let report = fixture.send().await.unwrap();
    assert_eq!(report.counts.delivered, 20);
    let received = fixture.sink.wait_for(20, LIMIT).await.unwrap();
    assert!(received
        .iter()
        .all(|m| m.tls && m.auth_user.as_deref() == Some(USER)));
    // Once when the campaign was loaded (stale), once after the relay refused it: however
    // many connections were refused with the stale token, one fresh fetch serves them all.
    assert_eq!(runs(&fixture), 2);
    let refused = fixture.sink.stats().auth_failures;
    assert!((1..=3).contains(&refused), "{refused}");
    let logged = logs.text();
    assert!(
        logged.contains("relay refused the access token"),
        "{logged}"
    );
    assert_no_token("the log", &logged);
    assert_no_token("the report", &format!("{report:?}"));
}

#[tokio::test]
async fn the_test_send_transcript_shows_no_token() {
    let fixture = fixture(GOOD, 1).await;
    let campaign = fixture.campaign();
    let sent = tokio::time::timeout(
        LIMIT,
        runtime::test_send(&campaign, "someone@d1.example", 1, None),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(sent.accepted, "{:?}", sent.transcript);
    let transcript = sent.transcript.join("\n");
    assert!(
        transcript.contains("C: AUTH XOAUTH2 <redacted>\nS: 235 2.7.0 Accepted"),
        "{transcript}"
    );
    assert_no_token("the transcript", &transcript);
    assert_eq!(runs(&fixture), 2);
}

#[tokio::test]
async fn a_relay_that_refuses_the_fresh_token_too_stops_the_send() {
    let (logs, _guard) = Logs::capture(tracing::Level::DEBUG);
    let fixture = fixture("ya29.also-refused-2222", 1).await;
    let campaign = fixture.campaign();
    let error = tokio::time::timeout(LIMIT, runtime::send(&campaign, SendOptions::default()))
        .await
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(error.contains("authentication failed: 535"), "{error}");
    assert_no_token("the error", &error);
    assert!(!error.contains("also-refused"), "{error}");
    assert_eq!(fixture.sink.count(), 0);
    assert_eq!(runs(&fixture), 2, "one refresh, not one per attempt");
    assert_no_token("the log", &logs.text());
}

#[tokio::test]
async fn a_token_command_that_fails_at_refresh_is_named_with_its_stderr() {
    let fixture = fixture(GOOD, 1).await;
    let script = "#!/bin/sh\nif [ -e \"$(dirname \"$0\")/fetched\" ]; then echo 'refresh token revoked' >&2; exit 2; fi\n\
                  touch \"$(dirname \"$0\")/fetched\"; echo 'ya29.stale-token-0000'\n";
    std::fs::write(fixture.path("get-token"), script).unwrap();
    let campaign = fixture.campaign();
    let error = tokio::time::timeout(LIMIT, runtime::send(&campaign, SendOptions::default()))
        .await
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("no fresh access token: relay.token_command: ")
            && error.contains("failed (exit status: 2): refresh token revoked"),
        "{error}"
    );
    assert_no_token("the error", &error);
}
