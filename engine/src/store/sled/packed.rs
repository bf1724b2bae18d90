//! Packed recipients (store format 2): what the loader accepted of each recipient — address,
//! merge fields, line — written once, [`keys::BATCH`] rows to one value (`p number batch`),
//! and never rewritten until `volley gc` drops the merge fields. Anything that changes later
//! (state, attempts, variant, replies) lives in `states`.
//!
//! A batch value: `flags:u8`, the batch's domain table (varint count, then varint length +
//! bytes each), then its rows (varint count, then varint length + bytes each, empty for a
//! row that does not exist). A row is a postcard [`PackedRow`]. Reading one row decodes only
//! the table of row lengths, never the other rows.

use super::keys;
use super::SledStore;
use crate::store::StoreError;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::ops::Range;

/// Flag bit: `volley gc` collected the batch (merge fields dropped or kept, line cleared).
pub(crate) const COLLECTED: u8 = 1;

/// What a batch keeps of one recipient.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PackedRow {
    /// Index of the recipient's domain in the batch's domain table.
    pub(crate) domain: u32,
    /// The address's local part, or the whole address when `whole`.
    pub(crate) local: String,
    /// `local` is the whole address (it does not end in `@domain`).
    pub(crate) whole: bool,
    /// The merge field that held the address, left out of `values` (re-inserted on read).
    pub(crate) column: Option<u32>,
    /// The other merge fields.
    pub(crate) values: Vec<String>,
    /// The CSV line.
    pub(crate) line: u64,
}

impl PackedRow {
    /// Packs one accepted row of the list.
    pub(crate) fn new(
        address: &str,
        domain: &str,
        domain_index: u32,
        mut values: Vec<String>,
        line: u64,
    ) -> PackedRow {
        let column = values.iter().position(|v| v == address);
        if let Some(i) = column {
            values.remove(i);
        }
        let (local, whole) = match address
            .strip_suffix(domain)
            .and_then(|rest| rest.strip_suffix('@'))
        {
            Some(local) => (local.to_owned(), false),
            None => (address.to_owned(), true),
        };
        PackedRow {
            domain: domain_index,
            local,
            whole,
            column: column.and_then(|c| u32::try_from(c).ok()),
            values,
            line,
        }
    }

    /// The address and merge fields as loaded, given the row's domain.
    pub(crate) fn unpack(self, domain: &str) -> (String, Vec<String>) {
        let email = if self.whole {
            self.local
        } else {
            format!("{}@{domain}", self.local)
        };
        let mut values = self.values;
        if let Some(column) = self.column.and_then(|c| usize::try_from(c).ok()) {
            values.insert(column.min(values.len()), email.clone());
        }
        (email, values)
    }
}

/// One batch being written: its domain table and encoded rows.
#[derive(Debug, Default)]
pub(crate) struct BatchBuilder {
    domains: Vec<String>,
    index: HashMap<String, u32>,
    rows: Vec<Vec<u8>>,
}

impl BatchBuilder {
    /// Adds the row at `offset` (rows before it that were never added stay empty).
    pub(crate) fn push(
        &mut self,
        store: &SledStore,
        offset: u16,
        address: &str,
        domain: &str,
        values: Vec<String>,
        line: u64,
    ) -> Result<(), StoreError> {
        let index = match self.index.get(domain) {
            Some(&index) => index,
            None => {
                let index = u32::try_from(self.domains.len()).unwrap_or(u32::MAX);
                self.domains.push(domain.to_owned());
                self.index.insert(domain.to_owned(), index);
                index
            }
        };
        let row = PackedRow::new(address, domain, index, values, line);
        let offset = usize::from(offset);
        if self.rows.len() <= offset {
            self.rows.resize(offset + 1, Vec::new());
        }
        self.rows[offset] = store.encode(&row, "packed recipient")?;
        Ok(())
    }

    /// The address at `offset` of the batch being written, if any.
    pub(crate) fn address(
        &self,
        store: &SledStore,
        offset: u16,
    ) -> Result<Option<String>, StoreError> {
        let Some(bytes) = self.rows.get(usize::from(offset)).filter(|b| !b.is_empty()) else {
            return Ok(None);
        };
        let row: PackedRow = store.decode(bytes, "packed recipient")?;
        let domain = usize::try_from(row.domain)
            .ok()
            .and_then(|i| self.domains.get(i))
            .cloned()
            .unwrap_or_default();
        Ok(Some(row.unpack(&domain).0))
    }

