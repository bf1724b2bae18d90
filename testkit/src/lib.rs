//! Volley's test kit: the loopback servers and helpers that the engine's tests, the `volley`
//! binary's tests, `volley demo`, `volley sink`, `volley dns` and the benchmarks share. None
//! of it is part of the engine: the engine takes this crate as a dev-dependency only.
//!
//! ```text
//! sink/        a real SMTP server on loopback, scripted by recipient local-part
//! nameserver/  a real DNS server on loopback (UDP and TCP) answering from a Zone
//! campaign     CampaignToml: a campaign.toml for a test, built field by field
//! http         a minimal HTTP/1.1 client for the tracking server and the API
//! script_server ScriptServer: a scripts/*.py receiving server on Python's aiosmtpd
//! postgres     TempCluster: a throwaway PostgreSQL cluster (initdb + pg_ctl) on loopback
//! store        VOLLEY_TEST_STORE: sled folders, or databases of one cluster per test binary
//! error        volley_testkit::Error: the servers' errors under one roof
//! ```
//!
//! `sink` and `nameserver` are written like production code (no panics, bounded
//! everything): `volley demo` runs them for users. `campaign` and `http` are test helpers:
//! like `assert!`, they panic when something goes wrong, and so fail the test that called them.

pub mod campaign;
mod error;
pub mod http;
pub mod nameserver;
pub mod postgres;
pub mod script_server;
pub mod sink;
pub mod store;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

pub use error::Error;

/// The bound on every await in a test (a send, an HTTP answer, a connection): generous, so
/// a slow or busy machine never fails a test, yet a hung one ends.
pub const LIMIT: Duration = Duration::from_secs(60);

/// The repository's `fixtures/` folder (DKIM keys, TLS certificates, bounce samples).
pub fn fixtures() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures"))
}

/// How many times each recipient address reached `sink` (a message with two recipients
/// counts once for each).
pub fn arrivals(sink: &sink::Sink) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for message in sink.received() {
        for rcpt in message.rcpt_to {
            *counts.entry(rcpt).or_insert(0) += 1;
        }
    }
    counts
}
