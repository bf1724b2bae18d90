//! Loading, the queue, outcomes, late reports, suppression, relay usage and the tracking cap
//! through the store's interface, on every engine.

use super::*;
use crate::model::{Outcome, ReplyRecord, RetryPolicy};
use crate::store::OutcomePolicy;
use std::time::Duration;

/// Everyone gets the one version.
const MAIN: crate::model::Assignment = crate::model::Assignment::Variant(0);

fn load(store: &Store, addresses: &[&str]) -> Counts {
    let mut loader = store.start_load("c1", vec!["email".into()]).unwrap();
    let mut dup = 0;
    for (i, a) in addresses.iter().enumerate() {
        let domain = a.split('@').nth(1).unwrap();
        if !loader
            .add(a, domain, vec![a.to_string()], i as u64 + 2, MAIN)
            .unwrap()
        {
            dup += 1;
        }
    }
    loader.finish(0, dup, 0).unwrap().counts
}

fn reply(code: u16) -> ReplyRecord {
    ReplyRecord {
        code: Some(code),
        enhanced: None,
        text: "x".into(),
        category: None,
        hard: code >= 500,
    }
}

fn loading_dedupes_and_counts(place: &Place) {
    let store = place.open();
    let counts = load(&store, &["a@x.example", "b@y.example", "a@x.example"]);
    assert_eq!((counts.total, counts.pending, counts.duplicate), (2, 2, 1));
    assert!(store.campaign("c1").unwrap().unwrap().loaded);
    let pending = store.pending("c1", None, 10).unwrap();
    assert_eq!(pending.len(), 2);
    let page = store.pending("c1", Some(&pending[0].key), 10).unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].record.email, "b@y.example");
}

fn outcomes_move_records_between_queue_retry_and_final_states(place: &Place) {
    let store = place.open();
    load(&store, &["a@x.example", "b@x.example", "c@x.example"]);
    let keys: Vec<_> = store
        .pending("c1", None, 10)
        .unwrap()
        .into_iter()
        .map(|r| r.key)
        .collect();
    let policy = OutcomePolicy {
        retry: RetryPolicy {
            schedule: vec![Duration::from_secs(60)],
            expire_after: Duration::from_secs(3600),
            jitter: 0.0,
        },
        ..OutcomePolicy::default()
    };
    let now = 1_000_000;
    let updates = vec![
        OutcomeUpdate {
            key: keys[0].clone(),
            outcome: Outcome::Delivered { reply: reply(250) },
            message_id: None,
        },
        OutcomeUpdate {
            key: keys[1].clone(),
            outcome: Outcome::Deferred { reply: reply(451) },
            message_id: None,
        },
        OutcomeUpdate {
            key: keys[2].clone(),
            outcome: Outcome::Bounced { reply: reply(550) },
            message_id: None,
        },
    ];
    let counts = store.record_outcomes("c1", &policy, &updates, now).unwrap();
    assert_eq!(
        (
            counts.pending,
            counts.delivered,
            counts.deferred,
            counts.bounced
        ),
        (0, 1, 1, 1)
    );
    assert!(store.pending("c1", None, 10).unwrap().is_empty());
    assert!(store.due("c1", now, 10).unwrap().is_empty());
    assert_eq!(store.next_due("c1").unwrap(), Some(now + 60_000));
    let due = store.due("c1", now + 60_000, 10).unwrap();
    assert_eq!(due.len(), 1);

    // Recording a final outcome twice changes nothing.
    let counts = store
        .record_outcomes("c1", &policy, &updates[..1], now)
        .unwrap();
    assert_eq!(counts.delivered, 1);

    // The retry succeeds: the retry entry goes away.
    let retry = vec![OutcomeUpdate {
        key: keys[1].clone(),
        outcome: Outcome::Delivered { reply: reply(250) },
        message_id: None,
    }];
    let counts = store
        .record_outcomes("c1", &policy, &retry, now + 60_000)
        .unwrap();
    assert_eq!((counts.deferred, counts.delivered), (0, 2));
    assert_eq!(store.next_due("c1").unwrap(), None);
}

fn a_deferral_past_the_deadline_expires(place: &Place) {
    let store = place.open();
    load(&store, &["a@x.example"]);
    let key = store.pending("c1", None, 1).unwrap()[0].key.clone();
    let policy = OutcomePolicy {
        retry: RetryPolicy {
            schedule: vec![Duration::from_secs(60)],
            expire_after: Duration::from_secs(90),
            jitter: 0.0,
        },
        ..OutcomePolicy::default()
    };
    let defer = |at| {
        store
            .record_outcomes(
                "c1",
                &policy,
                &[OutcomeUpdate {
                    key: key.clone(),
                    outcome: Outcome::Deferred { reply: reply(451) },
                    message_id: None,
                }],
                at,
            )
            .unwrap()
    };
    assert_eq!(defer(0).deferred, 1);
    assert_eq!(store.next_due("c1").unwrap(), Some(60_000));
    assert_eq!(defer(60_000).deferred, 1);
    assert_eq!(
        store.next_due("c1").unwrap(),
        Some(90_000),
        "the last try is at the deadline"
    );
    let counts = defer(90_000);
    assert_eq!((counts.deferred, counts.expired), (0, 1));
    assert_eq!(store.next_due("c1").unwrap(), None);
}

