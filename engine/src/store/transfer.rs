//! Moving a store's contents between engines (`volley store copy`): the engine-neutral values
//! a campaign is exported as, in chunks, and the store-wide parts copied with it.
//!
//! A campaign is read as one [`CampaignHeader`] (its metadata, tracking and A/B records, export
//! mark, archive and counters) followed by a stream of [`DumpChunk`]s of at most
//! [`CHUNK_ROWS`] rows each, recipients first: memory stays flat however long the list or its
//! history. The receiving engine writes each chunk as it comes and recounts the campaign's
//! state counters from the recipients it stored, so they agree with the rows whatever the
//! source kept.

use super::{
    AbRecord, BounceEvent, CampaignMeta, ExportMark, RecipientKey, StoredRecipient, TrackEvent,
    TrackingMeta,
};
use crate::model::{Counts, Millis, RecipientState, ReplyRecord, Suppression, TrackCounts};
use crate::store::{DocumentState, StoreError};

/// Rows per chunk of a campaign export.
pub const CHUNK_ROWS: usize = 4_096;

/// What a campaign is, apart from its rows.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignHeader {
    /// The campaign id.
    pub id: String,
    /// Its metadata (columns, when loaded, its number in VERP tokens).
    pub meta: CampaignMeta,
    /// Its counters in the source (the target recounts states; load tallies are kept).
    pub counts: Counts,
    /// Its tracking data, when tracked.
    pub tracking: Option<TrackingMeta>,
    /// What "view in browser" needs of it, when stored.
    pub view: Option<crate::store::ViewMeta>,
    /// Tracking counters per A/B variant.
    pub track_counts: Vec<(u8, TrackCounts)>,
    /// Where a test-then-winner campaign stands.
    pub ab: AbRecord,
    /// How far its events were exported.
    pub export_mark: Option<ExportMark>,
    /// What gc kept of its history, once collected (encoded by [`super::Store::collect`]).
    pub archive: Option<Vec<u8>>,
    /// What each relay did for it (`[[relay]]`).
    pub relays: Vec<crate::store::RelayTally>,
}

/// One delivery outcome of the attempt log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptEntry {
    /// When it was recorded.
    pub at: Millis,
    /// The recipient.
    pub key: RecipientKey,
    /// What the recipient became.
    pub state: RecipientState,
    /// The reply (or local failure), if any.
    pub reply: Option<ReplyRecord>,
}

/// What one recipient has done (unique counts and click bursts of later tracking).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngagementEntry {
    /// The recipient's sequence number.
    pub seq: u64,
    /// Opened (a human open).
    pub opened: bool,
    /// Clicked (a human click).
    pub clicked: bool,
    /// Unsubscribed.
    pub unsubscribed: bool,
    /// When the click that made `clicked` true happened (0: none).
    pub first_click_at: Millis,
    /// When the latest click happened (0: none).
    pub last_click_at: Millis,
    /// The link of the latest click.
    pub last_link: u16,
}

/// A part of a campaign's rows, in the order an export yields them: recipients first, then
/// the attempt log, late reports, tracking events, engagement and the Message-ID index.
#[derive(Debug, Clone, PartialEq)]
pub enum DumpChunk {
    /// Recipients with their fields, state, attempts, timestamps, last reply and variant.
    Recipients(Vec<StoredRecipient>),
    /// Delivery outcomes, oldest first.
    Attempts(Vec<AttemptEntry>),
    /// Late bounces, delays and complaints, oldest first.
    Reports(Vec<BounceEvent>),
    /// Opens, clicks and unsubscribes, oldest first.
    Tracking(Vec<TrackEvent>),
    /// Per-recipient engagement.
    Engagement(Vec<EngagementEntry>),
    /// Delivered messages' Message-IDs and their recipients.
    Messages(Vec<(String, RecipientKey)>),
}

impl DumpChunk {
    /// The rows it holds.
    pub fn len(&self) -> usize {
        match self {
            DumpChunk::Recipients(rows) => rows.len(),
            DumpChunk::Attempts(rows) => rows.len(),
            DumpChunk::Reports(rows) => rows.len(),
            DumpChunk::Tracking(rows) => rows.len(),
            DumpChunk::Engagement(rows) => rows.len(),
            DumpChunk::Messages(rows) => rows.len(),
        }
    }

    /// True when it holds no row.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What was written of one campaign, by kind of row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyTally {
    /// Recipients.
    pub recipients: u64,
    /// Attempt-log entries.
    pub attempts: u64,
    /// Late reports.
    pub reports: u64,
    /// Tracking events.
    pub tracking: u64,
    /// Engagement records.
    pub engagement: u64,
    /// Message-ID index entries.
    pub messages: u64,
}

impl CopyTally {
    /// Counts a chunk about to be written.
    pub fn add(&mut self, chunk: &DumpChunk) {
        let n = chunk.len() as u64;
        match chunk {
            DumpChunk::Recipients(_) => self.recipients += n,
            DumpChunk::Attempts(_) => self.attempts += n,
            DumpChunk::Reports(_) => self.reports += n,
            DumpChunk::Tracking(_) => self.tracking += n,
            DumpChunk::Engagement(_) => self.engagement += n,
            DumpChunk::Messages(_) => self.messages += n,
        }
    }

