//! `volley store copy` on sled: a campaign exported in chunks and imported chunk by chunk,
//! and the store-wide parts.
//!
//! The one file of the sled engine that knows every key kind (`keys.rs`) at once: the values
//! that have no public type (the attempt log, engagement, soft bounces) are read and written
//! here through mirrors of their encodings. What the interface answers (metadata, tracking
//! and A/B records, the suppression list) is read through it.

use super::events::AttemptLog;
use super::keys;
use super::packed::COLLECTED;
use super::states::Changes;
use super::suppression::SoftBounces;
use super::writer::PackedWriter;
use super::SledStore;
use crate::model::{Counts, Millis, RecipientState};
use crate::store::api::TransferStore;
use crate::store::track_rules::Engagement;
use crate::store::transfer::{
    AttemptEntry, CampaignHeader, CampaignImport, ChunkSink, DumpChunk, Recount, SoftBounceEntry,
    StoreWide, CHUNK_ROWS,
};
use crate::store::{
    BounceEvent, CampaignMeta, MessageRef, StoreError, StoredRecipient, TrackEvent,
};
use serde::Serialize;

/// Collects rows into chunks of [`CHUNK_ROWS`] and passes each full one to the sink.
struct Chunker<'s, 'a, T> {
    sink: &'s mut ChunkSink<'a>,
    rows: Vec<T>,
    wrap: fn(Vec<T>) -> DumpChunk,
}

impl<'s, 'a, T> Chunker<'s, 'a, T> {
    fn new(sink: &'s mut ChunkSink<'a>, wrap: fn(Vec<T>) -> DumpChunk) -> Self {
        Chunker {
            sink,
            rows: Vec::new(),
            wrap,
        }
    }

    fn push(&mut self, row: T) -> Result<(), StoreError> {
        self.rows.push(row);
        if self.rows.len() >= CHUNK_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        (self.sink)((self.wrap)(std::mem::take(&mut self.rows)))
    }
}

/// The big-endian number right after a key's prefix: the `at` of a time-ordered key
/// (`tag campaign 0 at id`), the `seq` of an engagement key.
fn number_after(key: &[u8], prefix_len: usize) -> Millis {
    key.get(prefix_len..prefix_len + 8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_be_bytes)
}

