//! The suppression list (store-wide, shared by every campaign) and the soft-bounce counters
//! that feed it.

use super::keys::{self, SOFT, SUPPRESSED};
use super::SledStore;
use crate::model::{Millis, ReplyRecord, Suppression, SuppressionPolicy, SuppressionReason};
use crate::store::StoreError;
use serde::{Deserialize, Serialize};

/// Soft bounces counted for one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SoftBounces {
    pub(crate) count: u32,
    pub(crate) first_at: Millis,
}

impl SledStore {
    /// The suppression entry of `address`, if it is suppressed.
    pub(crate) fn suppression(&self, address: &str) -> Result<Option<Suppression>, StoreError> {
        self.get(
            &keys::global_key(SUPPRESSED, address.as_bytes()),
            "suppression",
        )
    }

    /// Adds `address` to the suppression list; returns false (and keeps the existing entry)
    /// when it was already there.
    pub(crate) fn suppress(&self, address: &str, entry: &Suppression) -> Result<bool, StoreError> {
        let key = keys::global_key(SUPPRESSED, address.as_bytes());
        let value = self.encode(entry, "suppression")?;
        let swapped = self
            .tree
            .compare_and_swap(key, None as Option<&[u8]>, Some(value))
            .map_err(|e| self.sled_error(e))?;
        Ok(swapped.is_ok())
    }

    /// Removes `address` from the suppression list (and forgets its soft bounces); returns
    /// false when it was not there.
    pub(crate) fn unsuppress(&self, address: &str) -> Result<bool, StoreError> {
        self.tree
            .remove(keys::global_key(SOFT, address.as_bytes()))
            .map_err(|e| self.sled_error(e))?;
        let removed = self
            .tree
            .remove(keys::global_key(SUPPRESSED, address.as_bytes()))
            .map_err(|e| self.sled_error(e))?;
        Ok(removed.is_some())
    }

    /// Every suppressed address with its entry, in address order.
    pub(crate) fn suppressions(&self) -> Result<Vec<(String, Suppression)>, StoreError> {
        let mut out = Vec::new();
        for entry in self.tree.scan_prefix([SUPPRESSED]) {
            let (key, value) = entry.map_err(|e| self.sled_error(e))?;
            let address = String::from_utf8_lossy(&key[1..]).into_owned();
            out.push((address, self.decode(&value, "suppression")?));
        }
        Ok(out)
    }

    /// At most `limit` suppressed addresses after `after`, in address order.
    pub(crate) fn suppressions_after(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Suppression)>, StoreError> {
        let start = keys::global_key(SUPPRESSED, after.unwrap_or("").as_bytes());
        let end = [SUPPRESSED + 1];
        let mut out = Vec::new();
        for entry in self.tree.range(start..end[..].to_vec()) {
            if out.len() >= limit {
                break;
            }
            let (key, value) = entry.map_err(|e| self.sled_error(e))?;
            let address = String::from_utf8_lossy(&key[1..]).into_owned();
            if after.is_some_and(|after| address.as_str() <= after) {
                continue;
            }
            out.push((address, self.decode(&value, "suppression")?));
        }
        Ok(out)
    }

    /// Adds the writes that record one soft bounce of `address` to `batch`; returns the count
    /// when the policy's run is complete: at least `soft_limit` soft bounces within
    /// `soft_window` of the first, the last at least `soft_min_span` after the first.
    pub(crate) fn count_soft_bounce(
        &self,
        batch: &mut sled::Batch,
        address: &str,
        policy: &SuppressionPolicy,
        now: Millis,
    ) -> Result<Option<u32>, StoreError> {
        let key = keys::global_key(SOFT, address.as_bytes());
        let window = crate::model::add_duration(0, policy.soft_window);
        let min_span = crate::model::add_duration(0, policy.soft_min_span);
        let current: Option<SoftBounces> = self.get(&key, "soft bounces")?;
        let counted = match current {
            Some(soft) if now.saturating_sub(soft.first_at) <= window => SoftBounces {
                count: soft.count + 1,
                first_at: soft.first_at,
            },
            _ => SoftBounces {
                count: 1,
                first_at: now,
            },
        };
        batch.insert(key, self.encode(&counted, "soft bounces")?);
        let spread = now.saturating_sub(counted.first_at) >= min_span;
        Ok((counted.count >= policy.soft_limit && spread).then_some(counted.count))
    }

    /// Adds the write that forgets `address`'s soft bounces (after a delivery) to `batch`.
    pub(crate) fn clear_soft_bounces(batch: &mut sled::Batch, address: &str) {
        batch.remove(keys::global_key(SOFT, address.as_bytes()));
    }

