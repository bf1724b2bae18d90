//! Shared value types: recipient states, delivery outcomes, per-campaign counts, and what an
//! A/B verdict compares and why (`Metric`, `Reason`).
//!
//! A leaf module: every stage speaks in these words, none of them owns them.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod category;
mod clock;
mod retry;
mod stop;
mod verdict;

pub use category::Category;
pub use clock::{Clock, ManualClock};
pub use retry::{retry_seed, RetryPolicy, DEFAULT_JITTER};
pub use stop::{CampaignStop, StopMetric};
pub use verdict::{Exceeded, Limit, Metric, Reason, VariantCount, VariantRate, Veto, Vetoed};

/// Where one accepted recipient stands. `Delivered`, `Bounced` and `Expired` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RecipientState {
    /// Accepted from the list, not yet attempted.
    Pending,
    /// Attempted, got a temporary failure; waits for its next attempt.
    Deferred,
    /// The receiving server accepted the message (2xx after DATA).
    Delivered,
    /// Permanently refused (5xx); the reply is kept.
    Bounced,
    /// Still deferred when its campaign's `expire_after` ran out.
    Expired,
    /// On the suppression list (earlier hard bounce, complaint, unsubscribe, or added by
    /// hand): never sent.
    Suppressed,
    /// Held back by a test-then-winner A/B campaign until its verdict; then pending.
    Held,
    /// Drawn into the campaign's holdout (`[ab] holdout`): never mailed, never tracked, kept
    /// to measure what sending did against not sending. Final.
    Holdout,
    /// Never sent: its campaign was cancelled (over the API) before its turn.
    Cancelled,
    /// Not attempted now: outside its local sending window (`[schedule] window` or
    /// `send_at`); due again (its `next_attempt`) when the window opens. Not a failure: no
    /// attempt is counted.
    Waiting,
}

impl RecipientState {
    /// True for states a recipient never leaves.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Delivered
                | Self::Bounced
                | Self::Expired
                | Self::Suppressed
                | Self::Holdout
                | Self::Cancelled
        )
    }

    /// The lowercase word used in status output and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Deferred => "deferred",
            Self::Delivered => "delivered",
            Self::Bounced => "bounced",
            Self::Expired => "expired",
            Self::Suppressed => "suppressed",
            Self::Held => "held",
            Self::Holdout => "holdout",
            Self::Cancelled => "cancelled",
            Self::Waiting => "waiting",
        }
    }
}

impl fmt::Display for RecipientState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Set in the stored variant of recipients sent after an A/B test's verdict (the held
/// remainder), so their counts and events stay apart from the test's: the verdict is taken
/// on the randomised test share alone.
pub const REMAINDER: u8 = 0x80;

/// The variant index of a stored variant (without the [`REMAINDER`] mark).
pub fn variant_index(stored: u8) -> u8 {
    stored & !REMAINDER
}

/// Which version of the message one recipient gets in an A/B campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignment {
    /// Sent now, with this variant (an index into the campaign's variants).
    Variant(u8),
    /// Held back until the test's verdict; `fallback` is its variant if the remainder is
    /// split by weight after all.
    Held {
        /// The variant it gets when the remainder is split.
        fallback: u8,
    },
    /// In the holdout: never sent (see [`RecipientState::Holdout`]).
    Holdout,
}

/// What a server said about one recipient, kept with its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyRecord {
    /// The three-digit SMTP code; `None` when no reply came (connection lost, timeout).
    pub code: Option<u16>,
    /// The enhanced status code (RFC 3463), such as `5.1.1`.
    pub enhanced: Option<String>,
    /// The reply text, or a description of the failure when there was no reply.
    pub text: String,
    /// Why it failed, for failures (see `bounce::Classifier`).
    pub category: Option<Category>,
    /// True when the failure says the address itself is bad (unknown, disabled, its domain
    /// gone): the address is suppressed at once. False for failures that may pass (mailbox
    /// full, temporary trouble) and for those that blame the sender or the message (policy,
    /// authentication, content, size, throttling).
    pub hard: bool,
}

