//! MTA-STS (RFC 8461) on direct delivery: `_mta-sts` TXT and MX records from the loopback DNS
//! server, policies from a loopback HTTPS host whose certificate an openssl-made test CA
//! signed, and the test SMTP server as MX host (its own generated CA trusted or not).

use std::collections::HashMap;
use std::net::Ipv4Addr;

use crate::support::direct::{mx_sink, Direct};
use crate::support::logs::Logs;
use crate::support::outcomes::Outcomes;
use crate::support::policy_host::{Answer, PolicyHost};
use volley::model::RecipientState;
use volley_testkit::nameserver::Zone;
use volley_testkit::sink::SinkTls;

/// A policy file in `mode` listing `mx`.
fn policy(mode: &str, mx: &[&str]) -> Answer {
    let lines: String = mx.iter().map(|m| format!("mx: {m}\r\n")).collect();
    Answer::Policy(format!(
        "version: STSv1\r\nmode: {mode}\r\n{lines}max_age: 86400\r\n"
    ))
}

/// The MX hosts (one STARTTLS sink, `mx0.sink.test`), the policy host serving `answers` for
/// `mta-sts.<domain>` of each domain, and DNS: each domain's `_mta-sts` record and policy
/// host address, plus what `zone` adds (MX records…).
async fn start(
    answers: &[(&str, Answer)],
    zone: impl FnOnce(&mut Zone, &[(String, Ipv4Addr)]),
) -> (Direct, PolicyHost) {
    let certs = tempfile::tempdir().unwrap();
    let by_host: HashMap<String, Answer> = answers
        .iter()
        .map(|(domain, answer)| (format!("mta-sts.{domain}"), answer.clone()))
        .collect();
    let host = PolicyHost::start(certs.path(), by_host).await;
    let domains: Vec<String> = answers.iter().map(|(d, _)| (*d).to_owned()).collect();
    let direct = Direct::start(1, mx_sink(SinkTls::StartTls), |records, hosts| {
        for domain in &domains {
            records.txt(&format!("_mta-sts.{domain}"), "v=STSv1; id=20261205T1;");
            records.a(&format!("mta-sts.{domain}"), Ipv4Addr::LOCALHOST);
        }
        zone(records, hosts);
    })
    .await;
    (direct, host)
}

/// Trusts the policy host's CA, and the MX hosts' too when `mx_trusted`.
fn trust(direct: &Direct, host: &PolicyHost, mx_trusted: bool) {
    let mut pem = host.ca_pem.clone();
    if mx_trusted {
        pem.push_str(direct.sink.ca_pem().unwrap());
    }
    std::fs::write(direct.path("ca.pem"), pem).unwrap();
}

/// One `domain` whose MX is the sink and whose policy is `mode` listing `mx`, with the MX
/// certificate trusted when `mx_trusted`.
async fn one_domain(domain: &str, mode: &str, mx: &str, mx_trusted: bool) -> (Direct, PolicyHost) {
    let (direct, host) = start(&[(domain, policy(mode, &[mx]))], |z, h| {
        z.mx(domain, 10, &h[0].0);
    })
    .await;
    trust(&direct, &host, mx_trusted);
    (direct, host)
}

