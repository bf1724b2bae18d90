//! The campaign-wide stop of a `volley send` (`[bounces] max_bounce_rate`,
//! `max_complaint_rate`): the recorder tells the guard the campaign's counts after each
//! group; past a limit it stops the run (transactions in flight finish, the remaining
//! recipients stay pending or deferred) and the send reports why. The check is the model's
//! pure [`StopLimits::check`], so `volley status` and the next send judge the same counts
//! alike: a campaign past its limit stays stopped until the limit is raised.

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::model::{CampaignStop, Counts, StopLimits};
use crate::store::{EventKind, Store, StoreError};

/// How often complaints are counted again from the store, at most.
const COMPLAINTS_EVERY: Duration = Duration::from_secs(5);

/// One campaign's stop, for one send.
pub(crate) struct CampaignGuard {
    limits: StopLimits,
    store: Store,
    campaign: String,
    stop: CancellationToken,
    stopped: OnceLock<CampaignStop>,
    /// Complaints counted, and when.
    complaints: Mutex<Option<(u64, Instant)>>,
}

/// The complaints recorded for `campaign`.
pub(crate) fn complaints(store: &Store, campaign: &str) -> Result<u64, StoreError> {
    let events = store.events(campaign)?;
    Ok(events
        .iter()
        .filter(|e| e.kind == EventKind::Complaint)
        .count() as u64)
}

impl CampaignGuard {
    /// A guard for `campaign` under `limits`; `stop` is cancelled when a limit is passed.
    pub(crate) fn new(
        limits: StopLimits,
        store: Store,
        campaign: &str,
        stop: CancellationToken,
    ) -> CampaignGuard {
        CampaignGuard {
            limits,
            store,
            campaign: campaign.to_owned(),
            stop,
            stopped: OnceLock::new(),
            complaints: Mutex::new(None),
        }
    }

    /// Why the campaign stopped, once it did.
    pub(crate) fn stopped(&self) -> Option<CampaignStop> {
        self.stopped.get().copied()
    }

    /// Judges `counts`: past a limit, stops the run (once).
    pub(crate) fn note(&self, counts: &Counts) {
        if self.limits.is_off() || self.stopped.get().is_some() {
            return;
        }
        let complaints = self.complaints();
        if let Some(stop) = self.limits.check(counts, complaints) {
            if self.stopped.set(stop).is_ok() {
                tracing::warn!(campaign = %self.campaign, limit = stop.metric.key(), rate = stop.rate, max = stop.limit, sample = stop.sample, "campaign stopped: a rate passed its limit");
                self.stop.cancel();
            }
        }
    }

    /// The complaints so far, counted again at most every [`COMPLAINTS_EVERY`].
    fn complaints(&self) -> u64 {
        if self.limits.max_complaint_rate.is_none() {
            return 0;
        }
        let mut kept = self.complaints.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((n, at)) = *kept {
            if at.elapsed() < COMPLAINTS_EVERY {
                return n;
            }
        }
        let n = match complaints(&self.store, &self.campaign) {
            Ok(n) => n,
            Err(error) => {
                tracing::warn!(campaign = %self.campaign, %error, "could not count complaints");
                kept.map_or(0, |(n, _)| n)
            }
        };
        *kept = Some((n, Instant::now()));
        n
    }
}
