//! The fault matrix: what a receiving server can do wrong, one scenario each, every one
//! ending with each recipient in its right final state, nobody lost, and (unless said
//! otherwise) nobody received twice. The states and replies asserted are those the store
//! keeps, the arrivals those the test server recorded.
//!
//! | fault                                          | test                                                                                        |
//! |------------------------------------------------|---------------------------------------------------------------------------------------------|
//! | greylisting (451, then accepted)               | `faults::greylisted_recipients_are_retried_and_delivered_once`                              |
//! | 421 mid-session, the server closes             | `faults::a_421_mid_session_defers_one_and_the_rest_of_the_connection_goes_on_another`       |
//! | 5xx on MAIL FROM, RCPT TO, DATA, after the dot | `faults::a_refusal_at_any_stage_bounces_only_its_recipient` (also `send::replies_decide_each_recipient_state` for RCPT) |
//! | TLS: relay certificate not trusted             | `errors::an_untrusted_certificate_is_a_clear_error`                                         |
//! | TLS: relay STARTTLS handshake broken           | `faults::a_relay_whose_starttls_handshake_breaks_stops_the_send_and_loses_nobody`           |
//! | TLS: MX STARTTLS handshake broken              | `shaping::direct::a_host_with_broken_starttls_is_remembered_and_mailed_in_plain_text`       |
//! | slow banner, MX host                           | `faults::an_mx_host_slow_to_greet_times_out_defers_and_the_retry_delivers`                  |
//! | slow banner, relay                             | `faults::a_relay_slow_to_greet_is_reconnected_and_nobody_is_deferred`                       |
//! | slow reply after the dot                       | `faults::a_slow_reply_after_the_dot_times_out_defers_and_the_retry_delivers`                |
//! | connection reset during DATA                   | `faults::a_connection_reset_in_data_defers_one_and_the_rest_of_the_connection_goes_on_another` (also `send::replies_decide_each_recipient_state`) |
//! | server gone mid-run, MX host                   | `faults::an_mx_host_gone_mid_run_defers_the_rest_with_the_reason_and_a_re_run_delivers`     |
//! | server gone mid-run, relay                     | `faults::a_relay_gone_mid_run_stops_the_send_and_a_re_run_delivers_the_rest`                |
//! | DNS SERVFAIL (and timeouts, NXDOMAIN, null MX) | `direct::null_mx_and_missing_domains_bounce_and_dns_failures_defer`                         |

use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::direct::{mx_sink, Direct};
use crate::support::outcomes::{arrivals, Outcomes};
use crate::support::{self, Fixture, Setup, LIMIT};
use volley::model::{RecipientState, ReplyRecord};
use volley::runtime::{self, SendOptions, SendReport};
use volley::store::ExportKind;
use volley_testkit::sink::{Sink, SinkConfig, SinkTls, SlowBanner};

/// The relay campaign's id (`support::Fixture`).
const RELAY_CAMPAIGN: &str = "test-campaign";
/// The direct campaign's id (`support::direct::Direct`).
const DIRECT_CAMPAIGN: &str = "direct";

/// A CSV of these addresses.
fn csv(emails: &[&str]) -> String {
    let mut csv = String::from("email,first_name,city\n");
    for (i, email) in emails.iter().enumerate() {
        csv.push_str(&format!("{email},Name{i},City\n"));
    }
    csv
}

/// Asserts each of `emails` arrived exactly once and nothing else arrived.
fn assert_each_arrived_once(arrived: &BTreeMap<String, usize>, emails: &[&str]) {
    let want: BTreeMap<String, usize> = emails.iter().map(|e| ((*e).to_owned(), 1)).collect();
    assert_eq!(arrived, &want, "what the server received");
}

fn relay_setup(sink: SinkConfig, sections: &str) -> Setup {
    Setup {
        connections: 1,
        sink,
        sections: sections.to_owned(),
        ..Setup::default()
    }
}

