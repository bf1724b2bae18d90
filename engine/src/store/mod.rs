//! The on-disk store: the only module that touches sled.
//!
//! It keeps, per campaign, every accepted recipient (grouped in per-domain batches), its state,
//! the pending queue, the retry index, de-duplication keys and the counters behind
//! `volley status`. Multi-part updates go through one atomic batch; durability comes from
//! [`Store::flush`], which callers run in small groups (group commit).
//!
//! sled is single-process: [`Store::open`] fails with [`StoreError::Locked`] while another
//! process holds the folder; such callers talk to that process instead (see `control`).

mod error;
mod events;
mod folder;
mod gc;
mod keys;
mod load;
mod outcomes;
pub mod postgres;
mod queue;
mod reports;
mod suppression;
mod tracking;
mod variants;

pub use error::StoreError;
pub use events::{ExportEvent, ExportEvents, ExportKind};
pub use gc::{Collected, ExportMark, GcLine, GcOptions, GcOutcome, GcReport};
pub use keys::RecipientKey;
pub use load::{LoadResult, Loader};
pub use outcomes::{MessageRef, OutcomePolicy, OutcomeUpdate};
pub use reports::{BounceEvent, EventKind, ReportEffect};
pub use tracking::{
    DomainTally, MachineReason, TrackEffect, TrackEvent, TrackInput, TrackKind, TrackingMeta,
};
pub(crate) use variants::AbMark;
pub use variants::{AbDecision, AbRecord};

use crate::model::{Counts, Millis, RecipientState, ReplyRecord};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// What the store remembers of a campaign as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignMeta {
    /// The CSV header: names of the merge fields, in order.
    pub columns: Vec<String>,
    /// True once the whole list was loaded and flushed; a re-run never loads again.
    pub loaded: bool,
    /// When loading finished.
    pub loaded_at: Millis,
    /// A small number unique within this store, used in VERP tokens.
    pub number: u32,
}

/// One accepted recipient and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientRecord {
    /// The normalised address.
    pub email: String,
    /// Merge-field values, aligned with [`CampaignMeta::columns`].
    pub values: Vec<String>,
    /// The CSV line it came from.
    pub line: u64,
    /// Current state.
    pub state: RecipientState,
    /// Delivery attempts made so far.
    pub attempts: u32,
    /// When the first attempt was made.
    pub first_attempt: Option<Millis>,
    /// When a deferred recipient is due again.
    pub next_attempt: Option<Millis>,
    /// The last reply (or local failure) seen.
    pub last_reply: Option<ReplyRecord>,
    /// The A/B variant (index) it gets; while held, the one it gets if the remainder is split.
    pub variant: u8,
}

/// A recipient read back for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecipient {
    /// Its key, to report the outcome against.
    pub key: RecipientKey,
    /// Its record.
    pub record: RecipientRecord,
}

