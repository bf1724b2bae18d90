//! The circuit breaker on policy blocks (issue 23), on every engine: a recipient held back
//! by a suspended destination is deferred until the pause ends without an attempt counted,
//! and a destination's block is kept (replaced, never doubled) across a reopen.

use super::*;
use crate::model::{Category, DestinationBlock, Outcome, RecipientState};
use crate::store::OutcomePolicy;

const UNTIL: Millis = 9_000_000;

fn block(trips: u32, lifted_at: Option<Millis>) -> DestinationBlock {
    let reply = ReplyRecord {
        code: Some(550),
        enhanced: Some("5.7.1".into()),
        text: "likely unsolicited mail".into(),
        category: Some(Category::Spam),
        hard: false,
    };
    DestinationBlock {
        destination: "mx0.sink.test".into(),
        category: Category::Spam,
        first_reply: reply.clone(),
        last_reply: reply,
        replies: 5,
        trips,
        tripped_at: 1_000,
        paused_until: UNTIL,
        campaigns: vec!["c1".into()],
        lifted_at,
    }
}

fn a_held_recipient_is_deferred_until_the_pause_ends_without_an_attempt(place: &Place) {
    let store = place.open();
    let rows = ["ann@a.example"].map(|a| (a.to_owned(), crate::model::Assignment::Variant(0)));
    load_list(&store, "c1", rows);
    let ann = store.pending("c1", None, 10).unwrap().remove(0);
    let held = OutcomeUpdate {
        key: ann.key.clone(),
        outcome: Outcome::Postponed {
            until: UNTIL,
            reply: Box::new(ReplyRecord::local("not sent: mx0.sink.test is suspended")),
        },
        message_id: None,
    };
    let counts = store
        .record_outcomes("c1", &OutcomePolicy::default(), &[held], 1_000_000)
        .unwrap();
    assert_eq!((counts.pending, counts.deferred), (0, 1));
    let record = store.recipient("c1", &ann.key).unwrap().unwrap();
    assert_eq!(record.state, RecipientState::Deferred);
    assert_eq!((record.attempts, record.first_attempt), (0, None));
    assert_eq!(record.next_attempt, Some(UNTIL));
    assert!(record.last_reply.unwrap().text.contains("suspended"));
    assert!(store.due("c1", UNTIL - 1, 10).unwrap().is_empty());
    assert_eq!(store.due("c1", UNTIL, 10).unwrap().len(), 1);
    assert!(store.suppression("ann@a.example").unwrap().is_none());
}

fn a_destination_block_is_kept_and_replaced(place: &Place) {
    let store = place.open();
    assert!(store.destination_blocks().unwrap().is_empty());
    store.set_destination_block(&block(1, None)).unwrap();
    store
        .set_destination_block(&block(2, Some(UNTIL + 5)))
        .unwrap();
    store.flush_blocking().unwrap();
    drop(store);
    let store = place.open();
    assert_eq!(
        store.destination_blocks().unwrap(),
        vec![block(2, Some(UNTIL + 5))]
    );
}

suite!(
    a_held_recipient_is_deferred_until_the_pause_ends_without_an_attempt,
    a_destination_block_is_kept_and_replaced
);
