//! What only the sled engine does: one process at a time, and compaction by copying.

use crate::model::Assignment;
use crate::store::{Store, StoreError};

/// Campaign `c1` with two pending recipients.
pub(super) fn load(store: &Store) {
    let mut loader = store.start_load("c1", vec!["email".into()]).unwrap();
    for (i, address) in ["a@x.example", "b@y.example"].iter().enumerate() {
        let domain = address.split('@').nth(1).unwrap();
        loader
            .add(
                address,
                domain,
                vec![address.to_string()],
                i as u64 + 2,
                Assignment::Variant(0),
            )
            .unwrap();
    }
    loader.finish(0, 0, 0).unwrap();
}

#[test]
fn a_second_process_cannot_open_a_held_store() {
    let dir = tempfile::tempdir().unwrap();
    let _held = Store::open(dir.path()).unwrap();
    let started = std::time::Instant::now();
    let error = Store::open(dir.path()).unwrap_err();
    assert!(matches!(error, StoreError::Locked { .. }), "{error}");
    assert!(
        started.elapsed() < super::reopen::WAIT,
        "a store open here is not waited for"
    );
}

#[test]
fn a_store_closed_here_opens_again_at_once_after_writes() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..30 {
        let store = Store::open(dir.path()).unwrap_or_else(|e| panic!("round {round}: {e}"));
        if round == 0 {
            load(&store);
        }
        store.flush_blocking().unwrap();
        // A clone dropped on another thread, as a finished send's tasks do.
        let clone = store.clone();
        std::thread::spawn(move || drop(clone)).join().unwrap();
    }
}

#[test]
fn a_copy_holds_the_same_data() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("old")).unwrap();
    load(&store);
    store
        .suppress(
            "z@x.example",
            &crate::model::Suppression {
                reason: crate::model::SuppressionReason::Manual,
                at: 1,
                campaign: None,
                detail: "test".into(),
            },
        )
        .unwrap();
    let secret = store.secret().unwrap();
    let target = dir.path().join("new");
    store.copy_to(&target).unwrap();
    assert!(
        store.copy_to(&target).is_err(),
        "never over an existing store"
    );
    drop(store);
    let copy = Store::open(&target).unwrap();
    assert_eq!(copy.campaigns().unwrap(), ["c1"]);
    assert_eq!(copy.counts("c1").unwrap().unwrap().pending, 2);
    assert_eq!(copy.secret().unwrap(), secret);
    assert!(copy.suppression("z@x.example").unwrap().is_some());
    assert_eq!(copy.pending("c1", None, 10).unwrap().len(), 2);
}

#[test]
fn a_duplicate_is_found_in_a_batch_already_written_and_in_the_one_being_filled() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut loader = store.start_load("c1", vec!["email".into()]).unwrap();
    let mut add = |address: &str, line: u64| {
        loader
            .add(
                address,
                "x.example",
                vec![address.into()],
                line,
                Assignment::Variant(0),
            )
            .unwrap()
    };
    for i in 0..2_500u64 {
        assert!(add(&format!("u{i}@x.example"), i + 2));
    }
    assert!(!add("u3@x.example", 9_000), "in the first batch, written");
    assert!(!add("u2400@x.example", 9_001), "in the batch being filled");
    assert!(add("new@x.example", 9_002));
    let result = loader.finish(0, 2, 0).unwrap();
    assert_eq!(result.counts.total, 2_501);
    let key = crate::store::RecipientKey {
        domain: "x.example".into(),
        seq: 2_500,
    };
    let record = store.recipient("c1", &key).unwrap().unwrap();
    assert_eq!(
        (record.email.as_str(), record.line),
        ("new@x.example", 9_002)
    );
    assert_eq!(store.pending("c1", None, 10_000).unwrap().len(), 2_501);
}

#[test]
fn a_delivered_recipient_keeps_when_it_was_first_tried() {
    use crate::model::{Outcome, ReplyRecord};
    use crate::store::{OutcomePolicy, OutcomeUpdate};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    load(&store);
    let pending = store.pending("c1", None, 10).unwrap();
    let update = OutcomeUpdate {
        key: pending[0].key.clone(),
        outcome: Outcome::Delivered {
            reply: ReplyRecord::local("250 ok".to_owned()),
        },
        message_id: None,
    };
    store
        .record_outcomes(
            "c1",
            &OutcomePolicy::default(),
            &[update],
            1_700_000_000_250,
        )
        .unwrap();
    let record = store.recipient("c1", &pending[0].key).unwrap().unwrap();
    // Kept to the second (rounded up): tracking tells a proxy's prefetch by it.
    assert_eq!(record.first_attempt, Some(1_700_000_001_000));
    assert_eq!(record.attempts, 1);
}

#[test]
fn rows_of_interleaved_domains_are_numbered_together_and_keep_their_lines() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut loader = store.start_load("c1", vec!["email".into()]).unwrap();
    let domains = ["a.example", "b.example", "c.example"];
    for i in 0..3_000u64 {
        let domain = domains[(i % 3) as usize];
        let address = format!("u{i}@{domain}");
        let line = i + 2;
        let added = loader
            .add(
                &address,
                domain,
                vec![address.clone()],
                line,
                Assignment::Variant(0),
            )
            .unwrap();
        assert!(added);
    }
    // A duplicate of a row still waiting to be numbered is refused.
    assert!(!loader
        .add(
            "u2999@c.example",
            "c.example",
            vec![],
            9_000,
            Assignment::Variant(0)
        )
        .unwrap());
    loader.finish(0, 1, 0).unwrap();
    let b = store.pending_in("c1", "b.example", None, 5_000).unwrap();
    assert_eq!(b.len(), 1_000);
    // One domain's rows are consecutive numbers, in the order they came.
    let first = b[0].key.seq;
    for (k, r) in b.iter().enumerate() {
        assert_eq!(r.key.seq, first + k as u64);
        let i = 3 * k as u64 + 1;
        assert_eq!(r.record.email, format!("u{i}@b.example"));
        assert_eq!(r.record.line, i + 2);
    }
}

#[test]
fn counters_stored_before_the_holdout_state_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = super::SledStore::open(dir.path()).unwrap();
    // The ten counters of earlier versions, as postcard wrote them (a struct is its fields).
    let old =
        postcard::to_stdvec(&(7u64, 1u64, 2u64, 3u64, 0u64, 0u64, 1u64, 0u64, 4u64, 5u64)).unwrap();
    let counts = store.decode_counts(&old, "counters").unwrap();
    assert_eq!(
        (
            counts.total,
            counts.pending,
            counts.suppressed,
            counts.duplicate
        ),
        (7, 1, 1, 5)
    );
    assert_eq!(counts.holdout, 0);
    let new = postcard::to_stdvec(&crate::model::Counts {
        holdout: 9,
        ..counts.clone()
    })
    .unwrap();
    let read = store.decode_counts(&new, "counters").unwrap();
    assert_eq!(read.holdout, 9);
    assert!(store.decode_counts(&old[..3], "counters").is_err());
}
