//! One SMTP connection to the sink: the buffered read/write loop and the DATA/BDAT body
//! states. Replies collect in a write buffer that is flushed only when no complete pipelined
//! input is left to process, so a pipelined batch costs one write. Commands live in
//! `commands.rs`.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;

use super::conn::Conn;
use super::data::DataScan;
use super::script::Script;
use super::state::{ConnGuard, Shared};
use super::stats::Received;
use super::SinkConfig;

/// Longest command line accepted before the sink gives up on the connection.
const MAX_LINE: usize = 4096;
/// Read at least this much free space into the buffer at a time.
const READ_CHUNK: usize = 64 * 1024;
/// How long a sabotaged STARTTLS waits for the client's first TLS bytes.
const HELLO_WAIT: Duration = Duration::from_secs(10);
/// What a sabotaged STARTTLS sends instead of a ServerHello: no valid TLS record.
const NOT_TLS: &[u8] = b"garbage instead of a TLS ServerHello\r\n";

/// What every session of one sink shares: settings, state and TLS.
pub(crate) struct Context {
    pub(crate) config: SinkConfig,
    pub(crate) shared: Arc<Shared>,
    pub(crate) acceptor: Option<TlsAcceptor>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("config", &self.config)
            .field("tls", &self.acceptor.is_some())
            .finish_non_exhaustive()
    }
}

/// What the session is reading next.
#[derive(Debug)]
pub(crate) enum Mode {
    /// Command lines.
    Command,
    /// A DATA body up to its `.` line.
    Data(DataScan),
    /// A BDAT chunk of `remaining` bytes; `valid` is false when the chunk is to be discarded.
    Bdat {
        remaining: usize,
        last: bool,
        valid: bool,
    },
    /// The base64 response to `AUTH PLAIN`'s empty challenge.
    AuthPlain,
    /// The base64 user name for `AUTH LOGIN`.
    AuthLoginUser,
    /// The base64 password for `AUTH LOGIN`, for this user.
    AuthLoginPass(String),
    /// The base64 response to `AUTH XOAUTH2`'s empty challenge.
    AuthXoauth2,
    /// The client's (empty) answer to the XOAUTH2 error challenge; `535` follows.
    AuthXoauth2Error,
}

/// What the loop does after a step.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Process more buffered input.
    Continue,
    /// Flush replies, then read more input.
    NeedInput,
    /// Flush replies and close.
    Close,
    /// Close at once, without flushing (the `drop` script).
    Abort,
    /// Flush the 220 and run a TLS handshake.
    StartTls,
    /// Flush the 220, then sabotage the handshake and close (`broken_starttls`).
    BreakTls,
}

/// The mail transaction in progress.
#[derive(Debug, Default)]
pub(crate) struct Transaction {
    pub(crate) mail_from: Option<String>,
    pub(crate) rcpts: Vec<(String, Script)>,
    /// The BDAT body collected so far, once the first chunk arrived.
    pub(crate) bdat: Option<DataScan>,
    /// The `drop` script fired: close as soon as body bytes arrive.
    pub(crate) drop_armed: bool,
}

impl Transaction {
    pub(crate) fn has(&self, script: Script) -> bool {
        self.rcpts.iter().any(|(_, s)| *s == script)
    }
}

/// One connection's state.
#[derive(Debug)]
pub(crate) struct Session {
    conn: Conn,
    rbuf: Vec<u8>,
    rpos: usize,
    wbuf: Vec<u8>,
    pub(crate) ctx: Arc<Context>,
    pub(crate) guard: ConnGuard,
    pub(crate) mode: Mode,
    pub(crate) tls: bool,
    pub(crate) greeted: bool,
    pub(crate) auth_user: Option<String>,
    pub(crate) tx: Transaction,
    /// The sink's close-all epoch when this connection opened (`close_all_at`).
    pub(crate) epoch: u64,
    /// The client's address, when the connection came over TCP.
    pub(crate) peer: Option<SocketAddr>,
    /// The name the client gave in its last EHLO or HELO.
    pub(crate) helo: Option<String>,
}

impl Session {
    /// A session over `conn` from `peer`; `tls` is true for implicit TLS.
    pub(crate) fn new(
        conn: Conn,
        ctx: Arc<Context>,
        guard: ConnGuard,
        tls: bool,
        peer: Option<SocketAddr>,
    ) -> Session {
        let epoch = ctx.shared.close_epoch();
        Session {
            conn,
            rbuf: Vec::with_capacity(READ_CHUNK),
            rpos: 0,
            wbuf: Vec::with_capacity(4096),
            ctx,
            guard,
            mode: Mode::Command,
            tls,
            greeted: false,
            auth_user: None,
            tx: Transaction::default(),
            epoch,
            peer,
            helo: None,
        }
    }

