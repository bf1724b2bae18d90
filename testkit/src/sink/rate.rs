//! A receiver that throttles: the per-recipient-domain rate limit the sink can enforce, so
//! tests can prove that Volley's shaping keeps under a receiver's limit and backs off when
//! it is told to slow down.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How many recipients of one domain the sink accepts within a sliding window, and how it
/// refuses the ones over the limit. Used as `SinkConfig::rate_limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Accepted RCPTs (250 replies) per domain allowed within any window of `per`; the next
    /// RCPT for that domain inside the window is refused.
    pub messages: u32,
    /// The sliding window's length.
    pub per: Duration,
    /// How a refused RCPT is answered.
    pub reply: ThrottleReply,
}

/// How the sink answers a RCPT over the rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ThrottleReply {
    /// `421 4.7.0 <domain>: too many messages, slow down`, then the connection closes (the
    /// default, as busy receivers do).
    #[default]
    Close421,
    /// `451 4.7.1 <domain>: rate limited, try again later`; the connection stays open.
    Defer451,
    /// The same 451, but to MAIL FROM when the RCPTs pipelined behind it name a domain over
    /// its limit (as receivers that limit a sender's pace refuse its transactions); to
    /// RCPT otherwise.
    Mail451,
}

impl ThrottleReply {
    /// The reply line for a RCPT to `domain` over the limit.
    pub(crate) fn line(self, domain: &str) -> String {
        match self {
            ThrottleReply::Close421 => {
                format!("421 4.7.0 <{domain}>: too many messages, slow down")
            }
            ThrottleReply::Defer451 | ThrottleReply::Mail451 => {
                format!("451 4.7.1 <{domain}>: rate limited, try again later")
            }
        }
    }
}

/// The acceptance times of one domain's recipients still inside the window (at most
/// `messages` of them, oldest first).
#[derive(Debug, Default)]
pub(crate) struct Window {
    accepted: VecDeque<Instant>,
}

impl Window {
    /// True (and counted) when one more recipient at `now` stays within `limit`; false when
    /// `limit.messages` were already accepted within the last `limit.per`.
    pub(crate) fn admit(&mut self, now: Instant, limit: &RateLimit) -> bool {
        while let Some(&oldest) = self.accepted.front() {
            if now.saturating_duration_since(oldest) < limit.per {
                break;
            }
            self.accepted.pop_front();
        }
        if self.accepted.len() >= limit.messages as usize {
            return false;
        }
        self.accepted.push_back(now);
        true
    }

    /// True when no recipient more would be admitted at `now` (nothing is counted).
    pub(crate) fn full(&mut self, now: Instant, limit: &RateLimit) -> bool {
        while let Some(&oldest) = self.accepted.front() {
            if now.saturating_duration_since(oldest) < limit.per {
                break;
            }
            self.accepted.pop_front();
        }
        self.accepted.len() >= limit.messages as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: RateLimit = RateLimit {
        messages: 3,
        per: Duration::from_millis(100),
        reply: ThrottleReply::Close421,
    };

    #[test]
    fn window_admits_up_to_the_limit_then_refuses() {
        let start = Instant::now();
        let mut window = Window::default();
        let ms = |n| start + Duration::from_millis(n);
        let cases = [
            (0, true),
            (10, true),
            (20, true),
            (30, false),
            (99, false),
            // The acceptance at 0 leaves the window at 100, its slot goes to this one.
            (100, true),
            (105, false),
            // Those at 10 and 20 leave at 110 and 120.
            (110, true),
            (115, false),
            (120, true),
            (121, false),
            (500, true),
        ];
        for (at, want) in cases {
            assert_eq!(window.admit(ms(at), &LIMIT), want, "at {at} ms");
        }
    }

    #[test]
    fn refused_attempts_do_not_count() {
        let start = Instant::now();
        let mut window = Window::default();
        for _ in 0..3 {
            assert!(window.admit(start, &LIMIT));
        }
        for n in 1..50 {
            assert!(!window.admit(start + Duration::from_millis(n), &LIMIT));
        }
        assert!(window.admit(start + LIMIT.per, &LIMIT));
    }

    #[test]
    fn zero_messages_refuses_everything() {
        let limit = RateLimit {
            messages: 0,
            ..LIMIT
        };
        assert!(!Window::default().admit(Instant::now(), &limit));
    }

    #[test]
    fn replies_name_the_domain() {
        assert_eq!(
            ThrottleReply::Close421.line("example.com"),
            "421 4.7.0 <example.com>: too many messages, slow down"
        );
        assert_eq!(
            ThrottleReply::Defer451.line("example.com"),
            "451 4.7.1 <example.com>: rate limited, try again later"
        );
    }
}
