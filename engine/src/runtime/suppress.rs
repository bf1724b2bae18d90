//! `volley suppress`: the suppression list by hand (list, add, remove, import, export), and
//! opening a store for commands that work on it directly.

use crate::campaign::normalize_address;
use crate::model::{now_millis, Suppression, SuppressionReason};
use crate::store::Store;
use crate::Error;
use std::path::Path;

/// Adds `address` to the suppression list by hand; false when it was already there.
pub fn suppress_add(store: &Store, address: &str, note: &str) -> Result<bool, Error> {
    let (address, _) = normalize(address)?;
    let entry = Suppression {
        reason: SuppressionReason::Manual,
        at: now_millis(),
        campaign: None,
        detail: note.to_owned(),
    };
    let added = store.suppress(&address, &entry)?;
    store.flush_blocking()?;
    Ok(added)
}

/// Removes `address` from the suppression list; false when it was not there.
pub fn suppress_remove(store: &Store, address: &str) -> Result<bool, Error> {
    let (address, _) = normalize(address)?;
    let removed = store.unsuppress(&address)?;
    store.flush_blocking()?;
    Ok(removed)
}

/// What an import did.
#[derive(Debug, Clone, Default)]
pub struct ImportSummary {
    /// Addresses added.
    pub added: u64,
    /// Addresses that were already suppressed.
    pub already: u64,
    /// Rows refused, with their line and reason.
    pub errors: Vec<String>,
}

/// Imports a CSV with an `email` column (and optionally `reason`, `detail`): every valid row
/// is added; bad rows are reported with their line and skipped.
pub fn suppress_import(store: &Store, path: &Path) -> Result<ImportSummary, Error> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| io(std::io::Error::other(e.to_string())))?;
    let headers = reader
        .headers()
        .map_err(|e| io(std::io::Error::other(e.to_string())))?
        .clone();
    let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let Some(email) = column("email") else {
        return Err(io(std::io::Error::other(
            "the header has no `email` column",
        )));
    };
    let columns = ImportColumns {
        email,
        reason: column("reason"),
        detail: column("detail"),
    };
    let mut summary = ImportSummary::default();
    for row in reader.records() {
        let entry = row
            .map_err(|e| format!("{}: {e}", path.display()))
            .and_then(|row| import_row(&row, &columns, path));
        match entry {
            Ok((address, entry)) => {
                if store.suppress(&address, &entry)? {
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
}

/// The address and entry of one import row, or what is wrong with it (file, line, field).
fn import_row(
    row: &csv::StringRecord,
    columns: &ImportColumns,
    path: &Path,
) -> Result<(String, Suppression), String> {
    let line = row.position().map_or(0, |p| p.line());
    let raw = row.get(columns.email).unwrap_or_default();
    let address = normalize_address(raw)
        .map_err(|e| format!("{} line {line}, field email: {e}", path.display()))?
        .0;
    let reason = match columns
        .reason
        .and_then(|i| row.get(i))
        .filter(|r| !r.is_empty())
    {
        None => SuppressionReason::Manual,
        Some(text) => SuppressionReason::parse(text).ok_or_else(|| {
            format!(
                "{} line {line}, field reason: unknown reason {text:?}",
                path.display()
            )
        })?,
    };
    let entry = Suppression {
        reason,
        at: now_millis(),
        campaign: None,
        detail: columns
            .detail
            .and_then(|i| row.get(i))
            .unwrap_or("imported")
            .to_owned(),
    };
    Ok((address, entry))
}

/// Writes the suppression list as CSV (`email,reason,at,campaign,detail`).
pub fn suppress_export(store: &Store, out: &mut dyn std::io::Write) -> Result<u64, Error> {
    let mut writer = csv::Writer::from_writer(out);
    let io = |e: csv::Error| Error::Io {
        path: "export".into(),
        source: std::io::Error::other(e.to_string()),
    };
    writer
        .write_record(["email", "reason", "at", "campaign", "detail"])
        .map_err(io)?;
    let mut n = 0;
    for (address, entry) in store.suppressions()? {
        let at = crate::model::format_millis(entry.at);
        writer
            .write_record([
                address.as_str(),
                entry.reason.as_str(),
                &at,
                entry.campaign.as_deref().unwrap_or(""),
                &entry.detail,
            ])
            .map_err(io)?;
        n += 1;
    }
    writer.flush().map_err(|source| Error::Io {
        path: "export".into(),
        source,
    })?;
    Ok(n)
}

fn normalize(address: &str) -> Result<(String, String), Error> {
    normalize_address(address).map_err(|e| Error::BadAddress {
        address: address.to_owned(),
        reason: e.to_string(),
    })
}

/// Opens (creating if needed) a store (a folder or a database) for a command that works on
/// it directly; a sled folder fails with a clear error while a send holds it.
pub fn open_store(location: &crate::store::StoreLocation) -> Result<Store, Error> {
    Ok(Store::open_at(location)?)
}
