//! What each relay did per campaign (`[[relay]]`): added to, read back by relay name, kept
//! apart per campaign and removed with the campaign (copied by `volley store copy`: see
//! `transfer`).

use super::*;
use crate::model::Assignment;
use crate::store::RelayTally;

/// Two relays' counts, in name order.
pub(super) fn tallies() -> Vec<RelayTally> {
    vec![
        RelayTally {
            relay: "backup".into(),
            delivered: 3,
            deferred: 1,
            bounced: 0,
            cooldowns: 0,
        },
        RelayTally {
            relay: "primary".into(),
            delivered: 0,
            deferred: 2,
            bounced: 1,
            cooldowns: 1,
        },
    ]
}

fn relay_tallies_add_up_per_campaign_and_go_with_it(place: &Place) {
    let store = place.open();
    for campaign in ["c1", "c2"] {
        load_list(
            &store,
            campaign,
            [("a@x.example".to_owned(), Assignment::Variant(0))],
        );
    }
    assert!(store.relay_tallies("c1").unwrap().is_empty());
    store.add_relay_tallies("c1", &tallies()).unwrap();
    let cooled = RelayTally {
        relay: "primary".into(),
        cooldowns: 1,
        ..RelayTally::default()
    };
    store
        .add_relay_tallies("c1", std::slice::from_ref(&cooled))
        .unwrap();
    store.add_relay_tallies("c2", &[cooled]).unwrap();
    store.flush_blocking().unwrap();
    let mut want = tallies();
    want[1].cooldowns = 2;
    assert_eq!(store.relay_tallies("c1").unwrap(), want);
    assert_eq!(store.relay_tallies("c2").unwrap().len(), 1);
    store.remove_campaign("c1").unwrap();
    assert!(store.relay_tallies("c1").unwrap().is_empty());
    assert_eq!(store.relay_tallies("c2").unwrap()[0].cooldowns, 1);
}

suite!(relay_tallies_add_up_per_campaign_and_go_with_it);
