//! PostgreSQL's binary COPY format for the loader's staging table: one tuple per recipient
//! row, written straight from the row (no text escaping, no parsing on the server side).
//!
//! Staging columns, in order: `seq int8, line int8, email text, domain text, fields text[],
//! held bool, variant int2`.

use super::error::PgStoreError;

/// The file header: signature, flags, header-extension length.
pub(crate) const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The file trailer: a tuple with -1 fields.
pub(crate) const TRAILER: &[u8] = &[0xff, 0xff];
/// The `text` type's OID, for array elements.
const TEXT_OID: i32 = 25;
/// Fields per staged tuple.
const FIELDS: i16 = 7;

/// One staged recipient, borrowed from the loader's row.
pub(crate) struct StagedRow<'a> {
    pub(crate) seq: i64,
    pub(crate) line: u64,
    pub(crate) email: &'a str,
    pub(crate) domain: &'a str,
    pub(crate) fields: &'a [String],
    pub(crate) held: bool,
    pub(crate) variant: u8,
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
    Ok(())
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
        };
        let mut out = Vec::new();
        encode(&mut out, &row, &[]).unwrap();
        let mut want: Vec<u8> = vec![0, 7];
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
        };
        let error = encode(&mut Vec::new(), &row, &columns).unwrap_err();
        assert_eq!(
            error.to_string(),
            "line 7: field first_name: contains a NUL byte, which PostgreSQL text cannot hold"
        );
    }
}
