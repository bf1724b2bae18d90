use super::*;
use std::time::Duration;

fn weekly(zone: &str) -> ScheduleSettings {
    schedule("0 9 * * MON", zone, Duration::from_secs(6 * 3600))
}

fn schedule(cron: &str, zone: &str, catch_up: Duration) -> ScheduleSettings {
    ScheduleSettings {
        cron: croner::Cron::new(cron).parse().unwrap(),
        cron_text: cron.to_owned(),
        timezone: zone.parse().unwrap(),
        catch_up,
    }
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

#[test]
fn a_weekly_firing_is_read_in_its_zone() {
    let berlin = weekly("Europe/Berlin");
    // Monday 2026-12-07 09:00 in Berlin is 08:00 UTC (winter time).
    assert_eq!(
        next_firing(&berlin, at("2026-12-02T12:00:00Z")),
        Some(at("2026-12-07T08:00:00Z"))
    );
    // Summer time: 07:00 UTC.
    assert_eq!(
        next_firing(&berlin, at("2026-06-02T12:00:00Z")),
        Some(at("2026-06-08T07:00:00Z"))
    );
}

#[test]
fn the_latest_firing_is_due_within_the_catch_up_window() {
    let berlin = weekly("Europe/Berlin");
    let monday = at("2026-12-07T08:00:00Z");
    let expected = Edition {
        id: "news.2026-12-07".to_owned(),
        fired_at: monday,
    };
    assert_eq!(
        due("news", &berlin, at("2026-12-07T08:00:00Z")),
        Due::Edition(expected.clone())
    );
    assert_eq!(
        due("news", &berlin, at("2026-12-07T13:59:00Z")),
        Due::Edition(expected.clone()),
        "5 h 59 late: still sent"
    );
    assert_eq!(
        due("news", &berlin, at("2026-12-07T14:01:00Z")),
        Due::Missed {
            edition: expected,
            next: Some(at("2026-12-14T08:00:00Z"))
        },
        "past the window: skipped, the next one is named"
    );
    assert_eq!(
        due("news", &berlin, at("2026-12-07T07:59:00Z")),
        Due::Missed {
            edition: Edition {
                id: "news.2026-11-30".to_owned(),
                fired_at: at("2026-11-30T08:00:00Z"),
            },
            next: Some(monday)
        }
    );
}

#[test]
fn three_weeks_down_sends_one_edition_at_most() {
    let hourly_catch_up = schedule("0 9 * * MON", "UTC", Duration::from_secs(30 * 86_400));
    let due = due("news", &hourly_catch_up, at("2026-12-28T10:00:00Z"));
    assert_eq!(
        due,
        Due::Edition(Edition {
            id: "news.2026-12-28".to_owned(),
            fired_at: at("2026-12-28T09:00:00Z"),
        }),
        "only the latest firing, never the ones before it"
    );
}

#[test]
fn several_firings_a_day_get_their_time_in_the_id() {
    let twice = schedule("0 9,17 * * *", "UTC", Duration::from_secs(3600));
    assert_eq!(
        edition("news", &twice, at("2026-12-07T09:00:00Z")).id,
        "news.2026-12-07T0900"
    );
    assert_eq!(
        edition("news", &twice, at("2026-12-07T17:00:00Z")).id,
        "news.2026-12-07T1700"
    );
    let daily = schedule("30 6 * * *", "America/New_York", Duration::from_secs(3600));
    assert_eq!(
        edition("news", &daily, at("2026-12-07T11:30:00Z")).id,
        "news.2026-12-07"
    );
}

#[test]
fn editions_are_recognised() {
    assert!(is_edition_of("news.2026-12-07", "news"));
    assert!(is_edition_of("news.2026-12-07T0900", "news"));
    assert!(!is_edition_of("news", "news"));
    assert!(!is_edition_of("newsletter.2026-12-07", "news"));
    assert!(!is_edition_of("news.draft", "news"));
}
