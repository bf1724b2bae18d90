//! Engagement audiences against a real store (sled, or PostgreSQL with
//! `VOLLEY_TEST_STORE=postgres`): deliveries, opens and clicks written with times long past
//! (no clock to wait for), then the `[audience]` rules decide who of a new list is kept.

use std::path::Path;

use volley::campaign::{Audience, AudienceError, Keep, Rule};
use volley::config::{AudienceSettings, Engaged, InactiveSettings, ResendSettings};
use volley::model::{now_millis, Assignment, Millis, Outcome, ReplyRecord};
use volley::store::{
    MachineReason, OutcomePolicy, OutcomeUpdate, RecipientKey, Store, TrackInput, TrackKind,
    TrackingMeta,
};
use volley_testkit::campaign::{copy_dkim_keys, CampaignToml};

const DAY: Millis = 86_400_000;

/// A store (of the engine the tests run on) in `dir`, through a campaign file's `[store]`.
fn open_store(dir: &Path) -> Store {
    copy_dkim_keys(dir);
    std::fs::write(dir.join("body.txt"), "Hi\n").unwrap();
    std::fs::write(dir.join("list.csv"), "email\na@x.example\n").unwrap();
    let file = CampaignToml::new("fresh")
        .dkim("rsa", "rsa.pem")
        .write(&dir.join("campaign.toml"));
    let settings = volley::config::load_campaign_for_reading(&file, None).unwrap();
    Store::open_at(&settings.store).unwrap()
}

/// Loads campaign `id` with `locals` (at x.example), delivered at `at`; their keys.
fn delivered(store: &Store, id: &str, locals: &[&str], at: Millis) -> Vec<RecipientKey> {
    let mut loader = store.start_load(id, vec!["email".into()]).unwrap();
    for (i, local) in locals.iter().enumerate() {
        let address = format!("{local}@x.example");
        let line = i as u64 + 2;
        loader
            .add(
                &address,
                "x.example",
                vec![address.clone()],
                line,
                Assignment::Variant(0),
            )
            .unwrap();
    }
    loader.finish(0, 0, 0).unwrap();
    let keys: Vec<RecipientKey> = (0..locals.len() as u64)
        .map(|seq| RecipientKey {
            domain: "x.example".into(),
            seq,
        })
        .collect();
    let reply = ReplyRecord {
        code: Some(250),
        enhanced: Some("2.0.0".into()),
        text: "250 2.0.0 queued".into(),
        category: None,
        hard: false,
    };
    let updates: Vec<OutcomeUpdate> = keys
        .iter()
        .map(|key| OutcomeUpdate {
            key: key.clone(),
            outcome: Outcome::Delivered {
                reply: reply.clone(),
            },
            message_id: None,
        })
        .collect();
    store
        .record_outcomes(id, &OutcomePolicy::default(), &updates, at)
        .unwrap();
    keys
}

/// A tracked request of `local` (key `key`) in campaign `id` at `at`.
fn track(id: &str, key: &RecipientKey, local: &str, kind: TrackKind, at: Millis) -> TrackInput {
    TrackInput {
        campaign: id.into(),
        key: key.clone(),
        address: format!("{local}@x.example"),
        variant: 0,
        kind,
        link: (kind == TrackKind::Click).then_some(0),
        at,
        machine: None,
        topic: None,
    }
}

/// The history the tests read, as of `now`:
/// - `a`: delivered 3 times 200 days ago, opened `old3` as a person 195 days ago;
/// - `b`: the same deliveries, clicked `old3` as a person 10 days ago;
/// - `c`: the same deliveries, only machines opened and clicked `old3` (yesterday);
/// - `d`: delivered 3 times in the last 30 days (editions of `digest`), never engaged;
/// - `e`: delivered twice 200 days ago, never engaged.
fn history(store: &Store, now: Millis) {
    delivered(store, "old1", &["a", "b", "c", "e"], now - 200 * DAY);
    delivered(store, "old2", &["a", "b", "c", "e"], now - 198 * DAY);
    let k = delivered(store, "old3", &["a", "b", "c"], now - 196 * DAY);
    let meta = TrackingMeta {
        links: vec!["https://shop.example/".into()],
        key_fingerprint: "f".into(),
    };
    store.set_tracking_meta("old3", &meta).unwrap();
    let machine = |mut input: TrackInput, reason| {
        input.machine = Some(reason);
        input
    };
    store
        .record_tracking(&[
            track("old3", &k[0], "a", TrackKind::Open, now - 195 * DAY),
            track("old3", &k[1], "b", TrackKind::Click, now - 10 * DAY),
            machine(
                track("old3", &k[2], "c", TrackKind::Open, now - DAY),
                MachineReason::PrivacyProxy,
            ),
            machine(
                track("old3", &k[2], "c", TrackKind::Click, now - DAY),
                MachineReason::Scanner,
            ),
        ])
        .unwrap();
    for (n, days) in [(5, 30), (15, 20), (25, 10)] {
        let id = format!("digest.2026-11-{n:02}");
        delivered(store, &id, &["d"], now - days * DAY);
    }
}

