//! Loading the recipient list into the store, once per campaign.

use crate::campaign::{RecipientReader, RowError};
use crate::model::Counts;
use crate::store::Store;
use crate::Error;
use std::path::Path;

/// Row errors kept for the report; the rest are only counted (and logged).
pub(crate) const KEPT_ROW_ERRORS: usize = 1_000;

/// What loading found.
pub(crate) struct Loaded {
    pub(crate) counts: Counts,
    pub(crate) row_errors: Vec<RowError>,
}

/// Streams the CSV into the store. Blocking: run it off the async workers.
pub(crate) fn load_list(
    recipients: &Path,
    campaign: &str,
    store: &Store,
    on_progress: &dyn Fn(u64),
) -> Result<Loaded, Error> {
    let reader = RecipientReader::open(recipients)?;
    let mut loader = store.start_load(campaign, reader.columns().to_vec())?;
    let (mut invalid, mut duplicate) = (0u64, 0u64);
    let mut row_errors = Vec::new();
    for (n, row) in reader.enumerate() {
        match row {
            Ok(row) => {
                if !loader.add(&row.email, &row.domain, row.values, row.line)? {
                    duplicate += 1;
                    tracing::info!(line = row.line, address = %row.email, "duplicate recipient skipped");
                }
            }
            Err(error) => {
                invalid += 1;
                tracing::warn!(%error, "invalid row skipped");
                if row_errors.len() < KEPT_ROW_ERRORS {
                    row_errors.push(error);
                }
            }
        }
        if n % 10_000 == 9_999 {
            on_progress(loader.accepted());
        }
    }
    let result = loader.finish(invalid, duplicate)?;
    Ok(Loaded {
        counts: result.counts,
        row_errors,
    })
}
