//! Warm-up (issue 23): a daily ceiling per mailbox provider, carried across runs in the
//! store. Recipients of `g.example`, whose MX is `gmail-smtp-in.l.google.com` in the test
//! zone (on 127.0.0.10), are the `gmail` provider by the built-in MX patterns; `o.example`
//! (MX `mx1.sink.test`) is `others`. The days come from a manual clock.

use crate::support::direct::{mx_sink, Direct};
use crate::support::LIMIT;
use std::collections::BTreeSet;
use volley::model::ManualClock;
use volley::runtime::{self, SendOptions, SendReport};
use volley::store::Store;
use volley_testkit::sink::SinkTls;

const DAY: u64 = 86_400_000;
const GMAIL_MX: &str = "gmail-smtp-in.l.google.com";

/// 60 recipients at `g.example` (row 15 is refused by policy, rows 33 and 40 throttled
/// once) and 3 at `o.example`.
fn list() -> String {
    let mut csv = String::from("email,first_name,city\n");
    for i in 0..60 {
        let local = match i {
            15 => format!("blocked-{i}"),
            33 | 40 => format!("throttle-{i}"),
            _ => format!("user{i}"),
        };
        csv.push_str(&format!("{local}@g.example,Name{i},City\n"));
    }
    for i in 0..3 {
        csv.push_str(&format!("other{i}@o.example,Other{i},City\n"));
    }
    csv
}

async fn start() -> Direct {
    let direct = Direct::start(2, mx_sink(SinkTls::StartTls), |zone, hosts| {
        zone.a(GMAIL_MX, hosts[0].1);
        zone.mx("g.example", 5, GMAIL_MX);
        zone.mx("o.example", 10, &hosts[1].0);
    })
    .await;
    let sections = "[warmup]\nstart = 10\ngrowth = 2\nmin = 5\n\
                    [warmup.providers.others]\nstart = 100\n";
    direct.write_campaign(&list(), "", sections);
    direct
}

/// Sends on `clock` without lingering (the manual clock never moves by itself).
async fn send(direct: &Direct, clock: &ManualClock) -> SendReport {
    let options = SendOptions {
        clock: clock.clock(),
        linger: std::time::Duration::ZERO,
        ..SendOptions::default()
    };
    tokio::time::timeout(LIMIT, runtime::send(&direct.campaign(), options))
        .await
        .expect("send finished in time")
        .unwrap()
}

/// The `g.example` recipients the sink accepted so far.
fn gmail_received(direct: &Direct) -> BTreeSet<String> {
    direct
        .sink
        .received()
        .iter()
        .flat_map(|m| m.rcpt_to.clone())
        .filter(|r| r.ends_with("@g.example"))
        .collect()
}

/// Per provider (ceiling, sent, held) as `volley status` shows them at `clock`.
fn status(direct: &Direct, clock: &ManualClock) -> Vec<(String, Option<u32>, u32, u32, String)> {
    let campaign = direct.campaign();
    let settings = campaign.settings();
    let store = Store::open_at(&settings.store).unwrap();
    let warmup = runtime::warmup_status(&store, settings, clock.clock().now_millis())
        .unwrap()
        .unwrap();
    warmup
        .providers
        .iter()
        .filter(|p| p.provider == "gmail" || p.provider == "others")
        .map(|p| {
            (
                p.provider.clone(),
                p.ceiling.limit,
                p.sent,
                p.held,
                p.ceiling.change.describe(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warmup_ceiling_is_carried_across_runs_and_days() {
    let direct = start().await;
    // Tomorrow 10:00 UTC: retries the store schedules on the system clock fall due on the
    // later manual days.
    let now = volley::model::now_millis();
    let day_one = (now / DAY + 1) * DAY + 10 * 3_600_000;
    let clock = ManualClock::new(chrono::DateTime::from_timestamp_millis(day_one as i64).unwrap());

    // Day 1: ten gmail recipients go, the three others all go; fifty stay pending.
    let first = send(&direct, &clock).await;
    assert_eq!(gmail_received(&direct).len(), 10);
    assert_eq!(first.counts.delivered, 13);
    assert_eq!(first.counts.pending, 50);
    assert_eq!(first.attempts, 13, "held back recipients are not attempted");
    let held: Vec<_> = first
        .warmup
        .iter()
        .map(|h| (h.provider.as_str(), h.ceiling, h.sent, h.held))
        .collect();
    assert_eq!(held, [("gmail", 10, 10, 50)]);
    assert_eq!(first.warmup[0].until, (day_one / DAY + 1) * DAY);
    assert_eq!(
        status(&direct, &clock),
        [
            ("gmail".into(), Some(10), 10, 50, "first day".into()),
            ("others".into(), Some(100), 3, 0, "first day".into()),
        ]
    );

    // The same day, an hour later: the ceiling is used up; nothing more goes.
    clock.advance(std::time::Duration::from_secs(3_600));
    let again = send(&direct, &clock).await;
    assert_eq!(again.attempts, 0);
    assert_eq!(gmail_received(&direct).len(), 10);
    assert_eq!(again.counts.pending, 50);
    assert_eq!(again.warmup.len(), 1);

    // Day 2, after a clean day: the ceiling doubles to 20 (one of them refused by policy).
    clock.advance(std::time::Duration::from_millis(DAY));
    let second = send(&direct, &clock).await;
    assert_eq!(second.attempts, 20);
    assert_eq!(gmail_received(&direct).len(), 29);
    // Deferred, not bounced: a refusal that blames the sender is tried again once.
    assert_eq!(second.counts.deferred, 1);
    assert_eq!(second.counts.bounced, 0);
    assert_eq!(second.counts.pending, 30);
    let today = status(&direct, &clock);
    assert_eq!(
        today[0],
        (
            "gmail".into(),
            Some(20),
            20,
            30,
            "grown after a clean day".into()
        )
    );

    // Day 3, after a policy block: halved to 10 (one of them throttled and deferred).
    clock.advance(std::time::Duration::from_millis(DAY));
    let third = send(&direct, &clock).await;
    assert_eq!(third.attempts, 10);
    // One of the ten is the retry of the recipient refused by policy on day 2: refused
    // again, it is bounced; so 21 stay pending.
    assert_eq!(third.counts.deferred, 1, "{:?}", third.counts);
    assert_eq!(third.counts.bounced, 1, "{:?}", third.counts);
    assert_eq!(
        status(&direct, &clock)[0],
        (
            "gmail".into(),
            Some(10),
            10,
            21,
            "halved (policy blocks)".into()
        )
    );

    // Day 4: the block was met again (the retry), so halved again, to 5: the throttled
    // recipient's retry and four more, one of them throttled.
    clock.advance(std::time::Duration::from_millis(DAY));
    let fourth = send(&direct, &clock).await;
    assert_eq!(fourth.attempts, 5);
    let now_status = status(&direct, &clock);
    assert_eq!(now_status[0].1, Some(5));
    assert_eq!(now_status[0].4, "halved (policy blocks)");

    // Day 5, after a day of throttling only: held at 5.
    clock.advance(std::time::Duration::from_millis(DAY));
    let fifth = send(&direct, &clock).await;
    assert_eq!(fifth.attempts, 5);
    let now_status = status(&direct, &clock);
    assert_eq!(now_status[0].1, Some(5));
    assert_eq!(now_status[0].2, 5);
    assert_eq!(now_status[0].4, "held (throttling)");
    assert!(direct.arrivals().values().all(|&n| n == 1), "nobody twice");
}
