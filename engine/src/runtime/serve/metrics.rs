//! `/metrics` of a running server: the process's counters (see `crate::metrics`) with the
//! gauges of a fresh look at it: every campaign's queue (those with work waiting), the
//! running send's destinations and its relay's caps.

use std::sync::Arc;
use std::time::Instant;

use super::super::host::Host;
use crate::model::now_millis;
use crate::store::Store;

/// Renders the metrics of one server.
#[derive(Clone)]
pub struct MetricsSource {
    host: Arc<Host>,
    store: Store,
}

impl std::fmt::Debug for MetricsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsSource").finish_non_exhaustive()
    }
}

impl MetricsSource {
    pub(crate) fn new(host: Arc<Host>, store: Store) -> MetricsSource {
        MetricsSource { host, store }
    }

    /// The OpenMetrics text. Blocking: it reads every campaign's counters from the store
    /// (call it off the async workers).
    pub fn render(&self) -> String {
        crate::metrics::global().render(|scrape| {
            match self.store.campaigns() {
                Ok(campaigns) => {
                    for campaign in campaigns {
                        if let Ok(Some(counts)) = self.store.counts(&campaign) {
                            if counts.pending + counts.deferred > 0 {
                                scrape.queue(&campaign, counts.pending, counts.deferred);
                            }
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "metrics: could not list the campaigns"),
            }
            let Some(run) = self.host.current() else {
                return;
            };
            let now = Instant::now();
            for destination in run
                .view
                .destinations
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
            {
                let status = destination.status(now);
                let suspended = status.suspended_for.is_some() || status.failing_for.is_some();
                scrape.destination(
                    &status.name,
                    status.connections,
                    status.backing_off,
                    suspended,
                );
            }
            let relays = run.relay.read().unwrap_or_else(|p| p.into_inner()).clone();
            for usage in relays {
                let budget = usage.budget.lock().unwrap_or_else(|p| p.into_inner());
                let caps = budget.caps();
                let (hour, day) = budget.used(now_millis());
                for (cap, limit, used) in
                    [("hour", caps.per_hour, hour), ("day", caps.per_day, day)]
                {
                    if let Some(limit) = limit {
                        scrape.quota_left(&usage.key, cap, u64::from(limit).saturating_sub(used));
                    }
                }
            }
        })
    }
}
