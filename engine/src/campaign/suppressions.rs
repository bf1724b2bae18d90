//! A suppression list as CSV (an `email` column, optionally `reason`, `detail` and `topic`:
//! empty for a global entry, a topic id for an entry of that topic only), read row
//! by row into the store's suppression list: every valid row is added, a bad row is reported
//! with its line and field and skipped. `volley suppress import` and the API's import share it.

use std::io::Read;

use crate::config::normalize_address;
use crate::model::{Millis, Suppression, SuppressionReason};
use crate::store::{Store, StoreError};

/// What an import did.
#[derive(Debug, Clone, Default)]
pub struct ImportSummary {
    /// Addresses added.
    pub added: u64,
    /// Addresses that were already suppressed.
    pub already: u64,
    /// Rows refused, with their line and reason (`<name> line 3, field email: …`).
    pub errors: Vec<String>,
}

/// Why an import could not run at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The header row could not be read.
    #[error("{name}: {reason}")]
    Header {
        /// The list's name (its file, or `upload`).
        name: String,
        /// What the CSV reader said.
        reason: String,
    },
    /// The header has no `email` column.
    #[error("{name}: the header has no `email` column")]
    NoEmailColumn {
        /// The list's name.
        name: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Imports the CSV `reader` (called `name` in messages) into `store`'s suppression list,
/// each entry dated `now`; the store is flushed at the end.
pub fn import_suppressions(
    store: &Store,
    reader: impl Read,
    name: &str,
    now: Millis,
) -> Result<ImportSummary, ImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(reader);
    let headers = reader
        .headers()
        .map_err(|e| ImportError::Header {
            name: name.to_owned(),
            reason: e.to_string(),
        })?
        .clone();
    let column = |wanted: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(wanted));
    let Some(email) = column("email") else {
        return Err(ImportError::NoEmailColumn {
            name: name.to_owned(),
        });
    };
    let columns = ImportColumns {
        email,
        reason: column("reason"),
        detail: column("detail"),
        topic: column("topic"),
    };
    let mut summary = ImportSummary::default();
    for row in reader.records() {
        let entry = row
            .map_err(|e| format!("{name}: {e}"))
            .and_then(|row| import_row(&row, &columns, name, now));
        match entry {
            Ok((address, topic, entry)) => {
                let added = match &topic {
                    Some(topic) => store.suppress_topic(&address, topic, &entry)?,
                    None => store.suppress(&address, &entry)?,
                };
                if added {
                    summary.added += 1;
                } else {
                    summary.already += 1;
                }
            }
            Err(problem) => summary.errors.push(problem),
        }
    }
    store.flush_blocking()?;
    Ok(summary)
}

/// Where the columns of a suppression import are.
struct ImportColumns {
    email: usize,
    reason: Option<usize>,
    detail: Option<usize>,
    topic: Option<usize>,
}

/// The address, topic (`None`: global) and entry of one import row, or what is wrong with
/// it (name, line, field).
fn import_row(
    row: &csv::StringRecord,
    columns: &ImportColumns,
    name: &str,
    now: Millis,
) -> Result<(String, Option<String>, Suppression), String> {
    let line = row.position().map_or(0, |p| p.line());
    let raw = row.get(columns.email).unwrap_or_default();
    let address = normalize_address(raw)
        .map_err(|e| format!("{name} line {line}, field email: {e}"))?
        .0;
    let reason = match columns
        .reason
        .and_then(|i| row.get(i))
        .filter(|r| !r.is_empty())
    {
        None => SuppressionReason::Manual,
        Some(text) => SuppressionReason::parse(text)
            .ok_or_else(|| format!("{name} line {line}, field reason: unknown reason {text:?}"))?,
    };
    let topic = match columns
        .topic
        .and_then(|i| row.get(i))
        .filter(|t| !t.is_empty())
    {
        None => None,
        Some(text) if crate::store::is_topic_id(text) => Some(text.to_owned()),
        Some(text) => {
            return Err(format!(
                "{name} line {line}, field topic: {text:?} is not a topic id (a-z 0-9 _ -)"
            ))
        }
    };
    let entry = Suppression {
        reason,
        at: now,
        campaign: None,
        detail: columns
            .detail
            .and_then(|i| row.get(i))
            .unwrap_or("imported")
            .to_owned(),
    };
    Ok((address, topic, entry))
}
