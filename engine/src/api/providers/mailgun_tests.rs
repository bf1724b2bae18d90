use super::*;
use crate::api::providers::testkit::{mailgun_settings, mailgun_signed, tamper, MAILGUN_KEY};
use crate::bounce::Classifier;
use crate::model::Category;

const NOW: i64 = 1_733_400_000;
const TOKEN: &str = "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0";

fn now() -> Millis {
    NOW as Millis * 1000
}

fn read(name: &str) -> Signed {
    let body = mailgun_signed(name, MAILGUN_KEY, NOW, TOKEN);
    receive(&mailgun_settings(), &body, now()).unwrap()
}

#[test]
fn each_event_kind_is_classified() {
    let c = Classifier::builtin();
    let cases = [
        (
            "failed-permanent.json",
            "alice@example.com",
            Action::Failed,
            Category::InvalidRecipient,
            true,
        ),
        (
            "failed-bounce.json",
            "carol@example.com",
            Action::Failed,
            Category::InvalidRecipient,
            true,
        ),
        (
            "failed-temporary.json",
            "alice@example.com",
            Action::Delayed,
            Category::MailboxFull,
            false,
        ),
        (
            "complained.json",
            "alice@example.com",
            Action::Complaint,
            Category::Other,
            true,
        ),
    ];
    for (name, address, action, category, hard) in cases {
        let signed = read(name);
        assert_eq!(signed.token, TOKEN);
        let event = signed.event.unwrap();
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
    }
    let bounce = read("failed-bounce.json").event.unwrap();
    assert_eq!(bounce.event_id, "Ase7i2zsRYeDXztHGENqRA");
    assert_eq!(
        bounce.message_id.as_deref(),
        Some("20180316225538.1.5AB1D1E7B2D6F2B5@sandbox.mailgun.org")
    );
    assert!(bounce
        .diagnostic
        .unwrap()
        .starts_with("550 5.1.1 The email account"));
}

#[test]
fn a_wrong_key_or_a_changed_token_is_refused() {
    let body = mailgun_signed("failed-bounce.json", "another-signing-key-0123", NOW, TOKEN);
    let refusal = receive(&mailgun_settings(), &body, now()).unwrap_err();
    assert_eq!(refusal.problem().status, 401);
    let body = mailgun_signed("failed-bounce.json", MAILGUN_KEY, NOW, TOKEN);
    let tampered = tamper(
        &body,
        TOKEN,
        "b8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0",
    );
    let refusal = receive(&mailgun_settings(), &tampered, now()).unwrap_err();
    assert_eq!(refusal.problem().status, 401);
}

#[test]
fn a_stale_timestamp_is_refused() {
    let body = mailgun_signed("failed-bounce.json", MAILGUN_KEY, NOW - 600, TOKEN);
    let problem = receive(&mailgun_settings(), &body, now())
        .unwrap_err()
        .problem();
    assert_eq!(problem.status, 403);
    assert!(problem.detail.unwrap().contains("signature.timestamp"));
}

#[test]
fn an_unsigned_body_is_refused() {
    let problem = receive(&mailgun_settings(), b"{\"event-data\": {}}", now())
        .unwrap_err()
        .problem();
    assert_eq!(problem.status, 401);
    let problem = receive(&mailgun_settings(), b"token=x", now())
        .unwrap_err()
        .problem();
    assert_eq!(problem.status, 400);
}
