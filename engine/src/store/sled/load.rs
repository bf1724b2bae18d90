//! Loading a campaign's accepted recipients (store format 2): rows packed a batch at a time
//! (`packed`), each domain's state words and queue marker per batch (`states`),
//! de-duplication in memory, and the `loaded` mark that makes a re-run skip loading.
//!
//! Rows are numbered (their `seq`, hence their batch) a window of [`WINDOW`] rows at a time,
//! grouped by domain within the window: a list that interleaves a thousand domains still gets
//! slices of many rows of one domain, so a send rewrites few, larger state values instead of
//! one per recipient. The CSV line of each row is kept as it was.

use super::events::AttemptLog;
use super::keys;
use super::packed::BatchBuilder;
use super::states::{encode_slice, Word};
use super::variants::CountsDelta;
use super::SledStore;
use crate::model::{now_millis, Assignment, RecipientState, ReplyRecord, Suppression};
use crate::store::{CampaignMeta, LoadResult, LoadSession, RecipientKey, StoreError};
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};

/// Suppression lists up to this size are read into memory when a load starts.
const SUPPRESSIONS_IN_MEMORY: usize = 200_000;

/// Rows held, then numbered grouped by domain (16 batches: a few MB of rows at most). Larger
/// windows make larger per-domain state values, rewritten whole at every recorded group: on
/// the million-recipient run over 1,000 domains, 128 batches left 444 bytes per recipient
/// after the send (old versions in sled's log), 16 batches 176.
const WINDOW: usize = 16 * keys::BATCH as usize;

/// An accepted row waiting in the window for its number.
struct Waiting {
    address: String,
    domain: String,
    values: Vec<String>,
    line: u64,
    state: RecipientState,
    variant: u8,
    suppressed: Option<Suppression>,
}

/// Where an address seen earlier in this load is: numbered, or still in the window.
#[derive(Clone, Copy)]
enum Seen {
    Seq(u64),
    Window(usize),
}

