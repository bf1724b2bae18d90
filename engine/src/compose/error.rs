//! Errors of the `compose` module: template problems (with file and line), merge data that
//! does not fit the templates, invalid addresses or headers, and signing failures.

use std::path::PathBuf;

use crate::dkim::DkimError;

/// Why templates could not be loaded or a message could not be composed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ComposeError {
    /// Neither a text nor an HTML body template was given.
    #[error("a message needs a text or an HTML body template (or both); none was given")]
    NoBody,
    /// A template does not parse.
    #[error("template syntax error in {template}{}: {reason}", line_suffix(*line))]
    Syntax {
        /// The template's file path, or "subject".
        template: String,
        /// The 1-based line of the error, when known.
        line: Option<usize>,
        /// What is wrong, as the template engine says it.
        reason: String,
    },
    /// A template uses a variable this recipient's data does not have.
    #[error("template {template} uses the variable `{variable}`, which the recipient data lacks")]
    MissingVariable {
        /// The template's file path, or "subject".
        template: String,
        /// The missing variable's name.
        variable: String,
    },
    /// Rendering a template failed (for example an undefined attribute or a bad filter call).
    #[error("cannot render template {template}{}: {reason}", line_suffix(*line))]
    Render {
        /// The template's file path, or "subject".
        template: String,
        /// The 1-based line of the error, when known.
        line: Option<usize>,
        /// What went wrong, as the template engine says it.
        reason: String,
    },
    /// The recipient's column names and values differ in number.
    #[error("recipient data has {names} column names but {values} values")]
    ColumnMismatch {
        /// How many names were given.
        names: usize,
        /// How many values were given.
        values: usize,
    },
    /// An address (From, Reply-To or the recipient) is not a plain `local@domain` address.
    #[error("{field} address {address:?} is not a valid email address")]
    InvalidAddress {
        /// "From", "Reply-To" or "To".
        field: &'static str,
        /// The offending address.
        address: String,
    },
    /// An extra header has a name that is not a valid header field name, or one the composer
    /// writes itself.
    #[error("header name {name:?} cannot be used: {reason}")]
    InvalidHeader {
        /// The offending header name.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The templates use merge fields the recipient list does not have.
    #[error("{}: the templates use {} that the list does not have (its columns: {})", .recipients.display(), plural_fields(.missing), .columns.join(", "))]
    MissingFields {
        /// The CSV file.
        recipients: PathBuf,
        /// Fields used by the templates but absent from the CSV header.
        missing: Vec<String>,
        /// The CSV header.
        columns: Vec<String>,
    },
    /// `[campaign] archive_fields` names a field the recipient list does not have.
    #[error(
        "[campaign] archive_fields: `{field}` is not a column of {} (its columns: {})",
        recipients.display(),
        columns.join(", ")
    )]
    ArchiveField {
        /// The CSV file.
        recipients: PathBuf,
        /// The field named in `archive_fields`.
        field: String,
        /// The CSV header.
        columns: Vec<String>,
    },
    /// DKIM signing (or loading a signing key) failed.
    #[error(transparent)]
    Sign(#[from] DkimError),
}

fn line_suffix(line: Option<usize>) -> String {
    line.map(|line| format!(" line {line}")).unwrap_or_default()
}

fn plural_fields(names: &[String]) -> String {
    let list = names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() == 1 {
        format!("the field {list}")
    } else {
        format!("the fields {list}")
    }
}
