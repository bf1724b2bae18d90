//! What the tracking server bounds: time and bytes per connection, connections at once, and
//! how much one recipient can make it store (repeats within a window count once, and a
//! daily cap per recipient).

use std::time::Duration;

use moka::sync::Cache;

use super::token::{Token, TokenKind};

/// The tracking server's limits. Every field has a default suited to a public listener.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TrackingLimits {
    /// Time a client has to send a request's line and headers (default 10 s). On a
    /// kept-alive connection the clock starts when the previous answer is sent, so it also
    /// bounds the wait for the next request.
    pub header_timeout: Duration,
    /// A connection with no byte read or written for this long is closed (default 60 s).
    pub idle_timeout: Duration,
    /// Connections served at once (default 1,024); more wait in the listen backlog.
    pub max_connections: usize,
    /// Bytes of a request's line and headers (default 16 KiB, at least 8 KiB); a larger
    /// head gets 431.
    pub max_header_bytes: usize,
    /// Bytes of a one-click unsubscribe body (default 4 KiB); a larger one gets 413.
    pub max_body_bytes: usize,
    /// Opens and clicks of the same token and human/machine verdict within this window are
    /// stored once (default 10 minutes; zero stores every one). Unsubscribes always reach
    /// the store, which ignores a repeat.
    pub dedupe_window: Duration,
    /// Requests remembered for de-duplication at most (default 200,000, about 20 MB); past
    /// it the least used are forgotten first.
    pub dedupe_entries: u64,
    /// Events stored per recipient of a campaign per UTC day at most (default 100); a
    /// recipient's first unsubscribe is always stored.
    pub daily_cap: u32,
}

impl Default for TrackingLimits {
    fn default() -> Self {
        TrackingLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1_024,
            max_header_bytes: 16 * 1024,
            max_body_bytes: 4 * 1024,
            dedupe_window: Duration::from_secs(10 * 60),
            dedupe_entries: 200_000,
            daily_cap: 100,
        }
    }
}

/// What makes two requests the same for de-duplication: the token's campaign, recipient,
/// kind and link, and whether the request was judged machine-made (so a privacy proxy's
/// fetch does not hide the person's own open that follows).
type Seen = (u32, u64, u8, u16, bool);

/// Requests seen lately, bounded in entries and time.
pub(crate) struct Dedupe {
    seen: Option<Cache<Seen, ()>>,
    /// Makes "seen yet? then remember" one step: moka's `entry().or_insert()` can call two
    /// racing inserts of one key fresh.
    deciding: std::sync::Mutex<()>,
}

impl Dedupe {
    /// Remembers requests for `window` (nothing when it is zero), `entries` at most.
    pub(crate) fn new(window: Duration, entries: u64) -> Dedupe {
        let seen = (!window.is_zero()).then(|| {
            Cache::builder()
                .max_capacity(entries)
                .time_to_live(window)
                .build()
        });
        Dedupe {
            seen,
            deciding: std::sync::Mutex::new(()),
        }
    }

    fn key(token: &Token, machine: bool) -> Seen {
        let kind = match token.kind {
            TokenKind::Open => 0,
            TokenKind::Click => 1,
            TokenKind::Unsubscribe => 2,
            TokenKind::Preferences => 3,
            TokenKind::View => 4,
        };
        (token.campaign, token.seq, kind, token.link, machine)
    }

    /// True the first time `token` (with this verdict) is seen within the window; it is
    /// remembered from now on.
    pub(crate) fn first(&self, token: &Token, machine: bool) -> bool {
        let Some(seen) = &self.seen else {
            return true;
        };
        let key = Dedupe::key(token, machine);
        // invariant: the lock guards no data, only the order of two cache calls; a panic
        // while it was held leaves nothing half-done, so a poisoned lock is used as it is.
        let _deciding = self.deciding.lock().unwrap_or_else(|p| p.into_inner());
        if seen.contains_key(&key) {
            return false;
        }
        seen.insert(key, ());
        true
    }

    /// Forgets `token`: its event could not be stored, so a retry must be.
    pub(crate) fn forget(&self, token: &Token, machine: bool) {
        if let Some(seen) = &self.seen {
            seen.invalidate(&Dedupe::key(token, machine));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(seq: u64, kind: TokenKind, link: u16) -> Token {
        Token {
            kind,
            campaign: 1,
            variant: 0,
            seq,
            link,
        }
    }

    #[test]
    fn the_same_request_counts_once_within_the_window() {
        let dedupe = Dedupe::new(Duration::from_secs(600), 1_000);
        let open = token(1, TokenKind::Open, 0);
        assert!(dedupe.first(&open, false));
        assert!(!dedupe.first(&open, false));
        assert!(dedupe.first(&open, true), "a machine's fetch is its own");
        assert!(dedupe.first(&token(2, TokenKind::Open, 0), false));
        assert!(dedupe.first(&token(1, TokenKind::Click, 0), false));
        assert!(dedupe.first(&token(1, TokenKind::Click, 1), false));
        dedupe.forget(&open, false);
        assert!(dedupe.first(&open, false), "forgotten after a failed write");
        let off = Dedupe::new(Duration::ZERO, 1_000);
        assert!(off.first(&open, false) && off.first(&open, false));
    }

    #[test]
    fn requests_racing_on_many_threads_count_once() {
        for round in 0..200 {
            let dedupe = std::sync::Arc::new(Dedupe::new(Duration::from_secs(600), 1_000));
            let open = token(round, TokenKind::Open, 0);
            let fresh: usize = std::thread::scope(|scope| {
                let racers: Vec<_> = (0..8)
                    .map(|_| {
                        let dedupe = dedupe.clone();
                        scope.spawn(move || usize::from(dedupe.first(&open, false)))
                    })
                    .collect();
                racers.into_iter().map(|r| r.join().unwrap()).sum()
            });
            assert_eq!(fresh, 1, "round {round}");
        }
    }
}
