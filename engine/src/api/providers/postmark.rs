//! Postmark's bounce and spam complaint webhooks at `POST /api/providers/postmark`,
//! authenticated the way Postmark documents: HTTP basic credentials put in the webhook URL
//! (`https://user:password@host/api/providers/postmark`), here those of
//! `[providers.postmark]`, compared in constant time. A `Bounce` record (by its `Type`) or a
//! `SpamComplaint` record is taken; other records are ignored. Postmark's payload carries no
//! `Message-ID` of the original message: a report suppresses by address.

use axum::http::{header, HeaderMap};
use secrecy::ExposeSecret;
use serde_json::Value;

use super::error::Refusal;
use super::event::{id_text, text, Provider, ProviderEvent, Verdict};
use super::verify;
use crate::bounce::Action;
use crate::config::PostmarkSettings;

/// Authenticates a Postmark webhook request and reads the report in it (the handler does
/// the two apart, so that a stranger's body is not even read).
#[cfg(test)]
pub(crate) fn receive(
    settings: &PostmarkSettings,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Option<ProviderEvent>, Refusal> {
    authenticate(settings, headers)?;
    read(body)
}

/// The report in an authenticated request's body.
pub(crate) fn read(body: &[u8]) -> Result<Option<ProviderEvent>, Refusal> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Refusal::bad_body(format!("not a Postmark webhook (JSON): {e}")))?;
    Ok(event(&value))
}

/// Checks the request's basic credentials against the configured user and password.
pub(crate) fn authenticate(
    settings: &PostmarkSettings,
    headers: &HeaderMap,
) -> Result<(), Refusal> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then_some(rest)
        })
        .and_then(verify::base64)
        .ok_or(Refusal::BadCredentials)?;
    let mut expected = format!("{}:", settings.user).into_bytes();
    expected.extend_from_slice(settings.password.expose_secret().as_bytes());
    let same = verify::same_secret(&given, &expected);
    // The expected credentials are wiped here rather than left in freed memory.
    expected.iter_mut().for_each(|b| *b = 0);
    if same {
        Ok(())
    } else {
        Err(Refusal::BadCredentials)
    }
}

/// The report of one Postmark record, if it is a bounce or a complaint that says something
/// about the address.
fn event(value: &Value) -> Option<ProviderEvent> {
    let record = text(value, "RecordType")?;
    let kind = text(value, "Type").unwrap_or_default();
    let (action, verdict) = match (record.as_str(), kind.as_str()) {
        ("SpamComplaint", _) | ("Bounce", "SpamComplaint") => {
            (Action::Complaint, Verdict::Classify)
        }
        ("Bounce", "HardBounce" | "BadEmailAddress") => (Action::Failed, Verdict::Hard),
        ("Bounce", "SoftBounce" | "Blocked" | "SpamNotification" | "VirusNotification") => {
            (Action::Failed, Verdict::Soft)
        }
        ("Bounce", "Undeliverable" | "DMARCPolicy" | "ContentRelated") => {
            (Action::Failed, Verdict::Classify)
        }
        ("Bounce", "Transient" | "DnsError") => (Action::Delayed, Verdict::Soft),
        _ => return None,
    };
    let diagnostic = match action {
        Action::Complaint => None,
        _ => text(value, "Details").or_else(|| text(value, "Description")),
    };
    Some(ProviderEvent {
        provider: Provider::Postmark,
        event_id: id_text(value, "ID").unwrap_or_else(|| {
            format!(
                "{}:{record}",
                id_text(value, "MessageID").unwrap_or_default()
            )
        }),
        action,
        address: text(value, "Email")?,
        status: None,
        diagnostic,
        message_id: None,
        provider_type: format!("{record}/{kind}"),
        verdict,
    })
}

#[cfg(test)]
#[path = "postmark_tests.rs"]
mod tests;
