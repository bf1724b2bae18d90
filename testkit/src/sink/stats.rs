//! What the sink reports: each accepted transaction as it arrived, and the counters a test
//! reads to prove shaping (connections, rates, throttling, TLS) per sink and per domain.

use std::collections::BTreeMap;
use std::time::Instant;

/// Most entries kept in [`DomainStats::connection_opened_at`].
pub(crate) const MAX_OPENED_AT: usize = 10_000;

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
    /// When the sink accepted the transaction (just before its final 250 reply): arrival
    /// rates per domain are computed from these.
    pub at: Instant,
    /// The connection it arrived on: the sink's connection sequence number, 1 for the first
    /// connection accepted, shared by every listener of one sink.
    pub connection: u64,
    /// The client's address and port (the connection's source address).
    pub peer: Option<std::net::SocketAddr>,
    /// The name the client gave in its last EHLO or HELO on the connection (after STARTTLS,
    /// the one said over TLS); empty if it gave none.
    pub helo: String,
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
    /// RCPTs for this domain refused by the sink's rate limit (421 or 451).
    pub throttled: u64,
    /// When each connection counted in `connections` gave its first RCPT for this domain,
    /// in that order: proves a connection rate. Only the first 10,000 are kept.
    pub connection_opened_at: Vec<Instant>,
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
    /// Most transactions accepted on one connection: proves a messages-per-connection cap.
    pub max_messages_per_connection: u64,
    /// Successful TLS handshakes (STARTTLS or implicit).
    pub tls_sessions: u64,
    /// Those of `tls_sessions` that resumed an earlier TLS session instead of a full
    /// handshake.
    pub tls_resumed: u64,
    /// STARTTLS commands answered with 220 and then sabotaged (`broken_starttls`).
    pub broken_tls_handshakes: u64,
    /// AUTH attempts refused with 535.
    pub auth_failures: u64,
    /// Fully accepted messages (the length of `received()`).
    pub messages: u64,
    /// RCPT commands refused (4xx or 5xx) by a script.
    pub rejected_recipients: u64,
    /// RCPT commands refused by the rate limit (421 or 451); not in `rejected_recipients`.
    pub throttled: u64,
    /// Messages refused after their body (the `reject` script or the size limit).
    pub rejected_messages: u64,
    /// Transactions refused at MAIL FROM (`mail550`) or DATA (`data554`) by a script.
    pub refused_transactions: u64,
    /// Connections whose banner was held back (`SinkConfig::slow_banner`).
    pub slow_banners: u64,
    /// RCPT commands refused by `SinkConfig::policy_block`; not in `rejected_recipients`.
    pub policy_blocked: u64,
    /// Per recipient domain (lower-cased) counts.
    pub domains: BTreeMap<String, DomainStats>,
}
