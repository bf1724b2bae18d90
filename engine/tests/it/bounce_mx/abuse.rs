//! Hostile clients against the bounce receiver: each gets its reply or is disconnected, memory
//! stays bounded (the CLI test measures it), and a real DSN sent meanwhile is ingested.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::{
    deliver_and_ingest, dsn, first_reply, stuffed, wait_until, Client, Mx, LOOPBACK, OTHER_CLIENT,
};
use crate::support::LIMIT;

/// Writes `total` bytes of `pattern` (repeated) on a task, stopping quietly when the server
/// closes; returns the task.
fn flood(
    mut writer: tokio::net::tcp::OwnedWriteHalf,
    pattern: &'static [u8],
    total: usize,
    then: &'static [u8],
) -> tokio::task::JoinHandle<tokio::net::tcp::OwnedWriteHalf> {
    tokio::spawn(async move {
        let mut bytes = pattern.iter().copied().cycle();
        let mut sent = 0;
        while sent < total {
            let chunk: Vec<u8> = bytes.by_ref().take((64 * 1024).min(total - sent)).collect();
            if writer.write_all(&chunk).await.is_err() {
                return writer;
            }
            sent += chunk.len();
        }
        let _ = writer.write_all(then).await;
        writer
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_line_that_never_ends_gets_500_and_is_cut_off() {
    let mut mx = Mx::start(|_| {}).await;
    let (client, banner) = first_reply(&mx).await;
    assert!(banner.starts_with("220 "));
    let Client {
        mut replies,
        writer,
    } = client;
    // 600 MB with no LF: far more than anyone should buffer; the server stops reading.
    let writing = flood(writer, b"A", 600 << 20, b"");
    let reply = replies.next().await.unwrap();
    assert_eq!(reply, "500 5.5.2 Line too long, closing");
    assert_eq!(replies.next().await, None, "the connection is closed");
    deliver_and_ingest(&mx, OTHER_CLIENT, "postfix-user-unknown.eml").await;
    tokio::time::timeout(LIMIT, writing).await.unwrap().unwrap();
    assert_eq!(mx.stats().long_lines, 1);
    mx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overlong_command_line_that_ends_gets_500_and_the_session_goes_on() {
    let mut mx = Mx::start(|_| {}).await;
    let (mut client, _) = first_reply(&mx).await;
    let long = format!("EHLO {}", "x".repeat(600));
    assert_eq!(client.command(&long).await, "500 5.5.2 Line too long");
    let message = dsn("qmail.eml");
    let reply = client.transaction(&message).await;
    assert!(reply.starts_with("250 "), "{reply}");
    mx.wait_ingested(&message).await;
    mx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_50_mb_body_gets_552_and_nothing_of_it_stays_in_the_spool() {
    let mut mx = Mx::start(|_| {}).await;
    for pattern in [
        &b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n"[..],
        b"x",
    ] {
        let (mut client, _) = first_reply(&mx).await;
        client.command("EHLO big.example").await;
        client.command("MAIL FROM:<>").await;
        client.command("RCPT TO:<bounces@bounce.example.com>").await;
        assert!(client.command("DATA").await.starts_with("354"));
        let Client { replies, writer } = client;
        let writing = flood(writer, pattern, 50 << 20, b"\r\n.\r\n");
        let mut client = Client {
            replies,
            writer: tokio::time::timeout(LIMIT, writing).await.unwrap().unwrap(),
        };
        assert_eq!(
            client.reply().await.unwrap(),
            "552 5.3.4 Message size exceeds fixed limit"
        );
        // The session is still in step: the next transaction works.
        let message = dsn("sendmail.eml");
        let reply = client.transaction(&message).await;
        assert!(reply.starts_with("250 "), "{reply}");
        mx.wait_ingested(&message).await;
    }
    assert_eq!(mx.stats().too_big, 2);
    wait_until("the spool to empty", || mx.spooled().is_empty()).await;
    mx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_line_that_stops_arriving_is_cut_by_the_data_block_timeout() {
    let mut mx = Mx::start(|c| c.data_block_timeout = Duration::from_millis(300)).await;
    let (mut client, _) = first_reply(&mx).await;
    client.command("EHLO stall.example").await;
    client.command("MAIL FROM:<>").await;
    client.command("RCPT TO:<bounces@bounce.example.com>").await;
    assert!(client.command("DATA").await.starts_with("354"));
    client.send(&vec![b'z'; 20 << 20]).await;
    let reply = client.reply().await.unwrap();
    assert!(reply.starts_with("421 4.4.2"), "{reply}");
    assert_eq!(client.reply().await, None);
    wait_until("the draft to be removed", || mx.spooled().is_empty()).await;
    mx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_connections_from_one_address_get_421_past_the_per_address_limit() {
    // Timeouts far away: what is counted here is the limits, not the clock.
    let mut mx = Mx::start(|c| c.command_timeout = Duration::from_secs(3600)).await;
    let mut open = Vec::new();
    let mut refused = 0;
    for _ in 0..1000 {
        let (client, reply) = first_reply(&mx).await;
        if reply.starts_with("220 ") {
            open.push(client);
        } else {
            assert_eq!(
                reply,
                "421 4.7.0 Too many connections from your address, try again later"
            );
            refused += 1;
        }
    }
    assert_eq!((open.len(), refused), (20, 980));
    // Another client is still served meanwhile.
    deliver_and_ingest(&mx, OTHER_CLIENT, "postfix-user-unknown.eml").await;
    // The admitted idle ones are still in step.
    for client in &mut open {
        assert_eq!(client.command("NOOP").await, "250 2.0.0 Ok");
    }
    mx.stop().await;
    for client in &mut open {
        let farewell = client.reply().await.unwrap_or_default();
        assert!(farewell.starts_with("421 4.3.2"), "{farewell}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_overall_limit_get_421_until_one_closes() {
    let mut mx = Mx::start(|c| {
        c.max_connections = 30;
        c.max_connections_per_ip = 1000;
        c.command_timeout = Duration::from_secs(3600);
    })
    .await;
    let mut open = Vec::new();
    for i in 0..100 {
        let (client, reply) = first_reply(&mx).await;
        if i < 30 {
            assert!(reply.starts_with("220 "), "{i}: {reply}");
            open.push(client);
        } else {
            assert_eq!(reply, "421 4.7.0 Too many connections, try again later");
        }
    }
    assert_eq!(open.pop().unwrap().command("QUIT").await, "221 2.0.0 Bye");
    let receiver = mx.receiver.as_ref().unwrap();
    wait_until("a place to free up", || receiver.open_sessions() < 30).await;
    let (_client, reply) = first_reply(&mx).await;
    assert!(reply.starts_with("220 "), "{reply}");
    assert_eq!(mx.stats().refused, 70);
    mx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_cut_by_the_command_timeout_and_a_dsn_still_gets_in() {
    let mut mx = Mx::start(|c| c.command_timeout = Duration::from_millis(500)).await;
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(Client::connect(mx.addr).await);
    }
    for client in &mut idle {
        let banner = client.reply().await.unwrap();
        assert!(
            banner.starts_with("220 ") || banner.starts_with("421 4.4.2"),
            "{banner}"
        );
        let mut last = banner;
        while let Some(reply) = client.reply().await {
            last = reply;
        }
        assert!(last.starts_with("421 4.4.2"), "{last}");
    }
    deliver_and_ingest(&mx, LOOPBACK, "exim-dsn.eml").await;
    assert!(mx.stats().timeouts >= 20);
    mx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_sending_a_byte_at_a_time_is_cut_by_the_command_timeout() {
    let mut mx = Mx::start(|c| c.command_timeout = Duration::from_millis(500)).await;
    let (client, _) = first_reply(&mx).await;
    let Client {
        mut replies,
        mut writer,
    } = client;
    let trickle = tokio::spawn(async move {
        for byte in b"EHLO slowloris.example\r\n".iter().cycle() {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let reply = replies.next().await.unwrap();
    assert!(reply.starts_with("421 4.4.2"), "{reply}");
    assert_eq!(replies.next().await, None);
    tokio::time::timeout(LIMIT, trickle).await.unwrap().unwrap();
    deliver_and_ingest(&mx, LOOPBACK, "qmail.eml").await;
    mx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_never_ends_is_cut_by_the_session_timeout() {
    let mut mx = Mx::start(|c| c.session_timeout = Duration::from_millis(800)).await;
    let (mut client, _) = first_reply(&mx).await;
    let mut last = String::new();
    for _ in 0..10_000 {
        client.send(b"NOOP\r\n").await;
        match client.reply().await {
            Some(reply) if reply.starts_with("250 ") => {}
            Some(reply) => {
                last = reply;
                break;
            }
            None => break,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(last.starts_with("421 4.4.2"), "{last}");
    mx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_recipients_get_452_past_100_and_the_message_is_still_taken() {
    let mut mx = Mx::start(|_| {}).await;
    let (mut client, _) = first_reply(&mx).await;
    client.command("EHLO flood.example").await;
    assert_eq!(client.command("MAIL FROM:<>").await, "250 2.1.0 Ok");
    let Client {
        mut replies,
        writer,
    } = client;
    let mut rcpts = Vec::new();
    for i in 0..10_000 {
        rcpts.extend_from_slice(format!("RCPT TO:<bounces+{i}@bounce.example.com>\r\n").as_bytes());
    }
    let rcpts: &'static [u8] = rcpts.leak();
    let writing = flood(writer, rcpts, rcpts.len(), b"");
    let (mut ok, mut full) = (0, 0);
    for _ in 0..10_000 {
        match replies.next().await.unwrap().as_str() {
            "250 2.1.5 Ok" => ok += 1,
            "452 4.5.3 Too many recipients" => full += 1,
            other => panic!("{other}"),
        }
    }
    assert_eq!((ok, full), (100, 9_900));
    let mut client = Client {
        replies,
        writer: tokio::time::timeout(LIMIT, writing).await.unwrap().unwrap(),
    };
    assert!(client.command("DATA").await.starts_with("354"));
    let message = dsn("yahoo-mailbox-full.eml");
    client.send(&stuffed(&message)).await;
    assert!(client.reply().await.unwrap().starts_with("250 "));
    mx.wait_ingested(&message).await;
    mx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_its_replies_does_not_hold_up_a_shutdown() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let mut mx = Mx::start(|c| {
        c.command_timeout = Duration::from_secs(3600);
        c.session_timeout = Duration::from_secs(3600);
    })
    .await;
    // Small fixed socket buffers on the client (no autotuning), so the stall below is for
    // good: the server's replies fill the client's window and its send buffer, then it stops
    // reading, and the client's commands fill the server's receive buffer.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.set_send_buffer_size(4096).unwrap();
    let stream = tokio::time::timeout(LIMIT, socket.connect(mx.addr))
        .await
        .unwrap()
        .unwrap();
    let Client {
        mut replies,
        mut writer,
    } = Client::over(stream);
    assert!(replies.next().await.unwrap().starts_with("220 "));
    let sent = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&sent);
    // NOOPs without end, replies never read: once the socket buffers are full the server
    // is blocked writing a reply (and the client writing commands).
    let writing = tokio::spawn(async move {
        let chunk = b"NOOP\r\n".repeat(10_000);
        while writer.write_all(&chunk).await.is_ok() {
            counted.fetch_add(chunk.len(), Ordering::Relaxed);
        }
    });
    // Wait for the flood to stall (both sides blocked: 25 looks without progress) or to pass
    // 64 MB. Either way the stop below must end the session at once, not after the hour-long
    // timeouts.
    let (mut last, mut still) = (0, 0);
    wait_until("the client to stall", || {
        let now = sent.load(Ordering::Relaxed);
        still = if now == last { still + 1 } else { 0 };
        last = now;
        (still >= 25 && now > 0) || now >= 64 << 20
    })
    .await;
    mx.stop().await;
    drop(replies);
    tokio::time::timeout(LIMIT, writing).await.unwrap().unwrap();
}
