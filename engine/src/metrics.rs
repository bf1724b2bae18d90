//! Operators' metrics, one registry for the whole process (`prometheus-client`), rendered in
//! the OpenMetrics text format (which Prometheus scrapes) by `/metrics` on the API.
//!
//! Two kinds: counters and a histogram that the pipeline feeds as things happen (outcomes
//! recorded, tracking events, store write time, transactional messages accepted), and
//! gauges set from a fresh look at the server at each scrape ([`Metrics::render`] with a
//! [`Scrape`]): queue depths, connections, throttled and suspended destinations, relay
//! quota left. The webhook backlog is a gauge its owner sets ([`Metrics::set_webhook_backlog`]).
//!
//! Cardinality is bounded: campaign and destination label values are taken as they come up
//! to [`MAX_LABEL_VALUES`] distinct values each per process; later ones are counted under
//! `other`. Scraped gauges only name campaigns with work queued and the running send's
//! destinations.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Distinct campaign (and destination) label values kept per process; the rest are `other`.
pub const MAX_LABEL_VALUES: usize = 200;

/// The label value past the cap.
const OTHER: &str = "other";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    campaign: String,
    destination: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    campaign: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DestinationLabels {
    destination: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QuotaLabels {
    relay: String,
    cap: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

/// Label values seen so far, up to the cap.
#[derive(Debug, Default)]
struct Bounded {
    seen: Mutex<HashSet<String>>,
}

impl Bounded {
    fn label(&self, value: &str) -> String {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.contains(value) {
            return value.to_owned();
        }
        if seen.len() < MAX_LABEL_VALUES {
            seen.insert(value.to_owned());
            return value.to_owned();
        }
        OTHER.to_owned()
    }
}

/// The process's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    outcomes: Family<OutcomeLabels, Counter>,
    tracking: Family<KindLabels, Counter>,
    transactional: Family<KindLabels, Counter>,
    store_write: Histogram,
    queue: Family<QueueLabels, Gauge>,
    connections: Family<DestinationLabels, Gauge>,
    throttled: Family<DestinationLabels, Gauge>,
    suspended: Family<DestinationLabels, Gauge>,
    quota_left: Family<QuotaLabels, Gauge>,
    webhook_backlog: Gauge,
    campaigns: Bounded,
    destinations: Bounded,
    /// One scrape at a time sets the scraped gauges.
    scraping: Mutex<()>,
}

/// The process's metrics (created on first use).
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

impl Metrics {
    fn new() -> Metrics {
        let mut m = Metrics {
            registry: Registry::with_prefix("volley"),
            outcomes: Family::default(),
            tracking: Family::default(),
            transactional: Family::default(),
            store_write: Histogram::new(exponential_buckets(0.000_5, 2.0, 14)),
            queue: Family::default(),
            connections: Family::default(),
            throttled: Family::default(),
            suspended: Family::default(),
            quota_left: Family::default(),
            webhook_backlog: Gauge::default(),
            campaigns: Bounded::default(),
            destinations: Bounded::default(),
            scraping: Mutex::new(()),
        };
        let r = &mut m.registry;
        r.register(
            "messages",
            "Delivery outcomes recorded, by campaign, destination and outcome (delivered, deferred, bounced, expired, suppressed)",
            m.outcomes.clone(),
        );
        r.register(
            "tracking_events",
            "Tracking requests served, by kind (open, click, unsubscribe)",
            m.tracking.clone(),
        );
        r.register(
            "transactional_messages",
            "Transactional messages submitted, by result (accepted, repeated, refused)",
            m.transactional.clone(),
        );
        r.register(
            "store_write_seconds",
            "Time to write and flush one group of outcomes or one transactional message (the durability point)",
            m.store_write.clone(),
        );
        r.register(
            "queue_recipients",
            "Recipients waiting, by campaign and state (pending, deferred); campaigns with none are left out",
            m.queue.clone(),
        );
        r.register(
            "open_connections",
            "SMTP connections open (or opening), by destination of the running send",
            m.connections.clone(),
        );
        r.register(
            "destination_throttled",
            "1 while a destination's limits are lowered by back-off after throttling replies",
            m.throttled.clone(),
        );
        r.register(
            "destination_suspended",
            "1 while a destination is suspended after repeated throttling (or unreachable)",
            m.suspended.clone(),
        );
        r.register(
            "relay_quota_left",
            "Messages the relay's hourly or daily cap still allows, by relay and cap (hour, day)",
            m.quota_left.clone(),
        );
        r.register(
            "webhook_backlog",
            "Webhook events stored and not yet acknowledged by their receivers",
            m.webhook_backlog.clone(),
        );
        m
    }

    /// Counts `n` outcomes of kind `outcome` recorded for `campaign` at `destination`.
    pub fn outcome(&self, campaign: &str, destination: &str, outcome: &str, n: u64) {
        let labels = OutcomeLabels {
            campaign: self.campaigns.label(campaign),
            destination: self.destinations.label(destination),
            outcome: outcome.to_owned(),
        };
        self.outcomes.get_or_create(&labels).inc_by(n);
    }

    /// Counts one tracking event of `kind` (`open`, `click`, `unsubscribe`).
    pub fn tracking_event(&self, kind: &str) {
        self.tracking
            .get_or_create(&KindLabels {
                kind: kind.to_owned(),
            })
            .inc();
    }

    /// Counts one transactional submission with `result` (`accepted`, `repeated`, `refused`).
    pub fn transactional(&self, result: &str) {
        self.transactional
            .get_or_create(&KindLabels {
                kind: result.to_owned(),
            })
            .inc();
    }

    /// Notes how long one durable store write (write and flush) took.
    pub fn store_write(&self, took: Duration) {
        self.store_write.observe(took.as_secs_f64());
    }

    /// Sets the webhook backlog: events stored and not yet acknowledged.
    pub fn set_webhook_backlog(&self, events: u64) {
        self.webhook_backlog
            .set(i64::try_from(events).unwrap_or(i64::MAX));
    }

    /// The text exposition, after `look` set the scraped gauges afresh (those of an earlier
    /// scrape are cleared first, so a campaign or destination gone is gone here too).
    pub fn render(&self, look: impl FnOnce(&mut Scrape<'_>)) -> String {
        let _one = self.scraping.lock().unwrap_or_else(|p| p.into_inner());
        self.queue.clear();
        self.connections.clear();
        self.throttled.clear();
        self.suspended.clear();
        self.quota_left.clear();
        look(&mut Scrape { metrics: self });
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            // Writing into a String does not fail; say so rather than panic if it ever did.
            out.push_str("# the metrics could not be encoded\n");
        }
        out
    }
}

/// Setters of the gauges taken at each scrape (see [`Metrics::render`]).
pub struct Scrape<'a> {
    metrics: &'a Metrics,
}