    /// Events of every kind (attempts, reports, tracking).
    pub fn events(&self) -> u64 {
        self.attempts + self.reports + self.tracking
    }
}

/// Soft bounces counted towards suppressing an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoftBounceEntry {
    /// The address.
    pub address: String,
    /// Soft bounces (and expiries) counted.
    pub count: u32,
    /// When the first of them happened.
    pub first_at: Millis,
}

/// The parts of a store that belong to no campaign.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreWide {
    /// The secret tokens (VERP, tracking) are signed with, if the store has one yet.
    pub secret: Option<[u8; 32]>,
    /// The suppression list.
    pub suppressions: Vec<(String, Suppression)>,
    /// Soft bounces counted per address.
    pub soft_bounces: Vec<SoftBounceEntry>,
    /// Learned messages per connection, by destination.
    pub connection_limits: Vec<(String, u64)>,
    /// Policy blocks kept per destination (their breakers tripped).
    pub destination_blocks: Vec<crate::model::DestinationBlock>,
    /// Messages sent per relay per minute (relay, minute since the epoch, messages).
    pub relay_usage: Vec<(String, u64, u32)>,
    /// Fingerprints of reports already ingested.
    pub ingested: Vec<Vec<u8>>,
}

/// Writes one campaign's chunks into a store. Obtained from
/// [`super::TransferStore::import_campaign`]; a campaign whose import did not finish is left
/// not loaded (remove it with [`super::CampaignStore::remove_campaign`]).
pub trait CampaignImport {
    /// Writes one chunk.
    fn write(&mut self, chunk: DumpChunk) -> Result<(), StoreError>;

    /// Recounts the campaign's counters, marks it loaded and makes it durable.
    fn finish(self: Box<Self>) -> Result<Counts, StoreError>;
}

/// Where chunks of an export go (one call per chunk, in order).
pub type ChunkSink<'a> = dyn FnMut(DumpChunk) -> Result<(), StoreError> + 'a;

/// Counts recipients into per-state totals and per-variant counters the way the engines keep
/// them: a held recipient counts in the totals but in no variant until it is released, a
/// held-out one in no variant ever.
#[derive(Debug, Default)]
pub(crate) struct Recount {
    /// Totals by state.
    pub(crate) totals: Counts,
    /// Per stored variant (with its remainder mark).
    pub(crate) variants: std::collections::BTreeMap<u8, Counts>,
}

impl Recount {
    /// Counts one recipient.
    pub(crate) fn add(&mut self, variant: u8, state: RecipientState) {
        self.totals.total += 1;
        *self.totals.get_mut(state) += 1;
        if !matches!(state, RecipientState::Held | RecipientState::Holdout) {
            let counts = self.variants.entry(variant).or_default();
            counts.total += 1;
            *counts.get_mut(state) += 1;
        }
    }
}

/// One campaign copied by [`copy_store`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopiedCampaign {
    /// The campaign id.
    pub id: String,
    /// Rows written, by kind.
    pub tally: CopyTally,
    /// Its counters in the target.
    pub counts: Counts,
    /// Its number in the source's VERP tokens.
    pub number_from: u32,
    /// Its number in the target (different only when the target had given it away: late
    /// bounces to VERP addresses of mail already sent then no longer find it).
    pub number_to: u32,
}

/// What [`copy_store`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// Each campaign copied, in order.
    pub campaigns: Vec<CopiedCampaign>,
    /// Suppression-list entries carried over (entries the target had are kept).
    pub suppressions: usize,
    /// True when the source's token secret was not carried over because the target had
    /// campaigns already: the target's own secret stays, and tokens (tracking links, VERP
    /// addresses) of the copied campaigns' mail already sent no longer verify there.
    pub secret_kept: bool,
    /// Campaign documents carried over (campaigns made over the API or published to a
    /// cluster), with their files and state.
    pub documents: usize,
    /// Warm-up days carried over (per key, provider and day; the source's replace the
    /// target's).
    pub warmup_days: usize,
}