impl SledStore {
    /// Calls `visit` with every `(key, value)` under `tag campaign 0`, in key order.
    fn each_under(
        &self,
        tag: u8,
        campaign: &str,
        mut visit: impl FnMut(usize, &[u8], &[u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let prefix = keys::prefix(tag, campaign);
        for entry in self.tree.scan_prefix(&prefix) {
            let (key, value) = entry.map_err(|e| self.sled_error(e))?;
            visit(prefix.len(), &key, &value)?;
        }
        Ok(())
    }

    /// Every recipient of `campaign` in load order, a packed batch at a time.
    fn export_recipients(
        &self,
        campaign: &str,
        sink: &mut ChunkSink<'_>,
    ) -> Result<(), StoreError> {
        let Some(number) = self.number_of(campaign)? else {
            return Ok(());
        };
        let mut out = Chunker::new(sink, DumpChunk::Recipients);
        let prefix = keys::number_prefix(keys::PACKED_ROWS, number);
        for entry in self.packed.scan_prefix(&prefix) {
            let (key, value) = entry.map_err(|e| self.sled_error(e))?;
            let Some(batch) = key
                .get(prefix.len()..prefix.len() + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_be_bytes)
            else {
                continue;
            };
            let domains: Vec<String> = self
                .parse_batch(&value)?
                .domains
                .iter()
                .map(|d| (*d).to_owned())
                .collect();
            let mut changes = Changes::new(number);
            let mut rows = Vec::new();
            for domain in &domains {
                changes.slice_recipients(self, domain, batch, |_| true, usize::MAX, &mut rows)?;
            }
            rows.sort_by_key(|r| r.key.seq);
            for row in rows {
                out.push(row)?;
            }
        }
        out.flush()
    }

    fn export_history(&self, campaign: &str, sink: &mut ChunkSink<'_>) -> Result<(), StoreError> {
        let mut out = Chunker::new(&mut *sink, DumpChunk::Attempts);
        self.each_under(keys::ATTEMPT, campaign, |plen, key, value| {
            let group: AttemptLog = self.decode(value, "attempt log")?;
            let at = number_after(key, plen);
            for attempt in group.into_attempts() {
                out.push(AttemptEntry {
                    at,
                    key: attempt.key,
                    state: attempt.state,
                    reply: attempt.reply,
                })?;
            }
            Ok(())
        })?;
        out.flush()?;
        let mut out = Chunker::new(&mut *sink, DumpChunk::Reports);
        self.each_under(keys::EVENT, campaign, |_, _, value| {
            out.push(self.decode::<BounceEvent>(value, "event")?)
        })?;
        out.flush()?;
        let mut out = Chunker::new(&mut *sink, DumpChunk::Tracking);
        self.each_under(keys::TRACK_EVENT, campaign, |_, _, value| {
            out.push(self.decode::<TrackEvent>(value, "tracking event")?)
        })?;
        out.flush()
    }

    fn export_engagement(
        &self,
        campaign: &str,
        sink: &mut ChunkSink<'_>,
    ) -> Result<(), StoreError> {
        let mut out = Chunker::new(&mut *sink, DumpChunk::Engagement);
        self.each_under(keys::ENGAGEMENT, campaign, |plen, key, value| {
            let e: Engagement = self.decode(value, "engagement")?;
            out.push(e.entry(number_after(key, plen)))
        })?;
        out.flush()?;
        let mut out = Chunker::new(&mut *sink, DumpChunk::Messages);
        for entry in self.tree.scan_prefix([keys::MESSAGE]) {
            let (key, value) = entry.map_err(|e| self.sled_error(e))?;
            let reference: MessageRef = self.decode(&value, "message")?;
            if reference.campaign == campaign {
                let id = String::from_utf8_lossy(&key[1..]).into_owned();
                out.push((id, reference.key))?;
            }
        }
        out.flush()
    }

    /// Every key under a store-wide tag, with its value.
    fn store_wide(&self, tag: u8) -> Result<Vec<(Vec<u8>, sled::IVec)>, StoreError> {
        self.tree
            .scan_prefix([tag])
            .map(|entry| {
                let (key, value) = entry.map_err(|e| self.sled_error(e))?;
                Ok((key[1..].to_vec(), value))
            })
            .collect()
    }
}

impl TransferStore for SledStore {
    fn campaign_header(&self, campaign: &str) -> Result<Option<CampaignHeader>, StoreError> {
        let (Some(meta), Some(counts)) = (
            SledStore::campaign(self, campaign)?,
            SledStore::counts(self, campaign)?,
        ) else {
            return Ok(None);
        };
        Ok(Some(CampaignHeader {
            id: campaign.to_owned(),
            meta,
            counts,
            tracking: self.tracking_meta(campaign)?,
            view: self.view_meta(campaign)?,
            track_counts: self.tracking_counts(campaign)?,
            ab: self.ab_record(campaign)?,
            export_mark: self.export_mark(campaign)?,
            archive: self.archive_encoded(campaign)?,
            relays: self.relay_tallies(campaign)?,
        }))
    }

    fn export_campaign(&self, campaign: &str, sink: &mut ChunkSink<'_>) -> Result<(), StoreError> {
        self.export_recipients(campaign, sink)?;
        self.export_history(campaign, sink)?;
        self.export_engagement(campaign, sink)
    }

    fn import_campaign(
        &self,
        header: &CampaignHeader,
    ) -> Result<Box<dyn CampaignImport + '_>, StoreError> {
        SledImport::start(self, header).map(|import| Box::new(import) as Box<dyn CampaignImport>)
    }

    fn export_store_wide(&self) -> Result<StoreWide, StoreError> {
        let secret = self
            .tree
            .get(keys::SECRET)
            .map_err(|e| self.sled_error(e))?
            .and_then(|bytes| <[u8; 32]>::try_from(bytes.as_ref()).ok());
        let mut soft_bounces = Vec::new();
        for (address, value) in self.store_wide(keys::SOFT)? {
            let soft: SoftBounces = self.decode(&value, "soft bounces")?;
            soft_bounces.push(SoftBounceEntry {
                address: String::from_utf8_lossy(&address).into_owned(),
                count: soft.count,
                first_at: soft.first_at,
            });
        }
        let mut relay_usage = Vec::new();
        for (key, value) in self.store_wide(keys::RELAY_USAGE)? {
            let zero = key.iter().position(|&b| b == 0).unwrap_or(key.len());
            let minute = key.get(zero + 1..).and_then(|b| b.try_into().ok());
            let messages = <[u8; 4]>::try_from(value.as_ref()).ok();
            if let (Some(minute), Some(messages)) = (minute, messages) {
                let relay = String::from_utf8_lossy(&key[..zero]).into_owned();
                relay_usage.push((
                    relay,
                    u64::from_be_bytes(minute),
                    u32::from_be_bytes(messages),
                ));
            }
        }
        let ingested = self.store_wide(keys::INGESTED)?.into_iter().map(|(k, _)| k);
        Ok(StoreWide {
            secret,
            suppressions: self.suppressions()?,
            soft_bounces,
            connection_limits: SledStore::connection_limits(self)?,
            destination_blocks: SledStore::destination_blocks(self)?,
            relay_usage,
            ingested: ingested.collect(),
        })
    }

    fn import_store_wide(&self, parts: &StoreWide, secret: bool) -> Result<(), StoreError> {
        if let Some(value) = parts.secret.filter(|_| secret) {
            self.tree
                .insert(keys::SECRET, &value[..])
                .map_err(|e| self.sled_error(e))?;
        }
        for (address, entry) in &parts.suppressions {
            self.suppress(address, entry)?;
        }
        let mut batch = sled::Batch::default();
        for soft in &parts.soft_bounces {
            let value = SoftBounces {
                count: soft.count,
                first_at: soft.first_at,
            };
            let key = keys::global_key(keys::SOFT, soft.address.as_bytes());
            // An address this store counts already keeps its own count.
            if !self
                .tree
                .contains_key(&key)
                .map_err(|e| self.sled_error(e))?
            {
                batch.insert(key, self.encode(&value, "soft bounces")?);
            }
        }
        for fingerprint in &parts.ingested {
            batch.insert(keys::global_key(keys::INGESTED, fingerprint), &[]);
        }
        self.tree
            .apply_batch(batch)
            .map_err(|e| self.sled_error(e))?;
        for (name, messages) in &parts.connection_limits {
            SledStore::set_connection_limit(self, name, *messages)?;
        }
        for block in &parts.destination_blocks {
            SledStore::set_destination_block(self, block)?;
        }
        for (relay, minute, messages) in &parts.relay_usage {
            SledStore::set_relay_usage(self, relay, &[(*minute, *messages)], 0)?;
        }
        self.flush_blocking()
    }
}

/// A campaign being written into sled by `store copy`.
struct SledImport<'a> {
    store: &'a SledStore,
    campaign: String,
    meta: CampaignMeta,
    counts: Counts,
    recount: Recount,
    /// The recipients, packed as they come (in load order).
    writer: PackedWriter<'a>,
    /// Flags of every packed batch: a collected campaign stays collected.
    flags: u8,
}

