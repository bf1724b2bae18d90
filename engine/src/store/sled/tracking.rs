//! Opens, clicks and unsubscribes: each campaign's link table (what a tracked link may
//! redirect to), the events, each recipient's engagement (so counts are of unique people) and
//! the counters per campaign and A/B variant. One atomic batch per group of events.

use super::keys;
use super::SledStore;
use crate::model::{Millis, Suppression, SuppressionReason, TrackCounts};
use crate::store::track_rules::{apply, refusal, DailyEvents, Engagement};
use crate::store::{
    DomainTally, RecipientKey, StoreError, TrackEffect, TrackEvent, TrackInput, TrackKind,
    TrackingMeta,
};
use std::collections::HashMap;

impl SledStore {
    /// The campaign's tracking data, when it is tracked.
    pub(crate) fn tracking_meta(&self, campaign: &str) -> Result<Option<TrackingMeta>, StoreError> {
        self.get(
            &keys::campaign_key(keys::TRACKING_META, campaign),
            "tracking",
        )
    }

    /// Stores the campaign's tracking data. A campaign's link table never changes once set:
    /// messages already sent point at its indexes, so a different table is refused (the old
    /// one is returned in the error).
    pub(crate) fn set_tracking_meta(
        &self,
        campaign: &str,
        meta: &TrackingMeta,
    ) -> Result<(), StoreError> {
        let key = keys::campaign_key(keys::TRACKING_META, campaign);
        if let Some(existing) = self.tracking_meta(campaign)? {
            if existing.links != meta.links || existing.key_fingerprint != meta.key_fingerprint {
                return Err(StoreError::TrackingChanged {
                    campaign: campaign.to_owned(),
                    path: self.path.clone(),
                });
            }
            return Ok(());
        }
        self.tree
            .insert(key, self.encode(meta, "tracking")?)
            .map(drop)
            .map_err(|e| self.sled_error(e))
    }

    /// Tracking counts of a campaign, per A/B variant.
    pub(crate) fn tracking_counts(
        &self,
        campaign: &str,
    ) -> Result<Vec<(u8, TrackCounts)>, StoreError> {
        self.per_variant(keys::TRACK_COUNTS, campaign, "tracking counts")
    }

    /// Tracking counts of a campaign, all variants together.
    pub(crate) fn tracking_totals(&self, campaign: &str) -> Result<TrackCounts, StoreError> {
        let mut total = TrackCounts::default();
        for (_, counts) in self.tracking_counts(campaign)? {
            total.add(&counts);
        }
        Ok(total)
    }

    /// A campaign's tracking events in time order, from `since` (epoch milliseconds).
    pub(crate) fn tracking_events(
        &self,
        campaign: &str,
        since: Millis,
    ) -> Result<Vec<TrackEvent>, StoreError> {
        let mut start = keys::prefix(keys::TRACK_EVENT, campaign);
        let prefix = start.clone();
        start.extend_from_slice(&since.to_be_bytes());
        let mut out = Vec::new();
        for entry in self.tree.range(start..) {
            let (key, value) = entry.map_err(|e| self.sled_error(e))?;
            if !key.starts_with(&prefix) {
                break;
            }
            out.push(self.decode(&value, "tracking event")?);
        }
        Ok(out)
    }

    /// Records a group of tracked requests in one atomic batch: the events, each recipient's
    /// engagement, the counters, and an unsubscribe's suppression-list entry. A click on
    /// another link within a second of the recipient's last click is a burst (a scanner
    /// following every link): it is stored as machine-made, and so is the click before it
    /// when that one was all that made the recipient a clicker. Not durable until
    /// [`SledStore::flush`]. No cap: see [`SledStore::record_tracking_capped`].
    pub(crate) fn record_tracking(
        &self,
        inputs: &[TrackInput],
    ) -> Result<Vec<TrackEffect>, StoreError> {
        self.record_tracking_capped(inputs, u32::MAX)
    }

