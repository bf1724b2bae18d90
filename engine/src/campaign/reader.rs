//! Streams a recipients CSV: reads the header once, then yields one checked [`Row`] (or one
//! [`RowError`]) per record, holding only the current record in memory.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use super::error::{CampaignError, RowError};
use crate::config::normalize_address;

/// The name the email column is given in [`RecipientReader::columns`].
const EMAIL: &str = "email";

/// One accepted recipient row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// 1-based line where the row starts in the file.
    pub line: u64,
    /// The normalised address (see [`normalize_address`]).
    pub email: String,
    /// The address's domain (lowercase ASCII, punycode for IDNs).
    pub domain: String,
    /// The row's values, aligned with [`RecipientReader::columns`] and trimmed; the email
    /// value is replaced by the normalised address.
    pub values: Vec<String>,
}

/// A streaming reader of a recipients CSV over any [`Read`]er.
///
/// The header must have an `email` column (any case, surrounding spaces ignored); every
/// column is a merge field. Iterating yields `Ok(Row)` for each good row and `Err(RowError)`
/// for each bad one, and goes on after a bad row. A UTF-8 byte-order mark is ignored, blank
/// lines are skipped, quoted fields may span lines (row line numbers stay right). Duplicates
/// are not this reader's business: the store drops them when loading, across re-runs too.
pub struct RecipientReader {
    path: PathBuf,
    csv: csv::Reader<Box<dyn Read + Send>>,
    columns: Vec<String>,
    email_index: usize,
    record: csv::ByteRecord,
    done: bool,
}

impl std::fmt::Debug for RecipientReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecipientReader")
            .field("path", &self.path)
            .field("columns", &self.columns)
            .finish_non_exhaustive()
    }
}

impl RecipientReader {
    /// Opens the CSV file at `path` and reads its header.
    pub fn open(path: &Path) -> Result<RecipientReader, CampaignError> {
        let file = File::open(path).map_err(|source| CampaignError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        RecipientReader::from_reader(BufReader::new(file), path)
    }

    /// Reads CSV from `reader` and reads its header; `path` names the source in messages.
    pub fn from_reader<R: Read + Send + 'static>(
        reader: R,
        path: impl Into<PathBuf>,
    ) -> Result<RecipientReader, CampaignError> {
        let path = path.into();
        let boxed: Box<dyn Read + Send> = Box::new(EndsWithNewline::new(reader));
        // Records end at LF only (a CR before it is trimmed with the last field), and the
        // source always ends with LF: that way the reader's position after a record is
        // exactly one line past the record's last line, which gives reliable line numbers
        // (the record's own start position does not count skipped blank lines).
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .terminator(csv::Terminator::Any(b'\n'))
            .from_reader(boxed);
        let mut header = csv::ByteRecord::new();
        let found = csv
            .read_byte_record(&mut header)
            .map_err(|source| CampaignError::Header {
                path: path.clone(),
                source,
            })?;
        if !found {
            return Err(CampaignError::Empty { path });
        }
        let (columns, email_index) = parse_header(&path, &header)?;
        Ok(RecipientReader {
            path,
            csv,
            columns,
            email_index,
            record: csv::ByteRecord::new(),
            done: false,
        })
    }

    /// The header names, trimmed, in file order; the email column is named `email`.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The index of the email column in [`columns`](Self::columns) and [`Row::values`].
    pub fn email_index(&self) -> usize {
        self.email_index
    }

