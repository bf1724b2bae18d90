//! What the sink remembers, shared by all its connections: the accepted messages, the
//! addresses already seen by the first-time-only scripts, and the counters. One std `Mutex`,
//! held for a few instructions at a time and never across an await.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

/// One fully accepted transaction, exactly as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The reverse path from `MAIL FROM`, without angle brackets (empty for `<>`).
    pub mail_from: String,
    /// The accepted recipients, in the order they were given; refused ones are absent.
    pub rcpt_to: Vec<String>,
    /// The body bytes after un-dot-stuffing (CRLF line endings as sent); empty when the sink
    /// runs with `keep_bodies: false`.
    pub data: Vec<u8>,
    /// The body size in bytes after un-dot-stuffing, kept even when `data` is not.
    pub size: usize,
    /// Whether the transaction ran over TLS (STARTTLS or implicit).
    pub tls: bool,
    /// The user that authenticated on the connection, if any.
    pub auth_user: Option<String>,
}

impl Received {
    /// The body as text (lossy UTF-8), for assertions.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.data)
    }
}

/// Connection and message counts for one recipient domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainStats {
    /// Connections that gave at least one RCPT for this domain.
    pub connections: u64,
    /// Most such connections open at the same time: proves per-domain shaping.
    pub max_concurrent_connections: u64,
    /// Such connections open right now.
    pub current_connections: u64,
    /// Accepted messages with at least one recipient in this domain.
    pub messages: u64,
    /// Accepted recipients in this domain.
    pub recipients: u64,
}

/// Counters over the sink's lifetime.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Connections accepted.
    pub connections_total: u64,
    /// Most connections open at the same time.
    pub max_concurrent_connections: u64,
    /// Connections open right now.
    pub current_connections: u64,
    /// Successful TLS handshakes (STARTTLS or implicit).
    pub tls_sessions: u64,
    /// AUTH attempts refused with 535.
    pub auth_failures: u64,
    /// Fully accepted messages (the length of `received()`).
    pub messages: u64,
    /// RCPT commands refused (4xx or 5xx) by a script.
    pub rejected_recipients: u64,
    /// Messages refused after their body (the `reject` script or the size limit).
    pub rejected_messages: u64,
    /// Per recipient domain (lower-cased) counts.
    pub domains: BTreeMap<String, DomainStats>,
}

#[derive(Debug, Default)]
struct State {
    received: Vec<Received>,
    seen: HashSet<String>,
    stats: SinkStats,
}

/// The state shared by the accept loop, every session and the `Sink` handle.
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

    /// True the first time this sink sees `address` (compared case-insensitively).
    pub(crate) fn first_time(&self, address: &str) -> bool {
        self.lock().seen.insert(address.to_ascii_lowercase())
    }

    /// Counts a new connection; the guard counts it closed when dropped.
    pub(crate) fn connection_opened(self: &Arc<Self>) -> ConnGuard {
        let mut state = self.lock();
        let stats = &mut state.stats;
        stats.connections_total += 1;
        stats.current_connections += 1;
        stats.max_concurrent_connections = stats
            .max_concurrent_connections
            .max(stats.current_connections);
        drop(state);
        ConnGuard {
            shared: Arc::clone(self),
            domains: Vec::new(),
        }
    }

    /// Counts a completed TLS handshake.
    pub(crate) fn tls_session(&self) {
        self.lock().stats.tls_sessions += 1;
    }

    /// Counts an AUTH refused with 535.
    pub(crate) fn auth_failure(&self) {
        self.lock().stats.auth_failures += 1;
    }

    /// Counts an RCPT refused by a script.
    pub(crate) fn recipient_rejected(&self) {
        self.lock().stats.rejected_recipients += 1;
    }

    /// Counts a message refused after its body.
    pub(crate) fn message_rejected(&self) {
        self.lock().stats.rejected_messages += 1;
    }

    /// Records an accepted message, wakes `wait_for`, and returns its sequence number.
    pub(crate) fn record(&self, received: Received) -> u64 {
        let mut state = self.lock();
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
            "{} connection(s) ({} open), {} TLS session(s), {} auth failure(s), \
             {} refused recipient(s), {} refused message(s)",
            s.connections_total,
            s.current_connections,
            s.tls_sessions,
            s.auth_failures,
            s.rejected_recipients,
            s.rejected_messages
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

/// Keeps a connection counted as open (overall and per recipient domain) until dropped.
#[derive(Debug)]
pub(crate) struct ConnGuard {
    shared: Arc<Shared>,
    domains: Vec<String>,
}

impl ConnGuard {
    /// Notes that this connection gave a RCPT for `domain` (counted once per connection).
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
        drop(state);
        self.domains.push(domain);
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
