//! One client's SMTP session: ESMTP with PIPELINING, SIZE, 8BITMIME, ENHANCEDSTATUSCODES and
//! STARTTLS (when configured). Every read has a deadline (the per-command or per-DATA-block
//! timeout, never past the session's end); a message is spooled and fsynced before `250`.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use smtp_proto::Request;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::data::{Body, Step};
use super::io::{Conn, Line};
use super::Shared;

/// RFC 5321 §4.5.3.1.4: a command line is at most 512 octets, CRLF included.
pub(crate) const MAX_COMMAND_LINE: usize = 512;
/// Errors (bad commands, bad sequence) a session may make before it is closed.
const MAX_ERRORS: u32 = 20;
/// The longest a refusal or farewell may take to write.
const GOODBYE: Duration = Duration::from_secs(5);

/// How a session ended.
pub(crate) enum End<S> {
    /// Closed (QUIT, error, timeout, shutdown, client gone).
    Close,
    /// STARTTLS was accepted: the stream, for the handshake.
    StartTls(S),
}

/// Why a read gave up.
enum Stop {
    /// The per-command, per-block or session timeout.
    Timeout,
    /// The receiver is shutting down.
    Shutdown,
    /// The connection failed.
    Io,
}

/// What the session does after a command.
enum Next {
    Continue,
    Close,
    StartTls,
}

/// A session over stream `S` (plain TCP, or TLS after STARTTLS).
pub(crate) struct Session<'a, S> {
    conn: Conn<S>,
    shared: &'a Shared,
    cancel: &'a CancellationToken,
    peer: SocketAddr,
    deadline: Instant,
    tls: bool,
    helo: Option<String>,
    mail_from: Option<String>,
    rcpts: usize,
    errors: u32,
}

impl<'a, S: AsyncRead + AsyncWrite + Unpin> Session<'a, S> {
    /// A session on `stream` from `peer` that must end by `deadline`.
    pub(crate) fn new(
        stream: S,
        shared: &'a Shared,
        cancel: &'a CancellationToken,
        peer: SocketAddr,
        deadline: Instant,
        tls: bool,
    ) -> Self {
        Session {
            conn: Conn::new(stream),
            shared,
            cancel,
            peer,
            deadline,
            tls,
            helo: None,
            mail_from: None,
            rcpts: 0,
            errors: 0,
        }
    }

    /// Runs the session; `greet`: send the 220 banner first (not after STARTTLS).
    pub(crate) async fn run(mut self, greet: bool) -> End<S> {
        let host = &self.shared.config.hostname;
        if greet
            && !self
                .reply(&format!("220 {host} ESMTP Volley bounce receiver"))
                .await
        {
            return End::Close;
        }
        loop {
            let line = match self.read_command().await {
                Ok(line) => line,
                Err(stop) => {
                    self.goodbye(stop).await;
                    return End::Close;
                }
            };
            let next = match line {
                Line::Text(line) => self.command(&line).await,
                Line::TooLong { ended } => {
                    self.shared.stats.long_lines.fetch_add(1, Ordering::Relaxed);
                    if ended {
                        self.error("500 5.5.2 Line too long").await
                    } else {
                        let _ = self.reply("500 5.5.2 Line too long, closing").await;
                        Next::Close
                    }
                }
                Line::Eof => Next::Close,
            };
            match next {
                Next::Continue => {}
                Next::Close => return End::Close,
                Next::StartTls => return End::StartTls(self.conn.into_inner()),
            }
        }
    }

    /// The deadline of one read: `per` from now, never past the session's end.
    fn deadline(&self, per: Duration) -> Instant {
        (Instant::now() + per).min(self.deadline)
    }

    async fn read_command(&mut self) -> Result<Line, Stop> {
        let until = self.deadline(self.shared.config.command_timeout);
        let cancel = self.cancel;
        tokio::select! {
            () = cancel.cancelled() => Err(Stop::Shutdown),
            read = tokio::time::timeout_at(until, self.conn.read_line(MAX_COMMAND_LINE)) => match read {
                Err(_) => Err(Stop::Timeout),
                Ok(Err(_)) => Err(Stop::Io),
                Ok(Ok(line)) => Ok(line),
            },
        }
    }

    /// Tells the client why the session ends (a shutdown or a timeout), briefly.
    async fn goodbye(&mut self, stop: Stop) {
        let host = &self.shared.config.hostname;
        let text = match stop {
            Stop::Timeout => {
                self.shared.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                format!("421 4.4.2 {host} Timeout, closing connection\r\n")
            }
            Stop::Shutdown => format!("421 4.3.2 {host} Shutting down, try again later\r\n"),
            Stop::Io => return,
        };
        let _ = tokio::time::timeout(GOODBYE, self.conn.write_all(text.as_bytes())).await;
    }

