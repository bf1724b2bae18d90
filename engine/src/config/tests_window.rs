//! `[schedule] window`, `send_at`, `timezone_column` and `default_timezone` (issue 23): how
//! they combine with `cron`, and each mistake named by its key.

use super::*;

use super::tests::load_minimal;
use super::window::{SendTiming, WindowRule};

/// The minimal campaign with `section` appended (see [`load_minimal`]).
fn load(section: &str) -> Result<CampaignSettings, String> {
    load_minimal(section, "email,tz\nann@example.com,UTC\n")
}

#[test]
fn a_window_without_cron_is_a_one_off_campaign_sent_in_local_time() {
    let settings = load(
        "[schedule]\nwindow = \"Mon-Fri 09:00-17:00\"\ntimezone_column = \"tz\"\n\
         default_timezone = \"Europe/Berlin\"",
    )
    .unwrap();
    assert!(settings.schedule.is_none());
    let window = settings.window.unwrap();
    assert_eq!(
        window.timing,
        SendTiming::Window(WindowRule::parse("Mon-Fri 09:00-17:00").unwrap())
    );
    assert_eq!(window.column.as_deref(), Some("tz"));
    assert_eq!(window.default_zone, chrono_tz::Europe::Berlin);
}

#[test]
fn send_at_defaults_its_zone_to_the_schedule_timezone_and_combines_with_cron() {
    let settings = load(
        "[schedule]\ncron = \"0 6 * * MON\"\ntimezone = \"America/New_York\"\nsend_at = \"09:30\"",
    )
    .unwrap();
    assert!(settings.schedule.is_some());
    let window = settings.window.unwrap();
    assert_eq!(
        window.timing,
        SendTiming::SendAt(WindowRule::parse_at("09:30").unwrap())
    );
    assert_eq!(window.column, None);
    assert_eq!(window.default_zone, chrono_tz::America::New_York);
}

#[test]
fn bad_windows_name_their_key() {
    let cases = [
        (
            "[schedule]\ntimezone = \"UTC\"",
            "DIR/news.toml: schedule.cron, schedule.window or schedule.send_at is required: [schedule] sends editions (cron) or in local time (window, send_at)",
        ),
        (
            "[schedule]\nwindow = \"0900\"",
            "DIR/news.toml: schedule.window = \"0900\" is invalid: a span of local time like \"09:00-17:00\"",
        ),
        (
            "[schedule]\nwindow = \"Mon-Fr 09:00-17:00\"",
            "DIR/news.toml: schedule.window = \"Mon-Fr 09:00-17:00\" is invalid: \"Fr\" is not a day: write Mon, Tue, Wed, Thu, Fri, Sat or Sun",
        ),
        (
            "[schedule]\nsend_at = \"9:30am\"",
            "DIR/news.toml: schedule.send_at = \"9:30am\" is invalid: \"9:30am\" is not a time of day: write it as HH:MM, like 09:00",
        ),
        (
            "[schedule]\nwindow = \"09:00-17:00\"\nsend_at = \"09:30\"",
            "DIR/news.toml: schedule.window and schedule.send_at are both set; use one of them",
        ),
        (
            "[schedule]\nwindow = \"09:00-17:00\"\ndefault_timezone = \"Europe/Berln\"",
            "DIR/news.toml: schedule.default_timezone = \"Europe/Berln\" is invalid: an IANA time zone name, like \"Europe/Berlin\" or \"UTC\"",
        ),
        (
            "[schedule]\ncron = \"0 9 * * MON\"\ntimezone_column = \"tz\"",
            "DIR/news.toml: schedule.timezone_column does not apply here: it goes with schedule.window or schedule.send_at",
        ),
    ];
    for (section, want) in cases {
        assert_eq!(load(section).unwrap_err(), want, "{section}");
    }
}
