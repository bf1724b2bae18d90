//! gc (export mark, collecting) through the store's interface, on every engine.

use super::*;
use crate::model::{Assignment, Outcome, RecipientState, ReplyRecord};
use crate::store::{OutcomePolicy, OutcomeUpdate};

/// A store with campaign `c1` of three recipients, all delivered at `at`.
fn sent(place: &Place, at: Millis) -> Store {
    let store = place.open();
    let mut loader = store
        .start_load("c1", vec!["email".into(), "name".into()])
        .unwrap();
    for (i, address) in ["a@x.example", "b@x.example", "c@y.example"]
        .iter()
        .enumerate()
    {
        let domain = address.split('@').nth(1).unwrap();
        let values = vec![address.to_string(), format!("Name {i}")];
        loader
            .add(
                address,
                domain,
                values,
                i as u64 + 2,
                Assignment::Variant(0),
            )
            .unwrap();
    }
    loader.finish(0, 0, 0).unwrap();
    let updates: Vec<OutcomeUpdate> = store
        .pending("c1", None, 10)
        .unwrap()
        .into_iter()
        .enumerate()
        .map(|(i, r)| OutcomeUpdate {
            key: r.key,
            outcome: Outcome::Delivered {
                reply: ReplyRecord {
                    code: Some(250),
                    enhanced: None,
                    text: "250 ok".into(),
                    category: None,
                    hard: false,
                },
            },
            message_id: Some(format!("m{i}@volley")),
        })
        .collect();
    store
        .record_outcomes("c1", &OutcomePolicy::default(), &updates, at)
        .unwrap();
    store
}

fn the_export_mark_grows_only_over_gapless_exports(place: &Place) {
    let store = sent(place, 5_000);
    assert_eq!(store.last_event_at("c1").unwrap(), Some(5_000));
    assert_eq!(store.export_mark("c1").unwrap(), None);
    // From a later start than anything exported: a gap, not a mark.
    store.mark_exported("c1", 4_000, 5_000, 9).unwrap();
    assert_eq!(store.export_mark("c1").unwrap(), None);
    store.mark_exported("c1", 0, 3_000, 10).unwrap();
    store.mark_exported("c1", 2_000, 5_000, 11).unwrap();
    assert_eq!(
        store.export_mark("c1").unwrap(),
        Some(ExportMark {
            through: 5_000,
            at: 11
        })
    );
    store.mark_exported("c1", 9_000, 9_500, 12).unwrap();
    assert_eq!(store.export_mark("c1").unwrap().unwrap().through, 5_000);
}

fn collecting_keeps_counts_and_addresses_and_drops_the_rest(place: &Place) {
    let store = sent(place, 5_000);
    let counts = store.counts("c1").unwrap();
    assert!(store.message("m0@volley").unwrap().is_some());

    let collected = store.collect("c1", &"archived history", false).unwrap();
    assert_eq!(collected.recipients, 3);
    // Three attempt-log outcomes and three Message-IDs (neither engine keeps de-duplication
    // keys once a list is loaded).
    assert_eq!(collected.keys_removed, 6, "{collected:?}");
    assert!(store.is_collected("c1").unwrap());
    assert_eq!(
        store.archive::<String>("c1").unwrap().as_deref(),
        Some("archived history")
    );
    assert_eq!(store.counts("c1").unwrap(), counts);
    assert_eq!(store.last_event_at("c1").unwrap(), None);
    assert_eq!(store.export_events("c1", 0).unwrap().count(), 0);
    assert!(store.message("m0@volley").unwrap().is_none());
    let delivered = store
        .recipients_in("c1", RecipientState::Delivered)
        .unwrap();
    assert_eq!(delivered.len(), 3);
    for recipient in &delivered {
        assert!(recipient.record.values.is_empty(), "{recipient:?}");
        assert!(recipient.record.last_reply.is_none());
        assert!(!recipient.record.email.is_empty());
    }
    let number = store.campaign("c1").unwrap().unwrap().number;
    assert!(store.recipient_by_number(number, 0).unwrap().is_some());

    // Nothing left to pack the second time.
    let again = store.collect("c1", &"archived history", false).unwrap();
    assert_eq!(again, Collected::default());
}

fn templated_links_keep_the_merge_fields(place: &Place) {
    let store = sent(place, 5_000);
    store.collect("c1", &(), true).unwrap();
    let delivered = store
        .recipients_in("c1", RecipientState::Delivered)
        .unwrap();
    assert_eq!(delivered[0].record.values.len(), 2);
}

suite!(
    the_export_mark_grows_only_over_gapless_exports,
    collecting_keeps_counts_and_addresses_and_drops_the_rest,
    templated_links_keep_the_merge_fields
);
