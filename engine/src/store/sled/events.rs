//! A campaign's history for export (`volley events`): every delivery outcome from the attempt
//! log, every late bounce, delay and complaint, and every open, click and unsubscribe, merged
//! into one stream in time order.
//!
//! The attempt log (`a` keys, one [`AttemptLog`] group per recording) is written by
//! [`SledStore::record_outcomes`] in the same batch as the outcomes, and by the loader for
//! recipients suppressed at load; each of the three sources
//! is already in time order per campaign, so reading is a three-way merge of range scans and
//! never holds more than one pending entry per source in memory.

use super::keys;
use super::states::Changes;
use super::SledStore;
use crate::model::{Millis, RecipientState, ReplyRecord};
use crate::store::{
    BounceEvent, EventKind, ExportEvent, ExportKind, RecipientKey, RecipientRecord, StoreError,
    TrackEvent, TrackKind,
};
use serde::{Deserialize, Serialize};

/// The outcomes recorded together (one `record_outcomes` call, or one loaded batch's
/// suppressed rows): one attempt-log value, its reply texts shared.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct AttemptLog {
    domains: Vec<String>,
    rows: Vec<AttemptRow>,
    replies: Vec<ReplyRecord>,
}

/// One outcome of an [`AttemptLog`].
#[derive(Debug, Serialize, Deserialize)]
struct AttemptRow {
    domain: u32,
    seq: u64,
    state: RecipientState,
    reply: Option<u32>,
}

/// Distinct replies looked for before a reply is simply added again (a group whose replies
/// all differ, e.g. each naming its queue id, stays linear).
const REPLY_LOOKBACK: usize = 16;

impl AttemptLog {
    /// Notes that recipient `key` became `state` with `reply`.
    pub(crate) fn push(
        &mut self,
        key: &RecipientKey,
        state: RecipientState,
        reply: Option<&ReplyRecord>,
    ) {
        let domain = match self.domains.iter().rposition(|d| *d == key.domain) {
            Some(i) => i,
            None => {
                self.domains.push(key.domain.clone());
                self.domains.len() - 1
            }
        };
        let reply = reply.map(|reply| {
            let start = self.replies.len().saturating_sub(REPLY_LOOKBACK);
            match self.replies[start..].iter().position(|r| r == reply) {
                Some(i) => start + i,
                None => {
                    self.replies.push(reply.clone());
                    self.replies.len() - 1
                }
            }
        });
        self.rows.push(AttemptRow {
            domain: u32::try_from(domain).unwrap_or(u32::MAX),
            seq: key.seq,
            state,
            reply: reply.and_then(|r| u32::try_from(r).ok()),
        });
    }

    /// Adds the group to `batch` under `log_prefix` at time `at` (nothing when empty).
    pub(crate) fn write(
        self,
        store: &SledStore,
        batch: &mut sled::Batch,
        log_prefix: &[u8],
        at: Millis,
    ) -> Result<(), StoreError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let id = store.db.generate_id().map_err(|e| store.sled_error(e))?;
        let mut log_key = Vec::with_capacity(log_prefix.len() + 16);
        log_key.extend_from_slice(log_prefix);
        log_key.extend_from_slice(&at.to_be_bytes());
        log_key.extend_from_slice(&id.to_be_bytes());
        batch.insert(log_key, store.encode(&self, "attempt log")?);
        Ok(())
    }

    /// How many outcomes the group holds.
    pub(crate) fn len(&self) -> usize {
        self.rows.len()
    }

    /// The group's outcomes, in the order they were recorded.
    pub(crate) fn into_attempts(self) -> impl Iterator<Item = Attempt> {
        let AttemptLog {
            domains,
            rows,
            replies,
        } = self;
        rows.into_iter().map(move |row| Attempt {
            key: RecipientKey {
                domain: usize::try_from(row.domain)
                    .ok()
                    .and_then(|i| domains.get(i))
                    .cloned()
                    .unwrap_or_default(),
                seq: row.seq,
            },
            state: row.state,
            reply: row
                .reply
                .and_then(|i| usize::try_from(i).ok())
                .and_then(|i| replies.get(i))
                .cloned(),
        })
    }
}

/// One outcome of the attempt log, as read back.
pub(crate) struct Attempt {
    /// The recipient.
    pub(crate) key: RecipientKey,
    /// The state it moved to.
    pub(crate) state: RecipientState,
    /// The reply that moved it, if any.
    pub(crate) reply: Option<ReplyRecord>,
}

/// The merged history of one campaign, oldest first, from sled. Obtained from
/// [`SledStore::export_events`];
/// reads the store as it goes (a store error ends nothing: it is yielded, then reading goes
/// on with the next entry).
pub(crate) struct SledEvents {
    store: SledStore,
    /// Recipients read so far (dropped whenever it grows large: memory stays flat).
    recipients: Changes,
    campaign: String,
    links: Vec<String>,
    sources: [Source; 3],
}

impl std::fmt::Debug for SledEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledEvents")
            .field("campaign", &self.campaign)
            .finish_non_exhaustive()
    }
}

/// One time-ordered range scan and its next entry, decoded.
struct Source {
    iter: sled::Iter,
    prefix: Vec<u8>,
    tag: u8,
    head: Option<Result<Entry, StoreError>>,
    /// The rest of the attempt group the head came from.
    queued: std::collections::VecDeque<Entry>,
}

/// A decoded entry of one of the three sources.
enum Entry {
    Attempt(Millis, Attempt),
    Report(BounceEvent),
    Track(TrackEvent),
}

