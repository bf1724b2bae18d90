//! Conversions through the store's interface, on every engine: recorded once per order id,
//! a changed repeat reported with the first kept, and kept across reopening.

use super::*;
use crate::model::Assignment;
use crate::store::{Attribution, Conversion, Recorded};

fn order(id: &str, micros: u64, attribution: Attribution) -> Conversion {
    Conversion {
        order_id: id.to_owned(),
        email: "r0@x.example".to_owned(),
        value_micros: micros,
        currency: "EUR".to_owned(),
        at: 1_700_000_000_000,
        attribution,
    }
}

fn orders_count_once_by_order_id(place: &Place) {
    let store = place.open();
    load_list(
        &store,
        "c1",
        [("r0@x.example".to_owned(), Assignment::Variant(1))],
    );
    let first = [
        order("o-1", 12_500_000, Attribution::Variant(1)),
        order("o-2", 0, Attribution::Unattributed),
    ];
    let effects = store.record_conversions("c1", &first).unwrap();
    assert_eq!(effects, vec![Recorded::Added, Recorded::Added]);
    let again = [
        order("o-1", 12_500_000, Attribution::Variant(1)),
        order("o-2", 5, Attribution::Unattributed),
    ];
    let effects = store.record_conversions("c1", &again).unwrap();
    assert_eq!(effects[0], Recorded::Duplicate);
    assert!(matches!(&effects[1], Recorded::Changed { first } if first.value_micros == 0));
    store.flush_blocking().unwrap();
    drop(store);
    let store = place.open();
    assert_eq!(store.conversions("c1").unwrap(), first.to_vec());
    assert!(store.conversions("c1").unwrap()[0].value() == 12.5);
}

suite!(orders_count_once_by_order_id);
