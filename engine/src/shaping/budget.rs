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
}

impl RelayBudget {
    /// A budget under `caps`, starting from earlier runs' `history` of (minute since the
    /// epoch, messages).
    pub fn new(caps: RelayCaps, history: impl IntoIterator<Item = (u64, u32)>) -> Self {
        RelayBudget {
            caps,
            buckets: history.into_iter().collect(),
            dirty: BTreeSet::new(),
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

    /// Counts one message at `now`, or says which cap stops it and until when.
    pub fn try_take(&mut self, now: Millis) -> Result<(), BudgetExhausted> {
        let minute = now / MINUTE;
        self.prune(minute);
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
        if let Some(blocked) = blocked {
            return Err(blocked);
        }
        *self.buckets.entry(minute).or_insert(0) += 1;
        self.dirty.insert(minute);
        Ok(())
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
