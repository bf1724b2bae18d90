//! End-to-end tests of the name server over real loopback sockets, resolved through a real
//! `hickory_resolver::Resolver` (UDP with TCP fallback), as direct-to-MX delivery will.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::NetError;
use hickory_resolver::{ResolverBuilder, TokioResolver};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

use super::*;

const LIMIT: Duration = Duration::from_secs(10);

async fn within<F: std::future::Future>(future: F) -> F::Output {
    timeout(LIMIT, future).await.expect("timed out")
}

/// A resolver that asks only `server` (UDP, then TCP for truncated replies), with no cache,
/// no hosts file and a short timeout.
fn resolver_for(server: SocketAddr, request_timeout: Duration) -> TokioResolver {
    resolver_builder(server, request_timeout).build().unwrap()
}

/// The builder behind [`resolver_for`], for tests that change more options.
fn resolver_builder(
    server: SocketAddr,
    request_timeout: Duration,
) -> ResolverBuilder<TokioRuntimeProvider> {
    let mut name_server = NameServerConfig::udp_and_tcp(server.ip());
    for connection in &mut name_server.connections {
        connection.port = server.port();
    }
    let config = ResolverConfig::from_name_servers(vec![name_server]);
    let mut builder = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
    let options: &mut ResolverOpts = builder.options_mut();
    options.timeout = request_timeout;
    options.attempts = 1;
    options.cache_size = 0;
    options.use_hosts_file = ResolveHosts::Never;
    builder
}

async fn start(zone: &Zone) -> (NameServer, TokioResolver) {
    let server = within(NameServer::start(zone.clone())).await.unwrap();
    let resolver = resolver_for(server.addr(), Duration::from_secs(1));
    (server, resolver)
}

fn mx_pairs(lookup: &hickory_resolver::lookup::Lookup) -> Vec<(u16, String)> {
    let mut pairs: Vec<(u16, String)> = lookup
        .answers()
        .iter()
        .filter_map(|record| match &record.data {
            RData::MX(mx) => Some((mx.preference, mx.exchange.to_ascii())),
            _ => None,
        })
        .collect();
    pairs.sort();
    pairs
}

#[tokio::test]
async fn mx_records_come_back_with_both_preferences() {
    let mut zone = Zone::new();
    zone.mx("d1.example", 20, "mx2.example")
        .mx("D1.Example.", 10, "mx1.example.");
    let (server, resolver) = start(&zone).await;
    let lookup = within(resolver.mx_lookup("d1.example.")).await.unwrap();
    assert_eq!(
        mx_pairs(&lookup),
        [
            (10, "mx1.example.".to_owned()),
            (20, "mx2.example.".to_owned())
        ]
    );
    assert_eq!(lookup.answers()[0].ttl, 300);
    within(server.shutdown()).await;
}

#[tokio::test]
async fn a_and_aaaa_records_resolve() {
    let mut zone = Zone::new();
    zone.ttl(120)
        .a("mx1.example", Ipv4Addr::new(127, 0, 0, 2))
        .aaaa("mx1.example", Ipv6Addr::LOCALHOST);
    let (_server, resolver) = start(&zone).await;
    let v4 = within(resolver.ipv4_lookup("mx1.example.")).await.unwrap();
    assert!(matches!(
        v4.answers()[..],
        [ref record] if record.data == RData::A(Ipv4Addr::new(127, 0, 0, 2).into()) && record.ttl == 120
    ));
    let v6 = within(resolver.ipv6_lookup("MX1.EXAMPLE.")).await.unwrap();
    assert!(matches!(
        v6.answers()[..],
        [ref record] if record.data == RData::AAAA(Ipv6Addr::LOCALHOST.into())
    ));
    let both = within(resolver.lookup_ip("mx1.example.")).await.unwrap();
    assert_eq!(both.iter().count(), 2);
}

#[tokio::test]
async fn a_txt_longer_than_255_bytes_comes_back_whole() {
    let key = format!("v=DKIM1; k=rsa; p={}", "A".repeat(400));
    let mut zone = Zone::new();
    zone.txt("s1._domainkey.example.com", &key);
    let (_server, resolver) = start(&zone).await;
    let lookup = within(resolver.txt_lookup("s1._domainkey.example.com."))
        .await
        .unwrap();
    let [record] = lookup.answers() else {
        panic!("expected one TXT record: {lookup:?}");
    };
    let RData::TXT(txt) = &record.data else {
        panic!("not a TXT record: {record:?}");
    };
    assert_eq!(txt.txt_data.len(), 2, "split into 255-byte strings");
    assert_eq!(txt.txt_data.concat(), key.as_bytes());
}