impl ReplyRecord {
    /// A record for a failure that produced no SMTP reply (lost connection, timeout).
    pub fn local(text: impl Into<String>) -> Self {
        Self {
            code: None,
            enhanced: None,
            text: text.into(),
            category: None,
            hard: false,
        }
    }
}

impl fmt::Display for ReplyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(code) = self.code {
            write!(f, "{code} ")?;
        }
        if let Some(enhanced) = &self.enhanced {
            write!(f, "{enhanced} ")?;
        }
        f.write_str(&self.text)
    }
}

/// The result of one delivery attempt for one recipient: a value, not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted by the receiving server.
    Delivered {
        /// The final reply after DATA.
        reply: ReplyRecord,
    },
    /// Temporary failure: try again later (the store picks the time from the retry schedule).
    Deferred {
        /// The 4xx reply, or what went wrong locally.
        reply: ReplyRecord,
    },
    /// Permanent failure.
    Bounced {
        /// The 5xx reply.
        reply: ReplyRecord,
    },
    /// Gave up: still failing after the campaign's `expire_after`.
    Expired {
        /// The last temporary failure seen.
        reply: ReplyRecord,
    },
    /// Not sent: the address is on the suppression list.
    Suppressed {
        /// Why it is suppressed.
        reply: ReplyRecord,
    },
    /// Not sent: the campaign was cancelled before the recipient's turn.
    Cancelled {
        /// Who cancelled it, as a local reply.
        reply: ReplyRecord,
    },
    /// Not sent yet: outside the recipient's local sending window. No attempt is counted;
    /// the recipient is due again at `until`.
    Waiting {
        /// When its window opens (epoch milliseconds).
        until: Millis,
        /// A local reply saying so (not stored over the recipient's last reply).
        reply: ReplyRecord,
    },
    /// Not sent: its destination is suspended by the circuit breaker on policy blocks. The
    /// recipient is deferred until `until` (when the suspension ends), with `reply` naming the
    /// block; no attempt is counted and its expiry does not run out by it.
    Postponed {
        /// When the suspension ends (epoch milliseconds).
        until: Millis,
        /// A local reply naming the block (boxed: it keeps every outcome small).
        reply: Box<ReplyRecord>,
    },
}

impl Outcome {
    /// The state a recipient takes with this outcome.
    pub fn state(&self) -> RecipientState {
        match self {
            Self::Delivered { .. } => RecipientState::Delivered,
            Self::Deferred { .. } => RecipientState::Deferred,
            Self::Bounced { .. } => RecipientState::Bounced,
            Self::Expired { .. } => RecipientState::Expired,
            Self::Suppressed { .. } => RecipientState::Suppressed,
            Self::Cancelled { .. } => RecipientState::Cancelled,
            Self::Waiting { .. } => RecipientState::Waiting,
            Self::Postponed { .. } => RecipientState::Deferred,
        }
    }

    /// The reply (or local failure) behind this outcome.
    pub fn reply(&self) -> &ReplyRecord {
        match self {
            Self::Delivered { reply }
            | Self::Deferred { reply }
            | Self::Bounced { reply }
            | Self::Expired { reply }
            | Self::Suppressed { reply }
            | Self::Cancelled { reply }
            | Self::Waiting { reply, .. } => reply,
            Self::Postponed { reply, .. } => reply,
        }
    }
}

