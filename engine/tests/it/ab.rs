//! Test then winner without a winner: what the held remainder gets when the verdict is
//! inconclusive (`split`, `variant:<id>`, `hold`), and a decision taken before a crash is
//! finished with, not taken again. No tracking here, so no variant ever leads.

use crate::support::{self, arrivals, Fixture, Setup, LIMIT};
use std::time::Duration;
use volley::model::ManualClock;
use volley::runtime::{self, SendOptions, SendReport};
use volley::store::{AbDecision, Store};

/// Two variants told apart by their subject; `[ab]` with `on_inconclusive`.
fn setup(on_inconclusive: &str) -> Setup {
    Setup {
        sections: format!(
            "[[variant]]\nid = \"A\"\nsubject = \"Version A\"\n\n\
             [[variant]]\nid = \"B\"\nsubject = \"Version B\"\n\n\
             [ab]\ntest_share = 0.2\nwait = \"1h\"\nmin_per_variant = 5\n\
             on_inconclusive = \"{on_inconclusive}\"\n"
        ),
        ..Setup::default()
    }
}

/// How many received messages had each subject, from message `from` on.
fn versions(fixture: &Fixture, from: usize) -> (usize, usize) {
    let received = fixture.sink.received();
    let subject = |v: &str| {
        received[from..]
            .iter()
            .filter(|m| String::from_utf8_lossy(&m.data).contains(&format!("Subject: Version {v}")))
            .count()
    };
    (subject("A"), subject("B"))
}

/// Sends `fixture`'s campaign with the A/B wait measured on `clock`.
async fn send(fixture: &Fixture, clock: &ManualClock) -> SendReport {
    let options = SendOptions {
        clock: clock.clock(),
        ..SendOptions::default()
    };
    tokio::time::timeout(LIMIT, runtime::send(&fixture.campaign(), options))
        .await
        .expect("send finished in time")
        .unwrap()
}

/// Sends the test share; checks that it went out split evenly, that the rest is held, and
/// that a send a second before the hour's wait is up decides nothing. Returns the clock,
/// moved to the end of the wait.
async fn send_test_share(fixture: &Fixture) -> ManualClock {
    let clock = ManualClock::new(chrono::Utc::now());
    let report = send(fixture, &clock).await;
    assert_eq!(versions(fixture, 0), (16, 16));
    let ab = report
        .ab
        .expect("a test-then-winner campaign reports its A/B state");
    assert_eq!((ab.held, report.counts.held), (128, 128));
    assert!(ab.decide_after.is_some() && ab.decision.is_none());
    clock.advance(Duration::from_secs(3_599));
    let early = send(fixture, &clock).await;
    let ab = early.ab.unwrap();
    assert!(!ab.decided_now && ab.decision.is_none() && ab.holding.is_none());
    assert_eq!((ab.held, fixture.sink.count()), (128, 32));
    clock.advance(Duration::from_secs(1));
    clock
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inconclusive_test_sends_the_remainder_split_by_weight() {
    let fixture = Fixture::new(setup("split"), &support::list(160, 8)).await;
    let clock = send_test_share(&fixture).await;
    let report = send(&fixture, &clock).await;
    let ab = report.ab.unwrap();
    assert!(ab.decided_now);
    let (how, variant, reason) = ab.decision.unwrap();
    assert_eq!((how.as_str(), variant), ("split", None));
    assert!(
        matches!(
            reason,
            volley::ab::Reason::NotSignificant { .. } | volley::ab::Reason::Tie { .. }
        ),
        "{reason:?}"
    );
    assert_eq!(versions(&fixture, 32), (64, 64));
    assert!(arrivals(&fixture.sink).values().all(|n| *n == 1));
    assert_eq!(report.counts.delivered, 160);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inconclusive_test_can_fall_back_to_a_named_variant() {
    let fixture = Fixture::new(setup("variant:B"), &support::list(160, 8)).await;
    let clock = send_test_share(&fixture).await;
    let report = send(&fixture, &clock).await;
    let (how, variant, _) = report.ab.unwrap().decision.unwrap();
    assert_eq!((how.as_str(), variant.as_deref()), ("variant", Some("B")));
    assert_eq!(versions(&fixture, 32), (0, 128));
    let store = Store::open(&fixture.path("campaign.volley")).unwrap();
    // The remainder is counted apart from the test share (the verdict is the test's).
    let per_variant: std::collections::HashMap<u8, u64> = store
        .variant_counts("test-campaign")
        .unwrap()
        .into_iter()
        .map(|(v, counts)| (v, counts.delivered))
        .collect();
    let remainder_b = 1 | volley::model::REMAINDER;
    assert_eq!(
        per_variant,
        [(0, 16), (1, 16), (remainder_b, 128)].into_iter().collect()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_keeps_the_remainder_until_the_campaign_says_otherwise() {
    let fixture = Fixture::new(setup("hold"), &support::list(160, 8)).await;
    let clock = send_test_share(&fixture).await;
    let report = send(&fixture, &clock).await;
    let ab = report.ab.unwrap();
    assert!(ab.holding.is_some() && ab.decision.is_none());
    assert_eq!(
        (report.counts.held, fixture.sink.received().len()),
        (128, 32)
    );
    let toml = std::fs::read_to_string(fixture.campaign_file()).unwrap();
    std::fs::write(
        fixture.campaign_file(),
        toml.replace(
            "on_inconclusive = \"hold\"",
            "on_inconclusive = \"variant:A\"",
        ),
    )
    .unwrap();
    let report = send(&fixture, &clock).await;
    assert_eq!(report.counts.held, 0);
    assert_eq!(versions(&fixture, 32), (128, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_taken_before_a_crash_is_finished_not_taken_again() {
    let fixture = Fixture::new(setup("split"), &support::list(160, 8)).await;
    let clock = send_test_share(&fixture).await;
    {
        // What a crash right after writing the decision leaves: decided, nobody released.
        let store = Store::open(&fixture.path("campaign.volley")).unwrap();
        let mut record = store.ab_record("test-campaign").unwrap();
        record.decision = Some(AbDecision {
            at: volley::model::now_millis(),
            how: "variant".into(),
            variant: Some(1),
            reason: volley::ab::Reason::TooFewVariants { only: None },
            released: 0,
        });
        store.set_ab_record("test-campaign", &record).unwrap();
        store.flush_blocking().unwrap();
    }
    let report = send(&fixture, &clock).await;
    let (how, variant, reason) = report.ab.unwrap().decision.unwrap();
    assert_eq!((how.as_str(), variant.as_deref()), ("variant", Some("B")));
    assert_eq!(reason, volley::ab::Reason::TooFewVariants { only: None });
    assert_eq!(versions(&fixture, 32), (0, 128));
}
