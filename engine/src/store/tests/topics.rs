//! Topics on every engine (issue 22): topic entries apart from global ones, paged in order,
//! kept across reopening; a campaign's topic; a one-click unsubscribe with a topic adds a
//! topic entry and no global one.

use super::*;
use crate::model::{Assignment, Suppression, SuppressionReason};
use crate::store::{CampaignTopic, UnsubscribeScope};

fn entry(at: Millis) -> Suppression {
    Suppression {
        reason: SuppressionReason::Unsubscribe,
        at,
        campaign: Some("c1".into()),
        detail: "one-click unsubscribe".into(),
    }
}

fn topic_entries_are_apart_from_global_ones_and_kept(place: &Place) {
    {
        let store = place.open();
        assert!(store
            .suppress_topic("a@x.example", "digest", &entry(1))
            .unwrap());
        assert!(!store
            .suppress_topic("a@x.example", "digest", &entry(2))
            .unwrap());
        assert!(store
            .suppress_topic("a@x.example", "news", &entry(3))
            .unwrap());
        assert!(store
            .suppress_topic("b@x.example", "digest", &entry(4))
            .unwrap());
        assert!(store.suppress("c@x.example", &entry(5)).unwrap());
        let digest = CampaignTopic {
            topic: "digest".into(),
            name: "Weekly digest".into(),
            unsubscribe: UnsubscribeScope::Topic,
        };
        store.set_campaign_topic("c1", &digest).unwrap();
        store.flush_blocking().unwrap();
    }
    let store = place.open();
    assert_eq!(
        store.topic_suppression("a@x.example", "digest").unwrap(),
        Some(entry(1))
    );
    assert!(store.suppression("a@x.example").unwrap().is_none());
    assert_eq!(store.suppressions().unwrap().len(), 1);
    let for_digest = |a: &str| store.suppression_for(a, Some("digest")).unwrap().is_some();
    assert!(for_digest("a@x.example") && for_digest("b@x.example") && for_digest("c@x.example"));
    assert!(store
        .suppression_for("b@x.example", Some("news"))
        .unwrap()
        .is_none());
    assert!(store
        .suppression_for("a@x.example", None)
        .unwrap()
        .is_none());
    let page = store.topic_suppressions_after(None, 2).unwrap();
    let seen: Vec<_> = page
        .iter()
        .map(|t| (t.address.as_str(), t.topic.as_str()))
        .collect();
    assert_eq!(seen, [("a@x.example", "digest"), ("a@x.example", "news")]);
    let rest = store
        .topic_suppressions_after(Some(("a@x.example", "news")), 10)
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].address, "b@x.example");
    let from_start_of_a = store
        .topic_suppressions_after(Some(("a@x.example", "")), 10)
        .unwrap();
    assert_eq!(from_start_of_a.len(), 3);
    assert_eq!(store.topic_suppressions_of("a@x.example").unwrap().len(), 2);
    assert_eq!(
        store.campaign_topic("c1").unwrap().unwrap().name,
        "Weekly digest"
    );
    assert_eq!(store.topics().unwrap()[0].id, "digest");
    assert!(store.unsuppress_topic("a@x.example", "news").unwrap());
    assert!(!store.unsuppress_topic("a@x.example", "news").unwrap());
    store.clear_campaign_topic("c1").unwrap();
    assert_eq!(store.campaign_topic("c1").unwrap(), None);
    assert_eq!(store.topics().unwrap().len(), 1, "the known topics stay");
}

fn a_topic_unsubscribe_adds_a_topic_entry_only(place: &Place) {
    let store = place.open();
    load_list(
        &store,
        "c1",
        ["a@x.example", "b@x.example"].map(|a| (a.to_owned(), Assignment::Variant(0))),
    );
    let input = |address: &str, seq, topic: Option<&str>| TrackInput {
        campaign: "c1".into(),
        key: RecipientKey {
            domain: "x.example".into(),
            seq,
        },
        address: address.into(),
        variant: 0,
        kind: TrackKind::Unsubscribe,
        link: None,
        at: 10,
        machine: None,
        topic: topic.map(str::to_owned),
    };
    let inputs = [
        input("a@x.example", 0, Some("digest")),
        input("b@x.example", 1, None),
    ];
    store.record_tracking(&inputs).unwrap();
    store.flush_blocking().unwrap();
    assert!(store.suppression("a@x.example").unwrap().is_none());
    let left = store
        .topic_suppression("a@x.example", "digest")
        .unwrap()
        .unwrap();
    assert_eq!(left.reason, SuppressionReason::Unsubscribe);
    assert!(store.suppression("b@x.example").unwrap().is_some());
    assert_eq!(store.tracking_totals("c1").unwrap().unsubscribed, 2);
}

fn a_store_copy_keeps_topics(place: &Place) {
    let from = place.open();
    load_list(
        &from,
        "c1",
        ["a@x.example"].map(|a| (a.to_owned(), Assignment::Variant(0))),
    );
    let news = CampaignTopic {
        topic: "news".into(),
        name: "News".into(),
        unsubscribe: UnsubscribeScope::All,
    };
    from.set_campaign_topic("c1", &news).unwrap();
    from.suppress_topic("a@x.example", "news", &entry(1))
        .unwrap();
    from.suppress("g@x.example", &entry(2)).unwrap();
    from.flush_blocking().unwrap();
    let target = sled_place();
    let to = target.open();
    let report = crate::store::transfer::copy_store(&from, &to, None).unwrap();
    assert_eq!(report.suppressions, 2);
    assert_eq!(
        to.topic_suppression("a@x.example", "news").unwrap(),
        Some(entry(1))
    );
    assert!(to.suppression("a@x.example").unwrap().is_none());
    assert_eq!(to.campaign_topic("c1").unwrap(), Some(news));
}

suite!(
    topic_entries_are_apart_from_global_ones_and_kept,
    a_topic_unsubscribe_adds_a_topic_entry_only,
    a_store_copy_keeps_topics
);
