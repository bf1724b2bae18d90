//! Recipients waiting for their local sending window (issue 23), on every engine: no attempt
//! counted, due again when the window opens, counted apart, and sent from there.

use super::*;
use crate::model::{Outcome, RecipientState};
use crate::store::OutcomePolicy;

const OPENS: Millis = 5_000_000;

fn wait(store: &Store, key: &RecipientKey, until: Millis, now: Millis) -> Counts {
    let update = OutcomeUpdate {
        key: key.clone(),
        outcome: Outcome::Waiting {
            until,
            reply: ReplyRecord::local("waiting for the sending window"),
        },
        message_id: None,
    };
    store
        .record_outcomes("c1", &OutcomePolicy::default(), &[update], now)
        .unwrap()
}

fn waiting_recipients_fall_due_when_their_window_opens(place: &Place) {
    let store = place.open();
    let rows = ["ann@a.example", "bob@b.example"]
        .map(|a| (a.to_owned(), crate::model::Assignment::Variant(0)));
    load_list(&store, "c1", rows);
    let pending = store.pending("c1", None, 10).unwrap();
    let ann = pending
        .iter()
        .find(|r| r.record.email == "ann@a.example")
        .unwrap();
    let counts = wait(&store, &ann.key, OPENS, 1_000_000);
    assert_eq!((counts.pending, counts.waiting), (1, 1));

    let record = store.recipient("c1", &ann.key).unwrap().unwrap();
    assert_eq!(record.state, RecipientState::Waiting);
    assert_eq!((record.attempts, record.first_attempt), (0, None));
    assert_eq!(record.next_attempt, Some(OPENS));
    // Not in the pending queue; due (with the deferred) from the moment the window opens.
    let pending: Vec<_> = store.pending_in("c1", "a.example", None, 10).unwrap();
    assert!(pending.is_empty());
    assert!(store.due("c1", OPENS - 1, 10).unwrap().is_empty());
    let due = store.due("c1", OPENS, 10).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].key, ann.key);
    let mine = vec!["a.example".to_owned()];
    assert_eq!(
        store.due_in_domains("c1", &mine, OPENS, 10).unwrap().len(),
        1
    );
    assert_eq!(store.next_window("c1").unwrap(), Some(OPENS));
    assert_eq!(store.next_due("c1").unwrap(), Some(OPENS));

    // Sent once the window opens: one attempt, counted as delivered.
    let delivered = OutcomeUpdate {
        key: ann.key.clone(),
        outcome: Outcome::Delivered {
            reply: ReplyRecord::local("250 ok"),
        },
        message_id: None,
    };
    let counts = store
        .record_outcomes("c1", &OutcomePolicy::default(), &[delivered], OPENS)
        .unwrap();
    assert_eq!((counts.waiting, counts.delivered), (0, 1));
    let record = store.recipient("c1", &ann.key).unwrap().unwrap();
    assert_eq!(record.attempts, 1);
    assert!(store.due("c1", OPENS * 1_000, 10).unwrap().is_empty());
    assert_eq!(store.next_window("c1").unwrap(), None);
    drop(store);
    // Counts survive a reopen.
    let store = place.open();
    let counts = store.counts("c1").unwrap().unwrap();
    assert_eq!(
        (counts.pending, counts.waiting, counts.delivered),
        (1, 0, 1)
    );
}

suite!(waiting_recipients_fall_due_when_their_window_opens);