/// How many recipients of one campaign are in each state, plus the rows the loader refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Recipients accepted by the loader (the sum of the seven states).
    pub total: u64,
    /// Not attempted yet.
    pub pending: u64,
    /// Waiting for a retry.
    pub deferred: u64,
    /// Accepted by the receiving server.
    pub delivered: u64,
    /// Permanently refused.
    pub bounced: u64,
    /// Gave up after `expire_after`.
    pub expired: u64,
    /// Not sent: on the suppression list.
    pub suppressed: u64,
    /// Held back for the winner of an A/B test.
    pub held: u64,
    /// CSV rows skipped as invalid.
    pub invalid: u64,
    /// CSV rows skipped as duplicates of an earlier row.
    pub duplicate: u64,
    /// Kept out of the send as the holdout (`[ab] holdout`).
    #[serde(default)]
    pub holdout: u64,
    /// Never sent: the campaign was cancelled. (Both last: stores written before they
    /// existed hold the fields above only, as the sled engine reads them.)
    #[serde(default)]
    pub cancelled: u64,
    /// Valid CSV rows left out of the send by the campaign's rules (`[campaign] where`):
    /// never loaded. Last, like the two above: older stores do not have it.
    #[serde(default)]
    pub excluded: u64,
    /// Waiting for their local sending window (`[schedule] window` / `send_at`). Last, like
    /// the fields above: older stores do not have it.
    #[serde(default)]
    pub waiting: u64,
}

impl Counts {
    /// The counter for `state`, for reading.
    pub fn get(&self, state: RecipientState) -> u64 {
        match state {
            RecipientState::Pending => self.pending,
            RecipientState::Deferred => self.deferred,
            RecipientState::Delivered => self.delivered,
            RecipientState::Bounced => self.bounced,
            RecipientState::Expired => self.expired,
            RecipientState::Suppressed => self.suppressed,
            RecipientState::Held => self.held,
            RecipientState::Holdout => self.holdout,
            RecipientState::Cancelled => self.cancelled,
            RecipientState::Waiting => self.waiting,
        }
    }

    /// The counter for `state`, for changing.
    pub fn get_mut(&mut self, state: RecipientState) -> &mut u64 {
        match state {
            RecipientState::Pending => &mut self.pending,
            RecipientState::Deferred => &mut self.deferred,
            RecipientState::Delivered => &mut self.delivered,
            RecipientState::Bounced => &mut self.bounced,
            RecipientState::Expired => &mut self.expired,
            RecipientState::Suppressed => &mut self.suppressed,
            RecipientState::Held => &mut self.held,
            RecipientState::Holdout => &mut self.holdout,
            RecipientState::Cancelled => &mut self.cancelled,
            RecipientState::Waiting => &mut self.waiting,
        }
    }

    /// Moves one recipient from one state's counter to another's.
    pub fn shift(&mut self, from: RecipientState, to: RecipientState) {
        let from_count = self.get_mut(from);
        *from_count = from_count.saturating_sub(1);
        *self.get_mut(to) += 1;
    }

    /// Adds `other` to these counts.
    pub fn add(&mut self, other: &Counts) {
        self.total += other.total;
        self.pending += other.pending;
        self.deferred += other.deferred;
        self.delivered += other.delivered;
        self.bounced += other.bounced;
        self.expired += other.expired;
        self.suppressed += other.suppressed;
        self.held += other.held;
        self.cancelled += other.cancelled;
        self.invalid += other.invalid;
        self.duplicate += other.duplicate;
        self.holdout += other.holdout;
        self.excluded += other.excluded;
        self.waiting += other.waiting;
    }

    /// Recipients in a final state (the holdout included: it is never sent).
    pub fn finished(&self) -> u64 {
        self.delivered + self.bounced + self.expired + self.suppressed + self.holdout
    }
}

/// Why an address is on the suppression list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuppressionReason {
    /// A permanent failure said the address is bad.
    HardBounce,
    /// Too many soft bounces (mailbox full, expired) within the window.
    SoftBounces,
    /// The recipient complained (ARF feedback report).
    Complaint,
    /// The recipient unsubscribed.
    Unsubscribe,
    /// Added by hand or imported.
    Manual,
}

impl SuppressionReason {
    /// The snake_case name used in output and CSV files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HardBounce => "hard_bounce",
            Self::SoftBounces => "soft_bounces",
            Self::Complaint => "complaint",
            Self::Unsubscribe => "unsubscribe",
            Self::Manual => "manual",
        }
    }

    /// Parses the snake_case name.
    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::HardBounce,
            Self::SoftBounces,
            Self::Complaint,
            Self::Unsubscribe,
            Self::Manual,
        ]
        .into_iter()
        .find(|r| r.as_str() == text)
    }
}

