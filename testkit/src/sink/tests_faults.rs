//! End-to-end tests of the fault scripts (`mail550`, `data554`, `stall`), the slow banner
//! and stopping a sink, over real loopback sockets with the raw client of `tests.rs`.

use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::tests::{connect, greeted, send_one, start, within, LIMIT};
use super::*;

#[tokio::test]
async fn mail550_script_refuses_a_pipelined_mail_every_time() {
    let sink = start(SinkConfig::default()).await;
    let mut client = greeted(&sink).await;
    for _ in 0..2 {
        client
            .send("MAIL FROM:<f@s.test>\r\nRCPT TO:<Mail550-1@example.com>\r\nDATA\r\n")
            .await;
        assert_eq!(
            client.reply().await,
            "550 5.7.1 <f@s.test>: sender rejected"
        );
        assert!(client.reply().await.starts_with("503"), "RCPT without MAIL");
        assert!(client.reply().await.starts_with("503"), "DATA without MAIL");
    }
    // The same connection takes the next transaction.
    let (_, done) = send_one(&mut client, "ok@example.com", "x\r\n").await;
    assert!(done.starts_with("250"), "{done}");
    assert_eq!(sink.count(), 1);
    assert_eq!(sink.stats().refused_transactions, 2);
}

#[tokio::test]
async fn mail550_script_cannot_see_a_recipient_that_was_not_pipelined() {
    let sink = start(SinkConfig::default()).await;
    let mut client = greeted(&sink).await;
    let (rcpt, done) = send_one(&mut client, "mail550@example.com", "x\r\n").await;
    assert!(
        rcpt.starts_with("250") && done.starts_with("250"),
        "{rcpt} / {done}"
    );
    assert_eq!(sink.stats().refused_transactions, 0);
}

#[tokio::test]
async fn data554_script_refuses_data_every_time() {
    let sink = start(SinkConfig::default()).await;
    let mut client = greeted(&sink).await;
    for _ in 0..2 {
        assert!(client.cmd("MAIL FROM:<f@s.test>").await.starts_with("250"));
        assert!(client
            .cmd("RCPT TO:<data554@example.com>")
            .await
            .starts_with("250"));
        assert_eq!(client.cmd("DATA").await, "554 5.7.1 DATA refused by policy");
    }
    // The refused transaction is over: a new MAIL needs no RSET.
    let (_, done) = send_one(&mut client, "ok@example.com", "x\r\n").await;
    assert!(done.starts_with("250"), "{done}");
    assert_eq!(sink.count(), 1);
    assert_eq!(sink.stats().refused_transactions, 2);
}

#[tokio::test]
async fn stall_script_holds_the_final_reply_the_first_time_only() {
    let stall = Duration::from_millis(500);
    let sink = start(SinkConfig {
        slow_delay: stall,
        ..SinkConfig::default()
    })
    .await;
    let mut client = greeted(&sink).await;
    let started = Instant::now();
    let (_, done) = send_one(&mut client, "stall-1@example.com", "x\r\n").await;
    assert!(done.starts_with("250"), "{done}");
    assert!(started.elapsed() >= stall);
    let started = Instant::now();
    let (_, done) = send_one(&mut client, "stall-1@example.com", "x\r\n").await;
    assert!(done.starts_with("250"), "{done}");
    assert!(started.elapsed() < stall, "the second time is prompt");
    assert_eq!(sink.count(), 2);
}

#[tokio::test]
async fn a_stalled_message_is_accepted_even_when_the_client_gave_up() {
    let sink = start(SinkConfig {
        slow_delay: Duration::from_millis(200),
        ..SinkConfig::default()
    })
    .await;
    let mut client = greeted(&sink).await;
    assert!(client.cmd("MAIL FROM:<f@s.test>").await.starts_with("250"));
    assert!(client
        .cmd("RCPT TO:<stall@example.com>")
        .await
        .starts_with("250"));
    assert!(client.cmd("DATA").await.starts_with("354"));
    client.send("x\r\n.\r\n").await;
    drop(client);
    let got = within(sink.wait_for(1, LIMIT)).await.unwrap();
    assert_eq!(got[0].rcpt_to, vec!["stall@example.com"]);
}

#[tokio::test]
async fn slow_banner_holds_the_first_connections_only() {
    let delay = Duration::from_millis(300);
    let sink = start(SinkConfig {
        slow_banner: Some(SlowBanner {
            connections: 1,
            delay,
        }),
        ..SinkConfig::default()
    })
    .await;
    let started = Instant::now();
    let _first = connect(&sink).await;
    assert!(started.elapsed() >= delay);
    let started = Instant::now();
    let _second = connect(&sink).await;
    assert!(
        started.elapsed() < delay,
        "later connections are greeted at once"
    );
    assert_eq!(sink.stats().slow_banners, 1);
}

#[tokio::test]
async fn a_stopped_sink_cuts_its_sessions_refuses_connections_and_keeps_what_it_received() {
    let sink = start(SinkConfig::default()).await;
    let mut client = greeted(&sink).await;
    let (_, done) = send_one(&mut client, "ok@example.com", "x\r\n").await;
    assert!(done.starts_with("250"), "{done}");
    within(sink.stop()).await;
    assert!(client.closed().await, "the open session was cut");
    assert!(
        TcpStream::connect(sink.addr()).await.is_err(),
        "nobody listens"
    );
    assert_eq!(sink.count(), 1);
    // The port is free again: a new sink can take it.
    let listener = tokio::net::TcpListener::bind(sink.addr()).await.unwrap();
    let again = within(Sink::start_on(listener, SinkConfig::default(), None))
        .await
        .unwrap();
    assert_eq!(again.addr(), sink.addr());
    within(sink.stop()).await;
}

#[tokio::test]
async fn a_policy_block_starts_after_its_count_for_one_domain_until_lifted() {
    let sink = start(SinkConfig {
        policy_block: Some(PolicyBlock::gmail("Blocked.Example", 1)),
        ..SinkConfig::default()
    })
    .await;
    let mut client = greeted(&sink).await;
    let (rcpt, _) = send_one(&mut client, "a@blocked.example", "x\r\n").await;
    assert!(rcpt.starts_with("250"), "the first message goes in: {rcpt}");
    assert!(client.cmd("MAIL FROM:<f@s.test>").await.starts_with("250"));
    let refused = client.cmd("RCPT TO:<b@blocked.example>").await;
    assert_eq!(refused, GMAIL_UNSOLICITED);
    assert!(client.cmd("RSET").await.starts_with("250"));
    let (rcpt, _) = send_one(&mut client, "c@other.example", "x\r\n").await;
    assert!(rcpt.starts_with("250"), "other domains are taken: {rcpt}");
    sink.lift_block();
    let (rcpt, _) = send_one(&mut client, "d@blocked.example", "x\r\n").await;
    assert!(rcpt.starts_with("250"), "lifted: {rcpt}");
    let stats = sink.stats();
    assert_eq!((stats.policy_blocked, stats.messages), (1, 3));
    assert_eq!(stats.rejected_recipients, 0);
}
