//! Warm-up days (issue 23), on every engine: a reservation never grants more than the day's
//! ceiling, survives reopening, keeps the ceiling the day was created with, and counts
//! outcomes and messages handed back.

use super::*;
use crate::store::WarmupTally;

fn reservations_stop_at_the_ceiling_and_survive_reopening(place: &Place) {
    let store = place.open();
    assert!(store.warmup_days(None).unwrap().is_empty());
    assert_eq!(store.warmup_reserve("k", "gmail", 7, 10, 6).unwrap(), 6);
    // The day keeps the ceiling it was created with.
    assert_eq!(store.warmup_reserve("k", "gmail", 7, 99, 6).unwrap(), 4);
    assert_eq!(store.warmup_reserve("k", "gmail", 7, 10, 6).unwrap(), 0);
    assert_eq!(store.warmup_reserve("k", "yahoo", 7, 5, 2).unwrap(), 2);
    assert_eq!(store.warmup_reserve("other", "gmail", 7, 5, 9).unwrap(), 5);
    let tally = WarmupTally {
        delivered: 7,
        bounced: 1,
        blocked: 1,
        released: 1,
        ..WarmupTally::default()
    };
    store.warmup_record("k", "gmail", 7, &tally).unwrap();
    store.warmup_set_held("k", "gmail", 7, 42).unwrap();
    // Counting a day that has no reservation yet gives it a ceiling of 0 until one comes.
    store
        .warmup_record("k", "gmail", 8, &WarmupTally::default())
        .unwrap();
    assert_eq!(store.warmup_reserve("k", "gmail", 8, 15, 20).unwrap(), 15);
    store.flush_blocking().unwrap();
    drop(store);

    let store = place.open();
    let days = store.warmup_days(Some("k")).unwrap();
    let summary: Vec<_> = days
        .iter()
        .map(|d| (d.provider.as_str(), d.day, d.ceiling, d.sent, d.held))
        .collect();
    assert_eq!(
        summary,
        [
            ("gmail", 7, 10, 9, 42),
            ("gmail", 8, 15, 15, 0),
            ("yahoo", 7, 5, 2, 0)
        ]
    );
    assert_eq!(
        (days[0].delivered, days[0].bounced, days[0].blocked),
        (7, 1, 1)
    );
    assert_eq!(store.warmup_days(None).unwrap().len(), 4);
    // Handed back, the message may be reserved again.
    assert_eq!(store.warmup_reserve("k", "gmail", 7, 10, 6).unwrap(), 1);
}

suite!(reservations_stop_at_the_ceiling_and_survive_reopening);
