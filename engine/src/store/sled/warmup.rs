//! Warm-up days on sled (issue 23): `K <key> 0 <provider> 0 <day>` → the day's counts, in
//! the main tree. Reservations and additions are read-modify-write under the store's write
//! lock (sled is single-process). Keys and provider names never contain a zero byte.

use serde::{Deserialize, Serialize};

use super::keys::{self, WARMUP};
use super::SledStore;
use crate::store::{StoreError, WarmupDay, WarmupStore, WarmupTally};

/// A day's numbers as stored (the fields' order is the format).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct WarmupCounts {
    ceiling: u32,
    sent: u32,
    delivered: u32,
    bounced: u32,
    deferred: u32,
    throttled: u32,
    blocked: u32,
    complaints: u32,
    held: u32,
}

/// Days sort in order: the sign bit flipped, big-endian.
fn day_bytes(day: i64) -> [u8; 8] {
    ((day as u64) ^ (1 << 63)).to_be_bytes()
}

fn clean(text: &str) -> String {
    text.replace('\0', "")
}

/// `K key 0`, or `K` alone for every key.
fn key_prefix(key: Option<&str>) -> Vec<u8> {
    match key {
        Some(key) => {
            let mut out = keys::global_key(WARMUP, clean(key).as_bytes());
            out.push(0);
            out
        }
        None => vec![WARMUP],
    }
}

fn day_key(key: &str, provider: &str, day: i64) -> Vec<u8> {
    let mut out = key_prefix(Some(key));
    out.extend_from_slice(clean(provider).as_bytes());
    out.push(0);
    out.extend_from_slice(&day_bytes(day));
    out
}

/// The key, provider and day of a `K` key.
fn parse_key(bytes: &[u8]) -> Option<(String, String, i64)> {
    let rest = bytes.get(1..)?;
    let first = rest.iter().position(|&b| b == 0)?;
    let key = std::str::from_utf8(&rest[..first]).ok()?;
    let rest = &rest[first + 1..];
    let second = rest.iter().position(|&b| b == 0)?;
    let provider = std::str::from_utf8(&rest[..second]).ok()?;
    let day: [u8; 8] = rest.get(second + 1..)?.try_into().ok()?;
    let day = (u64::from_be_bytes(day) ^ (1 << 63)) as i64;
    Some((key.to_owned(), provider.to_owned(), day))
}

impl SledStore {
    fn warmup_counts(&self, key: &[u8]) -> Result<WarmupCounts, StoreError> {
        Ok(self.get(key, "warm-up day")?.unwrap_or_default())
    }

    fn put_warmup_counts(&self, key: Vec<u8>, counts: &WarmupCounts) -> Result<(), StoreError> {
        let value = self.encode(counts, "warm-up day")?;
        self.tree
            .insert(key, value)
            .map(drop)
            .map_err(|e| self.sled_error(e))
    }

    /// Changes one day's counts under the write lock.
    fn update_warmup<T>(
        &self,
        key: Vec<u8>,
        change: impl FnOnce(&mut WarmupCounts) -> T,
    ) -> Result<T, StoreError> {
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut counts = self.warmup_counts(&key)?;
        let out = change(&mut counts);
        self.put_warmup_counts(key, &counts)?;
        Ok(out)
    }
}

impl WarmupStore for SledStore {
    fn warmup_days(&self, key: Option<&str>) -> Result<Vec<WarmupDay>, StoreError> {
        let mut out = Vec::new();
        for entry in self.tree.scan_prefix(key_prefix(key)) {
            let (k, value) = entry.map_err(|e| self.sled_error(e))?;
            let Some((key, provider, day)) = parse_key(&k) else {
                continue;
            };
            let c: WarmupCounts = self.decode(&value, "warm-up day")?;
            out.push(WarmupDay {
                key,
                provider,
                day,
                ceiling: c.ceiling,
                sent: c.sent,
                delivered: c.delivered,
                bounced: c.bounced,
                deferred: c.deferred,
                throttled: c.throttled,
                blocked: c.blocked,
                complaints: c.complaints,
                held: c.held,
            });
        }
        Ok(out)
    }

    fn warmup_reserve(
        &self,
        key: &str,
        provider: &str,
        day: i64,
        ceiling: u32,
        want: u32,
    ) -> Result<u32, StoreError> {
        let k = day_key(key, provider, day);
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let found: Option<WarmupCounts> = self.get(&k, "warm-up day")?;
        let mut counts = found.unwrap_or_default();
        if counts.ceiling == 0 {
            // A day only counted so far (no reservation yet) takes the ceiling now.
            counts.ceiling = ceiling;
        }
        let granted = counts.ceiling.saturating_sub(counts.sent).min(want);
        counts.sent += granted;
        self.put_warmup_counts(k, &counts)?;
        Ok(granted)
    }

    fn warmup_record(
        &self,
        key: &str,
        provider: &str,
        day: i64,
        tally: &WarmupTally,
    ) -> Result<(), StoreError> {
        self.update_warmup(day_key(key, provider, day), |c| {
            c.delivered = c.delivered.saturating_add(tally.delivered);
            c.bounced = c.bounced.saturating_add(tally.bounced);
            c.deferred = c.deferred.saturating_add(tally.deferred);
            c.throttled = c.throttled.saturating_add(tally.throttled);
            c.blocked = c.blocked.saturating_add(tally.blocked);
            c.complaints = c.complaints.saturating_add(tally.complaints);
            c.sent = c.sent.saturating_sub(tally.released);
        })
    }

    fn warmup_set_held(
        &self,
        key: &str,
        provider: &str,
        day: i64,
        held: u32,
    ) -> Result<(), StoreError> {
        self.update_warmup(day_key(key, provider, day), |c| c.held = held)
    }

    fn warmup_put(&self, day: &WarmupDay) -> Result<(), StoreError> {
        let counts = WarmupCounts {
            ceiling: day.ceiling,
            sent: day.sent,
            delivered: day.delivered,
            bounced: day.bounced,
            deferred: day.deferred,
            throttled: day.throttled,
            blocked: day.blocked,
            complaints: day.complaints,
            held: day.held,
        };
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.put_warmup_counts(day_key(&day.key, &day.provider, day.day), &counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_days_sort_in_order() {
        let days = [-3i64, -1, 0, 1, 20_000];
        let encoded: Vec<Vec<u8>> = days.iter().map(|&d| day_key("k", "gmail", d)).collect();
        let mut sorted = encoded.clone();
        sorted.sort();
        assert_eq!(sorted, encoded);
        for (bytes, day) in encoded.iter().zip(days) {
            assert_eq!(
                parse_key(bytes),
                Some(("k".to_owned(), "gmail".to_owned(), day))
            );
        }
    }
}
