//! Adaptive back-off for one destination: AIMD on its message rate and connection count.
//!
//! A throttling reply (421, a 4.7.x "slow down", a configured text) halves the destination's
//! rate (from what it was actually achieving, when that is lower than its cap) and its
//! connections, and holds new messages for [`HOLD`] so the receiver's window can clear. Every
//! [`RAISE_EVERY`] of deliveries without throttling wins back a fifth of the rate the last cut
//! left (at least half a message a second) and one connection, until the configured limits are
//! reached again. Throttling `suspend_after` times within `suspend_window` suspends the
//! destination for `suspend_for`. Time is passed in, so the state machine is tested without
//! waiting.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::config::ShapingRule;
use crate::model::BackoffSnapshot;

/// How often a throttled destination may win back some rate.
pub(crate) const RAISE_EVERY: Duration = Duration::from_secs(2);
/// How long no new message goes to a destination after a throttling reply.
pub const HOLD: Duration = Duration::from_secs(1);
/// Throttling replies closer together than this count as one (several connections are often
/// told to slow down at once, and messages in flight during the hold get the same answer).
const SAME_EPISODE: Duration = HOLD;
/// The lowest rate a cut goes to, in messages per second.
const MIN_RATE: f64 = 0.1;
/// Deliveries remembered for the observed rate.
const OBSERVED: usize = 64;
/// Deliveries older than this do not count towards the observed rate.
const OBSERVED_WINDOW: Duration = Duration::from_secs(10);

/// What a call changed, for logs and status.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BackoffChange {
    /// Throttled: the rate and connection count were cut.
    Cut {
        /// The new rate, messages per second.
        rate: f64,
        /// The new connection cap.
        connections: usize,
        /// No new message until then.
        hold_until: Instant,
    },
    /// Recovering: some rate and connections won back (`rate` is `None` once unlimited again).
    Raised {
        /// The new rate, or `None` when back to no limit.
        rate: Option<f64>,
        /// The new connection cap.
        connections: usize,
    },
    /// Throttled too often: no messages until `until`.
    Suspended {
        /// When the destination may be tried again.
        until: Instant,
    },
}

/// One destination's adaptive limits.
#[derive(Debug, Clone)]
pub struct Backoff {
    configured_rate: Option<f64>,
    configured_connections: usize,
    rate: Option<f64>,
    connections: usize,
    ceiling: f64,
    /// The rate the last cut left; recovery steps are a fraction of it.
    floor: f64,
    hold_until: Option<Instant>,
    recent: VecDeque<Instant>,
    throttles: VecDeque<Instant>,
    suspended_until: Option<Instant>,
    last_change: Option<Instant>,
    suspend_after: u32,
    suspend_window: Duration,
    suspend_for: Duration,
}

impl Backoff {
    /// Fresh state at the configured limits of `rule`.
    pub fn new(rule: &ShapingRule) -> Self {
        let configured_rate = rule.max_message_rate.map(|r| r.per_second());
        Backoff {
            configured_rate,
            configured_connections: rule.max_connections.max(1),
            rate: configured_rate,
            connections: rule.max_connections.max(1),
            ceiling: configured_rate.unwrap_or(f64::INFINITY),
            floor: MIN_RATE,
            hold_until: None,
            recent: VecDeque::with_capacity(OBSERVED),
            throttles: VecDeque::new(),
            suspended_until: None,
            last_change: None,
            suspend_after: rule.suspend_after.max(1),
            suspend_window: rule.suspend_window,
            suspend_for: rule.suspend_for,
        }
    }

    /// The state to hand to another node at `now` (see [`BackoffSnapshot`]).
    pub fn snapshot(&self, now: Instant) -> BackoffSnapshot {
        BackoffSnapshot {
            rate: self.rate,
            connections: self.connections,
            floor: self.floor,
            ceiling: self.ceiling,
            suspended_for: self
                .suspended_until(now)
                .map(|until| until.saturating_duration_since(now)),
        }
    }

