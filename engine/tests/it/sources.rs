//! `[mx] source_addresses`: connections to MX hosts leave from 127.0.0.2 and 127.0.0.3 on
//! loopback, each saying its own EHLO name (after STARTTLS too), round-robin or pinned per
//! destination; the test SMTP server records each session's peer address and EHLO name.
//! `[relay] source_address` does the same for relay connections.

use std::collections::{BTreeMap, BTreeSet};

use crate::support::direct::{mx_sink, Direct};
use crate::support::LIMIT;
use volley_testkit::sink::{Received, SinkTls};

const TWO_SOURCES: &str = r#"source_addresses = [
  { address = "127.0.0.2", helo = "a.test" },
  { address = "127.0.0.3", helo = "b.test" },
]"#;

/// Two recipient domains with MX hosts of their own names (two destinations), both served
/// by the one test server. By the stable hash, `mx.alpha.test` pins to the first source and
/// `mx.gamma.test` to the second.
async fn two_destinations() -> Direct {
    let direct = Direct::start(1, mx_sink(SinkTls::StartTls), |zone, hosts| {
        for name in ["alpha", "gamma"] {
            let mx = format!("mx.{name}.test");
            zone.a(&mx, hosts[0].1);
            zone.mx(&format!("{name}.example"), 10, &mx);
        }
    })
    .await;
    let mut csv = String::from("email,first_name,city\n");
    for i in 0..12 {
        let domain = if i % 2 == 0 { "alpha" } else { "gamma" };
        csv.push_str(&format!("user{i}@{domain}.example,Name{i},City\n"));
    }
    // One message per connection: many sessions, so round-robin shows.
    let shaping = "[shaping.default]\nmax_messages_per_connection = 1\n";
    direct.write_campaign(&csv, TWO_SOURCES, shaping);
    direct
}

/// The peer IP and EHLO name of every arrival, by recipient domain.
fn seen_by_domain(received: &[Received]) -> BTreeMap<String, BTreeSet<(String, String)>> {
    let mut seen: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    for message in received {
        let domain = message.rcpt_to[0].rsplit_once('@').unwrap().1.to_owned();
        let peer = message.peer.expect("a TCP peer").ip().to_string();
        seen.entry(domain)
            .or_default()
            .insert((peer, message.helo.clone()));
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_sends_from_both_source_addresses_each_with_its_ehlo_name() {
    let direct = two_destinations().await;
    let report = direct.send().await.unwrap();
    assert_eq!(report.counts.delivered, 12, "{:?}", report.counts);
    let received = direct.sink.wait_for(12, LIMIT).await.unwrap();
    assert!(received.iter().all(|m| m.tls), "STARTTLS was used");
    let pairs: BTreeSet<(String, String)> =
        seen_by_domain(&received).into_values().flatten().collect();
    let want: BTreeSet<(String, String)> = [("127.0.0.2", "a.test"), ("127.0.0.3", "b.test")]
        .into_iter()
        .map(|(ip, helo)| (ip.to_owned(), helo.to_owned()))
        .collect();
    assert_eq!(
        pairs, want,
        "both sources, each with its own EHLO name (after STARTTLS)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_keeps_each_destination_on_one_source_address() {
    let direct = two_destinations().await;
    let campaign = std::fs::read_to_string(direct.path("campaign.toml")).unwrap();
    let pinned = campaign.replace(
        TWO_SOURCES,
        &format!("{TWO_SOURCES}\nsource_pick = \"pinned\""),
    );
    assert_ne!(pinned, campaign);
    std::fs::write(direct.path("campaign.toml"), pinned).unwrap();
    let report = direct.send().await.unwrap();
    assert_eq!(report.counts.delivered, 12, "{:?}", report.counts);
    let received = direct.sink.wait_for(12, LIMIT).await.unwrap();
    let seen = seen_by_domain(&received);
    let one = |ip: &str, helo: &str| BTreeSet::from([(ip.to_owned(), helo.to_owned())]);
    assert_eq!(
        seen["alpha.example"],
        one("127.0.0.2", "a.test"),
        "{seen:?}"
    );
    assert_eq!(
        seen["gamma.example"],
        one("127.0.0.3", "b.test"),
        "{seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_address_not_on_this_host_stops_the_send_before_it_starts() {
    let direct = two_destinations().await;
    let campaign = std::fs::read_to_string(direct.path("campaign.toml")).unwrap();
    std::fs::write(
        direct.path("campaign.toml"),
        campaign.replace("127.0.0.3", "192.0.2.10"),
    )
    .unwrap();
    let error = direct.send().await.unwrap_err().to_string();
    assert!(
        error.contains("source address 192.0.2.10 ([mx] source_addresses[1]) cannot be used"),
        "{error}"
    );
    assert_eq!(direct.sink.count(), 0, "nothing was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mx_address_of_a_family_without_a_source_is_skipped_and_the_mail_deferred() {
    let direct = Direct::start(1, mx_sink(SinkTls::None), |zone, hosts| {
        zone.mx("v4only.example", 10, &hosts[0].0);
    })
    .await;
    direct.write_campaign(
        "email,first_name,city\na@v4only.example,A,X\n",
        "source_addresses = [\"::1\"]",
        "",
    );
    let report = direct.send_with_linger(std::time::Duration::ZERO).await;
    assert_eq!(report.counts.deferred, 1, "{:?}", report.counts);
    assert_eq!(direct.sink.count(), 0);
    let campaign = direct.campaign();
    let store = volley::store::Store::open_at(&campaign.settings().store).unwrap();
    let deferred = store
        .recipients_in("direct", volley::model::RecipientState::Deferred)
        .unwrap();
    let reply = deferred[0].record.last_reply.clone().unwrap();
    // The first attempt's reason; a store shared by nodes (PostgreSQL) may already have
    // settled a second pass while the destination waits to be tried again.
    assert!(
        reply
            .text
            .contains("has only IPv4 addresses and [mx] source_addresses has no IPv4 address")
            || reply.text.contains("(not tried again yet)"),
        "{}",
        reply.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_connections_leave_from_the_relay_source_address() {
    let setup = crate::support::Setup {
        relay_extra: "source_address = \"127.0.0.3\"".to_owned(),
        ..crate::support::Setup::default()
    };
    let fixture = crate::support::Fixture::new(setup, &crate::support::list(8, 2)).await;
    let report = fixture.send().await.unwrap();
    assert_eq!(report.counts.delivered, 8, "{:?}", report.counts);
    let received = fixture.sink.wait_for(8, LIMIT).await.unwrap();
    for message in &received {
        assert_eq!(message.peer.unwrap().ip().to_string(), "127.0.0.3");
        assert_eq!(message.helo, "sender.example.com");
    }
    assert!(report.sources.is_empty(), "no [mx] sources through a relay");
}
