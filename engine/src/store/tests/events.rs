//! The event export through the store's interface, on every engine.

use super::*;
use crate::model::{now_millis, Outcome, Suppression, SuppressionReason};
use crate::store::{
    EventTally, MessageRef, OutcomePolicy, OutcomeUpdate, TrackInput, TrackingMeta,
};
use std::collections::HashMap;

pub(super) fn reply(code: u16, enhanced: &str) -> ReplyRecord {
    ReplyRecord {
        code: Some(code),
        enhanced: Some(enhanced.into()),
        text: format!("{code} {enhanced} said the server"),
        category: (code >= 400).then_some(crate::model::Category::InvalidRecipient),
        hard: code >= 500,
    }
}

/// A campaign `c1` with one recipient per address, and their keys by local part.
fn loaded(store: &Store, locals: &[&str]) -> Vec<RecipientKey> {
    let variant = crate::model::Assignment::Variant(0);
    load_list(
        store,
        "c1",
        locals.iter().map(|l| (format!("{l}@x.example"), variant)),
    );
    (0..locals.len() as u64)
        .map(|seq| RecipientKey {
            domain: "x.example".into(),
            seq,
        })
        .collect()
}

fn outcome(key: &RecipientKey, outcome: Outcome) -> OutcomeUpdate {
    OutcomeUpdate {
        key: key.clone(),
        outcome,
        message_id: None,
    }
}

fn track(key: &RecipientKey, kind: TrackKind, link: Option<u16>, at: Millis) -> TrackInput {
    TrackInput {
        campaign: "c1".into(),
        key: key.clone(),
        address: format!("ok@{}", key.domain),
        variant: 1,
        kind,
        link,
        at,
        machine: None,
        topic: None,
    }
}

/// Every kind of event, written out of order across the three sources.
pub(super) fn history(store: &Store) -> Millis {
    let entry = Suppression {
        reason: SuppressionReason::Manual,
        at: 1,
        campaign: None,
        detail: "by hand".into(),
    };
    store.suppress("sup@x.example", &entry).unwrap();
    let k = loaded(store, &["ok", "defer", "bounce", "late", "sup", "exp"]);
    // After the load (which logs the suppressed recipient at the wall-clock time).
    let t0 = now_millis() + 60_000;
    store
        .set_tracking_meta(
            "c1",
            &TrackingMeta {
                links: vec!["https://a.example/".into(), "https://b.example/".into()],
                key_fingerprint: "f".into(),
            },
        )
        .unwrap();
    store
        .record_tracking(&[
            track(&k[0], TrackKind::Open, None, t0 + 1),
            track(&k[0], TrackKind::Click, Some(1), t0 + 6),
            track(&k[0], TrackKind::Unsubscribe, None, t0 + 7),
        ])
        .unwrap();
    let policy = OutcomePolicy::default();
    let first = [
        outcome(
            &k[0],
            Outcome::Delivered {
                reply: reply(250, "2.0.0"),
            },
        ),
        outcome(
            &k[1],
            Outcome::Deferred {
                reply: reply(451, "4.7.1"),
            },
        ),
        outcome(
            &k[2],
            Outcome::Bounced {
                reply: reply(550, "5.1.1"),
            },
        ),
        outcome(
            &k[3],
            Outcome::Delivered {
                reply: reply(250, "2.0.0"),
            },
        ),
    ];
    store
        .record_outcomes("c1", &policy, &first, t0 + 1)
        .unwrap();
    let later = [
        outcome(
            &k[1],
            Outcome::Delivered {
                reply: reply(250, "2.0.0"),
            },
        ),
        outcome(
            &k[5],
            Outcome::Expired {
                reply: reply(451, "4.7.1"),
            },
        ),
    ];
    store
        .record_outcomes("c1", &policy, &later, t0 + 3)
        .unwrap();
    for (key, kind, at) in [
        (&k[3], EventKind::Delay, t0 + 2),
        (&k[0], EventKind::Complaint, t0 + 8),
    ] {
        let reference = MessageRef {
            campaign: "c1".into(),
            key: key.clone(),
        };
        store
            .apply_report(&reference, kind, reply(450, "4.4.7"), "f.eml", &policy, at)
            .unwrap();
    }
    t0
}

fn seen(events: ExportEvents) -> Vec<(ExportKind, String)> {
    events
        .map(|e| e.unwrap())
        .map(|e| (e.kind, e.recipient.split('@').next().unwrap().to_owned()))
        .collect()
}

