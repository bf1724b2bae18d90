//! The ceiling arithmetic: a day's ceiling from the day before, and days on the clock.
//!
//! The rules, first match wins, applied to the provider's most recent day with a record
//! (days on which nothing was sent change nothing):
//!
//! 1. any policy block (`blocked`, `policy`, `spam` replies) → halve;
//! 2. complaints above `max_complaint_rate` of what was delivered → halve;
//! 3. hard bounces above `max_bounce_rate` of what was sent → halve;
//! 4. any throttling → hold;
//! 5. less than half of the ceiling used → hold (a quiet day proves nothing);
//! 6. otherwise (a clean day) → grow by `growth` (rounded up, by at least one); reaching
//!    `max` ends the warm-up for that provider (no ceiling any more).
//!
//! A halved ceiling never falls below `min`.

use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;

use crate::config::{WarmupProvider, WarmupSettings};
use crate::model::Millis;
use crate::store::WarmupDay;

/// How a day's ceiling came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The first day: `start`.
    Start,
    /// Grown after a clean day.
    Grew,
    /// Held, for this reason (`throttling`, `ceiling not used`).
    Held(&'static str),
    /// Halved, for this reason (`policy blocks`, `complaints`, `bounces`).
    Halved(&'static str),
    /// `max` reached: no ceiling any more.
    Done,
}

impl Change {
    /// The words for status displays.
    pub fn describe(self) -> String {
        match self {
            Change::Start => "first day".to_owned(),
            Change::Grew => "grown after a clean day".to_owned(),
            Change::Held(why) => format!("held ({why})"),
            Change::Halved(why) => format!("halved ({why})"),
            Change::Done => "warm-up done (max reached)".to_owned(),
        }
    }
}

/// A day's ceiling: `None` once the warm-up of the provider is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ceiling {
    /// Messages the provider may get that day; `None`: no limit.
    pub limit: Option<u32>,
    /// How it came about.
    pub change: Change,
}

/// The ceiling of the day after `previous` (see the module's rules).
pub fn next_ceiling(
    settings: &WarmupSettings,
    provider: &WarmupProvider,
    previous: &WarmupDay,
) -> Ceiling {
    let current = if previous.ceiling == 0 {
        provider.start
    } else {
        previous.ceiling
    }
    .max(settings.min);
    let halve = |why| Ceiling {
        limit: Some((current / 2).max(settings.min)),
        change: Change::Halved(why),
    };
    let hold = |why| Ceiling {
        limit: Some(current),
        change: Change::Held(why),
    };
    let p = previous;
    if p.blocked > 0 {
        return halve("policy blocks");
    }
    if p.complaints > 0
        && f64::from(p.complaints) > settings.max_complaint_rate * f64::from(p.delivered)
    {
        return halve("complaints");
    }
    if p.bounced > 0 && f64::from(p.bounced) > settings.max_bounce_rate * f64::from(p.sent) {
        return halve("bounces");
    }
    if p.throttled > 0 {
        return hold("throttling");
    }
    if u64::from(p.sent) * 2 < u64::from(current) {
        return hold("less than half of the ceiling used");
    }
    let grown = (f64::from(current) * settings.growth).ceil();
    let grown = if grown >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        (grown as u32).max(current.saturating_add(1))
    };
    match provider.max {
        Some(max) if grown >= max => Ceiling {
            limit: None,
            change: Change::Done,
        },
        _ => Ceiling {
            limit: Some(grown),
            change: Change::Grew,
        },
    }
}

/// One provider's warm-up on a day, for the gate and for status displays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderPlan {
    /// The provider.
    pub provider: String,
    /// The day's ceiling.
    pub ceiling: Ceiling,
    /// Sent against it so far.
    pub sent: u32,
    /// Held back at the end of the day's last run.
    pub held: u32,
}