    /// True when no row was added.
    pub(crate) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The batch value, and the builder emptied for the next batch.
    pub(crate) fn take(&mut self) -> Vec<u8> {
        self.take_flagged(0)
    }

    /// [`BatchBuilder::take`] with `flags` (e.g. [`COLLECTED`]).
    pub(crate) fn take_flagged(&mut self, flags: u8) -> Vec<u8> {
        let bytes = encode_batch(flags, &self.domains, &self.rows);
        *self = BatchBuilder::default();
        bytes
    }
}

/// Encodes a batch value.
pub(crate) fn encode_batch<D: AsRef<str>, R: AsRef<[u8]>>(
    flags: u8,
    domains: &[D],
    rows: &[R],
) -> Vec<u8> {
    let size: usize = rows.iter().map(|r| r.as_ref().len() + 2).sum();
    let mut out = Vec::with_capacity(size + domains.len() * 16 + 8);
    out.push(flags);
    put_varint(&mut out, domains.len() as u64);
    for domain in domains {
        put_varint(&mut out, domain.as_ref().len() as u64);
        out.extend_from_slice(domain.as_ref().as_bytes());
    }
    put_varint(&mut out, rows.len() as u64);
    for row in rows {
        put_varint(&mut out, row.as_ref().len() as u64);
        out.extend_from_slice(row.as_ref());
    }
    out
}

/// Where a batch value's parts are: flags, each domain's bytes, each row's bytes.
type Layout = (u8, Vec<Range<usize>>, Vec<Range<usize>>);

/// Finds the parts of a batch value; `None` when it is damaged.
fn layout(bytes: &[u8]) -> Option<Layout> {
    let (&flags, mut rest) = bytes.split_first()?;
    let at = |rest: &[u8]| bytes.len() - rest.len();
    let count = take_varint(&mut rest)?;
    let mut domains = Vec::with_capacity(usize::try_from(count).ok()?.min(4096));
    for _ in 0..count {
        let len = usize::try_from(take_varint(&mut rest)?).ok()?;
        let start = at(rest);
        rest = rest.get(len..)?;
        std::str::from_utf8(&bytes[start..start + len]).ok()?;
        domains.push(start..start + len);
    }
    let count = take_varint(&mut rest)?;
    let mut rows = Vec::with_capacity(usize::try_from(count).ok()?.min(4096));
    for _ in 0..count {
        let len = usize::try_from(take_varint(&mut rest)?).ok()?;
        let start = at(rest);
        rest = rest.get(len..)?;
        rows.push(start..start + len);
    }
    Some((flags, domains, rows))
}

/// A batch value, parsed down to its domain table and the bytes of each row.
#[derive(Debug)]
pub(crate) struct BatchView<'a> {
    /// [`COLLECTED`] or 0.
    pub(crate) flags: u8,
    /// The domain table.
    pub(crate) domains: Vec<&'a str>,
    /// Each row's encoded bytes (empty: no such row).
    pub(crate) rows: Vec<&'a [u8]>,
}

impl<'a> BatchView<'a> {
    /// Parses a batch value; `None` when it is damaged.
    pub(crate) fn parse(bytes: &'a [u8]) -> Option<BatchView<'a>> {
        let (flags, domains, rows) = layout(bytes)?;
        Some(BatchView {
            flags,
            domains: domains
                .into_iter()
                .map(|r| std::str::from_utf8(&bytes[r]).unwrap_or_default())
                .collect(),
            rows: rows.into_iter().map(|r| &bytes[r]).collect(),
        })
    }
}

/// A batch value kept with where its parts are, so that reading many of its rows parses it
/// once.
#[derive(Debug)]
pub(crate) struct ParsedBatch {
    bytes: sled::IVec,
    domains: Vec<Range<usize>>,
    rows: Vec<Range<usize>>,
}

impl ParsedBatch {
    /// Parses `bytes`; `None` when damaged.
    pub(crate) fn new(bytes: sled::IVec) -> Option<ParsedBatch> {
        let (_, domains, rows) = layout(&bytes)?;
        Some(ParsedBatch {
            bytes,
            domains,
            rows,
        })
    }

