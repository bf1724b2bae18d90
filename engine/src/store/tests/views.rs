//! "View in browser" data: stored at load, replaced by a re-run, removed with the campaign.

use super::*;
use crate::model::Assignment;
use crate::store::{ViewMeta, ViewVersion};

fn view(subject: &str) -> ViewMeta {
    ViewMeta {
        base_url: "https://t.example".into(),
        versions: vec![ViewVersion {
            subject: subject.into(),
            html: Some("<p>Hi {{ name }} <a href=\"{{ __volley_link_0 }}\">x</a></p>".into()),
            text: None,
        }],
        archive: Some(vec![("name".into(), "there".into())]),
    }
}

fn view_data_is_kept_replaced_and_removed_with_its_campaign(place: &Place) {
    let store = place.open();
    load_list(
        &store,
        "c1",
        [("a@x.example".to_owned(), Assignment::Variant(0))],
    );
    assert_eq!(store.view_meta("c1").unwrap(), None);
    store.set_view_meta("c1", &view("first")).unwrap();
    assert_eq!(store.view_meta("c1").unwrap(), Some(view("first")));
    store.set_view_meta("c1", &view("second")).unwrap();
    assert_eq!(store.view_meta("c1").unwrap(), Some(view("second")));
    store.remove_campaign("c1").unwrap();
    assert_eq!(store.view_meta("c1").unwrap(), None);
}

suite!(view_data_is_kept_replaced_and_removed_with_its_campaign);