    /// Adds a suppression write to `batch` unless the address is already suppressed.
    pub(crate) fn suppress_in_batch(
        &self,
        batch: &mut sled::Batch,
        address: &str,
        entry: &Suppression,
    ) -> Result<(), StoreError> {
        let key = keys::global_key(SUPPRESSED, address.as_bytes());
        if !self
            .tree
            .contains_key(&key)
            .map_err(|e| self.sled_error(e))?
        {
            batch.insert(key, self.encode(entry, "suppression")?);
        }
        Ok(())
    }
}

impl SledStore {
    /// Adds to `batch` what a final failure of `address` means for the suppression list: a
    /// hard failure (the address is gone) suppresses it at once; any other (full mailbox,
    /// block, policy, spam, security, rate limit, expiry…) counts towards `policy`'s soft run.
    pub(crate) fn note_failure(
        &self,
        batch: &mut sled::Batch,
        campaign: &str,
        address: &str,
        reply: &ReplyRecord,
        policy: &SuppressionPolicy,
        now: Millis,
    ) -> Result<(), StoreError> {
        if reply.hard {
            let entry = entry_for(
                SuppressionReason::HardBounce,
                campaign,
                reply.to_string(),
                now,
            );
            return self.suppress_in_batch(batch, address, &entry);
        }
        if let Some(count) = self.count_soft_bounce(batch, address, policy, now)? {
            let detail = format!("{count} soft bounces, the last: {reply}");
            let entry = entry_for(SuppressionReason::SoftBounces, campaign, detail, now);
            self.suppress_in_batch(batch, address, &entry)?;
        }
        Ok(())
    }
}

/// The suppression entry a failure reply calls for, if any.
pub(crate) fn entry_for(
    reason: SuppressionReason,
    campaign: &str,
    detail: String,
    now: Millis,
) -> Suppression {
    Suppression {
        reason,
        at: now,
        campaign: Some(campaign.to_owned()),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::model::Category;

    const DAY: Millis = 86_400_000;

    /// A final failure with the classifier's verdict, as delivery and intake record it.
    fn failure(category: Category, hard: bool) -> ReplyRecord {
        ReplyRecord {
            code: Some(550),
            enhanced: Some("5.7.1".into()),
            text: "blocked".into(),
            category: Some(category),
            hard,
        }
    }

    /// Notes one failure of `address` on `day` (explicit timestamps, no clock).
    fn note(store: &SledStore, address: &str, reply: &ReplyRecord, day: Millis) {
        let policy = SuppressionPolicy {
            soft_limit: 3,
            soft_window: Duration::from_secs(30 * 86_400),
            soft_min_span: Duration::from_secs(15 * 86_400),
        };
        let mut batch = sled::Batch::default();
        store
            .note_failure(&mut batch, "c1", address, reply, &policy, day * DAY)
            .unwrap();
        store.tree.apply_batch(batch).unwrap();
    }

    fn suppressed(store: &SledStore, address: &str) -> bool {
        store.suppression(address).unwrap().is_some()
    }

    #[test]
    fn soft_bounces_suppress_only_as_a_run_spread_over_the_minimum_span() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let blocked = failure(Category::Blocked, false);
        let full = failure(Category::MailboxFull, false);
        // (address, days of its soft bounces, suppressed after the last?)
        let cases: &[(&str, &[Millis], bool)] = &[
            ("once@x.example", &[0], false),
            ("one-week@x.example", &[0, 1, 2, 3, 4, 5, 6], false),
            ("spread@x.example", &[0, 7, 15], true),
            ("late-fourth@x.example", &[0, 1, 2, 16], true),
            // The window restarts on day 31: one bounce counted, not three.
            ("window-passed@x.example", &[0, 20, 31], false),
            ("window-restarted@x.example", &[0, 20, 31, 40, 47], true),
        ];
        for (address, days, want) in cases {
            for (i, day) in days.iter().enumerate() {
                let reply = if i % 2 == 0 { &blocked } else { &full };
                note(&store, address, reply, *day);
            }
            assert_eq!(suppressed(&store, address), *want, "{address} {days:?}");
        }
        let entry = store.suppression("spread@x.example").unwrap().unwrap();
        assert_eq!(entry.reason, SuppressionReason::SoftBounces);
        assert!(
            entry.detail.starts_with("3 soft bounces"),
            "{}",
            entry.detail
        );
    }

    #[test]
    fn a_hard_bounce_suppresses_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        note(
            &store,
            "gone@x.example",
            &failure(Category::InvalidRecipient, true),
            0,
        );
        let entry = store.suppression("gone@x.example").unwrap().unwrap();
        assert_eq!(entry.reason, SuppressionReason::HardBounce);
    }
}
