//! Appending messages to a loaded campaign (the transactional lane): each call packs its
//! rows into fresh batches after the campaign's last one, with their state words, queue
//! markers, counters and idempotency records in one atomic batch of the main tree (the
//! packed rows go first, as at load: a crash in between leaves rows nothing refers to).
//!
//! Idempotency records: `I campaign 0 key` → [`Remembered`] (the row a key named first),
//! and `J campaign 0 at:u64be key` → () by time, so expired keys are dropped a few at a time
//! as later appends come, without a scan of the live ones.

use super::keys;
use super::load::put_slice;
use super::packed::BatchBuilder;
use super::states::Word;
use super::variants::CountsDelta;
use super::SledStore;
use crate::model::{add_duration, Millis, RecipientState};
use crate::store::{AppendRow, Appended, IdempotencyKey, RecipientKey, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Idempotency record: the row a key named first.
pub(crate) const IDEMPOTENCY: u8 = b'I';
/// Idempotency records by time (`J campaign 0 at key`).
pub(crate) const IDEMPOTENCY_BY_TIME: u8 = b'J';
/// Expired idempotency records dropped per append at most.
const PRUNE: usize = 256;

/// What an idempotency key remembers.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Remembered {
    key: RecipientKey,
    fingerprint: [u8; 32],
    at: Millis,
}

fn idempotency_key(campaign: &str, key: &str) -> Vec<u8> {
    let mut out = keys::prefix(IDEMPOTENCY, campaign);
    out.extend_from_slice(key.as_bytes());
    out
}

fn by_time_key(campaign: &str, at: Millis, key: &str) -> Vec<u8> {
    let mut out = keys::prefix(IDEMPOTENCY_BY_TIME, campaign);
    out.extend_from_slice(&at.to_be_bytes());
    out.extend_from_slice(key.as_bytes());
    out
}

/// One batch being appended: its rows, state words by domain, and the writes beside them.
struct Appending {
    batch: u32,
    rows: BatchBuilder,
    words: BTreeMap<String, Vec<Word>>,
    next_row: u16,
}

impl SledStore {
    /// See [`crate::store::CampaignStore::append`].
    pub(crate) fn append(
        &self,
        campaign: &str,
        rows: &[AppendRow],
        now: Millis,
    ) -> Result<Vec<Appended>, StoreError> {
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let number = self
            .campaign(campaign)?
            .filter(|meta| meta.loaded)
            .map(|meta| meta.number)
            .ok_or_else(|| StoreError::UnknownCampaign {
                campaign: campaign.to_owned(),
                path: self.path.clone(),
            })?;
        let mut counts = CountsDelta::load(self, campaign)?;
        let mut writes = sled::Batch::default();
        // Expired records go first: a key renewed below then keeps its new record.
        self.prune_idempotency(&mut writes, campaign, rows, now)?;
        let mut out = Vec::with_capacity(rows.len());
        let mut now_seen: BTreeMap<&str, (RecipientKey, [u8; 32])> = BTreeMap::new();
        let mut appending = Appending {
            batch: self.next_batch(number)?,
            rows: BatchBuilder::default(),
            words: BTreeMap::new(),
            next_row: 0,
        };
        for row in rows {
            if let Some(idem) = &row.idempotency {
                let earlier = match now_seen.get(idem.key.as_str()) {
                    Some((key, fingerprint)) => Some((key.clone(), *fingerprint)),
                    None => self.remembered(campaign, idem, now)?,
                };
                if let Some((key, fingerprint)) = earlier {
                    out.push(Appended::Existing {
                        key,
                        same_request: fingerprint == idem.fingerprint,
                    });
                    continue;
                }
            }
            if u64::from(appending.next_row) == keys::BATCH {
                self.write_appended(number, &mut appending, &mut writes)?;
            }
            let seq = u64::from(appending.batch) * keys::BATCH + u64::from(appending.next_row);
            let key = RecipientKey {
                domain: row.domain.clone(),
                seq,
            };
            appending.rows.push(
                self,
                appending.next_row,
                &row.address,
                &row.domain,
                row.values.clone(),
                0,
            )?;
            appending
                .words
                .entry(row.domain.clone())
                .or_default()
                .push(Word {
                    row: appending.next_row,
                    state: RecipientState::Pending,
                    attempts: 0,
                    variant: row.variant,
                    overlay: false,
                    first: 0,
                });
            appending.next_row += 1;
            counts.enter(self, row.variant, RecipientState::Pending)?;
            if let Some(idem) = &row.idempotency {
                self.remember(&mut writes, campaign, idem, &key, now)?;
                now_seen.insert(&idem.key, (key.clone(), idem.fingerprint));
            }
            out.push(Appended::New(key));
        }
        if appending.next_row > 0 {
            self.write_appended(number, &mut appending, &mut writes)?;
        }
        counts.write(self, &mut writes)?;
        self.tree
            .apply_batch(writes)
            .map_err(|e| self.sled_error(e))?;
        Ok(out)
    }

