use super::*;
use crate::api::providers::testkit::{
    self, ses_message, ses_settings, sign_sns, sns_notification, tamper, TOPIC,
};
use crate::bounce::Classifier;
use crate::model::Category;

fn reports(outcome: SnsOutcome) -> Vec<ProviderEvent> {
    match outcome {
        SnsOutcome::Reports(events) => events,
        other => panic!("not reports: {other:?}"),
    }
}

#[test]
fn a_bounce_signed_either_way_is_accepted_and_read() {
    for version in [1, 2] {
        let body = sns_notification(&ses_message("bounce.json", &[]), "sns-signing.key", version);
        let events = reports(receive(&ses_settings(), &body).unwrap());
        assert_eq!(events.len(), 1, "version {version}");
        let event = &events[0];
        assert_eq!(event.address, "jane@example.com");
        assert_eq!(event.action, Action::Failed);
        assert_eq!(event.status.as_deref(), Some("5.1.1"));
        assert_eq!(
            event.diagnostic.as_deref(),
            Some("smtp; 550 5.1.1 <jane@example.com>... User")
        );
        assert_eq!(event.message_id.as_deref(), Some("custom-message-ID"));
        assert_eq!(event.event_id, "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324");
        assert_eq!(event.provider_type, "Permanent/General");
        let recipient = event.classify(&Classifier::builtin()).unwrap();
        assert_eq!(
            (recipient.category, recipient.hard),
            (Category::InvalidRecipient, true)
        );
    }
}

#[test]
fn a_complaint_names_each_complaining_recipient() {
    let body = sns_notification(&ses_message("complaint.json", &[]), "sns-signing.key", 2);
    let events = reports(receive(&ses_settings(), &body).unwrap());
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].address, "richard@example.com");
    assert_eq!(events[0].action, Action::Complaint);
    assert_eq!(events[0].provider_type, "Complaint/abuse");
}

#[test]
fn a_transient_bounce_is_never_hard_and_a_delivery_reports_nothing() {
    let body = sns_notification(&ses_message("transient.json", &[]), "sns-signing.key", 1);
    let events = reports(receive(&ses_settings(), &body).unwrap());
    let recipient = events[0].classify(&Classifier::builtin()).unwrap();
    assert_eq!(
        (recipient.category, recipient.hard),
        (Category::MailboxFull, false)
    );
    let body = sns_notification(&ses_message("delivery.json", &[]), "sns-signing.key", 1);
    assert!(reports(receive(&ses_settings(), &body).unwrap()).is_empty());
}

#[test]
fn a_changed_byte_or_another_certificate_is_refused_as_unauthenticated() {
    let body = sns_notification(&ses_message("bounce.json", &[]), "sns-signing.key", 1);
    let tampered = tamper(&body, "jane@example.com", "jand@example.com");
    let refusal = receive(&ses_settings(), &tampered).unwrap_err();
    assert!(matches!(refusal, Refusal::BadSignature(_)), "{refusal:?}");
    assert_eq!(refusal.problem().status, 401);
    let other = sns_notification(&ses_message("bounce.json", &[]), "sns-other.key", 1);
    let refusal = receive(&ses_settings(), &other).unwrap_err();
    assert_eq!(refusal.problem().status, 401);
    // A signature made for SHA-1 does not pass as version 2.
    let mut sns: serde_json::Value = serde_json::from_slice(&body).unwrap();
    sns["SignatureVersion"] = "2".into();
    let refusal = receive(&ses_settings(), &serde_json::to_vec(&sns).unwrap()).unwrap_err();
    assert_eq!(refusal.problem().status, 401);
}

#[test]
fn a_topic_not_listed_is_forbidden_even_when_signed() {
    let mut sns = testkit::fixture_json("ses/sns-notification.json");
    sns["Message"] = ses_message("bounce.json", &[]).into();
    sign_sns(&mut sns, "sns-signing.key", 1);
    let refusal = receive(&ses_settings(), &serde_json::to_vec(&sns).unwrap()).unwrap_err();
    let problem = refusal.problem();
    assert_eq!(problem.status, 403);
    assert!(problem
        .detail
        .unwrap()
        .contains("arn:aws:sns:us-west-2:123456789012:MyTopic"));
}

#[test]
fn a_subscription_confirmation_gives_its_url_and_nothing_else() {
    let mut sns = testkit::fixture_json("ses/sns-subscription.json");
    sns["TopicArn"] = TOPIC.into();
    sign_sns(&mut sns, "sns-signing.key", 1);
    let outcome = receive(&ses_settings(), &serde_json::to_vec(&sns).unwrap()).unwrap();
    match outcome {
        SnsOutcome::Subscription {
            kind,
            subscribe_url,
            ..
        } => {
            assert_eq!(kind, "SubscriptionConfirmation");
            assert!(subscribe_url
                .starts_with("https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_messages_say_what_is_wrong() {
    let refusal = receive(&ses_settings(), b"{\"Type\": \"Notification\"}").unwrap_err();
    assert_eq!(refusal.problem().status, 400);
    let mut sns = testkit::fixture_json("ses/sns-notification.json");
    sns["SignatureVersion"] = "3".into();
    let problem = receive(&ses_settings(), &serde_json::to_vec(&sns).unwrap())
        .unwrap_err()
        .problem();
    assert_eq!(problem.status, 422);
    assert_eq!(problem.errors[0].field, "SignatureVersion");
}
