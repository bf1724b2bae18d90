//! Local-time sending windows (`[schedule] window` and `send_at`): whether a recipient may be
//! sent to now in their own time zone and, when not, the instant their window next opens.
//! Wall-clock arithmetic in an IANA zone, daylight-saving changes included: a window edge
//! that falls in the hour skipped in spring opens at the first minute that exists after it;
//! one in the hour repeated in autumn opens at its first occurrence.

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// Day names as written in a rule, Monday first.
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
/// How far ahead the next opening is looked for (a rule has at least one day a week).
const LOOK_AHEAD_DAYS: i64 = 9;

/// Days of the week and a span of local wall-clock time, like `Mon-Fri 09:00-17:00`. The
/// span may cross midnight (`22:00-06:00`): it then belongs to the day it starts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowRule {
    /// Allowed days, Monday first.
    days: [bool; 7],
    /// Opening time (inclusive).
    start: NaiveTime,
    /// Closing time (exclusive); earlier than `start` when the span crosses midnight.
    end: NaiveTime,
}

impl WindowRule {
    /// Parses `[DAYS ]HH:MM-HH:MM`, where DAYS is `Mon-Fri`, `Sat,Sun`, `Mon` (three-letter
    /// English names, any case; a range may wrap, `Fri-Mon`). No days: every day. The reason
    /// for a refusal, in words, on error.
    pub fn parse(text: &str) -> Result<WindowRule, String> {
        let (days, span) = split_days(text)?;
        let (start, end) = span
            .split_once('-')
            .ok_or_else(|| "a span of local time like \"09:00-17:00\"".to_owned())?;
        let (start, end) = (parse_time(start)?, parse_time(end)?);
        if start == end {
            return Err("the window opens and closes at the same time".to_owned());
        }
        Ok(WindowRule { days, start, end })
    }

    /// Parses `[DAYS ]HH:MM` for `send_at`: the minute starting at that time.
    pub fn parse_at(text: &str) -> Result<WindowRule, String> {
        let (days, time) = split_days(text)?;
        let start = parse_time(time)?;
        let end = start + Duration::minutes(1);
        Ok(WindowRule { days, start, end })
    }

    fn day_allowed(&self, date: NaiveDate) -> bool {
        self.days[date.weekday().num_days_from_monday() as usize]
    }

    /// True when `at` falls inside the window in `zone`.
    pub fn contains(&self, at: DateTime<Utc>, zone: Tz) -> bool {
        let local = at.with_timezone(&zone);
        let (date, time) = (local.date_naive(), local.time());
        if self.start < self.end {
            return self.day_allowed(date) && time >= self.start && time < self.end;
        }
        // Across midnight: the evening part belongs to today, the morning part to yesterday.
        (time >= self.start && self.day_allowed(date))
            || (time < self.end && date.pred_opt().is_some_and(|d| self.day_allowed(d)))
    }

    /// `at` when the window is open then, else the instant it next opens in `zone`
    /// (`None` only past the calendar's end).
    pub fn next_open(&self, at: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
        if self.contains(at, zone) {
            return Some(at);
        }
        let today = at.with_timezone(&zone).date_naive();
        (-1..=LOOK_AHEAD_DAYS)
            .filter_map(|offset| today.checked_add_signed(Duration::days(offset)))
            .filter(|date| self.day_allowed(*date))
            .filter_map(|date| first_instant(zone, date, self.start))
            .find(|open| *open > at)
    }
}

/// What a campaign's `[schedule]` says about when each recipient is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendTiming {
    /// Only while the window is open in the recipient's zone (retries included).
    Window(WindowRule),
    /// At the rule's minute in the recipient's zone (the next occurrence after the
    /// recipient is first taken up); retries go when due.
    SendAt(WindowRule),
}