/// Who of a..f each rule set keeps, as `(local, decision)`.
fn decisions(audience: &Audience) -> Vec<(&'static str, Keep)> {
    ["a", "b", "c", "d", "e", "f"]
        .into_iter()
        .map(|local| (local, audience.keep(&format!("{local}@X.example"))))
        .collect()
}

#[test]
fn rules_keep_and_leave_out_by_what_people_did_not_machines() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let now = now_millis();
    history(&store, now);
    let file = dir.path().join("campaign.toml");
    let build = |settings: AudienceSettings| Audience::build(&store, &settings, &file, now);
    use Keep::{Exclude, Keep as K};

    let inactive = build(AudienceSettings {
        inactive: Some(InactiveSettings {
            after: std::time::Duration::from_secs(180 * 86_400),
            min_delivered: 3,
        }),
        ..AudienceSettings::default()
    })
    .unwrap();
    let out = Exclude(Rule::Inactive);
    assert_eq!(
        decisions(&inactive),
        [
            ("a", out),
            ("b", K),
            ("c", out),
            ("d", K),
            ("e", K),
            ("f", K)
        ]
    );

    let resend = |not| ResendSettings {
        campaign: "old3".into(),
        not,
        after: std::time::Duration::from_secs(48 * 3600),
    };
    let out = Exclude(Rule::Resend);
    let not_opened = build(AudienceSettings {
        resend: Some(resend(Engaged::Opened)),
        ..AudienceSettings::default()
    })
    .unwrap();
    assert_eq!(
        decisions(&not_opened),
        [
            ("a", out),
            ("b", out),
            ("c", K),
            ("d", out),
            ("e", out),
            ("f", out)
        ]
    );
    let not_clicked = build(AudienceSettings {
        resend: Some(resend(Engaged::Clicked)),
        ..AudienceSettings::default()
    })
    .unwrap();
    assert_eq!(
        decisions(&not_clicked),
        [
            ("a", K),
            ("b", out),
            ("c", K),
            ("d", out),
            ("e", out),
            ("f", out)
        ]
    );

    let excluded = build(AudienceSettings {
        exclude_campaigns: vec!["digest".into(), "old2".into()],
        ..AudienceSettings::default()
    })
    .unwrap();
    let out = Exclude(Rule::ExcludeCampaigns);
    assert_eq!(
        decisions(&excluded),
        [
            ("a", out),
            ("b", out),
            ("c", out),
            ("d", out),
            ("e", out),
            ("f", K)
        ]
    );
}

#[test]
fn a_resend_waits_for_its_first_campaign_to_finish_and_for_after() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let now = now_millis();
    delivered(&store, "sent", &["a", "b"], now - 47 * 3600 * 1000);
    let mut loader = store.start_load("sending", vec!["email".into()]).unwrap();
    loader
        .add(
            "a@x.example",
            "x.example",
            vec!["a@x.example".into()],
            2,
            Assignment::Variant(0),
        )
        .unwrap();
    loader.finish(0, 0, 0).unwrap();
    let file = dir.path().join("campaign.toml");
    let resend = |campaign: &str| AudienceSettings {
        resend: Some(ResendSettings {
            campaign: campaign.into(),
            not: Engaged::Opened,
            after: std::time::Duration::from_secs(48 * 3600),
        }),
        ..AudienceSettings::default()
    };

    let early = Audience::build(&store, &resend("sent"), &file, now).unwrap_err();
    assert!(
        matches!(early, AudienceError::TooEarly { starts_at, .. } if starts_at == now + 3600 * 1000)
    );
    assert!(early.to_string().contains("may start at"), "{early}");
    let later = Audience::build(&store, &resend("sent"), &file, now + 3600 * 1000).unwrap();
    assert_eq!(later.keep("a@x.example"), Keep::Keep);

    let busy = Audience::build(&store, &resend("sending"), &file, now).unwrap_err();
    assert!(
        matches!(busy, AudienceError::StillSending { unfinished: 1, .. }),
        "{busy}"
    );
    let unknown = Audience::build(&store, &resend("nope"), &file, now).unwrap_err();
    let message = unknown.to_string();
    assert!(
        message.contains("audience.resend.campaign = \"nope\""),
        "{message}"
    );
}
