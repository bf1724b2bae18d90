//! A relay provider's hourly and daily caps, counted in one-minute buckets so that they hold
//! across runs: the store keeps the buckets, a new run starts from them and continues within
//! what is left.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::Millis;

const MINUTE: Millis = 60_000;
const HOUR_MINUTES: u64 = 60;
const DAY_MINUTES: u64 = 24 * 60;

/// The caps a relay provider sets (messages in any 60 minutes, in any 24 hours).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RelayCaps {
    /// `[relay] max_per_hour`.
    pub per_hour: Option<u32>,
    /// `[relay] max_per_day`.
    pub per_day: Option<u32>,
}

/// A cap is reached: sending may go on at `resume_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetExhausted {
    /// The campaign-file key of the cap that was reached (`relay.max_per_day`).
    pub cap: &'static str,
    /// Its value.
    pub limit: u32,
    /// When enough of the window has passed for one more message.
    pub resume_at: Millis,
}

/// Messages sent to one relay, per minute, over the last day.
#[derive(Debug, Clone, Default)]
pub struct RelayBudget {
    caps: RelayCaps,
    buckets: BTreeMap<u64, u32>,
    dirty: BTreeSet<u64>,
    /// On a store shared by several processes: the messages reserved in the shared counts
    /// and not sent yet (`None`: this process alone counts, and saves its buckets).
    share: Option<Share>,
}

/// A process's reservation of a cap shared with other processes.
#[derive(Debug, Clone, Copy, Default)]
struct Share {
    /// Messages reserved and not yet sent.
    left: u32,
    /// The minute they were reserved at.
    minute: u64,
}

/// How long a process whose reservation ran out waits before trying to send again (its
/// reservation is topped up about this often).
pub const SHARE_RETRY: Millis = 1_000;

impl RelayBudget {
    /// A budget under `caps`, starting from earlier runs' `history` of (minute since the
    /// epoch, messages).
    pub fn new(caps: RelayCaps, history: impl IntoIterator<Item = (u64, u32)>) -> Self {
        RelayBudget {
            caps,
            buckets: history.into_iter().collect(),
            dirty: BTreeSet::new(),
            share: None,
        }
    }

    /// The same budget for a process sharing the caps with others: a message is sent only
    /// out of a reservation counted in the shared store (see [`RelayBudget::reserved`]), and
    /// the buckets are not saved (the reservations were counted already).
    pub fn shared(mut self) -> Self {
        self.share = Some(Share::default());
        self
    }

    /// The caps.
    pub fn caps(&self) -> RelayCaps {
        self.caps
    }

    /// How many more messages to reserve now: the reservation is topped up to a twentieth
    /// of the tighter cap (at least 1, at most 1,000), so that the processes sharing it
    /// hold little of it unsent. Zero when not shared.
    pub fn wanted(&self) -> u32 {
        let Some(share) = self.share else { return 0 };
        let cap = match (self.caps.per_hour, self.caps.per_day) {
            (Some(h), Some(d)) => h.min(d),
            (Some(c), None) | (None, Some(c)) => c,
            (None, None) => return 0,
        };
        (cap / 20).clamp(1, 1_000).saturating_sub(share.left)
    }

    /// Counts `granted` newly reserved messages, reserved at `minute` (nothing when not
    /// shared).
    pub fn reserved(&mut self, granted: u32, minute: u64) {
        if let Some(share) = &mut self.share {
            share.left = share.left.saturating_add(granted);
            share.minute = minute;
        }
    }

    /// Takes the unsent reservation out (to give it back): (messages, minute reserved at).
    pub fn take_unsent(&mut self) -> (u32, u64) {
        match &mut self.share {
            Some(share) => (std::mem::take(&mut share.left), share.minute),
            None => (0, 0),
        }
    }

    /// True when there is no cap to keep.
    pub fn is_unlimited(&self) -> bool {
        self.caps.per_hour.is_none() && self.caps.per_day.is_none()
    }

    /// Messages counted in the last 60 minutes and the last 24 hours at `now`.
    pub fn used(&self, now: Millis) -> (u64, u64) {
        let minute = now / MINUTE;
        (
            self.sum_since(minute, HOUR_MINUTES),
            self.sum_since(minute, DAY_MINUTES),
        )
    }