    /// Runs the session until QUIT, a scripted close, EOF or an I/O error.
    pub(crate) async fn run(mut self) -> io::Result<()> {
        if let Some(cap) = self.ctx.config.max_connections {
            if self.ctx.shared.stats().current_connections > cap {
                self.reply("421 4.7.0 too many connections from you, try again later");
                return self.flush().await;
            }
        }
        if let Some(slow) = self.ctx.config.slow_banner {
            if self.guard.id() <= slow.connections {
                self.ctx.shared.banner_held();
                tokio::time::sleep(slow.delay).await;
            }
        }
        let banner = format!("220 {} ESMTP Volley sink ready", self.ctx.config.hostname);
        self.reply(&banner);
        loop {
            let step = match self.mode {
                Mode::Data(_) => self.step_data().await,
                Mode::Bdat { .. } => self.step_bdat().await,
                _ => self.step_line(),
            };
            match step {
                Step::Continue => {}
                Step::NeedInput => {
                    self.flush().await?;
                    if !self.fill().await? {
                        return Ok(());
                    }
                }
                Step::Close => {
                    self.flush().await?;
                    let _ = self.conn.shutdown().await;
                    return Ok(());
                }
                Step::Abort => return Ok(()),
                Step::StartTls => self.start_tls().await?,
                Step::BreakTls => return self.break_tls().await,
            }
        }
    }

    /// Queues one reply line (CRLF added).
    pub(crate) fn reply(&mut self, line: &str) {
        self.wbuf.extend_from_slice(line.as_bytes());
        self.wbuf.extend_from_slice(b"\r\n");
    }