fn an_interrupted_load_is_replaced_and_state_survives_reopening(place: &Place) {
    {
        let store = place.open();
        let mut loader = store.start_load("c1", vec!["email".into()]).unwrap();
        loader
            .add("a@x.example", "x.example", vec![], 2, MAIN)
            .unwrap();
        // dropped without finish: as after a crash
    }
    let store = place.open();
    // sled keeps the campaign marked as not loaded; PostgreSQL rolls the whole load back.
    assert!(
        store
            .campaign("c1")
            .unwrap()
            .is_none_or(|meta| !meta.loaded),
        "not marked as loaded"
    );
    assert!(store.counts("c1").unwrap().is_none());
    let counts = load(&store, &["a@x.example", "b@x.example"]);
    assert_eq!(counts.total, 2);
    drop(store);
    let store = place.open();
    assert_eq!(store.counts("c1").unwrap().unwrap().total, 2);
    assert_eq!(store.campaigns().unwrap(), vec!["c1".to_string()]);
}

fn soft(code: u16) -> ReplyRecord {
    ReplyRecord {
        hard: false,
        ..reply(code)
    }
}

/// Suppression after two soft bounces within an hour, with no minimum span between them.
fn soft_limit_of_two() -> OutcomePolicy {
    OutcomePolicy {
        suppression: crate::model::SuppressionPolicy {
            soft_limit: 2,
            soft_window: Duration::from_secs(3600),
            soft_min_span: Duration::ZERO,
        },
        ..OutcomePolicy::default()
    }
}

fn hard_bounces_suppress_at_once_and_soft_ones_after_the_limit(place: &Place) {
    let store = place.open();
    let policy = soft_limit_of_two();
    let update = |key: &RecipientKey, outcome| OutcomeUpdate {
        key: key.clone(),
        outcome,
        message_id: Some(format!("m{}", key.seq)),
    };
    // Campaign 1: a hard bounce and a soft one (mailbox full).
    load(&store, &["hard@x.example", "full@x.example"]);
    let keys: Vec<_> = store
        .pending("c1", None, 10)
        .unwrap()
        .into_iter()
        .map(|r| r.key)
        .collect();
    store
        .record_outcomes(
            "c1",
            &policy,
            &[
                update(&keys[0], Outcome::Bounced { reply: reply(550) }),
                update(&keys[1], Outcome::Bounced { reply: soft(552) }),
            ],
            1_000,
        )
        .unwrap();
    assert_eq!(
        store.suppression("hard@x.example").unwrap().unwrap().reason,
        crate::model::SuppressionReason::HardBounce
    );
    assert!(
        store.suppression("full@x.example").unwrap().is_none(),
        "one soft bounce is not enough"
    );

    // Campaign 2 (same list): the hard one is suppressed at load; the second soft bounce suppresses.
    let mut loader = store.start_load("c2", vec!["email".into()]).unwrap();
    loader
        .add("hard@x.example", "x.example", vec![], 2, MAIN)
        .unwrap();
    loader
        .add("full@x.example", "x.example", vec![], 3, MAIN)
        .unwrap();
    let counts = loader.finish(0, 0, 0).unwrap().counts;
    assert_eq!((counts.pending, counts.suppressed), (1, 1));
    let key = store.pending("c2", None, 10).unwrap()[0].key.clone();
    store
        .record_outcomes(
            "c2",
            &policy,
            &[update(&key, Outcome::Bounced { reply: soft(552) })],
            2_000,
        )
        .unwrap();
    let entry = store.suppression("full@x.example").unwrap().unwrap();
    assert_eq!(entry.reason, crate::model::SuppressionReason::SoftBounces);
    assert!(entry.detail.contains("2 soft bounces"), "{}", entry.detail);
    assert!(store.unsuppress("full@x.example").unwrap());
}

