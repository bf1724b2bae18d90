//! The circuit breaker on policy blocks (`[shaping.*] block_*`) and the campaign-wide stop
//! (`[bounces] max_bounce_rate`, `max_complaint_rate`, `rate_min_sample`), issue 23: their
//! defaults, inheritance, and each mistake named by its key.

use std::time::Duration;

use super::*;

use super::tests::load_minimal;

/// The minimal campaign with `section` appended (see [`load_minimal`]).
fn load(section: &str) -> Result<CampaignSettings, String> {
    load_minimal(section, "email\nann@example.com\n")
}

#[test]
fn the_breaker_is_on_by_default_and_its_keys_inherit_from_the_default_rule() {
    let settings = load("").unwrap();
    let rule = &settings.shaping.default;
    assert!(rule.block_breaker);
    assert_eq!(rule.block_threshold, 5);
    assert_eq!(rule.block_window, Duration::from_secs(600));
    assert_eq!(rule.block_pause, Duration::from_secs(3_600));
    assert_eq!(rule.block_max_pause, Duration::from_secs(8 * 3_600));
    assert!(settings.bounces.stop.is_off());

    let settings = load(
        "[shaping.default]\nblock_threshold = 3\nblock_pause = \"30m\"\n\n\
         [shaping.\"gmail.com\"]\nblock_window = \"5m\"\n\n\
         [shaping.\"example.net\"]\nblock_breaker = false\n",
    )
    .unwrap();
    let gmail = &settings
        .shaping
        .rules
        .iter()
        .find(|(n, _)| n == "gmail.com")
        .unwrap()
        .1;
    assert_eq!(gmail.block_threshold, 3, "inherits the default");
    assert_eq!(gmail.block_pause, Duration::from_secs(1_800));
    assert_eq!(gmail.block_window, Duration::from_secs(300));
    let off = &settings
        .shaping
        .rules
        .iter()
        .find(|(n, _)| n == "example.net")
        .unwrap()
        .1;
    assert!(!off.block_breaker);
}

#[test]
fn breaker_mistakes_name_their_key() {
    let error = load("[shaping.default]\nblock_threshold = 0\n").unwrap_err();
    assert!(error.contains("shaping.default.block_threshold"), "{error}");
    let error = load("[shaping.\"gmail.com\"]\nblock_pause = \"soon\"\n").unwrap_err();
    assert!(
        error.contains("shaping.\"gmail.com\".block_pause"),
        "{error}"
    );
    let error = load("[shaping.global]\nblock_threshold = 3\n").unwrap_err();
    assert!(error.contains("shaping.global.block_threshold"), "{error}");
}

#[test]
fn stop_limits_are_shares_written_as_percentages_or_fractions() {
    let settings = load(
        "[bounces]\nmax_bounce_rate = \"5%\"\nmax_complaint_rate = 0.003\nrate_min_sample = 200\n",
    )
    .unwrap();
    let stop = settings.bounces.stop;
    assert_eq!(stop.max_bounce_rate, Some(0.05));
    assert_eq!(stop.max_complaint_rate, Some(0.003));
    assert_eq!(stop.min_sample, 200);
    for (value, key) in [
        ("\"150%\"", "bounces.max_bounce_rate"),
        ("\"five\"", "bounces.max_bounce_rate"),
        ("0", "bounces.max_bounce_rate"),
    ] {
        let error = load(&format!("[bounces]\nmax_bounce_rate = {value}\n")).unwrap_err();
        assert!(error.contains(key), "{value}: {error}");
    }
    let error = load("[bounces]\nrate_min_sample = 0\n").unwrap_err();
    assert!(error.contains("bounces.rate_min_sample"), "{error}");
}