impl<'a> SledImport<'a> {
    /// Writes the campaign as not loaded yet, with its tracking and A/B records, export mark
    /// and archive.
    fn start(store: &'a SledStore, header: &CampaignHeader) -> Result<Self, StoreError> {
        let campaign = header.id.clone();
        if SledStore::campaign(store, &campaign)?.is_some() {
            return Err(StoreError::Transfer {
                path: store.path.clone(),
                detail: format!("campaign {campaign} is already in this store"),
            });
        }
        let mut meta = header.meta.clone();
        meta.number = store.free_number(meta.number)?;
        meta.loaded = false;
        store.put(keys::campaign_key(keys::META, &campaign), &meta, "campaign")?;
        if let Some(tracking) = &header.tracking {
            store.set_tracking_meta(&campaign, tracking)?;
        }
        if let Some(view) = &header.view {
            store.set_view_meta(&campaign, view)?;
        }
        store.add_relay_tallies(&campaign, &header.relays)?;
        for (variant, counts) in &header.track_counts {
            let mut key = keys::prefix(keys::TRACK_COUNTS, &campaign);
            key.push(*variant);
            store.put(key, counts, "tracking counts")?;
        }
        if header.ab != Default::default() {
            store.set_ab_record(&campaign, &header.ab)?;
        }
        if let Some(mark) = &header.export_mark {
            let key = keys::campaign_key(keys::EXPORT_MARK, &campaign);
            store.put(key, mark, "export mark")?;
        }
        if let Some(archive) = &header.archive {
            store
                .tree
                .insert(keys::campaign_key(keys::ARCHIVE, &campaign), &archive[..])
                .map_err(|e| store.sled_error(e))?;
        }
        Ok(SledImport {
            store,
            campaign,
            writer: PackedWriter::new(store, meta.number),
            meta,
            counts: header.counts.clone(),
            recount: Recount::default(),
            flags: if header.archive.is_some() {
                COLLECTED
            } else {
                0
            },
        })
    }
}

impl SledStore {
    /// `wanted` when no campaign has that number (the counter raised past it), else a new one.
    fn free_number(&self, wanted: u32) -> Result<u32, StoreError> {
        if wanted == 0 || self.campaign_by_number(wanted)?.is_some() {
            return self.next_campaign_number();
        }
        self.tree
            .update_and_fetch(keys::NEXT_NUMBER, |old| {
                let current = old
                    .and_then(|b| b.try_into().ok())
                    .map_or(0, u32::from_be_bytes);
                Some(current.max(wanted).to_be_bytes().to_vec())
            })
            .map_err(|e| self.sled_error(e))?;
        Ok(wanted)
    }

    fn put<T: Serialize>(
        &self,
        key: Vec<u8>,
        value: &T,
        what: &'static str,
    ) -> Result<(), StoreError> {
        self.tree
            .insert(key, self.encode(value, what)?)
            .map(drop)
            .map_err(|e| self.sled_error(e))
    }