impl fmt::Display for SuppressionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of the suppression list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppression {
    /// Why.
    pub reason: SuppressionReason,
    /// When it was added.
    pub at: Millis,
    /// The campaign that caused it, if any.
    pub campaign: Option<String>,
    /// The reply or note behind it.
    pub detail: String,
}

/// When soft bounces add an address to the suppression list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuppressionPolicy {
    /// Soft bounces (mailbox full, blocked, expired after retries…) within `soft_window` that
    /// suppress an address. A delivery resets the count.
    pub soft_limit: u32,
    /// The window the soft bounces are counted in.
    pub soft_window: Duration,
    /// The least time between the first and the last of those soft bounces: `soft_limit`
    /// bounces in one afternoon do not suppress, the same spread over this span do.
    pub soft_min_span: Duration,
}

impl Default for SuppressionPolicy {
    /// Three soft bounces within 30 days, spread over at least 15.
    fn default() -> Self {
        Self {
            soft_limit: 3,
            soft_window: Duration::from_secs(30 * 86_400),
            soft_min_span: Duration::from_secs(15 * 86_400),
        }
    }
}

/// A destination's adaptive back-off, as one node hands it to the next that sends there (a
/// cluster keeps it in the store): the limits throttling left and how long a suspension
/// has to run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffSnapshot {
    /// The message rate cap, messages per second (`None`: not limited).
    pub rate: Option<f64>,
    /// The connection cap.
    pub connections: usize,
    /// The rate the last cut left (recovery steps are a fraction of it).
    pub floor: f64,
    /// The rate recovery climbs back to.
    pub ceiling: f64,
    /// What is left of a suspension.
    pub suspended_for: Option<Duration>,
}

/// Where a destination stands, for `volley status` and logs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DestinationStatus {
    /// Its name: the relay, or its MX hosts.
    pub name: String,
    /// The `[shaping.*]` entry that applies.
    pub rule: String,
    /// Recipient domains routed here so far.
    pub domains: usize,
    /// Connections open (or opening).
    pub connections: usize,
    /// The current connection cap (lowered while throttled).
    pub connection_limit: usize,
    /// The current message rate cap, per second (`None`: no limit).
    pub rate: Option<f64>,
    /// Composed messages waiting for a connection.
    pub queued: usize,
    /// Messages delivered in this run.
    pub delivered: u64,
    /// Throttling replies seen in this run.
    pub throttled: u64,
    /// The server's per-connection message limit, once learned from 421s that closed
    /// connections after the same number of messages (connections then close one earlier).
    #[serde(default)]
    pub messages_per_connection: Option<u64>,
    /// True while limits are lowered by back-off.
    pub backing_off: bool,
    /// Seconds until a suspension ends, while suspended.
    pub suspended_for: Option<u64>,
    /// Seconds until connections are tried again after every host failed.
    pub failing_for: Option<u64>,
    /// Seconds until a relay taken out for its cool-down (`[[relay]]`: it refused the
    /// login, failed TLS or could not be reached) is tried again.
    #[serde(default)]
    pub taken_out_for: Option<u64>,
    /// The policy block its circuit breaker tripped on, while it holds the destination.
    #[serde(default)]
    pub block: Option<DestinationBlock>,
}

