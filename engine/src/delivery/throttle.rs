//! Reading a failed reply for what it says to the sender: retry one recipient, reconnect, or
//! slow down. Only the last feeds a destination's adaptive back-off.
//!
//! Whether a reply is rate limiting is the bounce rules' call (category `throttled`, tunable
//! in TOML), plus the destination's `throttle_replies` texts; *where* it came decides whether
//! that matters:
//!
//! - a 4xx to RCPT (greylisting, a busy mailbox) or to DATA defers that message only;
//! - a 421 closing the session is throttling when the rules say so (`421 4.7.0 rate limit`),
//!   otherwise the server ending this connection (a per-connection message cap, a restart):
//!   reconnect;
//! - a reply to MAIL classified as throttling slows the destination down.

use crate::model::{Category, ReplyRecord};
use crate::smtp::Transaction;

/// Where in the transaction the deciding reply came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The reply to MAIL FROM.
    Mail,
    /// The reply to this recipient's RCPT TO.
    Rcpt,
    /// The reply to DATA or to the message (after the final dot, or BDAT).
    Data,
    /// A 421 that closed the session, whichever command it answered.
    Closed,
}

impl Stage {
    /// The stage of the reply that decides recipient `index` of `transaction`.
    pub fn of(transaction: &Transaction, index: usize) -> Stage {
        let reply = transaction.outcome_for(index);
        if reply.code == 421 {
            Stage::Closed
        } else if !transaction.mail_from.is_positive() {
            Stage::Mail
        } else if transaction
            .recipients
            .get(index)
            .and_then(Option::as_ref)
            .is_some_and(|rcpt| !rcpt.is_positive())
        {
            Stage::Rcpt
        } else {
            Stage::Data
        }
    }
}

/// What a failed reply asks of the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// Retry (or bounce) this message only; the pace is fine.
    ThisMessage,
    /// The server closed the connection without blaming the pace: reconnect.
    Reconnect,
    /// Rate limiting: slow the destination down.
    SlowDown,
}

/// Reads a failed reply that came at `stage`; `extra` are the destination's
/// `throttle_replies` (lowercase substrings).
pub fn read_reply(reply: &ReplyRecord, stage: Stage, extra: &[String]) -> Reading {
    let throttling = is_throttling(reply, extra);
    match stage {
        Stage::Rcpt | Stage::Data => Reading::ThisMessage,
        Stage::Closed if throttling => Reading::SlowDown,
        Stage::Closed => Reading::Reconnect,
        Stage::Mail if throttling => Reading::SlowDown,
        Stage::Mail => Reading::ThisMessage,
    }
}

/// True when the bounce rules classify `reply` as throttling, or its text contains one of
/// `extra` (the destination's `throttle_replies`).
pub fn is_throttling(reply: &ReplyRecord, extra: &[String]) -> bool {
    if reply.category == Some(Category::Throttled) {
        return true;
    }
    let text = reply.text.to_lowercase();
    extra.iter().any(|p| text.contains(p.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bounce::Classifier;
    use crate::delivery::outcome_of;
    use crate::smtp::parse_reply_bytes;

    fn classified(code: u16, enhanced: &str, text: &str) -> ReplyRecord {
        let line = format!("{code} {enhanced} {text}\r\n").replace("  ", " ");
        let (reply, _) = parse_reply_bytes(line.as_bytes()).unwrap().unwrap();
        outcome_of(&reply, &Classifier::builtin()).reply().clone()
    }

    #[test]
    fn replies_are_read_for_what_they_say() {
        use Reading::*;
        use Stage::*;
        let extra = vec!["please wait a bit".to_owned()];
        #[rustfmt::skip]
        let cases = [
            (Rcpt, 451, "4.7.1", "Greylisted, please try again later", ThisMessage),
            (Rcpt, 450, "4.2.1", "Mailbox busy, try again later", ThisMessage),
            (Rcpt, 452, "4.5.3", "Too many recipients", ThisMessage),
            (Data, 451, "4.3.0", "Temporary failure, try again", ThisMessage),
            (Data, 451, "4.7.1", "rate limited", ThisMessage),
            (Closed, 421, "4.7.0", "Too many messages on this connection", Reconnect),
            (Closed, 421, "4.7.0", "Message limit reached", Reconnect),
            (Closed, 421, "4.7.0", "Rate limit exceeded, closing", SlowDown),
            (Closed, 421, "4.7.0", "Too many connections, slow down", SlowDown),
            (Closed, 421, "", "Service not available", SlowDown),
            (Mail, 451, "4.7.1", "yahoo.com: rate limited, try again later", SlowDown),
            (Mail, 450, "4.7.0", "too many messages, slow down", SlowDown),
            (Mail, 451, "4.3.0", "Please wait a bit", SlowDown),
            (Mail, 451, "4.3.0", "Local error in processing", ThisMessage),
            (Mail, 550, "5.1.8", "sender domain does not exist", ThisMessage),
        ];
        for (stage, code, enhanced, text, want) in cases {
            let reply = classified(code, enhanced, text);
            assert_eq!(read_reply(&reply, stage, &extra), want, "{stage:?} {reply}");
        }
    }
}
