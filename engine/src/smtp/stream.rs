//! The connection under a session: a type-erased stream (TCP, TLS or a test pipe) with a read
//! buffer that splits pipelined replies, a write buffer that batches commands into one write,
//! per-phase timeouts and the optional transcript.

use std::time::Duration;

use secrecy::zeroize::Zeroize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::error::{Phase, SmtpError};
use super::reply::{Reply, ReplyParser};

/// Anything a session can run over.
pub(crate) trait AsyncStream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> AsyncStream for T {}

/// The type-erased stream a session owns.
pub(crate) type BoxedStream = Box<dyn AsyncStream>;

/// Most transcript lines kept between two `take_transcript` calls.
const MAX_TRANSCRIPT_LINES: usize = 10_000;

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 8 * 1024;

/// A recorded conversation, bounded.
#[derive(Debug, Default)]
struct Transcript {
    lines: Vec<String>,
    dropped: usize,
}

impl Transcript {
    fn push(&mut self, line: String) {
        if self.lines.len() < MAX_TRANSCRIPT_LINES {
            self.lines.push(line);
        } else {
            self.dropped += 1;
        }
    }
}

/// Stream plus buffers; every method that waits is bounded by the timeout it is given.
pub(crate) struct Connection {
    stream: BoxedStream,
    host: String,
    read_buf: Vec<u8>,
    read_pos: usize,
    /// The reply being read from `read_buf[read_pos..]`, kept across reads.
    parser: ReplyParser,
    write_buf: Vec<u8>,
    transcript: Option<Transcript>,
}

impl Connection {
    pub(crate) fn new(stream: BoxedStream, host: &str, record_transcript: bool) -> Self {
        Connection {
            stream,
            host: host.to_owned(),
            read_buf: Vec::with_capacity(READ_CHUNK),
            read_pos: 0,
            parser: ReplyParser::default(),
            write_buf: Vec::with_capacity(1024),
            transcript: record_transcript.then(Transcript::default),
        }
    }

    /// The server host, for errors.
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// Queues one command line made of `parts` (CRLF added) for the next [`Self::flush`].
    pub(crate) fn command(&mut self, parts: &[&str]) {
        let start = self.write_buf.len();
        for part in parts {
            self.write_buf.extend_from_slice(part.as_bytes());
        }
        if let Some(transcript) = &mut self.transcript {
            let line = String::from_utf8_lossy(&self.write_buf[start..]);
            transcript.push(format!("C: {line}"));
        }
        self.write_buf.extend_from_slice(b"\r\n");
    }

    /// Queues raw bytes (a BDAT chunk) to go out with the queued commands.
    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        self.write_buf.extend_from_slice(bytes);
    }

    /// Queues a command line carrying a secret; the transcript shows `shown` instead.
    pub(crate) fn secret_command(&mut self, line: &[u8], shown: &str) {
        self.write_buf.extend_from_slice(line);
        self.write_buf.extend_from_slice(b"\r\n");
        self.note(|| format!("C: {shown}"));
    }

    /// Adds a client-side note to the transcript (built only when recording).
    pub(crate) fn note(&mut self, line: impl FnOnce() -> String) {
        if let Some(transcript) = &mut self.transcript {
            transcript.push(line());
        }
    }

    /// Writes the queued commands in one write and flushes.
    pub(crate) async fn flush(&mut self, phase: Phase, limit: Duration) -> Result<(), SmtpError> {
        let mut buf = std::mem::take(&mut self.write_buf);
        let result = self.write_all(&buf, phase, limit).await;
        if phase == Phase::Auth {
            buf.zeroize();
        }
        buf.clear();
        self.write_buf = buf;
        result
    }

    /// Writes `bytes` (already encoded) and flushes.
    pub(crate) async fn write_all(
        &mut self,
        bytes: &[u8],
        phase: Phase,
        limit: Duration,
    ) -> Result<(), SmtpError> {
        let write = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout(limit, write).await {
            Err(_) => Err(self.timeout(phase)),
            Ok(Err(source)) => Err(SmtpError::Io {
                host: self.host.clone(),
                phase,
                source,
            }),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Reads the next complete reply.
    pub(crate) async fn read_reply(
        &mut self,
        phase: Phase,
        limit: Duration,
    ) -> Result<Reply, SmtpError> {
        match tokio::time::timeout(limit, self.read_reply_unbounded(phase)).await {
            Err(_) => Err(self.timeout(phase)),
            Ok(result) => result,
        }
    }

    async fn read_reply_unbounded(&mut self, phase: Phase) -> Result<Reply, SmtpError> {
        loop {
            let pending = &self.read_buf[self.read_pos..];
            match self.parser.parse(pending) {
                Err(e) => {
                    self.parser = ReplyParser::default();
                    return Err(SmtpError::Protocol {
                        host: self.host.clone(),
                        phase,
                        detail: e.0,
                    });
                }
                Ok(Some(parsed)) => {
                    self.parser = ReplyParser::default();
                    self.record_reply(parsed.used);
                    self.read_pos += parsed.used;
                    if self.read_pos == self.read_buf.len() {
                        self.read_buf.clear();
                        self.read_pos = 0;
                    }
                    return Ok(parsed.reply);
                }
                Ok(None) => self.fill(phase).await?,
            }
        }
    }

    /// Reads more bytes into the buffer; end of stream is [`SmtpError::Closed`].
    async fn fill(&mut self, phase: Phase) -> Result<(), SmtpError> {
        if self.read_pos > 0 {
            self.read_buf.drain(..self.read_pos);
            self.read_pos = 0;
        }
        self.read_buf.reserve(READ_CHUNK);
        match self.stream.read_buf(&mut self.read_buf).await {
            Ok(0) => Err(SmtpError::Closed {
                host: self.host.clone(),
                phase,
            }),
            Ok(_) => Ok(()),
            Err(source) => Err(SmtpError::Io {
                host: self.host.clone(),
                phase,
                source,
            }),
        }
    }

    fn record_reply(&mut self, used: usize) {
        let Some(transcript) = &mut self.transcript else {
            return;
        };
        let raw = &self.read_buf[self.read_pos..self.read_pos + used];
        for line in raw.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            transcript.push(format!("S: {}", String::from_utf8_lossy(line)));
        }
    }

    /// True when the server sent bytes we have not read as a reply yet.
    pub(crate) fn has_unread_input(&self) -> bool {
        self.read_pos < self.read_buf.len()
    }

    /// Swaps the stream out (for a TLS upgrade); the connection holds a dead stream meanwhile.
    pub(crate) fn take_stream(&mut self) -> BoxedStream {
        std::mem::replace(&mut self.stream, Box::new(tokio::io::empty()))
    }

    /// Puts the (upgraded) stream back.
    pub(crate) fn set_stream(&mut self, stream: BoxedStream) {
        self.stream = stream;
    }

    /// Closes the write side, bounded by `limit`; errors are of no interest at this point.
    pub(crate) async fn shutdown(&mut self, limit: Duration) {
        let _ = tokio::time::timeout(limit, self.stream.shutdown()).await;
    }

    /// Hands out the transcript recorded so far and starts a new one.
    pub(crate) fn take_transcript(&mut self) -> Vec<String> {
        let Some(transcript) = &mut self.transcript else {
            return Vec::new();
        };
        let mut taken = std::mem::take(transcript);
        if taken.dropped > 0 {
            taken
                .lines
                .push(format!("({} more lines not recorded)", taken.dropped));
        }
        taken.lines
    }

    fn timeout(&self, phase: Phase) -> SmtpError {
        SmtpError::Timeout {
            host: self.host.clone(),
            phase,
        }
    }
}
