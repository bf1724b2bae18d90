//! The sink as a demanding receiver, driven by Volley's own SMTP client: arrival times and
//! connection numbers, messages per connection, a per-domain rate limit (421 and 451),
//! greylisting, the `throttle` script, a broken STARTTLS, TLS session resumption and one
//! sink behind two listeners. These are what delivery-shaping tests will rely on.
//!
//! They live here rather than in `engine/src/sink/` because the sink itself may not use
//! `crate::smtp` (see `layering.rs`); its own unit tests talk raw SMTP bytes.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::time::timeout;
use volley::smtp::{
    connect, tls_client_config, Envelope, Reply, Security, Session, SessionConfig, SmtpError,
    Transaction,
};
use volley_testkit::sink::{RateLimit, Sink, SinkConfig, SinkError, SinkTls, ThrottleReply};

use crate::support::LIMIT;

async fn within<F: Future>(future: F) -> F::Output {
    timeout(LIMIT, future).await.expect("timed out")
}

async fn start(config: SinkConfig) -> Sink {
    within(Sink::start(config)).await.unwrap()
}

/// A client configuration trusting the sink's CA (or only the web roots for a plain sink).
fn client_tls(sink: &Sink) -> Arc<rustls::ClientConfig> {
    tls_client_config(sink.ca_pem().map(str::as_bytes)).unwrap()
}

fn config_for(
    addr: SocketAddr,
    security: Security,
    tls: Arc<rustls::ClientConfig>,
) -> SessionConfig {
    SessionConfig {
        security,
        ..SessionConfig::new(addr.ip().to_string(), addr.port(), tls)
    }
}

/// A plain session to the sink's first address.
async fn plain(sink: &Sink) -> Session {
    let config = config_for(sink.addr(), Security::None, client_tls(sink));
    within(connect(&config)).await.unwrap()
}

/// Sends one small message to `to` and returns every reply of the transaction.
async fn send(session: &mut Session, to: &str) -> Transaction {
    let envelope = Envelope {
        mail_from: "news@sender.test".to_owned(),
        rcpt_to: vec![to.to_owned()],
    };
    let message = format!("Subject: for {to}\r\n\r\nHello.\r\n");
    within(session.send(&envelope, message.as_bytes()))
        .await
        .unwrap()
}

/// The reply that decided the (only) recipient.
fn rcpt_reply(transaction: &Transaction) -> &Reply {
    transaction.outcome_for(0)
}

