//! Errors of the `campaign` module: a recipients file that cannot be used at all
//! ([`CampaignError`]) and a single bad row ([`RowError`]), which is reported and skipped
//! while the rest of the list goes on.

use std::fmt;
use std::path::PathBuf;

/// A recipients file could not be opened or its header is unusable. `Display` starts with
/// the file's path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CampaignError {
    /// The file could not be opened.
    #[error("{}: cannot open recipients file: {source}", path.display())]
    Open {
        /// The recipients file.
        path: PathBuf,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// The header row could not be read.
    #[error("{}: cannot read the header row: {source}", path.display())]
    Header {
        /// The recipients file.
        path: PathBuf,
        /// The CSV reader's failure.
        source: csv::Error,
    },
    /// The file has no header row.
    #[error("{}: the file is empty: a header row with an email column is required", path.display())]
    Empty {
        /// The recipients file.
        path: PathBuf,
    },
    /// A header name is not valid UTF-8.
    #[error("{} line 1: column {column} of the header is not valid UTF-8", path.display())]
    HeaderNotUtf8 {
        /// The recipients file.
        path: PathBuf,
        /// 1-based column number.
        column: usize,
    },
    /// A header name is empty.
    #[error("{} line 1: column {column} of the header has no name", path.display())]
    EmptyColumnName {
        /// The recipients file.
        path: PathBuf,
        /// 1-based column number.
        column: usize,
    },
    /// The header has no `email` column.
    #[error("{} line 1: no email column in the header (found: {})", path.display(), columns.join(", "))]
    NoEmailColumn {
        /// The recipients file.
        path: PathBuf,
        /// The header names found.
        columns: Vec<String>,
    },
    /// `[schedule] timezone_column` names no column of the header.
    #[error("{} line 1: no column {column:?} for [schedule] timezone_column (found: {})", path.display(), columns.join(", "))]
    NoTimezoneColumn {
        /// The recipients file.
        path: PathBuf,
        /// The column the campaign file names.
        column: String,
        /// The header names found.
        columns: Vec<String>,
    },
    /// Two header names are the same (compared without case).
    #[error("{} line 1: column {second} repeats the name {name:?} of column {first}", path.display())]
    DuplicateColumn {
        /// The recipients file.
        path: PathBuf,
        /// The repeated name (as written in the later column, trimmed).
        name: String,
        /// 1-based number of the first column with that name.
        first: usize,
        /// 1-based number of the repeating column.
        second: usize,
    },
    /// A row was refused (used where a bad row must stop the caller).
    #[error(transparent)]
    Row(#[from] Box<RowError>),
}

/// One refused recipient row: where it is and why. The rest of the file still goes.
///
/// `Display` reads `recipients.csv line 12, field email: missing @` (without `, field …`
/// when the problem is the row as a whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// The recipients file.
    pub path: PathBuf,
    /// 1-based line where the row starts.
    pub line: u64,
    /// The column at fault, if it is one column (`email` for address problems).
    pub field: Option<String>,
    /// A short human reason, like `missing @` or `expected 3 fields, found 4`.
    pub reason: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} line {}", self.path.display(), self.line)?;
        if let Some(field) = &self.field {
            write!(f, ", field {field}")?;
        }
        write!(f, ": {}", self.reason)
    }
}

impl std::error::Error for RowError {}
