//! Reports that arrive already taken apart: a sending provider's bounce or complaint
//! webhook names the recipient, the status code and the remote server's reply as fields.
//! They are classified exactly as a DSN's per-recipient block is (same code search in the
//! reply text, same rules, same hard/soft verdict), and stored in the same form.

use super::classify::{Classification, Classifier};
use super::dsn::{classify, text, Action, BouncedRecipient};
use crate::model::{Category, ReplyRecord};

/// What a provider reported about one recipient, before classification.
#[derive(Debug, Clone, Copy)]
pub struct Reported<'a> {
    /// The recipient address.
    pub address: &'a str,
    /// What happened: [`Action::Failed`], [`Action::Delayed`] or [`Action::Complaint`].
    pub action: Action,
    /// The enhanced status code given by the provider (`5.1.1`), if any.
    pub status: Option<&'a str>,
    /// The remote server's reply or the provider's diagnostic (`smtp; 550 5.1.1 …`), if any.
    pub diagnostic: Option<&'a str>,
    /// The provider's name for where the report came from (`dns;` and the like stripped).
    pub remote_mta: Option<&'a str>,
}

impl Reported<'_> {
    /// Classifies the report as a DSN's recipient block with the same fields would be.
    /// `None` when the address is not a usable address.
    pub fn classify(&self, classifier: &Classifier) -> Option<BouncedRecipient> {
        let address = text::normalize_address(self.address)?;
        let clean = |v: Option<&str>| {
            v.map(|v| text::strip_type(v).trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let status = self.status.and_then(text::parse_status);
        let diagnostic = clean(self.diagnostic);
        let remote_mta = clean(self.remote_mta);
        let (category, hard) = if self.action == Action::Complaint {
            (Category::Other, true)
        } else {
            let found = diagnostic.as_deref().and_then(text::find_code);
            let code = found.as_ref().and_then(|f| f.code);
            let enhanced = status.clone().or_else(|| found.and_then(|f| f.enhanced));
            classify(
                classifier,
                self.action,
                code,
                enhanced.as_deref(),
                diagnostic.as_deref(),
            )
        };
        Some(BouncedRecipient {
            address,
            original_recipient: None,
            action: self.action,
            status,
            diagnostic,
            remote_mta,
            category,
            hard,
        })
    }
}

impl BouncedRecipient {
    /// The stored form of this recipient's failure: the reply text (the diagnostic, else the
    /// status), its basic code when the text carries one, and the classifier's verdict;
    /// `hard` only when it blames the address.
    pub fn reply_record(&self) -> ReplyRecord {
        let text = self
            .diagnostic
            .clone()
            .or_else(|| self.status.clone())
            .unwrap_or_else(|| "reported".to_owned());
        let code = text
            .split(|c: char| !c.is_ascii_digit())
            .find(|part| part.len() == 3)
            .and_then(|part| part.parse::<u16>().ok())
            .filter(|code| (200..600).contains(code));
        ReplyRecord {
            code,
            enhanced: self.status.clone(),
            text,
            category: Some(self.category),
            hard: Classification {
                category: self.category,
                hard: self.hard,
            }
            .blames_recipient(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed<'a>(status: Option<&'a str>, diagnostic: Option<&'a str>) -> Reported<'a> {
        Reported {
            address: "Someone@Example.COM",
            action: Action::Failed,
            status,
            diagnostic,
            remote_mta: None,
        }
    }

    #[test]
    fn a_reported_failure_is_classified_like_a_dsn_block() {
        let classifier = Classifier::builtin();
        let cases = [
            (
                failed(Some("5.1.1"), Some("smtp; 550 5.1.1 user unknown")),
                Category::InvalidRecipient,
                true,
            ),
            (
                failed(None, Some("550 5.1.1 <a@b>: Recipient address rejected")),
                Category::InvalidRecipient,
                true,
            ),
            (
                failed(Some("5.2.2"), Some("552 5.2.2 mailbox full")),
                Category::MailboxFull,
                false,
            ),
        ];
        for (reported, category, hard) in cases {
            let recipient = reported.classify(&classifier).unwrap();
            assert_eq!(recipient.address, "Someone@example.com");
            assert_eq!((recipient.category, recipient.hard), (category, hard));
        }
    }

    #[test]
    fn a_delay_is_never_hard_and_a_complaint_always_is() {
        let classifier = Classifier::builtin();
        let mut delayed = failed(Some("5.1.1"), Some("550 5.1.1 user unknown"));
        delayed.action = Action::Delayed;
        assert!(!delayed.classify(&classifier).unwrap().hard);
        let complaint = Reported {
            action: Action::Complaint,
            ..failed(None, None)
        };
        let recipient = complaint.classify(&classifier).unwrap();
        assert!(recipient.hard);
        assert_eq!(recipient.action, Action::Complaint);
    }

    #[test]
    fn a_bad_address_gives_nothing() {
        let reported = Reported {
            address: "not an address",
            ..failed(None, None)
        };
        assert!(reported.classify(&Classifier::builtin()).is_none());
    }

    #[test]
    fn the_reply_record_keeps_code_status_and_verdict() {
        let recipient = failed(Some("5.1.1"), Some("smtp; 550 5.1.1 user unknown"))
            .classify(&Classifier::builtin())
            .unwrap();
        let reply = recipient.reply_record();
        assert_eq!(reply.code, Some(550));
        assert_eq!(reply.enhanced.as_deref(), Some("5.1.1"));
        assert_eq!(reply.text, "550 5.1.1 user unknown");
        assert!(reply.hard);
    }
}