/// Writes one campaign's recipients into the store. Obtained from [`SledStore::start_load`].
pub(crate) struct SledLoader<'a> {
    store: &'a SledStore,
    campaign: String,
    columns: Vec<String>,
    number: u32,
    next_seq: u64,
    counts: CountsDelta,
    /// The batch being filled.
    rows: BatchBuilder,
    /// Its state words, by domain.
    words: BTreeMap<String, Vec<Word>>,
    /// Its suppressed rows' details and attempt-log entries.
    overlays: sled::Batch,
    log: AttemptLog,
    /// Rows accepted and not numbered yet.
    window: Vec<Waiting>,
    /// Address hash → where each row loaded so far is.
    seen: HashMap<u64, Seen>,
    /// Addresses whose hash another address had first.
    collided: HashSet<String>,
    /// The suppression list, when small enough to hold.
    suppressed: Option<HashMap<String, Suppression>>,
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
                self.encode_meta(&meta)?,
            )
            .map_err(|e| self.sled_error(e))?;
        Ok(SledLoader {
            store: self,
            campaign: campaign.to_owned(),
            columns,
            number,
            next_seq: 0,
            counts: CountsDelta::empty(campaign),
            rows: BatchBuilder::default(),
            words: BTreeMap::new(),
            overlays: sled::Batch::default(),
            log: AttemptLog::default(),
            window: Vec::with_capacity(WINDOW),
            seen: HashMap::new(),
            collided: HashSet::new(),
            suppressed: self.small_suppression_list()?,
        })
    }

    /// The whole suppression list, unless it has more than [`SUPPRESSIONS_IN_MEMORY`] entries.
    fn small_suppression_list(&self) -> Result<Option<HashMap<String, Suppression>>, StoreError> {
        let mut out = HashMap::new();
        for entry in self.tree.scan_prefix([keys::SUPPRESSED]) {
            if out.len() >= SUPPRESSIONS_IN_MEMORY {
                return Ok(None);
            }
            let (key, value) = entry.map_err(|e| self.sled_error(e))?;
            let address = String::from_utf8_lossy(&key[1..]).into_owned();
            out.insert(address, self.decode(&value, "suppression")?);
        }
        Ok(Some(out))
    }

    /// Deletes every key of a campaign (meta, counters, recipients, queue, retries, dedupe,
    /// events, attempt log, tracking, A/B and gc records). The suppression list stays.
    pub(crate) fn remove_campaign(&self, campaign: &str) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        let number = self.number_of(campaign)?;
        if let Some(number) = number {
            for tag in [
                keys::PACKED_ROWS,
                keys::STATES,
                keys::QUEUED,
                keys::HELD,
                keys::OVERLAY,
            ] {
                for key in self
                    .tree
                    .scan_prefix(keys::number_prefix(tag, number))
                    .keys()
                {
                    batch.remove(key.map_err(|e| self.sled_error(e))?);
                }
            }
        }
        batch.remove(keys::campaign_key(keys::META, campaign));
        batch.remove(keys::campaign_key(keys::COUNTS, campaign));
        batch.remove(keys::campaign_key(keys::AB, campaign));
        batch.remove(keys::campaign_key(keys::EXPORT_MARK, campaign));
        batch.remove(keys::campaign_key(keys::ARCHIVE, campaign));
        batch.remove(keys::campaign_key(keys::TRACKING_META, campaign));
        batch.remove(keys::campaign_key(keys::VIEW_META, campaign));
        for tag in [
            keys::RETRY,
            keys::EVENT,
            keys::ATTEMPT,
            keys::VARIANT_COUNTS,
            keys::TRACK_COUNTS,
            keys::TRACK_EVENT,
            keys::ENGAGEMENT,
            keys::TRACK_DAILY,
            super::append::IDEMPOTENCY,
            super::append::IDEMPOTENCY_BY_TIME,
            super::relay_tallies::RELAY_TALLY,
        ] {
            for key in self.tree.scan_prefix(keys::prefix(tag, campaign)).keys() {
                batch.remove(key.map_err(|e| self.sled_error(e))?);
            }
        }
        self.tree
            .apply_batch(batch)
            .map_err(|e| self.sled_error(e))?;
        // Packed rows kept apart go last: a crash in between leaves rows nothing refers to,
        // never states without their rows.
        match number {
            Some(number) if self.packed_apart() => {
                let mut batch = sled::Batch::default();
                let prefix = keys::number_prefix(keys::PACKED_ROWS, number);
                for key in self.packed.scan_prefix(prefix).keys() {
                    batch.remove(key.map_err(|e| self.sled_error(e))?);
                }
                self.packed
                    .apply_batch(batch)
                    .map_err(|e| self.sled_error(e))
            }
            _ => Ok(()),
        }
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
        if self.is_duplicate(address)? {
            return Ok(false);
        }
        self.seen
            .insert(hash(address), Seen::Window(self.window.len()));
        let suppressed = match &self.suppressed {
            Some(list) => list.get(address).cloned(),
            None => self.store.suppression(address)?,
        };
        let (state, variant) = match (suppressed.is_some(), assignment) {
            // The holdout mirrors the list, suppressed addresses included: not sent either way.
            (_, Assignment::Holdout) => (RecipientState::Holdout, 0),
            (true, Assignment::Variant(v) | Assignment::Held { fallback: v }) => {
                (RecipientState::Suppressed, v)
            }
            (false, Assignment::Variant(v)) => (RecipientState::Pending, v),
            (false, Assignment::Held { fallback }) => (RecipientState::Held, fallback),
        };
        self.counts.enter(self.store, variant, state)?;
        self.window.push(Waiting {
            address: address.to_owned(),
            domain: domain.to_owned(),
            values,
            line,
            state,
            variant,
            suppressed: suppressed.filter(|_| state == RecipientState::Suppressed),
        });
        if self.window.len() >= WINDOW {
            self.number_window()?;
        }
        Ok(true)
    }

    fn accepted(&self) -> u64 {
        self.counts.totals().total
    }

    fn finish(
        self: Box<Self>,
        invalid: u64,
        duplicate: u64,
        excluded: u64,
    ) -> Result<LoadResult, StoreError> {
        let mut this = *self;
        this.number_window()?;
        if !this.rows.is_empty() {
            let (batch, _) = keys::batch_of(this.next_seq.saturating_sub(1));
            this.apply(batch)?;
        }
        this.write_counts(invalid, duplicate, excluded)
    }
}

/// The 64-bit hash the loader de-duplicates addresses by.
fn hash(address: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    address.hash(&mut hasher);
    hasher.finish()
}

