//! A/B variants in the store: recipients by state per variant (kept in the same batch as the
//! campaign's counters), the recipients held back for a test's winner, and what was decided.

use super::keys;
use super::SledStore;
use crate::model::{Counts, RecipientState};
use crate::store::{AbMark, AbRecord, RecipientKey, RecipientRecord, StoreError};
use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

/// Held recipients moved to the queue per batch.
const RELEASE_BATCH: usize = 2_000;

/// The campaign counters and the per-variant counters touched by one batch: read on first
/// use, written back with the batch.
pub(crate) struct CountsDelta {
    campaign: String,
    totals: Counts,
    variants: BTreeMap<u8, Counts>,
}

impl CountsDelta {
    /// Starts from the stored counters of `campaign`.
    pub(crate) fn load(store: &SledStore, campaign: &str) -> Result<CountsDelta, StoreError> {
        let totals = store
            .counts(campaign)?
            .ok_or_else(|| StoreError::UnknownCampaign {
                campaign: campaign.to_owned(),
                path: store.path.clone(),
            })?;
        Ok(CountsDelta {
            campaign: campaign.to_owned(),
            totals,
            variants: BTreeMap::new(),
        })
    }

    /// Starts from zero (a campaign being loaded).
    pub(crate) fn empty(campaign: &str) -> CountsDelta {
        CountsDelta {
            campaign: campaign.to_owned(),
            totals: Counts::default(),
            variants: BTreeMap::new(),
        }
    }

    /// The campaign totals so far.
    pub(crate) fn totals(&self) -> &Counts {
        &self.totals
    }

    /// The campaign totals, to set the loader's own fields.
    pub(crate) fn totals_mut(&mut self) -> &mut Counts {
        &mut self.totals
    }

    /// A new recipient in `state`; held recipients count in no variant yet.
    pub(crate) fn enter(
        &mut self,
        store: &SledStore,
        variant: u8,
        state: RecipientState,
    ) -> Result<(), StoreError> {
        self.totals.total += 1;
        *self.totals.get_mut(state) += 1;
        if state != RecipientState::Held {
            let counts = self.variant(store, variant)?;
            counts.total += 1;
            *counts.get_mut(state) += 1;
        }
        Ok(())
    }

    /// One recipient of `variant` moves from `from` to `to`. Leaving `held`, it joins the
    /// variant it was given.
    pub(crate) fn shift(
        &mut self,
        store: &SledStore,
        variant: u8,
        from: RecipientState,
        to: RecipientState,
    ) -> Result<(), StoreError> {
        self.totals.shift(from, to);
        let counts = self.variant(store, variant)?;
        if from == RecipientState::Held {
            counts.total += 1;
            *counts.get_mut(to) += 1;
        } else {
            counts.shift(from, to);
        }
        Ok(())
    }

    /// Adds the counters to `batch`; returns the campaign totals.
    pub(crate) fn write(
        self,
        store: &SledStore,
        batch: &mut sled::Batch,
    ) -> Result<Counts, StoreError> {
        batch.insert(
            keys::campaign_key(keys::COUNTS, &self.campaign),
            store.encode(&self.totals, "counters")?,
        );
        for (variant, counts) in &self.variants {
            batch.insert(
                variant_key(&self.campaign, *variant),
                store.encode(counts, "variant counters")?,
            );
        }
        Ok(self.totals)
    }

    fn variant(&mut self, store: &SledStore, variant: u8) -> Result<&mut Counts, StoreError> {
        match self.variants.entry(variant) {
            Entry::Occupied(entry) => Ok(entry.into_mut()),
            Entry::Vacant(entry) => {
                let stored = store
                    .get(&variant_key(&self.campaign, variant), "variant counters")?
                    .unwrap_or_default();
                Ok(entry.insert(stored))
            }
        }
    }
}

/// `v campaign 0 variant`.
fn variant_key(campaign: &str, variant: u8) -> Vec<u8> {
    let mut key = keys::prefix(keys::VARIANT_COUNTS, campaign);
    key.push(variant);
    key
}

impl SledStore {
    /// Recipients by state per variant index (variants nobody was assigned to are left out).
    pub(crate) fn variant_counts(&self, campaign: &str) -> Result<Vec<(u8, Counts)>, StoreError> {
        self.per_variant(keys::VARIANT_COUNTS, campaign, "variant counters")
    }