    /// A time-ordered key `tag campaign 0 at id` with a fresh id.
    fn timed_key(&self, tag: u8, campaign: &str, at: Millis) -> Result<Vec<u8>, StoreError> {
        let id = self.db.generate_id().map_err(|e| self.sled_error(e))?;
        let mut key = keys::prefix(tag, campaign);
        key.extend_from_slice(&at.to_be_bytes());
        key.extend_from_slice(&id.to_be_bytes());
        Ok(key)
    }
}

impl SledImport<'_> {
    fn recipients(
        &mut self,
        batch: &mut sled::Batch,
        rows: Vec<StoredRecipient>,
    ) -> Result<(), StoreError> {
        for StoredRecipient { key, record } in rows {
            self.recount.add(record.variant, record.state);
            if matches!(
                record.state,
                RecipientState::Deferred | RecipientState::Waiting
            ) {
                let due = record.next_attempt.unwrap_or(0);
                batch.insert(keys::retry_key(&self.campaign, due, &key), &[]);
            }
            self.writer.add(&key, record, self.flags)?;
        }
        Ok(())
    }

    fn history(&mut self, batch: &mut sled::Batch, chunk: DumpChunk) -> Result<(), StoreError> {
        let chunk = match chunk {
            DumpChunk::Recipients(rows) => return self.recipients(batch, rows),
            other => other,
        };
        let (store, campaign) = (self.store, self.campaign.as_str());
        match chunk {
            DumpChunk::Recipients(_) => {}
            DumpChunk::Attempts(rows) => {
                // Outcomes recorded at the same moment make one group again.
                let prefix = keys::prefix(keys::ATTEMPT, campaign);
                let mut group = (0, AttemptLog::default());
                for row in rows {
                    if row.at != group.0 {
                        let (at, log) = std::mem::take(&mut group);
                        log.write(store, batch, &prefix, at)?;
                        group.0 = row.at;
                    }
                    group.1.push(&row.key, row.state, row.reply.as_ref());
                }
                group.1.write(store, batch, &prefix, group.0)?;
            }
            DumpChunk::Reports(rows) => {
                for row in rows {
                    let key = store.timed_key(keys::EVENT, campaign, row.at)?;
                    batch.insert(key, store.encode(&row, "event")?);
                }
            }
            DumpChunk::Tracking(rows) => {
                for row in rows {
                    let key = store.timed_key(keys::TRACK_EVENT, campaign, row.at)?;
                    batch.insert(key, store.encode(&row, "tracking event")?);
                }
            }
            DumpChunk::Engagement(rows) => {
                for row in rows {
                    let mut key = keys::prefix(keys::ENGAGEMENT, campaign);
                    key.extend_from_slice(&row.seq.to_be_bytes());
                    let value = Engagement::from_entry(&row);
                    batch.insert(key, store.encode(&value, "engagement")?);
                }
            }
            DumpChunk::Messages(rows) => {
                for (id, key) in rows {
                    let reference = MessageRef {
                        campaign: campaign.to_owned(),
                        key,
                    };
                    let value = store.encode(&reference, "message")?;
                    batch.insert(keys::global_key(keys::MESSAGE, id.as_bytes()), value);
                }
            }
        }
        Ok(())
    }
}

impl CampaignImport for SledImport<'_> {
    fn write(&mut self, chunk: DumpChunk) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        self.history(&mut batch, chunk)?;
        self.store
            .tree
            .apply_batch(batch)
            .map_err(|e| self.store.sled_error(e))
    }

    fn finish(self: Box<Self>) -> Result<Counts, StoreError> {
        let mut this = *self;
        let writer = std::mem::replace(&mut this.writer, PackedWriter::new(this.store, 0));
        writer.finish()?;
        let (store, campaign) = (this.store, this.campaign.as_str());
        let mut totals = this.recount.totals;
        totals.invalid = this.counts.invalid;
        totals.duplicate = this.counts.duplicate;
        totals.excluded = this.counts.excluded;
        let mut batch = sled::Batch::default();
        batch.insert(
            keys::campaign_key(keys::COUNTS, campaign),
            store.encode(&totals, "counters")?,
        );
        for (variant, counts) in &this.recount.variants {
            let mut key = keys::prefix(keys::VARIANT_COUNTS, campaign);
            key.push(*variant);
            batch.insert(key, store.encode(counts, "variant counters")?);
        }
        let meta = CampaignMeta {
            loaded: true,
            ..this.meta
        };
        batch.insert(
            keys::campaign_key(keys::META, campaign),
            store.encode(&meta, "campaign")?,
        );
        store
            .tree
            .apply_batch(batch)
            .map_err(|e| store.sled_error(e))?;
        store.flush_blocking()?;
        Ok(totals)
    }
}
