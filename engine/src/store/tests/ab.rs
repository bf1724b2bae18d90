//! A/B records, held recipients and tracking counters through the store's interface, on
//! every engine.

use super::*;
use crate::model::{Assignment, Metric, Reason, VariantRate, REMAINDER};
use crate::store::{AbDecision, AbRecord, MachineReason, TrackInput, TrackingMeta};

/// Campaign `c1`, one recipient per assignment (`r0@x.example`, `r1@…`, … in that order).
fn loaded(store: &Store, assignments: &[Assignment]) {
    let rows = assignments.iter().enumerate();
    load_list(
        store,
        "c1",
        rows.map(|(i, a)| (format!("r{i}@x.example"), *a)),
    );
}

/// (variant, total, pending, bounced) of each variant.
fn by_variant(store: &Store) -> Vec<(u8, u64, u64, u64)> {
    store
        .variant_counts("c1")
        .unwrap()
        .into_iter()
        .map(|(v, c)| (v, c.total, c.pending, c.bounced))
        .collect()
}

fn held_recipients_join_a_variant_only_when_released(place: &Place) {
    use Assignment::{Held, Variant};
    let store = place.open();
    loaded(
        &store,
        &[
            Variant(0),
            Variant(1),
            Held { fallback: 0 },
            Held { fallback: 1 },
            Held { fallback: 1 },
        ],
    );
    let counts = store.counts("c1").unwrap().unwrap();
    assert_eq!((counts.total, counts.pending, counts.held), (5, 2, 3));
    assert_eq!(by_variant(&store), [(0, 1, 1, 0), (1, 1, 1, 0)]);
    let mark = store.ab_mark("c1").unwrap();
    assert_eq!(store.ab_mark("c1").unwrap(), mark, "nothing happened");

    // A late bounce of a held recipient counts it in the variant it falls back to.
    let reference = MessageRef {
        campaign: "c1".into(),
        key: RecipientKey {
            domain: "x.example".into(),
            seq: 4,
        },
    };
    let bounce = ReplyRecord {
        code: Some(550),
        enhanced: Some("5.1.1".into()),
        text: "550 5.1.1 no such user".into(),
        category: None,
        hard: true,
    };
    let policy = OutcomePolicy::default();
    store
        .apply_report(&reference, EventKind::Bounce, bounce, "f.eml", &policy, 7)
        .unwrap();
    assert_eq!(by_variant(&store), [(0, 1, 1, 0), (1, 2, 1, 1)]);
    assert_ne!(store.ab_mark("c1").unwrap(), mark, "a late report arrived");

    // The winner, variant 1, for the rest, marked as the remainder.
    assert_eq!(store.release_held("c1", &|_| 1).unwrap(), 2);
    assert_eq!(store.release_held("c1", &|_| 1).unwrap(), 0, "all released");
    let counts = store.counts("c1").unwrap().unwrap();
    assert_eq!((counts.pending, counts.held, counts.bounced), (4, 0, 1));
    let remainder = 1 | REMAINDER;
    assert_eq!(
        by_variant(&store),
        [(0, 1, 1, 0), (1, 2, 1, 1), (remainder, 2, 2, 0)]
    );
    let variants: Vec<u8> = store
        .pending("c1", None, 10)
        .unwrap()
        .iter()
        .map(|r| r.record.variant)
        .collect();
    assert_eq!(variants, [0, 1, remainder, remainder]);
}

fn the_ab_record_is_kept_across_reopening(place: &Place) {
    let record = AbRecord {
        test_sent_at: Some(1_000),
        decision: Some(AbDecision {
            at: 2_000,
            how: "winner".into(),
            variant: Some(1),
            reason: Reason::OnlyOneLeft {
                winner: VariantRate {
                    id: "B".into(),
                    rate: 0.25,
                },
                metric: Metric::Opens,
                vetoed: Vec::new(),
            },
            released: 3,
        }),
    };
    {
        let store = place.open();
        loaded(&store, &[Assignment::Variant(0)]);
        assert_eq!(store.ab_record("c1").unwrap(), AbRecord::default());
        assert_eq!(store.ab_record("nope").unwrap(), AbRecord::default());
        store.set_ab_record("c1", &record).unwrap();
        store.flush_blocking().unwrap();
    }
    assert_eq!(place.open().ab_record("c1").unwrap(), record);
}

