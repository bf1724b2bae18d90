//! Where "now" comes from. Decisions that hang on wall-clock time take a [`Clock`]: click
//! bursts and opens fetched on arrival (`tracking`), the A/B wait and `[ab] recheck_every`
//! (`runtime`), and cron editions under `volley serve` (`schedule`). Production passes
//! [`Clock::system`]; a test passes a [`ManualClock`]'s clock and moves time by hand instead
//! of sleeping.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{add_duration, now_millis, Millis};

/// A source of the current time: the system clock (the default), or a [`ManualClock`] that
/// only moves when told. Cheap to clone; clones of a manual clock share its time.
#[derive(Clone, Default)]
pub struct Clock {
    /// Epoch milliseconds of a manual clock; `None` for the system clock.
    manual: Option<Arc<AtomicU64>>,
}

impl Clock {
    /// The system's wall clock.
    pub fn system() -> Clock {
        Clock { manual: None }
    }

    /// Now, in epoch milliseconds (the store's unit).
    pub fn now_millis(&self) -> Millis {
        match &self.manual {
            None => now_millis(),
            Some(at) => at.load(Ordering::SeqCst),
        }
    }

    /// Now, as a UTC date and time.
    pub fn now(&self) -> DateTime<Utc> {
        match &self.manual {
            None => Utc::now(),
            Some(_) => to_utc(self.now_millis()),
        }
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.manual {
            None => f.write_str("Clock::system"),
            Some(_) => write!(f, "Clock::manual({})", self.now().to_rfc3339()),
        }
    }
}

/// A clock for tests: it stands still until [`set`](ManualClock::set) or
/// [`advance`](ManualClock::advance) moves it; every [`Clock`] taken from it with
/// [`clock`](ManualClock::clock) reads the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    clock: Clock,
}

impl ManualClock {
    /// A clock standing at `at` (times before 1970 read as the epoch).
    pub fn new(at: DateTime<Utc>) -> ManualClock {
        ManualClock {
            clock: Clock {
                manual: Some(Arc::new(AtomicU64::new(to_millis(at)))),
            },
        }
    }

    /// A [`Clock`] reading this clock's time, to hand to the code under test.
    pub fn clock(&self) -> Clock {
        self.clock.clone()
    }

    /// Now, as this clock reads it.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Moves the clock to `at` (forwards or back).
    pub fn set(&self, at: DateTime<Utc>) {
        self.store(to_millis(at));
    }

    /// Moves the clock forwards by `by` (saturating).
    pub fn advance(&self, by: Duration) {
        self.store(add_duration(self.clock.now_millis(), by));
    }

    fn store(&self, millis: Millis) {
        if let Some(at) = &self.clock.manual {
            at.store(millis, Ordering::SeqCst);
        }
    }
}

fn to_millis(at: DateTime<Utc>) -> Millis {
    u64::try_from(at.timestamp_millis()).unwrap_or(0)
}

fn to_utc(millis: Millis) -> DateTime<Utc> {
    i64::try_from(millis)
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_manual_clock_moves_only_when_told_and_its_clocks_agree() {
        let hand = ManualClock::new(at("2026-12-07T08:00:00Z"));
        let clock = hand.clock();
        assert_eq!(clock.now(), at("2026-12-07T08:00:00Z"));
        assert_eq!(clock.now_millis(), 1_796_630_400_000);
        hand.advance(Duration::from_millis(1_500));
        assert_eq!(clock.now(), at("2026-12-07T08:00:01.500Z"));
        assert_eq!(hand.clock().now_millis(), clock.now_millis());
        hand.set(at("2026-12-14T08:00:00Z"));
        assert_eq!(clock.now(), at("2026-12-14T08:00:00Z"));
        assert_eq!(
            format!("{clock:?}"),
            "Clock::manual(2026-12-14T08:00:00+00:00)"
        );
    }

    #[test]
    fn the_system_clock_reads_the_system_time() {
        let clock = Clock::default();
        let before = now_millis();
        let read = clock.now_millis();
        assert!(read >= before && read <= now_millis());
        assert_eq!(format!("{clock:?}"), "Clock::system");
    }

    #[test]
    fn times_outside_the_range_saturate() {
        let hand = ManualClock::new(at("1960-01-01T00:00:00Z"));
        assert_eq!(hand.clock().now_millis(), 0);
        hand.advance(Duration::MAX);
        assert_eq!(hand.now(), DateTime::<Utc>::MAX_UTC);
    }
}
