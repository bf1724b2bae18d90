//! What every provider's webhook is turned into: one [`ProviderEvent`] per recipient of a
//! bounce or complaint, classified like a DSN's recipient block ([`crate::bounce::Reported`])
//! and then weighed against the provider's own verdict.

use serde::Serialize;

use crate::bounce::{Action, BouncedRecipient, Classifier, Reported};
use crate::model::Category;

/// The most recipients taken from one notification or batch (as from one DSN).
pub(crate) const MAX_EVENTS: usize = 500;

/// The sending providers whose webhooks are taken in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// Amazon SES, through an SNS topic.
    Ses,
    /// SendGrid's Event Webhook.
    Sendgrid,
    /// Mailgun's webhooks.
    Mailgun,
    /// Postmark's bounce and spam complaint webhooks.
    Postmark,
}

impl Provider {
    /// The lowercase name, as in the path and the serve file (`ses`, `sendgrid`…).
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Ses => "ses",
            Provider::Sendgrid => "sendgrid",
            Provider::Mailgun => "mailgun",
            Provider::Postmark => "postmark",
        }
    }
}

/// How far the provider's own word on a failure goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The provider says the address is bad for good (SES `Permanent`/`NoEmail`, Postmark
    /// `HardBounce`…): when the classifier cannot place the failure (no code or text it
    /// knows, category `other`), it is taken as an unknown user, hard; a reason the
    /// classifier does know stands.
    Hard,
    /// The provider says the failure is temporary or not about the address (SES
    /// `Transient`, SendGrid `blocked`): never hard, whatever the text.
    Soft,
    /// The classifier alone decides, as for a DSN.
    Classify,
}

/// One provider report about one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderEvent {
    /// Who sent it.
    pub provider: Provider,
    /// The provider's id of the notification or event (SNS `MessageId`, SendGrid
    /// `sg_event_id`, Mailgun `id`, Postmark `ID`): a replay with the same id changes nothing.
    pub event_id: String,
    /// What happened: [`Action::Failed`], [`Action::Delayed`] or [`Action::Complaint`].
    pub action: Action,
    /// The recipient address.
    pub address: String,
    /// The enhanced status code, when the provider gives one.
    pub status: Option<String>,
    /// The remote server's reply or the provider's diagnostic, when given.
    pub diagnostic: Option<String>,
    /// The `Message-ID` of the message it is about (without `<>`), when the payload has it.
    pub message_id: Option<String>,
    /// The provider's own type words (`Permanent/General`, `bounce/blocked`, `HardBounce`),
    /// for the event's source.
    pub provider_type: String,
    /// How far the provider's verdict goes.
    pub verdict: Verdict,
}

impl ProviderEvent {
    /// The recipient as a DSN block with the same fields would give it, adjusted by
    /// [`ProviderEvent::verdict`]; `None` when the address is unusable.
    pub fn classify(&self, classifier: &Classifier) -> Option<BouncedRecipient> {
        let reported = Reported {
            address: &self.address,
            action: self.action,
            status: self.status.as_deref(),
            diagnostic: self.diagnostic.as_deref(),
            remote_mta: None,
        };
        let mut recipient = reported.classify(classifier)?;
        if self.action != Action::Failed {
            return Some(recipient);
        }
        match self.verdict {
            Verdict::Hard if recipient.category == Category::Other => {
                recipient.category = Category::InvalidRecipient;
                recipient.hard = true;
            }
            Verdict::Hard | Verdict::Classify => {}
            Verdict::Soft => recipient.hard = false,
        }
        Some(recipient)
    }
}

/// Cleans a `Message-ID` as found in a payload: `<>` and blanks removed; `None` if empty.
pub(crate) fn clean_message_id(raw: &str) -> Option<String> {
    let id = raw
        .split_whitespace()
        .next()?
        .trim_start_matches('<')
        .trim_end_matches('>');
    (!id.is_empty() && id.len() <= 998).then(|| id.to_owned())
}

/// A JSON string field, trimmed, `None` when absent, not a string or empty.
pub(crate) fn text(value: &serde_json::Value, key: &str) -> Option<String> {
    value
        .get(key)
        .and_then(serde_json::Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// A JSON id field that may be a string or a number, as text.
pub(crate) fn id_text(value: &serde_json::Value, key: &str) -> Option<String> {
    match value.get(key)? {
        serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(action: Action, diagnostic: Option<&str>, verdict: Verdict) -> ProviderEvent {
        ProviderEvent {
            provider: Provider::Ses,
            event_id: "e1".to_owned(),
            action,
            address: "jane@example.com".to_owned(),
            status: None,
            diagnostic: diagnostic.map(str::to_owned),
            message_id: None,
            provider_type: "Permanent/General".to_owned(),
            verdict,
        }
    }

    #[test]
    fn the_providers_word_fills_in_only_where_the_classifier_has_none() {
        let c = Classifier::builtin();
        let bare = event(Action::Failed, None, Verdict::Hard)
            .classify(&c)
            .unwrap();
        assert_eq!(
            (bare.category, bare.hard),
            (Category::InvalidRecipient, true)
        );
        let policy = event(
            Action::Failed,
            Some("smtp; 550 5.7.1 message refused by policy"),
            Verdict::Hard,
        )
        .classify(&c)
        .unwrap();
        assert!(!policy.hard, "{policy:?}");
        let unknown = event(
            Action::Failed,
            Some("550 5.1.1 user unknown"),
            Verdict::Soft,
        )
        .classify(&c)
        .unwrap();
        assert_eq!(
            (unknown.category, unknown.hard),
            (Category::InvalidRecipient, false)
        );
        let classified = event(Action::Failed, None, Verdict::Classify)
            .classify(&c)
            .unwrap();
        assert_eq!(
            (classified.category, classified.hard),
            (Category::Other, false)
        );
    }

    #[test]
    fn message_ids_lose_their_brackets() {
        assert_eq!(clean_message_id(" <a.b@c> ").as_deref(), Some("a.b@c"));
        assert_eq!(clean_message_id("<>"), None);
    }
}