    /// Counts one message at `now`, or says which cap stops it and until when. A shared
    /// budget sends out of its reservation; with none left it says when to try again (soon,
    /// unless the shared counts show a cap reached).
    pub fn try_take(&mut self, now: Millis) -> Result<(), BudgetExhausted> {
        let minute = now / MINUTE;
        self.prune(minute);
        if let Some(share) = &mut self.share {
            if share.left > 0 {
                // Counted in the shared store when it was reserved.
                share.left -= 1;
                return Ok(());
            }
        }
        if let Some(blocked) = self.blocked(minute) {
            return Err(blocked);
        }
        if self.share.is_some() {
            // Other processes may have used the rest: wait for a new reservation.
            let (cap, limit) = match (self.caps.per_hour, self.caps.per_day) {
                (Some(limit), _) => ("relay.max_per_hour", limit),
                (None, limit) => ("relay.max_per_day", limit.unwrap_or(0)),
            };
            return Err(BudgetExhausted {
                cap,
                limit,
                resume_at: now + SHARE_RETRY,
            });
        }
        *self.buckets.entry(minute).or_insert(0) += 1;
        self.dirty.insert(minute);
        Ok(())
    }

    /// Which cap the counts at `minute` reach, and until when (the later of the two).
    fn blocked(&self, minute: u64) -> Option<BudgetExhausted> {
        let mut blocked: Option<BudgetExhausted> = None;
        let caps = [
            ("relay.max_per_hour", self.caps.per_hour, HOUR_MINUTES),
            ("relay.max_per_day", self.caps.per_day, DAY_MINUTES),
        ];
        for (cap, limit, window) in caps {
            let Some(limit) = limit else { continue };
            if self.sum_since(minute, window) < u64::from(limit) {
                continue;
            }
            let resume_at = self.resume_at(minute, window, limit);
            if blocked.is_none_or(|b| resume_at > b.resume_at) {
                blocked = Some(BudgetExhausted {
                    cap,
                    limit,
                    resume_at,
                });
            }
        }
        blocked
    }

    /// A shared budget takes the shared counts (every process's, reservations included)
    /// as its own, so a cap reached by all together stops it until the window reopens.
    pub fn sync(&mut self, shared: impl IntoIterator<Item = (u64, u32)>) {
        if self.share.is_some() {
            self.buckets = shared.into_iter().collect();
        }
    }

    /// The buckets changed since the last call, as (minute, messages), for the store.
    pub fn take_dirty(&mut self) -> Vec<(u64, u32)> {
        let dirty = std::mem::take(&mut self.dirty);
        dirty
            .into_iter()
            .filter_map(|minute| self.buckets.get(&minute).map(|&n| (minute, n)))
            .collect()
    }

    fn sum_since(&self, minute: u64, window: u64) -> u64 {
        let first = (minute + 1).saturating_sub(window);
        self.buckets
            .range(first..=minute)
            .map(|(_, &n)| u64::from(n))
            .sum()
    }

    /// The first minute boundary at which the window holds fewer than `limit` messages.
    fn resume_at(&self, minute: u64, window: u64, limit: u32) -> Millis {
        let first = (minute + 1).saturating_sub(window);
        let mut total = self.sum_since(minute, window);
        for (&bucket, &n) in self.buckets.range(first..=minute) {
            total = total.saturating_sub(u64::from(n));
            if total < u64::from(limit) {
                return (bucket + window) * MINUTE;
            }
        }
        (minute + 1) * MINUTE
    }

