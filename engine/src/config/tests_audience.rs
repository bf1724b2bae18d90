//! `[audience]`: the three rules load with their defaults, and every bad value names the
//! file and its key.

use super::*;
use std::time::Duration;

use super::tests::MINIMAL_CAMPAIGN as CAMPAIGN;

/// Loads the minimal campaign (id `t1`) plus `extra`; errors with the folder shown as `DIR`.
fn load(extra: &str) -> Result<CampaignSettings, String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("body.txt"), "Hello\n").unwrap();
    std::fs::write(dir.path().join("list.csv"), "email\nann@example.com\n").unwrap();
    let file = dir.path().join("news.toml");
    std::fs::write(&file, format!("{CAMPAIGN}{extra}")).unwrap();
    load_campaign(&file, None).map_err(|e| {
        e.to_string()
            .replace(&dir.path().display().to_string(), "DIR")
    })
}

#[test]
fn no_audience_section_leaves_nobody_out() {
    assert!(load("").unwrap().audience.is_empty());
    assert!(load("\n[audience]\n").unwrap().audience.is_empty());
}

#[test]
fn audience_rules_load_with_their_defaults() {
    let settings = load(
        "\n[audience]\nexclude_campaigns = [\"may-news\", \"digest\"]\n\
         resend = { campaign = \"may-news\", not = \"clicked\", after = \"48h\" }\n\
         inactive_after = \"180d\"\n",
    )
    .unwrap();
    let audience = settings.audience;
    assert_eq!(audience.exclude_campaigns, ["may-news", "digest"]);
    assert_eq!(
        audience.resend,
        Some(ResendSettings {
            campaign: "may-news".into(),
            not: Engaged::Clicked,
            after: Duration::from_secs(48 * 3600),
        })
    );
    assert_eq!(
        audience.inactive,
        Some(InactiveSettings {
            after: Duration::from_secs(180 * 86_400),
            min_delivered: DEFAULT_INACTIVE_MIN_DELIVERED,
        })
    );
    let resend = load("\n[audience]\nresend = { campaign = \"a\", not = \"opened\" }\n").unwrap();
    let resend = resend.audience.resend.unwrap();
    assert_eq!(
        (resend.not, resend.after),
        (Engaged::Opened, Duration::ZERO)
    );
    let five = load("\n[audience]\ninactive_after = \"90d\"\ninactive_min_delivered = 5\n");
    assert_eq!(five.unwrap().audience.inactive.unwrap().min_delivered, 5);
}

#[test]
fn bad_audience_values_name_their_key() {
    for (extra, key) in [
        (
            "exclude_campaigns = [\"t1\"]",
            "audience.exclude_campaigns[0]",
        ),
        (
            "exclude_campaigns = [\"ok\", \"no way\"]",
            "audience.exclude_campaigns[1]",
        ),
        (
            "resend = { campaign = \"t1\", not = \"opened\" }",
            "audience.resend.campaign",
        ),
        (
            "resend = { campaign = \"a\", not = \"read\" }",
            "audience.resend.not",
        ),
        (
            "resend = { campaign = \"a\", not = \"opened\", after = \"soon\" }",
            "audience.resend.after",
        ),
        ("resend = { campaign = \"a\" }", "not"),
        (
            "resend = { campaign = \"a\", not = \"opened\", wait = \"1h\" }",
            "wait",
        ),
        ("inactive_after = \"never\"", "audience.inactive_after"),
        (
            "inactive_after = \"1d\"\ninactive_min_delivered = 0",
            "audience.inactive_min_delivered",
        ),
        ("inactive_min_delivered = 3", "audience.inactive_after"),
        ("sunset = \"1y\"", "sunset"),
    ] {
        let err = load(&format!("\n[audience]\n{extra}\n")).unwrap_err();
        assert!(err.starts_with("DIR/news.toml"), "{key}: {err}");
        assert!(err.contains(key), "{key}: {err}");
    }
}
