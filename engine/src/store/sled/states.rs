//! Recipient state (store format 2): per (domain, batch) a "slice" value holding one state
//! word per row of that domain in the batch (`w number domain 0 batch`), the queue and held
//! markers derived from it (`Q`/`H` with the same suffix, present while the slice has a
//! pending / held row), and per recipient an overlay (`o number seq`) only when there are
//! details to keep (first and next attempt, last reply). A delivery rewrites one small slice
//! value per (domain, batch) touched, never a per-recipient record.
//!
//! A slice value: 4 bytes per row, sorted by row: `row:u16be state:u8 attempts:u8`, then the
//! variant per row (1 byte each, same order), then the first attempt per row (`u32be`
//! seconds since the epoch, rounded up; 0 for none: tracking tells a privacy proxy's
//! prefetch by how soon after delivery an open comes). `state` holds the state code in its
//! low 4 bits and [`HAS_OVERLAY`].

use super::keys;
use super::packed::ParsedBatch;
use super::SledStore;
use crate::model::{Millis, RecipientState, ReplyRecord};
use crate::store::{RecipientKey, RecipientRecord, StoreError, StoredRecipient};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// State-byte bit: the recipient has an overlay.
const HAS_OVERLAY: u8 = 0x80;

/// One row's state word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Word {
    /// Row in the batch.
    pub(crate) row: u16,
    /// State.
    pub(crate) state: RecipientState,
    /// Attempts, saturating (the overlay has the exact count above 255).
    pub(crate) attempts: u8,
    /// A/B variant.
    pub(crate) variant: u8,
    /// Whether an overlay exists.
    pub(crate) overlay: bool,
    /// First attempt, seconds since the epoch rounded up (0: none yet).
    pub(crate) first: u32,
}

/// A first attempt as a state word keeps it.
pub(crate) fn first_seconds(first_attempt: Option<Millis>) -> u32 {
    first_attempt.map_or(0, |ms| {
        u32::try_from(ms.div_ceil(1_000)).unwrap_or(u32::MAX)
    })
}

/// A recipient's attempt details, stored only when it has any.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Overlay {
    pub(crate) attempts: u32,
    pub(crate) first_attempt: Option<Millis>,
    pub(crate) next_attempt: Option<Millis>,
    pub(crate) last_reply: Option<ReplyRecord>,
}

impl Overlay {
    /// What `record` keeps beyond its state word, if anything. A delivered recipient keeps
    /// nothing: its reply is in the attempt log.
    pub(crate) fn of(record: &RecipientRecord) -> Option<Overlay> {
        let details = record.first_attempt.is_some()
            || record.next_attempt.is_some()
            || record.last_reply.is_some();
        let keep = (details && record.state != RecipientState::Delivered) || record.attempts > 255;
        keep.then(|| Overlay {
            attempts: record.attempts,
            first_attempt: record.first_attempt,
            next_attempt: record.next_attempt,
            last_reply: record.last_reply.clone(),
        })
    }
}

fn state_code(state: RecipientState) -> u8 {
    match state {
        RecipientState::Pending => 0,
        RecipientState::Deferred => 1,
        RecipientState::Delivered => 2,
        RecipientState::Bounced => 3,
        RecipientState::Expired => 4,
        RecipientState::Suppressed => 5,
        RecipientState::Held => 6,
        RecipientState::Holdout => 7,
        RecipientState::Cancelled => 8,
        RecipientState::Waiting => 9,
    }
}

fn state_of(code: u8) -> Option<RecipientState> {
    Some(match code & 0x0f {
        0 => RecipientState::Pending,
        1 => RecipientState::Deferred,
        2 => RecipientState::Delivered,
        3 => RecipientState::Bounced,
        4 => RecipientState::Expired,
        5 => RecipientState::Suppressed,
        6 => RecipientState::Held,
        7 => RecipientState::Holdout,
        8 => RecipientState::Cancelled,
        9 => RecipientState::Waiting,
        _ => return None,
    })
}

