//! Which replies mean "slow down": they feed a destination's adaptive back-off.

use crate::model::{Category, ReplyRecord};

/// Reply texts that mean "slow down" whatever their code (lowercase substrings).
const SLOW_DOWN: [&str; 9] = [
    "rate limit",
    "ratelimit",
    "rate-limit",
    "too many",
    "slow down",
    "throttl",
    "unusual rate",
    "unexpected volume",
    "try again later, closing",
];

/// True when `reply` asks the sender to slow down: any 421, a reply whose text says so (the
/// built-in phrases and the destination's `throttle_replies`), or one classified as throttling
/// except greylisting (a per-recipient delay that says nothing about the sending pace, often
/// `451 4.7.1`).
pub fn is_throttling(reply: &ReplyRecord, extra: &[String]) -> bool {
    if reply.code == Some(421) {
        return true;
    }
    let text = reply.text.to_lowercase();
    if SLOW_DOWN.iter().any(|p| text.contains(p)) || extra.iter().any(|p| text.contains(p)) {
        return true;
    }
    let greylisting = text.contains("greylist") || text.contains("graylist");
    let generic_policy = reply
        .enhanced
        .as_deref()
        .is_some_and(|code| code.ends_with(".7.1"));
    reply.category == Some(Category::Throttled) && !greylisting && !generic_policy
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16, enhanced: &str, text: &str, category: Category) -> ReplyRecord {
        ReplyRecord {
            code: Some(code),
            enhanced: (!enhanced.is_empty()).then(|| enhanced.to_owned()),
            text: text.to_owned(),
            category: Some(category),
            hard: false,
        }
    }

    #[test]
    fn slow_down_replies_are_recognised() {
        use Category::*;
        let extra = vec!["please wait a bit".to_owned()];
        let cases = [
            (reply(421, "4.7.0", "closing", Throttled), true),
            (reply(421, "", "Service not available", Other), true),
            (reply(450, "4.2.1", "The user you are trying to contact is receiving mail at a rate that prevents additional messages", Throttled), true),
            (reply(451, "4.7.500", "Server busy. Please try again later", Throttled), true),
            (reply(452, "4.5.3", "Too many recipients", Throttled), true),
            (reply(451, "4.7.1", "yahoo.com: rate limited, try again later", Throttled), true),
            (reply(450, "4.7.0", "too many messages, slow down", Throttled), true),
            (reply(451, "4.3.0", "Please wait a bit", Other), true),
            (reply(451, "4.7.1", "try again later", Throttled), false),
            (reply(451, "4.7.1", "Greylisting in action, please come back later", Throttled), false),
            (reply(450, "4.2.2", "mailbox full", MailboxFull), false),
            (reply(550, "5.1.1", "user unknown", InvalidRecipient), false),
            (reply(250, "2.0.0", "ok", Other), false),
        ];
        for (reply, want) in cases {
            assert_eq!(is_throttling(&reply, &extra), want, "{reply}");
        }
    }
}
