//! The sink: a small but real SMTP server on loopback that Volley's tests, `volley demo` and
//! the benchmarks use as the receiving relay or MX. It speaks ESMTP with PIPELINING,
//! 8BITMIME, SIZE, STARTTLS or implicit TLS, AUTH PLAIN/LOGIN, CHUNKING and enhanced status
//! codes, and records exactly what arrived.
//!
//! Behaviour is scripted by each recipient's local-part prefix (case-insensitive):
//!
//! | prefix     | what the sink does                                                        |
//! |------------|---------------------------------------------------------------------------|
//! | `bounce`   | RCPT gets `550 5.1.1 <addr>: user unknown`                                |
//! | `defer`    | RCPT gets `451 4.7.1 try again later` the first time, accepted afterwards |
//! | `drop`     | the connection closes once DATA's body starts, the first time             |
//! | `slow`     | the reply after the body waits `slow_delay`                               |
//! | `421`      | RCPT gets `421 4.7.0 closing` and the connection closes, first time only  |
//! | `reject`   | the body is refused with `554 5.7.1 message rejected`, every time         |
//! | other      | accepted                                                                  |
//!
//! A message is recorded for its accepted recipients only, and only once the whole
//! transaction was accepted. "First time" is per address (case-insensitive) per sink.
//!
//! ```no_run
//! # async fn demo() -> Result<(), volley::sink::SinkError> {
//! use std::time::Duration;
//! use volley::sink::{Sink, SinkConfig, SinkTls};
//!
//! let sink = Sink::start(SinkConfig { tls: SinkTls::StartTls, ..SinkConfig::default() }).await?;
//! // ... point a client at sink.addr(), trusting sink.ca_pem() ...
//! let got = sink.wait_for(1, Duration::from_secs(5)).await?;
//! # Ok(()) }
//! ```

mod certs;
mod commands;
mod conn;
mod data;
mod error;
mod script;
mod server;
mod session;
mod state;
#[cfg(test)]
mod tests;

use std::time::Duration;

pub use certs::TestCa;
pub use error::SinkError;
pub use server::Sink;
pub use state::{DomainStats, Received, SinkStats};

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
    /// How long the `slow` script holds the reply after the body. Default 2 s.
    pub slow_delay: Duration,
    /// Reply by the recipient's local part (`bounce…@`, `defer…@`, …). Default `true`;
    /// `false` accepts every recipient, for a real receiver such as `volley bounces listen`.
    pub scripted: bool,
    /// Connections served at once; past it a new connection gets `421 4.7.0` at the banner
    /// and is closed, as a relay capping connections does. Default: no cap.
    pub max_connections: Option<u64>,
}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig {
            hostname: "sink.test".to_owned(),
            tls: SinkTls::None,
            auth: None,
            pipelining: true,
            chunking: false,
            size_limit: None,
            reply_delay: Duration::ZERO,
            keep_bodies: true,
            slow_delay: Duration::from_secs(2),
            scripted: true,
            max_connections: None,
        }
    }
}

impl std::fmt::Debug for SinkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkConfig")
            .field("hostname", &self.hostname)
            .field("tls", &self.tls)
            .field("auth_user", &self.auth.as_ref().map(|(user, _)| user))
            .field("pipelining", &self.pipelining)
            .field("chunking", &self.chunking)
            .field("size_limit", &self.size_limit)
            .field("reply_delay", &self.reply_delay)
            .field("keep_bodies", &self.keep_bodies)
            .field("slow_delay", &self.slow_delay)
            .finish()
    }
}