/// An open store. Cheap to clone; clones share the same database.
#[derive(Clone)]
pub struct Store {
    path: PathBuf,
    db: sled::Db,
    tree: sled::Tree,
    /// Serialises read-modify-write updates of records and counters.
    write_lock: Arc<Mutex<()>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// sled's page cache: enough for a busy campaign, small enough to keep memory flat.
const CACHE_BYTES: u64 = 4 * 1024 * 1024;

impl Store {
    /// Opens (creating if needed) the store in folder `path`. The folder is private to the
    /// user running Volley (mode 0700): created so, and tightened to 0700 when it exists with
    /// a looser mode.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        folder::make_private(path)?;
        let config = sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_BYTES)
            .mode(sled::Mode::HighThroughput)
            .flush_every_ms(Some(100));
        let db = config.open().map_err(|source| match &source {
            sled::Error::Io(io) if is_lock_error(io) => StoreError::Locked {
                path: path.to_owned(),
            },
            _ => StoreError::Sled {
                path: path.to_owned(),
                source,
            },
        })?;
        let tree = db
            .open_tree("campaigns")
            .map_err(|source| StoreError::Sled {
                path: path.to_owned(),
                source,
            })?;
        Ok(Store {
            path: path.to_owned(),
            db,
            tree,
            write_lock: Arc::new(Mutex::new(())),
        })
    }

    /// The store folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The campaign's metadata, or `None` if it was never loaded here.
    pub fn campaign(&self, campaign: &str) -> Result<Option<CampaignMeta>, StoreError> {
        self.get(&keys::campaign_key(keys::META, campaign), "campaign")
    }

    /// The campaign's counters, or `None` if it was never loaded here.
    pub fn counts(&self, campaign: &str) -> Result<Option<Counts>, StoreError> {
        self.get(&keys::campaign_key(keys::COUNTS, campaign), "counters")
    }

    /// Every campaign id this store knows.
    pub fn campaigns(&self) -> Result<Vec<String>, StoreError> {
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
    pub fn recipient(
        &self,
        campaign: &str,
        key: &RecipientKey,
    ) -> Result<Option<RecipientRecord>, StoreError> {
        match self.get(
            &keys::recipient_key(keys::RECORD, campaign, key),
            "recipient",
        )? {
            Some(record) => Ok(Some(record)),
            None => self.packed_record(campaign, key),
        }
    }

    /// Up to `limit` pending recipients after `after` (exclusive), in domain order.
    pub fn pending(
        &self,
        campaign: &str,
        after: Option<&RecipientKey>,
        limit: usize,
    ) -> Result<Vec<StoredRecipient>, StoreError> {
        let prefix = keys::prefix(keys::QUEUE, campaign);
        let start = match after {
            Some(key) => {
                let mut k = keys::recipient_key(keys::QUEUE, campaign, key);
                k.push(0);
                k
            }
            None => prefix.clone(),
        };
        let mut out = Vec::with_capacity(limit.min(4096));
        for entry in self.tree.range(start..) {
            let (key, _) = entry.map_err(|e| self.sled_error(e))?;
            if !key.starts_with(&prefix) || out.len() >= limit {
                break;
            }
            let Some(rkey) = RecipientKey::from_suffix(&key[prefix.len()..]) else {
                continue;
            };
            if let Some(record) = self.recipient(campaign, &rkey)? {
                out.push(StoredRecipient { key: rkey, record });
            }
        }
        Ok(out)
    }

    /// Up to `limit` deferred recipients whose next attempt is due at or before `now`.
    pub fn due(
        &self,
        campaign: &str,
        now: Millis,
        limit: usize,
    ) -> Result<Vec<StoredRecipient>, StoreError> {
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
            if let Some(record) = self.recipient(campaign, &rkey)? {
                out.push(StoredRecipient { key: rkey, record });
            }
        }
        Ok(out)
    }

    /// The earliest time a deferred recipient of the campaign is due, if any is deferred.
    pub fn next_due(&self, campaign: &str) -> Result<Option<Millis>, StoreError> {
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
    /// (a collected campaign's in sequence order).
    pub fn recipients_in(
        &self,
        campaign: &str,
        state: RecipientState,
    ) -> Result<Vec<StoredRecipient>, StoreError> {
        let prefix = keys::prefix(keys::RECORD, campaign);
        let mut out = Vec::new();
        for entry in self.tree.scan_prefix(&prefix) {
            let (key, value) = entry.map_err(|e| self.sled_error(e))?;
            let record: RecipientRecord = self.decode(&value, "recipient")?;
            if record.state == state {
                if let Some(rkey) = RecipientKey::from_suffix(&key[prefix.len()..]) {
                    out.push(StoredRecipient { key: rkey, record });
                }
            }
        }
        self.each_packed(campaign, |key, record| {
            if record.state == state {
                out.push(StoredRecipient { key, record });
            }
        })?;
        Ok(out)
    }

    /// Remembers that destination `name` (the relay, or MX host names) takes at most
    /// `messages` per connection, as learned from its replies. Not durable until
    /// [`Store::flush`].
    pub fn set_connection_limit(&self, name: &str, messages: u64) -> Result<(), StoreError> {
        let mut key = vec![keys::CONNECTION_LIMIT];
        key.extend_from_slice(name.as_bytes());
        self.tree
            .insert(key, &messages.to_be_bytes())
            .map(drop)
            .map_err(|e| self.sled_error(e))
    }

    /// Every learned per-connection message limit, by destination name.
    pub fn connection_limits(&self) -> Result<Vec<(String, u64)>, StoreError> {
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

    /// Makes everything written so far durable.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.db
            .flush_async()
            .await
            .map(drop)
            .map_err(|e| self.sled_error(e))
    }

    /// Makes everything written so far durable, blocking the calling thread.
    pub fn flush_blocking(&self) -> Result<(), StoreError> {
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
        StoreError::Sled {
            path: self.path.clone(),
            source,
        }
    }
}

/// sled reports a held lock as an I/O error from `flock`/`fcntl` ("could not acquire lock").
fn is_lock_error(io: &std::io::Error) -> bool {
    io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("lock")
}

#[cfg(test)]
mod tests;