/// Encodes a slice's words (sorted by row).
pub(crate) fn encode_slice(words: &[Word]) -> Vec<u8> {
    let mut out = Vec::with_capacity(words.len() * ROW_BYTES);
    for word in words {
        out.extend_from_slice(&word.row.to_be_bytes());
        let flag = if word.overlay { HAS_OVERLAY } else { 0 };
        out.push(state_code(word.state) | flag);
        out.push(word.attempts);
    }
    out.extend(words.iter().map(|w| w.variant));
    for word in words {
        out.extend_from_slice(&word.first.to_be_bytes());
    }
    out
}

/// Bytes per row of a slice value.
const ROW_BYTES: usize = 9;

/// Decodes a slice value; `None` when damaged.
pub(crate) fn decode_slice(bytes: &[u8]) -> Option<Vec<Word>> {
    if !bytes.len().is_multiple_of(ROW_BYTES) {
        return None;
    }
    let n = bytes.len() / ROW_BYTES;
    let (words, rest) = bytes.split_at(n * 4);
    let (variants, firsts) = rest.split_at(n);
    words
        .chunks_exact(4)
        .zip(variants)
        .zip(firsts.chunks_exact(4))
        .map(|((w, &variant), first)| {
            Some(Word {
                row: u16::from_be_bytes([w[0], w[1]]),
                state: state_of(w[2])?,
                attempts: w[3],
                variant,
                overlay: w[2] & HAS_OVERLAY != 0,
                first: u32::from_be_bytes([first[0], first[1], first[2], first[3]]),
            })
        })
        .collect()
}

/// A slice read for a change: its words and whether its markers were set.
#[derive(Debug)]
struct Slice {
    words: Vec<Word>,
    had_pending: bool,
    had_held: bool,
    dirty: bool,
}

/// Reads and changes recipients of one campaign, caching what it read; [`Changes::write`]
/// adds every changed slice, marker and overlay to a batch.
#[derive(Debug)]
pub(crate) struct Changes {
    number: u32,
    slices: HashMap<(String, u32), Slice>,
    batches: HashMap<u32, Option<ParsedBatch>>,
    overlays: HashMap<u64, Option<Overlay>>,
}

impl Changes {
    /// The campaign number read.
    pub(crate) fn number(&self) -> u32 {
        self.number
    }

    /// True once it holds enough that a long reader should start afresh.
    pub(crate) fn is_large(&self) -> bool {
        self.slices.len() + self.batches.len() > 512
    }

    /// Starts reading campaign number `number`.
    pub(crate) fn new(number: u32) -> Changes {
        Changes {
            number,
            slices: HashMap::new(),
            batches: HashMap::new(),
            overlays: HashMap::new(),
        }
    }

    fn slice(
        &mut self,
        store: &SledStore,
        domain: &str,
        batch: u32,
    ) -> Result<&mut Slice, StoreError> {
        let id = (domain.to_owned(), batch);
        if !self.slices.contains_key(&id) {
            let key = keys::slice_key(keys::STATES, self.number, domain, batch);
            let words = match store.tree.get(&key).map_err(|e| store.sled_error(e))? {
                Some(bytes) => store.decode_words(&bytes)?,
                None => Vec::new(),
            };
            let has = |state| words.iter().any(|w| w.state == state);
            let slice = Slice {
                had_pending: has(RecipientState::Pending),
                had_held: has(RecipientState::Held),
                words,
                dirty: false,
            };
            self.slices.insert(id.clone(), slice);
        }
        self.slices
            .get_mut(&id)
            .ok_or_else(|| unreachable_error(store))
    }

    fn overlay(&mut self, store: &SledStore, seq: u64) -> Result<Option<Overlay>, StoreError> {
        if let Some(overlay) = self.overlays.get(&seq) {
            return Ok(overlay.clone());
        }
        store.get(&keys::overlay_key(self.number, seq), "recipient details")
    }