    /// The path used in messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks the current record (starting on `line`) and builds its row.
    fn check_record(&mut self, line: u64) -> Result<Row, RowError> {
        if self.record.len() != self.columns.len() {
            let reason = format!(
                "expected {} fields, found {}",
                self.columns.len(),
                self.record.len()
            );
            return Err(self.row_error(line, None, reason));
        }
        let mut values = Vec::with_capacity(self.columns.len());
        for (i, raw) in self.record.iter().enumerate() {
            match std::str::from_utf8(raw) {
                Ok(text) => values.push(text.trim().to_owned()),
                Err(_) => {
                    let field = Some(self.columns[i].clone());
                    return Err(self.row_error(line, field, "not valid UTF-8".to_owned()));
                }
            }
        }
        let email_field = || Some(EMAIL.to_owned());
        let (email, domain) = normalize_address(&values[self.email_index])
            .map_err(|e| self.row_error(line, email_field(), e.to_string()))?;
        values[self.email_index].clone_from(&email);
        Ok(Row {
            line,
            email,
            domain,
            values,
        })
    }

    /// A [`RowError`] for this file.
    fn row_error(&self, line: u64, field: Option<String>, reason: String) -> RowError {
        RowError {
            path: self.path.clone(),
            line,
            field,
            reason,
        }
    }
}

impl Iterator for RecipientReader {
    type Item = Result<Row, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            match self.csv.read_byte_record(&mut self.record) {
                Ok(false) => self.done = true,
                Ok(true) => {
                    if self.record.iter().all(|f| f.trim_ascii().is_empty()) {
                        continue; // a blank (or whitespace-only) line
                    }
                    // The position is now one line past the record's last line.
                    let inner = self.record.as_slice().iter().filter(|&&b| b == b'\n');
                    let spanned = inner.count() as u64 + 1;
                    let line = self.csv.position().line().saturating_sub(spanned).max(1);
                    return Some(self.check_record(line));
                }
                Err(err) => {
                    // A read failure ends the stream: what follows cannot be trusted.
                    self.done = err.is_io_error();
                    let line = self.csv.position().line();
                    return Some(Err(self.row_error(
                        line,
                        None,
                        format!("cannot read: {err}"),
                    )));
                }
            }
        }
        None
    }
}

/// A reader that adds a final LF when its source does not end with one.
struct EndsWithNewline<R> {
    inner: R,
    last: Option<u8>,
    finished: bool,
}

impl<R> EndsWithNewline<R> {
    fn new(inner: R) -> Self {
        EndsWithNewline {
            inner,
            last: None,
            finished: false,
        }
    }
}

impl<R: Read> Read for EndsWithNewline<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.finished || buf.is_empty() {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.last = buf.get(n - 1).copied();
            return Ok(n);
        }
        self.finished = true;
        match self.last {
            Some(b) if b != b'\n' => {
                buf[0] = b'\n';
                Ok(1)
            }
            _ => Ok(0),
        }
    }
}

/// Reads the header: trimmed names, one `email` column, no empty or repeated names.
fn parse_header(
    path: &Path,
    header: &csv::ByteRecord,
) -> Result<(Vec<String>, usize), CampaignError> {
    let mut columns: Vec<String> = Vec::with_capacity(header.len());
    for (i, raw) in header.iter().enumerate() {
        let column = i + 1;
        let name = std::str::from_utf8(raw).map_err(|_| CampaignError::HeaderNotUtf8 {
            path: path.to_path_buf(),
            column,
        })?;
        let name = name.trim_start_matches('\u{feff}').trim();
        if name.is_empty() {
            return Err(CampaignError::EmptyColumnName {
                path: path.to_path_buf(),
                column,
            });
        }
        if let Some(first) = columns.iter().position(|c| c.eq_ignore_ascii_case(name)) {
            return Err(CampaignError::DuplicateColumn {
                path: path.to_path_buf(),
                name: name.to_owned(),
                first: first + 1,
                second: column,
            });
        }
        let is_email = name.eq_ignore_ascii_case(EMAIL);
        columns.push(if is_email {
            EMAIL.to_owned()
        } else {
            name.to_owned()
        });
    }
    let email_index =
        columns
            .iter()
            .position(|c| c == EMAIL)
            .ok_or_else(|| CampaignError::NoEmailColumn {
                path: path.to_path_buf(),
                columns: columns.clone(),
            })?;
    Ok((columns, email_index))
}

#[cfg(test)]
mod tests;
