//! Local-time sending windows (issue 23): recipients in Berlin, New York and Kolkata (and one
//! whose zone is not a zone) with `window = "09:00-17:00"`, sent on a manual clock on the
//! Sunday Berlin moved to summer time (2026-03-29: in the past, so that on PostgreSQL the
//! cluster's work query, which reads the database's clock, sees the recipients as due). Each is sent only once their own 09:00 has come; the
//! instants are computed by Python's `zoneinfo`, not by the code under test.

use crate::support::{Fixture, Setup, LIMIT};
use std::collections::BTreeSet;
use volley::model::{ManualClock, RecipientState};
use volley::runtime::{self, SendOptions, SendReport};
use volley::store::Store;

const LIST: &str = "email,first_name,city,tz\n\
                    ann@berlin.example,Ann,Berlin,Europe/Berlin\n\
                    bob@newyork.example,Bob,New York,America/New_York\n\
                    cid@kolkata.example,Cid,Kolkata,Asia/Kolkata\n\
                    dee@nowhere.example,Dee,Nowhere,Mars/Olympus\n";

/// `hour`:00 local on 2026-03-29 in `zone`, as epoch milliseconds, from Python.
fn python_local(zone: &str, hour: u32) -> u64 {
    let script = format!(
        "import datetime as d, zoneinfo as z\n\
         t = d.datetime(2026, 3, 29, {hour}, 0, tzinfo=z.ZoneInfo('{zone}'))\n\
         print(int(t.timestamp() * 1000))"
    );
    let output = std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 (with zoneinfo) must be installed for this test");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn at(millis: u64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(millis as i64).unwrap()
}

/// Sends on `clock`, without lingering: the manual clock never moves by itself, so a run
/// told to wait for a window a second away would wait for ever.
async fn send(fixture: &Fixture, clock: &ManualClock) -> SendReport {
    let options = SendOptions {
        clock: clock.clock(),
        linger: std::time::Duration::ZERO,
        ..SendOptions::default()
    };
    tokio::time::timeout(LIMIT, runtime::send(&fixture.campaign(), options))
        .await
        .expect("send finished in time")
        .unwrap()
}

/// The recipients the sink has received so far.
fn received(fixture: &Fixture) -> BTreeSet<String> {
    fixture
        .sink
        .received()
        .iter()
        .flat_map(|m| m.rcpt_to.clone())
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_recipient_is_sent_only_inside_their_own_window() {
    let setup = Setup {
        sections: "[schedule]\nwindow = \"09:00-17:00\"\ntimezone_column = \"tz\"\n\
                   default_timezone = \"UTC\"\n"
            .to_owned(),
        ..Setup::default()
    };
    let fixture = Fixture::new(setup, LIST).await;
    let berlin = python_local("Europe/Berlin", 9);
    let new_york = python_local("America/New_York", 9);
    let utc = python_local("UTC", 9);
    // Summer time: Berlin is two hours ahead of UTC that morning, New York four behind.
    assert_eq!((utc - berlin, new_york - utc), (7_200_000, 14_400_000));
    assert_eq!(
        python_local("Asia/Kolkata", 17) - utc,
        2 * 3_600_000 + 1_800_000
    );

    // 05:00 UTC: 10:30 in Kolkata (open), 07:00 in Berlin, 01:00 in New York, 05:00 in UTC.
    let clock = ManualClock::new(at(utc - 4 * 3_600_000));
    let first = send(&fixture, &clock).await;
    assert_eq!(received(&fixture), set(&["cid@kolkata.example"]));
    assert_eq!((first.counts.delivered, first.counts.waiting), (1, 3));
    assert_eq!(first.attempts, 1, "waiting is not an attempt");
    assert_eq!(first.next_window, Some(berlin));

    let store = Store::open_at(&fixture.campaign().settings().store).unwrap();
    let waiting = store
        .recipients_in("test-campaign", RecipientState::Waiting)
        .unwrap();
    let mut due: Vec<(String, Option<u64>, u32)> = waiting
        .iter()
        .map(|r| {
            (
                r.record.email.clone(),
                r.record.next_attempt,
                r.record.attempts,
            )
        })
        .collect();
    due.sort();
    assert_eq!(
        due,
        [
            ("ann@berlin.example".to_owned(), Some(berlin), 0),
            ("bob@newyork.example".to_owned(), Some(new_york), 0),
            // An unknown zone: the default (UTC).
            ("dee@nowhere.example".to_owned(), Some(utc), 0),
        ]
    );
    drop(store);

    // A second before Berlin's 09:00: nothing more goes.
    clock.set(at(berlin - 1_000));
    let early = send(&fixture, &clock).await;
    assert_eq!((early.counts.waiting, early.attempts), (3, 0));
    assert_eq!(received(&fixture).len(), 1);

    // Each window opens in turn.
    let steps = [
        (berlin, "ann@berlin.example", Some(utc)),
        (utc, "dee@nowhere.example", Some(new_york)),
        (new_york, "bob@newyork.example", None),
    ];
    let mut expected = set(&["cid@kolkata.example"]);
    for (opens, who, next) in steps {
        clock.set(at(opens));
        let report = send(&fixture, &clock).await;
        expected.insert(who.to_owned());
        assert_eq!(received(&fixture), expected, "at {}", at(opens));
        assert_eq!(report.attempts, 1);
        assert_eq!(report.next_window, next);
    }
    assert_eq!(fixture.sink.count(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_at_sends_each_recipient_at_their_next_local_time() {
    let setup = Setup {
        sections: "[schedule]\nsend_at = \"09:30\"\ntimezone_column = \"tz\"\n".to_owned(),
        ..Setup::default()
    };
    let fixture = Fixture::new(setup, LIST).await;
    let kolkata = python_local("Asia/Kolkata", 9) + 30 * 60_000;
    // 10:30 in Kolkata: its 09:30 has passed, so Cid waits for tomorrow's.
    let clock = ManualClock::new(at(python_local("UTC", 5)));
    let first = send(&fixture, &clock).await;
    assert_eq!((first.counts.waiting, first.counts.delivered), (4, 0));
    let store = Store::open_at(&fixture.campaign().settings().store).unwrap();
    let cid = store
        .recipients_in("test-campaign", RecipientState::Waiting)
        .unwrap()
        .into_iter()
        .find(|r| r.record.email == "cid@kolkata.example")
        .unwrap();
    assert_eq!(cid.record.next_attempt, Some(kolkata + 86_400_000));
    drop(store);
    // Berlin's 09:30 (07:30 UTC): Ann only.
    clock.set(at(python_local("Europe/Berlin", 9) + 30 * 60_000));
    let report = send(&fixture, &clock).await;
    assert_eq!(received(&fixture), set(&["ann@berlin.example"]));
    assert_eq!(report.counts.waiting, 3);
}
