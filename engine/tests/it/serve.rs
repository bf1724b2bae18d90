//! `volley serve` with a weekly newsletter: each edition reaches each subscriber once, the
//! list is re-read for every edition, suppressed addresses are skipped, a stop in between
//! loses nothing, and a firing missed by more than the catch-up time is skipped. Time is a
//! test clock that moves only when told: no real waiting for Mondays or A/B waits, and
//! "nothing more was sent" is checked once the server reports a pass that found it idle.

use crate::support::logs::Logs;
use crate::support::{arrivals, Fixture, Setup, LIMIT};
use chrono::{DateTime, Utc};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use volley::model::ManualClock;
use volley::runtime::{Pass, ServeOptions, Server};

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
}

fn options(clock: &ManualClock) -> ServeOptions {
    ServeOptions {
        tick: Duration::from_millis(100),
        clock: clock.clock(),
        ..ServeOptions::default()
    }
}

/// Waits (at most [`LIMIT`]) for a pass after pass `after` that found the server idle: the
/// sends it started are over and, until the clock moves, nothing more goes.
async fn idle_after(passes: &mut watch::Receiver<Pass>, after: u64) -> u64 {
    tokio::time::timeout(LIMIT, passes.wait_for(|p| p.idle && p.number > after))
        .await
        .expect("the server fell idle in time")
        .unwrap()
        .number
}

/// Waits (at most [`LIMIT`]) until the sink holds `n` messages, then for the server to fall
/// idle; returns the idle pass.
async fn sent_then_idle(fixture: &Fixture, passes: &mut watch::Receiver<Pass>, n: usize) -> u64 {
    fixture.sink.wait_for(n, LIMIT).await.unwrap();
    let seen = passes.borrow().number;
    idle_after(passes, seen).await
}

fn serve_file(fixture: &Fixture) -> std::path::PathBuf {
    volley_testkit::campaign::ServeToml::new("newsletter.volley")
        .campaign("campaign.toml")
        .write(&fixture.path("serve.toml"))
}

/// Runs a server with `clock` until the sink holds `expect` messages (none more) and the
/// server has fallen idle, then stops it and waits for its clean exit.
async fn serve_until(fixture: &Fixture, clock: &ManualClock, expect: usize) {
    let (mut passes, running) = Running::start(fixture, clock).await;
    sent_then_idle(fixture, &mut passes, expect).await;
    running.stop().await;
}

/// A server running the fixture's serve file on a test clock.
struct Running {
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), volley::Error>>,
}

impl Running {
    /// Opens and starts the server on `clock`; returns its passes and the running server.
    async fn start(fixture: &Fixture, clock: &ManualClock) -> (watch::Receiver<Pass>, Running) {
        let settings = volley::config::load_serve(&serve_file(fixture)).unwrap();
        let cancel = CancellationToken::new();
        let server = Server::open(settings, options(clock), cancel.clone())
            .await
            .unwrap();
        let passes = server.passes();
        let task = tokio::spawn(server.run());
        (passes, Running { cancel, task })
    }

