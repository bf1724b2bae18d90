use axum::http::{HeaderMap, HeaderValue};

use super::*;
use crate::api::providers::testkit::{
    fixture, sendgrid_settings, sendgrid_signed as signed, tamper,
};
use crate::bounce::Classifier;
use crate::model::Category;

const NOW: i64 = 1_733_400_000;

fn now() -> Millis {
    NOW as Millis * 1000
}

#[test]
fn signed_events_are_read_and_each_kind_classified() {
    let body = fixture("sendgrid/events.json").into_bytes();
    let events = receive(&sendgrid_settings(), &signed(&body, NOW), &body, now()).unwrap();
    let c = Classifier::builtin();
    let seen: Vec<_> = events
        .iter()
        .map(|e| {
            let r = e.classify(&c).unwrap();
            (e.address.as_str(), e.action, r.category, r.hard)
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                "bounce@test.com",
                Action::Failed,
                Category::InvalidRecipient,
                true
            ),
            ("blocked@test.com", Action::Failed, Category::Blocked, false),
            (
                "dropped@test.com",
                Action::Failed,
                Category::InvalidRecipient,
                true
            ),
            ("spam@test.com", Action::Complaint, Category::Other, true),
        ]
    );
    assert_eq!(events[0].event_id, "6g4ZI7SA-xmRDv57GoPIPw==");
    assert_eq!(
        events[0].message_id.as_deref(),
        Some("14c5d75ce93.dfd.64b469@ismtpd-555")
    );
    assert_eq!(events[1].provider_type, "bounce/blocked");
}

#[test]
fn a_changed_byte_is_refused() {
    let body = fixture("sendgrid/events.json").into_bytes();
    let headers = signed(&body, NOW);
    let tampered = tamper(&body, "bounce@test.com", "bounce@test.con");
    let refusal = receive(&sendgrid_settings(), &headers, &tampered, now()).unwrap_err();
    assert_eq!(refusal.problem().status, 401, "{refusal:?}");
    // The timestamp is signed too.
    let mut moved = headers.clone();
    moved.insert(TIMESTAMP_HEADER, HeaderValue::from(NOW + 1));
    let refusal = receive(&sendgrid_settings(), &moved, &body, now()).unwrap_err();
    assert_eq!(refusal.problem().status, 401);
}

#[test]
fn missing_headers_are_refused_naming_them() {
    let body = fixture("sendgrid/events.json").into_bytes();
    let problem = receive(&sendgrid_settings(), &HeaderMap::new(), &body, now())
        .unwrap_err()
        .problem();
    assert_eq!(problem.status, 401);
    assert!(problem.detail.unwrap().contains(SIGNATURE_HEADER));
}

#[test]
fn a_stale_timestamp_is_refused_even_when_signed() {
    let body = fixture("sendgrid/events.json").into_bytes();
    let old = NOW - 301;
    let problem = receive(&sendgrid_settings(), &signed(&body, old), &body, now())
        .unwrap_err()
        .problem();
    assert_eq!(problem.status, 403);
    assert!(problem.detail.unwrap().contains("five minutes"));
    assert!(receive(
        &sendgrid_settings(),
        &signed(&body, NOW - 299),
        &body,
        now()
    )
    .is_ok());
}