    /// The batch after the campaign's last packed one (0 when it has none).
    fn next_batch(&self, number: u32) -> Result<u32, StoreError> {
        let last = self
            .packed
            .scan_prefix(keys::number_prefix(keys::PACKED_ROWS, number))
            .keys()
            .next_back()
            .transpose()
            .map_err(|e| self.sled_error(e))?;
        Ok(match last {
            Some(key) => key
                .get(key.len().saturating_sub(4)..)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map_or(0, |b| u32::from_be_bytes(b).saturating_add(1)),
            None => 0,
        })
    }

    /// Writes the packed rows of the batch being filled now and puts its slices in
    /// `writes`; the next rows go to the following batch.
    fn write_appended(
        &self,
        number: u32,
        appending: &mut Appending,
        writes: &mut sled::Batch,
    ) -> Result<(), StoreError> {
        self.put_packed(number, appending.batch, appending.rows.take())?;
        for (domain, words) in std::mem::take(&mut appending.words) {
            put_slice(writes, number, &domain, appending.batch, &words);
        }
        appending.batch = appending.batch.saturating_add(1);
        appending.next_row = 0;
        Ok(())
    }

    /// The row `idem` named first, with its fingerprint, while its window lasts.
    fn remembered(
        &self,
        campaign: &str,
        idem: &IdempotencyKey,
        now: Millis,
    ) -> Result<Option<(RecipientKey, [u8; 32])>, StoreError> {
        let found: Option<Remembered> =
            self.get(&idempotency_key(campaign, &idem.key), "idempotency record")?;
        Ok(found
            .filter(|r| add_duration(r.at, idem.window) > now)
            .map(|r| (r.key, r.fingerprint)))
    }

    /// Puts the record of `idem` naming `key` into `writes`.
    fn remember(
        &self,
        writes: &mut sled::Batch,
        campaign: &str,
        idem: &IdempotencyKey,
        key: &RecipientKey,
        now: Millis,
    ) -> Result<(), StoreError> {
        let record = Remembered {
            key: key.clone(),
            fingerprint: idem.fingerprint,
            at: now,
        };
        writes.insert(
            idempotency_key(campaign, &idem.key),
            self.encode(&record, "idempotency record")?,
        );
        writes.insert(by_time_key(campaign, now, &idem.key), &[]);
        Ok(())
    }

    /// Drops up to [`PRUNE`] idempotency records older than the window of `rows` (those
    /// renewed since are kept).
    fn prune_idempotency(
        &self,
        writes: &mut sled::Batch,
        campaign: &str,
        rows: &[AppendRow],
        now: Millis,
    ) -> Result<(), StoreError> {
        let Some(window) = rows
            .iter()
            .find_map(|r| r.idempotency.as_ref().map(|i| i.window))
        else {
            return Ok(());
        };
        let cutoff = now.saturating_sub(u64::try_from(window.as_millis()).unwrap_or(u64::MAX));
        let prefix = keys::prefix(IDEMPOTENCY_BY_TIME, campaign);
        let end = by_time_key(campaign, cutoff, "");
        for entry in self.tree.range(prefix.clone()..end).keys().take(PRUNE) {
            let entry = entry.map_err(|e| self.sled_error(e))?;
            writes.remove(entry.clone());
            let Some(rest) = entry.get(prefix.len()..) else {
                continue;
            };
            let (at, key) = rest.split_at(rest.len().min(8));
            let at = <[u8; 8]>::try_from(at).map_or(0, u64::from_be_bytes);
            let key = String::from_utf8_lossy(key);
            let current: Option<Remembered> =
                self.get(&idempotency_key(campaign, &key), "idempotency record")?;
            if current.is_some_and(|r| r.at == at) {
                writes.remove(idempotency_key(campaign, &key));
            }
        }
        Ok(())
    }
}

// Its tests are the store suite's (`store/tests/append.rs`), run on every engine.