    /// Takes over `snapshot` from the node that sent here before, at `now`: its limits
    /// (never above the configured ones) and what is left of its suspension. Recovery goes
    /// on from there as if the cuts had been seen here.
    pub fn resume(&mut self, snapshot: &BackoffSnapshot, now: Instant) {
        let configured = self.configured_rate.unwrap_or(f64::INFINITY);
        self.rate = match snapshot.rate {
            Some(rate) => Some(rate.clamp(MIN_RATE, configured)),
            None => self.configured_rate,
        };
        self.connections = snapshot.connections.clamp(1, self.configured_connections);
        self.floor = snapshot.floor.max(MIN_RATE);
        self.ceiling = snapshot.ceiling.min(configured).max(MIN_RATE * 2.0);
        self.suspended_until = snapshot.suspended_for.map(|left| now + left);
        if self.is_throttled() {
            self.last_change = Some(now);
        }
    }

    /// The current rate cap in messages per second; `None` means no limit.
    pub fn rate(&self) -> Option<f64> {
        self.rate
    }

    /// The current cap on connections.
    pub fn connections(&self) -> usize {
        self.connections
    }

    /// True while the limits are below the configured ones.
    pub fn is_throttled(&self) -> bool {
        self.rate != self.configured_rate || self.connections < self.configured_connections
    }

    /// When the suspension ends, while the destination is suspended at `now`.
    pub fn suspended_until(&self, now: Instant) -> Option<Instant> {
        self.suspended_until.filter(|&until| until > now)
    }

    /// Messages per second delivered recently, when enough deliveries were seen.
    pub fn observed_rate(&self, now: Instant) -> Option<f64> {
        let recent: Vec<&Instant> = self
            .recent
            .iter()
            .filter(|&&at| now.saturating_duration_since(at) <= OBSERVED_WINDOW)
            .collect();
        let (first, count) = (recent.first()?, recent.len());
        if count < 4 {
            return None;
        }
        let span = now.saturating_duration_since(**first).as_secs_f64();
        Some(count as f64 / span.max(0.05))
    }

    /// Notes a delivery; may win back some rate and a connection.
    pub fn on_delivery(&mut self, now: Instant) -> Option<BackoffChange> {
        if self.recent.len() == OBSERVED {
            self.recent.pop_front();
        }
        self.recent.push_back(now);
        if !self.is_throttled() || self.suspended_until(now).is_some() {
            return None;
        }
        if self
            .last_change
            .is_some_and(|at| now.saturating_duration_since(at) < RAISE_EVERY)
        {
            return None;
        }
        self.last_change = Some(now);
        self.connections = (self.connections + 1).min(self.configured_connections);
        if let Some(rate) = self.rate {
            let step = (self.floor * 0.2).max(0.5);
            let raised = rate + step;
            self.rate = if raised >= self.ceiling {
                self.configured_rate
            } else {
                Some(raised)
            };
        }
        Some(BackoffChange::Raised {
            rate: self.rate,
            connections: self.connections,
        })
    }

