//! Several relays (`[[relay]]`): which one takes the next batch. Traffic is split by
//! `weight` (smooth weighted round-robin, so 2:1:1 goes A, B, A, C, …) among the relays of
//! the best (lowest) `priority` that are neither taken out nor held by a cap; when none of
//! that priority is left, the next priority takes over. A relay that refused the login,
//! failed TLS or could not be reached is taken out for its `cooldown` (on the run's
//! [`Clock`]), then tried again with one probe connection; a probe that opens a session
//! brings it back. With a lone relay the pool only ever names it.

use std::time::Duration;

use crate::model::{add_duration, Clock, Millis};

/// One relay of the pool, as the scheduler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RelaySlot {
    /// Its destination's index in the run.
    pub(crate) destination: usize,
    /// Its name (`name`, default `host:port`).
    pub(crate) name: String,
    /// Its `weight` (at least 1).
    pub(crate) weight: u32,
    /// Its `priority` (lower is preferred).
    pub(crate) priority: u32,
    /// Its `cooldown`.
    pub(crate) cooldown: Duration,
}

/// Where one relay stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Health {
    /// In use.
    Up,
    /// Taken out until then (epoch milliseconds on the run's clock).
    Out {
        /// When it is tried again.
        until: Millis,
    },
    /// Its cool-down is over: one connection tries it; `sessions` is its destination's
    /// session count when the probe began (a higher count means the probe got through).
    Probing {
        /// Sessions opened to it before the probe.
        sessions: u64,
    },
}

#[derive(Debug)]
struct Slot {
    relay: RelaySlot,
    health: Health,
    /// Smooth weighted round-robin state.
    current: i64,
    /// A cap holds it until then (epoch milliseconds, system time).
    held_until: Option<Millis>,
    /// Times it was taken out in this run.
    cooldowns: u32,
}

/// A relay's state, for tests.
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PoolStatus {
    /// The relay.
    pub(crate) relay: RelaySlot,
    /// Where it stands.
    pub(crate) health: Health,
    /// Times it was taken out in this run.
    pub(crate) cooldowns: u32,
}

/// The relays of a send and the traffic split between them.
#[derive(Debug)]
pub(crate) struct RelayPool {
    slots: Vec<Slot>,
    clock: Clock,
}

impl RelayPool {
    /// A pool of `relays` (in file order), all up; cool-downs run on `clock`.
    pub(crate) fn new(relays: Vec<RelaySlot>, clock: Clock) -> RelayPool {
        let slots = relays
            .into_iter()
            .map(|relay| Slot {
                relay,
                health: Health::Up,
                current: 0,
                held_until: None,
                cooldowns: 0,
            })
            .collect();
        RelayPool { slots, clock }
    }

    /// More than one relay: a relay's failure moves its traffic instead of ending the send.
    #[cfg(test)]
    pub(crate) fn fails_over(&self) -> bool {
        self.slots.len() > 1
    }

    fn slot(&self, destination: usize) -> Option<&Slot> {
        self.slots
            .iter()
            .find(|s| s.relay.destination == destination)
    }

    fn slot_mut(&mut self, destination: usize) -> Option<&mut Slot> {
        self.slots
            .iter_mut()
            .find(|s| s.relay.destination == destination)
    }

    /// Relays whose cool-down is over start probing (`sessions` gives a destination's
    /// session count); caps past `now` (system time) are lifted. Returns the destinations
    /// that started probing.
    pub(crate) fn refresh(&mut self, now: Millis, sessions: impl Fn(usize) -> u64) -> Vec<usize> {
        let at = self.clock.now_millis();
        let mut probing = Vec::new();
        for slot in &mut self.slots {
            if let Health::Out { until } = slot.health {
                if until <= at {
                    slot.current = 0;
                    slot.health = Health::Probing {
                        sessions: sessions(slot.relay.destination),
                    };
                    probing.push(slot.relay.destination);
                    tracing::info!(relay = %slot.relay.name, "relay cool-down over: trying it again with one connection");
                }
            }
            if slot.held_until.is_some_and(|until| until <= now) {
                slot.held_until = None;
            }
        }
        probing
    }