/// Each provider's plan for `day`, from the stored `days` of the settings' key (any order):
/// today's record keeps the ceiling it was given; else it follows from the latest earlier
/// day; else it is the provider's `start`.
pub fn plan(settings: &WarmupSettings, days: &[WarmupDay], day: i64) -> Vec<ProviderPlan> {
    settings
        .providers
        .iter()
        .map(|provider| {
            let mine = days.iter().filter(|d| d.provider == provider.name);
            let todays = mine.clone().find(|d| d.day == day);
            // The last day sent on; complaints counted on later days without sending (they
            // arrive late) are added to it.
            let before = mine
                .clone()
                .filter(|d| d.day < day && d.ceiling > 0)
                .max_by_key(|d| d.day)
                .map(|base| {
                    let late: u32 = mine
                        .clone()
                        .filter(|d| d.day > base.day && d.day < day && d.ceiling == 0)
                        .map(|d| d.complaints)
                        .sum();
                    WarmupDay {
                        complaints: base.complaints.saturating_add(late),
                        ..base.clone()
                    }
                });
            let computed = match &before {
                Some(previous) => next_ceiling(settings, provider, previous),
                None => Ceiling {
                    limit: Some(provider.start),
                    change: Change::Start,
                },
            };
            let ceiling = match todays {
                Some(t) if t.ceiling > 0 => Ceiling {
                    limit: Some(t.ceiling),
                    change: computed.change,
                },
                _ => computed,
            };
            ProviderPlan {
                provider: provider.name.clone(),
                ceiling,
                sent: todays.map_or(0, |t| t.sent),
                held: todays.map_or(0, |t| t.held),
            }
        })
        .collect()
}

/// The day `now` falls on in `zone`: days since 1970-01-01 there.
pub fn today(zone: Tz, now: Millis) -> i64 {
    let at = chrono::DateTime::from_timestamp_millis(i64::try_from(now).unwrap_or(i64::MAX))
        .unwrap_or_default();
    let local = at.with_timezone(&zone).date_naive();
    local.signed_duration_since(NaiveDate::default()).num_days()
}

