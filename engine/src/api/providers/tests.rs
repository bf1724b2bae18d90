//! The provider handlers end to end on a real sled store in a temp dir: a signed report
//! suppresses its address (or bounces its recipient when the message is known), a refused
//! one changes nothing, a replay changes nothing, and every refusal is a problem document.

use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use chrono::{TimeZone, Utc};

use super::testkit::{self, ses_message, sns_notification, tamper, MAILGUN_KEY};
use super::*;
use crate::config::ProvidersSettings;
use crate::model::{
    Assignment, ManualClock, Outcome, RecipientState, ReplyRecord, SuppressionReason,
};
use crate::store::{OutcomePolicy, OutcomeUpdate};

const NOW: i64 = 1_733_400_000;

struct World {
    _dir: tempfile::TempDir,
    store: Store,
    state: ProviderState,
}

/// Every provider configured with the test keys, on a fresh store with campaign `c1`: one
/// delivered recipient `known@example.com` whose message is `<m1@volley.test>`.
fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let mut loader = store.start_load("c1", vec!["email".into()]).unwrap();
    loader
        .add(
            "known@example.com",
            "example.com",
            vec!["known@example.com".into()],
            2,
            Assignment::Variant(0),
        )
        .unwrap();
    loader.finish(0, 0, 0).unwrap();
    let pending = store.pending("c1", None, 10).unwrap();
    let delivered = OutcomeUpdate {
        key: pending[0].key.clone(),
        outcome: Outcome::Delivered {
            reply: ReplyRecord {
                code: Some(250),
                enhanced: None,
                text: "250 ok".into(),
                category: None,
                hard: false,
            },
        },
        message_id: Some("m1@volley.test".into()),
    };
    store
        .record_outcomes("c1", &OutcomePolicy::default(), &[delivered], 1_000)
        .unwrap();
    let settings = ProvidersSettings {
        ses: Some(testkit::ses_settings()),
        sendgrid: Some(testkit::sendgrid_settings()),
        mailgun: Some(testkit::mailgun_settings()),
        postmark: Some(testkit::postmark_settings()),
    };
    let clock = ManualClock::new(Utc.timestamp_opt(NOW, 0).unwrap()).clock();
    let state = ProviderState::new(&store, settings, 64 * 1024, clock).unwrap();
    World {
        _dir: dir,
        store,
        state,
    }
}

/// The handler's answer, its status and JSON body.
async fn json(response: Response) -> (StatusCode, serde_json::Value) {
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    if !status.is_success() {
        assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    }
    (status, serde_json::from_slice(&bytes).unwrap())
}

async fn post_ses(world: &World, body: Vec<u8>) -> (StatusCode, serde_json::Value) {
    let answer = ses(State(world.state.clone()), Body::from(body));
    json(
        tokio::time::timeout(Duration::from_secs(30), answer)
            .await
            .unwrap(),
    )
    .await
}

fn reason(world: &World, address: &str) -> Option<SuppressionReason> {
    world
        .store
        .suppression(address)
        .unwrap()
        .map(|entry| entry.reason)
}

#[tokio::test]
async fn a_signed_ses_bounce_of_an_unknown_message_suppresses_its_address() {
    let world = world();
    let body = sns_notification(&ses_message("bounce.json", &[]), "sns-signing.key", 1);
    let (status, answer) = post_ses(&world, body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["suppressed"], 1);
    assert_eq!(
        reason(&world, "jane@example.com"),
        Some(SuppressionReason::HardBounce)
    );
    let entry = world
        .store
        .suppression("jane@example.com")
        .unwrap()
        .unwrap();
    assert!(entry.detail.contains("550 5.1.1"), "{}", entry.detail);
    // The same notification again (SNS retries): nothing more happens.
    let (status, answer) = post_ses(&world, body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (answer["duplicates"].as_u64(), answer["suppressed"].as_u64()),
        (Some(1), Some(0))
    );
}

#[tokio::test]
async fn a_bounce_of_a_known_message_bounces_its_recipient_like_a_dsn() {
    let world = world();
    let message = ses_message(
        "bounce.json",
        &[
            ("custom-message-ID", "<m1@volley.test>"),
            ("jane@example.com", "known@example.com"),
        ],
    );
    let (status, answer) = post_ses(&world, sns_notification(&message, "sns-signing.key", 2)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["bounced"], 1);
    let bounced = world
        .store
        .recipients_in("c1", RecipientState::Bounced)
        .unwrap();
    assert_eq!(bounced.len(), 1);
    let reply = bounced[0].record.last_reply.clone().unwrap();
    assert_eq!((reply.code, reply.hard), (Some(550), true));
    assert_eq!(
        reason(&world, "known@example.com"),
        Some(SuppressionReason::HardBounce)
    );
    let events = world.store.events("c1").unwrap();
    assert!(
        events[0].source.starts_with("ses:"),
        "{:?}",
        events[0].source
    );
}

#[tokio::test]
async fn a_complaint_suppresses_and_a_soft_bounce_of_an_unknown_message_does_not() {
    let world = world();
    let body = sns_notification(&ses_message("complaint.json", &[]), "sns-signing.key", 1);
    assert_eq!(post_ses(&world, body).await.0, StatusCode::OK);
    assert_eq!(
        reason(&world, "richard@example.com"),
        Some(SuppressionReason::Complaint)
    );
    let body = sns_notification(&ses_message("transient.json", &[]), "sns-signing.key", 1);
    let (status, answer) = post_ses(&world, body).await;
    assert_eq!(
        (status, answer["unmatched"].as_u64()),
        (StatusCode::OK, Some(1))
    );
    assert_eq!(reason(&world, "mary@example.com"), None);
}

