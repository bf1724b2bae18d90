//! Webhook cursors through the store's interface, on every engine.

use super::*;

fn a_webhook_keeps_its_registration_and_cursors_across_restarts(place: &Place) {
    let store = place.open();
    assert_eq!(store.register_webhook("crm", 1_000).unwrap(), 1_000);
    // Registered again later: it still sends from when it was first seen.
    assert_eq!(store.register_webhook("crm", 9_000).unwrap(), 1_000);
    assert_eq!(store.register_webhook("audit", 2_000).unwrap(), 2_000);
    assert!(store.webhook_cursors("crm").unwrap().is_empty());
    let cursor = WebhookCursor { at: 5_000, skip: 3 };
    store.set_webhook_cursor("crm", "c1", cursor).unwrap();
    store
        .set_webhook_cursor("crm", "c2", WebhookCursor { at: 7, skip: 0 })
        .unwrap();
    store
        .set_webhook_cursor("crm", "c1", WebhookCursor { at: 6_000, skip: 1 })
        .unwrap();
    // Never back (a node that lost the lease finishing late).
    for old in [
        WebhookCursor { at: 6_000, skip: 0 },
        WebhookCursor { at: 5_999, skip: 9 },
        WebhookCursor { at: 6_000, skip: 1 },
    ] {
        store.set_webhook_cursor("crm", "c1", old).unwrap();
    }
    drop(store);

    let store = place.open();
    assert_eq!(store.register_webhook("crm", 20_000).unwrap(), 1_000);
    let mut cursors = store.webhook_cursors("crm").unwrap();
    cursors.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        cursors,
        vec![
            ("c1".to_owned(), WebhookCursor { at: 6_000, skip: 1 }),
            ("c2".to_owned(), WebhookCursor { at: 7, skip: 0 }),
        ]
    );
    assert!(store.webhook_cursors("audit").unwrap().is_empty());
    let mut positions = store.webhook_positions("c1").unwrap();
    positions.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        positions,
        vec![
            ("audit".to_owned(), 2_000, None),
            (
                "crm".to_owned(),
                1_000,
                Some(WebhookCursor { at: 6_000, skip: 1 })
            ),
        ]
    );
}

fn a_forgotten_webhook_holds_nothing_back(place: &Place) {
    let store = place.open();
    store.register_webhook("crm", 1_000).unwrap();
    store
        .set_webhook_cursor("crm", "c1", WebhookCursor { at: 5, skip: 0 })
        .unwrap();
    assert!(store.forget_webhook("crm").unwrap());
    assert!(!store.forget_webhook("crm").unwrap());
    assert!(store.webhook_positions("c1").unwrap().is_empty());
    assert!(store.webhook_cursors("crm").unwrap().is_empty());
    // Seen again, it starts afresh.
    assert_eq!(store.register_webhook("crm", 3_000).unwrap(), 3_000);
}

suite!(
    a_webhook_keeps_its_registration_and_cursors_across_restarts,
    a_forgotten_webhook_holds_nothing_back
);