/// When `day` begins in `zone` (epoch milliseconds).
pub fn day_start(zone: Tz, day: i64) -> Millis {
    let date = NaiveDate::default() + chrono::Duration::days(day);
    let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    let at = match zone.from_local_datetime(&midnight) {
        chrono::LocalResult::Single(at) | chrono::LocalResult::Ambiguous(at, _) => {
            at.timestamp_millis()
        }
        // Midnight skipped by a clock change: the day begins an hour later.
        chrono::LocalResult::None => midnight.and_utc().timestamp_millis() + 3_600_000,
    };
    u64::try_from(at).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(max: Option<u32>) -> (WarmupSettings, WarmupProvider) {
        let provider = WarmupProvider {
            name: "gmail".into(),
            mx: vec![],
            domains: vec![],
            start: 50,
            max,
        };
        let settings = WarmupSettings {
            key: "example.com".into(),
            growth: 1.5,
            min: 10,
            max_bounce_rate: 0.05,
            max_complaint_rate: 0.001,
            timezone: Tz::UTC,
            providers: vec![provider.clone()],
        };
        (settings, provider)
    }

    fn day(ceiling: u32, sent: u32) -> WarmupDay {
        WarmupDay {
            key: "example.com".into(),
            provider: "gmail".into(),
            day: 20_000,
            ceiling,
            sent,
            delivered: sent,
            ..WarmupDay::default()
        }
    }

    #[test]
    fn the_ceiling_grows_holds_halves_and_stops() {
        let (s, p) = settings(Some(1_000));
        let with = |f: &dyn Fn(&mut WarmupDay)| {
            let mut d = day(100, 100);
            f(&mut d);
            next_ceiling(&s, &p, &d)
        };
        let grew = |n| Ceiling {
            limit: Some(n),
            change: Change::Grew,
        };
        assert_eq!(with(&|_| {}), grew(150), "a clean, full day");
        assert_eq!(with(&|d| d.sent = 50), grew(150), "half used is enough");
        assert_eq!(
            with(&|d| d.sent = 49),
            Ceiling {
                limit: Some(100),
                change: Change::Held("less than half of the ceiling used")
            }
        );
        assert_eq!(
            with(&|d| d.throttled = 1),
            Ceiling {
                limit: Some(100),
                change: Change::Held("throttling")
            }
        );
        let halved = |why| Ceiling {
            limit: Some(50),
            change: Change::Halved(why),
        };
        assert_eq!(with(&|d| d.blocked = 1), halved("policy blocks"));
        assert_eq!(
            with(&|d| {
                d.blocked = 1;
                d.throttled = 5
            }),
            halved("policy blocks"),
            "a block outweighs throttling"
        );
        // 0.1 % of 100 delivered is 0.1: one complaint is over.
        assert_eq!(with(&|d| d.complaints = 1), halved("complaints"));
        // 5 % of 100 sent is 5: five bounces are not over, six are.
        assert_eq!(with(&|d| d.bounced = 5), grew(150));
        assert_eq!(with(&|d| d.bounced = 6), halved("bounces"));
    }

    #[test]
    fn floor_rounding_and_max() {
        let (s, p) = settings(Some(1_000));
        let halved = next_ceiling(
            &s,
            &p,
            &WarmupDay {
                blocked: 1,
                ..day(15, 15)
            },
        );
        assert_eq!(halved.limit, Some(10), "never below min");
        assert_eq!(
            next_ceiling(&s, &p, &day(11, 11)).limit,
            Some(17),
            "rounded up"
        );
        let (mut slow, _) = settings(None);
        slow.growth = 1.01;
        assert_eq!(
            next_ceiling(&slow, &p, &day(10, 10)).limit,
            Some(11),
            "by one at least"
        );
        assert_eq!(
            next_ceiling(&s, &p, &day(700, 700)),
            Ceiling {
                limit: None,
                change: Change::Done
            },
            "1050 reaches max 1000"
        );
        let (unbounded, p) = settings(None);
        assert_eq!(
            next_ceiling(&unbounded, &p, &day(700, 700)).limit,
            Some(1050)
        );
    }

    #[test]
    fn the_plan_keeps_todays_ceiling_and_follows_the_last_day_before() {
        let (s, _) = settings(None);
        let first = plan(&s, &[], 20_000);
        assert_eq!(first[0].ceiling.limit, Some(50));
        assert_eq!(first[0].ceiling.change, Change::Start);
        let yesterday = WarmupDay {
            day: 19_998,
            ..day(50, 50)
        };
        // Two days later (nothing sent in between): grown once from the last day.
        let next = plan(&s, std::slice::from_ref(&yesterday), 20_000);
        assert_eq!(next[0].ceiling.limit, Some(75));
        assert_eq!(next[0].sent, 0);
        // A complaint that arrived the day after, with nothing sent that day, counts.
        let late = WarmupDay {
            day: 19_999,
            complaints: 1,
            ..day(0, 0)
        };
        let complained = plan(&s, &[yesterday.clone(), late], 20_000);
        assert_eq!(complained[0].ceiling.limit, Some(25));
        assert_eq!(complained[0].ceiling.change, Change::Halved("complaints"));
        let todays = WarmupDay {
            day: 20_000,
            ..day(75, 30)
        };
        let now = plan(&s, &[todays, yesterday], 20_000);
        assert_eq!(now[0].ceiling.limit, Some(75));
        assert_eq!(now[0].sent, 30);
    }

    #[test]
    fn days_follow_the_zone() {
        let utc_midnight: Millis = 20_000 * 86_400_000;
        assert_eq!(today(Tz::UTC, utc_midnight), 20_000);
        assert_eq!(today(Tz::UTC, utc_midnight - 1), 19_999);
        assert_eq!(day_start(Tz::UTC, 20_000), utc_midnight);
        // New York is behind UTC: its day 20 000 begins hours after UTC's.
        let ny = chrono_tz::America::New_York;
        assert_eq!(today(ny, utc_midnight), 19_999);
        let start = day_start(ny, 20_000);
        assert!(start > utc_midnight && start - utc_midnight <= 5 * 3_600_000);
        assert_eq!(today(ny, start), 20_000);
        assert_eq!(today(ny, start - 1), 19_999);
    }
}