/// Copies `campaign` (every campaign when `None`) and the store-wide parts from `from` into
/// `to`. Refused, with nothing written, when a campaign is not fully loaded in `from` or is
/// in `to` already. A campaign whose copy fails is removed from `to` again.
pub fn copy_store(
    from: &super::Store,
    to: &super::Store,
    campaign: Option<&str>,
) -> Result<CopyReport, StoreError> {
    let ids = match campaign {
        Some(id) => vec![id.to_owned()],
        None => from.campaigns()?,
    };
    let mut headers = Vec::with_capacity(ids.len());
    for id in &ids {
        let header = from
            .campaign_header(id)?
            .ok_or_else(|| StoreError::UnknownCampaign {
                campaign: id.clone(),
                path: from.path().to_owned(),
            })?;
        if !header.meta.loaded {
            return Err(refused(from, format!("campaign {id} is not fully loaded here (an interrupted load): run its send once to finish loading, or remove it; nothing was copied")));
        }
        if to.campaign(id)?.is_some() {
            return Err(refused(to, format!("campaign {id} is already in this store; nothing was copied (copy into a new store, or choose another campaign with --campaign)")));
        }
        headers.push(header);
    }
    let parts = from.export_store_wide()?;
    let target_empty = to.campaigns()?.is_empty();
    to.import_store_wide(&parts, target_empty)?;
    let topic_entries = copy_topics(from, to, &ids)?;
    let mut report = CopyReport {
        campaigns: Vec::with_capacity(headers.len()),
        suppressions: parts.suppressions.len() + topic_entries,
        secret_kept: parts.secret.is_some() && !target_empty,
        documents: 0,
        warmup_days: copy_warmup(from, to)?,
    };
    for header in headers {
        match copy_campaign(from, to, &header) {
            Ok(copied) => report.campaigns.push(copied),
            Err(error) => {
                // Best effort: the error that stopped the copy is the one to report.
                let _ = to.remove_campaign(&header.id);
                return Err(error);
            }
        }
    }
    report.documents = copy_documents(from, to, campaign)?;
    Ok(report)
}

/// Carries the warm-up days over (issue 23): every key's, whichever campaigns are copied,
/// since a key is shared by the campaigns that send under it. Returns how many.
fn copy_warmup(from: &super::Store, to: &super::Store) -> Result<usize, StoreError> {
    let days = from.warmup_days(None)?;
    for day in &days {
        to.warmup_put(day)?;
    }
    Ok(days.len())
}

/// Carries topics over (issue 22): the topic-scoped suppression entries (entries the target
/// has are kept) and the topic of each campaign in `ids` (with its display name, so the
/// target knows the topic); returns how many suppression entries were carried.
fn copy_topics(
    from: &super::Store,
    to: &super::Store,
    ids: &[String],
) -> Result<usize, StoreError> {
    let entries = from.topic_suppressions()?;
    for found in &entries {
        to.suppress_topic(&found.address, &found.topic, &found.entry)?;
    }
    for id in ids {
        if let Some(topic) = from.campaign_topic(id)? {
            to.set_campaign_topic(id, &topic)?;
        }
    }
    Ok(entries.len())
}

/// Carries the webhooks' registrations and cursors in `campaign` over: events keep their
/// times (and so their ids), so a webhook resumes at the target where it stood at the source,
/// neither sending again what its receiver acknowledged nor skipping what it did not.
fn copy_webhook_positions(
    from: &super::Store,
    to: &super::Store,
    campaign: &str,
) -> Result<(), StoreError> {
    for (name, registered, cursor) in from.webhook_positions(campaign)? {
        to.register_webhook(&name, registered)?;
        if let Some(cursor) = cursor {
            to.set_webhook_cursor(&name, campaign, cursor)?;
        }
    }
    Ok(())
}

/// Copies the campaign documents of `campaign` (every one when `None`, also those whose
/// list is not loaded yet) with their files and state; returns how many. A store without
/// documents on either side copies none.
fn copy_documents(
    from: &super::Store,
    to: &super::Store,
    campaign: Option<&str>,
) -> Result<usize, StoreError> {
    let (Some(source), Some(target)) = (from.documents(), to.documents()) else {
        return Ok(0);
    };
    let records = match campaign {
        Some(id) => source.document(id)?.into_iter().collect(),
        None => {
            let mut all = Vec::new();
            for state in [
                DocumentState::Active,
                DocumentState::Paused,
                DocumentState::Cancelled,
                DocumentState::Done,
            ] {
                all.extend(source.documents_in(state)?);
            }
            all
        }
    };
    for record in &records {
        let files = source.document_files(&record.id)?;
        target.publish_document(record, &files)?;
        target.set_document_state(&record.id, record.state)?;
    }
    Ok(records.len())
}

fn refused(store: &super::Store, detail: String) -> StoreError {
    StoreError::Transfer {
        path: store.path().to_owned(),
        detail,
    }
}

/// Streams one campaign's chunks from `from` into `to`.
fn copy_campaign(
    from: &super::Store,
    to: &super::Store,
    header: &CampaignHeader,
) -> Result<CopiedCampaign, StoreError> {
    let mut import = to.import_campaign(header)?;
    let mut tally = CopyTally::default();
    from.export_campaign(&header.id, &mut |chunk| {
        tally.add(&chunk);
        import.write(chunk)
    })?;
    let counts = import.finish()?;
    copy_webhook_positions(from, to, &header.id)?;
    // Orders keep their attribution: it was decided when they were recorded.
    let orders = from.conversions(&header.id)?;
    if !orders.is_empty() {
        to.record_conversions(&header.id, &orders)?;
    }
    let number_to = to.campaign(&header.id)?.map_or(0, |meta| meta.number);
    Ok(CopiedCampaign {
        id: header.id.clone(),
        tally,
        counts,
        number_from: header.meta.number,
        number_to,
    })
}
