//! `volley demo`: a whole campaign end to end on loopback, with nothing to set up. It starts
//! the engine's own SMTP server (STARTTLS with a generated certificate, AUTH), writes a
//! campaign with a fresh DKIM key and a generated list, sends it with the same code path as
//! `volley send`, and shows the result.

use crate::args::DemoArgs;
use crate::words::numbers::{agree, counted};
use crate::{exit, ui};
use anyhow::Context;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use volley::runtime::{self, Campaign, SendOptions};
use volley_testkit::nameserver::{NameServer, Zone};
use volley_testkit::sink::{Sink, SinkConfig, SinkTls};

const USER: &str = "demo";
const PASSWORD: &str = "demo-relay-password";

pub(crate) async fn run(args: DemoArgs) -> anyhow::Result<u8> {
    let temp;
    let dir = match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            dir.clone()
        }
        None => {
            temp = tempfile::tempdir().context("creating a temporary folder")?;
            temp.path().to_owned()
        }
    };
    let sink = Sink::start(SinkConfig {
        tls: SinkTls::StartTls,
        auth: (!args.direct).then(|| (USER.into(), PASSWORD.into())),
        keep_bodies: false,
        ..SinkConfig::default()
    })
    .await
    .context("starting the loopback SMTP server")?;
    let dns = if args.direct {
        let server = NameServer::start(demo_zone(args.domains))
            .await
            .context("starting the loopback DNS server")?;
        ui::line(&format!(
            "demo MX hosts mx0..mx{}.demo.test on {} (STARTTLS), their DNS on {}",
            DIRECT_MX_HOSTS - 1,
            sink.addr(),
            server.addr()
        ));
        Some(server)
    } else {
        ui::line(&format!(
            "demo SMTP server on {} (STARTTLS, AUTH)",
            sink.addr()
        ));
        None
    };
    let key_pem = volley::dkim::generate_rsa_2048_pem().context("generating a DKIM key")?;
    write_files(&dir, &args, &sink, dns.as_ref(), &key_pem)?;
    ui::line(&format!(
        "demo campaign in {}: {} over {}, RSA-2048 DKIM, {}",
        dir.display(),
        counted(args.recipients as u64, "recipient", "recipients"),
        counted(args.domains as u64, "domain", "domains"),
        if args.direct {
            "direct to MX"
        } else {
            "through the relay"
        }
    ));

    let campaign_file = dir.join("campaign.toml");
    let settings =
        volley::config::load_campaign(&campaign_file, None).context("loading the demo campaign")?;
    let campaign = Campaign::prepare(settings).context("preparing the demo campaign")?;
    let sample = verify_sample(&campaign, &key_pem).await?;
    ui::line(&sample);

    let started = Instant::now();
    let (progress_tx, _progress_rx) = tokio::sync::watch::channel(runtime::Progress {
        phase: runtime::Phase::Loading,
        counts: Default::default(),
    });
    let report = runtime::send(
        &campaign,
        SendOptions {
            progress: Some(Arc::new(progress_tx)),
            ..SendOptions::default()
        },
    )
    .await
    .context("sending the demo campaign")?;
    let elapsed = started.elapsed().as_secs_f64();
    let stats = sink.stats();
    let status = runtime::status(campaign.settings()).await?;
    let c = &status.counts;
    ui::line(&format!(
        "status: total {}  delivered {}  bounced {}  deferred {}  expired {}  pending {}  invalid rows {}  duplicates {}",
        c.total, c.delivered, c.bounced, c.deferred, c.expired, c.pending, c.invalid, c.duplicate
    ));
    ui::line(&format!(
        "the server received {} over {} ({} with TLS)",
        counted(stats.messages as u64, "message", "messages"),
        counted(stats.connections_total as u64, "connection", "connections"),
        stats.tls_sessions
    ));
    use crate::words::numbers;
    ui::line(&format!(
        "throughput: {} in {} of sending = {} messages/s ({} in all, with loading and {} waiting for retries)",
        counted(report.attempts, "attempt", "attempts"),
        numbers::format_seconds((report.elapsed - report.idle).as_secs_f64(), 2),
        numbers::format_whole_rate(report.messages_per_second()),
        numbers::format_seconds(elapsed, 2),
        numbers::format_seconds(report.idle.as_secs_f64(), 1)
    ));
    let consistent = stats.messages as u64 == c.delivered && c.pending == 0 && c.deferred == 0;
    if consistent {
        ui::line("demo OK: every accepted recipient reached a final state; deliveries match what the server received");
        Ok(exit::OK)
    } else {
        ui::error_line("demo mismatch: the counts above do not add up");
        Ok(exit::FAILURES)
    }
}

