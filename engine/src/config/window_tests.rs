use super::*;
use chrono_tz::{America, Asia, Europe};

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn rule(text: &str) -> WindowRule {
    WindowRule::parse(text).unwrap()
}

#[test]
fn berlin_window_moves_an_hour_earlier_in_utc_over_the_spring_change() {
    // 2027-03-28 is the last Sunday of March: Berlin goes from +01:00 to +02:00 at 02:00.
    let office = rule("09:00-17:00");
    let saturday = office.next_open(utc("2027-03-27T05:00:00Z"), Europe::Berlin);
    assert_eq!(saturday, Some(utc("2027-03-27T08:00:00Z")));
    let sunday = office.next_open(utc("2027-03-27T17:00:00Z"), Europe::Berlin);
    assert_eq!(sunday, Some(utc("2027-03-28T07:00:00Z")));
    assert!(office.contains(utc("2027-03-28T07:00:00Z"), Europe::Berlin));
    assert!(!office.contains(utc("2027-03-28T06:59:59Z"), Europe::Berlin));
    assert!(!office.contains(utc("2027-03-28T15:00:00Z"), Europe::Berlin));
}

#[test]
fn a_window_opening_in_the_skipped_hour_opens_when_the_clock_lands() {
    // 02:30 does not exist in Berlin on 2027-03-28: the clock jumps from 02:00 to 03:00.
    let night = rule("02:30-04:00");
    let open = night.next_open(utc("2027-03-27T22:00:00Z"), Europe::Berlin);
    assert_eq!(open, Some(utc("2027-03-28T01:00:00Z")));
}

#[test]
fn a_window_opening_in_the_repeated_hour_opens_at_its_first_occurrence() {
    // 02:30 happens twice in Berlin on 2027-10-31 (at +02:00, then at +01:00).
    let night = rule("02:30-02:45");
    let open = night.next_open(utc("2027-10-30T22:00:00Z"), Europe::Berlin);
    assert_eq!(open, Some(utc("2027-10-31T00:30:00Z")));
    // Both occurrences are inside by the wall clock.
    assert!(night.contains(utc("2027-10-31T01:35:00Z"), Europe::Berlin));
}

#[test]
fn new_york_and_kolkata_windows() {
    let office = rule("09:00-17:00");
    // New York: -05:00 until 2027-03-14 02:00, then -04:00.
    let before = office.next_open(utc("2027-03-13T00:00:00Z"), America::New_York);
    assert_eq!(before, Some(utc("2027-03-13T14:00:00Z")));
    let after = office.next_open(utc("2027-03-13T23:00:00Z"), America::New_York);
    assert_eq!(after, Some(utc("2027-03-14T13:00:00Z")));
    // Kolkata is +05:30 all year.
    let kolkata = office.next_open(utc("2027-03-28T00:00:00Z"), Asia::Kolkata);
    assert_eq!(kolkata, Some(utc("2027-03-28T03:30:00Z")));
    assert!(office.contains(utc("2027-03-28T11:29:00Z"), Asia::Kolkata));
    assert!(!office.contains(utc("2027-03-28T11:30:00Z"), Asia::Kolkata));
}

#[test]
fn a_window_across_midnight_belongs_to_the_day_it_opens() {
    let night = rule("Fri 22:00-06:00");
    // Friday 2027-03-26 23:00 and Saturday 05:00 (UTC is the zone) are inside.
    assert!(night.contains(utc("2027-03-26T23:00:00Z"), chrono_tz::UTC));
    assert!(night.contains(utc("2027-03-27T05:59:00Z"), chrono_tz::UTC));
    assert!(!night.contains(utc("2027-03-27T06:00:00Z"), chrono_tz::UTC));
    // Friday morning belongs to Thursday's night, which is not allowed.
    assert!(!night.contains(utc("2027-03-26T05:00:00Z"), chrono_tz::UTC));
    let next = night.next_open(utc("2027-03-27T12:00:00Z"), chrono_tz::UTC);
    assert_eq!(next, Some(utc("2027-04-02T22:00:00Z")));
}

