//! The bounce receiver: the SMTP server for the bounce domain's MX, the only SMTP server in
//! production, written for a public port and hostile clients.
//!
//! - **Bounded.** Command lines of at most 512 octets (longer: `500`; a line that never ends
//!   is cut off and the connection closed), messages of at most `max_message_size` bytes
//!   counted as they arrive (`552 5.3.4`, the rest read and dropped, never buffered), at most
//!   `max_recipients` per transaction (`452 4.5.3`), `max_connections` sessions overall and
//!   `max_connections_per_ip` per client address (`421 4.7.0` and close), a timeout per
//!   command, per DATA block and per session (`421 4.4.2` and close), 20 errors per session,
//!   `max_backlog` messages spooled but not yet ingested (`452 4.3.1`).
//!   Memory per session is a fixed 16 KiB buffer whatever the client sends.
//! - **Durable.** Each message is written to a spool file and fsynced (file and folder)
//!   before the client hears `250`; a dedicated thread (off the async runtime) hands it to an
//!   [`Ingest`] and removes it once the ingest says its outcome is flushed. Files left by a
//!   crash are ingested when the receiver next starts.
//! - **STARTTLS** when a certificate and key are configured ([`tls::server_config`]); the
//!   session starts over after the handshake (RFC 3207).
//!
//! The receiver knows nothing of stores or campaigns: `runtime` gives it an [`Ingest`] that
//! parses each message as a DSN or complaint and records it.

mod data;
pub mod error;
mod io;
mod limits;
mod session;
mod spool;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use error::ReceiverError;
use limits::{Limits, Refusal};
use spool::Spool;

/// Where each spooled message goes, on the receiver's ingest thread (never on the async
/// runtime, so it may block).
pub trait Ingest: Send + 'static {
    /// Why a message could not be recorded (logged; the message stays in the spool and is
    /// tried again later).
    type Error: std::fmt::Display;
    /// Records one message; `name` is its spool file name (for logs). The same bytes may come
    /// again after a crash, so recording them twice must change nothing.
    fn ingest(&mut self, name: &str, bytes: &[u8]) -> Result<(), Self::Error>;
    /// Makes what was ingested durable; the spool files are removed once this returns `Ok`.
    fn flush(&mut self) -> Result<(), Self::Error>;
}

/// The receiver's limits, timeouts and folders. Defaults follow RFC 5321 §4.5.3.
#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    /// The name in the banner and the EHLO reply. Default `volley-bounces`.
    pub hostname: String,
    /// The largest message accepted, in bytes (announced as `SIZE`). Default 10 MiB.
    pub max_message_size: u64,
    /// Recipients accepted per transaction (RFC 5321 asks for at least 100). Default 100.
    pub max_recipients: usize,
    /// Sessions open at once, overall. Default 200.
    pub max_connections: usize,
    /// Sessions open at once from one client address. Default 20.
    pub max_connections_per_ip: usize,
    /// The longest wait for a command line (and to write a reply). Default 5 minutes.
    pub command_timeout: Duration,
    /// The longest wait for each block of DATA. Default 3 minutes.
    pub data_block_timeout: Duration,
    /// The longest a whole session may last. Default 30 minutes.
    pub session_timeout: Duration,
    /// The spool folder. Default: `bounce-spool` in the current folder (callers with a store
    /// use `<store>/bounce-spool`).
    pub spool: PathBuf,
    /// STARTTLS: the server configuration to offer, or `None` (no STARTTLS). Default `None`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Messages spooled but not yet ingested (the store is slow or failing) past which new
    /// transactions get `452 4.3.1`, so a broken store cannot fill the disk. Default 10,000.
    pub max_backlog: u64,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        ReceiverConfig {
            hostname: "volley-bounces".to_owned(),
            max_message_size: 10 * 1024 * 1024,
            max_recipients: 100,
            max_connections: 200,
            max_connections_per_ip: 20,
            command_timeout: Duration::from_secs(5 * 60),
            data_block_timeout: Duration::from_secs(3 * 60),
            session_timeout: Duration::from_secs(30 * 60),
            spool: PathBuf::from("bounce-spool"),
            tls: None,
            max_backlog: 10_000,
        }
    }
}

/// The receiver's counters, updated by sessions and the ingest thread.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Connections admitted.
    pub(crate) accepted: AtomicU64,
    /// Connections refused with `421` (a connection limit).
    pub(crate) refused: AtomicU64,
    /// Messages spooled and acknowledged with `250`.
    pub(crate) messages: AtomicU64,
    /// Spooled messages ingested and removed from the spool.
    pub(crate) ingested: AtomicU64,
    /// Messages refused for their size.
    pub(crate) too_big: AtomicU64,
    /// Recipients refused with `452` (too many in one transaction).
    pub(crate) too_many_rcpts: AtomicU64,
    /// Command lines past 512 octets.
    pub(crate) long_lines: AtomicU64,
    /// Sessions closed by a timeout.
    pub(crate) timeouts: AtomicU64,
}

