//! `[mx] source_addresses` against an SMTP server nobody here wrote (`scripts/source-sink.py`,
//! on Python's aiosmtpd, whose handler sees `session.peer` and `session.host_name`): `volley
//! send` straight to the MX hosts of two domains (loopback DNS) leaves from 127.0.0.2 and
//! 127.0.0.3, each address with its own EHLO name, each domain pinned to one address, and
//! says how many messages left from each. A source
//! address that is not on this host fails `volley check` and `volley send`, naming it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use crate::support::{output_of, text};
use volley_testkit::campaign::{copy_dkim_keys, CampaignToml, Mx, QUICK_RETRY};
use volley_testkit::nameserver::{NameServer, Zone};
use volley_testkit::script_server::ScriptServer;

const LIMIT: Duration = Duration::from_secs(120);

/// The aiosmtpd MX host (`scripts/source-sink.py`).
fn source_sink(dir: &Path) -> ScriptServer {
    ScriptServer::start("source-sink.py", &dir.join("mx.log"), &[], false)
}

/// The (peer address, EHLO name) pairs each recipient domain's messages came with, and how
/// many recipients were accepted.
fn seen(mx: &ScriptServer) -> (BTreeMap<String, BTreeSet<(String, String)>>, usize) {
    let mut seen: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    let mut accepted = 0;
    for (event, rest) in mx.log() {
        let fields: Vec<&str> = rest.split(' ').collect();
        let ("accepted", [peer, helo, rcpt]) = (event.as_str(), &fields[..]) else {
            panic!("unexpected log line {event} {rest}");
        };
        let domain = rcpt.rsplit_once('@').unwrap().1.to_owned();
        seen.entry(domain)
            .or_default()
            .insert(((*peer).to_owned(), (*helo).to_owned()));
        accepted += 1;
    }
    (seen, accepted)
}

/// `alpha.example` and `gamma.example`, each with an MX host of its own name at 127.0.0.1:
/// two destinations, which the stable hash pins to the first and the second source.
async fn dns() -> NameServer {
    let mut zone = Zone::new();
    for name in ["alpha", "gamma"] {
        let mx = format!("mx.{name}.test");
        zone.a(&mx, Ipv4Addr::LOCALHOST);
        zone.mx(&format!("{name}.example"), 10, &mx);
    }
    NameServer::start(zone).await.unwrap()
}

/// A campaign of 10 recipients per domain, straight to MX on `port` from `sources`.
fn write_campaign(dir: &Path, port: u16, dns: &NameServer, sources: &str) -> String {
    copy_dkim_keys(dir);
    std::fs::write(dir.join("body.txt"), "Hello {{ name }}!\n").unwrap();
    let mut csv = String::from("email,name\n");
    for i in 0..20 {
        let domain = if i % 2 == 0 { "alpha" } else { "gamma" };
        csv.push_str(&format!("user{i}@{domain}.example,Name{i}\n"));
    }
    std::fs::write(dir.join("list.csv"), csv).unwrap();
    CampaignToml::new("sources")
        .mx(Mx::on_port(port).line(sources))
        .dns(dns.addr())
        .dkim("rsa", "rsa.pem")
        .retry(QUICK_RETRY)
        .section("[shaping.default]\nmax_messages_per_connection = 2\n")
        .write(&dir.join("campaign.toml"))
        .display()
        .to_string()
}

const PINNED: &str = r#"source_addresses = [
  { address = "127.0.0.2", helo = "a.test" },
  { address = "127.0.0.3", helo = "b.test" },
]
source_pick = "pinned""#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aiosmtpd_sees_each_domain_come_from_its_own_source_address_and_ehlo_name() {
    let dir = tempfile::tempdir().unwrap();
    let mx = source_sink(dir.path());
    let dns = dns().await;
    let campaign = write_campaign(dir.path(), mx.port, &dns, PINNED);

    let args = ["send", campaign.as_str(), "--no-progress"];
    let sent = tokio::time::timeout(LIMIT, output_of(&args, &[]))
        .await
        .expect("volley send finished in time");
    assert!(
        sent.status.success(),
        "exit {:?}\n{}\n{}",
        sent.status.code(),
        text(&sent.stdout),
        text(&sent.stderr)
    );
    let shown = text(&sent.stdout);
    assert!(
        shown.contains("  delivered from: 127.0.0.2 (a.test) 10, 127.0.0.3 (b.test) 10"),
        "{shown}"
    );
    let (seen, accepted) = seen(&mx);
    assert_eq!(accepted, 20, "{seen:?}");
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

    let status = output_of(&["status", &campaign, "--json"], &[]).await;
    assert!(status.status.success(), "{}", text(&status.stderr));
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(json["delivered"], 20, "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_address_not_on_this_host_fails_check_and_send_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let mx = source_sink(dir.path());
    let dns = dns().await;
    let sources = "source_addresses = [\"127.0.0.2\", \"192.0.2.10\"]";
    let campaign = write_campaign(dir.path(), mx.port, &dns, sources);

    let checked = output_of(&["check", &campaign], &[]).await;
    let table = text(&checked.stdout);
    assert_eq!(checked.status.code(), Some(1), "{table}");
    let row = |name: &str| {
        table
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("no {name} row in\n{table}"))
            .to_owned()
    };
    let good = row("source address 127.0.0.2");
    assert!(good.starts_with("PASS"), "{good}");
    let bad = row("source address 192.0.2.10");
    assert!(bad.starts_with("FAIL"), "{bad}");
    assert!(
        bad.contains("[mx] source_addresses[1]") && bad.contains("must be an address of this host"),
        "{bad}"
    );

    let args = ["send", campaign.as_str(), "--no-progress"];
    let sent = tokio::time::timeout(LIMIT, output_of(&args, &[]))
        .await
        .expect("volley send finished in time");
    let stderr = text(&sent.stderr);
    assert_eq!(sent.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("source address 192.0.2.10 ([mx] source_addresses[1]) cannot be used"),
        "{stderr}"
    );
    assert_eq!(seen(&mx).1, 0, "nothing was sent");
}