impl Scrape<'_> {
    /// Campaign `campaign` has `pending` and `deferred` recipients waiting.
    pub fn queue(&mut self, campaign: &str, pending: u64, deferred: u64) {
        let campaign = self.metrics.campaigns.label(campaign);
        for (state, n) in [("pending", pending), ("deferred", deferred)] {
            self.metrics
                .queue
                .get_or_create(&QueueLabels {
                    campaign: campaign.clone(),
                    state: state.to_owned(),
                })
                .inc_by(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// Destination `name` has `connections` open, and is throttled and/or suspended.
    pub fn destination(
        &mut self,
        name: &str,
        connections: usize,
        throttled: bool,
        suspended: bool,
    ) {
        let labels = DestinationLabels {
            destination: self.metrics.destinations.label(name),
        };
        let m = self.metrics;
        m.connections
            .get_or_create(&labels)
            .inc_by(i64::try_from(connections).unwrap_or(i64::MAX));
        m.throttled.get_or_create(&labels).set(i64::from(throttled));
        m.suspended.get_or_create(&labels).set(i64::from(suspended));
    }

    /// Relay `relay`'s cap `cap` (`hour` or `day`) allows `left` more messages.
    pub fn quota_left(&mut self, relay: &str, cap: &str, left: u64) {
        self.metrics
            .quota_left
            .get_or_create(&QuotaLabels {
                relay: relay.to_owned(),
                cap: cap.to_owned(),
            })
            .set(i64::try_from(left).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_past_the_cap_are_counted_as_other() {
        let bounded = Bounded::default();
        for n in 0..MAX_LABEL_VALUES {
            assert_eq!(bounded.label(&format!("c{n}")), format!("c{n}"));
        }
        assert_eq!(bounded.label("one-too-many"), OTHER);
        assert_eq!(bounded.label("c7"), "c7");
    }

    #[test]
    fn a_scrape_replaces_the_gauges_of_the_last_one() {
        let metrics = Metrics::new();
        let first = metrics.render(|s| {
            s.queue("gone", 3, 1);
            s.destination("relay mx.example:25", 2, false, true);
        });
        assert!(
            first.contains("volley_queue_recipients{campaign=\"gone\",state=\"pending\"} 3"),
            "{first}"
        );
        assert!(
            first.contains("volley_destination_suspended{destination=\"relay mx.example:25\"} 1"),
            "{first}"
        );
        let second = metrics.render(|s| s.queue("new", 1, 0));
        assert!(!second.contains("gone"), "{second}");
        assert!(second.contains("# EOF"), "{second}");
    }
}
