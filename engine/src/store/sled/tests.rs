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
    loader.finish(0, 0).unwrap();
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