    /// Notes a throttling reply: cuts the limits, or suspends the destination when it is
    /// throttled too often. Replies within a second of the last cut count as the same one.
    pub fn on_throttle(&mut self, now: Instant) -> BackoffChange {
        if let Some(until) = self.suspended_until(now) {
            return BackoffChange::Suspended { until };
        }
        let same_episode = self
            .throttles
            .back()
            .is_some_and(|&at| now.saturating_duration_since(at) < SAME_EPISODE);
        if same_episode {
            return self.cut_state();
        }
        self.throttles.push_back(now);
        while self
            .throttles
            .front()
            .is_some_and(|&at| now.saturating_duration_since(at) > self.suspend_window)
        {
            self.throttles.pop_front();
        }
        let observed = self.observed_rate(now);
        let base = match (self.rate, observed) {
            (Some(rate), Some(seen)) => rate.min(seen),
            (Some(rate), None) => rate,
            (None, Some(seen)) => seen,
            (None, None) => self.connections as f64,
        };
        if self.rate.is_none() {
            // Recover towards what was achieved before the first cut.
            self.ceiling = base.max(MIN_RATE * 2.0);
        }
        let cut = (base * 0.5).max(MIN_RATE);
        self.rate = Some(cut);
        self.floor = cut;
        self.connections = (self.connections / 2).max(1);
        self.last_change = Some(now);
        self.hold_until = Some(now + HOLD);
        if self.throttles.len() >= self.suspend_after as usize {
            self.throttles.clear();
            let until = now + self.suspend_for;
            self.suspended_until = Some(until);
            return BackoffChange::Suspended { until };
        }
        self.cut_state()
    }

