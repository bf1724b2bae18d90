//! What the sink remembers, shared by all its connections: the accepted messages, when each
//! address was first seen by the first-time-only and greylisting scripts, each domain's
//! rate-limit window, and the counters. One std `Mutex`, held for a few instructions at a
//! time and never across an await.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::block::PolicyBlock;
use super::rate::{RateLimit, Window};
use super::stats::{Received, SinkStats, MAX_OPENED_AT};

#[derive(Debug, Default)]
struct State {
    received: Vec<Received>,
    /// Lower-cased addresses and when they were first seen.
    seen: HashMap<String, Instant>,
    /// Recently accepted RCPTs per domain, kept only under a rate limit.
    windows: HashMap<String, Window>,
    stats: SinkStats,
    /// Bumped each time every open connection is to be closed (`close_all_at`).
    close_epoch: u64,
    /// How far the sink's clock was moved ahead of the real one (`Sink::advance`).
    skew: Duration,
    /// Set by `Sink::lift_block`: `policy_block` refuses nobody any more.
    block_lifted: bool,
}

/// The state shared by the accept loops, every session and the `Sink` handle.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    state: Mutex<State>,
    arrived: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking session cannot leave the counters half-updated in a way that matters
        // for a test server, so a poisoned lock is still used.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Now on the sink's clock: the real time, plus what [`Shared::advance`] added.
    pub(crate) fn now(&self) -> Instant {
        Self::now_in(&self.lock())
    }

    fn now_in(state: &State) -> Instant {
        Instant::now() + state.skew
    }

    /// Moves the sink's clock `by` ahead.
    pub(crate) fn advance(&self, by: Duration) {
        let mut state = self.lock();
        state.skew = state.skew.saturating_add(by);
    }

    /// True the first time this sink sees `address` (compared case-insensitively).
    pub(crate) fn first_time(&self, address: &str) -> bool {
        let mut state = self.lock();
        let now = Self::now_in(&state);
        match state.seen.entry(address.to_ascii_lowercase()) {
            Entry::Vacant(entry) => {
                entry.insert(now);
                true
            }
            Entry::Occupied(_) => false,
        }
    }

    /// When this sink first saw `address` (compared case-insensitively); now if never.
    pub(crate) fn first_seen_at(&self, address: &str) -> Instant {
        let mut state = self.lock();
        let now = Self::now_in(&state);
        *state
            .seen
            .entry(address.to_ascii_lowercase())
            .or_insert(now)
    }

    /// True, counted as throttled, when `domain` is over `limit` now (for a refusal at MAIL).
    pub(crate) fn over_limit(&self, domain: &str, limit: &RateLimit) -> bool {
        let mut state = self.lock();
        let now = Self::now_in(&state);
        let window = state.windows.entry(domain.to_owned()).or_default();
        if !window.full(now, limit) {
            return false;
        }
        state.stats.throttled += 1;
        state
            .stats
            .domains
            .entry(domain.to_owned())
            .or_default()
            .throttled += 1;
        true
    }

    /// True (and counted in the window) when one more RCPT for `domain` keeps under
    /// `limit`; false, counted as throttled overall and for the domain, when over it.
    pub(crate) fn admit(&self, domain: &str, limit: &RateLimit) -> bool {
        let mut state = self.lock();
        let now = Self::now_in(&state);
        let window = state.windows.entry(domain.to_owned()).or_default();
        if window.admit(now, limit) {
            return true;
        }
        state.stats.throttled += 1;
        state
            .stats
            .domains
            .entry(domain.to_owned())
            .or_default()
            .throttled += 1;
        false
    }

    /// Counts a new connection and gives it the next sequence number (1-based); the guard
    /// counts it closed when dropped.
    pub(crate) fn connection_opened(self: &Arc<Self>) -> ConnGuard {
        let mut state = self.lock();
        let stats = &mut state.stats;
        stats.connections_total += 1;
        stats.current_connections += 1;
        stats.max_concurrent_connections = stats
            .max_concurrent_connections
            .max(stats.current_connections);
        let id = stats.connections_total;
        drop(state);
        ConnGuard {
            shared: Arc::clone(self),
            id,
            messages: 0,
            domains: Vec::new(),
        }
    }

    /// Counts a completed TLS handshake, and whether it resumed an earlier session.
    pub(crate) fn tls_session(&self, resumed: bool) {
        let mut state = self.lock();
        state.stats.tls_sessions += 1;
        if resumed {
            state.stats.tls_resumed += 1;
        }
    }

    /// Counts a STARTTLS whose handshake the sink sabotaged.
    pub(crate) fn broken_tls_handshake(&self) {
        self.lock().stats.broken_tls_handshakes += 1;
    }

    /// Counts an AUTH refused with 535.
    pub(crate) fn auth_failure(&self) {
        self.lock().stats.auth_failures += 1;
    }

    /// Counts an RCPT refused by a script.
    pub(crate) fn recipient_rejected(&self) {
        self.lock().stats.rejected_recipients += 1;
    }

    /// True (and counted) when `block` refuses a recipient at `domain` now: the sink has
    /// accepted `block.after` messages and the block was not lifted.
    pub(crate) fn policy_blocks(&self, domain: &str, block: &PolicyBlock) -> bool {
        let mut state = self.lock();
        let blocks =
            !state.block_lifted && domain == block.domain && state.stats.messages >= block.after;
        if blocks {
            state.stats.policy_blocked += 1;
        }
        blocks
    }

    /// Ends `policy_block`: every recipient is taken again.
    pub(crate) fn lift_block(&self) {
        self.lock().block_lifted = true;
    }

    /// Counts a message refused after its body.
    pub(crate) fn message_rejected(&self) {
        self.lock().stats.rejected_messages += 1;
    }

    /// Counts a transaction refused at MAIL FROM or DATA.
    pub(crate) fn transaction_refused(&self) {
        self.lock().stats.refused_transactions += 1;
    }

    /// Counts a connection whose banner was held back.
    pub(crate) fn banner_held(&self) {
        self.lock().stats.slow_banners += 1;
    }

    /// Records an accepted message, the `on_connection`-th on its connection, wakes
    /// `wait_for`, and returns its sequence number.
    fn record(&self, received: Received, on_connection: u64) -> u64 {
        let mut state = self.lock();
        let most = &mut state.stats.max_messages_per_connection;
        *most = (*most).max(on_connection);
        let mut domains: Vec<String> = received
            .rcpt_to
            .iter()
            .map(|r| super::script::domain_of(r))
            .collect();
        for domain in &domains {
            state
                .stats
                .domains
                .entry(domain.clone())
                .or_default()
                .recipients += 1;
        }
        domains.sort_unstable();
        domains.dedup();
        for domain in domains {
            state.stats.domains.entry(domain).or_default().messages += 1;
        }
        state.stats.messages += 1;
        state.received.push(received);
        let id = state.received.len() as u64;
        drop(state);
        self.arrived.notify_waiters();
        id
    }

    /// A copy of every accepted message so far.
    pub(crate) fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// Removes and returns the messages received so far.
    pub(crate) fn take_received(&self) -> Vec<Received> {
        std::mem::take(&mut self.lock().received)
    }

    /// How many messages were accepted so far.
    pub(crate) fn count(&self) -> usize {
        self.lock().received.len()
    }

    /// How many times every open connection was told to close.
    pub(crate) fn close_epoch(&self) -> u64 {
        self.lock().close_epoch
    }

    /// Tells every connection open now to close at its next MAIL.
    pub(crate) fn close_all(&self) {
        self.lock().close_epoch += 1;
    }

    /// A copy of the counters.
    pub(crate) fn stats(&self) -> SinkStats {
        self.lock().stats.clone()
    }

    /// The notifier woken after each accepted message.
    pub(crate) fn arrived(&self) -> &Notify {
        &self.arrived
    }

    /// A one-paragraph account of what the sink saw, for timeout errors.
    pub(crate) fn summary(&self) -> String {
        let state = self.lock();
        let s = &state.stats;
        let mut out = format!(
            "{} connection(s) ({} open), {} TLS session(s) ({} resumed, {} sabotaged), \
             {} auth failure(s), {} refused recipient(s), {} throttled, {} refused message(s), \
             {} refused transaction(s), {} slow banner(s), {} policy block(s)",
            s.connections_total,
            s.current_connections,
            s.tls_sessions,
            s.tls_resumed,
            s.broken_tls_handshakes,
            s.auth_failures,
            s.rejected_recipients,
            s.throttled,
            s.rejected_messages,
            s.refused_transactions,
            s.slow_banners,
            s.policy_blocked
        );
        let skip = state.received.len().saturating_sub(5);
        if !state.received.is_empty() {
            out.push_str("; last accepted:");
        }
        for r in &state.received[skip..] {
            let _ = write!(
                out,
                " [from <{}> to {:?}, {} bytes]",
                r.mail_from, r.rcpt_to, r.size
            );
        }
        out
    }
}