impl SledLoader<'_> {
    /// Numbers the rows of the window grouped by domain (in order of arrival within a
    /// domain) and packs them, writing each batch as it fills.
    fn number_window(&mut self) -> Result<(), StoreError> {
        let mut window = std::mem::take(&mut self.window);
        window.sort_by(|a, b| a.domain.cmp(&b.domain));
        for waiting in window.drain(..) {
            self.pack(waiting)?;
        }
        self.window = window;
        Ok(())
    }

    /// Gives `waiting` the next sequence number and adds it to the batch being filled.
    fn pack(&mut self, waiting: Waiting) -> Result<(), StoreError> {
        let seq = self.next_seq;
        let (batch, row) = keys::batch_of(seq);
        self.next_seq += 1;
        self.seen.insert(hash(&waiting.address), Seen::Seq(seq));
        let Waiting {
            address,
            domain,
            values,
            line,
            state,
            variant,
            suppressed,
        } = waiting;
        self.rows
            .push(self.store, row, &address, &domain, values, line)?;
        let mut word = Word {
            row,
            state,
            attempts: 0,
            variant,
            overlay: false,
            first: 0,
        };
        if let Some(entry) = suppressed {
            word.overlay = true;
            self.note_suppressed(&domain, seq, &entry)?;
        }
        match self.words.get_mut(&domain) {
            Some(words) => words.push(word),
            None => {
                self.words.insert(domain, vec![word]);
            }
        }
        if u64::from(row) == keys::BATCH - 1 {
            self.apply(batch)?;
        }
        Ok(())
    }

    /// Keeps why row `seq` was suppressed at load (its details and an attempt-log entry).
    fn note_suppressed(
        &mut self,
        domain: &str,
        seq: u64,
        entry: &Suppression,
    ) -> Result<(), StoreError> {
        let reply = ReplyRecord::local(format!("suppressed: {} ({})", entry.reason, entry.detail));
        let key = RecipientKey {
            domain: domain.to_owned(),
            seq,
        };
        self.log
            .push(&key, RecipientState::Suppressed, Some(&reply));
        let overlay = super::states::Overlay {
            last_reply: Some(reply),
            ..Default::default()
        };
        self.overlays.insert(
            keys::overlay_key(self.number, seq),
            self.store.encode(&overlay, "recipient details")?,
        );
        Ok(())
    }

    /// True when `address` was loaded before: its hash was seen and the row it belongs to
    /// holds the same address (a hash collision with another address is told apart).
    fn is_duplicate(&mut self, address: &str) -> Result<bool, StoreError> {
        if self.collided.contains(address) {
            return Ok(true);
        }
        let Some(&seen) = self.seen.get(&hash(address)) else {
            return Ok(false);
        };
        let earlier = match seen {
            Seen::Window(i) => self.window.get(i).map(|w| w.address.clone()),
            Seen::Seq(seq) => self.address_of(seq)?,
        };
        if earlier.as_deref() == Some(address) {
            return Ok(true);
        }
        // Another address with the same hash: remember this one by name from now on.
        self.collided.insert(address.to_owned());
        Ok(false)
    }

    /// The address of row `seq` loaded earlier (in the batch being filled, or written: a
    /// batch is written as soon as it is full).
    fn address_of(&self, seq: u64) -> Result<Option<String>, StoreError> {
        let (batch, row) = keys::batch_of(seq);
        let (current, _) = keys::batch_of(self.next_seq);
        if batch == current {
            return self.rows.address(self.store, row);
        }
        let Some(parsed) = self.store.packed_batch(self.number, batch)? else {
            return Ok(None);
        };
        Ok(parsed
            .row(self.store, row)?
            .map(|(domain, packed)| packed.unpack(domain).0))
    }

    /// Writes the counters and the `loaded` mark, then flushes.
    fn write_counts(
        mut self,
        invalid: u64,
        duplicate: u64,
        excluded: u64,
    ) -> Result<LoadResult, StoreError> {
        self.counts.totals_mut().invalid = invalid;
        self.counts.totals_mut().duplicate = duplicate;
        self.counts.totals_mut().excluded = excluded;
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
            self.store.encode_meta(&meta)?,
        );
        self.store
            .tree
            .apply_batch(batch)
            .map_err(|e| self.store.sled_error(e))?;
        self.store.flush_blocking()?;
        Ok(LoadResult { counts })
    }

    /// Writes the filled batch number `batch`: its packed rows, each domain's state words
    /// and queue or held marker, the suppressed rows' details and attempt-log entries.
    fn apply(&mut self, batch: u32) -> Result<(), StoreError> {
        // The rows first: a crash in between leaves rows no state refers to yet.
        self.store
            .put_packed(self.number, batch, self.rows.take())?;
        let mut out = std::mem::take(&mut self.overlays);
        for (domain, words) in std::mem::take(&mut self.words) {
            put_slice(&mut out, self.number, &domain, batch, &words);
        }
        let log_prefix = keys::prefix(keys::ATTEMPT, &self.campaign);
        std::mem::take(&mut self.log).write(self.store, &mut out, &log_prefix, now_millis())?;
        self.store
            .tree
            .apply_batch(out)
            .map_err(|e| self.store.sled_error(e))
    }
}

/// Puts one domain's slice of batch `batch` of campaign `number` into `out`: its state words,
/// and its queue and held markers when it has pending or held recipients.
pub(super) fn put_slice(
    out: &mut sled::Batch,
    number: u32,
    domain: &str,
    batch: u32,
    words: &[Word],
) {
    let key = |tag| keys::slice_key(tag, number, domain, batch);
    if words.iter().any(|w| w.state == RecipientState::Pending) {
        out.insert(key(keys::QUEUED), &[]);
    }
    if words.iter().any(|w| w.state == RecipientState::Held) {
        out.insert(key(keys::HELD), &[]);
    }
    out.insert(key(keys::STATES), encode_slice(words));
}