fn a_late_report_bounces_a_delivered_recipient_once_and_a_complaint_suppresses(place: &Place) {
    let store = place.open();
    let policy = OutcomePolicy::default();
    load(&store, &["a@x.example", "b@x.example"]);
    let keys: Vec<_> = store
        .pending("c1", None, 10)
        .unwrap()
        .into_iter()
        .map(|r| r.key)
        .collect();
    let delivered: Vec<_> = keys
        .iter()
        .map(|k| OutcomeUpdate {
            key: k.clone(),
            outcome: Outcome::Delivered { reply: reply(250) },
            message_id: Some(format!("id{}@x", k.seq)),
        })
        .collect();
    store
        .record_outcomes("c1", &policy, &delivered, 1_000)
        .unwrap();
    let reference = store.message("id0@x").unwrap().unwrap();
    assert_eq!(reference.key, keys[0]);
    let number = store.campaign("c1").unwrap().unwrap().number;
    assert_eq!(
        store.recipient_by_number(number, 1).unwrap().unwrap().key,
        keys[1]
    );

    let (effect, address) = store
        .apply_report(
            &reference,
            EventKind::Bounce,
            reply(550),
            "f.eml",
            &policy,
            2_000,
        )
        .unwrap();
    assert_eq!(
        (effect, address.as_deref()),
        (ReportEffect::Bounced, Some("a@x.example"))
    );
    let (effect, _) = store
        .apply_report(
            &reference,
            EventKind::Bounce,
            reply(550),
            "f.eml",
            &policy,
            3_000,
        )
        .unwrap();
    assert_eq!(effect, ReportEffect::Unchanged);
    let counts = store.counts("c1").unwrap().unwrap();
    assert_eq!((counts.delivered, counts.bounced), (1, 1));

    let other = store.recipient_by_number(number, 1).unwrap().unwrap();
    let (effect, _) = store
        .apply_report(
            &other,
            EventKind::Complaint,
            soft(0),
            "arf.eml",
            &policy,
            4_000,
        )
        .unwrap();
    assert_eq!(effect, ReportEffect::Complained);
    assert_eq!(
        store.suppression("b@x.example").unwrap().unwrap().reason,
        crate::model::SuppressionReason::Complaint
    );
    let kinds: Vec<_> = store
        .events("c1")
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, [EventKind::Bounce, EventKind::Complaint]);
}

fn the_token_secret_is_stable_across_reopening(place: &Place) {
    let first = place.open().secret().unwrap();
    let again = place.open().secret().unwrap();
    assert_eq!(first, again);
}

fn a_delivery_resets_the_soft_bounce_count(place: &Place) {
    let store = place.open();
    let policy = soft_limit_of_two();
    let outcome_in = |campaign: &str, outcome: Outcome, at| {
        let mut loader = store.start_load(campaign, vec!["email".into()]).unwrap();
        loader
            .add("box@x.example", "x.example", vec![], 2, MAIN)
            .unwrap();
        loader.finish(0, 0, 0).unwrap();
        let key = store.pending(campaign, None, 1).unwrap()[0].key.clone();
        store
            .record_outcomes(
                campaign,
                &policy,
                &[OutcomeUpdate {
                    key,
                    outcome,
                    message_id: None,
                }],
                at,
            )
            .unwrap();
    };
    outcome_in("c1", Outcome::Bounced { reply: soft(552) }, 1_000);
    outcome_in("c2", Outcome::Delivered { reply: reply(250) }, 2_000);
    outcome_in("c3", Outcome::Bounced { reply: soft(552) }, 3_000);
    assert!(
        store.suppression("box@x.example").unwrap().is_none(),
        "the delivery reset the count"
    );
    outcome_in("c4", Outcome::Bounced { reply: soft(552) }, 4_000);
    assert!(store.suppression("box@x.example").unwrap().is_some());
}

fn the_pending_queue_reads_domain_by_domain(place: &Place) {
    let store = place.open();
    load(
        &store,
        &[
            "a@b.example",
            "b@a.example",
            "c@b.example",
            "d@ab.example",
            "e@b.example",
        ],
    );
    assert_eq!(
        store.pending_domains("c1").unwrap(),
        ["a.example", "ab.example", "b.example"]
    );
    let first = store.pending_in("c1", "b.example", None, 2).unwrap();
    let emails: Vec<_> = first.iter().map(|r| r.record.email.as_str()).collect();
    assert_eq!(emails, ["a@b.example", "c@b.example"]);
    let rest = store
        .pending_in("c1", "b.example", Some(first[1].key.seq), 10)
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].record.email, "e@b.example");
    assert!(store
        .pending_in("c1", "none.example", None, 10)
        .unwrap()
        .is_empty());
    assert!(store.pending_domains("other").unwrap().is_empty());
}

