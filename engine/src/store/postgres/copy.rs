//! PostgreSQL's binary COPY format: tuples written straight from the rows (no text escaping,
//! no parsing on the server side), for the loader's staging table ([`encode`]) and for
//! `store copy` writing a campaign's tables ([`Tuples`]).
//!
//! Staging columns, in order: `seq int8, line int8, email text, domain text, fields text[],
//! held bool, variant int2, holdout bool`.

use super::error::PgStoreError;
use crate::model::Millis;

/// The file header: signature, flags, header-extension length.
pub(crate) const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The file trailer: a tuple with -1 fields.
pub(crate) const TRAILER: &[u8] = &[0xff, 0xff];
/// The `text` type's OID, for array elements.
const TEXT_OID: i32 = 25;
/// Fields per staged tuple.
const FIELDS: i16 = 8;

/// One staged recipient, borrowed from the loader's row.
pub(crate) struct StagedRow<'a> {
    pub(crate) seq: i64,
    pub(crate) line: u64,
    pub(crate) email: &'a str,
    pub(crate) domain: &'a str,
    pub(crate) fields: &'a [String],
    pub(crate) held: bool,
    pub(crate) variant: u8,
    pub(crate) holdout: bool,
}

/// Appends `row` as one binary tuple to `out`. A NUL byte (which PostgreSQL text cannot
/// hold) is refused with the line and the column it is in; `columns` names them.
pub(crate) fn encode(
    out: &mut Vec<u8>,
    row: &StagedRow<'_>,
    columns: &[String],
) -> Result<(), PgStoreError> {
    let nul = |field: &str| PgStoreError::Row {
        line: row.line,
        field: field.to_owned(),
        reason: "contains a NUL byte, which PostgreSQL text cannot hold",
    };
    if row.email.contains('\0') {
        return Err(nul("email"));
    }
    if let Some(i) = row.fields.iter().position(|f| f.contains('\0')) {
        return Err(nul(columns.get(i).map_or("?", String::as_str)));
    }
    out.extend_from_slice(&FIELDS.to_be_bytes());
    field(out, &row.seq.to_be_bytes());
    field(
        out,
        &i64::try_from(row.line).unwrap_or(i64::MAX).to_be_bytes(),
    );
    field(out, row.email.as_bytes());
    field(out, row.domain.as_bytes());
    text_array(out, row.fields);
    field(out, &[u8::from(row.held)]);
    field(out, &i16::from(row.variant).to_be_bytes());
    field(out, &[u8::from(row.holdout)]);
    Ok(())
}

/// Milliseconds from the Unix epoch to PostgreSQL's (2000-01-01 UTC).
const PG_EPOCH_MILLIS: i64 = 946_684_800_000;

/// Binary COPY data being written: the header, then tuples of fields in the order of the
/// statement's column list; [`Tuples::finish`] adds the trailer.
pub(crate) struct Tuples {
    out: Vec<u8>,
}

impl Tuples {
    /// An empty COPY stream (its header written).
    pub(crate) fn new() -> Self {
        Tuples {
            out: HEADER.to_vec(),
        }
    }

    /// Starts a tuple of `fields` fields.
    pub(crate) fn tuple(&mut self, fields: i16) -> &mut Self {
        self.out.extend_from_slice(&fields.to_be_bytes());
        self
    }

    /// An `int8`.
    pub(crate) fn int8(&mut self, value: i64) -> &mut Self {
        field(&mut self.out, &value.to_be_bytes());
        self
    }

    /// An `int4`.
    pub(crate) fn int4(&mut self, value: i32) -> &mut Self {
        field(&mut self.out, &value.to_be_bytes());
        self
    }

    /// An `int2`.
    pub(crate) fn int2(&mut self, value: i16) -> &mut Self {
        field(&mut self.out, &value.to_be_bytes());
        self
    }

    /// A `bool`.
    pub(crate) fn bool(&mut self, value: bool) -> &mut Self {
        field(&mut self.out, &[u8::from(value)]);
        self
    }

    /// A `text` (or an enum's label: `enum_recv` reads the label).
    pub(crate) fn text(&mut self, value: &str) -> &mut Self {
        field(&mut self.out, value.as_bytes());
        self
    }

    /// A `text` or NULL.
    pub(crate) fn opt_text(&mut self, value: Option<&str>) -> &mut Self {
        match value {
            Some(text) => self.text(text),
            None => self.null(),
        }
    }

    /// A `text[]`.
    pub(crate) fn text_array(&mut self, items: &[String]) -> &mut Self {
        text_array(&mut self.out, items);
        self
    }

