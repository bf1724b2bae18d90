//! The sled engine: the embedded default, and the only module that touches sled.
//!
//! It keeps, per campaign, every accepted recipient packed a thousand to a value (`packed`),
//! their states per domain and batch with the pending queue (`states`), the retry index and
//! the counters behind `volley status` (layout: `keys`, format and upgrade: `format`,
//! `upgrade`). Multi-part updates go through one atomic batch; durability comes from
//! [`SledStore::flush`], which callers run in small groups (group commit).
//!
//! sled is single-process: [`SledStore::open`] fails with [`StoreError::Locked`] while another
//! process holds the folder; such callers talk to that process instead (see `control`).

mod append;
mod conversions;
mod counters;
mod documents;
mod engine;
mod error;
mod events;
mod folder;
mod format;
mod gc;
mod keys;
mod load;
pub(in crate::store) mod outcomes;
mod packed;
mod queue;
mod relay_tallies;
mod reopen;
mod reports;
mod states;
mod suppression;
mod topics;
mod tracking;
mod transfer;
pub(crate) mod upgrade;
mod variants;
mod views;
mod warmup;
mod webhooks;
mod writer;

pub(crate) use error::is_lock_error;

use super::{CampaignMeta, RecipientKey, RecipientRecord, StoreError, StoredRecipient};
use crate::model::{Counts, DestinationBlock, Millis, RecipientState};
use serde::{de::DeserializeOwned, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// An open sled store. Cheap to clone; clones share the same database.
#[derive(Clone)]
pub(crate) struct SledStore {
    path: PathBuf,
    db: sled::Db,
    tree: sled::Tree,
    /// Where the packed recipients (`p` keys, large and written once) live: their own tree
    /// from format 3 on, so that a node of small values rewritten at every recorded group
    /// (counters, state slices) never holds them too; the main tree in a format-2 store.
    packed: sled::Tree,
    /// The campaign documents (`documents.rs`): a tree of their own.
    documents: sled::Tree,
    /// Serialises read-modify-write updates of records and counters.
    write_lock: Arc<Mutex<()>>,
    /// Notes this store open in this process until it is dropped (last, so that sled's
    /// handles go first).
    _open: Arc<reopen::OpenStore>,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore")
            .field("path", &self.path)
            .finish()
    }
}

/// sled's page cache: enough for a busy campaign, small enough to keep memory flat.
const CACHE_BYTES: u64 = 4 * 1024 * 1024;
/// Retry-index entries read at most to find the next window opening (status only).
const WINDOW_SCAN: usize = 10_000;