    /// Notes that `destination` opened a session (`sessions` now): a probing relay is
    /// back in use.
    pub(crate) fn note_sessions(&mut self, destination: usize, sessions: u64) {
        if let Some(slot) = self.slot_mut(destination) {
            if let Health::Probing { sessions: before } = slot.health {
                if sessions > before {
                    slot.health = Health::Up;
                    tracing::info!(relay = %slot.relay.name, "relay answered again: back in use");
                }
            }
        }
    }

    fn usable(slot: &Slot) -> bool {
        !matches!(slot.health, Health::Out { .. }) && slot.held_until.is_none()
    }

    /// The relay the next batch goes to: weighted among the usable relays of the best
    /// priority. `None` when every relay is out or held.
    pub(crate) fn pick(&mut self) -> Option<usize> {
        let best = self
            .slots
            .iter()
            .filter(|s| Self::usable(s))
            .map(|s| s.relay.priority)
            .min()?;
        let mut total = 0i64;
        let mut chosen: Option<(usize, i64)> = None;
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if !Self::usable(slot) || slot.relay.priority != best {
                continue;
            }
            slot.current += i64::from(slot.relay.weight);
            total += i64::from(slot.relay.weight);
            if chosen.is_none_or(|(_, current)| slot.current > current) {
                chosen = Some((i, slot.current));
            }
        }
        let (chosen, _) = chosen?;
        let slot = &mut self.slots[chosen];
        slot.current -= total;
        Some(slot.relay.destination)
    }

    /// The usable relay that [`pick`](Self::pick) would prefer, without moving the split;
    /// when none is usable, the first relay (which is then blocked).
    pub(crate) fn preferred(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| Self::usable(s))
            .min_by_key(|s| s.relay.priority)
            .or(self.slots.first())
            .map_or(0, |s| s.relay.destination)
    }

    /// Takes `destination` out for its cool-down; returns the relay's name, until when
    /// (clock time) and whether every relay is out now.
    pub(crate) fn take_out(&mut self, destination: usize) -> Option<(String, Millis, bool)> {
        let now = self.clock.now_millis();
        let slot = self.slot_mut(destination)?;
        let until = add_duration(now, slot.relay.cooldown);
        slot.health = Health::Out { until };
        slot.current = 0;
        slot.cooldowns += 1;
        let name = slot.relay.name.clone();
        let all_out = self
            .slots
            .iter()
            .all(|s| matches!(s.health, Health::Out { .. }));
        Some((name, until, all_out))
    }

    /// A cap holds `destination` until `resume_at` (system time); returns true when every
    /// relay is out or held now.
    pub(crate) fn hold(&mut self, destination: usize, resume_at: Millis) -> bool {
        if let Some(slot) = self.slot_mut(destination) {
            slot.held_until = Some(slot.held_until.map_or(resume_at, |u| u.max(resume_at)));
        }
        self.slots.iter().all(|s| !Self::usable(s))
    }

    /// Until when `destination` may not be sent to (taken out: clock time converted to
    /// system time by the caller; held by a cap), if it may not.
    pub(crate) fn blocked(&self, destination: usize) -> Option<Blocked> {
        let slot = self.slot(destination)?;
        match (slot.health, slot.held_until) {
            (Health::Out { until }, _) => Some(Blocked::Out {
                for_ms: until.saturating_sub(self.clock.now_millis()),
            }),
            (_, Some(until)) => Some(Blocked::Held { until }),
            _ => None,
        }
    }

    /// True while `destination` is being probed (one connection at most).
    pub(crate) fn probing(&self, destination: usize) -> bool {
        self.slot(destination)
            .is_some_and(|s| matches!(s.health, Health::Probing { .. }))
    }

    /// Every relay's state.
    #[cfg(test)]
    pub(crate) fn status(&self) -> Vec<PoolStatus> {
        self.slots
            .iter()
            .map(|s| PoolStatus {
                relay: s.relay.clone(),
                health: s.health,
                cooldowns: s.cooldowns,
            })
            .collect()
    }
}

