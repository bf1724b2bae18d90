//! Reading the pending queue domain by domain, and the relay usage counters behind a
//! provider's hourly and daily caps.

use super::keys;
use super::states::{Changes, Word};
use super::SledStore;
use crate::model::RecipientState;
use crate::store::{StoreError, StoredRecipient};

impl SledStore {
    /// The recipient domains that have pending recipients in `campaign`, in key order. One
    /// seek per domain, however many recipients each has.
    pub(crate) fn pending_domains(&self, campaign: &str) -> Result<Vec<String>, StoreError> {
        let Some(number) = self.number_of(campaign)? else {
            return Ok(Vec::new());
        };
        let prefix = keys::number_prefix(keys::QUEUED, number);
        let mut domains = Vec::new();
        let mut start = prefix.clone();
        loop {
            let Some(entry) = self.tree.range(start.clone()..).next() else {
                break;
            };
            let (key, _) = entry.map_err(|e| self.sled_error(e))?;
            if !key.starts_with(&prefix) {
                break;
            }
            let Some((domain, _)) = keys::parse_slice_suffix(&key[prefix.len()..]) else {
                break;
            };
            // Every slice of this domain is `prefix domain 0 batch`; `prefix domain 1` is past.
            start = prefix.clone();
            start.extend_from_slice(domain.as_bytes());
            start.push(1);
            domains.push(domain);
        }
        Ok(domains)
    }

    /// Up to `limit` pending recipients of `campaign` in `domain` whose sequence number is
    /// above `after` (all when `None`), in load order.
    pub(crate) fn pending_in(
        &self,
        campaign: &str,
        domain: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<StoredRecipient>, StoreError> {
        let Some(number) = self.number_of(campaign)? else {
            return Ok(Vec::new());
        };
        let min = after.map_or(0, |a| a.saturating_add(1));
        let (first_batch, _) = keys::batch_of(min);
        let mut changes = Changes::new(number);
        let mut out = Vec::with_capacity(limit.min(1024));
        let start = Some((domain, first_batch));
        self.each_slice(keys::QUEUED, number, start, Some(domain), |d, batch, _| {
            let first = u64::from(batch) * keys::BATCH;
            let keep =
                |w: &Word| w.state == RecipientState::Pending && first + u64::from(w.row) >= min;
            changes.slice_recipients(self, &d, batch, keep, limit, &mut out)?;
            Ok(out.len() < limit)
        })?;
        Ok(out)
    }

    /// Messages sent to `relay` per minute since `since_minute` (minutes since the epoch).
    pub(crate) fn relay_usage(
        &self,
        relay: &str,
        since_minute: u64,
    ) -> Result<Vec<(u64, u32)>, StoreError> {
        let prefix = relay_prefix(relay);
        let mut start = prefix.clone();
        start.extend_from_slice(&since_minute.to_be_bytes());
        let mut out = Vec::new();
        for entry in self.tree.range(start..) {
            let (key, value) = entry.map_err(|e| self.sled_error(e))?;
            if !key.starts_with(&prefix) {
                break;
            }
            let minute = key[prefix.len()..].try_into().ok().map(u64::from_be_bytes);
            let count = value.as_ref().try_into().ok().map(u32::from_be_bytes);
            if let (Some(minute), Some(count)) = (minute, count) {
                out.push((minute, count));
            }
        }
        Ok(out)
    }

    /// Stores per-minute counts of messages sent to `relay` (absolute values, replacing what
    /// was there) and drops minutes older than `keep_since`. Durable with the next flush.
    pub(crate) fn set_relay_usage(
        &self,
        relay: &str,
        minutes: &[(u64, u32)],
        keep_since: u64,
    ) -> Result<(), StoreError> {
        let prefix = relay_prefix(relay);
        let mut batch = sled::Batch::default();
        let mut old_end = prefix.clone();
        old_end.extend_from_slice(&keep_since.to_be_bytes());
        for key in self.tree.range(prefix.clone()..old_end).keys() {
            batch.remove(key.map_err(|e| self.sled_error(e))?);
        }
        for (minute, count) in minutes {
            let mut key = prefix.clone();
            key.extend_from_slice(&minute.to_be_bytes());
            batch.insert(key, &count.to_be_bytes());
        }
        self.tree.apply_batch(batch).map_err(|e| self.sled_error(e))
    }
}

/// `R relay 0`.
fn relay_prefix(relay: &str) -> Vec<u8> {
    let mut key = keys::global_key(keys::RELAY_USAGE, relay.replace('\0', "").as_bytes());
    key.push(0);
    key
}