    async fn flush(&mut self) -> io::Result<()> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let delay = self.ctx.config.reply_delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        self.conn.write_all(&self.wbuf).await?;
        self.conn.flush().await?;
        self.wbuf.clear();
        Ok(())
    }

    /// The input read but not processed yet: what the client pipelined behind the line
    /// being handled.
    pub(crate) fn unread(&self) -> &[u8] {
        &self.rbuf[self.rpos..]
    }

    /// Reads more input; false on EOF.
    async fn fill(&mut self) -> io::Result<bool> {
        if self.rpos > 0 {
            self.rbuf.drain(..self.rpos);
            self.rpos = 0;
        }
        if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK / 4 {
            self.rbuf.reserve(READ_CHUNK);
        }
        Ok(self.conn.read_buf(&mut self.rbuf).await? > 0)
    }

    /// Takes one complete line (without its line ending) and hands it to the command or
    /// AUTH handler.
    fn step_line(&mut self) -> Step {
        let pending = &self.rbuf[self.rpos..];
        let Some(nl) = pending.iter().position(|&b| b == b'\n') else {
            if pending.len() > MAX_LINE {
                self.reply("500 5.5.2 line too long");
                return Step::Close;
            }
            return Step::NeedInput;
        };
        let raw = &pending[..nl];
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = String::from_utf8_lossy(raw).into_owned();
        self.rpos += nl + 1;
        self.line(&line)
    }

    async fn step_data(&mut self) -> Step {
        let pending = &self.rbuf[self.rpos..];
        if self.tx.drop_armed && !pending.is_empty() {
            return Step::Abort;
        }
        let Mode::Data(scan) = &mut self.mode else {
            return Step::Continue;
        };
        let (used, done) = scan.feed(pending);
        self.rpos += used;
        if !done {
            return Step::NeedInput;
        }
        let Mode::Data(scan) = std::mem::replace(&mut self.mode, Mode::Command) else {
            return Step::Continue;
        };
        self.finish_message(scan).await
    }

    async fn step_bdat(&mut self) -> Step {
        let Mode::Bdat {
            remaining,
            last,
            valid,
        } = &mut self.mode
        else {
            return Step::Continue;
        };
        let pending = &self.rbuf[self.rpos..];
        let take = pending.len().min(*remaining);
        if *valid {
            if let Some(scan) = self.tx.bdat.as_mut() {
                scan.push_raw(&pending[..take]);
            }
        }
        self.rpos += take;
        *remaining -= take;
        if *remaining > 0 {
            return Step::NeedInput;
        }
        let (last, valid) = (*last, *valid);
        self.mode = Mode::Command;
        if !valid {
            self.reply("503 5.5.1 BDAT without a valid MAIL and RCPT; chunk discarded");
            return Step::Continue;
        }
        if !last {
            let size = self.tx.bdat.as_ref().map_or(0, |s| s.size);
            self.reply(&format!("250 2.0.0 {size} octets received"));
            return Step::Continue;
        }
        match self.tx.bdat.take() {
            Some(scan) => self.finish_message(scan).await,
            None => Step::Continue,
        }
    }

    /// Ends a transaction after its body: applies `slow` and `stall`, the size limit and
    /// `reject`, then records the message or refuses it.
    pub(crate) async fn finish_message(&mut self, scan: DataScan) -> Step {
        let tx = std::mem::take(&mut self.tx);
        let config = &self.ctx.config;
        if tx.has(Script::Slow) || self.stalls(&tx) {
            tokio::time::sleep(config.slow_delay).await;
        }
        let shared = &self.ctx.shared;
        if config.size_limit.is_some_and(|limit| scan.size > limit) {
            shared.message_rejected();
            self.reply("552 5.3.4 message size exceeds fixed limit");
        } else if tx.has(Script::Reject) {
            shared.message_rejected();
            self.reply("554 5.7.1 message rejected");
        } else if Self::deferred_in_data(shared, &tx) {
            shared.message_rejected();
            self.reply("451 4.3.0 Temporary failure, please try again");
        } else {
            let connection = self.guard.id();
            let id = self.guard.record(Received {
                mail_from: tx.mail_from.unwrap_or_default(),
                rcpt_to: tx.rcpts.into_iter().map(|(addr, _)| addr).collect(),
                data: scan.body,
                size: scan.size,
                tls: self.tls,
                auth_user: self.auth_user.clone(),
                at: Instant::now(),
                connection,
                peer: self.peer,
                helo: self.helo.clone().unwrap_or_default(),
            });
            let total = u64::try_from(shared.count()).unwrap_or(u64::MAX);
            if config.close_all_at.contains(&total) {
                shared.close_all();
            }
            self.reply(&format!("250 2.0.0 Ok: queued as {id}"));
        }
        Step::Continue
    }

    /// Whether the `data451` script defers this transaction: one of its `data451…@`
    /// recipients gets here for the first time.
    fn deferred_in_data(shared: &Shared, tx: &Transaction) -> bool {
        let mut deferred = false;
        for (addr, script) in &tx.rcpts {
            if *script == Script::DataDeferred && shared.first_time(addr) {
                deferred = true;
            }
        }
        deferred
    }

    /// Whether the `stall` script holds this transaction's final reply: a `stall…@`
    /// recipient reaches this point for the first time.
    fn stalls(&self, tx: &Transaction) -> bool {
        let shared = &self.ctx.shared;
        let mut stall = false;
        for (addr, script) in &tx.rcpts {
            if *script == Script::Stall && shared.first_time(addr) {
                stall = true;
            }
        }
        stall
    }

    /// Replaces the plain stream by TLS; discards input pipelined before the handshake and
    /// forgets the session state, as RFC 3207 requires.
    async fn start_tls(&mut self) -> io::Result<()> {
        self.flush().await?;
        self.rbuf.clear();
        self.rpos = 0;
        let acceptor = self.ctx.acceptor.clone().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::Unsupported,
                "STARTTLS without a TLS acceptor",
            )
        })?;
        let Conn::Plain(tcp) = std::mem::replace(&mut self.conn, Conn::Gone) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "STARTTLS on a stream that is not plain TCP",
            ));
        };
        let tls = acceptor.accept(tcp).await?;
        self.ctx.shared.tls_session(resumed(&tls));
        self.conn = Conn::Tls(Box::new(tls));
        self.tls = true;
        self.greeted = false;
        self.auth_user = None;
        self.tx = Transaction::default();
        Ok(())
    }

    /// Sabotages the handshake after the `220` to STARTTLS (`broken_starttls`): reads the
    /// client's first TLS bytes, answers with bytes that are no TLS record, and closes.
    /// Reading first matters: closing with unread input resets the connection, and the
    /// client might then see a reset instead of the garbage.
    async fn break_tls(&mut self) -> io::Result<()> {
        self.flush().await?;
        self.ctx.shared.broken_tls_handshake();
        self.rbuf.clear();
        self.rpos = 0;
        // A client that sends nothing gets the garbage after the wait all the same.
        let _ = tokio::time::timeout(HELLO_WAIT, self.fill()).await;
        self.conn.write_all(NOT_TLS).await?;
        self.conn.flush().await?;
        let _ = self.conn.shutdown().await;
        Ok(())
    }
}

/// Whether a finished server handshake resumed an earlier TLS session.
pub(crate) fn resumed<IO>(tls: &tokio_rustls::server::TlsStream<IO>) -> bool {
    tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed)
}