fn relay_usage_survives_reopening_and_old_minutes_go(place: &Place) {
    {
        let store = place.open();
        store
            .set_relay_usage("smtp.example:587", &[(100, 5), (200, 7)], 0)
            .unwrap();
        store.set_relay_usage("other:25", &[(150, 1)], 0).unwrap();
        store.flush_blocking().unwrap();
    }
    let store = place.open();
    assert_eq!(
        store.relay_usage("smtp.example:587", 0).unwrap(),
        [(100, 5), (200, 7)]
    );
    store
        .set_relay_usage("smtp.example:587", &[(200, 9), (300, 1)], 150)
        .unwrap();
    assert_eq!(
        store.relay_usage("smtp.example:587", 0).unwrap(),
        [(200, 9), (300, 1)]
    );
    assert_eq!(store.relay_usage("other:25", 0).unwrap(), [(150, 1)]);
}

fn the_daily_tracking_cap_holds_across_reopening_and_spares_the_first_unsubscribe(place: &Place) {
    let day = 20_000 * 86_400_000;
    let input = |key: &RecipientKey, kind, at| TrackInput {
        campaign: "c1".into(),
        key: key.clone(),
        address: "a@x.example".into(),
        variant: 0,
        kind,
        link: (kind == TrackKind::Click).then_some(0),
        at,
        machine: None,
        topic: None,
    };
    let key = {
        let store = place.open();
        // A tracked campaign is a loaded one (its recipient is seq 2).
        load(&store, &["z@x.example", "y@x.example", "a@x.example"]);
        let key = RecipientKey {
            domain: "x.example".into(),
            seq: 2,
        };
        let opens: Vec<_> = (0..3)
            .map(|i| input(&key, TrackKind::Open, day + i))
            .collect();
        let effects = store.record_tracking_capped(&opens, 4).unwrap();
        assert!(effects.iter().all(|e| e.stored));
        store.flush_blocking().unwrap();
        key
    };
    let store = place.open();
    let more: Vec<_> = (3..6)
        .map(|i| input(&key, TrackKind::Click, day + i))
        .chain([input(&key, TrackKind::Unsubscribe, day + 7)])
        .collect();
    let stored: Vec<bool> = store
        .record_tracking_capped(&more, 4)
        .unwrap()
        .iter()
        .map(|e| e.stored)
        .collect();
    assert_eq!(
        stored,
        [true, false, false, true],
        "the cap counted across the reopen"
    );
    assert_eq!(store.tracking_events("c1", 0).unwrap().len(), 5);
    assert_eq!(store.tracking_totals("c1").unwrap().unsubscribed, 1);
    let again = [input(&key, TrackKind::Unsubscribe, day + 8)];
    assert!(
        !store.record_tracking_capped(&again, 1_000).unwrap()[0].stored,
        "a repeat"
    );
    assert_eq!(store.tracking_events("c1", 0).unwrap().len(), 5);
    // The next day starts a new count.
    let next = [input(&key, TrackKind::Open, day + 86_400_000)];
    assert!(store.record_tracking_capped(&next, 4).unwrap()[0].stored);
}

fn the_suppression_list_reads_a_page_at_a_time(place: &Place) {
    let store = place.open();
    let entry = |detail: &str| crate::model::Suppression {
        reason: crate::model::SuppressionReason::Manual,
        at: 1_000,
        campaign: None,
        detail: detail.to_owned(),
    };
    for address in ["c@x.example", "a@x.example", "b@y.example", "d@x.example"] {
        assert!(store.suppress(address, &entry(address)).unwrap());
    }
    let page = |after: Option<&str>, limit| -> Vec<String> {
        store
            .suppressions_after(after, limit)
            .unwrap()
            .into_iter()
            .map(|(address, entry)| {
                assert_eq!(entry.detail, address);
                address
            })
            .collect()
    };
    assert_eq!(page(None, 2), ["a@x.example", "b@y.example"]);
    assert_eq!(page(Some("b@y.example"), 2), ["c@x.example", "d@x.example"]);
    assert_eq!(page(Some("b@"), 1), ["b@y.example"]);
    assert!(page(Some("d@x.example"), 5).is_empty());
    assert_eq!(page(None, 10).len(), 4);
}

suite!(
    the_suppression_list_reads_a_page_at_a_time,
    loading_dedupes_and_counts,
    outcomes_move_records_between_queue_retry_and_final_states,
    a_deferral_past_the_deadline_expires,
    the_token_secret_is_stable_across_reopening,
    the_pending_queue_reads_domain_by_domain,
    an_interrupted_load_is_replaced_and_state_survives_reopening,
    hard_bounces_suppress_at_once_and_soft_ones_after_the_limit,
    a_delivery_resets_the_soft_bounce_count,
    relay_usage_survives_reopening_and_old_minutes_go,
    a_late_report_bounces_a_delivered_recipient_once_and_a_complaint_suppresses,
    the_daily_tracking_cap_holds_across_reopening_and_spares_the_first_unsubscribe
);
