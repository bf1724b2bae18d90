//! The retry schedule: when a deferred recipient is tried again (spread by jitter), and when
//! it expires.

use std::time::Duration;

use super::{add_duration, Millis};

/// When to try a deferred recipient again, and when to give up.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Waits between attempts; the last one repeats until expiry.
    pub schedule: Vec<Duration>,
    /// How long after the first attempt a recipient may stay deferred before it expires.
    pub expire_after: Duration,
    /// Each wait is spread by up to this fraction either way (0.1: ±10 %), so recipients
    /// deferred together do not come back together. 0 keeps the exact schedule. Default 0.1.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    /// 5m, 30m, 2h, 6h, expiring after 3 days.
    fn default() -> Self {
        Self {
            schedule: [5 * 60, 30 * 60, 2 * 3600, 6 * 3600]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            expire_after: Duration::from_secs(3 * 86_400),
            jitter: DEFAULT_JITTER,
        }
    }
}

/// The default spread of retry waits: ±10 %.
pub const DEFAULT_JITTER: f64 = 0.1;

impl RetryPolicy {
    /// The time of the next attempt after `failed_attempts` temporary failures, or `None` when
    /// the recipient has expired. The wait from the schedule is spread by up to ±`jitter`,
    /// the spread drawn from `seed` (one per recipient and attempt, so a batch deferred
    /// together comes back spread out, and the same inputs give the same time). The last
    /// attempt is moved up to the expiry time itself, so a recipient always gets one try at
    /// the deadline.
    pub fn next_attempt(
        &self,
        failed_attempts: u32,
        first_attempt: Millis,
        now: Millis,
        seed: u64,
    ) -> Option<Millis> {
        let deadline = add_duration(first_attempt, self.expire_after);
        if now >= deadline {
            return None;
        }
        let index = usize::try_from(failed_attempts.saturating_sub(1)).unwrap_or(usize::MAX);
        let wait = self
            .schedule
            .get(index)
            .or(self.schedule.last())
            .copied()
            .unwrap_or(Duration::from_secs(300));
        let wait = spread(wait, self.jitter, seed);
        Some(add_duration(now, wait).min(deadline))
    }
}

/// `wait` scaled by a factor in `[1 - jitter, 1 + jitter)` drawn from `seed`.
fn spread(wait: Duration, jitter: f64, seed: u64) -> Duration {
    let jitter = jitter.clamp(0.0, 1.0);
    if jitter == 0.0 {
        return wait;
    }
    // splitmix64: a well-mixed 64-bit value from any seed.
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let unit = (z >> 11) as f64 / (1u64 << 53) as f64;
    wait.mul_f64(1.0 + jitter * (2.0 * unit - 1.0))
}

/// A seed for [`RetryPolicy::next_attempt`]: one per address and attempt (FNV-1a).
pub fn retry_seed(address: &str, attempt: u32) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in address.bytes().chain(attempt.to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_follows_the_schedule_then_repeats_its_last_step_until_expiry() {
        let policy = RetryPolicy {
            schedule: vec![Duration::from_secs(60), Duration::from_secs(600)],
            expire_after: Duration::from_secs(3600),
            jitter: 0.0,
        };
        let start = 1_000_000;
        assert_eq!(
            policy.next_attempt(1, start, start, 7),
            Some(start + 60_000)
        );
        assert_eq!(
            policy.next_attempt(2, start, start + 60_000, 7),
            Some(start + 660_000)
        );
        assert_eq!(
            policy.next_attempt(5, start, start + 3_000_000, 7),
            Some(start + 3_600_000)
        );
        assert_eq!(policy.next_attempt(6, start, start + 3_600_000, 7), None);
    }

    #[test]
    fn a_batch_deferred_together_comes_back_spread_within_the_jitter() {
        let policy = RetryPolicy {
            schedule: vec![Duration::from_secs(600)],
            expire_after: Duration::from_secs(86_400),
            jitter: 0.1,
        };
        let now = 1_000_000;
        let due: Vec<Millis> = (0..1000)
            .map(|i| {
                let seed = retry_seed(&format!("user{i}@example.com"), 1);
                policy.next_attempt(1, now, now, seed).unwrap()
            })
            .collect();
        for &at in &due {
            assert!(
                (now + 540_000..=now + 660_000).contains(&at),
                "{at} outside 600 s ± 10 %"
            );
        }
        let distinct: std::collections::HashSet<_> = due.iter().collect();
        assert!(
            distinct.len() > 990,
            "only {} distinct times",
            distinct.len()
        );
        let early = due.iter().filter(|&&at| at < now + 600_000).count();
        assert!(
            (400..600).contains(&early),
            "{early} of 1000 early: not spread both ways"
        );
        // Same recipient and attempt: same time.
        let seed = retry_seed("user1@example.com", 1);
        assert_eq!(policy.next_attempt(1, now, now, seed), Some(due[1]));
    }

    #[test]
    fn no_jitter_gives_the_exact_schedule_for_everyone() {
        let policy = RetryPolicy {
            schedule: vec![Duration::from_secs(600)],
            expire_after: Duration::from_secs(86_400),
            jitter: 0.0,
        };
        let now = 1_000_000;
        for i in 0..100 {
            let seed = retry_seed(&format!("user{i}@example.com"), 1);
            assert_eq!(policy.next_attempt(1, now, now, seed), Some(now + 600_000));
        }
    }
}
