//! `volley status`: counts by state, read from the store or, while another process owns the
//! store, asked of that process over its control socket.

use crate::config::CampaignSettings;
use crate::control::{self, Request, Response};
pub use crate::control::{StatusReport, WarmupStatus};
use crate::store::{Store, StoreError};
use crate::Error;

/// Reads a campaign's counts, directly or through the process that holds the store.
pub async fn status(settings: &CampaignSettings) -> Result<StatusReport, Error> {
    let not_loaded = || Error::NotLoaded {
        campaign: settings.id.clone(),
        store: settings.store.shown(),
    };
    if !settings.store.may_exist() {
        return Err(not_loaded());
    }
    match Store::open_at(&settings.store) {
        Ok(store) => {
            let id =
                super::latest_edition(&store, &settings.id)?.unwrap_or_else(|| settings.id.clone());
            let counts = store.counts(&id)?.ok_or_else(not_loaded)?;
            let stopped = stopped(settings, &store, &id, &counts)?;
            Ok(StatusReport {
                counts,
                next_due: store.next_due(&id)?,
                next_window: store.next_window(&id)?,
                live_from: None,
                active: false,
                destinations: Vec::new(),
                paused: None,
                tracking: store.tracking_totals(&id)?,
                connection_limits: store.connection_limits()?,
                nodes: match store.cluster() {
                    Some(cluster) => cluster.nodes()?,
                    None => Vec::new(),
                },
                webhooks: crate::webhooks::campaign_statuses(&store, &id)?,
                relays: store.relay_tallies(&id)?,
                warmup: warmup_status(&store, settings, crate::model::now_millis())?,
                blocks: crate::report::blocks_of(&store, &id)?,
                stopped,
                campaign: id,
            })
        }
        Err(StoreError::Locked { .. }) => {
            let mut report = live_status(settings).await?;
            // The running send has the store: the bounce rate alone is judged here.
            report.stopped = super::stop::check(&settings.bounces.stop, &report.counts, 0);
            Ok(report)
        }
        Err(other) => Err(other.into()),
    }
}

/// The warm-up of `settings` at `now` as kept in `store`, when the campaign has one.
pub fn warmup_status(
    store: &Store,
    settings: &CampaignSettings,
    now: crate::model::Millis,
) -> Result<Option<WarmupStatus>, Error> {
    let Some(warmup) = &settings.warmup else {
        return Ok(None);
    };
    let day = crate::warmup::today(warmup.timezone, now);
    let days = store.warmup_days(Some(&warmup.key))?;
    Ok(Some(WarmupStatus {
        key: warmup.key.clone(),
        next_day: crate::warmup::day_start(warmup.timezone, day + 1),
        providers: crate::warmup::plan(warmup, &days, day),
    }))
}

/// The campaign-wide stop `counts` call for under the campaign's limits.
fn stopped(
    settings: &CampaignSettings,
    store: &Store,
    id: &str,
    counts: &crate::model::Counts,
) -> Result<Option<crate::model::CampaignStop>, StoreError> {
    let limits = settings.bounces.stop;
    if limits.is_off() {
        return Ok(None);
    }
    let complaints = match limits.max_complaint_rate {
        Some(_) => super::stop::complaints(store, id)?,
        None => 0,
    };
    Ok(super::stop::check(&limits, counts, complaints))
}

/// Asks the process that holds the store (a send or a server) for the campaign's status.
async fn live_status(settings: &CampaignSettings) -> Result<StatusReport, Error> {
    let request = Request::Status {
        campaign: settings.id.clone(),
    };
    let response = control::request(&settings.store.shown(), &request).await?;
    if let Response::Error { message } = response {
        return Err(Error::Remote(message));
    }
    StatusReport::from_response(response, &settings.id)
        .ok_or_else(|| Error::Remote("unexpected answer to a status request".to_owned()))
}