/// Why a relay may not be sent to now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Blocked {
    /// Taken out for this many more milliseconds.
    Out {
        /// Milliseconds left of its cool-down.
        for_ms: u64,
    },
    /// A cap holds it until then (epoch milliseconds, system time).
    Held {
        /// When the cap allows sending again.
        until: Millis,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ManualClock;

    fn slot(destination: usize, weight: u32, priority: u32) -> RelaySlot {
        RelaySlot {
            destination,
            name: format!("r{destination}"),
            weight,
            priority,
            cooldown: Duration::from_secs(300),
        }
    }

    fn picks(pool: &mut RelayPool, n: usize) -> Vec<usize> {
        (0..n).filter_map(|_| pool.pick()).collect()
    }

    fn count(picks: &[usize], d: usize) -> usize {
        picks.iter().filter(|&&p| p == d).count()
    }

    #[test]
    fn traffic_is_split_by_weight_failed_over_by_priority_and_comes_back_after_the_cooldown() {
        let clock = ManualClock::new(chrono::Utc::now());
        let relays = vec![slot(0, 2, 0), slot(1, 1, 0), slot(2, 1, 0), slot(3, 1, 1)];
        let mut pool = RelayPool::new(relays, clock.clock());
        assert!(pool.fails_over());
        // 2:1:1 among priority 0, evenly interleaved; the priority-1 backup gets nothing.
        let first = picks(&mut pool, 8);
        assert_eq!(
            [0, 1, 2, 3].map(|d| count(&first, d)),
            [4, 2, 2, 0],
            "{first:?}"
        );
        assert_eq!(&first[..4], &[0, 1, 2, 0]);
        // Relay 0 refuses the login: out for its cool-down, its share moves to 1 and 2.
        let (name, until, all_out) = pool.take_out(0).unwrap();
        assert_eq!((name.as_str(), all_out), ("r0", false));
        assert_eq!(until, clock.clock().now_millis() + 300_000);
        assert!(matches!(
            pool.blocked(0),
            Some(Blocked::Out { for_ms: 300_000 })
        ));
        let without = picks(&mut pool, 6);
        assert_eq!([0, 1, 2, 3].map(|d| count(&without, d)), [0, 3, 3, 0]);
        // Both other priority-0 relays out: the backup takes over.
        pool.take_out(1);
        pool.take_out(2);
        assert_eq!(picks(&mut pool, 3), vec![3, 3, 3]);
        assert_eq!(pool.preferred(), 3);
        // A cap holds the backup: nothing is usable (every relay out or held).
        let now = 1_000;
        assert!(pool.hold(3, now + 60_000));
        assert_eq!(pool.pick(), None);
        pool.refresh(now + 60_000, |_| 0);
        assert_eq!(pool.pick(), Some(3), "the cap's hour is over");
        // Cool-down not over a second early; over when it is: relay 0 is probed.
        clock.advance(Duration::from_secs(299));
        pool.refresh(now, |_| 7);
        assert!(!pool.probing(0));
        clock.advance(Duration::from_secs(1));
        pool.refresh(now, |_| 7);
        assert!(pool.probing(0) && pool.probing(1) && pool.probing(2));
        assert_eq!(pool.blocked(0), None);
        // Probing relays take traffic again (their priority is back), by weight.
        let back = picks(&mut pool, 4);
        assert_eq!([0, 1, 2, 3].map(|d| count(&back, d)), [2, 1, 1, 0]);
        // Relay 0's probe opens a session: up. Relay 1's fails: out again.
        pool.note_sessions(0, 8);
        assert!(!pool.probing(0));
        pool.take_out(1);
        let status = pool.status();
        assert_eq!(status[0].health, Health::Up);
        assert_eq!(status[0].cooldowns, 1);
        assert_eq!(status[1].cooldowns, 2);
        assert!(matches!(status[1].health, Health::Out { .. }));
    }

    #[test]
    fn every_relay_out_is_told() {
        let clock = ManualClock::new(chrono::Utc::now());
        let mut pool = RelayPool::new(vec![slot(0, 1, 0), slot(1, 1, 5)], clock.clock());
        assert!(!pool.take_out(1).unwrap().2);
        assert!(pool.take_out(0).unwrap().2);
        assert_eq!(pool.pick(), None);
        let lone = RelayPool::new(vec![slot(0, 1, 0)], clock.clock());
        assert!(!lone.fails_over());
    }
}
