//! `volley suppress`: the suppression list by hand (list, add, remove, import, export), and
//! opening a store for commands that work on it directly.

pub use crate::campaign::ImportSummary;
use crate::campaign::{import_suppressions, normalize_address, ImportError};
use crate::model::{now_millis, Suppression, SuppressionReason};
use crate::store::Store;
use crate::Error;
use std::path::Path;

/// Adds `address` to the suppression list by hand, globally or for `topic` only; false when
/// it was already there.
pub fn suppress_add(
    store: &Store,
    address: &str,
    topic: Option<&str>,
    note: &str,
) -> Result<bool, Error> {
    let (address, _) = normalize(address)?;
    let entry = Suppression {
        reason: SuppressionReason::Manual,
        at: now_millis(),
        campaign: None,
        detail: note.to_owned(),
    };
    let added = match topic {
        Some(topic) => store.suppress_topic(&address, topic, &entry)?,
        None => store.suppress(&address, &entry)?,
    };
    store.flush_blocking()?;
    Ok(added)
}

/// Removes `address`'s global entry (or its entry for `topic`) from the suppression list;
/// false when it was not there.
pub fn suppress_remove(store: &Store, address: &str, topic: Option<&str>) -> Result<bool, Error> {
    let (address, _) = normalize(address)?;
    let removed = match topic {
        Some(topic) => store.unsuppress_topic(&address, topic)?,
        None => store.unsuppress(&address)?,
    };
    store.flush_blocking()?;
    Ok(removed)
}

/// Imports a CSV with an `email` column (and optionally `reason`, `detail`, `topic`): every valid row
/// is added; bad rows are reported with their line and skipped.
pub fn suppress_import(store: &Store, path: &Path) -> Result<ImportSummary, Error> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let name = path.display().to_string();
    import_suppressions(store, std::io::BufReader::new(file), &name, now_millis()).map_err(
        |error| match error {
            ImportError::Store(error) => error.into(),
            other => io(std::io::Error::other(other.to_string())),
        },
    )
}

/// Writes the suppression list as CSV (`email,reason,at,campaign,detail,topic`; the topic is
/// empty for a global entry), in address then topic order (global first).
pub fn suppress_export(store: &Store, out: &mut dyn std::io::Write) -> Result<u64, Error> {
    let mut writer = csv::Writer::from_writer(out);
    let io = |e: csv::Error| Error::Io {
        path: "export".into(),
        source: std::io::Error::other(e.to_string()),
    };
    writer
        .write_record(["email", "reason", "at", "campaign", "detail", "topic"])
        .map_err(io)?;
    let mut n = 0;
    let mut entries: Vec<(String, String, Suppression)> = store
        .suppressions()?
        .into_iter()
        .map(|(address, entry)| (address, String::new(), entry))
        .collect();
    entries.extend(
        store
            .topic_suppressions()?
            .into_iter()
            .map(|t| (t.address, t.topic, t.entry)),
    );
    entries.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    for (address, topic, entry) in entries {
        let at = crate::model::format_millis(entry.at);
        writer
            .write_record([
                address.as_str(),
                entry.reason.as_str(),
                &at,
                entry.campaign.as_deref().unwrap_or(""),
                &entry.detail,
                &topic,
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
