//! Garbage collection of finished campaigns: what `volley gc` removes and what it keeps.
//!
//! A collected campaign keeps its counters (campaign, per variant, tracking), its tracked
//! links and A/B record, a summary of its history (an opaque archive written by the caller,
//! read back by reports) and, packed a thousand to a value, each recipient's address, state
//! and variant, so that opens, clicks and one-click unsubscribes from mail already sent keep
//! working (the store's readers fall back to the packed entries transparently). It loses the
//! merge fields, the replies, the attempt log, bounce and tracking events, de-duplication
//! keys and the Message-ID index: everything that grows with the list beyond an address.
//!
//! Whether a campaign may be collected (finished, events exported) is the caller's policy;
//! the export mark lives here so it survives between commands.

use super::keys;
use super::SledStore;
use crate::model::{Millis, RecipientState};
use crate::store::{Collected, ExportMark, RecipientKey, RecipientRecord, StoreError};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Keys removed or rewritten per atomic batch.
const BATCH: usize = 5_000;
/// Recipients per packed block of a collected campaign.
const PACK: u64 = 1_024;

/// What a collected campaign keeps of one recipient, packed with its neighbours by sequence.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Packed {
    seq: u64,
    domain: String,
    email: String,
    /// Merge fields, kept only when tracked links use them.
    values: Vec<String>,
    state: RecipientState,
    attempts: u32,
    variant: u8,
}

impl Packed {
    fn into_record(self) -> RecipientRecord {
        RecipientRecord {
            email: self.email,
            values: self.values,
            line: 0,
            state: self.state,
            attempts: self.attempts,
            first_attempt: None,
            next_attempt: None,
            last_reply: None,
            variant: self.variant,
        }
    }
}

/// `g number block`: a packed block of a collected campaign's recipients.
fn packed_key(number: u32, block: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(13);
    key.push(keys::PACKED);
    key.extend_from_slice(&number.to_be_bytes());
    key.extend_from_slice(&block.to_be_bytes());
    key
}

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
    /// packs every recipient record and deletes its logs and indexes, batch by batch. Merge
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
            recipients: self.pack_records(campaign, meta.number, keep_values)?,
            keys_removed: 0,
        };
        for tag in [
            keys::ATTEMPT,
            keys::EVENT,
            keys::TRACK_EVENT,
            keys::TRACK_DAILY,
            keys::QUEUE,
            keys::RETRY,
            keys::DEDUPE,
            keys::HELD,
        ] {
            collected.keys_removed += self.remove_prefix(&keys::prefix(tag, campaign))?;
        }
        collected.keys_removed += self.remove_messages_of(campaign)?;
        self.db.flush().map_err(|e| self.sled_error(e))?;
        Ok(collected)
    }

    /// Moves every recipient record of the campaign (campaign number `number`) into packed
    /// blocks of [`PACK`] recipients by sequence number, keeping only what tracking and
    /// reports need, and removes the records and their by-number keys: one atomic batch per
    /// block. Thousands of small keys cost sled far more space than a few large values.
    fn pack_records(
        &self,
        campaign: &str,
        number: u32,
        keep_values: bool,
    ) -> Result<u64, StoreError> {
        let mut prefix = vec![keys::BY_NUMBER];
        prefix.extend_from_slice(&number.to_be_bytes());
        let mut packed = 0;
        let mut block: Option<u64> = None;
        let mut entries: Vec<Packed> = Vec::new();
        let mut batch = sled::Batch::default();
        for entry in self.tree.scan_prefix(&prefix) {
            let (key, domain) = entry.map_err(|e| self.sled_error(e))?;
            let Some(seq) = key
                .get(prefix.len()..prefix.len() + 8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
            else {
                continue;
            };
            if block.is_some_and(|b| b != seq / PACK) {
                packed += self.write_block(number, block, &mut entries, &mut batch)?;
            }
            block = Some(seq / PACK);
            let rkey = RecipientKey {
                domain: String::from_utf8_lossy(&domain).into_owned(),
                seq,
            };
            let record_key = keys::recipient_key(keys::RECORD, campaign, &rkey);
            batch.remove(key);
            if let Some(record) = self.get::<RecipientRecord>(&record_key, "recipient")? {
                entries.push(Packed {
                    seq,
                    domain: rkey.domain,
                    email: record.email,
                    values: if keep_values {
                        record.values
                    } else {
                        Vec::new()
                    },
                    state: record.state,
                    attempts: record.attempts,
                    variant: record.variant,
                });
                batch.remove(record_key);
            }
        }
        packed += self.write_block(number, block, &mut entries, &mut batch)?;
        Ok(packed)
    }

    /// Writes one packed block with the removals that go with it; returns its size.
    fn write_block(
        &self,
        number: u32,
        block: Option<u64>,
        entries: &mut Vec<Packed>,
        batch: &mut sled::Batch,
    ) -> Result<u64, StoreError> {
        let (Some(block), false) = (block, entries.is_empty()) else {
            self.tree
                .apply_batch(std::mem::take(batch))
                .map_err(|e| self.sled_error(e))?;
            return Ok(0);
        };
        let count = entries.len() as u64;
        batch.insert(
            packed_key(number, block),
            self.encode(&*entries, "packed recipients")?,
        );
        self.tree
            .apply_batch(std::mem::take(batch))
            .map_err(|e| self.sled_error(e))?;
        entries.clear();
        Ok(count)
    }

    /// The packed entry of recipient `seq` of campaign number `number`, once collected.
    fn packed(&self, number: u32, seq: u64) -> Result<Option<Packed>, StoreError> {
        let Some(entries) =
            self.get::<Vec<Packed>>(&packed_key(number, seq / PACK), "packed recipients")?
        else {
            return Ok(None);
        };
        Ok(entries
            .binary_search_by_key(&seq, |p| p.seq)
            .ok()
            .and_then(|i| entries.into_iter().nth(i)))
    }

    /// The record of a recipient of a collected campaign, rebuilt from its packed entry.
    pub(crate) fn packed_record(
        &self,
        campaign: &str,
        key: &RecipientKey,
    ) -> Result<Option<RecipientRecord>, StoreError> {
        if !self.is_collected(campaign)? {
            return Ok(None);
        }
        let Some(meta) = self.campaign(campaign)? else {
            return Ok(None);
        };
        Ok(self
            .packed(meta.number, key.seq)?
            .filter(|p| p.domain == key.domain)
            .map(Packed::into_record))
    }

    /// The domain of recipient `seq` of campaign number `number`, once collected.
    pub(crate) fn packed_domain(
        &self,
        number: u32,
        seq: u64,
    ) -> Result<Option<String>, StoreError> {
        Ok(self.packed(number, seq)?.map(|p| p.domain))
    }

    /// Calls `visit` with every packed recipient of a collected campaign, in sequence order.
    pub(crate) fn each_packed(
        &self,
        campaign: &str,
        mut visit: impl FnMut(RecipientKey, RecipientRecord),
    ) -> Result<(), StoreError> {
        let Some(meta) = self.campaign(campaign)? else {
            return Ok(());
        };
        let mut prefix = vec![keys::PACKED];
        prefix.extend_from_slice(&meta.number.to_be_bytes());
        for entry in self.tree.scan_prefix(&prefix) {
            let (_, value) = entry.map_err(|e| self.sled_error(e))?;
            let entries: Vec<Packed> = self.decode(&value, "packed recipients")?;
            for packed in entries {
                let key = RecipientKey {
                    domain: packed.domain.clone(),
                    seq: packed.seq,
                };
                visit(key, packed.into_record());
            }
        }
        Ok(())
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
