//! Warm-up state in the store (issue 23): per warm-up key (a sending domain or identity),
//! mailbox provider and day, the day's ceiling, what was sent against it and how it went.
//! Today's record is what the ceiling gate reserves from; earlier ones are the history the
//! next day's ceiling is computed from (and what `volley status` shows).

use super::StoreError;

/// One day of one provider's warm-up under one key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WarmupDay {
    /// The warm-up key (`[warmup] key`).
    pub key: String,
    /// The provider (`gmail`, `microsoft`, …, `others`).
    pub provider: String,
    /// The day: days since 1970-01-01 in the warm-up's zone.
    pub day: i64,
    /// The day's ceiling.
    pub ceiling: u32,
    /// Messages sent (reserved against the ceiling, minus those handed back unsent).
    pub sent: u32,
    /// Of them, delivered.
    pub delivered: u32,
    /// Bounced for the address's sake (hard bounces).
    pub bounced: u32,
    /// Deferred or failed for other reasons (greylisting, network, soft bounces…).
    pub deferred: u32,
    /// Deferred because the provider throttled us.
    pub throttled: u32,
    /// Refused by policy: blocked, blocklisted, judged spam.
    pub blocked: u32,
    /// Complaints counted for the day.
    pub complaints: u32,
    /// Recipients held back at the end of the day's last run because the ceiling was used
    /// up (as that run counted them).
    pub held: u32,
}

/// What to add to a day's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WarmupTally {
    /// Delivered.
    pub delivered: u32,
    /// Hard bounces.
    pub bounced: u32,
    /// Other failures.
    pub deferred: u32,
    /// Throttling.
    pub throttled: u32,
    /// Policy blocks.
    pub blocked: u32,
    /// Complaints.
    pub complaints: u32,
    /// Reserved messages handed back unsent (taken off `sent`).
    pub released: u32,
}

impl WarmupTally {
    /// True when it adds nothing.
    pub fn is_empty(&self) -> bool {
        *self == WarmupTally::default()
    }

    /// Adds `other` to it.
    pub fn add(&mut self, other: &WarmupTally) {
        self.delivered += other.delivered;
        self.bounced += other.bounced;
        self.deferred += other.deferred;
        self.throttled += other.throttled;
        self.blocked += other.blocked;
        self.complaints += other.complaints;
        self.released += other.released;
    }

    /// Applies it to `day` (saturating).
    pub fn apply(&self, day: &mut WarmupDay) {
        day.delivered = day.delivered.saturating_add(self.delivered);
        day.bounced = day.bounced.saturating_add(self.bounced);
        day.deferred = day.deferred.saturating_add(self.deferred);
        day.throttled = day.throttled.saturating_add(self.throttled);
        day.blocked = day.blocked.saturating_add(self.blocked);
        day.complaints = day.complaints.saturating_add(self.complaints);
        day.sent = day.sent.saturating_sub(self.released);
    }
}

/// The warm-up days of a store.
pub trait WarmupStore {
    /// Every day kept for `key` (every key when `None`), by key, provider and day.
    fn warmup_days(&self, key: Option<&str>) -> Result<Vec<WarmupDay>, StoreError>;

    /// Reserves up to `want` messages of `provider`'s allowance on `day` under `key`: the
    /// day is created with `ceiling` when it has no record yet (an existing record keeps its
    /// own); returns how many were granted (what is left below the ceiling, at most `want`),
    /// counted as sent at once. Atomic against other reservations (other processes on a
    /// shared database too); durable with the next flush.
    fn warmup_reserve(
        &self,
        key: &str,
        provider: &str,
        day: i64,
        ceiling: u32,
        want: u32,
    ) -> Result<u32, StoreError>;

    /// Adds `tally` to the day's counts (a day without a record gets one with ceiling 0).
    /// Durable with the next flush.
    fn warmup_record(
        &self,
        key: &str,
        provider: &str,
        day: i64,
        tally: &WarmupTally,
    ) -> Result<(), StoreError>;

    /// Sets the day's `held` (recipients held back at the end of a run).
    fn warmup_set_held(
        &self,
        key: &str,
        provider: &str,
        day: i64,
        held: u32,
    ) -> Result<(), StoreError>;

    /// Writes `day` as it is, replacing its record (`volley store copy`).
    fn warmup_put(&self, day: &WarmupDay) -> Result<(), StoreError>;
}
