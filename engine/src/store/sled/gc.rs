//! Garbage collection of finished campaigns: what `volley gc` removes and what it keeps.
//!
//! A collected campaign keeps its counters (campaign, per variant, tracking), its tracked
//! links and A/B record, a summary of its history (an opaque archive written by the caller,
//! read back by reports) and its packed recipients with their state words — each
//! recipient's address, state and variant — so that opens, clicks and one-click
//! unsubscribes from mail already sent keep working. It loses the merge fields (unless
//! tracked links use them), lines, replies and attempt details, the attempt log, bounce and
//! tracking events, the queue and retry entries and the Message-ID index: everything that
//! grows with the list beyond an address.
//!
//! Whether a campaign may be collected (finished, events exported) is the caller's policy;
//! the export mark lives here so it survives between commands.

use super::events::AttemptLog;
use super::keys;
use super::packed::{self, PackedRow};
use super::SledStore;
use crate::model::Millis;
use crate::store::{Collected, ExportMark, StoreError};
use std::path::Path;

/// Keys removed or rewritten per atomic batch.
const BATCH: usize = 5_000;
/// Packed batches rewritten per atomic batch.
const PACKED_PER_BATCH: usize = 16;

impl SledStore {
    /// The campaign's export mark, if its events were ever exported.
    pub(crate) fn export_mark(&self, campaign: &str) -> Result<Option<ExportMark>, StoreError> {
        self.get(
            &keys::campaign_key(keys::EXPORT_MARK, campaign),
            "export mark",
        )
    }

    /// Notes that the campaign's events from `since` to `through` were exported at `now`.
    /// The mark only grows over a gapless run of exports: one from the beginning
    /// (`since == 0`), or one starting at or before what was already exported.
    pub(crate) fn mark_exported(
        &self,
        campaign: &str,
        since: Millis,
        through: Millis,
        now: Millis,
    ) -> Result<(), StoreError> {
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.export_mark(campaign)?;
        let covered = match old {
            _ if since == 0 => 0,
            Some(mark) if since <= mark.through.saturating_add(1) => mark.through,
            _ => return Ok(()),
        };
        let mark = ExportMark {
            through: through.max(covered),
            at: now,
        };
        self.tree
            .insert(
                keys::campaign_key(keys::EXPORT_MARK, campaign),
                self.encode(&mark, "export mark")?,
            )
            .map_err(|e| self.sled_error(e))?;
        Ok(())
    }

    /// When the campaign's latest event happened (delivery outcome, report or tracking
    /// event), if it has any.
    pub(crate) fn last_event_at(&self, campaign: &str) -> Result<Option<Millis>, StoreError> {
        let mut last = None;
        for tag in [keys::ATTEMPT, keys::EVENT, keys::TRACK_EVENT] {
            let prefix = keys::prefix(tag, campaign);
            if let Some(entry) = self.tree.scan_prefix(&prefix).keys().next_back() {
                let key = entry.map_err(|e| self.sled_error(e))?;
                let at = key
                    .get(prefix.len()..prefix.len() + 8)
                    .and_then(|b| b.try_into().ok())
                    .map(u64::from_be_bytes);
                last = last.max(at);
            }
        }
        Ok(last)
    }

    /// The encoded archive `collect` kept of the campaign's history, once it was collected.
    pub(crate) fn archive_encoded(&self, campaign: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.tree
            .get(keys::campaign_key(keys::ARCHIVE, campaign))
            .map(|value| value.map(|bytes| bytes.to_vec()))
            .map_err(|e| self.sled_error(e))
    }

    /// Whether the campaign has been collected.
    pub(crate) fn is_collected(&self, campaign: &str) -> Result<bool, StoreError> {
        self.tree
            .contains_key(keys::campaign_key(keys::ARCHIVE, campaign))
            .map_err(|e| self.sled_error(e))
    }

    /// Collects `campaign`: writes `archive` (what reports keep of its history) first, then
    /// strips its packed recipients and deletes its logs and indexes, batch by batch. Merge
    /// fields are kept when `keep_values` (its tracked links use them). Interrupted, it can
    /// simply be run again. Durable once it returns.
    pub(crate) fn collect_encoded(
        &self,
        campaign: &str,
        archive: &[u8],
        keep_values: bool,
    ) -> Result<Collected, StoreError> {
        let Some(meta) = self.campaign(campaign)? else {
            return Err(StoreError::UnknownCampaign {
                campaign: campaign.to_owned(),
                path: self.path.clone(),
            });
        };
        self.tree
            .insert(keys::campaign_key(keys::ARCHIVE, campaign), archive)
            .map_err(|e| self.sled_error(e))?;
        let mut collected = Collected {
            recipients: self.collect_batches(meta.number, keep_values)?,
            keys_removed: self.remove_attempts(campaign)?,
        };
        for tag in [
            keys::EVENT,
            keys::TRACK_EVENT,
            keys::TRACK_DAILY,
            keys::RETRY,
        ] {
            collected.keys_removed += self.remove_prefix(&keys::prefix(tag, campaign))?;
        }
        for tag in [keys::QUEUED, keys::HELD, keys::OVERLAY] {
            collected.keys_removed += self.remove_prefix(&keys::number_prefix(tag, meta.number))?;
        }
        collected.keys_removed += self.remove_messages_of(campaign)?;
        self.db.flush().map_err(|e| self.sled_error(e))?;
        Ok(collected)
    }

