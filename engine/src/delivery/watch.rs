//! Watching for policy blocks: a reply that says the receiver refuses the *sender* (its
//! category [`blames_sender`](crate::model::Category::blames_sender)) is counted by the
//! destination's circuit breaker, and the recipient it refused is deferred, not bounced (it
//! is not the address's fault, so it is not suppressed either).
//!
//! One exception keeps a recipient whose own mailbox refuses us from being retried until it
//! expires: refused by a block again on its next attempt while the breaker stayed closed
//! (the destination takes mail from us otherwise), it is bounced (softly, as before).

use std::time::Instant;

use super::destination::Destination;
use crate::model::{now_millis, DestinationBlock, Outcome, ReplyRecord};
use crate::shaping::BlockVerdict;
use crate::store::RecipientRecord;

/// True when `record`'s last attempt was refused with a 5xx that blames the sender.
pub fn blocked_before(record: &RecipientRecord) -> bool {
    record.last_reply.as_ref().is_some_and(|reply| {
        reply.code.is_some_and(|code| code >= 500)
            && reply.category.is_some_and(|c| c.blames_sender())
    })
}

/// What a reply meant for the breaker.
#[derive(Debug)]
pub(super) enum Watched {
    /// Not a block, or the breaker is off: the outcome stands.
    Unchanged(Outcome),
    /// A block: the outcome to record instead.
    Block(Outcome),
    /// A block that tripped the breaker: the outcome to record, and the destination is
    /// suspended until `until`.
    Tripped {
        outcome: Outcome,
        until: Instant,
        record: Box<DestinationBlock>,
    },
}

/// Feeds `outcome` of a message to `recipient` (whose last attempt was blocked too when
/// `blocked_before`) to `destination`'s breaker.
pub(super) fn watch(
    destination: &Destination,
    recipient: &str,
    blocked_before: bool,
    outcome: Outcome,
) -> Watched {
    let Some(reply) = block_reply(&outcome) else {
        return Watched::Unchanged(outcome);
    };
    if !destination.watches_blocks() {
        return Watched::Unchanged(outcome);
    }
    let was_closed = destination.breaker_closed();
    let verdict = destination.sender_blocked(recipient, reply, Instant::now(), now_millis());
    let bounce_again = blocked_before && was_closed && matches!(verdict, BlockVerdict::Counted(_));
    let outcome = match outcome {
        Outcome::Bounced { reply } if !bounce_again => Outcome::Deferred { reply },
        other => other,
    };
    match verdict {
        BlockVerdict::Tripped { until, record } => Watched::Tripped {
            outcome,
            until,
            record,
        },
        BlockVerdict::Counted(_) | BlockVerdict::AlreadyOpen => Watched::Block(outcome),
    }
}

/// The reply of a failure that blames the sender, from a server (not a local failure).
fn block_reply(outcome: &Outcome) -> Option<&ReplyRecord> {
    let (Outcome::Bounced { reply } | Outcome::Deferred { reply }) = outcome else {
        return None;
    };
    let blames_sender = reply.category.is_some_and(|c| c.blames_sender());
    (blames_sender && reply.code.is_some()).then_some(reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{MxTls, ShapingRule};
    use crate::delivery::Route;
    use crate::model::Category;

    fn destination(on: bool) -> Destination {
        let rule = ShapingRule {
            block_breaker: on,
            block_threshold: 2,
            ..ShapingRule::default()
        };
        let route = Route::Mx {
            hosts: Vec::new(),
            tls: MxTls::Opportunistic,
            sts: None,
        };
        Destination::new(0, "mx.test".into(), route, rule, "default".into())
    }

    fn reply(code: u16, category: Category) -> ReplyRecord {
        ReplyRecord {
            code: Some(code),
            enhanced: Some(format!("{}.7.1", code / 100)),
            text: "blocked using zen.spamhaus.org".into(),
            category: Some(category),
            hard: false,
        }
    }

    fn state(w: &Watched) -> crate::model::RecipientState {
        match w {
            Watched::Unchanged(o) | Watched::Block(o) => o.state(),
            Watched::Tripped { outcome, .. } => outcome.state(),
        }
    }

    #[test]
    fn a_block_is_deferred_and_counted_until_the_breaker_trips() {
        use crate::model::RecipientState::*;
        let d = destination(true);
        let bounced = |c| Outcome::Bounced {
            reply: reply(550, c),
        };
        let first = watch(&d, "a@x", false, bounced(Category::Blocked));
        assert!(matches!(first, Watched::Block(_)));
        assert_eq!(state(&first), Deferred);
        // An unknown user is no block: it bounces as ever.
        let gone = watch(&d, "b@x", false, bounced(Category::InvalidRecipient));
        assert!(matches!(gone, Watched::Unchanged(_)));
        assert_eq!(state(&gone), Bounced);
        let second = watch(&d, "c@x", false, bounced(Category::Spam));
        assert!(matches!(second, Watched::Tripped { .. }), "{second:?}");
        assert_eq!(state(&second), Deferred);
        assert!(d.blocked_until(Instant::now()).is_some());
        assert!(d.holding_block(Instant::now()).is_some());
        // Blocked again after the trip: still deferred, even if blocked before.
        let late = watch(&d, "a@x", true, bounced(Category::Blocked));
        assert_eq!(state(&late), Deferred);
    }

    #[test]
    fn a_recipient_blocked_twice_while_the_destination_takes_mail_is_bounced() {
        let d = destination(true);
        let outcome = Outcome::Bounced {
            reply: reply(550, Category::PolicyBlock),
        };
        let again = watch(&d, "a@x", true, outcome);
        assert_eq!(state(&again), crate::model::RecipientState::Bounced);
    }

    #[test]
    fn with_the_breaker_off_a_block_bounces_as_before() {
        let d = destination(false);
        let outcome = Outcome::Bounced {
            reply: reply(550, Category::Blocked),
        };
        let w = watch(&d, "a@x", false, outcome);
        assert!(matches!(w, Watched::Unchanged(_)));
        assert_eq!(state(&w), crate::model::RecipientState::Bounced);
    }

    #[test]
    fn a_blocked_last_reply_is_recognised() {
        let mut record = RecipientRecord {
            email: "a@x".into(),
            values: Vec::new(),
            line: 1,
            state: crate::model::RecipientState::Deferred,
            attempts: 1,
            first_attempt: None,
            next_attempt: None,
            last_reply: Some(reply(550, Category::Spam)),
            variant: 0,
        };
        assert!(blocked_before(&record));
        record.last_reply = Some(reply(421, Category::Blocked));
        assert!(!blocked_before(&record), "a 4xx is not a refusal");
        record.last_reply = Some(ReplyRecord::local("held back"));
        assert!(!blocked_before(&record));
    }
}