impl Entry {
    fn at(&self) -> Millis {
        match self {
            Entry::Attempt(at, _) => *at,
            Entry::Report(event) => event.at,
            Entry::Track(event) => event.at,
        }
    }
}

impl SledStore {
    /// Every event of `campaign` at or after `since` (epoch milliseconds), oldest first:
    /// delivery outcomes, late bounces, delays and complaints, opens, clicks and unsubscribes.
    /// Events at the same millisecond come as delivery outcomes, then reports, then tracking.
    /// Streams: memory stays flat however long the history.
    pub(crate) fn export_events(
        &self,
        campaign: &str,
        since: Millis,
    ) -> Result<SledEvents, StoreError> {
        let Some(number) = self.number_of(campaign)? else {
            return Err(StoreError::UnknownCampaign {
                campaign: campaign.to_owned(),
                path: self.path.clone(),
            });
        };
        let links = self
            .tracking_meta(campaign)?
            .map(|meta| meta.links)
            .unwrap_or_default();
        let source = |tag: u8| {
            let prefix = keys::prefix(tag, campaign);
            let mut start = prefix.clone();
            start.extend_from_slice(&since.to_be_bytes());
            Source {
                iter: self.tree.range(start..),
                prefix,
                tag,
                head: None,
                queued: std::collections::VecDeque::new(),
            }
        };
        let mut events = SledEvents {
            store: self.clone(),
            recipients: Changes::new(number),
            campaign: campaign.to_owned(),
            links,
            sources: [
                source(keys::ATTEMPT),
                source(keys::EVENT),
                source(keys::TRACK_EVENT),
            ],
        };
        for i in 0..events.sources.len() {
            events.advance(i);
        }
        Ok(events)
    }
}

impl SledEvents {
    /// Reads source `i`'s next entry into its head (an attempt group is read whole, then
    /// handed out one outcome at a time).
    fn advance(&mut self, i: usize) {
        let store = &self.store;
        let source = &mut self.sources[i];
        loop {
            if let Some(entry) = source.queued.pop_front() {
                source.head = Some(Ok(entry));
                return;
            }
            source.head = match source.iter.next() {
                None => None,
                Some(Err(e)) => Some(Err(store.sled_error(e))),
                Some(Ok((key, _))) if !key.starts_with(&source.prefix) => None,
                Some(Ok((key, value))) if source.tag == keys::ATTEMPT => {
                    let at = key
                        .get(source.prefix.len()..source.prefix.len() + 8)
                        .and_then(|b| b.try_into().ok())
                        .map_or(0, u64::from_be_bytes);
                    match store.decode::<AttemptLog>(&value, "attempt log") {
                        Ok(group) => {
                            source.queued = group
                                .into_attempts()
                                .map(|attempt| Entry::Attempt(at, attempt))
                                .collect();
                            continue;
                        }
                        Err(error) => Some(Err(error)),
                    }
                }
                Some(Ok((_, value))) if source.tag == keys::EVENT => {
                    Some(store.decode(&value, "event").map(Entry::Report))
                }
                Some(Ok((_, value))) => {
                    Some(store.decode(&value, "tracking event").map(Entry::Track))
                }
            };
            return;
        }
    }

    /// The address and variant of a recipient, from its record.
    fn recipient(&mut self, key: &RecipientKey) -> Result<(String, Option<u8>), StoreError> {
        if self.recipients.is_large() {
            self.recipients = Changes::new(self.recipients.number());
        }
        let record: Option<RecipientRecord> = self.recipients.record(&self.store, key)?;
        Ok(record.map_or((String::new(), None), |r| (r.email, Some(r.variant))))
    }

    fn export(&mut self, entry: Entry) -> Result<ExportEvent, StoreError> {
        Ok(match entry {
            Entry::Attempt(at, attempt) => {
                let (recipient, variant) = self.recipient(&attempt.key)?;
                ExportEvent {
                    at,
                    kind: ExportKind::from_state(attempt.state),
                    recipient,
                    variant,
                    machine: None,
                    link: None,
                    url: None,
                    reply: attempt.reply,
                }
            }
            Entry::Report(event) => ExportEvent {
                at: event.at,
                kind: match event.kind {
                    EventKind::Bounce => ExportKind::Bounced,
                    EventKind::Delay => ExportKind::Deferred,
                    EventKind::Complaint => ExportKind::Complaint,
                },
                variant: self.recipient(&event.key)?.1,
                recipient: event.address,
                machine: None,
                link: None,
                url: None,
                reply: Some(event.reply),
            },
            Entry::Track(event) => ExportEvent {
                at: event.at,
                kind: match event.kind {
                    TrackKind::Open => ExportKind::Open,
                    TrackKind::Click => ExportKind::Click,
                    TrackKind::Unsubscribe => ExportKind::Unsubscribe,
                },
                recipient: self.recipient(&event.key)?.0,
                variant: Some(event.variant),
                machine: event.machine,
                link: event.link,
                url: event
                    .link
                    .and_then(|i| self.links.get(usize::from(i)))
                    .cloned(),
                reply: None,
            },
        })
    }
}

impl Iterator for SledEvents {
    type Item = Result<ExportEvent, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        // The earliest head; an error first, ties to the lower source.
        let next = self
            .sources
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match &s.head {
                Some(Ok(entry)) => Some((entry.at(), i)),
                Some(Err(_)) => Some((0, i)),
                None => None,
            })
            .min()
            .map(|(_, i)| i)?;
        let head = self.sources[next].head.take()?;
        self.advance(next);
        Some(head.and_then(|entry| self.export(entry)))
    }
}
