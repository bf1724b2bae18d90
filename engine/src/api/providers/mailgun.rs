//! Mailgun's webhooks at `POST /api/providers/mailgun`: a JSON body `{"signature":
//! {"timestamp", "token", "signature"}, "event-data": {…}}` where `signature` is the hex
//! HMAC-SHA256 of timestamp followed by token under the signing key of `[providers.mailgun]`.
//! A timestamp more than five minutes from now is refused, and so is a token used before
//! (the caller keeps them, see [`Signed::token`]). `failed` events (severity `permanent` or
//! `temporary`) and `complained` events are taken; others are ignored.

use secrecy::ExposeSecret;
use serde_json::Value;

use super::error::Refusal;
use super::event::{clean_message_id, id_text, text, Provider, ProviderEvent, Verdict};
use super::verify;
use crate::bounce::Action;
use crate::config::MailgunSettings;
use crate::model::Millis;

/// An authenticated Mailgun request: its one-time token and its report, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Signed {
    /// The signature's token: refused when seen again.
    pub(crate) token: String,
    /// The bounce or complaint the event reports (none for other events).
    pub(crate) event: Option<ProviderEvent>,
}

/// Authenticates a Mailgun webhook request and reads its event.
pub(crate) fn receive(
    settings: &MailgunSettings,
    body: &[u8],
    now: Millis,
) -> Result<Signed, Refusal> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        Refusal::bad_body(format!(
            "not a Mailgun webhook (JSON with signature and event-data): {e}"
        ))
    })?;
    let signature = value.get("signature").unwrap_or(&Value::Null);
    let field = |key: &str| {
        id_text(signature, key)
            .ok_or_else(|| Refusal::bad_signature(format!("signature.{key} is missing")))
    };
    let (timestamp, token, tag) = (field("timestamp")?, field("token")?, field("signature")?);
    if token.len() > 256 {
        return Err(Refusal::bad_signature("signature.token is too long"));
    }
    let signed = format!("{timestamp}{token}");
    let key = settings.signing_key.expose_secret().as_bytes();
    if !verify::hmac_sha256_hex(key, signed.as_bytes(), &tag) {
        return Err(Refusal::bad_signature(
            "signature.signature does not verify with the [providers.mailgun] signing key",
        ));
    }
    let fresh = timestamp
        .parse::<i64>()
        .is_ok_and(|t| verify::fresh(t, now));
    if !fresh {
        return Err(Refusal::forbidden(format!(
            "signature.timestamp {timestamp} is more than five minutes from the server's time"
        )));
    }
    let data = value
        .get("event-data")
        .ok_or_else(|| Refusal::bad_field("event-data", "missing"))?;
    Ok(Signed {
        token,
        event: event(data),
    })
}

/// The report of one `event-data`, if it is a failure or a complaint.
fn event(data: &Value) -> Option<ProviderEvent> {
    let kind = text(data, "event")?;
    let status = data.get("delivery-status").unwrap_or(&Value::Null);
    let (action, verdict, provider_type) = match kind.as_str() {
        "failed" => {
            let severity = text(data, "severity").unwrap_or_default();
            let reason = text(data, "reason").unwrap_or_default();
            let (action, verdict) = match (severity.as_str(), reason.as_str()) {
                ("temporary", _) => (Action::Delayed, Verdict::Soft),
                (_, "suppress-complaint") => (Action::Complaint, Verdict::Classify),
                (_, "bounce" | "suppress-bounce") => (Action::Failed, Verdict::Hard),
                _ => (Action::Failed, Verdict::Classify),
            };
            (action, verdict, format!("failed/{severity}/{reason}"))
        }
        "complained" => (Action::Complaint, Verdict::Classify, kind.clone()),
        _ => return None,
    };
    let address = text(data, "recipient")?;
    let diagnostic = diagnostic(status);
    let message_id = data
        .get("message")
        .and_then(|m| m.get("headers"))
        .and_then(|h| text(h, "message-id"))
        .as_deref()
        .and_then(clean_message_id);
    Some(ProviderEvent {
        provider: Provider::Mailgun,
        event_id: id_text(data, "id").unwrap_or_else(|| {
            format!(
                "{address}:{kind}:{}",
                id_text(data, "timestamp").unwrap_or_default()
            )
        }),
        action,
        address,
        status: text(status, "enhanced-code"),
        diagnostic,
        message_id,
        provider_type,
        verdict,
    })
}

/// The remote server's reply as Mailgun gives it: its code and message, else Mailgun's own
/// description.
fn diagnostic(status: &Value) -> Option<String> {
    let code = id_text(status, "code");
    let message = text(status, "message").or_else(|| text(status, "description"));
    match (code, message) {
        (Some(code), Some(message)) if !message.starts_with(&code) => {
            Some(format!("{code} {message}"))
        }
        (_, Some(message)) => Some(message),
        (Some(code), None) => Some(code),
        (None, None) => None,
    }
}

#[cfg(test)]
#[path = "mailgun_tests.rs"]
mod tests;