/// What the receiver has done since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections admitted.
    pub accepted: u64,
    /// Connections refused with `421` (a connection limit).
    pub refused: u64,
    /// Messages spooled and acknowledged with `250`.
    pub messages: u64,
    /// Spooled messages ingested and removed from the spool.
    pub ingested: u64,
    /// Messages refused for their size.
    pub too_big: u64,
    /// Recipients refused with `452` (too many in one transaction).
    pub too_many_rcpts: u64,
    /// Command lines past 512 octets.
    pub long_lines: u64,
    /// Sessions closed by a timeout.
    pub timeouts: u64,
}

impl Counters {
    /// The counters now.
    pub(crate) fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            accepted: get(&self.accepted),
            refused: get(&self.refused),
            messages: get(&self.messages),
            ingested: get(&self.ingested),
            too_big: get(&self.too_big),
            too_many_rcpts: get(&self.too_many_rcpts),
            long_lines: get(&self.long_lines),
            timeouts: get(&self.timeouts),
        }
    }
}

impl Counters {
    /// Messages acknowledged but not yet ingested.
    pub(crate) fn backlog(&self) -> u64 {
        let spooled = self.messages.load(Ordering::Relaxed);
        spooled.saturating_sub(self.ingested.load(Ordering::Relaxed))
    }
}

/// What every session shares.
pub(crate) struct Shared {
    config: ReceiverConfig,
    tls: Option<tokio_rustls::TlsAcceptor>,
    spool: Spool,
    waker: SyncSender<()>,
    stats: Arc<Counters>,
}

/// A running bounce receiver.
pub struct Receiver {
    addr: SocketAddr,
    stats: Arc<Counters>,
    limits: Arc<Limits>,
    accepting: tokio::task::JoinHandle<()>,
    ingest: std::thread::JoinHandle<()>,
}

impl Receiver {
    /// Starts receiving on `listener` until `cancel` fires. Messages left in the spool by an
    /// earlier run are ingested first.
    pub fn start<I: Ingest>(
        listener: TcpListener,
        config: ReceiverConfig,
        ingest: I,
        cancel: CancellationToken,
    ) -> Result<Receiver, ReceiverError> {
        let addr = listener.local_addr().map_err(ReceiverError::Addr)?;
        let spool = Spool::open(&config.spool)?;
        let stats = Arc::new(Counters::default());
        let (waker, wake) = std::sync::mpsc::sync_channel(1);
        let thread_spool = spool.clone();
        let thread_stats = Arc::clone(&stats);
        let ingest = std::thread::Builder::new()
            .name("volley-bounce-ingest".to_owned())
            .spawn(move || spool::run_ingest(thread_spool, ingest, wake, thread_stats))
            .map_err(ReceiverError::Thread)?;
        let limits = Limits::new(config.max_connections, config.max_connections_per_ip);
        let shared = Arc::new(Shared {
            tls: config.tls.clone().map(tokio_rustls::TlsAcceptor::from),
            config,
            spool,
            waker,
            stats: Arc::clone(&stats),
        });
        let accepting = tokio::spawn(accept(listener, shared, Arc::clone(&limits), cancel));
        Ok(Receiver {
            addr,
            stats,
            limits,
            accepting,
            ingest,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What it has done so far.
    pub fn stats(&self) -> Stats {
        self.stats.snapshot()
    }

    /// Sessions open now.
    pub fn open_sessions(&self) -> usize {
        self.limits.open().0
    }

    /// Waits until it has stopped (after `cancel` fired): sessions closed, everything
    /// spooled ingested.
    pub async fn stopped(self) {
        let _ = self.accepting.await;
        let ingest = self.ingest;
        let _ = tokio::task::spawn_blocking(move || ingest.join()).await;
    }
}

/// Accepts clients until `cancel` fires, then waits for their sessions to end.
async fn accept(
    listener: TcpListener,
    shared: Arc<Shared>,
    limits: Arc<Limits>,
    cancel: CancellationToken,
) {
    let sessions = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: pause rather than spin.
                tracing::warn!(%error, "bounce receiver: accept failed");
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_millis(100)) => continue,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        match limits.admit(peer.ip()) {
            Ok(permit) => {
                shared.stats.accepted.fetch_add(1, Ordering::Relaxed);
                let shared = Arc::clone(&shared);
                let cancel = cancel.clone();
                sessions.spawn(async move {
                    session::serve(stream, peer, shared, cancel).await;
                    drop(permit);
                });
            }
            Err(refusal) => {
                shared.stats.refused.fetch_add(1, Ordering::Relaxed);
                let why = match refusal {
                    Refusal::Total => "421 4.7.0 Too many connections, try again later\r\n",
                    Refusal::PerIp => {
                        "421 4.7.0 Too many connections from your address, try again later\r\n"
                    }
                };
                // Never waits: a client that does not read gets the close alone.
                let _ = stream.try_write(why.as_bytes());
            }
        }
    }
    drop(listener);
    sessions.close();
    sessions.wait().await;
    // The last waker goes with `shared`: the ingest thread drains the spool and ends.
    drop(shared);
}