/// Keeps a connection counted as open (overall and per recipient domain) until dropped,
/// and counts the messages accepted on it.
#[derive(Debug)]
pub(crate) struct ConnGuard {
    shared: Arc<Shared>,
    id: u64,
    messages: u64,
    domains: Vec<String>,
}

impl ConnGuard {
    /// The connection's sequence number within the sink (1-based).
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Notes that this connection gave a RCPT for `domain` (counted once per connection,
    /// with the time of that first RCPT).
    pub(crate) fn note_domain(&mut self, domain: String) {
        if self.domains.contains(&domain) {
            return;
        }
        let mut state = self.shared.lock();
        let stats = state.stats.domains.entry(domain.clone()).or_default();
        stats.connections += 1;
        stats.current_connections += 1;
        stats.max_concurrent_connections = stats
            .max_concurrent_connections
            .max(stats.current_connections);
        if stats.connection_opened_at.len() < MAX_OPENED_AT {
            stats.connection_opened_at.push(Instant::now());
        }
        drop(state);
        self.domains.push(domain);
    }

    /// Records a message accepted on this connection, wakes `wait_for`, and returns its
    /// sequence number within the sink.
    pub(crate) fn record(&mut self, received: Received) -> u64 {
        self.messages += 1;
        self.shared.record(received, self.messages)
    }

    /// Messages accepted on this connection so far.
    pub(crate) fn messages(&self) -> u64 {
        self.messages
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.stats.current_connections = state.stats.current_connections.saturating_sub(1);
        for domain in &self.domains {
            if let Some(stats) = state.stats.domains.get_mut(domain) {
                stats.current_connections = stats.current_connections.saturating_sub(1);
            }
        }
    }
}