    /// Writes one reply (CRLF added); `false` when the client cannot be written to in time.
    async fn reply(&mut self, text: &str) -> bool {
        let mut bytes = Vec::with_capacity(text.len() + 2);
        bytes.extend_from_slice(text.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        let until = self.deadline(self.shared.config.command_timeout);
        let cancel = self.cancel;
        tokio::select! {
            () = cancel.cancelled() => false,
            written = tokio::time::timeout_at(until, self.conn.write_all(&bytes)) => {
                matches!(written, Ok(Ok(())))
            }
        }
    }

    /// Replies, and goes on unless the write failed.
    async fn answer(&mut self, text: &str) -> Next {
        if self.reply(text).await {
            Next::Continue
        } else {
            Next::Close
        }
    }

    /// Replies with an error; past [`MAX_ERRORS`] the session is closed.
    async fn error(&mut self, text: &str) -> Next {
        self.errors += 1;
        if self.errors > MAX_ERRORS {
            let _ = self
                .reply("421 4.7.0 Too many errors, closing connection")
                .await;
            return Next::Close;
        }
        self.answer(text).await
    }

    fn reset(&mut self) {
        self.mail_from = None;
        self.rcpts = 0;
    }

    async fn command(&mut self, line: &[u8]) -> Next {
        let request = match Request::parse(&mut line.iter()) {
            Ok(request) => request,
            Err(error) => return self.error(&syntax_reply(&error)).await,
        };
        match request {
            Request::Ehlo { host } => self.hello(host, true).await,
            Request::Helo { host } | Request::Lhlo { host } => self.hello(host, false).await,
            Request::Mail { from } => self.mail(from.address, from.size).await,
            Request::Rcpt { to } => self.rcpt(&to.address).await,
            Request::Data => self.data().await,
            Request::Rset => {
                self.reset();
                self.answer("250 2.0.0 Ok").await
            }
            Request::Noop { .. } => self.answer("250 2.0.0 Ok").await,
            Request::Quit => {
                let _ = self.reply("221 2.0.0 Bye").await;
                Next::Close
            }
            Request::Vrfy { .. } => self.answer("252 2.5.0 Cannot VRFY user").await,
            Request::Help { .. } => self.answer("214 2.0.0 See RFC 5321").await,
            Request::StartTls => self.starttls().await,
            _ => self.error("502 5.5.1 Command not implemented").await,
        }
    }

    async fn hello(&mut self, host: String, extended: bool) -> Next {
        if host.is_empty() {
            return self
                .error("501 5.5.4 A domain or address is required")
                .await;
        }
        self.reset();
        self.helo = Some(host);
        let name = &self.shared.config.hostname;
        if !extended {
            return self.answer(&format!("250 {name}")).await;
        }
        let mut lines = vec![
            name.clone(),
            "PIPELINING".to_owned(),
            format!("SIZE {}", self.shared.config.max_message_size),
            "8BITMIME".to_owned(),
            "ENHANCEDSTATUSCODES".to_owned(),
        ];
        if self.shared.tls.is_some() && !self.tls {
            lines.push("STARTTLS".to_owned());
        }
        let last = lines.len() - 1;
        let text = lines
            .iter()
            .enumerate()
            .map(|(i, l)| format!("250{}{l}", if i == last { ' ' } else { '-' }))
            .collect::<Vec<_>>()
            .join("\r\n");
        self.answer(&text).await
    }

    async fn mail(&mut self, from: String, size: usize) -> Next {
        if self.helo.is_none() {
            return self.error("503 5.5.1 Say EHLO first").await;
        }
        if self.mail_from.is_some() {
            return self.error("503 5.5.1 Nested MAIL command").await;
        }
        if self.shared.stats.backlog() >= self.shared.config.max_backlog {
            return self
                .answer("452 4.3.1 Insufficient system storage, try again later")
                .await;
        }
        if size as u64 > self.shared.config.max_message_size {
            return self
                .answer("552 5.3.4 Message size exceeds fixed limit")
                .await;
        }
        self.mail_from = Some(from);
        self.answer("250 2.1.0 Ok").await
    }

    async fn rcpt(&mut self, to: &str) -> Next {
        if self.mail_from.is_none() {
            return self.error("503 5.5.1 Need MAIL before RCPT").await;
        }
        if to.is_empty() {
            return self.error("501 5.1.3 Bad recipient address syntax").await;
        }
        if self.rcpts >= self.shared.config.max_recipients {
            self.shared
                .stats
                .too_many_rcpts
                .fetch_add(1, Ordering::Relaxed);
            return self.answer("452 4.5.3 Too many recipients").await;
        }
        self.rcpts += 1;
        self.answer("250 2.1.5 Ok").await
    }

    async fn starttls(&mut self) -> Next {
        if self.tls || self.shared.tls.is_none() {
            return self.error("502 5.5.1 STARTTLS not available").await;
        }
        if self.conn.has_buffered() {
            // Commands pipelined after STARTTLS would cross into TLS (CVE-2011-0411).
            let _ = self
                .reply("554 5.5.0 Commands after STARTTLS before the handshake, closing")
                .await;
            return Next::Close;
        }
        if self.reply("220 2.0.0 Ready to start TLS").await {
            Next::StartTls
        } else {
            Next::Close
        }
    }

    async fn data(&mut self) -> Next {
        if self.mail_from.is_none() || self.rcpts == 0 {
            return self.error("503 5.5.1 Need MAIL and RCPT before DATA").await;
        }
        if !self
            .reply("354 Start mail input; end with <CRLF>.<CRLF>")
            .await
        {
            return Next::Close;
        }
        let received = self.receive().await;
        self.reset();
        match received {
            Received::Spooled(id) => {
                self.shared.stats.messages.fetch_add(1, Ordering::Relaxed);
                super::spool::wake(&self.shared.waker);
                tracing::info!(peer = %self.peer, id = %id, "bounce spooled");
                self.answer(&format!("250 2.0.0 Ok: queued as {id}")).await
            }
            Received::TooBig(size) => {
                self.shared.stats.too_big.fetch_add(1, Ordering::Relaxed);
                tracing::info!(peer = %self.peer, size, "message refused: too big");
                self.answer("552 5.3.4 Message size exceeds fixed limit")
                    .await
            }
            Received::NotSpooled => {
                self.answer("451 4.3.0 Could not store the message, try again later")
                    .await
            }
            Received::Stopped(stop) => {
                self.goodbye(stop).await;
                Next::Close
            }
        }
    }

    /// Reads the body to its end marker, into a spool draft.
    async fn receive(&mut self) -> Received {
        let shared = self.shared;
        let mut draft = match shared.spool.draft().await {
            Ok(draft) => Some(draft),
            Err(error) => {
                tracing::error!(spool = %shared.spool.dir().display(), %error, "cannot spool a bounce");
                None
            }
        };
        let mut body = Body::new(shared.config.max_message_size);
        let mut failed = draft.is_none();
        loop {
            let until = self.deadline(shared.config.data_block_timeout);
            let cancel = self.cancel;
            let piece = tokio::select! {
                () = cancel.cancelled() => return Received::Stopped(Stop::Shutdown),
                read = tokio::time::timeout_at(until, self.conn.data_piece()) => match read {
                    Err(_) => return Received::Stopped(Stop::Timeout),
                    Ok(Err(_) | Ok(None)) => return Received::Stopped(Stop::Io),
                    Ok(Ok(Some(piece))) => piece,
                },
            };
            match body.feed(piece.0, piece.1) {
                Step::End => break,
                Step::Discard => draft = None,
                Step::Keep(bytes) => {
                    if let Some(d) = draft.as_mut() {
                        if let Err(error) = d.write(bytes).await {
                            tracing::error!(%error, "cannot write a bounce to the spool");
                            failed = true;
                            draft = None;
                        }
                    }
                }
            }
        }
        if body.too_big() {
            return Received::TooBig(body.size());
        }
        match draft {
            Some(draft) if !failed => match draft.commit().await {
                Ok(id) => Received::Spooled(id),
                Err(error) => {
                    tracing::error!(%error, "cannot fsync a bounce in the spool");
                    Received::NotSpooled
                }
            },
            _ => Received::NotSpooled,
        }
    }
}

/// What became of a DATA body.
enum Received {
    /// Durably spooled, under this id.
    Spooled(String),
    /// Past the size cap (bytes received).
    TooBig(u64),
    /// The spool could not take it.
    NotSpooled,
    /// The session must end.
    Stopped(Stop),
}

/// The reply to a command smtp-proto could not parse.
fn syntax_reply(error: &smtp_proto::Error) -> String {
    match error {
        smtp_proto::Error::UnknownCommand => "500 5.5.2 Command unrecognized".to_owned(),
        smtp_proto::Error::InvalidSenderAddress => "501 5.1.7 Bad sender address syntax".to_owned(),
        smtp_proto::Error::InvalidRecipientAddress => {
            "501 5.1.3 Bad recipient address syntax".to_owned()
        }
        smtp_proto::Error::SyntaxError { syntax } => format!("501 5.5.4 Syntax: {syntax}"),
        smtp_proto::Error::InvalidParameter { param } => {
            format!("501 5.5.4 Invalid parameter {param}")
        }
        smtp_proto::Error::UnsupportedParameter { .. } => {
            "555 5.5.4 Unsupported parameter".to_owned()
        }
        _ => "500 5.5.2 Syntax error".to_owned(),
    }
}

/// Serves one client: a session on the plain stream and, after STARTTLS, one on TLS.
pub(crate) async fn serve(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    cancel: CancellationToken,
) {
    let deadline = Instant::now() + shared.config.session_timeout;
    let plain = Session::new(stream, &shared, &cancel, peer, deadline, false);
    let End::StartTls(stream) = plain.run(true).await else {
        return;
    };
    let Some(acceptor) = shared.tls.clone() else {
        return;
    };
    let until = (Instant::now() + shared.config.command_timeout).min(deadline);
    let handshake = tokio::select! {
        () = cancel.cancelled() => return,
        handshake = tokio::time::timeout_at(until, acceptor.accept(stream)) => handshake,
    };
    let stream = match handshake {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            tracing::info!(%peer, %error, "STARTTLS handshake failed");
            return;
        }
        Err(_) => return,
    };
    // RFC 3207: everything from before the handshake is forgotten; the client says EHLO again.
    let secure = Session::new(stream, &shared, &cancel, peer, deadline, true);
    let _ = secure.run(false).await;
}