// --- Greylisting -------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greylisted_recipients_are_retried_and_delivered_once() {
    let emails = [
        "ok-1@a.example",
        "grey-1@a.example",
        "ok-2@a.example",
        "grey-2@b.example",
    ];
    let fixture = Fixture::new(Setup::default(), &csv(&emails)).await;
    let report = fixture.send().await.unwrap();
    let c = &report.counts;
    assert_eq!((c.total, c.delivered), (4, 4), "{c:?}");
    assert_each_arrived_once(&arrivals(&[&fixture.sink]), &emails);
    let outcomes = Outcomes::read(&fixture.path("campaign.volley"), RELAY_CAMPAIGN);
    for grey in ["grey-1@a.example", "grey-2@b.example"] {
        assert_eq!(
            outcomes.kinds(grey),
            [ExportKind::Deferred, ExportKind::Delivered],
            "{grey}"
        );
        let first = outcomes.first_reply(grey);
        assert_eq!(
            (first.code, first.enhanced.as_deref()),
            (Some(451), Some("4.7.1"))
        );
        assert!(first.text.contains("greylisted"), "{}", first.text);
    }
    assert_eq!(outcomes.kinds("ok-1@a.example"), [ExportKind::Delivered]);
    assert_eq!(fixture.sink.stats().rejected_recipients, 2);
}

// --- A session cut mid-connection: 421, or a reset in DATA -------------------------------

