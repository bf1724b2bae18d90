//! The sink: a small but real SMTP server on loopback that Volley's tests, `volley demo` and
//! the benchmarks use as the receiving relay or MX. It speaks ESMTP with PIPELINING,
//! 8BITMIME, SIZE, STARTTLS or implicit TLS, AUTH PLAIN/LOGIN/XOAUTH2, CHUNKING and enhanced status
//! codes, and records exactly what arrived.
//!
//! Behaviour is scripted by each recipient's local-part prefix (case-insensitive):
//!
//! | prefix     | what the sink does                                                        |
//! |------------|---------------------------------------------------------------------------|
//! | `bounce`   | RCPT gets `550 5.1.1 <addr>: user unknown`                                |
//! | `blocked`  | RCPT gets `550 5.7.1 <addr>: message blocked by policy`, every time       |
//! | `defer`    | RCPT gets `451 4.7.1 try again later` the first time, accepted afterwards |
//! | `drop`     | the connection closes once DATA's body starts, the first time             |
//! | `slow`     | the reply after the body waits `slow_delay`                               |
//! | `421`      | RCPT gets `421 4.7.0 closing` and the connection closes, first time only  |
//! | `reject`   | the body is refused with `554 5.7.1 message rejected`, every time         |
//! | `grey`     | RCPT gets `451 4.7.1 greylisted, try again later` until the address was   |
//! |            | first seen at least `greylist_delay` ago, accepted from then on           |
//! | `throttle` | RCPT gets `450 4.7.0 too many messages, slow down` the first time,        |
//! |            | accepted afterwards                                                       |
//! | `mail550`  | MAIL FROM gets `550 5.7.1 <sender>: sender rejected`, every time, when    |
//! |            | the transaction's RCPTs came pipelined with it and one names the address  |
//! | `data554`  | DATA gets `554 5.7.1 DATA refused by policy` (no 354), every time         |
//! | `stall`    | the reply after the body waits `slow_delay`, the first time only; the     |
//! |            | message is accepted all the same, even if the client gave up meanwhile    |
//! | `data451`  | the reply after the body is `451 4.3.0 temporary failure`, first time only |
//! | other      | accepted                                                                  |
//!
//! A message is recorded for its accepted recipients only, and only once the whole
//! transaction was accepted. "First time" and "first seen" are per address
//! (case-insensitive) per sink.
//!
//! Beyond the scripts, a sink can behave like a demanding receiver, so shaping can be
//! proven against it: a per-domain [`RateLimit`] (`421` or `451` past N accepted recipients
//! within a sliding window), a STARTTLS that is offered but whose handshake always fails
//! (`broken_starttls`), a banner held back on the first connections (`slow_banner`), a
//! connection cap (`max_connections`), a per-connection message cap answered with `421`
//! (`messages_per_connection`), every open connection closed with `421` at chosen totals
//! (`close_all_at`), and TLS session resumption.
//! [`Received`] carries each message's arrival time and connection number; [`SinkStats`]
//! and [`DomainStats`] count connections, messages per connection, throttled recipients,
//! resumed and sabotaged TLS handshakes. One sink may listen on several addresses
//! ([`Sink::start_on_many`]), all sharing its state, as several MX hosts of one receiver.
//!
//! ```no_run
//! # async fn demo() -> Result<(), volley_testkit::sink::SinkError> {
//! use std::time::Duration;
//! use volley_testkit::sink::{Sink, SinkConfig, SinkTls};
//!
//! let sink = Sink::start(SinkConfig { tls: SinkTls::StartTls, ..SinkConfig::default() }).await?;
//! // ... point a client at sink.addr(), trusting sink.ca_pem() ...
//! let got = sink.wait_for(1, Duration::from_secs(5)).await?;
//! # Ok(()) }
//! ```

mod block;
mod certs;
mod commands;
mod conn;
mod data;
mod error;
mod rate;
mod rcpt;
mod script;
mod server;
mod session;
mod state;
mod stats;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_faults;
mod xoauth2;

use std::time::Duration;

pub use block::{PolicyBlock, GMAIL_UNSOLICITED};
pub use certs::TestCa;
pub use error::SinkError;
pub use rate::{RateLimit, ThrottleReply};
pub use server::Sink;
pub use stats::{DomainStats, Received, SinkStats};

/// A banner held back on a sink's first connections, so a client's banner timeout fires
/// ([`SinkConfig::slow_banner`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlowBanner {
    /// How many connections, the first ones the sink accepts, get the slow banner.
    pub connections: u64,
    /// How long each of them waits before the `220` greeting.
    pub delay: Duration,
}

/// How the sink offers TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SinkTls {
    /// Plain SMTP only (the default).
    #[default]
    None,
    /// Plain at first, STARTTLS advertised and accepted.
    StartTls,
    /// TLS from the first byte (as on port 465).
    Implicit,
}