    /// The record of `key`, or `None` when the campaign has no such recipient.
    pub(crate) fn record(
        &mut self,
        store: &SledStore,
        key: &RecipientKey,
    ) -> Result<Option<RecipientRecord>, StoreError> {
        let (batch, row) = keys::batch_of(key.seq);
        let slice = self.slice(store, &key.domain, batch)?;
        let Some(word) = slice.words.iter().find(|w| w.row == row).copied() else {
            return Ok(None);
        };
        self.assemble(store, key, word)
    }

    /// Builds the record of `key` from its packed row, `word` and overlay.
    fn assemble(
        &mut self,
        store: &SledStore,
        key: &RecipientKey,
        word: Word,
    ) -> Result<Option<RecipientRecord>, StoreError> {
        let (batch, row) = keys::batch_of(key.seq);
        if !self.batches.contains_key(&batch) {
            let bytes = store.packed_batch(self.number, batch)?;
            self.batches.insert(batch, bytes);
        }
        let Some(Some(parsed)) = self.batches.get(&batch) else {
            return Ok(None);
        };
        let Some((domain, packed)) = parsed.row(store, row)? else {
            return Ok(None);
        };
        if domain != key.domain {
            return Ok(None);
        }
        let line = packed.line;
        let (email, values) = packed.unpack(domain);
        let plain = Overlay {
            attempts: u32::from(word.attempts),
            first_attempt: (word.first != 0).then(|| Millis::from(word.first) * 1_000),
            ..Overlay::default()
        };
        let overlay = if word.overlay {
            // gc drops the details of a collected campaign; its words still count attempts.
            self.overlay(store, key.seq)?.unwrap_or(plain)
        } else {
            plain
        };
        Ok(Some(RecipientRecord {
            email,
            values,
            line,
            state: word.state,
            attempts: overlay.attempts,
            first_attempt: overlay.first_attempt,
            next_attempt: overlay.next_attempt,
            last_reply: overlay.last_reply,
            variant: word.variant,
        }))
    }

    /// Sets the recipient `key` (which exists) to `record`'s state, attempts, variant and
    /// details.
    pub(crate) fn put(
        &mut self,
        store: &SledStore,
        key: &RecipientKey,
        record: &RecipientRecord,
    ) -> Result<(), StoreError> {
        let (batch, row) = keys::batch_of(key.seq);
        let overlay = Overlay::of(record);
        let had_overlay;
        {
            let slice = self.slice(store, &key.domain, batch)?;
            let Some(word) = slice.words.iter_mut().find(|w| w.row == row) else {
                return Ok(());
            };
            had_overlay = word.overlay;
            word.state = record.state;
            word.attempts = u8::try_from(record.attempts).unwrap_or(u8::MAX);
            word.variant = record.variant;
            word.overlay = overlay.is_some();
            word.first = first_seconds(record.first_attempt);
            slice.dirty = true;
        }
        if overlay.is_some() || had_overlay {
            self.overlays.insert(key.seq, overlay);
        }
        Ok(())
    }

    /// Adds every change to `batch`.
    pub(crate) fn write(self, store: &SledStore, batch: &mut sled::Batch) {
        for ((domain, number_batch), slice) in self.slices {
            if !slice.dirty {
                continue;
            }
            let key = |tag| keys::slice_key(tag, self.number, &domain, number_batch);
            batch.insert(key(keys::STATES), encode_slice(&slice.words));
            let has = |state| slice.words.iter().any(|w| w.state == state);
            for (tag, had, now) in [
                (
                    keys::QUEUED,
                    slice.had_pending,
                    has(RecipientState::Pending),
                ),
                (keys::HELD, slice.had_held, has(RecipientState::Held)),
            ] {
                match (had, now) {
                    (false, true) => batch.insert(key(tag), &[]),
                    (true, false) => batch.remove(key(tag)),
                    _ => {}
                }
            }
        }
        for (seq, overlay) in self.overlays {
            let key = keys::overlay_key(self.number, seq);
            match overlay.map(|o| store.encode(&o, "recipient details")) {
                Some(Ok(bytes)) => batch.insert(key, bytes),
                // invariant: an overlay is plain data and always encodes; were it not to,
                // leaving the old one is safer than failing the whole group.
                Some(Err(_)) => {}
                None => batch.remove(key),
            }
        }
    }