    /// Stops the server and waits (at most [`LIMIT`]) for its clean exit.
    async fn stop(self) {
        self.cancel.cancel();
        tokio::time::timeout(LIMIT, self.task)
            .await
            .expect("the server stopped in time")
            .unwrap()
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weekly_editions_reach_each_subscriber_once_and_follow_the_list() {
    let setup = Setup {
        sections: "[schedule]\ncron = \"0 9 * * MON\"\ntimezone = \"Europe/Berlin\"\n".to_owned(),
        ..Setup::default()
    };
    let fixture = Fixture::new(setup, "email,first_name,city\nann@a.example,Ann,Oslo\nbob@b.example,Bob,Rome\ncid@c.example,Cid,Lima\n").await;
    // Monday 7 December, 09:00:30 in Berlin: the first edition goes out, once.
    let clock = ManualClock::new(at("2026-12-07T08:00:30Z"));
    serve_until(&fixture, &clock, 3).await;
    assert_eq!(fixture.sink.count(), 3);

    // Later that Monday the server is restarted: nothing is sent again.
    clock.set(at("2026-12-07T12:00:00Z"));
    serve_until(&fixture, &clock, 3).await;
    assert_eq!(
        fixture.sink.count(),
        3,
        "an edition goes to each subscriber once"
    );

    // Between editions: a new subscriber joins the list, Bob is suppressed.
    let list = std::fs::read_to_string(fixture.path("list.csv")).unwrap();
    std::fs::write(
        fixture.path("list.csv"),
        format!("{list}dee@d.example,Dee,Kyiv\n"),
    )
    .unwrap();
    {
        let store = volley::store::Store::open(&fixture.path("newsletter.volley")).unwrap();
        volley::runtime::suppress_add(&store, "bob@b.example", None, "unsubscribed by phone")
            .unwrap();
        store.flush_blocking().unwrap();
    }

    // The next Monday's edition: the list as it is now.
    clock.set(at("2026-12-14T08:01:00Z"));
    serve_until(&fixture, &clock, 6).await;
    let got = arrivals(&fixture.sink);
    assert_eq!(got.get("ann@a.example"), Some(&2));
    assert_eq!(
        got.get("bob@b.example"),
        Some(&1),
        "suppressed after the first edition"
    );
    assert_eq!(got.get("cid@c.example"), Some(&2));
    assert_eq!(
        got.get("dee@d.example"),
        Some(&1),
        "joined for the second edition"
    );

    // Down over the next Monday morning and back at 16:00, past the 6 h catch-up: skipped.
    clock.set(at("2026-12-21T15:00:00Z"));
    serve_until(&fixture, &clock, 6).await;
    assert_eq!(fixture.sink.count(), 6, "a missed edition is not sent late");

    let store = volley::store::Store::open(&fixture.path("newsletter.volley")).unwrap();
    let mut campaigns = store.campaigns().unwrap();
    campaigns.sort();
    assert_eq!(
        campaigns,
        ["test-campaign.2026-12-07", "test-campaign.2026-12-14"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_sends_an_ab_test_remainder_when_its_verdict_is_due() {
    let setup = Setup {
        sections: "[[variant]]\nid = \"A\"\nsubject = \"Version A\"\n\n\
                   [[variant]]\nid = \"B\"\nsubject = \"Version B\"\n\n\
                   [ab]\ntest_share = 0.2\nwait = \"1h\"\non_inconclusive = \"variant:B\"\n"
            .to_owned(),
        ..Setup::default()
    };
    let fixture = Fixture::new(setup, &crate::support::list(50, 5)).await;
    let clock = ManualClock::new(at("2026-12-07T08:00:00Z"));
    let (mut passes, running) = Running::start(&fixture, &clock).await;
    // The test share goes out; the remainder waits for the hour to pass.
    sent_then_idle(&fixture, &mut passes, 10).await;
    assert_eq!(fixture.sink.count(), 10);
    clock.advance(Duration::from_secs(3_600));
    sent_then_idle(&fixture, &mut passes, 50).await;
    running.stop().await;
    assert_eq!(fixture.sink.count(), 50);
    assert!(arrivals(&fixture.sink).values().all(|n| *n == 1));
    let remainder = &fixture.sink.received()[10..];
    assert!(remainder
        .iter()
        .all(|m| String::from_utf8_lossy(&m.data).contains("Subject: Version B")));
}

const HELD: &str = "the remainder stays held";
const AGAIN: &str = "A/B verdict taken again";

// One thread: the server's look runs where the logs are captured.
#[tokio::test]
async fn a_held_verdict_waits_for_news_or_its_recheck_time_on_the_server_clock() {
    let (logs, _guard) = Logs::capture(tracing::Level::DEBUG);
    let setup = Setup {
        sections: "[[variant]]\nid = \"A\"\nsubject = \"Version A\"\n\n\
                   [[variant]]\nid = \"B\"\nsubject = \"Version B\"\n\n\
                   [ab]\ntest_share = 0.2\nwait = \"1h\"\non_inconclusive = \"hold\"\n\
                   recheck_every = \"10m\"\n"
            .to_owned(),
        ..Setup::default()
    };
    let fixture = Fixture::new(setup, &crate::support::list(50, 5)).await;
    let clock = ManualClock::new(at("2026-12-07T08:00:00Z"));
    let (mut passes, running) = Running::start(&fixture, &clock).await;

    // The test share goes out; an hour later the verdict holds: said once.
    let idle = sent_then_idle(&fixture, &mut passes, 10).await;
    assert_eq!(logs.count(HELD), 0, "not before the wait");
    clock.set(at("2026-12-07T09:00:00Z"));
    logs.wait_for(HELD, 1).await;
    assert_eq!(fixture.sink.count(), 10);
    // Ten more looks: nothing new, so the verdict is not taken again.
    let held = idle_after(&mut passes, idle).await;
    tokio::time::timeout(LIMIT, passes.wait_for(|p| p.number >= held + 10))
        .await
        .expect("ten more passes in time")
        .unwrap();
    assert_eq!((logs.count(HELD), logs.count(AGAIN)), (1, 0));

    // Ten minutes later on the server's clock: taken again, still held, not said again.
    clock.set(at("2026-12-07T09:10:00Z"));
    logs.wait_for(AGAIN, 1).await;
    assert_eq!(logs.count(HELD), 1);

    // The campaign file names a fallback: the server sees it at its next look, long before
    // the next recheck is due, and sends the remainder to B.
    let toml = std::fs::read_to_string(fixture.campaign_file()).unwrap();
    std::fs::write(
        fixture.campaign_file(),
        toml.replace(
            "on_inconclusive = \"hold\"",
            "on_inconclusive = \"variant:B\"",
        ),
    )
    .unwrap();
    let deadline = tokio::time::Instant::now() + LIMIT;
    while fixture.sink.count() < 50 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} arrived",
            fixture.sink.count()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(arrivals(&fixture.sink).values().all(|n| *n == 1));
    assert!(fixture.sink.received()[10..]
        .iter()
        .all(|m| String::from_utf8_lossy(&m.data).contains("Subject: Version B")));
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edition_reaches_each_zone_when_its_window_opens_on_the_server_clock() {
    let setup = Setup {
        sections: "[schedule]\ncron = \"0 9 * * MON\"\ntimezone = \"Europe/Berlin\"\n\
                   window = \"09:00-17:00\"\ntimezone_column = \"tz\"\n"
            .to_owned(),
        ..Setup::default()
    };
    let fixture = Fixture::new(
        setup,
        "email,first_name,city,tz\nann@a.example,Ann,Oslo,Europe/Berlin\n\
         bob@b.example,Bob,Boston,America/New_York\n",
    )
    .await;
    let clock = ManualClock::new(at("2026-12-07T08:00:30Z"));
    let (mut passes, running) = Running::start(&fixture, &clock).await;

    // 09:00 in Berlin, 03:00 in Boston: only Ann's window is open.
    let idle = sent_then_idle(&fixture, &mut passes, 1).await;
    assert_eq!(arrivals(&fixture.sink).get("bob@b.example"), None);
    let idle = idle_after(&mut passes, idle).await;
    assert_eq!(fixture.sink.count(), 1, "Bob waits for his window");

    // 09:00:30 in Boston: the server's next look sends Bob, once.
    clock.set(at("2026-12-07T14:00:30Z"));
    fixture.sink.wait_for(2, LIMIT).await.unwrap();
    idle_after(&mut passes, idle).await;
    let got = arrivals(&fixture.sink);
    assert_eq!(got.get("bob@b.example"), Some(&1));
    assert_eq!(got.get("ann@a.example"), Some(&1));
    running.stop().await;
}