/// The sending window of a campaign: its timing, the CSV column naming each recipient's zone
/// and the zone for rows without one (or with a name that is not an IANA zone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendWindow {
    /// When recipients are sent, in their own time.
    pub timing: SendTiming,
    /// The CSV column holding an IANA zone name; `None`: every recipient is in the default.
    pub column: Option<String>,
    /// The zone of rows with an empty or unknown zone.
    pub default_zone: Tz,
    /// The rule as written (`window` or `send_at` value), for messages.
    pub text: String,
}

/// The zone a recipient is in: the column's value when it names a zone, else the default.
/// The flag says the value was not empty and named no zone.
pub fn zone_of(value: &str, default: Tz) -> (Tz, bool) {
    let value = value.trim();
    if value.is_empty() {
        return (default, false);
    }
    match value.parse::<Tz>() {
        Ok(zone) => (zone, false),
        Err(_) => (default, true),
    }
}

impl SendWindow {
    /// When a recipient in `zone` may be sent, seen at `now` (epoch milliseconds): `None`
    /// for now, else the instant (epoch milliseconds) to wait for. `first` says the recipient
    /// was never taken up before (still pending): only then does `send_at` hold it back.
    pub fn wait_until(&self, first: bool, zone: Tz, now: u64) -> Option<u64> {
        let at = DateTime::<Utc>::from_timestamp_millis(i64::try_from(now).unwrap_or(i64::MAX))
            .unwrap_or_default();
        let next = match self.timing {
            SendTiming::Window(rule) => rule.next_open(at, zone),
            SendTiming::SendAt(_) if !first => return None,
            SendTiming::SendAt(rule) => rule.next_open(at, zone),
        };
        let next = next.map_or(now.saturating_add(86_400_000), |t| {
            u64::try_from(t.timestamp_millis()).unwrap_or(0)
        });
        (next > now).then_some(next)
    }
}

/// The first instant at or after wall-clock `time` on `date` in `zone`: in a spring-forward
/// gap, the first minute that exists after it; in an autumn fold, its first occurrence.
fn first_instant(zone: Tz, date: NaiveDate, time: NaiveTime) -> Option<DateTime<Utc>> {
    let naive = date.and_time(time);
    for minutes in 0..=240 {
        let candidate = naive + Duration::minutes(minutes);
        match zone.from_local_datetime(&candidate) {
            LocalResult::Single(t) => return Some(t.with_timezone(&Utc)),
            LocalResult::Ambiguous(first, _) => return Some(first.with_timezone(&Utc)),
            LocalResult::None => {}
        }
    }
    None
}

fn split_days(text: &str) -> Result<([bool; 7], &str), String> {
    let text = text.trim();
    match text.split_once(char::is_whitespace) {
        None => Ok(([true; 7], text)),
        Some((days, rest)) => Ok((parse_days(days)?, rest.trim())),
    }
}

fn parse_days(text: &str) -> Result<[bool; 7], String> {
    let mut days = [false; 7];
    for part in text.split(',') {
        let (from, to) = part.split_once('-').unwrap_or((part, part));
        let (from, to) = (day_index(from)?, day_index(to)?);
        let mut day = from;
        loop {
            days[day] = true;
            if day == to {
                break;
            }
            day = (day + 1) % 7;
        }
    }
    Ok(days)
}

fn day_index(name: &str) -> Result<usize, String> {
    let lower = name.trim().to_ascii_lowercase();
    DAYS.iter().position(|d| *d == lower).ok_or_else(|| {
        format!("\"{name}\" is not a day: write Mon, Tue, Wed, Thu, Fri, Sat or Sun")
    })
}

fn parse_time(text: &str) -> Result<NaiveTime, String> {
    let text = text.trim();
    let valid = text.len() == 5 && text.as_bytes()[2] == b':';
    valid
        .then(|| NaiveTime::parse_from_str(text, "%H:%M").ok())
        .flatten()
        .ok_or_else(|| format!("\"{text}\" is not a time of day: write it as HH:MM, like 09:00"))
}

#[cfg(test)]
#[path = "window_tests.rs"]
mod tests;
