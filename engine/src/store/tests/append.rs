//! Messages appended to a loaded campaign (the transactional lane), on every engine: new
//! pending rows after the list's, counted and queued at once; idempotency keys naming the
//! first row within their window; appends from several threads at once.

use super::*;
use crate::model::{Assignment, RecipientState};
use crate::store::{AppendRow, Appended, IdempotencyKey};
use std::time::Duration;

/// Campaign `tx` (columns `email, name`) loaded with one row for `bulk@a.example`.
fn loaded(place: &Place) -> Store {
    let store = place.open();
    let mut loader = store
        .start_load("tx", vec!["email".into(), "name".into()])
        .unwrap();
    loader
        .add(
            "bulk@a.example",
            "a.example",
            vec!["bulk@a.example".into(), "B".into()],
            2,
            Assignment::Variant(0),
        )
        .unwrap();
    loader.finish(0, 0, 0).unwrap();
    store
}

fn row(address: &str, key: Option<(&str, u8)>) -> AppendRow {
    let domain = address.rsplit_once('@').unwrap().1.to_owned();
    AppendRow {
        address: address.into(),
        domain,
        values: vec![address.into(), "N".into()],
        variant: 1,
        idempotency: key.map(|(key, f)| IdempotencyKey {
            key: key.into(),
            fingerprint: [f; 32],
            window: Duration::from_secs(60),
        }),
    }
}

fn new_key(appended: &Appended) -> RecipientKey {
    match appended {
        Appended::New(key) => key.clone(),
        other => panic!("expected a new row, got {other:?}"),
    }
}

fn appended_rows_are_pending_readable_and_counted_and_the_same_address_may_come_again(
    place: &Place,
) {
    let store = loaded(place);
    let first = store
        .append(
            "tx",
            &[row("ann@b.example", None), row("ann@b.example", None)],
            1_000,
        )
        .unwrap();
    let second = store
        .append("tx", &[row("bob@a.example", None)], 2_000)
        .unwrap();
    let keys: Vec<_> = first.iter().chain(&second).map(new_key).collect();
    assert_eq!(keys.len(), 3);
    assert_ne!(keys[0], keys[1]);
    assert!(keys[2].seq > keys[1].seq, "{keys:?}");
    let record = store.recipient("tx", &keys[2]).unwrap().unwrap();
    assert_eq!(record.email, "bob@a.example");
    assert_eq!(record.state, RecipientState::Pending);
    assert_eq!(record.variant, 1);
    assert_eq!(record.values, ["bob@a.example", "N"]);
    let counts = store.counts("tx").unwrap().unwrap();
    assert_eq!((counts.total, counts.pending), (4, 4));
    let pending_b = store.pending_in("tx", "b.example", None, 10).unwrap();
    assert_eq!(pending_b.len(), 2);
    let pending_a = store.pending_in("tx", "a.example", None, 10).unwrap();
    assert_eq!(pending_a.len(), 2, "the loaded row and the appended one");
    // A reader paging the queue past the loaded row finds the appended one after it.
    let after = pending_a[0].key.seq;
    let later = store
        .pending_in("tx", "a.example", Some(after), 10)
        .unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].key, keys[2]);
    // The message is found by its number, as `GET /api/messages/{id}` does.
    let number = store.campaign("tx").unwrap().unwrap().number;
    let found = store.recipient_key_by_number(number, keys[2].seq).unwrap();
    assert_eq!(found, Some(keys[2].clone()));
    // Everything survives reopening.
    drop(store);
    let store = place.open();
    assert_eq!(store.counts("tx").unwrap().unwrap().pending, 4);
}

fn an_idempotency_key_names_the_first_row_within_its_window_only(place: &Place) {
    let store = loaded(place);
    let first = new_key(
        &store
            .append("tx", &[row("ann@b.example", Some(("k1", 1)))], 1_000)
            .unwrap()[0],
    );
    let again = store
        .append(
            "tx",
            &[
                row("ann@b.example", Some(("k1", 1))),
                row("ann@b.example", Some(("k1", 2))),
            ],
            30_000,
        )
        .unwrap();
    assert_eq!(
        again,
        [
            Appended::Existing {
                key: first.clone(),
                same_request: true
            },
            Appended::Existing {
                key: first.clone(),
                same_request: false
            }
        ]
    );
    assert_eq!(store.counts("tx").unwrap().unwrap().total, 2);
    // Two rows with one new key in one call: the second names the first.
    let pair = store
        .append(
            "tx",
            &[
                row("cy@b.example", Some(("k2", 3))),
                row("cy@b.example", Some(("k2", 3))),
            ],
            31_000,
        )
        .unwrap();
    let k2 = new_key(&pair[0]);
    assert_eq!(
        pair[1],
        Appended::Existing {
            key: k2,
            same_request: true
        }
    );
    assert_eq!(store.counts("tx").unwrap().unwrap().total, 3);
    // After the window the key is free again (and the old record was pruned).
    let later = store
        .append("tx", &[row("ann@b.example", Some(("k1", 1)))], 62_000)
        .unwrap();
    let renewed = new_key(&later[0]);
    assert_ne!(renewed, first);
    assert_eq!(store.counts("tx").unwrap().unwrap().total, 4);
    // The renewed record holds after reopening.
    drop(store);
    let store = place.open();
    let retry = store
        .append("tx", &[row("ann@b.example", Some(("k1", 1)))], 63_000)
        .unwrap();
    assert_eq!(
        retry,
        [Appended::Existing {
            key: renewed,
            same_request: true
        }]
    );
}

fn a_campaign_never_loaded_is_refused(place: &Place) {
    let store = place.open();
    let error = store
        .append("nope", &[row("a@b.example", None)], 1)
        .unwrap_err();
    assert!(error.to_string().contains("nope"), "{error}");
}

/// Threads appending at once (each its own key, plus one key all of them send): every row
/// gets its own number, the shared key names exactly one row, and the counters are exact.
fn appends_from_several_threads_at_once_number_rows_apart_and_share_a_key_once(place: &Place) {
    const THREADS: usize = 4;
    const EACH: usize = 10;
    let store = loaded(place);
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut out = Vec::new();
                for i in 0..EACH {
                    let own = format!("t{t}-{i}");
                    let rows = [
                        row(&format!("u{t}@c.example"), Some((own.as_str(), 5))),
                        row("shared@c.example", Some(("shared", 7))),
                    ];
                    out.extend(store.append("tx", &rows, 10_000).unwrap());
                }
                out
            })
        })
        .collect();
    let all: Vec<Appended> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let new: Vec<_> = all
        .iter()
        .filter_map(|a| match a {
            Appended::New(key) => Some(key.seq),
            Appended::Existing { .. } => None,
        })
        .collect();
    assert_eq!(
        new.len(),
        THREADS * EACH + 1,
        "each own key once, the shared one once"
    );
    let unique: std::collections::BTreeSet<_> = new.iter().collect();
    assert_eq!(unique.len(), new.len(), "row numbers are never reused");
    let counts = store.counts("tx").unwrap().unwrap();
    assert_eq!(counts.pending, (THREADS * EACH + 2) as u64);
}

suite!(
    appended_rows_are_pending_readable_and_counted_and_the_same_address_may_come_again,
    an_idempotency_key_names_the_first_row_within_its_window_only,
    a_campaign_never_loaded_is_refused,
    appends_from_several_threads_at_once_number_rows_apart_and_share_a_key_once,
);