#[tokio::test]
async fn a_bad_signature_is_a_401_problem_and_changes_nothing() {
    let world = world();
    let body = sns_notification(&ses_message("bounce.json", &[]), "sns-signing.key", 1);
    let (status, problem) = post_ses(&world, tamper(&body, "5.1.1", "5.1.2")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(problem["type"], "urn:volley:problem:bad-signature");
    assert_eq!(problem["status"], 401);
    assert!(world.store.suppressions().unwrap().is_empty());
}

#[tokio::test]
async fn a_body_past_the_limit_is_a_413_problem() {
    let world = world();
    let (status, problem) = post_ses(&world, vec![b' '; 65 * 1024]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(problem["status"], 413);
}

#[tokio::test]
async fn a_provider_not_configured_is_a_404_problem() {
    let world = world();
    let clock = ManualClock::new(Utc.timestamp_opt(NOW, 0).unwrap()).clock();
    let bare = ProviderState::new(&world.store, ProvidersSettings::default(), 1024, clock).unwrap();
    let (status, problem) = json(ses(State(bare), Body::from("{}")).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("[providers.ses]"));
}

#[tokio::test]
async fn sendgrid_events_suppress_bounces_and_complaints_but_not_blocks() {
    let world = world();
    let body = testkit::fixture("sendgrid/events.json").into_bytes();
    let headers = testkit::sendgrid_signed(&body, NOW);
    let answer = sendgrid(
        State(world.state.clone()),
        headers.clone(),
        Body::from(body.clone()),
    );
    let (status, answer) = json(answer.await).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        (answer["reports"].as_u64(), answer["suppressed"].as_u64()),
        (Some(4), Some(3))
    );
    assert_eq!(
        reason(&world, "bounce@test.com"),
        Some(SuppressionReason::HardBounce)
    );
    assert_eq!(
        reason(&world, "dropped@test.com"),
        Some(SuppressionReason::HardBounce)
    );
    assert_eq!(
        reason(&world, "spam@test.com"),
        Some(SuppressionReason::Complaint)
    );
    assert_eq!(reason(&world, "blocked@test.com"), None);
    let tampered = tamper(&body, "spam@test.com", "spam@test.org");
    let answer = sendgrid(State(world.state.clone()), headers, Body::from(tampered));
    assert_eq!(json(answer.await).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(reason(&world, "spam@test.org"), None);
}

#[tokio::test]
async fn a_mailgun_token_is_taken_once() {
    let world = world();
    let token = "e2a14c2bf61174522aa0684967992c28ee1d2b5a5f3bcd7024";
    let body = testkit::mailgun_signed("failed-bounce.json", MAILGUN_KEY, NOW, token);
    let post = |body: Vec<u8>| mailgun(State(world.state.clone()), Body::from(body));
    let (status, answer) = json(post(body.clone()).await).await;
    assert_eq!(
        (status, answer["suppressed"].as_u64()),
        (StatusCode::OK, Some(1))
    );
    assert_eq!(
        reason(&world, "carol@example.com"),
        Some(SuppressionReason::HardBounce)
    );
    let (status, problem) = json(post(body).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(problem["detail"].as_str().unwrap().contains("token"));
    let stale = testkit::mailgun_signed("complained.json", MAILGUN_KEY, NOW - 3_600, "f3");
    assert_eq!(json(post(stale).await).await.0, StatusCode::FORBIDDEN);
    assert_eq!(reason(&world, "alice@example.com"), None);
}

#[tokio::test]
async fn postmark_needs_its_credentials() {
    let world = world();
    let body = testkit::fixture("postmark/spam-complaint.json");
    let post = |headers: HeaderMap| {
        postmark(
            State(world.state.clone()),
            headers,
            Body::from(body.clone()),
        )
    };
    let response = post(HeaderMap::new()).await;
    assert_eq!(
        response.headers().get(header::WWW_AUTHENTICATE).unwrap(),
        "Basic realm=\"volley\", charset=\"UTF-8\""
    );
    assert_eq!(json(response).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(reason(&world, "john@example.com"), None);
    let mut headers = HeaderMap::new();
    // "postmark:hooks-password-0123", as curl -u sends it.
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("Basic cG9zdG1hcms6aG9va3MtcGFzc3dvcmQtMDEyMw=="),
    );
    let (status, answer) = json(post(headers).await).await;
    assert_eq!(
        (status, answer["suppressed"].as_u64()),
        (StatusCode::OK, Some(1))
    );
    assert_eq!(
        reason(&world, "john@example.com"),
        Some(SuppressionReason::Complaint)
    );
}

#[tokio::test]
async fn a_message_id_carrying_a_verp_token_finds_its_recipient() {
    let world = world();
    let number = world.store.campaign("c1").unwrap().unwrap().number;
    let key = world
        .store
        .recipients_in("c1", RecipientState::Delivered)
        .unwrap()[0]
        .key
        .clone();
    let verp = crate::bounce::Verp::new(&world.store.secret().unwrap(), "bounces.invalid");
    let id = format!("<{}@acme.example>", verp.token(number, key.seq));
    let message = ses_message("complaint.json", &[("custom-message-ID", &id)]);
    let (status, answer) = post_ses(&world, sns_notification(&message, "sns-signing.key", 1)).await;
    assert_eq!(
        (status, answer["complaints"].as_u64()),
        (StatusCode::OK, Some(1))
    );
    // The recipient of the campaign complained, whatever address the report names.
    assert_eq!(
        reason(&world, "known@example.com"),
        Some(SuppressionReason::Complaint)
    );
    assert_eq!(reason(&world, "richard@example.com"), None);
}
