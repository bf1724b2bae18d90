//! `volley events` while a send or server holds the store: it asks over the control socket,
//! and the process that holds the store writes the campaign's event log to a file as JSON lines.

use super::resolve_campaign;
use crate::store::Store;
use crate::Error;

/// Writes the events of campaign `id` (resolved like [`resolve_campaign`]) since `since` into
/// `file` as JSON lines; returns the campaign exported and how many events.
pub(crate) fn export_events_to(
    store: &Store,
    id: &str,
    since: crate::model::Millis,
    file: &std::path::Path,
) -> Result<(String, u64), Error> {
    use std::io::Write as _;
    let campaign = resolve_campaign(store, id)?;
    let events = store.export_events(&campaign, since)?;
    let io = |source: std::io::Error| Error::Export {
        file: file.to_path_buf(),
        source,
    };
    let mut out = std::io::BufWriter::new(std::fs::File::create(file).map_err(io)?);
    let mut count = 0;
    for event in events {
        let line = serde_json::to_string(&event?).map_err(|e| io(std::io::Error::other(e)))?;
        out.write_all(line.as_bytes()).map_err(io)?;
        out.write_all(b"\n").map_err(io)?;
        count += 1;
    }
    out.flush().map_err(io)?;
    Ok((campaign, count))
}
