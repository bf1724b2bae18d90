//! Replies read for what they say: greylisting, a per-connection message cap, every
//! connection closed at once and a 451 to DATA each ask for a retry or a new connection, never
//! for a slower pace. Everyone is delivered in one run, and the destination's rate is never
//! cut.

use std::fmt::Write as _;

use volley::model::DestinationStatus;
use volley::runtime::SendReport;
use volley::store::Store;
use volley_testkit::sink::SinkConfig;

use crate::support::{self, Fixture, Setup};

/// `n` recipients; the first `grey` greylisted once at RCPT (`defer…@`, 451 4.7.1), the
/// next `data` deferred once at DATA (`data451…@`, 451 4.3.0), the rest accepted.
fn list(n: usize, grey: usize, data: usize) -> String {
    let mut csv = String::from("email,first_name,city\n");
    for i in 0..n {
        let local = if i < grey {
            format!("defer{i}")
        } else if i < grey + data {
            format!("data451-{i}")
        } else {
            format!("user{i}")
        };
        writeln!(csv, "{local}@d{}.example,Name{i},City", i % 3).unwrap();
    }
    csv
}

async fn send(sink: SinkConfig, csv: &str) -> (Fixture, SendReport) {
    let setup = Setup {
        sink,
        connections: 4,
        ..Setup::default()
    };
    let fixture = Fixture::new(setup, csv).await;
    let report = fixture.send().await.unwrap();
    (fixture, report)
}

/// The relay destination at the end of the run.
fn relay(report: &SendReport) -> &DestinationStatus {
    assert_eq!(report.destinations.len(), 1, "{:?}", report.destinations);
    &report.destinations[0]
}

/// Everyone delivered exactly once, nothing left, and the pace never cut.
fn all_delivered_unthrottled(fixture: &Fixture, report: &SendReport, n: u64) {
    let c = &report.counts;
    assert_eq!(c.delivered, n, "{c:?}");
    assert_eq!(c.deferred + c.pending + c.expired + c.bounced, 0, "{c:?}");
    let arrivals = support::arrivals(&fixture.sink);
    assert_eq!(arrivals.len() as u64, n);
    assert!(arrivals.values().all(|&k| k == 1), "someone got two");
    let relay = relay(report);
    assert_eq!(
        relay.throttled, 0,
        "no reply counted as throttling: {relay:?}"
    );
    assert!(!relay.backing_off, "{relay:?}");
    assert_eq!(relay.suspended_for, None, "{relay:?}");
    assert!(report.blocked.is_empty(), "{:?}", report.blocked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greylisting_at_rcpt_defers_those_recipients_only() {
    let (fixture, report) = send(SinkConfig::default(), &list(60, 30, 0)).await;
    all_delivered_unthrottled(&fixture, &report, 60);
    assert!(report.attempts >= 90, "the greylisted were tried twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_451_to_data_defers_that_message_only() {
    let (fixture, report) = send(SinkConfig::default(), &list(40, 0, 3)).await;
    all_delivered_unthrottled(&fixture, &report, 40);
    assert_eq!(report.attempts, 43);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_connection_cap_is_learned_and_kept_without_slowing_down() {
    let sink = SinkConfig {
        messages_per_connection: Some(10),
        ..SinkConfig::default()
    };
    let (fixture, report) = send(sink, &list(150, 0, 0)).await;
    all_delivered_unthrottled(&fixture, &report, 150);
    assert_eq!(relay(&report).messages_per_connection, Some(9));
    assert!(fixture.sink.stats().max_messages_per_connection <= 10);
    // Kept for `volley status` and the next run.
    let store = Store::open(&fixture.path("campaign.volley")).unwrap();
    let limits = store.connection_limits().unwrap();
    assert_eq!(limits.len(), 1, "{limits:?}");
    assert_eq!(limits[0].1, 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connection_closed_at_once_means_reconnect_not_suspend() {
    let sink = SinkConfig {
        // Irregular: closes 30 apart twice on one connection would look like a cap of 30.
        close_all_at: vec![20, 45, 85],
        ..SinkConfig::default()
    };
    let (fixture, report) = send(sink, &list(120, 0, 0)).await;
    all_delivered_unthrottled(&fixture, &report, 120);
    assert_eq!(
        relay(&report).messages_per_connection,
        None,
        "closes at differing counts teach no per-connection limit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_of_it_at_once_still_delivers_everyone_in_one_run() {
    let sink = SinkConfig {
        messages_per_connection: Some(10),
        close_all_at: vec![25, 150],
        ..SinkConfig::default()
    };
    let (fixture, report) = send(sink, &list(300, 40, 3)).await;
    all_delivered_unthrottled(&fixture, &report, 300);
    let learned = relay(&report).messages_per_connection;
    assert!(
        matches!(learned, Some(1..=9)),
        "a limit under the server's 10 was learned: {learned:?}"
    );
    assert!(fixture.sink.stats().max_messages_per_connection <= 10);
}