/// Signs one message and checks its signature against the key's DNS record; an error (exit
/// code 2, nothing sent) when the sample does not verify.
async fn verify_sample(campaign: &Campaign, key_pem: &str) -> anyhow::Result<String> {
    let key = volley::dkim::DkimKey::from_pem("demo.example", "demo", key_pem, "the demo key")?;
    let record = key.dns_record()?;
    let sample = runtime::render_row(campaign, 1, None)?;
    let results = volley::dkim::verify(
        &sample.bytes,
        &[("demo._domainkey.demo.example".to_owned(), record)],
    )
    .await;
    sample_verdict(&results).map_err(|reason| anyhow::anyhow!(reason))
}

/// The demo's verdict on its sample: it verifies when it carries at least one signature and
/// every signature passes; otherwise the reason, per signature.
fn sample_verdict(results: &[volley::dkim::VerifyResult]) -> Result<String, String> {
    if results.is_empty() {
        return Err("DKIM: the sample message does not verify: it carries no signature".into());
    }
    let failed: Vec<String> = results
        .iter()
        .filter(|r| !r.pass)
        .map(|r| {
            let who = if r.domain.is_empty() {
                "signature".to_owned()
            } else {
                format!("{}._domainkey.{}", r.selector, r.domain)
            };
            format!("{who}: {}", r.detail)
        })
        .collect();
    if failed.is_empty() {
        Ok(format!(
            "DKIM: a sample message verifies ({} of {} {})",
            results.len(),
            counted(results.len() as u64, "signature", "signatures"),
            agree(results.len() as u64, "passes", "pass")
        ))
    } else {
        Err(format!(
            "DKIM: the sample message does not verify ({} of {} {}): {}",
            failed.len(),
            counted(results.len() as u64, "signature", "signatures"),
            agree(failed.len() as u64, "fails", "fail"),
            failed.join("; ")
        ))
    }
}

/// MX host names the direct demo spreads its domains over.
const DIRECT_MX_HOSTS: usize = 10;

/// The direct demo's DNS: `d<i>.example` on `mx<i % 10>.demo.test` (all 127.0.0.1), a
/// domain with a null MX, and nothing for `gone.example`.
fn demo_zone(domains: usize) -> Zone {
    let mut zone = Zone::new();
    for host in 0..DIRECT_MX_HOSTS {
        zone.a(&format!("mx{host}.demo.test"), Ipv4Addr::LOCALHOST);
    }
    for d in 0..domains.max(1) {
        zone.mx(
            &format!("d{d}.example"),
            10,
            &format!("mx{}.demo.test", d % DIRECT_MX_HOSTS),
        );
    }
    zone.null_mx("nullmx.example");
    zone
}

/// Writes a secret file readable by its owner only (on Unix), as `volley send` expects of key
/// and password files; an existing file is replaced and made private before it is written.
fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("making {} private", path.display()))?;
    }
    file.write_all(contents)
        .with_context(|| format!("writing {}", path.display()))
}

fn write_files(
    dir: &Path,
    args: &DemoArgs,
    sink: &Sink,
    dns: Option<&NameServer>,
    key_pem: &str,
) -> anyhow::Result<()> {
    let write = |name: &str, contents: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))
    };
    write_private(&dir.join("dkim-demo.pem"), key_pem.as_bytes())?;
    write_private(&dir.join("relay-password.txt"), PASSWORD.as_bytes())?;
    write("relay-ca.pem", sink.ca_pem().unwrap_or_default().as_bytes())?;
    let delivery = match dns {
        Some(dns) => direct_toml(sink.addr().port(), dns.addr()),
        None => relay_toml(sink.addr().port()),
    };
    write("campaign.toml", campaign_toml(&delivery).as_bytes())?;
    write("demo.txt", text_template(args.body_bytes).as_bytes())?;
    write("demo.html", html_template(args.body_bytes).as_bytes())?;
    let mut csv = recipients_csv(args.recipients, args.domains);
    if dns.is_some() {
        csv.push_str(
            "someone@nullmx.example,Nobody,Nowhere
someone@gone.example,Nobody,Nowhere
",
        );
    }
    write("recipients.csv", csv.as_bytes())?;
    Ok(())
}

fn relay_toml(port: u16) -> String {
    format!(
        r#"[relay]
host = "127.0.0.1"
port = {port}
tls = "starttls"
username = "{USER}"
password_file = "relay-password.txt"
ca_file = "relay-ca.pem"
connections = 8
"#
    )
}

fn direct_toml(port: u16, dns: std::net::SocketAddr) -> String {
    format!(
        r#"[mx]
port = {port}

[dns]
nameservers = ["{dns}"]

[shaping.default]
max_connections = 4
"#
    )
}

fn campaign_toml(delivery: &str) -> String {
    format!(
        r#"# Written by `volley demo`.
[campaign]
id = "demo"
from = "Volley Demo <news@demo.example>"
subject = "{{{{ first_name }}}}, this week in {{{{ city }}}}"
text = "demo.txt"
html = "demo.html"
recipients = "recipients.csv"

{delivery}
[[dkim]]
domain = "demo.example"
selector = "demo"
key_file = "dkim-demo.pem"

[retry]
schedule = ["1s"]
expire_after = "1h"
"#
    )
}