#[tokio::test]
async fn unknown_names_are_nxdomain() {
    let mut zone = Zone::new();
    zone.a("mx1.example", Ipv4Addr::LOCALHOST);
    let (_server, resolver) = start(&zone).await;
    let error = within(resolver.mx_lookup("nowhere.example."))
        .await
        .unwrap_err();
    assert!(error.is_nx_domain(), "{error:?}");
}

#[tokio::test]
async fn an_existing_name_without_the_type_is_nodata() {
    let mut zone = Zone::new();
    zone.a("mx1.example", Ipv4Addr::LOCALHOST);
    let (_server, resolver) = start(&zone).await;
    let error = within(resolver.mx_lookup("mx1.example."))
        .await
        .unwrap_err();
    assert!(error.is_no_records_found(), "{error:?}");
    assert!(!error.is_nx_domain(), "{error:?}");
}

#[tokio::test]
async fn a_null_mx_comes_back_as_exchange_dot() {
    let mut zone = Zone::new();
    zone.null_mx("nullmx.example");
    let (_server, resolver) = start(&zone).await;
    let lookup = within(resolver.mx_lookup("nullmx.example.")).await.unwrap();
    assert_eq!(mx_pairs(&lookup), [(0, ".".to_owned())]);
    let RData::MX(mx) = &lookup.answers()[0].data else {
        panic!("not an MX record");
    };
    assert!(mx.exchange.is_root());
}

#[tokio::test]
async fn a_cname_is_followed_to_its_target() {
    let zone =
        Zone::parse("alias.example CNAME d1.example\nd1.example MX 10 mx1.example\n").unwrap();
    let (_server, resolver) = start(&zone).await;
    let lookup = within(resolver.mx_lookup("alias.example.")).await.unwrap();
    assert_eq!(mx_pairs(&lookup), [(10, "mx1.example.".to_owned())]);
}

#[tokio::test]
async fn servfail_is_an_error_that_is_not_no_records() {
    let mut zone = Zone::new();
    zone.servfail("broken.example");
    let (server, resolver) = start(&zone).await;
    let error = within(resolver.mx_lookup("broken.example."))
        .await
        .unwrap_err();
    assert!(!error.is_no_records_found(), "{error:?}");
    assert!(!error.is_nx_domain(), "{error:?}");
    assert!(server.queries_for("broken.example", "MX") >= 1);
}

#[tokio::test]
async fn a_timeout_name_makes_the_lookup_time_out() {
    let mut zone = Zone::new();
    zone.timeout("slow.example")
        .a("fast.example", Ipv4Addr::LOCALHOST);
    let server = within(NameServer::start(zone)).await.unwrap();
    let resolver = resolver_for(server.addr(), Duration::from_millis(200));
    let error = within(resolver.mx_lookup("slow.example."))
        .await
        .unwrap_err();
    assert!(matches!(error, NetError::Timeout), "{error:?}");
    assert!(server.queries_for("slow.example.", "mx") >= 1);
    // The server is still answering other names.
    within(resolver.ipv4_lookup("fast.example.")).await.unwrap();
}

#[tokio::test]
async fn set_zone_changes_the_answers() {
    let mut before = Zone::new();
    before.mx("d1.example", 10, "old.example");
    let (server, resolver) = start(&before).await;
    let lookup = within(resolver.mx_lookup("d1.example.")).await.unwrap();
    assert_eq!(mx_pairs(&lookup), [(10, "old.example.".to_owned())]);
    let mut after = Zone::new();
    after.mx("d1.example", 5, "new.example");
    server.set_zone(after);
    let lookup = within(resolver.mx_lookup("d1.example.")).await.unwrap();
    assert_eq!(mx_pairs(&lookup), [(5, "new.example.".to_owned())]);
}

#[tokio::test]
async fn queries_are_counted_per_name_and_type() {
    let mut zone = Zone::new();
    zone.mx("d1.example", 10, "mx1.example")
        .a("mx1.example", Ipv4Addr::LOCALHOST);
    let (server, resolver) = start(&zone).await;
    for _ in 0..3 {
        within(resolver.mx_lookup("d1.example.")).await.unwrap();
    }
    within(resolver.ipv4_lookup("MX1.example.")).await.unwrap();
    assert_eq!(server.queries_for("d1.example", "MX"), 3);
    assert_eq!(server.queries_for("D1.EXAMPLE.", "mx"), 3);
    assert_eq!(server.queries_for("d1.example", "A"), 0);
    assert_eq!(server.queries_for("mx1.example", "A"), 1);
    assert_eq!(server.queries_for("mx1.example", "NOT-A-TYPE"), 0);
    assert_eq!(server.queries(), 4);
}