fn the_export_merges_every_kind_of_event_in_time_order(place: &Place) {
    let store = place.open();
    history(&store);
    let events = seen(store.export_events("c1", 0).unwrap());
    let expected = [
        (ExportKind::Suppressed, "sup"),
        // Same millisecond: outcomes first, then tracking.
        (ExportKind::Delivered, "ok"),
        (ExportKind::Deferred, "defer"),
        (ExportKind::Bounced, "bounce"),
        (ExportKind::Delivered, "late"),
        (ExportKind::Open, "ok"),
        (ExportKind::Deferred, "late"),
        (ExportKind::Delivered, "defer"),
        (ExportKind::Expired, "exp"),
        (ExportKind::Click, "ok"),
        (ExportKind::Unsubscribe, "ok"),
        (ExportKind::Complaint, "ok"),
    ];
    let expected: Vec<_> = expected
        .iter()
        .map(|(kind, who)| (*kind, (*who).to_owned()))
        .collect();
    assert_eq!(events, expected);
}

fn exported_events_carry_their_reply_link_and_variant(place: &Place) {
    let store = place.open();
    history(&store);
    let events: Vec<_> = store
        .export_events("c1", 0)
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    let bounce = events
        .iter()
        .find(|e| e.kind == ExportKind::Bounced)
        .unwrap();
    assert_eq!(bounce.recipient, "bounce@x.example");
    assert_eq!(bounce.reply, Some(reply(550, "5.1.1")));
    assert_eq!(
        bounce.variant,
        Some(0),
        "the recipient's variant, from its record"
    );
    let click = events.iter().find(|e| e.kind == ExportKind::Click).unwrap();
    assert_eq!(
        (click.link, click.url.as_deref(), click.variant),
        (Some(1), Some("https://b.example/"), Some(1))
    );
    let suppressed = &events[0];
    assert!(suppressed.reply.as_ref().unwrap().text.contains("by hand"));
}

fn since_leaves_out_what_came_before(place: &Place) {
    let store = place.open();
    let t0 = history(&store);
    let events = seen(store.export_events("c1", t0 + 3).unwrap());
    let kinds: Vec<_> = events.iter().map(|(kind, _)| *kind).collect();
    assert_eq!(
        kinds,
        [
            ExportKind::Delivered,
            ExportKind::Expired,
            ExportKind::Click,
            ExportKind::Unsubscribe,
            ExportKind::Complaint
        ]
    );
    assert_eq!(store.export_events("c1", t0 + 9).unwrap().count(), 0);
}

fn an_unknown_campaign_is_an_error_and_a_reload_starts_a_new_log(place: &Place) {
    let store = place.open();
    assert!(matches!(
        store.export_events("nope", 0),
        Err(StoreError::UnknownCampaign { .. })
    ));
    let k = loaded(&store, &["a"]);
    let delivered = [outcome(
        &k[0],
        Outcome::Delivered {
            reply: reply(250, "2.0.0"),
        },
    )];
    store
        .record_outcomes("c1", &OutcomePolicy::default(), &delivered, 5)
        .unwrap();
    assert_eq!(store.export_events("c1", 0).unwrap().count(), 1);
    store.remove_campaign("c1").unwrap();
    loaded(&store, &["new"]);
    assert_eq!(store.export_events("c1", 0).unwrap().count(), 0);
}

/// Tallies with alike ones merged, for comparing two lists of them.
fn merged(tallies: impl IntoIterator<Item = EventTally>) -> HashMap<EventTally, u64> {
    let mut merged = HashMap::new();
    for tally in tallies {
        *merged.entry(EventTally { count: 0, ..tally }).or_default() += tally.count;
    }
    merged
}

fn event_tallies_count_what_the_export_streams(place: &Place) {
    let store = place.open();
    history(&store);
    let streamed = merged(
        store
            .export_events("c1", 0)
            .unwrap()
            .map(|e| EventTally::of(&e.unwrap())),
    );
    let counted = merged(store.event_tallies("c1").unwrap());
    assert_eq!(counted, streamed);
    let complaint = counted
        .keys()
        .find(|t| t.kind == ExportKind::Complaint)
        .unwrap();
    assert_eq!(complaint.variant, Some(0), "the recipient's variant");
    let bounced = counted
        .keys()
        .find(|t| t.kind == ExportKind::Bounced)
        .unwrap();
    assert_eq!(
        (bounced.category, bounced.variant),
        (Some(crate::model::Category::InvalidRecipient), None)
    );
    assert!(matches!(
        store.event_tallies("nope"),
        Err(StoreError::UnknownCampaign { .. })
    ));
}

fn an_export_left_unfinished_lets_the_store_go_on(place: &Place) {
    let store = place.open();
    history(&store);
    for _ in 0..20 {
        // More readers left halfway than the PostgreSQL pool has connections.
        let mut events = store.export_events("c1", 0).unwrap();
        assert!(events.next().unwrap().is_ok());
    }
    assert_eq!(store.export_events("c1", 0).unwrap().count(), 12);
    assert_eq!(store.counts("c1").unwrap().unwrap().delivered, 3);
}

suite!(
    event_tallies_count_what_the_export_streams,
    an_export_left_unfinished_lets_the_store_go_on,
    the_export_merges_every_kind_of_event_in_time_order,
    exported_events_carry_their_reply_link_and_variant,
    since_leaves_out_what_came_before,
    an_unknown_campaign_is_an_error_and_a_reload_starts_a_new_log
);
