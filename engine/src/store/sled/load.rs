//! Loading a campaign's accepted recipients: batched inserts, de-duplication, and the
//! `loaded` mark that makes a re-run skip loading.

use super::keys;
use super::variants::CountsDelta;
use super::SledStore;
use crate::model::{now_millis, Assignment, RecipientState, ReplyRecord};
use crate::store::{
    CampaignMeta, LoadResult, LoadSession, RecipientKey, RecipientRecord, StoreError,
};
use std::collections::HashSet;

/// Rows per sled batch while loading.
const LOAD_BATCH: usize = 2_000;

/// Writes one campaign's recipients into the store. Obtained from [`SledStore::start_load`].
pub(crate) struct SledLoader<'a> {
    store: &'a SledStore,
    campaign: String,
    columns: Vec<String>,
    batch: sled::Batch,
    batch_addresses: HashSet<String>,
    next_seq: u64,
    number: u32,
    counts: CountsDelta,
}

impl SledStore {
    /// Starts loading `campaign` with the CSV header `columns`, first removing whatever an
    /// interrupted earlier load left behind. Call only for a campaign that is not `loaded`.
    pub(crate) fn start_load(
        &self,
        campaign: &str,
        columns: Vec<String>,
    ) -> Result<SledLoader<'_>, StoreError> {
        self.remove_campaign(campaign)?;
        let number = self.next_campaign_number()?;
        // Written now, not loaded yet: a crash mid-load leaves a trail `remove_campaign` finds.
        let meta = CampaignMeta {
            columns: columns.clone(),
            loaded: false,
            loaded_at: 0,
            number,
        };
        self.tree
            .insert(
                keys::campaign_key(keys::META, campaign),
                self.encode(&meta, "campaign")?,
            )
            .map_err(|e| self.sled_error(e))?;
        Ok(SledLoader {
            store: self,
            campaign: campaign.to_owned(),
            columns,
            batch: sled::Batch::default(),
            batch_addresses: HashSet::new(),
            next_seq: 0,
            number,
            counts: CountsDelta::empty(campaign),
        })
    }

    /// Deletes every key of a campaign (meta, counters, recipients, queue, retries, dedupe,
    /// events, attempt log, tracking, A/B and gc records). The suppression list stays.
    pub(crate) fn remove_campaign(&self, campaign: &str) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        if let Some(meta) = self.campaign(campaign)? {
            let mut prefix = vec![keys::BY_NUMBER];
            prefix.extend_from_slice(&meta.number.to_be_bytes());
            for key in self.tree.scan_prefix(prefix).keys() {
                batch.remove(key.map_err(|e| self.sled_error(e))?);
            }
            let mut packed = vec![keys::PACKED];
            packed.extend_from_slice(&meta.number.to_be_bytes());
            for key in self.tree.scan_prefix(packed).keys() {
                batch.remove(key.map_err(|e| self.sled_error(e))?);
            }
        }
        batch.remove(keys::campaign_key(keys::META, campaign));
        batch.remove(keys::campaign_key(keys::COUNTS, campaign));
        batch.remove(keys::campaign_key(keys::AB, campaign));
        batch.remove(keys::campaign_key(keys::EXPORT_MARK, campaign));
        batch.remove(keys::campaign_key(keys::ARCHIVE, campaign));
        batch.remove(keys::campaign_key(keys::TRACKING_META, campaign));
        for tag in [
            keys::RECORD,
            keys::QUEUE,
            keys::RETRY,
            keys::DEDUPE,
            keys::EVENT,
            keys::ATTEMPT,
            keys::VARIANT_COUNTS,
            keys::HELD,
            keys::TRACK_COUNTS,
            keys::TRACK_EVENT,
            keys::ENGAGEMENT,
            keys::TRACK_DAILY,
        ] {
            for key in self.tree.scan_prefix(keys::prefix(tag, campaign)).keys() {
                batch.remove(key.map_err(|e| self.sled_error(e))?);
            }
        }
        self.tree.apply_batch(batch).map_err(|e| self.sled_error(e))
    }
}

