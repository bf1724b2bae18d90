//! `volley load`: the list loaded into the store now, to be sent later (a big list loaded at
//! night, or its invalid rows seen before anything goes out).

use super::pipeline::load_once;
use super::Campaign;
use crate::campaign::RowError;
use crate::model::Counts;
use crate::store::Store;
use crate::Error;
use std::time::{Duration, Instant};

/// What `volley load` did.
#[derive(Debug)]
pub struct LoadReport {
    /// False when the store had the list already (nothing was read).
    pub loaded_now: bool,
    /// The campaign's counters after the load.
    pub counts: Counts,
    /// The first invalid rows, when it loaded now.
    pub row_errors: Vec<RowError>,
    /// From opening the store to the list being durable.
    pub elapsed: Duration,
}

/// Loads `campaign`'s list into its store unless the store has it already, and makes it
/// durable. Nothing is sent; `volley send` later starts from the loaded list.
pub async fn load(campaign: &Campaign) -> Result<LoadReport, Error> {
    let started = Instant::now();
    let store = Store::open_at(&campaign.settings.store)?;
    // Not while a send of the same campaign loads it (on a database; sled's folder lock
    // already keeps a second process out).
    let _lock = super::send_lock::lock(&campaign.settings.store, campaign.id())?;
    let (loaded_now, row_errors) = load_once(campaign, &store, None).await?;
    store.flush().await?;
    let counts = store.counts(campaign.id())?.unwrap_or_default();
    Ok(LoadReport {
        loaded_now,
        counts,
        row_errors,
        elapsed: started.elapsed(),
    })
}