    /// The campaign's [`AbMark`]: a few keys per variant and one seek, whatever the size of
    /// the list or its history.
    pub(crate) fn ab_mark(&self, campaign: &str) -> Result<AbMark, StoreError> {
        let last_report = self
            .tree
            .scan_prefix(keys::prefix(keys::EVENT, campaign))
            .keys()
            .next_back()
            .transpose()
            .map_err(|e| self.sled_error(e))?;
        Ok(AbMark {
            counts: self.variant_counts(campaign)?,
            tracking: self.tracking_counts(campaign)?,
            last_report: last_report.map(|key| key.to_vec()),
        })
    }

    /// Every `tag campaign 0 variant` entry, decoded, by variant.
    pub(crate) fn per_variant<T: serde::de::DeserializeOwned>(
        &self,
        tag: u8,
        campaign: &str,
        what: &'static str,
    ) -> Result<Vec<(u8, T)>, StoreError> {
        let prefix = keys::prefix(tag, campaign);
        let mut out = Vec::new();
        for entry in self.tree.scan_prefix(&prefix) {
            let (key, value) = entry.map_err(|e| self.sled_error(e))?;
            let Some(&variant) = key.get(prefix.len()) else {
                continue;
            };
            out.push((variant, self.decode(&value, what)?));
        }
        Ok(out)
    }

    /// Where a test-then-winner campaign stands (default: nothing happened yet).
    pub(crate) fn ab_record(&self, campaign: &str) -> Result<AbRecord, StoreError> {
        Ok(self
            .get(&keys::campaign_key(keys::AB, campaign), "A/B record")?
            .unwrap_or_default())
    }

    /// Saves where a test-then-winner campaign stands (durable at the next flush).
    pub(crate) fn set_ab_record(
        &self,
        campaign: &str,
        record: &AbRecord,
    ) -> Result<(), StoreError> {
        self.tree
            .insert(
                keys::campaign_key(keys::AB, campaign),
                self.encode(record, "A/B record")?,
            )
            .map_err(|e| self.sled_error(e))?;
        Ok(())
    }

    /// Moves every held recipient of `campaign` to the queue with the variant `choose` gives
    /// it (it is passed the variant the recipient would get in a split), marked as the
    /// remainder ([`crate::model::REMAINDER`]), in atomic batches;
    /// returns how many were released. A crash midway leaves the rest held, and calling it
    /// again finishes the job.
    pub(crate) fn release_held(
        &self,
        campaign: &str,
        choose: &dyn Fn(u8) -> u8,
    ) -> Result<u64, StoreError> {
        let prefix = keys::prefix(keys::HELD, campaign);
        let mut released = 0;
        loop {
            let held: Vec<sled::IVec> = self
                .tree
                .scan_prefix(&prefix)
                .keys()
                .take(RELEASE_BATCH)
                .collect::<Result<_, _>>()
                .map_err(|e| self.sled_error(e))?;
            if held.is_empty() {
                return Ok(released);
            }
            // invariant: the lock only guards this synchronous section (see record_outcomes)
            let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
            let mut delta = CountsDelta::load(self, campaign)?;
            let mut batch = sled::Batch::default();
            for held_key in held {
                batch.remove(held_key.clone());
                let Some(key) = held_key
                    .get(prefix.len()..)
                    .and_then(RecipientKey::from_suffix)
                else {
                    continue;
                };
                let record: Option<RecipientRecord> = self.recipient(campaign, &key)?;
                let Some(mut record) = record.filter(|r| r.state == RecipientState::Held) else {
                    continue;
                };
                record.variant = choose(record.variant) | crate::model::REMAINDER;
                record.state = RecipientState::Pending;
                delta.shift(
                    self,
                    record.variant,
                    RecipientState::Held,
                    RecipientState::Pending,
                )?;
                batch.insert(
                    keys::recipient_key(keys::RECORD, campaign, &key),
                    self.encode(&record, "recipient")?,
                );
                batch.insert(keys::recipient_key(keys::QUEUE, campaign, &key), &[]);
                released += 1;
            }
            delta.write(self, &mut batch)?;
            self.tree
                .apply_batch(batch)
                .map_err(|e| self.sled_error(e))?;
        }
    }
}