fn write_campaign(direct: &Direct, host: &PolicyHost, csv: &str, mx_extra: &str) {
    let extra = format!("mta_sts_port = {}\n{mx_extra}", host.port);
    direct.write_campaign(csv, &extra, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforce_defers_when_the_mx_certificate_is_not_valid_and_sends_nothing() {
    let (direct, host) = one_domain("sts.example", "enforce", "*.sink.test", false).await;
    let csv = "email,first_name,city\na@sts.example,A,X\nb@sts.example,B,Y\n";
    write_campaign(&direct, &host, csv, "");
    let report = direct.send_with_linger(std::time::Duration::ZERO).await;
    let c = &report.counts;
    assert_eq!((c.delivered, c.deferred, c.bounced), (0, 2, 0), "{c:?}");
    assert_eq!(direct.sink.count(), 0, "nothing was delivered");
    assert_eq!(
        host.requests(),
        ["mta-sts.sts.example"],
        "one fetch, then the cache"
    );
    let outcomes = Outcomes::read(&direct.path("campaign.volley"), "direct");
    for email in ["a@sts.example", "b@sts.example"] {
        assert_eq!(outcomes.state(email), RecipientState::Deferred);
        let reply = outcomes.reply(email);
        assert!(
            reply.text.contains("MTA-STS policy (enforce)"),
            "{}",
            reply.text
        );
        assert!(reply.text.contains("valid certificate"), "{}", reply.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_send_honours_enforce_as_the_send_does() {
    let (direct, host) = one_domain("sts.example", "enforce", "*.sink.test", false).await;
    write_campaign(
        &direct,
        &host,
        "email,first_name,city
a@sts.example,A,X
",
        "",
    );
    let campaign = direct.campaign();
    let sent = volley::runtime::test_send(&campaign, "a@sts.example", 1, None);
    let error = tokio::time::timeout(crate::support::LIMIT, sent)
        .await
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(error.contains("MTA-STS policy (enforce)"), "{error}");
    assert_eq!(direct.sink.count(), 0);

    trust(&direct, &host, true);
    let campaign = direct.campaign();
    let sent = volley::runtime::test_send(&campaign, "a@sts.example", 1, None);
    let report = tokio::time::timeout(crate::support::LIMIT, sent)
        .await
        .unwrap()
        .unwrap();
    assert!(report.accepted, "{:?}", report.reply);
    assert!(
        direct
            .sink
            .wait_for(1, crate::support::LIMIT)
            .await
            .unwrap()[0]
            .tls
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforce_with_a_valid_certificate_delivers_over_tls() {
    let (direct, host) = one_domain("sts.example", "enforce", "mx0.sink.test", true).await;
    let csv = "email,first_name,city\na@sts.example,A,X\nb@sts.example,B,Y\n";
    write_campaign(&direct, &host, csv, "");
    let report = direct.send().await.unwrap();
    assert_eq!(report.counts.delivered, 2, "{:?}", report.counts);
    let received = direct
        .sink
        .wait_for(2, crate::support::LIMIT)
        .await
        .unwrap();
    assert!(received.iter().all(|m| m.tls), "every message over TLS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforce_uses_only_the_mx_hosts_its_policy_lists() {
    let answers = [
        ("listed.example", policy("enforce", &["*.sink.test"])),
        (
            "unlisted.example",
            policy("enforce", &["mx.elsewhere.example"]),
        ),
    ];
    let (direct, host) = start(&answers, |z, h| {
        // The preferred MX is not in the policy; it would answer (it is the same server).
        z.a("rogue.example.org", h[0].1);
        z.mx("listed.example", 10, "rogue.example.org");
        z.mx("listed.example", 20, &h[0].0);
        z.mx("unlisted.example", 10, &h[0].0);
    })
    .await;
    trust(&direct, &host, true);
    let csv = "email,first_name,city\na@listed.example,A,X\nb@unlisted.example,B,Y\n";
    write_campaign(&direct, &host, csv, "");
    let report = direct.send_with_linger(std::time::Duration::ZERO).await;
    let c = &report.counts;
    assert_eq!((c.delivered, c.deferred), (1, 1), "{c:?}");
    assert_eq!(direct.arrivals().get("a@listed.example"), Some(&1));
    assert_eq!(
        direct.dns.queries_for("rogue.example.org", "A"),
        0,
        "the MX host outside the policy is never even looked up"
    );
    let outcomes = Outcomes::read(&direct.path("campaign.volley"), "direct");
    let reply = outcomes.reply("b@unlisted.example");
    assert_eq!(reply.enhanced.as_deref(), Some("4.7.5"));
    assert!(
        reply
            .text
            .contains("MTA-STS policy of unlisted.example (enforce) lists none of its MX hosts"),
        "{}",
        reply.text
    );
}

#[tokio::test]
async fn testing_delivers_as_usual_and_logs_what_would_fail() {
    let (logs, _guard) = Logs::capture(tracing::Level::WARN);
    let (direct, host) = one_domain("try.example", "testing", "mx.elsewhere.example", false).await;
    let csv = "email,first_name,city\na@try.example,A,X\nb@try.example,B,Y\n";
    write_campaign(&direct, &host, csv, "");
    let report = direct.send().await.unwrap();
    assert_eq!(report.counts.delivered, 2, "{:?}", report.counts);
    let text = logs.text();
    assert!(
        text.contains("MTA-STS (testing): MX host not in the domain's policy"),
        "{text}"
    );
    assert!(
        text.contains("MTA-STS (testing): the MX host failed the policy's TLS check"),
        "{text}"
    );
}

#[tokio::test]
async fn hostile_policy_hosts_are_cut_off_and_their_domains_delivered_as_without_policy() {
    let (logs, _guard) = Logs::capture(tracing::Level::WARN);
    let answers = [
        ("big.example", Answer::Oversize),
        ("slow.example", Answer::Slow),
        (
            "moved.example",
            Answer::Redirect("https://mta-sts.target.example/.well-known/mta-sts.txt".into()),
        ),
        // Where the redirect points: a policy that would defer everything.
        (
            "target.example",
            policy("enforce", &["mx.elsewhere.example"]),
        ),
    ];
    let (direct, host) = start(&answers, |z, h| {
        for domain in ["big.example", "slow.example", "moved.example"] {
            z.mx(domain, 10, &h[0].0);
        }
    })
    .await;
    trust(&direct, &host, false);
    let csv = "email,first_name,city\na@big.example,A,X\nb@slow.example,B,Y\nc@moved.example,C,Z\n";
    write_campaign(&direct, &host, csv, "mta_sts_timeout = \"2s\"\n");
    let report = direct.send().await.unwrap();
    assert_eq!(report.counts.delivered, 3, "{:?}", report.counts);
    let text = logs.text();
    for why in [
        "mta-sts.big.example sent a policy larger than 65536 bytes",
        "mta-sts.slow.example did not answer within 2s",
        "mta-sts.moved.example answered 301 Moved Permanently (redirects are not followed)",
    ] {
        assert!(text.contains(why), "{why} not in {text}");
    }
    assert!(
        !host
            .requests()
            .iter()
            .any(|h| h == "mta-sts.target.example"),
        "the redirect was not followed"
    );
}
