//! The receiver's view of a client's byte stream: command lines capped at a fixed length and
//! DATA in bounded chunks. Nothing is ever buffered past the fixed buffer size, whatever the
//! client sends: a line that never ends is cut off, a long DATA line is handed on in pieces.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bytes read from the socket at most at once (and so buffered at most).
const BUFFER: usize = 16 * 1024;
/// A DATA line longer than this is handed on in pieces of this size.
pub(crate) const DATA_PIECE: usize = 8 * 1024;

/// One command line as read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// A complete line, its LF included, no longer than the cap.
    Text(Vec<u8>),
    /// A line longer than the cap. `ended`: its end was seen and skipped (the session can go
    /// on); otherwise the client is still sending it and the session must end.
    TooLong {
        /// Whether the rest of the line was skipped up to its LF.
        ended: bool,
    },
    /// The client closed the connection.
    Eof,
}

/// A client's stream with a fixed read buffer.
#[derive(Debug)]
pub(crate) struct Conn<S> {
    stream: S,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    /// Wraps `stream`.
    pub(crate) fn new(stream: S) -> Self {
        Conn {
            stream,
            buf: vec![0; BUFFER].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// Whether bytes the client sent are waiting in the buffer (pipelined commands, or
    /// plaintext injected after STARTTLS).
    pub(crate) fn has_buffered(&self) -> bool {
        self.start < self.end
    }

    /// The stream, for a TLS handshake; only call with nothing buffered.
    pub(crate) fn into_inner(self) -> S {
        self.stream
    }

    /// Writes `bytes` and flushes.
    pub(crate) async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    /// Reads more into the buffer; `false` at end of stream.
    async fn fill(&mut self) -> io::Result<bool> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = self.stream.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n > 0)
    }

    /// The next command line, at most `cap` octets with its line ending.
    pub(crate) async fn read_line(&mut self, cap: usize) -> io::Result<Line> {
        loop {
            let pending = &self.buf[self.start..self.end];
            if let Some(at) = pending.iter().position(|&b| b == b'\n') {
                let line = pending[..=at].to_vec();
                self.start += at + 1;
                return Ok(if line.len() > cap {
                    Line::TooLong { ended: true }
                } else {
                    Line::Text(line)
                });
            }
            if pending.len() > cap {
                // Cut off: whatever follows is the rest of a line nobody will read.
                self.start = 0;
                self.end = 0;
                return Ok(Line::TooLong { ended: false });
            }
            if !self.fill().await? {
                return Ok(Line::Eof);
            }
        }
    }

    /// The next piece of DATA: a whole line (ending in LF, `true`), or up to
    /// [`DATA_PIECE`] bytes of a longer one (`false`); `None` at end of stream.
    pub(crate) async fn data_piece(&mut self) -> io::Result<Option<(&[u8], bool)>> {
        loop {
            let pending = &self.buf[self.start..self.end];
            let window = &pending[..pending.len().min(DATA_PIECE)];
            if let Some(at) = window.iter().position(|&b| b == b'\n') {
                let from = self.start;
                self.start += at + 1;
                return Ok(Some((&self.buf[from..self.start], true)));
            }
            if pending.len() >= DATA_PIECE {
                let from = self.start;
                self.start += DATA_PIECE;
                return Ok(Some((&self.buf[from..self.start], false)));
            }
            if !self.fill().await? {
                return Ok(None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    #[tokio::test]
    async fn lines_come_whole_and_pipelined_lines_stay_buffered() {
        let (mut client, server) = duplex(64 * 1024);
        let mut conn = Conn::new(server);
        client
            .write_all(b"EHLO a\r\nMAIL FROM:<>\r\n")
            .await
            .unwrap();
        assert_eq!(
            conn.read_line(512).await.unwrap(),
            Line::Text(b"EHLO a\r\n".to_vec())
        );
        assert_eq!(
            conn.read_line(512).await.unwrap(),
            Line::Text(b"MAIL FROM:<>\r\n".to_vec())
        );
        assert!(!conn.has_buffered());
        drop(client);
        assert_eq!(conn.read_line(512).await.unwrap(), Line::Eof);
    }

    #[tokio::test]
    async fn an_overlong_line_with_an_end_is_skipped_and_the_next_one_read() {
        let (mut client, server) = duplex(64 * 1024);
        let mut conn = Conn::new(server);
        let mut long = vec![b'x'; 600];
        long.extend_from_slice(b"\r\nNOOP\r\n");
        client.write_all(&long).await.unwrap();
        assert_eq!(
            conn.read_line(512).await.unwrap(),
            Line::TooLong { ended: true }
        );
        assert_eq!(
            conn.read_line(512).await.unwrap(),
            Line::Text(b"NOOP\r\n".to_vec())
        );
    }

    #[tokio::test]
    async fn a_line_that_never_ends_is_cut_off_at_the_cap() {
        let (mut client, server) = duplex(1024 * 1024);
        let mut conn = Conn::new(server);
        let writer = tokio::spawn(async move {
            // Far more than the buffer, no LF anywhere.
            let chunk = vec![b'A'; 64 * 1024];
            for _ in 0..16 {
                if client.write_all(&chunk).await.is_err() {
                    break;
                }
            }
            client
        });
        assert_eq!(
            conn.read_line(512).await.unwrap(),
            Line::TooLong { ended: false }
        );
        assert!(conn.buf.len() == BUFFER);
        drop(conn);
        let _ = writer.await;
    }

    #[tokio::test]
    async fn data_comes_in_lines_and_long_lines_in_pieces() {
        let (mut client, server) = duplex(64 * 1024);
        let mut conn = Conn::new(server);
        let mut body = b"short\r\n".to_vec();
        body.extend(std::iter::repeat_n(b'y', DATA_PIECE + 10));
        body.extend_from_slice(b"\r\n");
        client.write_all(&body).await.unwrap();
        drop(client);
        let (piece, whole) = conn.data_piece().await.unwrap().unwrap();
        assert_eq!((piece, whole), (&b"short\r\n"[..], true));
        let (piece, whole) = conn.data_piece().await.unwrap().unwrap();
        assert_eq!((piece.len(), whole), (DATA_PIECE, false));
        let (piece, whole) = conn.data_piece().await.unwrap().unwrap();
        assert_eq!((piece.len(), whole), (12, true));
        assert!(conn.data_piece().await.unwrap().is_none());
    }
}