const PARAGRAPH: &str = "Volley delivers every message personalised, signed and on time. \
This paragraph stands in for the week's stories, offers and links that a real newsletter carries. ";

fn filler(bytes: usize) -> String {
    PARAGRAPH.repeat(bytes / PARAGRAPH.len() / 2 + 1)
}

fn text_template(bytes: usize) -> String {
    format!("Hello {{{{ first_name }}}},\n\nHere is what is new in {{{{ city }}}}.\n\n{}\n\n-- \nThe Volley demo\n", filler(bytes))
}

fn html_template(bytes: usize) -> String {
    format!(
        "<html><body><h1>Hello {{{{ first_name }}}}</h1><p>Here is what is new in {{{{ city }}}}.</p><p>{}</p>\
<p><a href=\"https://demo.example/offers?city={{{{ city }}}}\">See the offers</a></p></body></html>\n",
        filler(bytes)
    )
}

/// A list with a few rows that show validation (invalid, duplicate) and scripted replies
/// (`bounce-…` is refused with 550 5.1.1, `defer-…` gets 451 4.7.1 once and is retried).
fn recipients_csv(recipients: usize, domains: usize) -> String {
    const NAMES: [&str; 8] = [
        "Ada", "Grace", "Linus", "Barbara", "Dennis", "Radia", "Ken", "Frances",
    ];
    const CITIES: [&str; 6] = ["Lyon", "Porto", "Oslo", "Kyoto", "Quito", "Accra"];
    let mut csv = String::from("email,first_name,city\n");
    for i in 0..recipients {
        let local = match i {
            i if i % 200 == 199 => format!("bounce-{i}"),
            i if i % 250 == 249 => format!("defer-{i}"),
            i => format!("user{i}"),
        };
        let _ = writeln!(
            csv,
            "{local}@d{}.example,{},{}",
            i % domains.max(1),
            NAMES[i % 8],
            CITIES[i % 6]
        );
    }
    csv.push_str("not-an-address,Nobody,Nowhere\nuser0@D0.EXAMPLE,Ada,Lyon\n");
    csv
}

#[cfg(test)]
mod tests {
    use super::*;
    use volley::dkim::{DkimKey, Signer};

    const MESSAGE: &str = "From: news@demo.example\r\nTo: a@b.example\r\n\
Subject: sample\r\nDate: Fri, 4 Dec 2026 10:00:00 +0000\r\n\
Message-ID: <s1@demo.example>\r\n\r\nHello Ada,\r\nthis week in Lyon.\r\n";

    async fn verify(message: &str, key: &DkimKey) -> Vec<volley::dkim::VerifyResult> {
        let record = key.dns_record().unwrap();
        volley::dkim::verify(
            message.as_bytes(),
            &[("demo._domainkey.demo.example".to_owned(), record)],
        )
        .await
    }

    fn key(pem: &str) -> DkimKey {
        DkimKey::from_pem("demo.example", "demo", pem, "test key").unwrap()
    }

    fn signed(pem: &str) -> String {
        let header = Signer::new(vec![key(pem)])
            .sign(MESSAGE.as_bytes())
            .unwrap();
        format!("{header}{MESSAGE}")
    }

    fn new_pem() -> String {
        volley::dkim::generate_ed25519_pem().unwrap()
    }

    #[tokio::test]
    async fn a_signed_sample_verifies() {
        let pem = new_pem();
        let verdict = sample_verdict(&verify(&signed(&pem), &key(&pem)).await).unwrap();
        assert_eq!(
            verdict,
            "DKIM: a sample message verifies (1 of 1 signature passes)"
        );
    }

    #[tokio::test]
    async fn a_tampered_sample_does_not_verify_and_says_why() {
        let pem = new_pem();
        let message = signed(&pem).replace("Lyon", "Oslo");
        let reason = sample_verdict(&verify(&message, &key(&pem)).await).unwrap_err();
        assert!(
            reason.starts_with("DKIM: the sample message does not verify (1 of 1 signature fails): demo._domainkey.demo.example: "),
            "{reason}"
        );
    }

    #[tokio::test]
    async fn a_sample_signed_with_another_key_does_not_verify() {
        let message = signed(&new_pem());
        let reason = sample_verdict(&verify(&message, &key(&new_pem())).await).unwrap_err();
        assert!(reason.contains("does not verify"), "{reason}");
    }

    #[test]
    fn an_unsigned_sample_does_not_verify() {
        let reason = sample_verdict(&[]).unwrap_err();
        assert_eq!(
            reason,
            "DKIM: the sample message does not verify: it carries no signature"
        );
    }
}
