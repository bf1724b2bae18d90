//! Due retries read by domain (a cluster node's own), on every engine.

use super::*;
use crate::model::{Outcome, RetryPolicy};
use crate::store::OutcomePolicy;
use std::time::Duration;

/// Loads `addresses` into `c1` and defers them all, the first ones first: with a one-minute
/// retry, each falls due a second after the one before it.
fn defer_all(store: &Store, addresses: &[&str], start: Millis) -> Vec<Millis> {
    let assigned: Vec<_> = addresses
        .iter()
        .map(|a| ((*a).to_owned(), crate::model::Assignment::Variant(0)))
        .collect();
    load_list(store, "c1", assigned);
    let policy = OutcomePolicy {
        retry: RetryPolicy {
            schedule: vec![Duration::from_secs(60)],
            expire_after: Duration::from_secs(3600),
            jitter: 0.0,
        },
        ..OutcomePolicy::default()
    };
    let pending = store.pending("c1", None, 100).unwrap();
    let mut due = Vec::new();
    for (i, address) in addresses.iter().enumerate() {
        let recipient = pending.iter().find(|r| r.record.email == *address).unwrap();
        let at = start + i as u64 * 1_000;
        let update = OutcomeUpdate {
            key: recipient.key.clone(),
            outcome: Outcome::Deferred {
                reply: ReplyRecord {
                    code: Some(451),
                    enhanced: None,
                    text: "later".into(),
                    category: None,
                    hard: false,
                },
            },
            message_id: None,
        };
        store.record_outcomes("c1", &policy, &[update], at).unwrap();
        due.push(at + 60_000);
    }
    due
}

fn due_retries_read_by_domain_skip_other_domains_due_first(place: &Place) {
    let store = place.open();
    let addresses = [
        "a@theirs.example",
        "b@theirs.example",
        "c@theirs.example",
        "d@mine.example",
        "e@other.example",
        "f@mine.example",
    ];
    let due = defer_all(&store, &addresses, 1_000_000);
    let all_due = due[5];
    // The first page of all due retries holds none of mine.
    let page = store.due("c1", all_due, 3).unwrap();
    assert!(page.iter().all(|r| r.key.domain == "theirs.example"));

    let mine = vec!["mine.example".to_owned()];
    let got = store.due_in_domains("c1", &mine, all_due, 3).unwrap();
    let emails: Vec<_> = got.iter().map(|r| r.record.email.as_str()).collect();
    assert_eq!(
        emails,
        ["d@mine.example", "f@mine.example"],
        "earliest first"
    );
    // Bounded by the limit and by the time.
    let one = store.due_in_domains("c1", &mine, all_due, 1).unwrap();
    assert_eq!(one.len(), 1);
    let early = store.due_in_domains("c1", &mine, due[4], 10).unwrap();
    assert_eq!(early.len(), 1, "f is not due yet");
    // Several domains; none; an unknown campaign.
    let two = vec!["mine.example".to_owned(), "other.example".to_owned()];
    assert_eq!(
        store.due_in_domains("c1", &two, all_due, 10).unwrap().len(),
        3
    );
    assert!(store
        .due_in_domains("c1", &[], all_due, 10)
        .unwrap()
        .is_empty());
    assert!(store
        .due_in_domains("nope", &mine, all_due, 10)
        .unwrap()
        .is_empty());
}

suite!(due_retries_read_by_domain_skip_other_domains_due_first);
