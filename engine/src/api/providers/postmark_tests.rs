use axum::http::{HeaderMap, HeaderValue};

use super::*;
use crate::api::providers::testkit::{fixture, postmark_settings};
use crate::bounce::Classifier;
use crate::model::Category;

fn basic(user_password: &str) -> HeaderMap {
    use base64::Engine as _;
    let value = base64::engine::general_purpose::STANDARD.encode(user_password);
    let mut headers = HeaderMap::new();
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Basic {value}")).unwrap(),
    );
    headers
}

const GOOD: &str = "postmark:hooks-password-0123";

#[test]
fn bounces_and_complaints_are_classified() {
    let c = Classifier::builtin();
    let cases = [
        (
            "bounce.json",
            "john@example.com",
            Action::Failed,
            Category::InvalidRecipient,
            true,
        ),
        (
            "soft-bounce.json",
            "jane@example.com",
            Action::Failed,
            Category::MailboxFull,
            false,
        ),
        (
            "spam-complaint.json",
            "john@example.com",
            Action::Complaint,
            Category::Other,
            true,
        ),
    ];
    for (name, address, action, category, hard) in cases {
        let body = fixture(&format!("postmark/{name}"));
        let event = receive(&postmark_settings(), &basic(GOOD), body.as_bytes())
            .unwrap()
            .unwrap();
        let recipient = event.classify(&c).unwrap();
        assert_eq!(
            (
                event.address.as_str(),
                event.action,
                recipient.category,
                recipient.hard
            ),
            (address, action, category, hard),
            "{name}"
        );
        assert!(event.message_id.is_none());
    }
    let body = fixture("postmark/bounce.json");
    let event = receive(&postmark_settings(), &basic(GOOD), body.as_bytes())
        .unwrap()
        .unwrap();
    assert_eq!(event.event_id, "4323372036854775807");
    assert_eq!(event.provider_type, "Bounce/HardBounce");
}

#[test]
fn wrong_or_missing_credentials_are_refused() {
    let body = fixture("postmark/bounce.json");
    for headers in [
        HeaderMap::new(),
        basic("postmark:hooks-password-0124"),
        basic("postmarc:hooks-password-0123"),
        basic("postmark"),
    ] {
        let refusal = receive(&postmark_settings(), &headers, body.as_bytes()).unwrap_err();
        assert!(matches!(refusal, Refusal::BadCredentials), "{refusal:?}");
        assert_eq!(refusal.problem().status, 401);
    }
}

#[test]
fn records_that_say_nothing_about_the_address_are_ignored() {
    let body = fixture("postmark/bounce.json").replace("HardBounce", "AutoResponder");
    let event = receive(&postmark_settings(), &basic(GOOD), body.as_bytes()).unwrap();
    assert!(event.is_none());
}