/// A destination's circuit breaker on policy blocks, as kept in the store, shown by `volley
/// status` and named in reports: replies that say the *sender* is blocked (a blocklist,
/// reputation, a spam verdict, a 5.7.x policy refusal) were counted there until the
/// breaker tripped and suspended it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestinationBlock {
    /// The destination: the relay, or its MX hosts.
    pub destination: String,
    /// Why, as classified (`blocked`, `spam` or `policy`), from the reply that tripped it.
    pub category: Category,
    /// The first block reply counted towards the trip.
    pub first_reply: ReplyRecord,
    /// The last block reply seen.
    pub last_reply: ReplyRecord,
    /// Block replies counted at the destination since the breaker was last closed.
    pub replies: u64,
    /// Times it tripped since it was last closed (each trip after a failed probe doubles the
    /// pause, up to `block_max_pause`).
    pub trips: u32,
    /// When it last tripped (epoch milliseconds).
    pub tripped_at: Millis,
    /// Until when the destination is suspended (epoch milliseconds); after that one
    /// message probes it.
    pub paused_until: Millis,
    /// The campaigns whose recipients it held back (at most a few dozen, the latest last).
    #[serde(default)]
    pub campaigns: Vec<String>,
    /// When a probe after the pause was delivered and the breaker closed (epoch
    /// milliseconds); `None` while the block stands.
    #[serde(default)]
    pub lifted_at: Option<Millis>,
}

impl DestinationBlock {
    /// The most campaigns a record names.
    pub const MAX_CAMPAIGNS: usize = 32;

    /// Notes that `campaign` had recipients held back by this block.
    pub fn add_campaign(&mut self, campaign: &str) {
        if self.campaigns.iter().any(|c| c == campaign) {
            return;
        }
        if self.campaigns.len() >= Self::MAX_CAMPAIGNS {
            self.campaigns.remove(0);
        }
        self.campaigns.push(campaign.to_owned());
    }

    /// True while the destination is suspended at `now` (epoch milliseconds).
    pub fn is_paused(&self, now: Millis) -> bool {
        self.paused_until > now && self.lifted_at.is_none()
    }
}

/// Counts of one campaign (or one variant): unique people and raw events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackCounts {
    /// Recipients with at least one human open.
    pub opened: u64,
    /// Recipients with at least one human click.
    pub clicked: u64,
    /// Recipients who unsubscribed.
    pub unsubscribed: u64,
    /// Open events, human ones.
    pub opens: u64,
    /// Click events, human ones.
    pub clicks: u64,
    /// Open events judged machine-made.
    pub machine_opens: u64,
    /// Click events judged machine-made.
    pub machine_clicks: u64,
}

impl TrackCounts {
    /// Adds `other` to these counts.
    pub fn add(&mut self, other: &TrackCounts) {
        self.opened += other.opened;
        self.clicked += other.clicked;
        self.unsubscribed += other.unsubscribed;
        self.opens += other.opens;
        self.clicks += other.clicks;
        self.machine_opens += other.machine_opens;
        self.machine_clicks += other.machine_clicks;
    }
}

/// Milliseconds since the Unix epoch: the store's clock unit.
pub type Millis = u64;

/// The current wall-clock time in milliseconds since the Unix epoch.
pub fn now_millis() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// `millis` plus a duration, saturating.
pub fn add_duration(millis: Millis, duration: Duration) -> Millis {
    millis.saturating_add(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
}

/// Formats epoch milliseconds as an RFC 3339 UTC timestamp (second precision).
pub fn format_millis(millis: Millis) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(millis)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifting_counts_moves_one_recipient() {
        let mut counts = Counts {
            total: 2,
            pending: 2,
            ..Counts::default()
        };
        counts.shift(RecipientState::Pending, RecipientState::Deferred);
        counts.shift(RecipientState::Deferred, RecipientState::Delivered);
        assert_eq!(
            (counts.pending, counts.deferred, counts.delivered),
            (1, 0, 1)
        );
        assert_eq!(counts.finished(), 1);
    }

    #[test]
    fn reply_record_displays_like_a_server_line() {
        let reply = ReplyRecord {
            code: Some(550),
            enhanced: Some("5.1.1".into()),
            text: "user unknown".into(),
            category: Some(Category::InvalidRecipient),
            hard: true,
        };
        assert_eq!(reply.to_string(), "550 5.1.1 user unknown");
        assert_eq!(ReplyRecord::local("timeout").to_string(), "timeout");
    }
}
