//! The campaign-wide stop of a `volley send` (`[bounces] max_bounce_rate`,
//! `max_complaint_rate`): the recorder tells the guard the campaign's counts after each
//! group; past a limit it stops the run (transactions in flight finish, the remaining
//! recipients stay pending or deferred) and the send reports why. The check ([`check`]) is
//! pure, so `volley status` and the next send judge the same counts alike: a campaign past
//! its limit stays stopped until the limit is raised.

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::config::StopLimits;
use crate::model::{CampaignStop, Counts, StopMetric};
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

/// The stop `counts` and `complaints` call for under `limits`, if any: the bounce rate
/// first.
pub(crate) fn check(limits: &StopLimits, counts: &Counts, complaints: u64) -> Option<CampaignStop> {
    let ended = counts.delivered + counts.bounced;
    let bounce = limits.max_bounce_rate.and_then(|limit| {
        let rate = counts.bounced as f64 / ended.max(1) as f64;
        (ended >= limits.min_sample && rate > limit).then_some(CampaignStop {
            metric: StopMetric::BounceRate,
            rate,
            limit,
            sample: ended,
        })
    });
    bounce.or_else(|| {
        let limit = limits.max_complaint_rate?;
        let delivered = counts.delivered;
        let rate = complaints as f64 / delivered.max(1) as f64;
        (delivered >= limits.min_sample && rate > limit).then_some(CampaignStop {
            metric: StopMetric::ComplaintRate,
            rate,
            limit,
            sample: delivered,
        })
    })
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
        if let Some(stop) = check(&self.limits, counts, complaints) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(delivered: u64, bounced: u64) -> Counts {
        Counts {
            delivered,
            bounced,
            ..Counts::default()
        }
    }

    #[test]
    fn a_rate_past_its_limit_stops_only_after_the_minimum_sample() {
        let limits = StopLimits {
            max_bounce_rate: Some(0.05),
            max_complaint_rate: Some(0.003),
            min_sample: 100,
        };
        assert_eq!(check(&limits, &counts(50, 40), 0), None, "too few yet");
        let stop = check(&limits, &counts(90, 10), 0).unwrap();
        assert_eq!(stop.metric, StopMetric::BounceRate);
        assert_eq!((stop.rate, stop.sample), (0.1, 100));
        assert_eq!(check(&limits, &counts(96, 4), 0), None, "4 % is within 5 %");
        assert_eq!(check(&limits, &counts(99, 0), 5), None, "too few delivered");
        let stop = check(&limits, &counts(1_000, 0), 4).unwrap();
        assert_eq!(stop.metric, StopMetric::ComplaintRate);
        assert_eq!(stop.metric.key(), "bounces.max_complaint_rate");
        assert!(StopLimits::default().is_off());
        let off = StopLimits::default();
        assert_eq!(check(&off, &counts(0, 10_000), 10_000), None);
    }
}
