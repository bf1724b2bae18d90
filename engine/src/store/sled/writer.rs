//! Writing whole recipients (record, state and details) as format-2 packed batches with their
//! state words: used by `volley store upgrade` and by `volley store copy` into sled.

use super::keys;
use super::load::put_slice;
use super::packed::BatchBuilder;
use super::states::{Overlay, Word};
use super::SledStore;
use crate::store::{RecipientKey, RecipientRecord, StoreError};
use std::collections::BTreeMap;

/// Writes recipients, in sequence order, as packed batches with their state words.
pub(crate) struct PackedWriter<'a> {
    store: &'a SledStore,
    number: u32,
    batch: Option<(u32, u8)>,
    rows: BatchBuilder,
    words: BTreeMap<String, Vec<Word>>,
    out: sled::Batch,
    count: u64,
    /// The last batch written: a later recipient may not go back to it.
    written: Option<u32>,
}

impl<'a> PackedWriter<'a> {
    /// Starts writing recipients of campaign number `number` into `store`.
    pub(crate) fn new(store: &'a SledStore, number: u32) -> PackedWriter<'a> {
        PackedWriter {
            store,
            number,
            batch: None,
            rows: BatchBuilder::default(),
            words: BTreeMap::new(),
            out: sled::Batch::default(),
            count: 0,
            written: None,
        }
    }

    /// Adds recipient `key` with `record`; `flags` mark its batch ([`COLLECTED`](super::packed::COLLECTED)).
    /// Recipients must come in sequence order, a batch never revisited once left.
    pub(crate) fn add(
        &mut self,
        key: &RecipientKey,
        record: RecipientRecord,
        flags: u8,
    ) -> Result<(), StoreError> {
        let (batch, row) = keys::batch_of(key.seq);
        if self.batch.is_some_and(|(b, _)| b != batch) {
            self.flush()?;
        }
        if self.written.is_some_and(|last| batch <= last) {
            return Err(StoreError::Transfer {
                path: self.store.path.clone(),
                detail: format!(
                    "recipient {} came after a later one: recipients are written in load order",
                    key.seq
                ),
            });
        }
        self.batch = Some((batch, flags));
        let overlay = Overlay::of(&record);
        if let Some(overlay) = &overlay {
            self.out.insert(
                keys::overlay_key(self.number, key.seq),
                self.store.encode(overlay, "recipient details")?,
            );
        }
        self.words
            .entry(key.domain.clone())
            .or_default()
            .push(Word {
                row,
                state: record.state,
                attempts: u8::try_from(record.attempts).unwrap_or(u8::MAX),
                variant: record.variant,
                overlay: overlay.is_some(),
                first: super::states::first_seconds(record.first_attempt),
            });
        self.rows.push(
            self.store,
            row,
            &record.email,
            &key.domain,
            record.values,
            record.line,
        )?;
        self.count += 1;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        let Some((batch, flags)) = self.batch.take() else {
            return Ok(());
        };
        self.written = Some(batch);
        // The rows first: a crash in between leaves rows no state refers to yet.
        self.store
            .put_packed(self.number, batch, self.rows.take_flagged(flags))?;
        let mut out = std::mem::take(&mut self.out);
        for (domain, mut words) in std::mem::take(&mut self.words) {
            words.sort_by_key(|w| w.row);
            put_slice(&mut out, self.number, &domain, batch, &words);
        }
        self.store
            .tree
            .apply_batch(out)
            .map_err(|e| self.store.sled_error(e))
    }

    /// Writes the last batch; how many recipients were written.
    pub(crate) fn finish(mut self) -> Result<u64, StoreError> {
        self.flush()?;
        Ok(self.count)
    }
}