    /// Rewrites every packed batch of campaign number `number` not collected yet without its
    /// lines, and without its merge fields unless `keep_values`; returns how many recipients
    /// the rewritten batches hold (none the second time).
    fn collect_batches(&self, number: u32, keep_values: bool) -> Result<u64, StoreError> {
        let mut recipients = 0;
        let mut batch = sled::Batch::default();
        let mut in_batch = 0;
        for entry in self
            .packed
            .scan_prefix(keys::number_prefix(keys::PACKED_ROWS, number))
        {
            let (key, value) = entry.map_err(|e| self.sled_error(e))?;
            let view = self.parse_batch(&value)?;
            if view.flags & packed::COLLECTED != 0 {
                continue;
            }
            let mut rows = Vec::with_capacity(view.rows.len());
            for bytes in &view.rows {
                if bytes.is_empty() {
                    rows.push(Vec::new());
                    continue;
                }
                let mut row: PackedRow = self.decode(bytes, "packed recipient")?;
                row.line = 0;
                if !keep_values {
                    row.values.clear();
                    row.column = None;
                }
                rows.push(self.encode(&row, "packed recipient")?);
                recipients += 1;
            }
            batch.insert(
                key,
                packed::encode_batch(packed::COLLECTED, &view.domains, &rows),
            );
            in_batch += 1;
            if in_batch == PACKED_PER_BATCH {
                self.packed
                    .apply_batch(std::mem::take(&mut batch))
                    .map_err(|e| self.sled_error(e))?;
                in_batch = 0;
            }
        }
        self.packed
            .apply_batch(batch)
            .map_err(|e| self.sled_error(e))?;
        Ok(recipients)
    }

    /// Deletes the campaign's attempt log; returns how many outcomes it held.
    fn remove_attempts(&self, campaign: &str) -> Result<u64, StoreError> {
        let mut outcomes = 0;
        for value in self
            .tree
            .scan_prefix(keys::prefix(keys::ATTEMPT, campaign))
            .values()
        {
            let value = value.map_err(|e| self.sled_error(e))?;
            let group: AttemptLog = self.decode(&value, "attempt log")?;
            outcomes += group.len() as u64;
        }
        self.remove_prefix(&keys::prefix(keys::ATTEMPT, campaign))?;
        Ok(outcomes)
    }

    /// Deletes every key under `prefix`, a batch at a time; returns how many.
    fn remove_prefix(&self, prefix: &[u8]) -> Result<u64, StoreError> {
        let mut removed = 0;
        loop {
            let mut batch = sled::Batch::default();
            let mut in_batch = 0;
            for key in self.tree.scan_prefix(prefix).keys().take(BATCH) {
                batch.remove(key.map_err(|e| self.sled_error(e))?);
                in_batch += 1;
            }
            if in_batch == 0 {
                return Ok(removed);
            }
            self.tree
                .apply_batch(batch)
                .map_err(|e| self.sled_error(e))?;
            removed += in_batch;
        }
    }

    /// Deletes the Message-ID index entries of the campaign's messages.
    fn remove_messages_of(&self, campaign: &str) -> Result<u64, StoreError> {
        let mut removed = 0;
        let mut batch = sled::Batch::default();
        let mut in_batch = 0;
        for entry in self.tree.scan_prefix([keys::MESSAGE]) {
            let (key, value) = entry.map_err(|e| self.sled_error(e))?;
            let message: crate::store::MessageRef = self.decode(&value, "message")?;
            if message.campaign != campaign {
                continue;
            }
            batch.remove(key);
            in_batch += 1;
            if in_batch == BATCH {
                self.tree
                    .apply_batch(std::mem::take(&mut batch))
                    .map_err(|e| self.sled_error(e))?;
                removed += in_batch as u64;
                in_batch = 0;
            }
        }
        self.tree
            .apply_batch(batch)
            .map_err(|e| self.sled_error(e))?;
        Ok(removed + in_batch as u64)
    }

    /// Copies everything this store holds into a new store at `target` (which must not
    /// exist) and makes it durable: the copy holds the same data in far less space once
    /// campaigns were collected, as sled does not give freed space back to the filesystem.
    pub(crate) fn copy_to(&self, target: &Path) -> Result<(), StoreError> {
        let copy = sled::Config::new()
            .path(target)
            .create_new(true)
            .cache_capacity(super::CACHE_BYTES)
            .open()
            .map_err(|source| super::error::sled_error(target, source))?;
        copy.import(self.db.export());
        copy.flush()
            .map_err(|source| super::error::sled_error(target, source))?;
        Ok(())
    }
}
