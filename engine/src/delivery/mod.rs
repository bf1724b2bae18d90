//! Delivery: SMTP sessions to each destination, many messages per connection, within the
//! destination's limits, and the mapping of each reply to an [`Outcome`].
//!
//! A destination ([`Destination`]) is the relay, or the MX hosts shared by one or more
//! recipient domains ([`MxResolver`] finds them). The scheduler fills each destination's
//! [`ReadyQueue`] with composed messages and starts connection tasks ([`run_connection`]) as
//! its queue and limits call for. A connection keeps its session across messages, paces them
//! (destination and global rates, a relay's hourly and daily caps), reports every attempt as
//! a [`Settled`] value, feeds throttling replies to the destination's back-off, and closes
//! after `max_messages_per_connection`, when idle, or when the server says 421.
//!
//! Replies that say the receiver blocks the *sender* (a blocklist, reputation, a spam
//! verdict, a 5.7.x policy refusal) go to the destination's circuit breaker (`watch`): the
//! recipient is deferred rather than bounced, and past the breaker's threshold the
//! destination is suspended and its queue handed back.
//!
//! A reply is a value ([`Outcome`]); only failures that no retry can fix at the relay
//! (authentication, an untrusted certificate, a relay that stays out of reach) end delivery
//! with a [`DeliveryError`]. With several relays (`[[relay]]`) such a failure takes that
//! relay out instead ([`DeliveryEvent::RelayDown`], its queue released to the others); the
//! error ends delivery only once every relay is out. An MX destination none of whose hosts answers has its queued
//! messages deferred and is tried again after a pause.

mod connection_task;
mod destination;
mod dial;
mod error;
mod mta_sts;
mod mx;
mod source;
mod throttle;
mod token;
mod watch;

pub use connection_task::{run_connection, DeliveryContext, DeliveryEvent};
pub use destination::{Destination, ReadyQueue, RelayPart, Route, LANES};
pub use dial::{open_direct, MxConnect};
pub use error::DeliveryError;
pub use mta_sts::{MtaSts, Policy, StsCheck, StsMode};
pub use mx::{MxAnswer, MxHost, MxResolver, Resolved, TxtAnswer};
pub use source::{add_counts as add_source_counts, probe as probe_source, SourceCount, Sources};
pub use throttle::{is_throttling, read_reply, Reading, Stage};
pub use token::TokenCache;
pub(crate) use token::{connect_relay, RelayDialError};
pub use watch::blocked_before;

use crate::bounce::Classifier;
use crate::model::{Outcome, ReplyRecord};
use crate::smtp::{Envelope, Reply};
use crate::store::{OutcomeUpdate, RecipientKey};

/// A composed, signed message ready to go to one recipient.
#[derive(Debug)]
pub struct ReadyMessage {
    /// The campaign it belongs to (its index in the running send).
    pub campaign: usize,
    /// Its campaign's priority, 1 (most urgent) to 5.
    pub priority: u8,
    /// Which recipient, for the outcome.
    pub key: RecipientKey,
    /// Envelope sender and recipient.
    pub envelope: Envelope,
    /// The message bytes, DKIM signature included.
    pub bytes: Vec<u8>,
    /// Its Message-ID, without angle brackets.
    pub message_id: String,
    /// True when the recipient's last attempt was refused because the sender is blocked
    /// (a 5xx the bounce rules say blames the sender): refused so again while the
    /// destination's breaker is closed, it is bounced rather than deferred once more.
    pub blocked_before: bool,
}

/// What became of one recipient handed to delivery (or to the compose stage before it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// An outcome to record.
    Outcome {
        /// The campaign's index in the running send.
        campaign: usize,
        /// The destination it went to, when it had one.
        destination: Option<usize>,
        /// The outcome.
        update: OutcomeUpdate,
    },
    /// Not attempted after all (its destination was suspended or a relay cap was reached):
    /// the recipient keeps its state and is fed again later.
    Released {
        /// The campaign's index in the running send.
        campaign: usize,
        /// The destination it was queued for.
        destination: Option<usize>,
        /// The recipient.
        key: RecipientKey,
    },
}

impl Settled {
    /// The campaign index and recipient this is about.
    pub fn recipient(&self) -> (usize, &RecipientKey) {
        match self {
            Settled::Outcome {
                campaign, update, ..
            } => (*campaign, &update.key),
            Settled::Released { campaign, key, .. } => (*campaign, key),
        }
    }

    /// The destination this recipient was queued for, if any.
    pub fn destination(&self) -> Option<usize> {
        match self {
            Settled::Outcome { destination, .. } | Settled::Released { destination, .. } => {
                *destination
            }
        }
    }
}

/// Maps the reply that decided a recipient to its outcome, classifying failures.
pub fn outcome_of(reply: &Reply, classifier: &Classifier) -> Outcome {
    let mut record = reply_record(reply);
    if !reply.is_positive() {
        let class = classifier.classify(Some(reply.code), record.enhanced.as_deref(), &reply.text);
        record.category = Some(class.category);
        record.hard = reply.is_permanent() && class.blames_recipient();
    }
    if reply.is_positive() {
        Outcome::Delivered { reply: record }
    } else if reply.is_permanent() {
        Outcome::Bounced { reply: record }
    } else {
        Outcome::Deferred { reply: record }
    }
}

/// A failure decided here rather than by a server reply (DNS says the domain takes no mail,
/// no host answered): `enhanced` and `text` are classified like a reply; a 5.x.x code is a
/// bounce, anything else a deferral.
pub fn local_outcome(enhanced: &str, text: String, classifier: &Classifier) -> Outcome {
    let class = classifier.classify(None, Some(enhanced), &text);
    let permanent = enhanced.starts_with('5');
    let reply = ReplyRecord {
        code: None,
        enhanced: Some(enhanced.to_owned()),
        text,
        category: Some(class.category),
        hard: permanent && class.blames_recipient(),
    };
    if permanent {
        Outcome::Bounced { reply }
    } else {
        Outcome::Deferred { reply }
    }
}

/// Converts an SMTP reply into the stored form.
pub fn reply_record(reply: &Reply) -> ReplyRecord {
    ReplyRecord {
        code: Some(reply.code),
        enhanced: reply.enhanced.as_ref().map(ToString::to_string),
        text: reply.text.clone(),
        category: None,
        hard: false,
    }
}