/// Ten recipients through one relay connection, the fourth being `cut`: the session ends on
/// it, it alone is deferred (its first attempt's reply checked by `first_reply`) and
/// delivered on retry, and the recipients after it go on a new connection, never deferred.
async fn one_connection_cut_by(cut: &str, first_reply: impl Fn(&ReplyRecord)) {
    let mut emails: Vec<String> = (0..9).map(|i| format!("ok-{i}@a.example")).collect();
    emails.insert(3, cut.to_owned());
    let emails: Vec<&str> = emails.iter().map(String::as_str).collect();
    let fixture = Fixture::new(relay_setup(SinkConfig::default(), ""), &csv(&emails)).await;
    let report = fixture.send().await.unwrap();
    let c = &report.counts;
    assert_eq!((c.total, c.delivered), (10, 10), "{c:?}");
    assert_each_arrived_once(&arrivals(&[&fixture.sink]), &emails);
    let outcomes = Outcomes::read(&fixture.path("campaign.volley"), RELAY_CAMPAIGN);
    assert_eq!(
        outcomes.kinds(cut),
        [ExportKind::Deferred, ExportKind::Delivered]
    );
    first_reply(&outcomes.first_reply(cut));
    for email in emails.iter().filter(|e| **e != cut) {
        assert_eq!(outcomes.kinds(email), [ExportKind::Delivered], "{email}");
    }
    let connections = fixture.sink.stats().connections_total;
    assert!(
        connections >= 2,
        "the cut connection was replaced: {connections}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_421_mid_session_defers_one_and_the_rest_of_the_connection_goes_on_another() {
    one_connection_cut_by("421-1@a.example", |reply| {
        assert_eq!(reply.code, Some(421), "{reply:?}");
        assert_eq!(reply.text, "closing");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_reset_in_data_defers_one_and_the_rest_of_the_connection_goes_on_another() {
    one_connection_cut_by("drop-1@a.example", |reply| {
        assert_eq!(reply.code, None, "no reply came: {reply:?}");
        assert!(
            reply.text.contains("data"),
            "names the phase: {}",
            reply.text
        );
    })
    .await;
}

// --- 5xx at each stage of the transaction ------------------------------------------------

/// One relay connection, one refusal at each stage among accepted recipients: each refused
/// recipient is bounced with its reply and never arrives (a 5.7.1 policy refusal after one
/// retry: it blames the sender), the others are delivered on the same connection. `mail550` only works when the envelope is pipelined (the server sees
/// the recipient while answering MAIL), so it is left out without PIPELINING.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_at_any_stage_bounces_only_its_recipient() {
    for pipelining in [true, false] {
        let mut refused = vec![
            ("bounce-1@a.example", 550, "5.1.1", "user unknown"),
            (
                "data554-1@a.example",
                554,
                "5.7.1",
                "DATA refused by policy",
            ),
            ("reject-1@a.example", 554, "5.7.1", "message rejected"),
        ];
        if pipelining {
            refused.insert(0, ("mail550-1@a.example", 550, "5.7.1", "sender rejected"));
        }
        let mut emails = Vec::new();
        for (i, (email, ..)) in refused.iter().enumerate() {
            emails.push(format!("ok-{i}@a.example"));
            emails.push((*email).to_owned());
        }
        emails.push("ok-last@a.example".to_owned());
        let emails: Vec<&str> = emails.iter().map(String::as_str).collect();
        let setup = Setup {
            pipelining,
            ..relay_setup(SinkConfig::default(), "")
        };
        let fixture = Fixture::new(setup, &csv(&emails)).await;
        let report = fixture.send().await.unwrap();
        let c = &report.counts;
        let accepted = emails.len() - refused.len();
        assert_eq!(
            (c.delivered, c.bounced, c.deferred, c.pending),
            (accepted as u64, refused.len() as u64, 0, 0),
            "pipelining={pipelining}: {c:?}"
        );
        let ok: Vec<&str> = emails
            .iter()
            .copied()
            .filter(|e| e.starts_with("ok-"))
            .collect();
        assert_each_arrived_once(&arrivals(&[&fixture.sink]), &ok);
        let outcomes = Outcomes::read(&fixture.path("campaign.volley"), RELAY_CAMPAIGN);
        for (email, code, enhanced, text) in &refused {
            assert_eq!(outcomes.state(email), RecipientState::Bounced, "{email}");
            let reply = outcomes.reply(email);
            assert_eq!(
                (reply.code, reply.enhanced.as_deref()),
                (Some(*code), Some(*enhanced)),
                "pipelining={pipelining} {email}: {reply:?}"
            );
            assert!(reply.text.contains(text), "{email}: {}", reply.text);
            // A 5.7.1 refusal blames the sender: deferred once (the breaker counts it),
            // bounced when refused again while the destination takes everyone else.
            let kinds = if *enhanced == "5.7.1" {
                vec![ExportKind::Deferred, ExportKind::Bounced]
            } else {
                vec![ExportKind::Bounced]
            };
            assert_eq!(outcomes.kinds(email), kinds, "{email}");
        }
        assert!(
            outcomes.reply("bounce-1@a.example").hard,
            "an unknown user is a hard bounce"
        );
        // Every accepted message went on the first connection (the retries of the 5.7.1
        // refusals may come on another, after it went idle).
        let stats = fixture.sink.stats();
        assert_eq!(
            stats.max_messages_per_connection, accepted as u64,
            "pipelining={pipelining}: every refusal left the connection usable: {stats:?}"
        );
    }
}

// --- TLS handshake failure ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_whose_starttls_handshake_breaks_stops_the_send_and_loses_nobody() {
    let broken = SinkConfig {
        broken_starttls: true,
        ..SinkConfig::default()
    };
    let emails = ["a@a.example", "b@a.example", "c@b.example"];
    let mut fixture = Fixture::new(relay_setup(broken, ""), &csv(&emails)).await;
    let error = fixture.send().await.unwrap_err().to_string();
    assert!(
        error.contains("TLS handshake failed") && error.contains("3 attempts"),
        "{error}"
    );
    assert_eq!(fixture.sink.count(), 0, "nothing went in plain text");
    assert_eq!(fixture.sink.stats().broken_tls_handshakes, 3);
    let outcomes = Outcomes::read(&fixture.path("campaign.volley"), RELAY_CAMPAIGN);
    assert_eq!(outcomes.in_state(RecipientState::Pending), emails);

    // Once the relay's TLS is mended, a re-run delivers everyone.
    let config = SinkConfig {
        broken_starttls: false,
        ..fixture.sink.config().clone()
    };
    fixture.restart_sink(config).await;
    let report = fixture.send().await.unwrap();
    assert_eq!(report.counts.delivered, 3, "{:?}", report.counts);
    assert_each_arrived_once(&arrivals(&[&fixture.sink]), &emails);
    assert!(fixture.sink.received().iter().all(|m| m.tls));
}

// --- Timeouts: a slow banner, a slow reply after the dot ---------------------------------

const SHORT_BANNER: &str = "[timeouts]\nbanner = \"300ms\"\n";

fn slow_banner_sink(config: SinkConfig) -> SinkConfig {
    SinkConfig {
        slow_banner: Some(SlowBanner {
            connections: 1,
            delay: Duration::from_secs(2),
        }),
        ..config
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mx_host_slow_to_greet_times_out_defers_and_the_retry_delivers() {
    let direct = Direct::start(
        1,
        slow_banner_sink(mx_sink(SinkTls::None)),
        |zone, hosts| {
            zone.mx("d0.example", 10, &hosts[0].0);
        },
    )
    .await;
    let list = support::list(5, 1);
    direct.write_campaign(
        &list,
        "",
        &format!("{SHORT_BANNER}\n[shaping.default]\nmax_connections = 1\n"),
    );
    let first = direct.send_with_linger(Duration::ZERO).await;
    assert_eq!(
        (first.counts.deferred, first.counts.delivered),
        (5, 0),
        "{:?}",
        first.counts
    );
    assert_eq!(direct.sink.stats().slow_banners, 1);
    let outcomes = Outcomes::read(&direct.path("campaign.volley"), DIRECT_CAMPAIGN);
    for (email, (_, reply)) in &outcomes.states {
        let text = &reply.as_ref().unwrap().text;
        assert!(text.contains("timed out during banner"), "{email}: {text}");
    }

    // The host greets promptly now; the deferred recipients fall due and are delivered.
    let second = direct.send().await.unwrap();
    assert_eq!(second.counts.delivered, 5, "{:?}", second.counts);
    let emails: Vec<String> = (0..5).map(|i| format!("user{i}@d0.example")).collect();
    let emails: Vec<&str> = emails.iter().map(String::as_str).collect();
    assert_each_arrived_once(&arrivals(&[&direct.sink]), &emails);
    let outcomes = Outcomes::read(&direct.path("campaign.volley"), DIRECT_CAMPAIGN);
    for email in &emails {
        assert_eq!(
            outcomes.kinds(email),
            [ExportKind::Deferred, ExportKind::Delivered],
            "{email}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_slow_to_greet_is_reconnected_and_nobody_is_deferred() {
    let emails = ["a@a.example", "b@a.example", "c@b.example"];
    let setup = relay_setup(slow_banner_sink(SinkConfig::default()), SHORT_BANNER);
    let fixture = Fixture::new(setup, &csv(&emails)).await;
    let report = fixture.send().await.unwrap();
    assert_eq!(report.counts.delivered, 3, "{:?}", report.counts);
    assert_each_arrived_once(&arrivals(&[&fixture.sink]), &emails);
    let outcomes = Outcomes::read(&fixture.path("campaign.volley"), RELAY_CAMPAIGN);
    for email in emails {
        assert_eq!(outcomes.kinds(email), [ExportKind::Delivered], "{email}");
    }
    let stats = fixture.sink.stats();
    assert_eq!(
        (stats.slow_banners, stats.connections_total),
        (1, 2),
        "the slow connection was given up and a second one opened: {stats:?}"
    );
}

/// The server holds its reply after the dot past `[timeouts] data_end`, once. The client
/// gives up and defers the message, but the server had it: it is accepted once the hold
/// is over, and the retry delivers it again. That second copy is the documented price of
/// at-least-once delivery (RFC 1047); everyone else arrives once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reply_after_the_dot_times_out_defers_and_the_retry_delivers() {
    let emails = [
        "ok-1@a.example",
        "stall-1@a.example",
        "ok-2@a.example",
        "ok-3@a.example",
    ];
    let sink = SinkConfig {
        slow_delay: Duration::from_secs(2),
        ..SinkConfig::default()
    };
    let setup = relay_setup(sink, "[timeouts]\ndata_end = \"300ms\"\n");
    let fixture = Fixture::new(setup, &csv(&emails)).await;
    let report = fixture.send().await.unwrap();
    assert_eq!(report.counts.delivered, 4, "{:?}", report.counts);
    let outcomes = Outcomes::read(&fixture.path("campaign.volley"), RELAY_CAMPAIGN);
    let stalled = "stall-1@a.example";
    assert_eq!(
        outcomes.kinds(stalled),
        [ExportKind::Deferred, ExportKind::Delivered]
    );
    let first = outcomes.first_reply(stalled);
    assert_eq!(first.code, None);
    assert!(
        first.text.contains("timed out during data end"),
        "{}",
        first.text
    );
    for email in ["ok-1@a.example", "ok-2@a.example", "ok-3@a.example"] {
        assert_eq!(outcomes.kinds(email), [ExportKind::Delivered], "{email}");
    }
    // The first copy is accepted when the server's hold ends.
    fixture.sink.wait_for(5, LIMIT).await.unwrap();
    let arrived = arrivals(&[&fixture.sink]);
    assert_eq!(arrived[stalled], 2, "{arrived:?}");
    assert!(
        arrived.iter().all(|(e, n)| e == stalled || *n == 1),
        "{arrived:?}"
    );
}

// --- The server goes away mid-run --------------------------------------------------------

/// Runs `send` and, once `sink` has received `after` messages, stops it.
async fn stop_during<F>(send: F, sink: &Sink, after: usize) -> F::Output
where
    F: std::future::Future,
{
    let stop = async {
        sink.wait_for(after, LIMIT).await.unwrap();
        sink.stop().await;
    };
    let both = async {
        let (sent, ()) = tokio::join!(send, stop);
        sent
    };
    tokio::time::timeout(LIMIT, both)
        .await
        .expect("send finished in time")
}

/// After the second run: everyone is delivered; the only ones received twice are
/// `in_flight` (their transaction was cut when the server went, after it may have taken
/// the message: at-least-once).
fn assert_all_delivered_once_but_in_flight(
    outcomes: &Outcomes,
    arrived: &BTreeMap<String, usize>,
    total: usize,
    in_flight: &[String],
) {
    assert_eq!(outcomes.states.len(), total);
    assert_eq!(outcomes.in_state(RecipientState::Delivered).len(), total);
    assert_eq!(arrived.len(), total, "everyone arrived");
    for (email, n) in arrived {
        assert!(
            *n == 1 || (*n == 2 && in_flight.contains(email)),
            "{email} arrived {n} times (in flight when the server went: {in_flight:?})"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_gone_mid_run_stops_the_send_and_a_re_run_delivers_the_rest() {
    let setup = Setup {
        connections: 2,
        relay_extra: "max_per_second = 20".to_owned(),
        ..Setup::default()
    };
    let mut fixture = Fixture::new(setup, &support::list(60, 3)).await;
    let campaign = fixture.campaign();
    let first = stop_during(
        Box::pin(runtime::send(&campaign, SendOptions::default())),
        &fixture.sink,
        10,
    )
    .await;
    let error = first.unwrap_err().to_string();
    let relay = format!("127.0.0.1:{}", fixture.sink.addr().port());
    assert!(
        error.contains(&relay) && error.contains("3 attempts"),
        "{error}"
    );
    let outcomes = Outcomes::read(&fixture.path("campaign.volley"), RELAY_CAMPAIGN);
    let delivered = outcomes.in_state(RecipientState::Delivered).len();
    let deferred: Vec<String> = outcomes
        .in_state(RecipientState::Deferred)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let pending = outcomes.in_state(RecipientState::Pending).len();
    assert_eq!(
        delivered + deferred.len() + pending,
        60,
        "nobody lost: {delivered} delivered, {deferred:?} deferred, {pending} pending"
    );
    assert!(
        delivered + deferred.len() >= 10 && pending > 0,
        "{delivered} delivered, {pending} pending"
    );
    for email in &deferred {
        let reply = outcomes.reply(email);
        assert_eq!(reply.code, None, "{email}: {reply:?}");
        assert!(
            reply.text.contains("during"),
            "{email}: the reply says what failed and when: {}",
            reply.text
        );
    }
    let got = fixture.sink.count();
    assert!(
        (delivered..=delivered + deferred.len()).contains(&got),
        "the server has what the store counts as delivered, and perhaps a cut one: {got}"
    );

    let config = fixture.sink.config().clone();
    let gone = fixture.restart_sink(config).await;
    let second = fixture.send().await.unwrap();
    assert_eq!(second.counts.delivered, 60, "{:?}", second.counts);
    let outcomes = Outcomes::read(&fixture.path("campaign.volley"), RELAY_CAMPAIGN);
    let arrived = arrivals(&[&gone, &fixture.sink]);
    assert_all_delivered_once_but_in_flight(&outcomes, &arrived, 60, &deferred);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mx_host_gone_mid_run_defers_the_rest_with_the_reason_and_a_re_run_delivers() {
    let mut direct = Direct::start(1, mx_sink(SinkTls::None), |zone, hosts| {
        zone.mx("d0.example", 10, &hosts[0].0);
    })
    .await;
    direct.write_campaign(
        &support::list(60, 1),
        "",
        "[shaping.default]\nmax_message_rate = \"20/s\"\n",
    );
    let campaign = direct.campaign();
    let options = SendOptions {
        linger: Duration::ZERO,
        ..SendOptions::default()
    };
    let first: SendReport = stop_during(
        Box::pin(runtime::send(&campaign, options)),
        &direct.sink,
        10,
    )
    .await
    .unwrap();
    let c = &first.counts;
    assert_eq!(
        c.delivered + c.deferred,
        60,
        "nobody lost or left pending: {c:?}"
    );
    assert!(c.deferred > 0, "{c:?}");
    assert_eq!(first.blocked.len(), 1, "{:?}", first.blocked);
    assert_eq!(first.blocked[0].why, "unreachable");
    let outcomes = Outcomes::read(&direct.path("campaign.volley"), DIRECT_CAMPAIGN);
    let deferred: Vec<String> = outcomes
        .in_state(RecipientState::Deferred)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let mut cut = Vec::new();
    for email in &deferred {
        let reply = outcomes.reply(email);
        let text = &reply.text;
        if text.contains("no MX host answered") {
            // Composed after the host was found gone: not tried again yet.
            assert_eq!(
                reply.enhanced.as_deref(),
                Some("4.4.1"),
                "{email}: {reply:?}"
            );
        } else if !text.contains("could not connect to any MX host") {
            // Taken by a connection when the host went: its session was cut.
            assert_eq!(reply.code, None, "{email}: {reply:?}");
            assert!(text.contains("connection closed"), "{email}: {text}");
            cut.push(email.clone());
        }
    }
    let connections = direct.sink.stats().connections_total;
    assert!(
        cut.len() as u64 <= connections,
        "at most one message per connection was cut: {cut:?}, {connections} connection(s)"
    );
    let got = direct.sink.count() as u64;
    assert!(
        (c.delivered..=c.delivered + cut.len() as u64).contains(&got),
        "the server has what the store counts as delivered, and perhaps a cut one: {got}"
    );

    let config = direct.sink.config().clone();
    let gone = direct.restart_sink(config).await;
    let second = direct.send().await.unwrap();
    assert_eq!(second.counts.delivered, 60, "{:?}", second.counts);
    let outcomes = Outcomes::read(&direct.path("campaign.volley"), DIRECT_CAMPAIGN);
    let arrived = arrivals(&[&gone, &direct.sink]);
    assert_all_delivered_once_but_in_flight(&outcomes, &arrived, 60, &cut);
}