    /// [`SledStore::record_tracking`], storing at most `daily_cap` events per recipient (of a
    /// campaign) per UTC day: past it, an input changes nothing and its effect says
    /// `stored: false`. A recipient's first unsubscribe is always stored, a repeat never. The
    /// count is kept in the store, so the cap holds across restarts.
    pub(crate) fn record_tracking_capped(
        &self,
        inputs: &[TrackInput],
        daily_cap: u32,
    ) -> Result<Vec<TrackEffect>, StoreError> {
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut batch = sled::Batch::default();
        let mut dailies: HashMap<(String, u64), DailyEvents> = HashMap::new();
        let mut engagements: HashMap<(String, u64), Engagement> = HashMap::new();
        let mut counters: HashMap<(String, u8), TrackCounts> = HashMap::new();
        let mut effects = Vec::with_capacity(inputs.len());
        for input in inputs {
            let who = (input.campaign.clone(), input.key.seq);
            let mut engagement = match engagements.get(&who) {
                Some(e) => *e,
                None => self
                    .get(
                        &engagement_key(&input.campaign, input.key.seq),
                        "engagement",
                    )?
                    .unwrap_or_default(),
            };
            let count = || self.count_daily(&mut dailies, input);
            if let Some(refused) = refusal(input, &engagement, daily_cap, count)? {
                effects.push(refused);
                continue;
            }
            let counts_id = (input.campaign.clone(), input.variant);
            let mut counts = match counters.get(&counts_id) {
                Some(c) => *c,
                None => self
                    .get(
                        &counts_key(&input.campaign, input.variant),
                        "tracking counts",
                    )?
                    .unwrap_or_default(),
            };
            let effect = apply(input, &mut engagement, &mut counts);
            if input.kind == TrackKind::Unsubscribe && effect.first {
                let entry = Suppression {
                    reason: SuppressionReason::Unsubscribe,
                    at: input.at,
                    campaign: Some(input.campaign.clone()),
                    detail: "one-click unsubscribe".to_owned(),
                };
                match &input.topic {
                    Some(topic) => {
                        self.suppress_topic_in_batch(&mut batch, &input.address, topic, &entry)?
                    }
                    None => self.suppress_in_batch(&mut batch, &input.address, &entry)?,
                }
            }
            let event = TrackEvent {
                at: input.at,
                kind: input.kind,
                key: input.key.clone(),
                variant: input.variant,
                link: input.link,
                machine: effect.machine,
            };
            let id = self.db.generate_id().map_err(|e| self.sled_error(e))?;
            batch.insert(
                event_key(&input.campaign, input.at, id),
                self.encode(&event, "tracking event")?,
            );
            engagements.insert(who, engagement);
            counters.insert(counts_id, counts);
            effects.push(effect);
        }
        for ((campaign, seq), engagement) in &engagements {
            batch.insert(
                engagement_key(campaign, *seq),
                self.encode(engagement, "engagement")?,
            );
        }
        for ((campaign, variant), counts) in &counters {
            batch.insert(
                counts_key(campaign, *variant),
                self.encode(counts, "tracking counts")?,
            );
        }
        for ((campaign, seq), daily) in &dailies {
            batch.insert(
                daily_key(campaign, *seq),
                self.encode(daily, "daily events")?,
            );
        }
        self.tree
            .apply_batch(batch)
            .map_err(|e| self.sled_error(e))?;
        Ok(effects)
    }

    /// Counts one more event of `input`'s recipient on `input`'s day; the count with it.
    fn count_daily(
        &self,
        dailies: &mut HashMap<(String, u64), DailyEvents>,
        input: &TrackInput,
    ) -> Result<u32, StoreError> {
        let who = (input.campaign.clone(), input.key.seq);
        let mut daily = match dailies.get(&who) {
            Some(d) => *d,
            None => self
                .get(&daily_key(&input.campaign, input.key.seq), "daily events")?
                .unwrap_or_default(),
        };
        let events = daily.count(input.at);
        dailies.insert(who, daily);
        Ok(events)
    }
}

fn engagement_key(campaign: &str, seq: u64) -> Vec<u8> {
    let mut key = keys::prefix(keys::ENGAGEMENT, campaign);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn daily_key(campaign: &str, seq: u64) -> Vec<u8> {
    let mut key = keys::prefix(keys::TRACK_DAILY, campaign);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn counts_key(campaign: &str, variant: u8) -> Vec<u8> {
    let mut key = keys::prefix(keys::TRACK_COUNTS, campaign);
    key.push(variant);
    key
}

fn event_key(campaign: &str, at: Millis, id: u64) -> Vec<u8> {
    let mut key = keys::prefix(keys::TRACK_EVENT, campaign);
    key.extend_from_slice(&at.to_be_bytes());
    key.extend_from_slice(&id.to_be_bytes());
    key
}

impl SledStore {
    /// Every recipient domain of `campaign` with its counts, in domain order. Reads every
    /// state word once (for reports, not for the send path).
    pub(crate) fn domain_tallies(&self, campaign: &str) -> Result<Vec<DomainTally>, StoreError> {
        let mut tallies: Vec<DomainTally> = Vec::new();
        let mut by_domain: HashMap<String, usize> = HashMap::new();
        let mut seq_domain: HashMap<u64, usize> = HashMap::new();
        let mut count = |rkey: RecipientKey, state| {
            let index = *by_domain.entry(rkey.domain.clone()).or_insert_with(|| {
                tallies.push(DomainTally {
                    domain: rkey.domain,
                    ..DomainTally::default()
                });
                tallies.len() - 1
            });
            if let Some(tally) = tallies.get_mut(index) {
                tally.counts.total += 1;
                *tally.counts.get_mut(state) += 1;
            }
            seq_domain.insert(rkey.seq, index);
        };
        if let Some(number) = self.number_of(campaign)? {
            self.each_slice(keys::STATES, number, None, None, |domain, batch, value| {
                for word in self.decode_words(value)? {
                    let seq = u64::from(batch) * keys::BATCH + u64::from(word.row);
                    count(
                        RecipientKey {
                            domain: domain.clone(),
                            seq,
                        },
                        word.state,
                    );
                }
                Ok(true)
            })?;
        }
        let prefix = keys::prefix(keys::ENGAGEMENT, campaign);
        for entry in self.tree.scan_prefix(&prefix) {
            let (key, value) = entry.map_err(|e| self.sled_error(e))?;
            let seq = key
                .get(prefix.len()..prefix.len() + 8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes);
            let Some(tally) = seq
                .and_then(|seq| seq_domain.get(&seq))
                .and_then(|i| tallies.get_mut(*i))
            else {
                continue;
            };
            let engagement: Engagement = self.decode(&value, "engagement")?;
            tally.opened += u64::from(engagement.opened);
            tally.clicked += u64::from(engagement.clicked);
        }
        tallies.sort_by(|a, b| a.domain.cmp(&b.domain));
        Ok(tallies)
    }
}