impl LoadSession for SledLoader<'_> {
    fn add(
        &mut self,
        address: &str,
        domain: &str,
        values: Vec<String>,
        line: u64,
        assignment: Assignment,
    ) -> Result<bool, StoreError> {
        let dedupe = keys::dedupe_key(&self.campaign, address);
        if self.batch_addresses.contains(address)
            || self
                .store
                .tree
                .contains_key(&dedupe)
                .map_err(|e| self.store.sled_error(e))?
        {
            return Ok(false);
        }
        let key = RecipientKey {
            domain: domain.to_owned(),
            seq: self.next_seq,
        };
        self.next_seq += 1;
        let suppressed = self.store.suppression(address)?;
        let (state, variant) = match (suppressed.is_some(), assignment) {
            (true, Assignment::Variant(v) | Assignment::Held { fallback: v }) => {
                (RecipientState::Suppressed, v)
            }
            (false, Assignment::Variant(v)) => (RecipientState::Pending, v),
            (false, Assignment::Held { fallback }) => (RecipientState::Held, fallback),
        };
        let record = RecipientRecord {
            email: address.to_owned(),
            values,
            line,
            state,
            attempts: 0,
            first_attempt: None,
            next_attempt: None,
            last_reply: suppressed
                .map(|s| ReplyRecord::local(format!("suppressed: {} ({})", s.reason, s.detail))),
            variant,
        };
        self.batch.insert(
            keys::recipient_key(keys::RECORD, &self.campaign, &key),
            self.store.encode(&record, "recipient")?,
        );
        if state == RecipientState::Pending {
            self.batch
                .insert(keys::recipient_key(keys::QUEUE, &self.campaign, &key), &[]);
        } else if state == RecipientState::Held {
            self.batch
                .insert(keys::recipient_key(keys::HELD, &self.campaign, &key), &[]);
        } else {
            let log_prefix = keys::prefix(keys::ATTEMPT, &self.campaign);
            self.store.log_attempt(
                &mut self.batch,
                &log_prefix,
                now_millis(),
                &key,
                state,
                record.last_reply.as_ref(),
            )?;
        }
        self.batch.insert(
            keys::number_key(self.number, key.seq),
            key.domain.as_bytes(),
        );
        self.batch.insert(dedupe, &[]);
        self.batch_addresses.insert(address.to_owned());
        self.counts.enter(self.store, variant, state)?;
        if self.batch_addresses.len() >= LOAD_BATCH {
            self.apply()?;
        }
        Ok(true)
    }

    fn accepted(&self) -> u64 {
        self.counts.totals().total
    }

    fn finish(self: Box<Self>, invalid: u64, duplicate: u64) -> Result<LoadResult, StoreError> {
        let mut this = *self;
        this.apply()?;
        this.write_counts(invalid, duplicate)
    }
}

impl SledLoader<'_> {
    /// Writes the counters and the `loaded` mark, then flushes.
    fn write_counts(mut self, invalid: u64, duplicate: u64) -> Result<LoadResult, StoreError> {
        self.counts.totals_mut().invalid = invalid;
        self.counts.totals_mut().duplicate = duplicate;
        let meta = CampaignMeta {
            columns: std::mem::take(&mut self.columns),
            loaded: true,
            loaded_at: now_millis(),
            number: self.number,
        };
        let mut batch = sled::Batch::default();
        let counts = std::mem::replace(&mut self.counts, CountsDelta::empty(&self.campaign))
            .write(self.store, &mut batch)?;
        batch.insert(
            keys::campaign_key(keys::META, &self.campaign),
            self.store.encode(&meta, "campaign")?,
        );
        self.store
            .tree
            .apply_batch(batch)
            .map_err(|e| self.store.sled_error(e))?;
        self.store.flush_blocking()?;
        Ok(LoadResult { counts })
    }

    fn apply(&mut self) -> Result<(), StoreError> {
        let batch = std::mem::take(&mut self.batch);
        self.batch_addresses.clear();
        self.store
            .tree
            .apply_batch(batch)
            .map_err(|e| self.store.sled_error(e))
    }
}