#[test]
fn weekdays_skip_the_weekend() {
    let office = rule("Mon-Fri 09:00-17:00");
    let next = office.next_open(utc("2027-03-26T18:00:00Z"), chrono_tz::UTC);
    assert_eq!(next, Some(utc("2027-03-29T09:00:00Z")));
    let wrapped = rule("sat,Sun 10:00-12:00");
    let next = wrapped.next_open(utc("2027-03-29T00:00:00Z"), chrono_tz::UTC);
    assert_eq!(next, Some(utc("2027-04-03T10:00:00Z")));
}

#[test]
fn bad_rules_say_why() {
    let cases = [
        ("0900", "a span of local time like \"09:00-17:00\""),
        (
            "09:00-25:00",
            "\"25:00\" is not a time of day: write it as HH:MM, like 09:00",
        ),
        (
            "09:00-09:00",
            "the window opens and closes at the same time",
        ),
        (
            "Mo-Fr 09:00-17:00",
            "\"Mo\" is not a day: write Mon, Tue, Wed, Thu, Fri, Sat or Sun",
        ),
    ];
    for (text, reason) in cases {
        assert_eq!(WindowRule::parse(text).unwrap_err(), reason, "{text}");
    }
    assert!(WindowRule::parse_at("9:30").is_err());
}

#[test]
fn send_at_waits_for_the_next_occurrence_once_then_lets_retries_go() {
    let window = SendWindow {
        timing: SendTiming::SendAt(WindowRule::parse_at("09:30").unwrap()),
        column: Some("tz".into()),
        default_zone: Europe::Berlin,
        text: "09:30".into(),
    };
    let millis = |t: &str| u64::try_from(utc(t).timestamp_millis()).unwrap();
    // 10:00 in Berlin (+01:00): tomorrow's 09:30, now at +02:00.
    let now = millis("2027-03-27T09:00:00Z");
    let due = window.wait_until(true, Europe::Berlin, now);
    assert_eq!(due, Some(millis("2027-03-28T07:30:00Z")));
    assert_eq!(
        window.wait_until(true, Europe::Berlin, millis("2027-03-28T07:30:20Z")),
        None
    );
    assert_eq!(window.wait_until(false, Europe::Berlin, now), None);
}

#[test]
fn zones_from_the_column_fall_back_to_the_default() {
    assert_eq!(
        zone_of(" Asia/Kolkata ", Europe::Berlin),
        (Asia::Kolkata, false)
    );
    assert_eq!(zone_of("", Europe::Berlin), (Europe::Berlin, false));
    assert_eq!(
        zone_of("Mars/Olympus", Europe::Berlin),
        (Europe::Berlin, true)
    );
}

/// Python's `zoneinfo` (not chrono-tz) says when 09:00 and 17:00 local fall, around the
/// spring and autumn changes in three zones; the window must open and close at those instants.
#[test]
fn window_edges_agree_with_python_zoneinfo() {
    let script = r#"
import datetime as d, zoneinfo as z
for zone in ["Europe/Berlin", "America/New_York", "Asia/Kolkata"]:
    for day in ["2027-03-13", "2027-03-14", "2027-03-27", "2027-03-28", "2027-10-31", "2027-11-07"]:
        for hour in [9, 17]:
            local = d.datetime.fromisoformat(day).replace(hour=hour, tzinfo=z.ZoneInfo(zone))
            print(zone, day, hour, local.astimezone(d.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
"#;
    let output = std::process::Command::new("python3")
        .args(["-c", script])
        .output()
        .expect("python3 (with zoneinfo) must be installed for this test");
    assert!(output.status.success(), "{output:?}");
    let office = rule("09:00-17:00");
    let lines = String::from_utf8(output.stdout).unwrap();
    assert_eq!(lines.lines().count(), 36);
    for line in lines.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        let zone: Tz = parts[0].parse().unwrap();
        let instant = utc(parts[3]);
        if parts[2] == "9" {
            let from = instant - Duration::hours(6);
            assert_eq!(office.next_open(from, zone), Some(instant), "{line}");
            assert!(
                !office.contains(instant - Duration::seconds(1), zone),
                "{line}"
            );
        } else {
            assert!(
                office.contains(instant - Duration::seconds(1), zone),
                "{line}"
            );
            assert!(!office.contains(instant, zone), "{line}");
        }
    }
}
