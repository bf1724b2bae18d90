//! The circuit breaker on policy blocks, one per destination: a sibling of [`super::Backoff`]
//! for replies that say the receiver refuses the *sender* (a blocklist, reputation, a spam
//! verdict, a 5.7.x policy refusal) rather than a mailbox.
//!
//! Closed, it counts the distinct recipients such replies refused within `block_window`; at
//! `block_threshold` it trips (opens): the destination is suspended for `block_pause`. When
//! the pause is over it is half-open: the next message probes. A delivery closes it (and
//! resets the pause); another block trips it again with the pause doubled, up to
//! `block_max_pause`. Time is passed in (an [`Instant`] for the pause, epoch milliseconds
//! for the record kept in the store), so the state machine is tested without waiting.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::config::ShapingRule;
use crate::model::{add_duration, DestinationBlock, Millis, ReplyRecord};

/// What a block reply did to the breaker.
#[derive(Debug, Clone, PartialEq)]
pub enum BlockVerdict {
    /// Counted; the breaker stays closed (the count within the window so far).
    Counted(u32),
    /// The breaker tripped now: the destination is suspended until `until`.
    Tripped {
        /// When the suspension ends.
        until: Instant,
        /// The record to keep and show.
        record: Box<DestinationBlock>,
    },
    /// The breaker was already open (a reply to a message sent before it tripped).
    AlreadyOpen,
}

/// Where the breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Closed,
    /// Suspended until then.
    Open(Instant),
    /// The pause is over; the next reply decides.
    Probing,
}

/// One destination's breaker.
#[derive(Debug, Clone)]
pub struct Breaker {
    enabled: bool,
    threshold: u32,
    window: Duration,
    base_pause: Duration,
    max_pause: Duration,
    pause: Duration,
    phase: Phase,
    /// Block replies within the window: when, and which recipient.
    recent: VecDeque<(Instant, String)>,
    record: Option<DestinationBlock>,
}

impl Breaker {
    /// A closed breaker under the `block_*` keys of `rule`.
    pub fn new(rule: &ShapingRule) -> Breaker {
        Breaker {
            enabled: rule.block_breaker,
            threshold: rule.block_threshold.max(1),
            window: rule.block_window,
            base_pause: rule.block_pause,
            max_pause: rule.block_max_pause.max(rule.block_pause),
            pause: rule.block_pause,
            phase: Phase::Closed,
            recent: VecDeque::new(),
            record: None,
        }
    }

    /// True when the breaker is on (`block_breaker`).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// When the suspension ends, while the breaker is open at `now`; past it, the breaker
    /// is half-open (probing).
    pub fn open_until(&mut self, now: Instant) -> Option<Instant> {
        match self.phase {
            Phase::Open(until) if until > now => Some(until),
            Phase::Open(_) => {
                self.phase = Phase::Probing;
                None
            }
            _ => None,
        }
    }

    /// True while closed: counting, not suspended, not probing.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// The current (or last) block, for status and reports.
    pub fn record(&self) -> Option<&DestinationBlock> {
        self.record.as_ref()
    }