    /// Every recipient of the slice `(domain, batch)` whose word passes `keep`, in row order.
    pub(crate) fn slice_recipients(
        &mut self,
        store: &SledStore,
        domain: &str,
        batch: u32,
        mut keep: impl FnMut(&Word) -> bool,
        limit: usize,
        out: &mut Vec<StoredRecipient>,
    ) -> Result<(), StoreError> {
        let words: Vec<Word> = self
            .slice(store, domain, batch)?
            .words
            .iter()
            .filter(|w| keep(w))
            .copied()
            .collect();
        for word in words {
            if out.len() >= limit {
                break;
            }
            let key = RecipientKey {
                domain: domain.to_owned(),
                seq: u64::from(batch) * keys::BATCH + u64::from(word.row),
            };
            if let Some(record) = self.assemble(store, &key, word)? {
                out.push(StoredRecipient { key, record });
            }
        }
        Ok(())
    }
}

fn unreachable_error(store: &SledStore) -> StoreError {
    StoreError::Decode {
        path: store.path.clone(),
        what: "recipient states",
        source: postcard::Error::DeserializeUnexpectedEnd,
    }
}

impl SledStore {
    /// Decodes a slice value, or says it is damaged.
    pub(crate) fn decode_words(&self, bytes: &[u8]) -> Result<Vec<Word>, StoreError> {
        decode_slice(bytes).ok_or_else(|| StoreError::Decode {
            path: self.path.clone(),
            what: "recipient states",
            source: postcard::Error::DeserializeBadEncoding,
        })
    }

    /// The campaign number of `campaign`, if it was ever loaded here.
    pub(crate) fn number_of(&self, campaign: &str) -> Result<Option<u32>, StoreError> {
        Ok(self.campaign(campaign)?.map(|meta| meta.number))
    }

    /// Calls `visit` with every slice of campaign number `number` under the tag `tag`
    /// (`w`, `Q` or `H`) from `(domain, batch)` `start` on, in key order, until it returns
    /// false.
    pub(crate) fn each_slice(
        &self,
        tag: u8,
        number: u32,
        start: Option<(&str, u32)>,
        only_domain: Option<&str>,
        mut visit: impl FnMut(String, u32, &[u8]) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let prefix = match only_domain {
            Some(domain) => keys::domain_prefix(tag, number, domain),
            None => keys::number_prefix(tag, number),
        };
        let from = match start {
            Some((domain, batch)) => keys::slice_key(tag, number, domain, batch),
            None => prefix.clone(),
        };
        for entry in self.tree.range(from..) {
            let (key, value) = entry.map_err(|e| self.sled_error(e))?;
            if !key.starts_with(&prefix) {
                break;
            }
            let Some((domain, batch)) = keys::parse_slice_suffix(&key[5..]) else {
                continue;
            };
            if !visit(domain, batch, &value)? {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        let words = vec![
            Word {
                row: 3,
                state: RecipientState::Pending,
                attempts: 0,
                variant: 1,
                overlay: false,
                first: 0,
            },
            Word {
                row: 1_000,
                state: RecipientState::Deferred,
                attempts: 255,
                variant: 0x81,
                overlay: true,
                first: 1_700_000_001,
            },
        ];
        let bytes = encode_slice(&words);
        assert_eq!(bytes.len(), 18);
        assert_eq!(decode_slice(&bytes), Some(words));
        assert_eq!(decode_slice(&bytes[..17]), None);
        assert_eq!(first_seconds(Some(1_700_000_000_001)), 1_700_000_001);
        assert_eq!(first_seconds(None), 0);
    }
}