    /// The row at `offset` with its domain, if there is one.
    pub(crate) fn row(
        &self,
        store: &SledStore,
        offset: u16,
    ) -> Result<Option<(&str, PackedRow)>, StoreError> {
        let Some(range) = self.rows.get(usize::from(offset)).filter(|r| !r.is_empty()) else {
            return Ok(None);
        };
        let row: PackedRow = store.decode(&self.bytes[range.clone()], "packed recipient")?;
        let domain = usize::try_from(row.domain)
            .ok()
            .and_then(|i| self.domains.get(i))
            .and_then(|r| std::str::from_utf8(&self.bytes[r.clone()]).ok());
        Ok(domain.map(|domain| (domain, row)))
    }
}

impl SledStore {
    /// The packed batch `batch` of campaign number `number`, parsed.
    pub(crate) fn packed_batch(
        &self,
        number: u32,
        batch: u32,
    ) -> Result<Option<ParsedBatch>, StoreError> {
        let Some(bytes) = self
            .packed
            .get(keys::packed_key(number, batch))
            .map_err(|e| self.sled_error(e))?
        else {
            return Ok(None);
        };
        ParsedBatch::new(bytes)
            .map(Some)
            .ok_or_else(|| self.damaged_batch())
    }

    /// Writes the packed batch `batch` of campaign number `number` (before the states that
    /// refer to its rows).
    pub(crate) fn put_packed(
        &self,
        number: u32,
        batch: u32,
        value: Vec<u8>,
    ) -> Result<(), StoreError> {
        self.packed
            .insert(keys::packed_key(number, batch), value)
            .map(drop)
            .map_err(|e| self.sled_error(e))
    }

    /// True when the packed rows have a tree of their own (format 3 on, see `format`).
    pub(crate) fn packed_apart(&self) -> bool {
        self.packed.name() != self.tree.name()
    }

    /// Parses a packed batch value, or says it is damaged.
    pub(crate) fn parse_batch<'a>(&self, bytes: &'a [u8]) -> Result<BatchView<'a>, StoreError> {
        BatchView::parse(bytes).ok_or_else(|| self.damaged_batch())
    }

    fn damaged_batch(&self) -> StoreError {
        StoreError::Decode {
            path: self.path.clone(),
            what: "packed recipients",
            source: postcard::Error::DeserializeUnexpectedEnd,
        }
    }

    /// The domain of recipient `seq` of campaign number `number`, from its packed row.
    pub(crate) fn packed_domain(
        &self,
        number: u32,
        seq: u64,
    ) -> Result<Option<String>, StoreError> {
        let (batch, offset) = keys::batch_of(seq);
        let Some(parsed) = self.packed_batch(number, batch)? else {
            return Ok(None);
        };
        Ok(parsed
            .row(self, offset)?
            .map(|(domain, _)| domain.to_owned()))
    }
}

/// Appends `value` as a LEB128 varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads a LEB128 varint off the front of `bytes`.
pub(crate) fn take_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_keeps_the_address_once_and_gives_it_back_in_its_column() {
        let row = PackedRow::new(
            "ann@x.example",
            "x.example",
            0,
            vec!["Ann".into(), "ann@x.example".into(), "Paris".into()],
            7,
        );
        assert_eq!(
            (row.local.as_str(), row.whole, row.column),
            ("ann", false, Some(1))
        );
        assert_eq!(row.values, ["Ann", "Paris"]);
        let (email, values) = row.unpack("x.example");
        assert_eq!(email, "ann@x.example");
        assert_eq!(values, ["Ann", "ann@x.example", "Paris"]);

        let odd = PackedRow::new("bob@y.example", "z.example", 0, vec![], 1);
        assert!(odd.whole);
        assert_eq!(odd.unpack("z.example").0, "bob@y.example");
    }

    #[test]
    fn a_batch_round_trips_with_holes_and_damage_is_refused() {
        let bytes = encode_batch(
            COLLECTED,
            &["a.example", "b.example"],
            &[&b"xy"[..], b"", b"z"],
        );
        let view = BatchView::parse(&bytes).unwrap();
        assert_eq!(view.flags, COLLECTED);
        assert_eq!(view.domains, ["a.example", "b.example"]);
        assert_eq!(view.rows, [&b"xy"[..], b"", b"z"]);
        assert!(BatchView::parse(&bytes[..bytes.len() - 1]).is_none());
        let mut out = Vec::new();
        put_varint(&mut out, 300);
        assert_eq!(take_varint(&mut &out[..]), Some(300));
    }
}
