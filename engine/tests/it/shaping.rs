//! Politeness and priorities: relay caps that hold across runs, and an urgent campaign that
//! overtakes a running bulk one on the same destination.

use crate::support::{self, Fixture, Setup, LIMIT};
use std::time::Duration;
use volley::control::{self, Request, Response};
use volley::runtime::{self, SendOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hourly_relay_cap_pauses_the_send_and_holds_across_runs() {
    let setup = Setup {
        relay_extra: "max_per_hour = 5".into(),
        ..Setup::default()
    };
    let fixture = Fixture::new(setup, &support::list(8, 2)).await;
    let report = fixture.send().await.unwrap();
    assert_eq!(report.counts.delivered, 5, "{:?}", report.counts);
    assert_eq!(report.counts.pending, 3, "the rest waits, untouched");
    let pause = report.paused.expect("the report says the cap was reached");
    assert_eq!((pause.cap, pause.limit), ("relay.max_per_hour", 5));
    assert!(pause.resume_at > volley::model::now_millis());
    // A second run within the hour sends nothing more: the cap counts the first run.
    let again = fixture.send().await.unwrap();
    assert_eq!(again.counts.delivered, 5);
    assert!(again.paused.is_some());
    assert_eq!(fixture.sink.count(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_second_relay_cap_paces_the_send() {
    let setup = Setup {
        relay_extra: "max_per_second = 20".into(),
        ..Setup::default()
    };
    let fixture = Fixture::new(setup, &support::list(40, 4)).await;
    let started = std::time::Instant::now();
    let report = fixture.send().await.unwrap();
    assert_eq!(report.counts.delivered, 40);
    // 40 messages at 20 a second (a burst of 2 allowed): well over a second and a half.
    assert!(
        started.elapsed() >= Duration::from_millis(1_500),
        "{:?}",
        started.elapsed()
    );
}

/// A bulk campaign is running on one relay connection; an urgent one (priority 1) is handed
/// to the running send for the same relay. Its messages go ahead of the bulk ones still
/// waiting; the bulk campaign resumes afterwards and completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_urgent_campaign_overtakes_bulk_traffic_to_the_same_destination() {
    let setup = Setup {
        connections: 1,
        reply_delay: Duration::from_millis(4),
        ..Setup::default()
    };
    let fixture = Fixture::new(setup, &support::list(400, 4)).await;
    let mut urgent_csv = String::from("email,first_name,city\n");
    for i in 0..20 {
        urgent_csv.push_str(&format!("urgent{i}@u.example,U{i},X\n"));
    }
    std::fs::write(fixture.path("urgent.csv"), urgent_csv).unwrap();
    let bulk_toml = std::fs::read_to_string(fixture.campaign_file()).unwrap();
    let urgent_toml = bulk_toml
        .replace("id = \"test-campaign\"", "id = \"urgent\"\npriority = 1")
        .replace("recipients = \"list.csv\"", "recipients = \"urgent.csv\"");
    std::fs::write(fixture.path("urgent.toml"), urgent_toml).unwrap();

    let campaign = fixture.campaign();
    let bulk = tokio::spawn(async move {
        tokio::time::timeout(LIMIT, runtime::send(&campaign, SendOptions::default())).await
    });
    fixture.sink.wait_for(50, LIMIT).await.unwrap();
    let store = fixture.path("campaign.volley");
    let reply = control::request(
        &store,
        &Request::Submit {
            campaign_file: fixture.path("urgent.toml"),
        },
    )
    .await
    .unwrap();
    assert!(
        matches!(&reply, Response::Submitted { campaign, priority: 1, .. } if campaign == "urgent"),
        "{reply:?}"
    );
    let report = bulk.await.unwrap().unwrap().unwrap();
    assert_eq!(report.counts.delivered, 400, "the bulk campaign completes");

    let received = fixture.sink.received();
    let urgent_at: Vec<usize> = received
        .iter()
        .enumerate()
        .filter(|(_, m)| m.rcpt_to[0].starts_with("urgent"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(urgent_at.len(), 20, "every urgent message arrived once");
    let (first, last) = (urgent_at[0], urgent_at[19]);
    let bulk_between = (first..=last).filter(|i| !urgent_at.contains(i)).count();
    assert!(
        bulk_between <= 2,
        "bulk messages paused while urgent ones went: {bulk_between} bulk between urgent {first}..{last}"
    );
    assert!(
        last < 390,
        "urgent ones did not wait for the bulk campaign: last at {last}"
    );
    let store = volley::store::Store::open(&store).unwrap();
    let urgent = store.counts("urgent").unwrap().unwrap();
    assert_eq!(urgent.delivered, 20);
}

mod direct {
    //! Shaping straight to MX hosts, proven by what the receiving server counted.

    use crate::support::direct::{mx_sink, Direct};
    use crate::support::{self, LIMIT};
    use std::time::Duration;
    use volley_testkit::sink::{RateLimit, SinkConfig, SinkTls, ThrottleReply};

    /// One MX host serving `domains` domains `d<i>.example`.
    async fn one_host(sink: SinkConfig, domains: usize) -> Direct {
        Direct::start(1, sink, |zone, hosts| {
            for d in 0..domains {
                zone.mx(&format!("d{d}.example"), 10, &hosts[0].0);
            }
        })
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_destination_gets_no_more_connections_messages_or_speed_than_its_rule_allows() {
        let direct = one_host(mx_sink(SinkTls::None), 1).await;
        direct.write_campaign(
            &support::list(60, 1),
            "",
            "[shaping.\"d0.example\"]\nmax_connections = 2\nmax_message_rate = \"40/s\"\nmax_messages_per_connection = 10\n",
        );
        let started = std::time::Instant::now();
        let report = direct.send().await.unwrap();
        assert_eq!(report.counts.delivered, 60, "{:?}", report.counts);
        let stats = direct.sink.stats();
        let domain = &stats.domains["d0.example"];
        assert!(domain.max_concurrent_connections <= 2, "{domain:?}");
        assert!(stats.max_messages_per_connection <= 10, "{stats:?}");
        assert!(
            domain.connections >= 6,
            "60 messages, 10 per connection: {domain:?}"
        );
        // 60 messages at 40 a second (a burst of 4): at least 1.4 s from first to last.
        let received = direct.sink.received();
        let span = received[59].at - received[0].at;
        assert!(span >= Duration::from_millis(1_300), "{span:?}");
        assert!(started.elapsed() < LIMIT);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_global_cap_holds_over_every_destination() {
        let direct = Direct::start(3, mx_sink(SinkTls::None), |zone, hosts| {
            for d in 0..6 {
                zone.mx(&format!("d{d}.example"), 10, &hosts[d % 3].0);
            }
        })
        .await;
        direct.write_campaign(
            &support::list(180, 6),
            "",
            "[shaping.global]\nmax_connections = 2\n",
        );
        let report = direct.send().await.unwrap();
        assert_eq!(report.counts.delivered, 180, "{:?}", report.counts);
        let stats = direct.sink.stats();
        assert!(stats.max_concurrent_connections <= 2, "{stats:?}");
    }

    /// The receiver takes 10 messages per 500 ms from a domain and answers 421 past that.
    /// Volley cuts its rate and connections at the first 421s, the deferred messages are
    /// retried, and the whole campaign gets through with few refusals.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn throttling_replies_slow_the_destination_down_until_everything_is_delivered() {
        let sink = SinkConfig {
            rate_limit: Some(RateLimit {
                messages: 10,
                per: Duration::from_millis(500),
                reply: ThrottleReply::Close421,
            }),
            ..mx_sink(SinkTls::None)
        };
        let direct = one_host(sink, 1).await;
        direct.write_campaign(
            &support::list(80, 1),
            "",
            "[shaping.default]\nsuspend_after = 50\n",
        );
        let report = direct.send().await.unwrap();
        assert_eq!(report.counts.delivered, 80, "{:?}", report.counts);
        let throttled = direct.sink.stats().throttled;
        assert!(throttled >= 1, "the receiver did throttle");
        assert!(
            throttled <= 20,
            "back-off kept refusals low: {throttled} refusals for 80 messages"
        );
        assert!(direct.arrivals().values().all(|&n| n == 1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn repeated_throttling_suspends_the_destination_and_its_recipients_wait() {
        let sink = SinkConfig {
            rate_limit: Some(RateLimit {
                messages: 3,
                per: Duration::from_secs(60),
                reply: ThrottleReply::Mail451,
            }),
            ..mx_sink(SinkTls::None)
        };
        let direct = one_host(sink, 1).await;
        direct.write_campaign(
            &support::list(30, 1),
            "",
            // One connection, so the one refusal is the only transaction in flight when the
            // destination is suspended (with more, each open connection may be refused once).
            "[shaping.default]\nmax_connections = 1\nsuspend_after = 1\nsuspend_for = \"1h\"\n",
        );
        let report = direct.send_with_linger(Duration::ZERO).await;
        let c = &report.counts;
        assert_eq!(c.delivered, 3, "{c:?}");
        assert_eq!(
            c.deferred, 1,
            "the refused message waits for its retry: {c:?}"
        );
        assert_eq!(c.pending, 26, "the rest were not tried: {c:?}");
        let blocked = &report.blocked;
        assert_eq!(blocked.len(), 1, "{blocked:?}");
        assert_eq!(blocked[0].why, "suspended");
        assert!(blocked[0].until > volley::model::now_millis() + 3_000_000);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_host_with_broken_starttls_is_remembered_and_mailed_in_plain_text() {
        let sink = SinkConfig {
            broken_starttls: true,
            ..mx_sink(SinkTls::StartTls)
        };
        let direct = one_host(sink, 2).await;
        direct.write_campaign(
            &support::list(40, 2),
            "",
            // One connection at a time, so only the first meets the broken STARTTLS before the
            // host is remembered (connections opened together would each try it once).
            "[shaping.default]\nmax_connections = 1\nmax_messages_per_connection = 5\n",
        );
        let report = direct.send().await.unwrap();
        assert_eq!(report.counts.delivered, 40, "{:?}", report.counts);
        let stats = direct.sink.stats();
        assert!(direct.sink.received().iter().all(|m| !m.tls));
        assert_eq!(
            stats.broken_tls_handshakes, 1,
            "STARTTLS was tried once, then the host was remembered: {stats:?}"
        );
        assert!(stats.connections_total >= 8);
        // Mail went over one connection at a time. The server may count the broken
        // handshake's connection a moment longer than Volley kept it (on a busy core its end
        // is noticed after the plain-text connection opened), hence at most two overall.
        // (The server also counts a connection until its handler ends, after Volley left.)
        for (domain, counted) in &stats.domains {
            assert!(
                counted.max_concurrent_connections <= 2,
                "{domain}: {stats:?}"
            );
        }
        assert!(stats.max_concurrent_connections <= 2, "{stats:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reconnecting_to_a_host_resumes_its_tls_session() {
        let direct = one_host(mx_sink(SinkTls::StartTls), 1).await;
        direct.write_campaign(
            &support::list(30, 1),
            "",
            "[shaping.default]\nmax_messages_per_connection = 5\nmax_connections = 1\n",
        );
        let report = direct.send().await.unwrap();
        assert_eq!(report.counts.delivered, 30, "{:?}", report.counts);
        let stats = direct.sink.stats();
        assert!((6..=7).contains(&stats.connections_total), "{stats:?}");
        assert!(
            stats.tls_resumed >= 4,
            "later connections resume the first one's session: {stats:?}"
        );
        assert!(direct.sink.received().iter().all(|m| m.tls));
    }
}
