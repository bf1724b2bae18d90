//! The policy cache against the loopback DNS server and a small HTTPS policy host: one fetch
//! while the record's id stays, a new fetch when it changes, the cached policy kept when the
//! record goes or a new fetch fails; answers other than a `200 text/plain` are refused.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use volley_testkit::nameserver::{NameServer, Zone};
use volley_testkit::sink::TestCa;

use super::*;
use crate::config::DnsSettings;

const LIMIT: Duration = Duration::from_secs(20);
/// The test CA's certificate covers `*.sink.test`, so the policy host is `mta-sts.sink.test`.
const DOMAIN: &str = "sink.test";

/// What the policy host answers (the whole response) and how many requests it had.
#[derive(Clone, Default)]
struct Host {
    response: Arc<Mutex<String>>,
    requests: Arc<Mutex<usize>>,
}

impl Host {
    fn answer(&self, status: &str, content_type: &str, body: &str) {
        *self.response.lock().unwrap() = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
    }

    fn requests(&self) -> usize {
        *self.requests.lock().unwrap()
    }

    async fn start(ca: &TestCa) -> (Host, u16) {
        let acceptor = tokio_rustls::TlsAcceptor::from(ca.server_config().unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let host = Host::default();
        let serving = host.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    continue;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                *serving.requests.lock().unwrap() += 1;
                let response = serving.response.lock().unwrap().clone();
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            }
        });
        (host, port)
    }
}

/// The zone with `_mta-sts` giving `id`, or (`None`) only a record that is not MTA-STS's
/// (a missing name would be cached as such by the resolver for a while).
fn zone(id: Option<&str>) -> Zone {
    let mut zone = Zone::new();
    zone.ttl(0);
    zone.a(&format!("mta-sts.{DOMAIN}"), std::net::Ipv4Addr::LOCALHOST);
    let record = match id {
        Some(id) => format!("v=STSv1; id={id}"),
        None => "v=spf1 -all".to_owned(),
    };
    zone.txt(&format!("_mta-sts.{DOMAIN}"), &record);
    zone
}

fn policy_text(mode: &str, max_age: u32) -> String {
    format!("version: STSv1\nmode: {mode}\nmx: *.sink.test\nmax_age: {max_age}\n")
}

async fn setup() -> (MtaSts, NameServer, Host) {
    let ca = TestCa::generate().unwrap();
    let (host, port) = Host::start(&ca).await;
    let dns = NameServer::start(zone(Some("one"))).await.unwrap();
    let settings = DnsSettings {
        nameservers: Some(vec![dns.addr()]),
        ..DnsSettings::default()
    };
    let resolver = MxResolver::new(&settings).unwrap();
    let sts = MtaSts::new(resolver, ca.client_config().unwrap(), port, LIMIT);
    (sts, dns, host)
}

async fn mode(sts: &MtaSts) -> Option<StsMode> {
    let policy = tokio::time::timeout(LIMIT, sts.policy(DOMAIN))
        .await
        .unwrap();
    policy.map(|p| p.mode)
}

#[tokio::test]
async fn a_policy_is_fetched_once_per_id_and_kept_while_the_record_is_gone() {
    let (sts, dns, host) = setup().await;
    host.answer(
        "200 OK",
        "text/plain; charset=utf-8",
        &policy_text("enforce", 3600),
    );
    assert_eq!(mode(&sts).await, Some(StsMode::Enforce));
    assert_eq!(mode(&sts).await, Some(StsMode::Enforce));
    assert_eq!(host.requests(), 1, "the same id: the cached policy");

    host.answer("200 OK", "text/plain", &policy_text("testing", 3600));
    dns.set_zone(zone(Some("two")));
    assert_eq!(
        mode(&sts).await,
        Some(StsMode::Testing),
        "a new id: fetched again"
    );
    assert_eq!(host.requests(), 2);

    dns.set_zone(zone(None));
    assert_eq!(
        mode(&sts).await,
        Some(StsMode::Testing),
        "no record: the cached policy"
    );
    host.answer("500 Internal Server Error", "text/plain", "");
    dns.set_zone(zone(Some("three")));
    assert_eq!(
        mode(&sts).await,
        Some(StsMode::Testing),
        "fetch failed: the cached policy"
    );
    assert_eq!(host.requests(), 3);
}

#[tokio::test]
async fn only_a_200_text_plain_valid_policy_counts() {
    let (sts, _dns, host) = setup().await;
    for (status, content_type, body) in [
        ("404 Not Found", "text/plain", policy_text("enforce", 60)),
        ("200 OK", "text/html", policy_text("enforce", 60)),
        ("200 OK", "text/plain", "<html>".to_owned()),
        ("302 Found", "text/plain", policy_text("enforce", 60)),
    ] {
        host.answer(status, content_type, &body);
        assert_eq!(mode(&sts).await, None, "{status} {content_type} {body:?}");
    }
    assert_eq!(host.requests(), 4, "each refused answer is asked again");
    let expired = policy_text("enforce", 0);
    host.answer("200 OK", "text/plain", &expired);
    assert_eq!(mode(&sts).await, Some(StsMode::Enforce));
    assert_eq!(mode(&sts).await, Some(StsMode::Enforce));
    assert_eq!(host.requests(), 6, "max_age 0 is never cached");
}