fn enhanced(reply: &Reply) -> String {
    reply
        .enhanced
        .map(|code| code.to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn arrivals_carry_their_time_and_connection_number() {
    let sink = start(SinkConfig::default()).await;
    let before = Instant::now();
    let mut first = plain(&sink).await;
    assert!(send(&mut first, "a@example.com").await.accepted());
    assert!(send(&mut first, "b@example.com").await.accepted());
    let mut second = plain(&sink).await;
    assert!(send(&mut second, "c@example.com").await.accepted());
    let after = Instant::now();

    let got = within(sink.wait_for(3, LIMIT)).await.unwrap();
    let connections: Vec<u64> = got.iter().map(|r| r.connection).collect();
    assert_eq!(connections, [1, 1, 2]);
    assert!(got.iter().all(|r| before <= r.at && r.at <= after));
    assert!(got.windows(2).all(|pair| pair[0].at <= pair[1].at));
    within(first.quit()).await.unwrap();
    within(second.quit()).await.unwrap();
}

#[tokio::test]
async fn max_messages_per_connection_is_the_busiest_connection() {
    let sink = start(SinkConfig::default()).await;
    let mut busy = plain(&sink).await;
    for n in 0..3 {
        assert!(send(&mut busy, &format!("r{n}@example.com"))
            .await
            .accepted());
    }
    let mut quiet = plain(&sink).await;
    assert!(send(&mut quiet, "q@example.com").await.accepted());
    // A refused message does not count.
    assert!(!send(&mut quiet, "bounce@example.com").await.accepted());

    let stats = sink.stats();
    assert_eq!(stats.messages, 4);
    assert_eq!(stats.max_messages_per_connection, 3);
}

#[tokio::test]
async fn domain_stats_note_when_each_connection_first_gave_a_rcpt() {
    let sink = start(SinkConfig::default()).await;
    let before = Instant::now();
    let mut first = plain(&sink).await;
    send(&mut first, "a@example.com").await;
    send(&mut first, "b@example.com").await;
    send(&mut first, "c@other.test").await;
    let mut second = plain(&sink).await;
    send(&mut second, "d@example.com").await;

    let stats = sink.stats();
    let example = &stats.domains["example.com"];
    assert_eq!(example.connections, 2);
    assert_eq!(
        example.connection_opened_at.len(),
        2,
        "one entry per connection"
    );
    assert!(example.connection_opened_at[0] >= before);
    assert!(example.connection_opened_at[0] <= example.connection_opened_at[1]);
    assert_eq!(stats.domains["other.test"].connection_opened_at.len(), 1);
}

fn limited(reply: ThrottleReply) -> SinkConfig {
    SinkConfig {
        rate_limit: Some(RateLimit {
            messages: 5,
            // Long enough that no machine sends the first six messages across it.
            per: Duration::from_secs(60),
            reply,
        }),
        ..SinkConfig::default()
    }
}

#[tokio::test]
async fn rate_limit_421_closes_past_the_limit_and_recovers_after_the_window() {
    let sink = start(limited(ThrottleReply::Close421)).await;
    let mut session = plain(&sink).await;
    for n in 0..5 {
        assert!(send(&mut session, &format!("r{n}@example.com"))
            .await
            .accepted());
    }
    let throttled = send(&mut session, "r5@example.com").await;
    let reply = rcpt_reply(&throttled);
    assert_eq!(reply.code, 421, "{reply}");
    assert_eq!(enhanced(reply), "4.7.0");
    assert_eq!(reply.text, "<example.com>: too many messages, slow down");
    assert!(!session.is_usable(), "421 closes the connection");

    // Another domain is not limited by example.com's window.
    let mut other = plain(&sink).await;
    assert!(send(&mut other, "x@other.test").await.accepted());

    let stats = sink.stats();
    assert_eq!(stats.throttled, 1);
    assert_eq!(stats.domains["example.com"].throttled, 1);
    assert_eq!(stats.domains["other.test"].throttled, 0);
    assert_eq!(stats.rejected_recipients, 0, "throttling is not a script");

    sink.advance(Duration::from_secs(60));
    let mut later = plain(&sink).await;
    assert!(send(&mut later, "r5@example.com").await.accepted());
    assert_eq!(sink.count(), 7);
}

#[tokio::test]
async fn rate_limit_451_defers_and_keeps_the_connection() {
    let sink = start(limited(ThrottleReply::Defer451)).await;
    let mut session = plain(&sink).await;
    for n in 0..5 {
        assert!(send(&mut session, &format!("r{n}@example.com"))
            .await
            .accepted());
    }
    for _ in 0..2 {
        let deferred = send(&mut session, "r5@example.com").await;
        let reply = rcpt_reply(&deferred);
        assert_eq!(reply.code, 451, "{reply}");
        assert_eq!(enhanced(reply), "4.7.1");
        assert_eq!(reply.text, "<example.com>: rate limited, try again later");
        assert!(session.is_usable());
    }
    assert_eq!(sink.stats().domains["example.com"].throttled, 2);

    sink.advance(Duration::from_secs(60));
    assert!(send(&mut session, "r5@example.com").await.accepted());
    assert_eq!(sink.stats().max_messages_per_connection, 6);
}

#[tokio::test]
async fn broken_starttls_fails_the_handshake_and_plain_still_works() {
    let sink = start(SinkConfig {
        tls: SinkTls::StartTls,
        broken_starttls: true,
        ..SinkConfig::default()
    })
    .await;
    let tls = client_tls(&sink);
    let secure = config_for(sink.addr(), Security::Opportunistic, Arc::clone(&tls));
    let error = within(connect(&secure)).await.unwrap_err();
    assert!(matches!(error, SmtpError::Tls { .. }), "{error:?}");

    // What a direct-to-MX sender does next: the same host without TLS.
    let fallback = config_for(sink.addr(), Security::None, tls);
    let mut session = within(connect(&fallback)).await.unwrap();
    assert!(session.capabilities().starttls, "STARTTLS is still offered");
    assert!(send(&mut session, "ok@example.com").await.accepted());

    let stats = sink.stats();
    assert_eq!(stats.broken_tls_handshakes, 1);
    assert_eq!(stats.tls_sessions, 0);
    assert!(!sink.received()[0].tls);
}

#[tokio::test]
async fn greylisting_defers_until_the_delay_passed() {
    let delay = Duration::from_secs(600);
    let sink = start(SinkConfig {
        greylist_delay: delay,
        ..SinkConfig::default()
    })
    .await;
    let mut session = plain(&sink).await;
    for _ in 0..2 {
        let refused = send(&mut session, "grey-1@example.com").await;
        let reply = rcpt_reply(&refused);
        assert_eq!(reply.code, 451, "{reply}");
        assert_eq!(enhanced(reply), "4.7.1");
        assert_eq!(reply.text, "greylisted, try again later");
    }
    // Another greylisted address has its own clock.
    assert!(!send(&mut session, "grey-2@example.com").await.accepted());

    sink.advance(delay);
    assert!(send(&mut session, "Grey-1@example.com").await.accepted());
    assert_eq!(sink.stats().rejected_recipients, 3);
}

#[tokio::test]
async fn throttle_script_answers_450_the_first_time_only() {
    let sink = start(SinkConfig::default()).await;
    let mut session = plain(&sink).await;
    let first = send(&mut session, "throttle@example.com").await;
    let reply = rcpt_reply(&first);
    assert_eq!(reply.code, 450, "{reply}");
    assert_eq!(enhanced(reply), "4.7.0");
    assert_eq!(reply.text, "too many messages, slow down");
    assert!(session.is_usable());
    assert!(send(&mut session, "throttle@example.com").await.accepted());
    assert_eq!(sink.stats().rejected_recipients, 1);
}

/// Opens a STARTTLS session with `tls`, sends one message and quits.
async fn one_tls_session(sink: &Sink, tls: &Arc<rustls::ClientConfig>) {
    let config = config_for(sink.addr(), Security::StartTls, Arc::clone(tls));
    let mut session = within(connect(&config)).await.unwrap();
    assert!(session.is_tls());
    assert!(send(&mut session, "ok@example.com").await.accepted());
    within(session.quit()).await.unwrap();
}

#[tokio::test]
async fn tls_resumption_is_counted_when_the_client_keeps_its_config() {
    let sink = start(SinkConfig {
        tls: SinkTls::StartTls,
        ..SinkConfig::default()
    })
    .await;
    let shared = client_tls(&sink);
    one_tls_session(&sink, &shared).await;
    assert_eq!(
        sink.stats().tls_resumed,
        0,
        "the first handshake is a full one"
    );
    one_tls_session(&sink, &shared).await;
    assert_eq!(sink.stats().tls_resumed, 1, "{:?}", sink.stats());

    // A fresh client configuration has no session to resume.
    one_tls_session(&sink, &client_tls(&sink)).await;
    let stats = sink.stats();
    assert_eq!((stats.tls_sessions, stats.tls_resumed), (3, 1));
    assert!(sink.received().iter().all(|r| r.tls));
}

#[tokio::test]
async fn one_sink_on_two_listeners_shares_its_state() {
    let mut listeners = Vec::new();
    for _ in 0..2 {
        listeners.push(within(TcpListener::bind("127.0.0.1:0")).await.unwrap());
    }
    let sink = within(Sink::start_on_many(listeners, SinkConfig::default(), None))
        .await
        .unwrap();
    let addrs = sink.addrs().to_vec();
    assert_eq!(addrs.len(), 2);
    assert_ne!(addrs[0], addrs[1]);
    assert_eq!(sink.addr(), addrs[0]);

    let tls = client_tls(&sink);
    let mut sessions = Vec::new();
    for addr in &addrs {
        let config = config_for(*addr, Security::None, Arc::clone(&tls));
        sessions.push(within(connect(&config)).await.unwrap());
    }
    // `defer` remembers the address across listeners: deferred on one, accepted on the other.
    assert!(!send(&mut sessions[0], "defer@example.com").await.accepted());
    assert!(send(&mut sessions[1], "defer@example.com").await.accepted());

    let stats = sink.stats();
    assert_eq!(stats.connections_total, 2);
    assert_eq!(stats.max_concurrent_connections, 2);
    assert_eq!(stats.domains["example.com"].connections, 2);
    assert_eq!(stats.messages, 1);
    assert_eq!(sink.received()[0].connection, 2);
    within(sink.shutdown()).await;
}

#[tokio::test]
async fn a_sink_needs_at_least_one_listener() {
    let error = within(Sink::start_on_many(Vec::new(), SinkConfig::default(), None))
        .await
        .unwrap_err();
    assert!(matches!(error, SinkError::NoListener), "{error:?}");
}