    /// Notes a reply that refused `recipient` because the sender is blocked, at `now`
    /// (`now_ms` in epoch milliseconds), at destination `name`.
    pub fn on_block(
        &mut self,
        name: &str,
        recipient: &str,
        reply: &ReplyRecord,
        now: Instant,
        now_ms: Millis,
    ) -> BlockVerdict {
        self.note_reply(name, reply);
        if self.open_until(now).is_some() {
            return BlockVerdict::AlreadyOpen;
        }
        if self.phase == Phase::Probing {
            // The probe was blocked again: twice the pause, up to the cap.
            self.pause = (self.pause * 2).min(self.max_pause);
            return self.trip(now, now_ms);
        }
        while self
            .recent
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) > self.window)
        {
            self.recent.pop_front();
        }
        if !self.recent.iter().any(|(_, r)| r == recipient) {
            self.recent.push_back((now, recipient.to_owned()));
        }
        let count = self.recent.len() as u32;
        if count >= self.threshold {
            return self.trip(now, now_ms);
        }
        BlockVerdict::Counted(count)
    }

    /// Notes a delivery: a successful probe closes the breaker and resets the pause.
    /// Returns true when it closed now.
    pub fn on_delivery(&mut self, now: Instant) -> bool {
        let _ = self.open_until(now);
        if self.phase != Phase::Probing {
            return false;
        }
        self.phase = Phase::Closed;
        self.pause = self.base_pause;
        self.recent.clear();
        self.record = None;
        true
    }

    /// Takes over a block kept in the store from an earlier run: still suspended when its
    /// pause has not ended at `now_ms` (then until the same moment), else probing.
    /// A block that was lifted already changes nothing.
    pub fn resume(&mut self, record: &DestinationBlock, now: Instant, now_ms: Millis) {
        if !self.enabled || record.lifted_at.is_some() {
            return;
        }
        let left = Duration::from_millis(record.paused_until.saturating_sub(now_ms));
        self.phase = if left.is_zero() {
            Phase::Probing
        } else {
            Phase::Open(now + left)
        };
        let last_pause =
            Duration::from_millis(record.paused_until.saturating_sub(record.tripped_at));
        self.pause = last_pause.clamp(self.base_pause.min(self.max_pause), self.max_pause);
        self.record = Some(record.clone());
    }

    fn note_reply(&mut self, name: &str, reply: &ReplyRecord) {
        match &mut self.record {
            Some(record) => {
                record.last_reply = reply.clone();
                record.replies += 1;
            }
            None => {
                self.record = Some(DestinationBlock {
                    destination: name.to_owned(),
                    category: reply
                        .category
                        .unwrap_or(crate::model::Category::PolicyBlock),
                    first_reply: reply.clone(),
                    last_reply: reply.clone(),
                    replies: 1,
                    trips: 0,
                    tripped_at: 0,
                    paused_until: 0,
                    campaigns: Vec::new(),
                    lifted_at: None,
                })
            }
        }
    }

    fn trip(&mut self, now: Instant, now_ms: Millis) -> BlockVerdict {
        let until = now + self.pause;
        self.phase = Phase::Open(until);
        self.recent.clear();
        let pause = self.pause;
        let Some(record) = self.record.as_mut() else {
            // invariant: `note_reply` ran first; without a record nothing can be reported.
            return BlockVerdict::AlreadyOpen;
        };
        record.trips += 1;
        record.tripped_at = now_ms;
        record.paused_until = add_duration(now_ms, pause);
        if let Some(category) = record.last_reply.category {
            record.category = category;
        }
        BlockVerdict::Tripped {
            until,
            record: Box::new(record.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Category;

    fn rule() -> ShapingRule {
        ShapingRule {
            block_threshold: 3,
            block_window: Duration::from_secs(600),
            block_pause: Duration::from_secs(3_600),
            block_max_pause: Duration::from_secs(3 * 3_600),
            ..ShapingRule::default()
        }
    }

    fn gmail_block() -> ReplyRecord {
        // Gmail's reply to mail it judges unsolicited (support.google.com/mail/answer/188131).
        ReplyRecord {
            code: Some(550),
            enhanced: Some("5.7.1".into()),
            text: "Our system has detected that this message is likely unsolicited mail. To \
                   reduce the amount of spam sent to Gmail, this message has been blocked."
                .into(),
            category: Some(Category::Spam),
            hard: false,
        }
    }

    const MS: Millis = 1_700_000_000_000;

    #[test]
    fn distinct_recipients_within_the_window_trip_it() {
        let start = Instant::now();
        let mut b = Breaker::new(&rule());
        let at = |s: u64| start + Duration::from_secs(s);
        let block = gmail_block();
        assert_eq!(
            b.on_block("mx", "a@x", &block, at(0), MS),
            BlockVerdict::Counted(1)
        );
        // The same recipient again does not count twice.
        assert_eq!(
            b.on_block("mx", "a@x", &block, at(1), MS),
            BlockVerdict::Counted(1)
        );
        assert_eq!(
            b.on_block("mx", "b@x", &block, at(2), MS),
            BlockVerdict::Counted(2)
        );
        let BlockVerdict::Tripped { until, record } = b.on_block("mx", "c@x", &block, at(3), MS)
        else {
            panic!("expected a trip");
        };
        assert_eq!(until, at(3) + Duration::from_secs(3_600));
        assert_eq!(record.replies, 4);
        assert_eq!(record.trips, 1);
        assert_eq!(record.category, Category::Spam);
        assert_eq!(record.paused_until, MS + 3_600_000);
        assert_eq!(record.first_reply, block);
        assert_eq!(b.open_until(at(10)), Some(until));
        assert!(!b.is_closed());
        // Replies to messages sent before the trip change nothing but the count.
        assert_eq!(
            b.on_block("mx", "d@x", &block, at(4), MS),
            BlockVerdict::AlreadyOpen
        );
        assert_eq!(b.record().map(|r| r.replies), Some(5));
    }

    #[test]
    fn blocks_outside_the_window_do_not_add_up() {
        let start = Instant::now();
        let mut b = Breaker::new(&rule());
        for (i, who) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            let at = start + Duration::from_secs(i as u64 * 601);
            assert_eq!(
                b.on_block("mx", who, &gmail_block(), at, MS),
                BlockVerdict::Counted(1),
                "{who}"
            );
        }
        assert!(b.is_closed());
    }

    #[test]
    fn a_probe_after_the_pause_closes_it_or_trips_it_again_with_a_longer_pause() {
        let start = Instant::now();
        let mut b = Breaker::new(&rule());
        let hour = Duration::from_secs(3_600);
        for who in ["a", "b", "c"] {
            b.on_block("mx", who, &gmail_block(), start, MS);
        }
        assert_eq!(b.open_until(start + hour / 2), Some(start + hour));
        // Half-open after the pause: one block trips it again, for two hours.
        let probe = start + hour + Duration::from_secs(1);
        assert_eq!(b.open_until(probe), None);
        let BlockVerdict::Tripped { until, record } =
            b.on_block("mx", "d", &gmail_block(), probe, MS + 3_601_000)
        else {
            panic!("a blocked probe trips it again");
        };
        assert_eq!(until, probe + 2 * hour);
        assert_eq!(record.trips, 2);
        // Doubling stops at block_max_pause (3 hours).
        let probe = until + Duration::from_secs(1);
        b.open_until(probe);
        let BlockVerdict::Tripped { until, .. } = b.on_block("mx", "e", &gmail_block(), probe, MS)
        else {
            panic!("tripped again");
        };
        assert_eq!(until, probe + 3 * hour);
        // A delivered probe closes it and the pause starts from one hour again.
        let probe = until + Duration::from_secs(1);
        assert!(!b.on_delivery(until - Duration::from_secs(1)), "still open");
        assert!(b.on_delivery(probe));
        assert!(b.is_closed());
        assert_eq!(b.record(), None);
        for who in ["f", "g", "h"] {
            b.on_block("mx", who, &gmail_block(), probe, MS);
        }
        assert_eq!(b.open_until(probe), Some(probe + hour));
    }

    #[test]
    fn a_block_kept_from_an_earlier_run_still_suspends_or_probes() {
        let now = Instant::now();
        let record = DestinationBlock {
            destination: "mx".into(),
            category: Category::Blocked,
            first_reply: gmail_block(),
            last_reply: gmail_block(),
            replies: 7,
            trips: 1,
            tripped_at: MS,
            paused_until: MS + 3_600_000,
            campaigns: vec!["c1".into()],
            lifted_at: None,
        };
        let mut b = Breaker::new(&rule());
        b.resume(&record, now, MS + 600_000);
        assert_eq!(
            b.open_until(now),
            Some(now + Duration::from_millis(3_000_000))
        );
        let mut later = Breaker::new(&rule());
        later.resume(&record, now, MS + 4_000_000);
        assert_eq!(later.open_until(now), None);
        assert!(!later.is_closed(), "probing");
        assert!(later.on_delivery(now));
        // A breaker turned off ignores what was kept.
        let mut off = Breaker::new(&ShapingRule {
            block_breaker: false,
            ..rule()
        });
        off.resume(&record, now, MS);
        assert!(off.is_closed());
    }
}
