//! Held-out recipients (`[ab] holdout`) through the store's interface, on every engine:
//! stored in the state `holdout`, counted apart from every variant, never queued, never
//! released with the held remainder, and kept across reopening, gc and `store copy`.

use super::*;
use crate::model::{Assignment, RecipientState, Suppression, SuppressionReason};
use crate::store::transfer::copy_store;

/// Campaign `c1`: two sent now, one held for the winner, three held out (one of them on the
/// suppression list), one suppressed.
fn loaded(store: &Store) {
    use Assignment::{Held, Holdout, Variant};
    for address in ["r3@y.example", "r6@x.example"] {
        let entry = Suppression {
            reason: SuppressionReason::Manual,
            at: 1,
            campaign: None,
            detail: "added by hand".into(),
        };
        store.suppress(address, &entry).unwrap();
    }
    let rows = [
        Variant(0),
        Variant(1),
        Held { fallback: 1 },
        Holdout,
        Holdout,
        Holdout,
        Variant(0),
    ];
    let domain = |i: usize| {
        if i.is_multiple_of(2) {
            "x.example"
        } else {
            "y.example"
        }
    };
    load_list(
        store,
        "c1",
        rows.iter()
            .enumerate()
            .map(|(i, a)| (format!("r{i}@{}", domain(i)), *a)),
    );
}

/// The addresses of `c1` in `state`, sorted.
fn in_state(store: &Store, state: RecipientState) -> Vec<String> {
    let mut out: Vec<String> = store
        .recipients_in("c1", state)
        .unwrap()
        .into_iter()
        .map(|r| r.record.email)
        .collect();
    out.sort();
    out
}

/// What a store says about `c1`'s holdout: counts, variants, queue, holdout members.
type Facts = (Counts, Vec<(u8, u64)>, Vec<String>, Vec<String>);

/// The [`Facts`] of `store`.
fn holdout_facts(store: &Store) -> Facts {
    let counts = store.counts("c1").unwrap().unwrap();
    let variants = store
        .variant_counts("c1")
        .unwrap()
        .into_iter()
        .map(|(v, c)| (v, c.total))
        .collect();
    let mut pending: Vec<String> = store
        .pending("c1", None, 100)
        .unwrap()
        .into_iter()
        .map(|r| r.record.email)
        .collect();
    pending.sort();
    (
        counts,
        variants,
        pending,
        in_state(store, RecipientState::Holdout),
    )
}

fn held_out_recipients_are_counted_apart_and_never_queued(place: &Place) {
    let store = place.open();
    loaded(&store);
    let (counts, variants, pending, held_out) = holdout_facts(&store);
    assert_eq!(
        (counts.total, counts.pending, counts.held, counts.holdout),
        (7, 2, 1, 3)
    );
    assert_eq!(
        counts.suppressed, 1,
        "a suppressed address held out stays held out"
    );
    assert_eq!(variants, [(0, 2), (1, 1)], "no variant counts the holdout");
    assert_eq!(pending, ["r0@x.example", "r1@y.example"]);
    assert_eq!(held_out, ["r3@y.example", "r4@x.example", "r5@y.example"]);
    assert!(store.pending_domains("c1").unwrap().len() <= 2);

    // Releasing the held remainder leaves the holdout alone.
    assert_eq!(store.release_held("c1", &|_| 0).unwrap(), 1);
    let (counts, _, pending, again) = holdout_facts(&store);
    assert_eq!((counts.pending, counts.held, counts.holdout), (3, 0, 3));
    assert!(!pending.iter().any(|a| held_out.contains(a)));
    assert_eq!(again, held_out);

    // And a restart finds it as it was.
    drop(store);
    let store = place.open();
    assert_eq!(holdout_facts(&store).3, held_out);
    assert_eq!(store.counts("c1").unwrap().unwrap().holdout, 3);
}

fn the_holdout_survives_gc_and_a_copy_to_another_engine(place: &Place) {
    let store = place.open();
    loaded(&store);
    let before = holdout_facts(&store);
    let kept = (before.0, before.1, before.3);
    // gc collects finished campaigns (it keeps no queue): the rest is what matters here.
    store.collect("c1", &(), true).unwrap();
    let (counts, variants, _, held_out) = holdout_facts(&store);
    assert_eq!((counts, variants, held_out), kept, "gc");
    // This engine → sled → this engine.
    let middle_place = sled_place();
    let middle = middle_place.open();
    copy_store(&store, &middle, None).unwrap();
    let (counts, variants, _, held_out) = holdout_facts(&middle);
    assert_eq!((counts, variants, held_out), kept, "copied");
    let back = place_like(&store);
    copy_store(&middle, &back.open(), None).unwrap();
    let (counts, variants, _, held_out) = holdout_facts(&back.open());
    assert_eq!((counts, variants, held_out), kept, "copied back");
}

/// Another empty store of the engine `store` is on.
fn place_like(store: &Store) -> Place {
    if store.path().to_string_lossy().starts_with("postgres") {
        postgres_place()
    } else {
        sled_place()
    }
}

suite!(
    held_out_recipients_are_counted_apart_and_never_queued,
    the_holdout_survives_gc_and_a_copy_to_another_engine,
);