impl SledStore {
    /// Opens (creating if needed) the store in folder `path`. The folder is private to the
    /// user running Volley (mode 0700): created so, and tightened to 0700 when it exists with
    /// a looser mode.
    pub(crate) fn open(path: &Path) -> Result<SledStore, StoreError> {
        folder::make_private(path)?;
        let config = sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_BYTES)
            .mode(sled::Mode::HighThroughput)
            .flush_every_ms(Some(100));
        let locked =
            |error: &sled::Error| matches!(error, sled::Error::Io(io) if is_lock_error(io));
        let db = reopen::open_when_released(path, locked, || config.open()).map_err(|source| {
            if locked(&source) {
                StoreError::Locked {
                    path: path.to_owned(),
                }
            } else {
                error::sled_error(path, source)
            }
        })?;
        let tree = db
            .open_tree("campaigns")
            .map_err(|source| error::sled_error(path, source))?;
        let found = format::check(path, &tree)?;
        let packed = if found >= format::PACKED_APART {
            db.open_tree("packed")
                .map_err(|source| error::sled_error(path, source))?
        } else {
            tree.clone()
        };
        let documents = db
            .open_tree("documents")
            .map_err(|source| error::sled_error(path, source))?;
        Ok(SledStore {
            path: path.to_owned(),
            db,
            tree,
            packed,
            documents,
            write_lock: Arc::new(Mutex::new(())),
            _open: reopen::OpenStore::new(path),
        })
    }

    /// The store folder.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The campaign's metadata, or `None` if it was never loaded here.
    pub(crate) fn campaign(&self, campaign: &str) -> Result<Option<CampaignMeta>, StoreError> {
        match self
            .tree
            .get(keys::campaign_key(keys::META, campaign))
            .map_err(|e| self.sled_error(e))?
        {
            Some(bytes) => self.decode_meta(&bytes).map(Some),
            None => Ok(None),
        }
    }

    /// The campaign's counters, or `None` if it was never loaded here.
    pub(crate) fn counts(&self, campaign: &str) -> Result<Option<Counts>, StoreError> {
        self.get_counts(&keys::campaign_key(keys::COUNTS, campaign), "counters")
    }

    /// Counters at `key`, of this layout or the one before (see `counters`).
    pub(crate) fn get_counts(
        &self,
        key: &[u8],
        what: &'static str,
    ) -> Result<Option<Counts>, StoreError> {
        match self.tree.get(key).map_err(|e| self.sled_error(e))? {
            Some(bytes) => self.decode_counts(&bytes, what).map(Some),
            None => Ok(None),
        }
    }

    /// Decodes counters of this layout or the one before.
    pub(crate) fn decode_counts(
        &self,
        bytes: &[u8],
        what: &'static str,
    ) -> Result<Counts, StoreError> {
        counters::decode(bytes).map_or_else(|| self.decode(bytes, what), Ok)
    }

    /// Every campaign id this store knows.
    pub(crate) fn campaigns(&self) -> Result<Vec<String>, StoreError> {
        self.tree
            .scan_prefix([keys::META])
            .keys()
            .map(|key| {
                let key = key.map_err(|e| self.sled_error(e))?;
                Ok(String::from_utf8_lossy(&key[1..]).into_owned())
            })
            .collect()
    }

    /// One recipient's record.
    pub(crate) fn recipient(
        &self,
        campaign: &str,
        key: &RecipientKey,
    ) -> Result<Option<RecipientRecord>, StoreError> {
        match self.number_of(campaign)? {
            Some(number) => states::Changes::new(number).record(self, key),
            None => Ok(None),
        }
    }

    /// Up to `limit` pending recipients after `after` (exclusive), in domain order.
    pub(crate) fn pending(
        &self,
        campaign: &str,
        after: Option<&RecipientKey>,
        limit: usize,
    ) -> Result<Vec<StoredRecipient>, StoreError> {
        let Some(number) = self.number_of(campaign)? else {
            return Ok(Vec::new());
        };
        let mut changes = states::Changes::new(number);
        let mut out = Vec::with_capacity(limit.min(4096));
        let start = after.map(|k| (k.domain.as_str(), keys::batch_of(k.seq).0));
        self.each_slice(keys::QUEUED, number, start, None, |domain, batch, _| {
            let first = u64::from(batch) * keys::BATCH;
            let after_seq = after
                .filter(|k| k.domain == domain)
                .map(|k| k.seq.saturating_add(1).saturating_sub(first));
            let keep = |w: &states::Word| {
                w.state == RecipientState::Pending
                    && after_seq.is_none_or(|min| u64::from(w.row) >= min)
            };
            changes.slice_recipients(self, &domain, batch, keep, limit, &mut out)?;
            Ok(out.len() < limit)
        })?;
        Ok(out)
    }

    /// Up to `limit` deferred recipients whose next attempt is due at or before `now`.
    pub(crate) fn due(
        &self,
        campaign: &str,
        now: Millis,
        limit: usize,
    ) -> Result<Vec<StoredRecipient>, StoreError> {
        self.due_where(campaign, now, limit, |_| true)
    }

    /// Up to `limit` deferred recipients due at or before `now` whose domain `wanted` says
    /// yes to, earliest first.
    pub(crate) fn due_where(
        &self,
        campaign: &str,
        now: Millis,
        limit: usize,
        wanted: impl Fn(&str) -> bool,
    ) -> Result<Vec<StoredRecipient>, StoreError> {
        let Some(number) = self.number_of(campaign)? else {
            return Ok(Vec::new());
        };
        let mut changes = states::Changes::new(number);
        let prefix = keys::prefix(keys::RETRY, campaign);
        let mut out = Vec::new();
        for entry in self.tree.scan_prefix(&prefix) {
            let (key, _) = entry.map_err(|e| self.sled_error(e))?;
            let Some((due, rkey)) = keys::parse_retry_suffix(&key[prefix.len()..]) else {
                continue;
            };
            if due > now || out.len() >= limit {
                break;
            }
            if !wanted(&rkey.domain) {
                continue;
            }
            if let Some(record) = changes.record(self, &rkey)? {
                out.push(StoredRecipient { key: rkey, record });
            }
        }
        Ok(out)
    }

    /// The earliest time a recipient of the campaign waiting for its window sees it open:
    /// the retry index (deferred and waiting recipients, by due time) read in order up to the
    /// first waiting one, at most [`WINDOW_SCAN`] entries.
    pub(crate) fn next_window(&self, campaign: &str) -> Result<Option<Millis>, StoreError> {
        let Some(number) = self.number_of(campaign)? else {
            return Ok(None);
        };
        let mut changes = states::Changes::new(number);
        let prefix = keys::prefix(keys::RETRY, campaign);
        for key in self.tree.scan_prefix(&prefix).keys().take(WINDOW_SCAN) {
            let key = key.map_err(|e| self.sled_error(e))?;
            let Some((due, rkey)) = keys::parse_retry_suffix(&key[prefix.len()..]) else {
                continue;
            };
            let record = changes.record(self, &rkey)?;
            if record.is_some_and(|r| r.state == RecipientState::Waiting) {
                return Ok(Some(due));
            }
        }
        Ok(None)
    }

    /// The earliest time a deferred or waiting recipient of the campaign is due.
    pub(crate) fn next_due(&self, campaign: &str) -> Result<Option<Millis>, StoreError> {
        let prefix = keys::prefix(keys::RETRY, campaign);
        match self.tree.scan_prefix(&prefix).keys().next() {
            Some(key) => {
                let key = key.map_err(|e| self.sled_error(e))?;
                Ok(keys::parse_retry_suffix(&key[prefix.len()..]).map(|(due, _)| due))
            }
            None => Ok(None),
        }
    }

    /// Every recipient of a campaign in a given state (for reports and tests), in key order
    /// (domain, then sequence).
    pub(crate) fn recipients_in(
        &self,
        campaign: &str,
        state: RecipientState,
    ) -> Result<Vec<StoredRecipient>, StoreError> {
        let Some(number) = self.number_of(campaign)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut changes = states::Changes::new(number);
        self.each_slice(keys::STATES, number, None, None, |domain, batch, _| {
            let keep = |w: &states::Word| w.state == state;
            changes.slice_recipients(self, &domain, batch, keep, usize::MAX, &mut out)?;
            Ok(true)
        })?;
        Ok(out)
    }

    /// Remembers that destination `name` (the relay, or MX host names) takes at most
    /// `messages` per connection, as learned from its replies. Not durable until
    /// [`SledStore::flush`].
    pub(crate) fn set_connection_limit(&self, name: &str, messages: u64) -> Result<(), StoreError> {
        let mut key = vec![keys::CONNECTION_LIMIT];
        key.extend_from_slice(name.as_bytes());
        self.tree
            .insert(key, &messages.to_be_bytes())
            .map(drop)
            .map_err(|e| self.sled_error(e))
    }

    /// Every learned per-connection message limit, by destination name.
    pub(crate) fn connection_limits(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let mut out = Vec::new();
        for entry in self.tree.scan_prefix([keys::CONNECTION_LIMIT]) {
            let (key, value) = entry.map_err(|e| self.sled_error(e))?;
            let Ok(bytes) = <[u8; 8]>::try_from(value.as_ref()) else {
                continue;
            };
            let name = String::from_utf8_lossy(&key[1..]).into_owned();
            out.push((name, u64::from_be_bytes(bytes)));
        }
        Ok(out)
    }

    /// Keeps the policy block of a destination, replacing the one kept for it. Not durable
    /// until [`SledStore::flush`].
    pub(crate) fn set_destination_block(&self, block: &DestinationBlock) -> Result<(), StoreError> {
        let key = keys::global_key(keys::DESTINATION_BLOCK, block.destination.as_bytes());
        let value = self.encode(block, "policy block")?;
        self.tree
            .insert(key, value)
            .map(drop)
            .map_err(|e| self.sled_error(e))
    }

    /// Every policy block kept, by destination name (records that do not read are
    /// skipped).
    pub(crate) fn destination_blocks(&self) -> Result<Vec<DestinationBlock>, StoreError> {
        let mut out = Vec::new();
        for entry in self.tree.scan_prefix([keys::DESTINATION_BLOCK]) {
            let (_, value) = entry.map_err(|e| self.sled_error(e))?;
            if let Ok(block) = postcard::from_bytes::<DestinationBlock>(&value) {
                out.push(block);
            }
        }
        Ok(out)
    }

    /// Makes everything written so far durable.
    pub(crate) async fn flush(&self) -> Result<(), StoreError> {
        self.db
            .flush_async()
            .await
            .map(drop)
            .map_err(|e| self.sled_error(e))
    }

    /// Makes everything written so far durable, blocking the calling thread.
    pub(crate) fn flush_blocking(&self) -> Result<(), StoreError> {
        self.db.flush().map(drop).map_err(|e| self.sled_error(e))
    }

    fn get<T: DeserializeOwned>(
        &self,
        key: &[u8],
        what: &'static str,
    ) -> Result<Option<T>, StoreError> {
        match self.tree.get(key).map_err(|e| self.sled_error(e))? {
            Some(bytes) => self.decode(&bytes, what).map(Some),
            None => Ok(None),
        }
    }

    fn decode<T: DeserializeOwned>(
        &self,
        bytes: &[u8],
        what: &'static str,
    ) -> Result<T, StoreError> {
        postcard::from_bytes(bytes).map_err(|source| StoreError::Decode {
            path: self.path.clone(),
            what,
            source,
        })
    }

    fn encode<T: Serialize>(&self, value: &T, what: &'static str) -> Result<Vec<u8>, StoreError> {
        postcard::to_stdvec(value).map_err(|source| StoreError::Encode {
            path: self.path.clone(),
            what,
            source,
        })
    }

    fn sled_error(&self, source: sled::Error) -> StoreError {
        error::sled_error(&self.path, source)
    }
}

#[cfg(test)]
mod tests;
