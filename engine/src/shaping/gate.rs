//! A pacing gate over governor whose rate can be changed while tasks wait on it (adaptive
//! back-off changes a destination's rate on the fly).

use std::num::NonZeroU32;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// Paces events at up to a rate; `None` lets everything through. Cheap to share (`Arc`).
#[derive(Debug, Default)]
pub struct RateGate {
    limiter: RwLock<Option<Arc<DefaultDirectRateLimiter>>>,
    rate: RwLock<Option<f64>>,
    held_until: RwLock<Option<Instant>>,
}

impl RateGate {
    /// A gate at `per_second` (`None`: no limit).
    pub fn new(per_second: Option<f64>) -> Self {
        let gate = RateGate::default();
        gate.set(per_second);
        gate
    }

    /// The current rate, events per second.
    pub fn rate(&self) -> Option<f64> {
        *self.rate.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the rate; waiters pick the new one up at their next check. A burst of a tenth
    /// of a second's worth (at least one) is allowed, so pacing stays smooth.
    pub fn set(&self, per_second: Option<f64>) {
        let limiter = per_second
            .filter(|r| r.is_finite() && *r > 0.0)
            .and_then(quota)
            .map(|q| Arc::new(RateLimiter::direct(q)));
        *self.limiter.write().unwrap_or_else(|p| p.into_inner()) = limiter;
        *self.rate.write().unwrap_or_else(|p| p.into_inner()) = per_second;
    }

    /// Lets nothing through until `until` (a cool-down after a throttling reply).
    pub fn hold_until(&self, until: Instant) {
        let mut held = self.held_until.write().unwrap_or_else(|p| p.into_inner());
        *held = Some(held.map_or(until, |h| h.max(until)));
    }

    /// How long until the next event may pass; zero when it may pass now (and it is then
    /// counted as passed).
    pub fn try_pass(&self) -> Duration {
        let held = *self.held_until.read().unwrap_or_else(|p| p.into_inner());
        if let Some(until) = held {
            let wait = until.saturating_duration_since(Instant::now());
            if !wait.is_zero() {
                return wait;
            }
        }
        let limiter = self
            .limiter
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match limiter {
            None => Duration::ZERO,
            Some(limiter) => match limiter.check() {
                Ok(()) => Duration::ZERO,
                Err(not_until) => not_until
                    .wait_time_from(DefaultClock::default().now())
                    .max(Duration::from_millis(1)),
            },
        }
    }

    /// Waits until the next event may pass (bounded by the rate) and counts it.
    pub async fn pass(&self) {
        loop {
            let wait = self.try_pass();
            if wait.is_zero() {
                return;
            }
            tokio::time::sleep(wait).await;
        }
    }
}

/// A governor quota for `per_second`, with a burst of a tenth of a second's worth.
fn quota(per_second: f64) -> Option<Quota> {
    let period = Duration::from_secs_f64(1.0 / per_second);
    let burst = ((per_second / 10.0).floor() as u32).max(1);
    Some(Quota::with_period(period)?.allow_burst(NonZeroU32::new(burst)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_rate_never_waits() {
        let gate = RateGate::new(None);
        for _ in 0..10_000 {
            assert_eq!(gate.try_pass(), Duration::ZERO);
        }
    }

    #[tokio::test]
    async fn a_rate_paces_events() {
        let gate = RateGate::new(Some(50.0));
        let started = Instant::now();
        for _ in 0..30 {
            tokio::time::timeout(Duration::from_secs(5), gate.pass())
                .await
                .unwrap();
        }
        // 30 events at 50/s with a burst of 5: at least (30 - 5) / 50 s.
        assert!(
            started.elapsed() >= Duration::from_millis(450),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_hold_stops_everything_for_a_while() {
        let gate = RateGate::new(None);
        gate.hold_until(Instant::now() + Duration::from_secs(5));
        assert!(gate.try_pass() > Duration::from_secs(4));
    }

    #[test]
    fn the_rate_can_change() {
        let gate = RateGate::new(Some(1.0));
        assert_eq!(gate.try_pass(), Duration::ZERO);
        assert!(gate.try_pass() > Duration::from_millis(500));
        gate.set(None);
        assert_eq!(gate.try_pass(), Duration::ZERO);
        assert_eq!(gate.rate(), None);
    }
}