#[tokio::test]
async fn a_large_answer_arrives_through_the_tcp_fallback() {
    let mut zone = Zone::new();
    for i in 0..40 {
        zone.a("many.example", Ipv4Addr::new(127, 0, 1, i));
    }
    let server = within(NameServer::start(zone)).await.unwrap();
    // Without EDNS the client takes 512 bytes over UDP; 40 A records need about 700.
    let mut resolver = resolver_builder(server.addr(), Duration::from_secs(1));
    resolver.options_mut().edns0 = false;
    let resolver = resolver.build().unwrap();
    let lookup = within(resolver.ipv4_lookup("many.example.")).await.unwrap();
    assert_eq!(lookup.answers().len(), 40);
    // Once truncated over UDP, once whole over TCP.
    assert_eq!(server.queries_for("many.example", "A"), 2);
}

#[tokio::test]
async fn an_answer_larger_than_the_edns_size_arrives_through_the_tcp_fallback() {
    let mut zone = Zone::new();
    for i in 0..120 {
        zone.a("lots.example", Ipv4Addr::new(127, 0, 2, i));
    }
    // hickory offers 1232 bytes with EDNS; 120 A records need about 1,950.
    let (server, resolver) = start(&zone).await;
    let lookup = within(resolver.ipv4_lookup("lots.example.")).await.unwrap();
    assert_eq!(lookup.answers().len(), 120);
    assert_eq!(server.queries_for("lots.example", "A"), 2);
}

#[tokio::test]
async fn garbage_udp_packets_do_not_kill_the_server() {
    let mut zone = Zone::new();
    zone.a("mx1.example", Ipv4Addr::LOCALHOST);
    let (server, resolver) = start(&zone).await;
    let socket = within(UdpSocket::bind("127.0.0.1:0")).await.unwrap();
    let garbage: [&[u8]; 5] = [
        b"",
        b"\x00",
        b"hello",
        &[0xff; 600],
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x3f",
    ];
    for packet in garbage {
        within(socket.send_to(packet, server.addr())).await.unwrap();
    }
    // The query-shaped one gets FORMERR with its id.
    let mut buffer = [0; 512];
    let (len, _) = within(socket.recv_from(&mut buffer)).await.unwrap();
    let reply = Message::from_vec(&buffer[..len]).unwrap();
    assert_eq!(reply.metadata.id, 0x1234);
    assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);
    within(resolver.ipv4_lookup("mx1.example.")).await.unwrap();
    assert!(server.queries() >= 6, "{}", server.queries());
}

#[tokio::test]
async fn tcp_queries_use_the_length_prefix_and_share_a_connection() {
    let mut zone = Zone::new();
    zone.a("mx1.example", Ipv4Addr::LOCALHOST);
    let server = within(NameServer::start(zone)).await.unwrap();
    let mut tcp = within(TcpStream::connect(server.addr())).await.unwrap();
    for id in [7_u16, 8] {
        let mut request = Message::query();
        request.metadata.id = id;
        request.add_query(Query::query(
            Name::from_ascii("mx1.example.").unwrap(),
            RecordType::A,
        ));
        let bytes = request.to_vec().unwrap();
        let len = u16::try_from(bytes.len()).unwrap();
        within(tcp.write_all(&len.to_be_bytes())).await.unwrap();
        within(tcp.write_all(&bytes)).await.unwrap();
        let mut prefix = [0; 2];
        within(tcp.read_exact(&mut prefix)).await.unwrap();
        let mut reply = vec![0; usize::from(u16::from_be_bytes(prefix))];
        within(tcp.read_exact(&mut reply)).await.unwrap();
        let reply = Message::from_vec(&reply).unwrap();
        assert_eq!(reply.metadata.id, id);
        assert_eq!(reply.answers.len(), 1);
    }
}

#[tokio::test]
async fn start_on_refuses_non_loopback_addresses_and_reports_busy_ports() {
    let public: SocketAddr = "192.0.2.1:5353".parse().unwrap();
    let error = within(NameServer::start_on(public, Zone::new()))
        .await
        .unwrap_err();
    assert!(
        matches!(error, NameServerError::NotLoopback { .. }),
        "{error}"
    );
    let first = within(NameServer::start(Zone::new())).await.unwrap();
    let error = within(NameServer::start_on(first.addr(), Zone::new()))
        .await
        .unwrap_err();
    assert!(matches!(error, NameServerError::Bind { .. }), "{error}");
    assert!(
        error.to_string().contains(&first.addr().to_string()),
        "{error}"
    );
}

#[tokio::test]
async fn dropping_the_server_stops_it() {
    let mut zone = Zone::new();
    zone.a("mx1.example", Ipv4Addr::LOCALHOST);
    let server = within(NameServer::start(zone)).await.unwrap();
    let addr = server.addr();
    let resolver = resolver_for(addr, Duration::from_millis(200));
    within(resolver.ipv4_lookup("mx1.example.")).await.unwrap();
    drop(server);
    tokio::task::yield_now().await;
    let fresh = resolver_for(addr, Duration::from_millis(200));
    assert!(within(fresh.ipv4_lookup("mx1.example.")).await.is_err());
}
