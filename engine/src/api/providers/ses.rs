//! Amazon SES bounce and complaint notifications, delivered by an SNS topic to `POST
//! /api/providers/ses`. The SNS message is authenticated by its signature (`SignatureVersion`
//! 1: RSA-SHA1, 2: RSA-SHA256, over SNS's canonical string) checked against the certificate
//! configured in `[providers.ses] cert_file` (its `SigningCertURL` is never fetched), then
//! its `TopicArn` against `topic_arns`. A `SubscriptionConfirmation` is logged with its
//! `SubscribeURL` for the operator to visit (nothing is fetched) and answered 200.

use serde::Deserialize;
use serde_json::Value;

use super::error::Refusal;
use super::event::{clean_message_id, text, Provider, ProviderEvent, Verdict, MAX_EVENTS};
use super::verify::{self, RsaDigest};
use crate::bounce::Action;
use crate::config::SesSettings;

/// What an authenticated SNS message asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SnsOutcome {
    /// Bounce or complaint reports to record (possibly none: a delivery notification).
    Reports(Vec<ProviderEvent>),
    /// A subscription (or unsubscription) to confirm by hand: the topic and the URL.
    Subscription {
        /// `SubscriptionConfirmation` or `UnsubscribeConfirmation`.
        kind: String,
        /// The topic.
        topic: String,
        /// The URL that confirms it.
        subscribe_url: String,
    },
}

/// The SNS HTTP message, as SNS posts it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SnsMessage {
    #[serde(rename = "Type")]
    kind: String,
    message_id: String,
    topic_arn: String,
    message: String,
    timestamp: String,
    signature_version: String,
    signature: String,
    #[serde(default, rename = "SigningCertURL")]
    signing_cert_url: Option<String>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default, rename = "SubscribeURL")]
    subscribe_url: Option<String>,
    #[serde(default)]
    token: Option<String>,
}

/// Authenticates the SNS message `body` and reads the SES reports in it.
pub(crate) fn receive(settings: &SesSettings, body: &[u8]) -> Result<SnsOutcome, Refusal> {
    let sns: SnsMessage = serde_json::from_slice(body).map_err(|e| {
        Refusal::bad_body(format!("not an SNS message (JSON with Type, MessageId, TopicArn, Message, Timestamp, Signature…): {e}"))
    })?;
    let digest = match sns.signature_version.as_str() {
        "1" => RsaDigest::Sha1,
        "2" => RsaDigest::Sha256,
        other => {
            return Err(Refusal::bad_field(
                "SignatureVersion",
                format!("`{other}` is not an SNS signature version (1 or 2)"),
            ))
        }
    };
    let canonical = string_to_sign(&sns)?;
    let signature = verify::base64(&sns.signature)
        .ok_or_else(|| Refusal::bad_signature("Signature is not base64"))?;
    if !verify::rsa(
        &settings.signing_keys,
        digest,
        canonical.as_bytes(),
        &signature,
    ) {
        tracing::warn!(
            signing_cert_url = sns.signing_cert_url.as_deref().unwrap_or("none"),
            topic = %sns.topic_arn,
            "an SNS message whose signature does not verify with [providers.ses] cert_file \
             (if AWS rotated its certificate, add the one at SigningCertURL to the file)"
        );
        return Err(Refusal::bad_signature(
            "the SNS signature does not verify with the configured certificate",
        ));
    }
    if !settings.topic_arns.iter().any(|t| t == &sns.topic_arn) {
        return Err(Refusal::forbidden(format!(
            "topic {} is not in [providers.ses] topic_arns",
            sns.topic_arn
        )));
    }
    match sns.kind.as_str() {
        "Notification" => reports(&sns).map(SnsOutcome::Reports),
        kind => Ok(SnsOutcome::Subscription {
            kind: kind.to_owned(),
            topic: sns.topic_arn.clone(),
            subscribe_url: sns.subscribe_url.clone().unwrap_or_default(),
        }),
    }
}

