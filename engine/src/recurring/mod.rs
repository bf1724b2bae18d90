//! Recurring campaigns, edition by edition: each firing of a campaign's cron (in its time
//! zone) is one edition, a campaign of its own in the store (`<id>.<local date>`), so each
//! recipient gets each edition once however often Volley runs.
//!
//! The catch-up rule: when Volley runs (under `volley serve`, or a `volley send` from cron),
//! the latest firing is due if it is at most `catch_up` old (default 6 hours) and its edition
//! is not finished. An older missed firing is skipped, never sent late, and firings never pile
//! up: a process that was down for three weeks sends at most one edition when it comes back.
//!
//! Every function takes the moment it judges (`now`) from its caller: `volley serve` reads it
//! from its clock (`model::Clock`), so tests move a manual clock to the next Monday.

use chrono::{DateTime, Datelike, NaiveTime, TimeZone, Timelike, Utc};

use crate::config::ScheduleSettings;

/// How far back a missed firing is still looked for (to say it was skipped).
const LOOK_BACK_DAYS: i64 = 8;

/// One firing of a schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edition {
    /// The edition's campaign id in the store: `<campaign id>.<YYYY-MM-DD>` in the schedule's
    /// zone, with `T<HHMM>` added when the schedule fires more than once that day.
    pub id: String,
    /// When it fired.
    pub fired_at: DateTime<Utc>,
}

/// What a schedule asks for at a moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// This edition is due (its firing is at most `catch_up` old).
    Edition(Edition),
    /// The latest firing is older than `catch_up`: skipped. The next firing follows.
    Missed {
        /// The skipped edition.
        edition: Edition,
        /// The next firing, if the expression has one.
        next: Option<DateTime<Utc>>,
    },
    /// No firing in the look-back window; the next one follows.
    Waiting {
        /// The next firing, if the expression has one.
        next: Option<DateTime<Utc>>,
    },
}

/// The first firing strictly after `after`.
pub fn next_firing(schedule: &ScheduleSettings, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let local = after.with_timezone(&schedule.timezone);
    schedule
        .cron
        .find_next_occurrence(&local, false)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The latest firing at or before `now`, looking back a week and a day, or the catch-up time
/// when that is longer.
pub fn latest_firing(schedule: &ScheduleSettings, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let catch_up = chrono::Duration::from_std(schedule.catch_up).unwrap_or(chrono::Duration::MAX);
    let look_back = chrono::Duration::days(LOOK_BACK_DAYS).max(catch_up);
    let mut cursor = now
        .checked_sub_signed(look_back)
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let mut latest = None;
    while let Some(firing) = next_firing(schedule, cursor) {
        if firing > now {
            break;
        }
        latest = Some(firing);
        cursor = firing;
    }
    latest
}

/// What is due at `now` for the campaign `id` scheduled by `schedule`.
pub fn due(id: &str, schedule: &ScheduleSettings, now: DateTime<Utc>) -> Due {
    let next = next_firing(schedule, now);
    let Some(fired_at) = latest_firing(schedule, now) else {
        return Due::Waiting { next };
    };
    let edition = edition(id, schedule, fired_at);
    let age = (now - fired_at).to_std().unwrap_or_default();
    if age <= schedule.catch_up {
        Due::Edition(edition)
    } else {
        Due::Missed { edition, next }
    }
}

/// The edition of campaign `id` that fired at `fired_at`.
pub fn edition(id: &str, schedule: &ScheduleSettings, fired_at: DateTime<Utc>) -> Edition {
    let local = fired_at.with_timezone(&schedule.timezone);
    let date = format!(
        "{:04}-{:02}-{:02}",
        local.year(),
        local.month(),
        local.day()
    );
    let id = if fires_once_on_that_day(schedule, fired_at) {
        format!("{id}.{date}")
    } else {
        format!("{id}.{date}T{:02}{:02}", local.hour(), local.minute())
    };
    Edition { id, fired_at }
}

/// Whether `fired_at` is the only firing of its local day.
fn fires_once_on_that_day(schedule: &ScheduleSettings, fired_at: DateTime<Utc>) -> bool {
    let zone = schedule.timezone;
    let local = fired_at.with_timezone(&zone);
    let midnight = local.date_naive().and_time(NaiveTime::MIN);
    let Some(start) = zone.from_local_datetime(&midnight).earliest() else {
        return false;
    };
    let first = schedule
        .cron
        .find_next_occurrence(&start, true)
        .ok()
        .map(|t| t.with_timezone(&Utc));
    let after = next_firing(schedule, fired_at).map(|t| t.with_timezone(&zone).date_naive());
    first == Some(fired_at) && after != Some(local.date_naive())
}

/// Whether `campaign` (a store campaign id) is an edition of `id`.
pub fn is_edition_of(campaign: &str, id: &str) -> bool {
    campaign
        .strip_prefix(id)
        .and_then(|rest| rest.strip_prefix('.'))
        .is_some_and(|date| date.len() >= 10 && date.as_bytes()[..4].iter().all(u8::is_ascii_digit))
}

#[cfg(test)]
mod tests;
