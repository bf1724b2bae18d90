//! Direct-to-MX delivery: MX lookups through a real DNS server on loopback, MX hosts that are
//! real SMTP servers on 127.0.0.x, TLS policies, fallbacks and DNS failures.

use crate::support::direct::{mx_sink, Direct};
use crate::support::{self, LIMIT};
use volley::model::RecipientState;
use volley_testkit::sink::SinkTls;

/// `count` recipients spread over `domains` domains `d<i>.example`, every domain's MX the
/// first host.
async fn simple(tls: SinkTls, pipelining: bool, chunking: bool) -> Direct {
    Direct::start(
        1,
        volley_testkit::sink::SinkConfig {
            pipelining,
            chunking,
            ..mx_sink(tls)
        },
        |zone, hosts| {
            for d in 0..3 {
                zone.mx(&format!("d{d}.example"), 10, &hosts[0].0);
            }
        },
    )
    .await
}

/// The core scenario straight to MX hosts: {plain, STARTTLS, implicit TLS} × {PIPELINING on,
/// off} × {CHUNKING on, off}. Opportunistic TLS is used when offered; implicit TLS needs
/// `tls = "implicit"`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mx_flavour_delivers_the_same_campaign() {
    let records = support::dkim_records();
    for tls in [SinkTls::None, SinkTls::StartTls, SinkTls::Implicit] {
        for pipelining in [true, false] {
            for chunking in [true, false] {
                let flavour = format!("{tls:?} pipelining={pipelining} chunking={chunking}");
                let direct = simple(tls, pipelining, chunking).await;
                let mx_tls = if tls == SinkTls::Implicit {
                    "tls = \"implicit\""
                } else {
                    ""
                };
                direct.write_campaign(&support::list(12, 3), mx_tls, "");
                let report = direct.send().await.unwrap();
                assert_eq!(
                    report.counts.delivered, 12,
                    "{flavour}: {:?}",
                    report.counts
                );
                let sink = &direct.sink;
                let received = sink.wait_for(12, LIMIT).await.unwrap();
                assert!(direct.arrivals().values().all(|&n| n == 1), "{flavour}");
                assert_eq!(
                    received.iter().all(|m| m.tls),
                    tls != SinkTls::None,
                    "{flavour}: TLS whenever the host offers it"
                );
                let text = String::from_utf8_lossy(&received[0].data).into_owned();
                assert!(
                    text.contains("\r\n.\r\nA line with a dot above."),
                    "{flavour}"
                );
                let results = volley::dkim::verify(&received[0].data, &records).await;
                assert!(results.iter().all(|r| r.pass), "{flavour}: {results:?}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_are_tried_by_preference_and_a_dead_primary_falls_back_to_the_backup() {
    // mx0 is the backup (preference 20); the primary (10) is an address nobody listens on.
    let direct = Direct::start(1, mx_sink(SinkTls::StartTls), |zone, hosts| {
        zone.a("dead.sink.test", std::net::Ipv4Addr::new(127, 0, 0, 99));
        for d in 0..3 {
            let domain = format!("d{d}.example");
            zone.mx(&domain, 10, "dead.sink.test");
            zone.mx(&domain, 20, &hosts[0].0);
        }
    })
    .await;
    direct.write_campaign(&support::list(30, 3), "", "");
    let report = direct.send().await.unwrap();
    assert_eq!(report.counts.delivered, 30, "{:?}", report.counts);
    assert_eq!(direct.sink.count(), 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domain_without_mx_gets_its_mail_at_its_own_address() {
    let direct = Direct::start(1, mx_sink(SinkTls::None), |zone, hosts| {
        // No MX record: the domain's A record is its implicit MX (RFC 5321 §5.1).
        zone.a("plain.example", hosts[0].1);
    })
    .await;
    direct.write_campaign(
        "email,first_name,city\na@plain.example,A,X\nb@plain.example,B,Y\n",
        "",
        "",
    );
    let report = direct.send().await.unwrap();
    assert_eq!(report.counts.delivered, 2, "{:?}", report.counts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_mx_and_missing_domains_bounce_and_dns_failures_defer() {
    let direct = Direct::start(1, mx_sink(SinkTls::None), |zone, hosts| {
        zone.mx("ok.example", 10, &hosts[0].0);
        zone.null_mx("nomail.example");
        zone.servfail("broken.example");
        zone.timeout("slow.example");
        // gone.example is not in the zone: NXDOMAIN.
    })
    .await;
    let csv = "email,first_name,city\n\
        a@ok.example,A,X\n\
        b@nomail.example,B,X\n\
        c@gone.example,C,X\n\
        d@broken.example,D,X\n\
        e@slow.example,E,X\n";
    direct.write_campaign(csv, "", "");
    let report = direct.send_with_linger(std::time::Duration::ZERO).await;
    let c = &report.counts;
    assert_eq!((c.delivered, c.bounced, c.deferred), (1, 2, 2), "{c:?}");
    assert_eq!(direct.sink.count(), 1, "nothing but ok.example was sent");
    let store = volley::store::Store::open(&direct.path("campaign.volley")).unwrap();
    let reply_of = |state, email: &str| {
        store
            .recipients_in("direct", state)
            .unwrap()
            .into_iter()
            .find(|r| r.record.email == email)
            .and_then(|r| r.record.last_reply)
            .unwrap_or_else(|| panic!("{email} is not {state}"))
    };
    let null = reply_of(RecipientState::Bounced, "b@nomail.example");
    assert_eq!(null.enhanced.as_deref(), Some("5.1.10"));
    assert!(null.text.contains("null MX"), "{}", null.text);
    let gone = reply_of(RecipientState::Bounced, "c@gone.example");
    assert_eq!(gone.enhanced.as_deref(), Some("5.1.2"));
    assert!(
        gone.hard,
        "a domain that does not exist suppresses the address"
    );
    let broken = reply_of(RecipientState::Deferred, "d@broken.example");
    assert_eq!(broken.enhanced.as_deref(), Some("4.4.3"));
    let slow = reply_of(RecipientState::Deferred, "e@slow.example");
    assert!(slow.text.contains("timed out"), "{}", slow.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domains_on_the_same_mx_hosts_share_one_destination() {
    let direct = Direct::start(2, mx_sink(SinkTls::None), |zone, hosts| {
        for d in 0..6 {
            // d0..d2 on mx0, d3..d5 on mx1: two destinations.
            let host = &hosts[d / 3].0;
            zone.mx(&format!("d{d}.example"), 10, host);
        }
    })
    .await;
    direct.write_campaign(
        &support::list(120, 6),
        "",
        "[shaping.default]\nmax_connections = 1\n",
    );
    let report = direct.send().await.unwrap();
    assert_eq!(report.counts.delivered, 120, "{:?}", report.counts);
    let stats = direct.sink.stats();
    assert_eq!(
        stats.connections_total, 2,
        "one connection per MX host: {stats:?}"
    );
    for d in 0..6 {
        let domain = &stats.domains[&format!("d{d}.example")];
        assert_eq!((domain.messages, domain.connections), (20, 1), "d{d}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_tls_defers_when_the_host_offers_none() {
    let direct = Direct::start(1, mx_sink(SinkTls::None), |zone, hosts| {
        zone.mx("secure.example", 10, &hosts[0].0);
        zone.mx("any.example", 10, &hosts[0].0);
    })
    .await;
    let csv = "email,first_name,city\na@secure.example,A,X\nb@any.example,B,X\n";
    direct.write_campaign(
        csv,
        "",
        "[shaping.\"secure.example\"]\ntls = \"required\"\n",
    );
    let report = direct.send_with_linger(std::time::Duration::ZERO).await;
    let c = &report.counts;
    assert_eq!((c.delivered, c.deferred), (1, 1), "{c:?}");
    let arrivals = direct.arrivals();
    assert_eq!(arrivals.get("b@any.example"), Some(&1));
    assert_eq!(
        arrivals.get("a@secure.example"),
        None,
        "never sent in plain text"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_tls_verifies_the_certificate_of_the_mx_host() {
    let direct = Direct::start(1, mx_sink(SinkTls::StartTls), |zone, hosts| {
        zone.mx("secure.example", 10, &hosts[0].0);
    })
    .await;
    direct.write_campaign(
        "email,first_name,city\na@secure.example,A,X\n",
        "tls = \"required\"",
        "",
    );
    let report = direct.send().await.unwrap();
    assert_eq!(report.counts.delivered, 1, "{:?}", report.counts);
    assert!(direct.sink.received()[0].tls);
}