    fn prune(&mut self, minute: u64) {
        let keep_from = (minute + 1).saturating_sub(DAY_MINUTES);
        self.buckets = self.buckets.split_off(&keep_from);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Millis = 1_700_000_000_000 / MINUTE * MINUTE;

    #[test]
    fn a_shared_budget_sends_only_out_of_its_reservation_and_saves_nothing() {
        let caps = RelayCaps {
            per_hour: Some(100),
            per_day: None,
        };
        let mut budget = RelayBudget::new(caps, []).shared();
        assert_eq!(budget.wanted(), 5, "a twentieth of the cap");
        let waiting = budget.try_take(T0).unwrap_err();
        assert_eq!(waiting.resume_at, T0 + SHARE_RETRY);
        budget.reserved(3, T0 / MINUTE);
        assert_eq!(budget.wanted(), 2);
        for _ in 0..3 {
            budget.try_take(T0).unwrap();
        }
        assert!(budget.try_take(T0).is_err());
        assert!(budget.take_dirty().is_empty(), "counted when reserved");
        assert_eq!(budget.used(T0), (0, 0), "the shared counts come by sync");
        budget.sync([(T0 / MINUTE, 100)]);
        let reached = budget.try_take(T0 + 1).unwrap_err();
        assert_eq!(reached.cap, "relay.max_per_hour");
        assert_eq!(reached.resume_at, T0 + 60 * MINUTE);
        budget.reserved(2, T0 / MINUTE + 1);
        assert_eq!(budget.take_unsent(), (2, T0 / MINUTE + 1));
        assert_eq!(budget.take_unsent(), (0, T0 / MINUTE + 1));
        let alone = RelayBudget::new(caps, []);
        assert_eq!(alone.wanted(), 0);
    }

    #[test]
    fn no_caps_take_everything() {
        let mut budget = RelayBudget::new(RelayCaps::default(), []);
        assert!(budget.is_unlimited());
        for i in 0..10_000 {
            budget.try_take(T0 + i).unwrap();
        }
        assert_eq!(budget.used(T0 + 10_000), (10_000, 10_000));
    }

    #[test]
    fn the_hourly_cap_stops_and_names_when_to_go_on() {
        let caps = RelayCaps {
            per_hour: Some(3),
            per_day: None,
        };
        let mut budget = RelayBudget::new(caps, []);
        budget.try_take(T0).unwrap();
        budget.try_take(T0 + 10 * MINUTE).unwrap();
        budget.try_take(T0 + 20 * MINUTE).unwrap();
        let blocked = budget.try_take(T0 + 30 * MINUTE).unwrap_err();
        assert_eq!(blocked.cap, "relay.max_per_hour");
        assert_eq!(blocked.limit, 3);
        assert_eq!(blocked.resume_at, T0 + 60 * MINUTE);
        budget.try_take(T0 + 60 * MINUTE).unwrap();
    }

    #[test]
    fn history_from_an_earlier_run_counts() {
        let caps = RelayCaps {
            per_hour: None,
            per_day: Some(100),
        };
        let minute = T0 / MINUTE;
        let mut budget = RelayBudget::new(caps, [(minute - 600, 60), (minute - 30, 39)]);
        budget.try_take(T0).unwrap();
        let blocked = budget.try_take(T0 + 1).unwrap_err();
        assert_eq!(blocked.cap, "relay.max_per_day");
        // The 60 of ten hours ago leave the 24-hour window 14 hours from now.
        assert_eq!(blocked.resume_at, (minute - 600 + DAY_MINUTES) * MINUTE);
    }

    #[test]
    fn the_later_of_two_caps_decides() {
        let caps = RelayCaps {
            per_hour: Some(2),
            per_day: Some(2),
        };
        let mut budget = RelayBudget::new(caps, []);
        budget.try_take(T0).unwrap();
        budget.try_take(T0).unwrap();
        let blocked = budget.try_take(T0 + MINUTE).unwrap_err();
        assert_eq!(blocked.cap, "relay.max_per_day");
        assert_eq!(blocked.resume_at, T0 + DAY_MINUTES * MINUTE);
    }

    #[test]
    fn dirty_buckets_are_handed_out_once() {
        let caps = RelayCaps {
            per_hour: Some(1_000),
            per_day: None,
        };
        let mut budget = RelayBudget::new(caps, []);
        budget.try_take(T0).unwrap();
        budget.try_take(T0 + 1).unwrap();
        budget.try_take(T0 + MINUTE).unwrap();
        let minute = T0 / MINUTE;
        assert_eq!(budget.take_dirty(), vec![(minute, 2), (minute + 1, 1)]);
        assert!(budget.take_dirty().is_empty());
    }
}
