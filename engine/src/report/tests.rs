//! The verdict read from counters against the one the full report takes, on a real sled
//! store in a temp dir.

use super::*;
use crate::model::{Assignment, Outcome, ReplyRecord};
use crate::store::{EventKind, OutcomePolicy, OutcomeUpdate, TrackInput, TrackKind};

fn reply(code: u16) -> ReplyRecord {
    ReplyRecord {
        code: Some(code),
        enhanced: None,
        text: format!("{code} said the server"),
        category: None,
        hard: code >= 500,
    }
}

/// Two variants of 20 test recipients each, and 10 held for the winner, all delivered.
fn campaign(store: &Store) -> ReportSpec {
    let mut loader = store.start_load("c1", vec!["email".into()]).unwrap();
    for i in 0..50u8 {
        let address = format!("r{i}@d{}.example", i % 7);
        let domain = address.split('@').nth(1).unwrap().to_owned();
        let assignment = if i < 40 {
            Assignment::Variant(i % 2)
        } else {
            Assignment::Held { fallback: i % 2 }
        };
        loader
            .add(
                &address,
                &domain,
                vec![address.clone()],
                u64::from(i) + 2,
                assignment,
            )
            .unwrap();
    }
    loader.finish(0, 0, 0).unwrap();
    let delivered: Vec<OutcomeUpdate> = store
        .pending("c1", None, 100)
        .unwrap()
        .into_iter()
        .map(|r| OutcomeUpdate {
            message_id: Some(format!("m{}@x", r.key.seq)),
            key: r.key,
            outcome: Outcome::Delivered { reply: reply(250) },
        })
        .collect();
    store
        .record_outcomes("c1", &OutcomePolicy::default(), &delivered, 1_000)
        .unwrap();
    ReportSpec {
        campaign: "c1".into(),
        variants: vec![("A".into(), 1.0), ("B".into(), 1.0)],
        ab: Some(AbSpec {
            test_share: 0.8,
            wait: Duration::from_secs(1),
            rules: Rules {
                method: crate::ab::Method::Fixed,
                min_per_variant: 5,
                ..Rules::default()
            },
        }),
        top: 0,
        holdout: 0.0,
    }
}

/// The recipients of `variant`, as (key, address).
fn of_variant(store: &Store, variant: u8) -> Vec<(crate::store::RecipientKey, String)> {
    store
        .recipients_in("c1", crate::model::RecipientState::Delivered)
        .unwrap()
        .into_iter()
        .filter(|r| r.record.variant == variant)
        .map(|r| (r.key, r.record.email))
        .collect()
}

#[test]
fn the_verdict_from_counters_is_the_reports_and_the_mark_moves_with_every_event() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let spec = campaign(&store);
    let same = |store: &Store| {
        let from_counters = ab_verdict(store, &spec).unwrap().unwrap();
        let from_report = build(store, &spec, 5_000).unwrap().ab.unwrap().verdict;
        assert_eq!(from_counters, from_report);
        from_counters
    };
    let quiet = store.ab_mark("c1").unwrap();
    assert_eq!(store.ab_mark("c1").unwrap(), quiet, "nothing happened");
    same(&store);

    // B's readers click; one of A's opens.
    let (a, b) = (of_variant(&store, 0), of_variant(&store, 1));
    let track = |who: &[(crate::store::RecipientKey, String)], variant, kind, at| {
        let inputs: Vec<TrackInput> = who
            .iter()
            .map(|(key, address)| TrackInput {
                campaign: "c1".into(),
                key: key.clone(),
                address: address.clone(),
                variant,
                kind,
                link: (kind == TrackKind::Click).then_some(0),
                at,
                machine: None,
                topic: None,
            })
            .collect();
        store.record_tracking(&inputs).unwrap();
    };
    track(&b[..12], 1, TrackKind::Click, 600_000);
    let clicked = store.ab_mark("c1").unwrap();
    assert_ne!(clicked, quiet);
    track(&a[..1], 0, TrackKind::Open, 700_000);
    let opened = store.ab_mark("c1").unwrap();
    assert_ne!(opened, clicked);
    let verdict = same(&store);
    assert_eq!(verdict.winner.as_deref(), Some("B"), "{:?}", verdict.reason);

    // Complaints about B: counted only from the late reports, they rule B out.
    let policy = OutcomePolicy::default();
    for (key, _) in &b[..2] {
        let reference = crate::store::MessageRef {
            campaign: "c1".into(),
            key: key.clone(),
        };
        store
            .apply_report(
                &reference,
                EventKind::Complaint,
                reply(0),
                "arf",
                &policy,
                800_000,
            )
            .unwrap();
    }
    let complained = store.ab_mark("c1").unwrap();
    assert_ne!(
        complained, opened,
        "a complaint changes no counter, but the mark"
    );
    let verdict = same(&store);
    assert_eq!(verdict.variants[1].complaint_rate, 0.1);
    // Two complaints in twenty against a 0.3 % limit: evidence enough (p ≈ 0.03).
    let complaints = verdict.variants[1].guardrails[2];
    assert_eq!((complaints.events, complaints.trials), (2, 20));
    assert!(complaints.vetoed, "{complaints:?}");
    assert!(
        !verdict.variants[1].exceeded.is_empty(),
        "{:?}",
        verdict.reason
    );

    // A late bounce of one of A's.
    let reference = crate::store::MessageRef {
        campaign: "c1".into(),
        key: a[5].0.clone(),
    };
    store
        .apply_report(
            &reference,
            EventKind::Bounce,
            reply(550),
            "dsn",
            &policy,
            900_000,
        )
        .unwrap();
    assert_ne!(store.ab_mark("c1").unwrap(), complained);
    let verdict = same(&store);
    assert_eq!(verdict.variants[0].delivered, 19);
}