    /// A `timestamptz` from epoch milliseconds, or NULL.
    pub(crate) fn time(&mut self, at: Option<Millis>) -> &mut Self {
        match at {
            Some(at) => {
                let ms = i64::try_from(at).unwrap_or(i64::MAX);
                let micros = ms.saturating_sub(PG_EPOCH_MILLIS).saturating_mul(1000);
                self.int8(micros)
            }
            None => self.null(),
        }
    }

    /// A `jsonb` from its JSON text (format version 1), or NULL.
    pub(crate) fn jsonb(&mut self, json: Option<&str>) -> &mut Self {
        match json {
            Some(json) => {
                self.out
                    .extend_from_slice(&len(json.len() + 1).to_be_bytes());
                self.out.push(1);
                self.out.extend_from_slice(json.as_bytes());
                self
            }
            None => self.null(),
        }
    }

    /// A NULL.
    pub(crate) fn null(&mut self) -> &mut Self {
        self.out.extend_from_slice(&(-1i32).to_be_bytes());
        self
    }

    /// The stream with its trailer, to send.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.out.extend_from_slice(TRAILER);
        self.out
    }
}

/// A field: its length, then its bytes.
fn field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&len(bytes.len()).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// A one-dimensional `text[]` (zero dimensions when empty), as `array_recv` reads it.
fn text_array(out: &mut Vec<u8>, items: &[String]) {
    let body: usize = 12
        + if items.is_empty() { 0 } else { 8 }
        + items.iter().map(|s| 4 + s.len()).sum::<usize>();
    out.extend_from_slice(&len(body).to_be_bytes());
    let dims: i32 = if items.is_empty() { 0 } else { 1 };
    out.extend_from_slice(&dims.to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes()); // no NULL elements
    out.extend_from_slice(&TEXT_OID.to_be_bytes());
    if !items.is_empty() {
        out.extend_from_slice(&len(items.len()).to_be_bytes());
        out.extend_from_slice(&1i32.to_be_bytes()); // lower bound
    }
    for item in items {
        field(out, item.as_bytes());
    }
}

/// A length as the format writes it. The CSV reader bounds rows far below 2 GiB.
fn len(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_encodes_to_the_exact_binary_tuple() {
        let fields = vec!["a@x.example".to_owned(), "Ann".to_owned()];
        let row = StagedRow {
            seq: 1,
            line: 2,
            email: "a@x.example",
            domain: "x.example",
            fields: &fields,
            held: true,
            variant: 129,
            holdout: false,
        };
        let mut out = Vec::new();
        encode(&mut out, &row, &[]).unwrap();
        let mut want: Vec<u8> = vec![0, 8];
        want.extend([0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1]);
        want.extend([0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 2]);
        want.extend([0, 0, 0, 11]);
        want.extend(b"a@x.example");
        want.extend([0, 0, 0, 9]);
        want.extend(b"x.example");
        want.extend([
            0, 0, 0, 42, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 25, 0, 0, 0, 2, 0, 0, 0, 1,
        ]);
        want.extend([0, 0, 0, 11]);
        want.extend(b"a@x.example");
        want.extend([0, 0, 0, 3]);
        want.extend(b"Ann");
        want.extend([0, 0, 0, 1, 1]);
        want.extend([0, 0, 0, 2, 0, 129]);
        want.extend([0, 0, 0, 1, 0]);
        assert_eq!(out, want);
    }

    #[test]
    fn times_count_from_the_postgresql_epoch_and_jsonb_has_its_version() {
        let mut t = Tuples::new();
        t.tuple(3)
            .time(Some(946_684_800_001))
            .time(None)
            .jsonb(Some("{}"));
        let out = t.finish();
        let mut want = HEADER.to_vec();
        want.extend([0, 3]);
        want.extend([0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0x03, 0xe8]);
        want.extend([0xff, 0xff, 0xff, 0xff]);
        want.extend([0, 0, 0, 3, 1, b'{', b'}']);
        want.extend(TRAILER);
        assert_eq!(out, want);
    }

    #[test]
    fn a_nul_byte_is_refused_with_its_line_and_column() {
        let fields = vec!["a@x.example".to_owned(), "A\0nn".to_owned()];
        let columns = vec!["email".to_owned(), "first_name".to_owned()];
        let row = StagedRow {
            seq: 0,
            line: 7,
            email: "a@x.example",
            domain: "x.example",
            fields: &fields,
            held: false,
            variant: 0,
            holdout: false,
        };
        let error = encode(&mut Vec::new(), &row, &columns).unwrap_err();
        assert_eq!(
            error.to_string(),
            "line 7: field first_name: contains a NUL byte, which PostgreSQL text cannot hold"
        );
    }
}
