//! Groups of outcomes recorded at once from several threads (the recorder does so when the
//! engine says it may: [`crate::store::api::CampaignStore::max_groups_in_flight`]), on every
//! engine: the counters stay exact.

use super::*;
use crate::model::{Assignment, Outcome};
use crate::store::{OutcomePolicy, OutcomeUpdate};

/// Groups written at once.
const THREADS: u64 = 4;
/// Recipients per group.
const PER_GROUP: u64 = 25;

fn groups_recorded_at_once_keep_the_counters_exact(place: &Place) {
    let store = place.open();
    let total = THREADS * PER_GROUP * 2;
    let mut loader = store.start_load("c1", vec!["email".into()]).unwrap();
    for seq in 0..total {
        let address = format!("r{seq}@x.example");
        let variant = Assignment::Variant(u8::from(seq % 2 == 1));
        loader
            .add(
                &address,
                "x.example",
                vec![address.clone()],
                seq + 2,
                variant,
            )
            .unwrap();
    }
    loader.finish(0, 0, 0).unwrap();
    let reply = |code: u16| ReplyRecord {
        code: Some(code),
        enhanced: None,
        text: "x".into(),
        category: None,
        hard: code >= 500,
    };
    let policy = OutcomePolicy::default();
    // Each thread writes two groups of its own recipients: deliveries, then bounces.
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let (store, policy) = (&store, &policy);
            scope.spawn(move || {
                for (half, code) in [(0, 250), (1, 550)] {
                    let updates: Vec<OutcomeUpdate> = (0..PER_GROUP)
                        .map(|i| OutcomeUpdate {
                            key: RecipientKey {
                                domain: "x.example".into(),
                                seq: (half * THREADS + thread) * PER_GROUP + i,
                            },
                            outcome: if code == 250 {
                                Outcome::Delivered { reply: reply(code) }
                            } else {
                                Outcome::Bounced { reply: reply(code) }
                            },
                            message_id: None,
                        })
                        .collect();
                    store.record_outcomes("c1", policy, &updates, 10).unwrap();
                    store.flush_blocking().unwrap();
                }
            });
        }
    });
    let counts = store.counts("c1").unwrap().unwrap();
    let half = THREADS * PER_GROUP;
    assert_eq!(
        (
            counts.total,
            counts.delivered,
            counts.bounced,
            counts.pending
        ),
        (total, half, half, 0)
    );
    let by_variant = store.variant_counts("c1").unwrap();
    let sums: Vec<(u8, u64, u64, u64)> = by_variant
        .iter()
        .map(|(v, c)| (*v, c.total, c.delivered, c.pending))
        .collect();
    assert_eq!(sums, [(0, half, half / 2, 0), (1, half, half / 2, 0)]);
    drop(store);
    // Reopened (a restart), the same.
    let again = place.open().counts("c1").unwrap().unwrap();
    assert_eq!(again, counts);
}

suite!(groups_recorded_at_once_keep_the_counters_exact);