    fn cut_state(&self) -> BackoffChange {
        BackoffChange::Cut {
            rate: self.rate.unwrap_or(MIN_RATE),
            connections: self.connections,
            hold_until: self.hold_until.unwrap_or_else(Instant::now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Rate;

    #[test]
    fn a_snapshot_taken_over_by_another_node_keeps_the_cuts_and_the_suspension() {
        let now = Instant::now();
        let mut first = Backoff::new(&rule(Some(10.0), 8));
        first.on_throttle(now);
        let snapshot = first.snapshot(now);
        assert_eq!(snapshot.rate, Some(5.0));
        assert_eq!(snapshot.connections, 4);
        let mut next = Backoff::new(&rule(Some(10.0), 8));
        next.resume(&snapshot, now);
        assert_eq!((next.rate(), next.connections()), (Some(5.0), 4));
        assert!(next.is_throttled());
        let suspended = BackoffSnapshot {
            suspended_for: Some(Duration::from_secs(60)),
            ..snapshot
        };
        next.resume(&suspended, now);
        assert!(next
            .suspended_until(now + Duration::from_secs(59))
            .is_some());
        assert!(next
            .suspended_until(now + Duration::from_secs(61))
            .is_none());
        // Never above this node's own configured limits.
        let mut strict = Backoff::new(&rule(Some(2.0), 1));
        strict.resume(&snapshot, now);
        assert_eq!((strict.rate(), strict.connections()), (Some(2.0), 1));
    }

    fn rule(rate: Option<f64>, connections: usize) -> ShapingRule {
        ShapingRule {
            max_connections: connections,
            max_message_rate: rate.map(|count| Rate {
                count,
                per: Duration::from_secs(1),
            }),
            suspend_after: 3,
            suspend_window: Duration::from_secs(60),
            suspend_for: Duration::from_secs(600),
            ..ShapingRule::default()
        }
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn a_throttle_halves_rate_and_connections() {
        let start = Instant::now();
        let mut b = Backoff::new(&rule(Some(100.0), 10));
        assert!(!b.is_throttled());
        let change = b.on_throttle(start);
        assert_eq!(
            change,
            BackoffChange::Cut {
                rate: 50.0,
                connections: 5,
                hold_until: start + HOLD,
            }
        );
        assert!(b.is_throttled());
    }

    #[test]
    fn the_cut_starts_from_the_observed_rate_when_lower() {
        let start = Instant::now();
        let mut b = Backoff::new(&rule(Some(100.0), 10));
        for i in 0..20 {
            b.on_delivery(start + secs(i as f64 * 0.1)); // about 10 a second
        }
        let BackoffChange::Cut { rate, .. } = b.on_throttle(start + secs(2.0)) else {
            panic!("expected a cut");
        };
        assert!((4.0..6.0).contains(&rate), "{rate}");
    }

    #[test]
    fn an_unlimited_destination_gets_a_rate_from_what_it_achieved() {
        let start = Instant::now();
        let mut b = Backoff::new(&rule(None, 4));
        assert_eq!(b.rate(), None);
        for i in 0..40 {
            b.on_delivery(start + secs(i as f64 * 0.05)); // about 20 a second
        }
        b.on_throttle(start + secs(2.0));
        let rate = b.rate().unwrap();
        assert!((8.0..12.0).contains(&rate), "{rate}");
        // Recovery brings it back to no limit.
        let mut t = 2.0;
        while b.rate().is_some() {
            t += 2.0;
            b.on_delivery(start + secs(t));
            assert!(t < 100.0, "never recovered");
        }
        assert_eq!(b.connections(), 4);
        assert!(!b.is_throttled());
    }

    #[test]
    fn recovery_steps_are_a_fifth_of_what_the_cut_left() {
        let start = Instant::now();
        let mut b = Backoff::new(&rule(None, 4));
        for i in 0..40 {
            b.on_delivery(start + secs(i as f64 * 0.025)); // about 40 a second
        }
        b.on_throttle(start + secs(1.0));
        let cut = b.rate().unwrap();
        b.on_delivery(start + secs(3.0));
        let raised = b.rate().unwrap();
        assert!(
            ((raised - cut) - cut * 0.2).abs() < 1e-9,
            "{cut} -> {raised}"
        );
    }

    #[test]
    fn recovery_is_additive_and_paced() {
        let start = Instant::now();
        let mut b = Backoff::new(&rule(Some(100.0), 10));
        b.on_throttle(start);
        assert_eq!(
            b.on_delivery(start + secs(0.5)),
            None,
            "too soon after the cut"
        );
        let raised = b.on_delivery(start + secs(2.0));
        assert_eq!(
            raised,
            Some(BackoffChange::Raised {
                rate: Some(60.0),
                connections: 6
            })
        );
        assert_eq!(b.on_delivery(start + secs(3.0)), None);
        let mut t = 2.0;
        let mut steps = 1;
        while b.is_throttled() {
            t += 2.0;
            b.on_delivery(start + secs(t));
            steps += 1;
        }
        assert_eq!(b.rate(), Some(100.0));
        assert_eq!(b.connections(), 10);
        assert_eq!(steps, 5, "50 -> 100 in steps of 10");
    }

    #[test]
    fn throttles_at_once_count_as_one() {
        let start = Instant::now();
        let mut b = Backoff::new(&rule(Some(100.0), 10));
        b.on_throttle(start);
        b.on_throttle(start + secs(0.2));
        b.on_throttle(start + secs(0.4));
        assert_eq!(b.rate(), Some(50.0));
        assert_eq!(b.connections(), 5);
        assert_eq!(b.suspended_until(start + secs(0.5)), None);
    }

    #[test]
    fn repeated_throttling_suspends_then_lets_go() {
        let start = Instant::now();
        let mut b = Backoff::new(&rule(Some(100.0), 10));
        b.on_throttle(start);
        b.on_throttle(start + secs(10.0));
        let change = b.on_throttle(start + secs(20.0));
        let until = start + secs(620.0);
        assert_eq!(change, BackoffChange::Suspended { until });
        assert_eq!(b.suspended_until(start + secs(30.0)), Some(until));
        assert_eq!(
            b.on_delivery(start + secs(30.0)),
            None,
            "no recovery while suspended"
        );
        assert_eq!(b.suspended_until(start + secs(621.0)), None);
        assert!(b.rate().unwrap() < 20.0);
    }

    #[test]
    fn throttles_outside_the_window_do_not_suspend() {
        let start = Instant::now();
        let mut b = Backoff::new(&rule(Some(100.0), 10));
        for i in 0..6 {
            let change = b.on_throttle(start + secs(i as f64 * 40.0));
            assert!(
                matches!(change, BackoffChange::Cut { .. }),
                "{i}: {change:?}"
            );
        }
        assert!(b.rate().unwrap() >= MIN_RATE);
        assert_eq!(b.connections(), 1);
    }
}
