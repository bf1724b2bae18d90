//! A/B variants in the store: recipients by state per variant (kept in the same batch as the
//! campaign's counters), the recipients held back for a test's winner, and what was decided.

use super::keys;
use super::states::{Changes, Word};
use super::SledStore;
use crate::model::{Counts, Millis, Reason, RecipientState};
use crate::store::{AbDecision, AbMark, AbRecord, StoreError, StoredRecipient};
use serde::Deserialize;
use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

/// Slices (a domain's rows of one packed batch) of held recipients moved to the queue per
/// atomic batch.
const RELEASE_SLICES: usize = 64;

/// An [`AbRecord`] as versions before the structured [`Reason`] stored it: the reason was a
/// sentence. Read only (see [`SledStore::ab_record`]).
#[derive(Deserialize)]
struct SentenceAbRecord {
    test_sent_at: Option<Millis>,
    decision: Option<SentenceAbDecision>,
}

/// An [`AbDecision`] with its reason as a sentence.
#[derive(Deserialize)]
struct SentenceAbDecision {
    at: Millis,
    how: String,
    variant: Option<u8>,
    reason: String,
    released: u64,
}

impl From<SentenceAbRecord> for AbRecord {
    fn from(old: SentenceAbRecord) -> AbRecord {
        AbRecord {
            test_sent_at: old.test_sent_at,
            decision: old.decision.map(|d| AbDecision {
                at: d.at,
                how: d.how,
                variant: d.variant,
                reason: Reason::Recorded { text: d.reason },
                released: d.released,
            }),
        }
    }
}

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

    /// A new recipient in `state`; held recipients count in no variant yet, held-out ones in
    /// none ever.
    pub(crate) fn enter(
        &mut self,
        store: &SledStore,
        variant: u8,
        state: RecipientState,
    ) -> Result<(), StoreError> {
        self.totals.total += 1;
        *self.totals.get_mut(state) += 1;
        if !matches!(state, RecipientState::Held | RecipientState::Holdout) {
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
                    .get_counts(&variant_key(&self.campaign, variant), "variant counters")?
                    .unwrap_or_default();
                Ok(entry.insert(stored))
            }
        }
    }
}

/// [`Counts`] as versions before the `holdout` state stored them: the same fields, in the
/// `v campaign 0 variant`.
fn variant_key(campaign: &str, variant: u8) -> Vec<u8> {
    let mut key = keys::prefix(keys::VARIANT_COUNTS, campaign);
    key.push(variant);
    key
}

impl SledStore {
    /// Recipients by state per variant index (variants nobody was assigned to are left out).
    pub(crate) fn variant_counts(&self, campaign: &str) -> Result<Vec<(u8, Counts)>, StoreError> {
        let prefix = keys::prefix(keys::VARIANT_COUNTS, campaign);
        let mut out = Vec::new();
        for entry in self.tree.scan_prefix(&prefix) {
            let (key, value) = entry.map_err(|e| self.sled_error(e))?;
            let Some(&variant) = key.get(prefix.len()) else {
                continue;
            };
            out.push((variant, self.decode_counts(&value, "variant counters")?));
        }
        Ok(out)
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
    /// A record written by an earlier version, whose reason was a sentence, is read with
    /// that sentence as [`Reason::Recorded`].
    pub(crate) fn ab_record(&self, campaign: &str) -> Result<AbRecord, StoreError> {
        let key = keys::campaign_key(keys::AB, campaign);
        match self.get::<AbRecord>(&key, "A/B record") {
            Ok(record) => Ok(record.unwrap_or_default()),
            Err(error @ StoreError::Decode { .. }) => {
                match self.get::<SentenceAbRecord>(&key, "A/B record") {
                    Ok(Some(old)) => Ok(old.into()),
                    _ => Err(error),
                }
            }
            Err(error) => Err(error),
        }
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
        let Some(number) = self.number_of(campaign)? else {
            return Ok(0);
        };
        let mut released = 0;
        loop {
            let mut slices = Vec::new();
            self.each_slice(keys::HELD, number, None, None, |domain, batch, _| {
                slices.push((domain, batch));
                Ok(slices.len() < RELEASE_SLICES)
            })?;
            if slices.is_empty() {
                return Ok(released);
            }
            // invariant: the lock only guards this synchronous section (see record_outcomes)
            let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
            let mut delta = CountsDelta::load(self, campaign)?;
            let mut changes = Changes::new(number);
            let mut batch = sled::Batch::default();
            for (domain, slice) in slices {
                let mut held = Vec::new();
                let keep = |w: &Word| w.state == RecipientState::Held;
                changes.slice_recipients(self, &domain, slice, keep, usize::MAX, &mut held)?;
                for StoredRecipient { key, mut record } in held {
                    record.variant = choose(record.variant) | crate::model::REMAINDER;
                    record.state = RecipientState::Pending;
                    delta.shift(
                        self,
                        record.variant,
                        RecipientState::Held,
                        RecipientState::Pending,
                    )?;
                    changes.put(self, &key, &record)?;
                    released += 1;
                }
                // A slice whose held rows are gone (a damaged marker) loses its marker.
                batch.remove(keys::slice_key(keys::HELD, number, &domain, slice));
            }
            delta.write(self, &mut batch)?;
            changes.write(self, &mut batch);
            self.tree
                .apply_batch(batch)
                .map_err(|e| self.sled_error(e))?;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::VariantRate;
    use serde::Serialize;

    /// The layout earlier versions wrote, reason as a sentence.
    #[derive(Serialize)]
    struct Written<'a> {
        test_sent_at: Option<Millis>,
        decision: Option<(Millis, &'a str, Option<u8>, &'a str, u64)>,
    }

    #[test]
    fn a_decision_stored_as_a_sentence_is_read_back_as_recorded_text() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(&dir.path().join("s.volley")).unwrap();
        let old = Written {
            test_sent_at: Some(5),
            decision: Some((
                7,
                "split",
                None,
                "No winner: every variant exceeded a limit.",
                40,
            )),
        };
        store
            .tree
            .insert(
                keys::campaign_key(keys::AB, "c"),
                postcard::to_stdvec(&old).unwrap(),
            )
            .unwrap();
        let record = store.ab_record("c").unwrap();
        let decision = record.decision.unwrap();
        assert_eq!(
            (record.test_sent_at, decision.at, decision.released),
            (Some(5), 7, 40)
        );
        assert_eq!(
            decision.reason,
            Reason::Recorded {
                text: "No winner: every variant exceeded a limit.".into()
            }
        );

        // A record written now reads back as it was.
        let now = AbRecord {
            test_sent_at: Some(1),
            decision: Some(AbDecision {
                at: 2,
                how: "winner".into(),
                variant: Some(1),
                reason: Reason::OnlyOneLeft {
                    winner: VariantRate {
                        id: "B".into(),
                        rate: 0.25,
                    },
                    metric: crate::model::Metric::Opens,
                    vetoed: Vec::new(),
                },
                released: 3,
            }),
        };
        store.set_ab_record("c", &now).unwrap();
        assert_eq!(store.ab_record("c").unwrap(), now);
    }
}
