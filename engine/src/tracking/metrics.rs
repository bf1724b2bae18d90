//! `/metrics`: request and event counters and commit latency, in Prometheus text format.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counters of a running tracking server.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    opens: AtomicU64,
    clicks: AtomicU64,
    unsubscribes: AtomicU64,
    pages: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
    machine: AtomicU64,
    flushes: AtomicU64,
    flushed_events: AtomicU64,
    flush_micros: AtomicU64,
    repeats: AtomicU64,
    capped: AtomicU64,
}

/// Why a tracked request stored nothing.
#[derive(Debug, Clone, Copy)]
pub(crate) enum NotStored {
    /// The same request within the de-duplication window.
    Repeat,
    /// The recipient reached the day's cap of events.
    DailyCap,
}

/// What a request was, for the counters.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Hit {
    Open,
    Click,
    Unsubscribe,
    Page,
    Rejected,
    Failed,
}

impl Metrics {
    pub(crate) fn hit(&self, hit: Hit) {
        // The process's metrics (the API's `/metrics`) count the tracking events too.
        let kind = match hit {
            Hit::Open => Some("open"),
            Hit::Click => Some("click"),
            Hit::Unsubscribe => Some("unsubscribe"),
            Hit::Page | Hit::Rejected | Hit::Failed => None,
        };
        if let Some(kind) = kind {
            crate::metrics::global().tracking_event(kind);
        }
        let counter = match hit {
            Hit::Open => &self.opens,
            Hit::Click => &self.clicks,
            Hit::Unsubscribe => &self.unsubscribes,
            Hit::Page => &self.pages,
            Hit::Rejected => &self.rejected,
            Hit::Failed => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn not_stored(&self, why: NotStored) {
        let counter = match why {
            NotStored::Repeat => &self.repeats,
            NotStored::DailyCap => &self.capped,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn machine(&self) {
        self.machine.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn flushed(&self, events: usize, took: Duration) {
        self.flushes.fetch_add(1, Ordering::Relaxed);
        self.flushed_events
            .fetch_add(events as u64, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.flush_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub(crate) fn render(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP volley_tracking_requests_total Tracking requests by route and result."
        );
        let _ = writeln!(out, "# TYPE volley_tracking_requests_total counter");
        for (route, value) in [
            ("open", get(&self.opens)),
            ("click", get(&self.clicks)),
            ("unsubscribe", get(&self.unsubscribes)),
            ("unsubscribe_page", get(&self.pages)),
        ] {
            let _ = writeln!(
                out,
                "volley_tracking_requests_total{{route=\"{route}\",result=\"ok\"}} {value}"
            );
        }
        let _ = writeln!(
            out,
            "volley_tracking_requests_total{{route=\"any\",result=\"rejected\"}} {}",
            get(&self.rejected)
        );
        let _ = writeln!(
            out,
            "volley_tracking_requests_total{{route=\"any\",result=\"failed\"}} {}",
            get(&self.failed)
        );
        let _ = writeln!(
            out,
            "# HELP volley_tracking_machine_events_total Events judged machine-made."
        );
        let _ = writeln!(out, "# TYPE volley_tracking_machine_events_total counter");
        let _ = writeln!(
            out,
            "volley_tracking_machine_events_total {}",
            get(&self.machine)
        );
        let _ = writeln!(
            out,
            "# HELP volley_tracking_not_stored_total Requests answered without storing an event."
        );
        let _ = writeln!(out, "# TYPE volley_tracking_not_stored_total counter");
        for (reason, value) in [
            ("repeat", get(&self.repeats)),
            ("daily_cap", get(&self.capped)),
        ] {
            let _ = writeln!(
                out,
                "volley_tracking_not_stored_total{{reason=\"{reason}\"}} {value}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP volley_tracking_commits_total Group commits (one flush each)."
        );
        let _ = writeln!(out, "# TYPE volley_tracking_commits_total counter");
        let _ = writeln!(out, "volley_tracking_commits_total {}", get(&self.flushes));
        let _ = writeln!(
            out,
            "# HELP volley_tracking_committed_events_total Events made durable."
        );
        let _ = writeln!(out, "# TYPE volley_tracking_committed_events_total counter");
        let _ = writeln!(
            out,
            "volley_tracking_committed_events_total {}",
            get(&self.flushed_events)
        );
        let _ = writeln!(
            out,
            "# HELP volley_tracking_commit_seconds_total Time spent writing and flushing."
        );
        let _ = writeln!(out, "# TYPE volley_tracking_commit_seconds_total counter");
        let _ = writeln!(
            out,
            "volley_tracking_commit_seconds_total {:.6}",
            get(&self.flush_micros) as f64 / 1e6
        );
        out
    }
}
