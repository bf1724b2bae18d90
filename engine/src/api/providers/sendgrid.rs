//! SendGrid's signed Event Webhook at `POST /api/providers/sendgrid`: a JSON array of
//! events, signed with ECDSA P-256 over the `X-Twilio-Email-Event-Webhook-Timestamp` value
//! followed by the raw body (`X-Twilio-Email-Event-Webhook-Signature`, base64 DER), checked
//! with the verification key of `[providers.sendgrid] public_key_file`. A timestamp more
//! than five minutes from now is refused. `bounce` (type `bounce` or `blocked`), `dropped`
//! and `spamreport` events are taken; every other event is ignored.

use axum::http::HeaderMap;
use serde_json::Value;

use super::error::Refusal;
use super::event::{clean_message_id, id_text, text, Provider, ProviderEvent, Verdict, MAX_EVENTS};
use super::verify;
use crate::bounce::Action;
use crate::config::SendgridSettings;
use crate::model::Millis;

/// The header carrying the signature.
pub(crate) const SIGNATURE_HEADER: &str = "x-twilio-email-event-webhook-signature";
/// The header carrying the signed timestamp (Unix seconds).
pub(crate) const TIMESTAMP_HEADER: &str = "x-twilio-email-event-webhook-timestamp";

/// Authenticates a SendGrid webhook request and reads the bounce and complaint events in it.
pub(crate) fn receive(
    settings: &SendgridSettings,
    headers: &HeaderMap,
    body: &[u8],
    now: Millis,
) -> Result<Vec<ProviderEvent>, Refusal> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Refusal::bad_signature(format!("the {name} header is missing")))
    };
    let signature = header(SIGNATURE_HEADER)?;
    let timestamp = header(TIMESTAMP_HEADER)?;
    let signature = verify::base64(signature)
        .ok_or_else(|| Refusal::bad_signature(format!("{SIGNATURE_HEADER} is not base64")))?;
    let mut signed = Vec::with_capacity(timestamp.len() + body.len());
    signed.extend_from_slice(timestamp.as_bytes());
    signed.extend_from_slice(body);
    if !verify::ecdsa_p256(&settings.public_key, &signed, &signature) {
        return Err(Refusal::bad_signature(
            "the signature does not verify with [providers.sendgrid] public_key_file",
        ));
    }
    let fresh = timestamp
        .parse::<i64>()
        .is_ok_and(|t| verify::fresh(t, now));
    if !fresh {
        return Err(Refusal::forbidden(format!(
            "{TIMESTAMP_HEADER} {timestamp} is more than five minutes from the server's time"
        )));
    }
    let events: Vec<Value> = serde_json::from_slice(body)
        .map_err(|e| Refusal::bad_body(format!("not a JSON array of SendGrid events: {e}")))?;
    Ok(events.iter().filter_map(event).take(MAX_EVENTS).collect())
}

/// One SendGrid event as a report, if it is a bounce, drop or spam report.
fn event(value: &Value) -> Option<ProviderEvent> {
    let kind = text(value, "event")?;
    let (action, verdict, provider_type) = match kind.as_str() {
        "bounce" => {
            let sub = text(value, "type").unwrap_or_else(|| "bounce".to_owned());
            let verdict = if sub == "blocked" {
                Verdict::Soft
            } else {
                Verdict::Hard
            };
            (Action::Failed, verdict, format!("bounce/{sub}"))
        }
        "dropped" => {
            let reason = text(value, "reason").unwrap_or_default();
            let (action, verdict) = dropped(&reason);
            (action, verdict, format!("dropped/{reason}"))
        }
        "spamreport" => (Action::Complaint, Verdict::Classify, kind.clone()),
        _ => return None,
    };
    let address = text(value, "email")?;
    // Events SendGrid sends unsigned by id still differ by time and kind.
    let event_id = id_text(value, "sg_event_id").unwrap_or_else(|| {
        format!(
            "{}:{}:{}",
            id_text(value, "sg_message_id").unwrap_or_default(),
            kind,
            id_text(value, "timestamp").unwrap_or_default()
        )
    });
    let diagnostic = match action {
        Action::Complaint => None,
        _ => text(value, "reason"),
    };
    Some(ProviderEvent {
        provider: Provider::Sendgrid,
        event_id,
        action,
        address,
        status: text(value, "status"),
        diagnostic,
        message_id: text(value, "smtp-id").as_deref().and_then(clean_message_id),
        provider_type,
        verdict,
    })
}

/// What a `dropped` event's reason means: SendGrid did not send because the address bounced
/// before or is invalid (hard), was reported for spam (a complaint), or for some other
/// reason of its own (unsubscribed, content…: not delivered, soft).
fn dropped(reason: &str) -> (Action, Verdict) {
    let lower = reason.to_ascii_lowercase();
    if lower.contains("spam reporting") {
        (Action::Complaint, Verdict::Classify)
    } else if lower.contains("bounced address") || lower == "invalid" {
        (Action::Failed, Verdict::Hard)
    } else {
        (Action::Failed, Verdict::Soft)
    }
}

#[cfg(test)]
#[path = "sendgrid_tests.rs"]
mod tests;