fn track(seq: u64, kind: TrackKind, link: Option<u16>, at: Millis) -> TrackInput {
    TrackInput {
        campaign: "c1".into(),
        key: RecipientKey {
            domain: "x.example".into(),
            seq,
        },
        address: format!("r{seq}@x.example"),
        variant: 0,
        kind,
        link,
        at,
        machine: None,
        topic: None,
    }
}

fn tracking_counts_people_once_and_a_click_burst_as_machine_made(place: &Place) {
    let store = place.open();
    loaded(&store, &[Assignment::Variant(0), Assignment::Variant(0)]);
    let meta = TrackingMeta {
        links: vec!["https://a.example/".into(), "https://b.example/".into()],
        key_fingerprint: "f".into(),
    };
    store.set_tracking_meta("c1", &meta).unwrap();
    store.set_tracking_meta("c1", &meta).unwrap();
    let other = TrackingMeta {
        links: vec!["https://c.example/".into()],
        ..meta.clone()
    };
    assert!(matches!(
        store.set_tracking_meta("c1", &other),
        Err(StoreError::TrackingChanged { .. })
    ));
    assert_eq!(store.tracking_meta("c1").unwrap(), Some(meta));

    let t = 1_000_000;
    let proxy = TrackInput {
        machine: Some(MachineReason::PrivacyProxy),
        topic: None,
        ..track(1, TrackKind::Open, None, t + 20)
    };
    let effects = store
        .record_tracking(&[
            track(0, TrackKind::Open, None, t),
            track(0, TrackKind::Open, None, t + 10),
            proxy,
            track(0, TrackKind::Click, Some(0), t + 100),
            // Another link within a second: a scanner, and so was the click before.
            track(0, TrackKind::Click, Some(1), t + 500),
        ])
        .unwrap();
    let seen: Vec<_> = effects.iter().map(|e| (e.first, e.machine)).collect();
    assert_eq!(
        seen,
        [
            (true, None),
            (false, None),
            (false, Some(MachineReason::PrivacyProxy)),
            (true, None),
            (false, Some(MachineReason::ClickBurst)),
        ]
    );
    let totals = store.tracking_totals("c1").unwrap();
    assert_eq!(
        (totals.opened, totals.opens, totals.machine_opens),
        (1, 2, 1)
    );
    assert_eq!(
        (totals.clicked, totals.clicks, totals.machine_clicks),
        (0, 0, 2)
    );
    assert_eq!(store.tracking_counts("c1").unwrap().len(), 1);
    let events = store.tracking_events("c1", t + 20).unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(events[2].machine, Some(MachineReason::ClickBurst));
    assert_eq!(events[2].link, Some(1));
    let tallies = store.domain_tallies("c1").unwrap();
    assert_eq!(tallies.len(), 1);
    assert_eq!(
        (
            tallies[0].counts.total,
            tallies[0].opened,
            tallies[0].clicked
        ),
        (2, 1, 0)
    );
}

fn a_long_history_exports_whole_and_in_order(place: &Place) {
    let store = place.open();
    loaded(&store, &[Assignment::Variant(0)]);
    let t = 5_000_000;
    let key = RecipientKey {
        domain: "x.example".into(),
        seq: 0,
    };
    let delivered = OutcomeUpdate {
        key,
        outcome: crate::model::Outcome::Delivered {
            reply: ReplyRecord {
                code: Some(250),
                enhanced: None,
                text: "250 ok".into(),
                category: None,
                hard: false,
            },
        },
        message_id: None,
    };
    store
        .record_outcomes("c1", &OutcomePolicy::default(), &[delivered], t)
        .unwrap();
    // Two opens per millisecond, well past one page of any engine's reader.
    let opens: Vec<_> = (0..2_501)
        .map(|i| track(0, TrackKind::Open, None, t + i / 2))
        .collect();
    store.record_tracking(&opens).unwrap();
    let events: Vec<ExportEvent> = store
        .export_events("c1", 0)
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    assert_eq!(events.len(), 2_502);
    assert_eq!(events[0].kind, ExportKind::Delivered, "outcomes first");
    let times: Vec<Millis> = events[1..].iter().map(|e| e.at).collect();
    let expected: Vec<Millis> = (0..2_501).map(|i| t + i / 2).collect();
    assert_eq!(times, expected);
    let later = store.export_events("c1", t + 1_000).unwrap().count();
    assert_eq!(later, 501);
}

suite!(
    held_recipients_join_a_variant_only_when_released,
    the_ab_record_is_kept_across_reopening,
    tracking_counts_people_once_and_a_click_burst_as_machine_made,
    a_long_history_exports_whole_and_in_order,
);