/// What the sink offers and how it behaves. `SinkConfig::default()` is a plain, pipelining,
/// body-keeping sink without AUTH or CHUNKING.
#[derive(Clone)]
pub struct SinkConfig {
    /// Name in the banner and EHLO reply. Default `"sink.test"`.
    pub hostname: String,
    /// TLS mode. Default [`SinkTls::None`].
    pub tls: SinkTls,
    /// Required user and password; `MAIL` before AUTH gets `530 5.7.0`. With TLS configured,
    /// AUTH is offered only after TLS. Default `None` (no AUTH).
    pub auth: Option<(String, String)>,
    /// Required user and the one OAuth 2.0 access token accepted with AUTH XOAUTH2
    /// (advertised with PLAIN and LOGIN when `auth` is set too). Any other token gets
    /// Google's answer: `334` with a base64 JSON error, then `535 5.7.8` after the client's
    /// empty line (counted in `SinkStats::auth_failures`). Default `None`.
    pub xoauth2: Option<(String, String)>,
    /// Advertise PIPELINING. Default `true`.
    pub pipelining: bool,
    /// Advertise CHUNKING and accept BDAT. Default `false`.
    pub chunking: bool,
    /// Largest message accepted (advertised as `SIZE n`); larger ones get `552 5.3.4`.
    /// Default `None` (advertised as `SIZE 0`, no limit).
    pub size_limit: Option<usize>,
    /// Wait before each batch of replies is written, simulating a round trip (a pipelined
    /// batch waits once, as on a real link). Default zero.
    pub reply_delay: Duration,
    /// Keep message bodies; `false` keeps envelopes and sizes only, for benches. Default `true`.
    pub keep_bodies: bool,
    /// How long the `slow` and `stall` scripts hold the reply after the body. Default 2 s.
    pub slow_delay: Duration,
    /// Reply by the recipient's local part (`bounce…@`, `defer…@`, …). Default `true`;
    /// `false` accepts every recipient, for a real receiver such as `volley bounces listen`.
    pub scripted: bool,
    /// Connections served at once; past it a new connection gets `421 4.7.0` at the banner
    /// and is closed, as a relay capping connections does. Default: no cap.
    pub max_connections: Option<u64>,
    /// Recipients accepted per domain within a sliding window; past it a RCPT for that
    /// domain is throttled with 421 (closing) or 451, counted in `SinkStats::throttled`.
    /// Applies whether or not `scripted` is on. Default `None` (no limit).
    pub rate_limit: Option<RateLimit>,
    /// Offer STARTTLS and answer it `220`, then sabotage the handshake (garbage instead of
    /// a ServerHello, then close), as a receiver with a broken TLS setup does; counted in
    /// `SinkStats::broken_tls_handshakes`. Only with [`SinkTls::StartTls`]. Default `false`.
    pub broken_starttls: bool,
    /// How long after its first attempt a `grey…@` address stays greylisted. Default 1 s.
    pub greylist_delay: Duration,
    /// Hold the banner of the first connections, counted in `SinkStats::slow_banners`;
    /// later connections are greeted at once. Default `None` (every banner at once).
    pub slow_banner: Option<SlowBanner>,
    /// Messages accepted per connection; the MAIL after them gets `421 4.7.0 Too many
    /// messages on this connection` and the connection closes, as many relays do. Default
    /// `None` (no cap).
    pub messages_per_connection: Option<u64>,
    /// When the sink's total of accepted messages reaches one of these, every connection
    /// then open gets `421 4.7.0 Message limit reached` at its next MAIL and is closed
    /// (connections opened afterwards are not). Default empty.
    pub close_all_at: Vec<u64>,
    /// Start refusing one recipient domain with a policy block after a number of accepted
    /// messages, until [`Sink::lift_block`]; counted in `SinkStats::policy_blocked`.
    /// Applies whether or not `scripted` is on. Default `None`.
    pub policy_block: Option<PolicyBlock>,
}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig {
            hostname: "sink.test".to_owned(),
            tls: SinkTls::None,
            auth: None,
            xoauth2: None,
            pipelining: true,
            chunking: false,
            size_limit: None,
            reply_delay: Duration::ZERO,
            keep_bodies: true,
            slow_delay: Duration::from_secs(2),
            scripted: true,
            max_connections: None,
            rate_limit: None,
            broken_starttls: false,
            greylist_delay: Duration::from_secs(1),
            slow_banner: None,
            messages_per_connection: None,
            close_all_at: Vec::new(),
            policy_block: None,
        }
    }
}

impl std::fmt::Debug for SinkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkConfig")
            .field("hostname", &self.hostname)
            .field("tls", &self.tls)
            .field("auth_user", &self.auth.as_ref().map(|(user, _)| user))
            .field("xoauth2_user", &self.xoauth2.as_ref().map(|(user, _)| user))
            .field("pipelining", &self.pipelining)
            .field("chunking", &self.chunking)
            .field("size_limit", &self.size_limit)
            .field("reply_delay", &self.reply_delay)
            .field("keep_bodies", &self.keep_bodies)
            .field("slow_delay", &self.slow_delay)
            .field("scripted", &self.scripted)
            .field("max_connections", &self.max_connections)
            .field("rate_limit", &self.rate_limit)
            .field("broken_starttls", &self.broken_starttls)
            .field("greylist_delay", &self.greylist_delay)
            .field("slow_banner", &self.slow_banner)
            .field("messages_per_connection", &self.messages_per_connection)
            .field("close_all_at", &self.close_all_at)
            .field("policy_block", &self.policy_block)
            .finish()
    }
}
