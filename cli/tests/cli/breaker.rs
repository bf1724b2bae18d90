//! `volley send` straight to MX hosts nobody here wrote (`scripts/blocking-mx.py`, on
//! Python's aiosmtpd) that start answering Gmail's multi-line `550-5.7.1 … likely unsolicited
//! mail` to one domain's recipients after a few messages: the breaker on that destination
//! trips, the other domain is delivered in full, nobody is bounced or suppressed, and `volley
//! send` and `volley status` name the block and its reply.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use crate::support::{output_of, text};
use volley_testkit::campaign::{copy_dkim_keys, CampaignToml, Mx, QUICK_RETRY};
use volley_testkit::nameserver::{NameServer, Zone};
use volley_testkit::script_server::ScriptServer;

const PER_DOMAIN: usize = 20;

/// The MX hosts (`scripts/blocking-mx.py`, one process on 127.0.0.20 and .21), blocking
/// `d0.example` after six messages.
fn blocking_mx(dir: &Path) -> ScriptServer {
    let args = [
        "--listen",
        "127.0.0.20,127.0.0.21",
        "--block-domain",
        "d0.example",
        "--block-after",
        "6",
    ];
    ScriptServer::start("blocking-mx.py", &dir.join("mx.log"), &args, false)
}

/// The log lines by event (`accepted`, `blocked`), each with its recipient.
fn events(mx: &ScriptServer) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for (event, rest) in mx.log() {
        out.entry(event).or_default().push(rest);
    }
    out
}

async fn name_server() -> NameServer {
    let mut zone = Zone::new();
    zone.a("mx0.blocking.test", Ipv4Addr::new(127, 0, 0, 20));
    zone.a("mx1.blocking.test", Ipv4Addr::new(127, 0, 0, 21));
    zone.mx("d0.example", 10, "mx0.blocking.test");
    zone.mx("d1.example", 10, "mx1.blocking.test");
    tokio::time::timeout(Duration::from_secs(10), NameServer::start(zone))
        .await
        .unwrap()
        .unwrap()
}

fn write_campaign(dir: &Path, port: u16, dns: &NameServer) -> String {
    copy_dkim_keys(dir);
    std::fs::write(dir.join("body.txt"), "Hello {{ name }}!\n").unwrap();
    let mut csv = String::from("email,name\n");
    for i in 0..PER_DOMAIN * 2 {
        csv.push_str(&format!("user{i}@d{}.example,Name{i}\n", i % 2));
    }
    std::fs::write(dir.join("list.csv"), csv).unwrap();
    CampaignToml::new("blocked")
        .mx(Mx::on_port(port))
        .dns(dns.addr())
        .dkim("rsa", "rsa.pem")
        .retry(QUICK_RETRY)
        .section("[shaping.default]\nblock_threshold = 3\nblock_pause = \"1h\"\n")
        .write(&dir.join("campaign.toml"))
        .display()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mx_that_starts_blocking_one_domain_is_paused_and_nobody_is_bounced() {
    let dir = tempfile::tempdir().unwrap();
    let mx = blocking_mx(dir.path());
    let dns = name_server().await;
    let campaign = write_campaign(dir.path(), mx.port, &dns);

    let args = ["send", campaign.as_str(), "--no-progress"];
    let sent = tokio::time::timeout(Duration::from_secs(120), output_of(&args, &[]))
        .await
        .expect("volley send finished within two minutes");
    let stdout = text(&sent.stdout);
    let stderr = text(&sent.stderr);
    // Recipients are left deferred: exit 1, as for any send that did not finish everyone.
    assert_eq!(sent.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("destination mx0.blocking.test is suspended until")
            && stdout.contains("by a policy block")
            && stdout.contains("likely unsolicited mail")
            && stdout.contains("deferred, not bounced"),
        "{stdout}"
    );
    assert!(stdout.contains("bounced 0"), "{stdout}");

    // What the receiver counted: every d1 recipient once, no d0 recipient after the block
    // but the few refused before the breaker tripped.
    let events = events(&mx);
    let accepted = &events["accepted"];
    let d1 = accepted
        .iter()
        .filter(|r| r.ends_with("@d1.example"))
        .count();
    assert_eq!(d1, PER_DOMAIN, "{accepted:?}");
    let blocked = &events["blocked"];
    assert!(
        (3..PER_DOMAIN).contains(&blocked.len()),
        "{} refusals: {blocked:?}",
        blocked.len()
    );

    let status = output_of(&["status", campaign.as_str()], &[]).await;
    let shown = text(&status.stdout);
    assert!(
        shown.contains("policy block (spam) at mx0.blocking.test: suspended until")
            && shown.contains("550 5.7.1")
            && shown.contains("likely unsolicited mail"),
        "{shown}"
    );
    let json = output_of(&["status", campaign.as_str(), "--json"], &[]).await;
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["bounced"], 0, "{json}");
    assert_eq!(json["suppressed"], 0, "{json}");
    assert_eq!(json["pending"], 0, "{json}");
    assert_eq!(
        json["blocks"][0]["destination"], "mx0.blocking.test",
        "{json}"
    );
    assert_eq!(json["blocks"][0]["category"], "spam", "{json}");
    assert_eq!(json["blocks"][0]["trips"], 1, "{json}");
}