/// SNS's canonical string: the signed fields' names and values, each on its own line, in
/// byte order of the names; which fields depends on the message type.
fn string_to_sign(sns: &SnsMessage) -> Result<String, Refusal> {
    let mut fields: Vec<(&str, &str)> = vec![
        ("Message", &sns.message),
        ("MessageId", &sns.message_id),
        ("Timestamp", &sns.timestamp),
        ("TopicArn", &sns.topic_arn),
        ("Type", &sns.kind),
    ];
    match sns.kind.as_str() {
        "Notification" => {
            if let Some(subject) = &sns.subject {
                fields.push(("Subject", subject));
            }
        }
        "SubscriptionConfirmation" | "UnsubscribeConfirmation" => {
            for (name, value) in [("SubscribeURL", &sns.subscribe_url), ("Token", &sns.token)] {
                let value = value.as_deref().ok_or_else(|| {
                    Refusal::bad_field(name, format!("a {} needs {name}", sns.kind))
                })?;
                fields.push((name, value));
            }
        }
        other => {
            return Err(Refusal::bad_field(
                "Type",
                format!("`{other}` is not an SNS message type"),
            ))
        }
    }
    fields.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = String::new();
    for (name, value) in fields {
        out.push_str(name);
        out.push('\n');
        out.push_str(value);
        out.push('\n');
    }
    Ok(out)
}

/// The SES reports in a notification's `Message`: one per bounced or complaining
/// recipient; a delivery or any other notification gives none.
fn reports(sns: &SnsMessage) -> Result<Vec<ProviderEvent>, Refusal> {
    let ses: Value = serde_json::from_str(&sns.message)
        .map_err(|e| Refusal::bad_field("Message", format!("not an SES notification: {e}")))?;
    let kind = text(&ses, "notificationType").or_else(|| text(&ses, "eventType"));
    let message_id = message_id(&ses);
    let base = |address: String, action, provider_type: String, verdict| ProviderEvent {
        provider: Provider::Ses,
        event_id: sns.message_id.clone(),
        action,
        address,
        status: None,
        diagnostic: None,
        message_id: message_id.clone(),
        provider_type,
        verdict,
    };
    match kind.as_deref() {
        Some("Bounce") => {
            let bounce = ses.get("bounce").unwrap_or(&Value::Null);
            let bounce_type = text(bounce, "bounceType").unwrap_or_default();
            let sub_type = text(bounce, "bounceSubType").unwrap_or_default();
            let verdict = bounce_verdict(&bounce_type, &sub_type);
            let provider_type = format!("{bounce_type}/{sub_type}");
            Ok(recipients(bounce, "bouncedRecipients")
                .map(|r| {
                    let mut event = base(
                        text(r, "emailAddress").unwrap_or_default(),
                        Action::Failed,
                        provider_type.clone(),
                        verdict,
                    );
                    event.status = text(r, "status");
                    event.diagnostic = text(r, "diagnosticCode");
                    event
                })
                .collect())
        }
        Some("Complaint") => {
            let complaint = ses.get("complaint").unwrap_or(&Value::Null);
            let feedback = text(complaint, "complaintFeedbackType").unwrap_or("abuse".into());
            Ok(recipients(complaint, "complainedRecipients")
                .map(|r| {
                    base(
                        text(r, "emailAddress").unwrap_or_default(),
                        Action::Complaint,
                        format!("Complaint/{feedback}"),
                        Verdict::Classify,
                    )
                })
                .collect())
        }
        _ => Ok(Vec::new()),
    }
}

/// How far SES's bounce type goes: a permanent bounce that says the address does not exist
/// (or SES already suppresses it) is hard unless the reply says otherwise; a transient or
/// undetermined one is never hard.
fn bounce_verdict(bounce_type: &str, sub_type: &str) -> Verdict {
    match (bounce_type, sub_type) {
        ("Permanent", "General" | "NoEmail" | "Suppressed" | "OnAccountSuppressionList") => {
            Verdict::Hard
        }
        ("Permanent", _) => Verdict::Classify,
        _ => Verdict::Soft,
    }
}

/// The objects of the array `key` of `value`, at most [`MAX_EVENTS`].
fn recipients<'v>(value: &'v Value, key: &str) -> impl Iterator<Item = &'v Value> {
    value
        .get(key)
        .and_then(Value::as_array)
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .take(MAX_EVENTS)
}

/// The original message's `Message-ID`: `mail.commonHeaders.messageId`, else the
/// `Message-ID` among `mail.headers`.
fn message_id(ses: &Value) -> Option<String> {
    let mail = ses.get("mail")?;
    let common = mail.get("commonHeaders").and_then(|h| text(h, "messageId"));
    let header = || {
        mail.get("headers")?
            .as_array()?
            .iter()
            .find(|h| text(h, "name").is_some_and(|n| n.eq_ignore_ascii_case("message-id")))
            .and_then(|h| text(h, "value"))
    };
    common.or_else(header).as_deref().and_then(clean_message_id)
}

#[cfg(test)]
#[path = "ses_tests.rs"]
mod tests;
