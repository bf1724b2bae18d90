//! Hostile servers: a reply past [`MAX_REPLY_BYTES`] is refused however it is split into
//! lines, and the client stops reading there (it never buffers what the server keeps sending).

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::time::timeout;

use super::reply::MAX_REPLY_BYTES;
use super::tests::config;
use super::*;

/// Generous: the client stops after 64 KiB; the peer's writes end when the client is gone.
const LIMIT: Duration = Duration::from_secs(60);

/// A small pipe, so the peer cannot run far ahead of what the client reads.
const PIPE_BYTES: usize = 8 * 1024;

/// Plays a server that sends `head`, then `line` `times` times as its banner,
/// `lines_per_write` lines per write, until done or the client is gone; returns the error the
/// client got and the bytes the server managed to write.
async fn flood(
    head: &'static [u8],
    line: &'static [u8],
    times: usize,
    lines_per_write: usize,
) -> (SmtpError, usize) {
    let (client, mut server) = tokio::io::duplex(PIPE_BYTES);
    let peer = tokio::spawn(async move {
        let chunk = line.repeat(lines_per_write);
        let mut written = head.len();
        if server.write_all(head).await.is_err() {
            return 0;
        }
        for _ in 0..times.div_ceil(lines_per_write) {
            if server.write_all(&chunk).await.is_err() {
                break;
            }
            written += chunk.len();
        }
        written
    });
    let result = timeout(LIMIT, Session::connect_stream(client, &config()))
        .await
        .unwrap();
    let Err(err) = result else {
        panic!("a flooded banner is accepted")
    };
    let written = timeout(LIMIT, peer).await.unwrap().unwrap();
    (err, written)
}

fn assert_too_long(err: &SmtpError) {
    assert!(
        matches!(err, SmtpError::Protocol { phase: Phase::Banner, detail, .. }
            if detail == &format!("reply longer than {MAX_REPLY_BYTES} bytes")),
        "{err}"
    );
}

#[tokio::test]
async fn a_million_short_continuation_lines_hit_the_byte_cap() {
    let (err, written) = flood(b"", b"220-x\r\n", 1_000_000, 1).await;
    assert_too_long(&err);
    assert!(
        written < MAX_REPLY_BYTES + 8 * 1024 + 2 * PIPE_BYTES,
        "the client read on: the peer wrote {written} bytes"
    );
}

#[tokio::test]
async fn short_lines_in_big_writes_hit_the_same_cap() {
    let (err, written) = flood(b"", b"220-x\r\n", 1_000_000, 4096).await;
    assert_too_long(&err);
    assert!(written < 7 * 1_000_000, "the peer wrote everything");
}

#[tokio::test]
async fn one_long_line_hits_the_same_cap() {
    let (err, written) = flood(b"220 ", b"x", 1_000_000, 1000).await;
    assert_too_long(&err);
    assert!(written < 1_000_000, "the peer wrote everything");
}

#[tokio::test]
async fn a_complete_reply_past_the_cap_in_one_write_is_refused() {
    let mut reply = "220-x\r\n".repeat(MAX_REPLY_BYTES / 7);
    reply.push_str("220 last\r\n");
    let (client, mut server) = tokio::io::duplex(4 * MAX_REPLY_BYTES);
    server.write_all(reply.as_bytes()).await.unwrap();
    let result = timeout(LIMIT, Session::connect_stream(client, &config()))
        .await
        .unwrap();
    let Err(err) = result else {
        panic!("a reply past the cap is accepted")
    };
    assert_too_long(&err);
}
