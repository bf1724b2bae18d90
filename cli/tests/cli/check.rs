//! `volley init` then `volley check`, against the engine's DNS server on loopback serving the
//! records `init` printed: a campaign set up as told passes; a missing or wrong DKIM record,
//! `p=none`, a campaign without `[tracking]`, a malformed SPF record and a DMARC policy found
//! at the organizational domain show up as rows of the table.

use crate::support::{run_with, text};
use std::path::Path;
use std::process::Output;
use std::time::Duration;
use volley_testkit::nameserver::{NameServer, Zone};

const TRACKING_KEY: &str = "check-test-tracking-key-0123";

/// Runs `volley ARGS…` with the tracking key set, killing it if it takes too long.
fn run_volley(args: &[&str]) -> Output {
    run_with(args, &[("VOLLEY_TRACKING_KEY", TRACKING_KEY)])
}

/// A folder made by `volley init`, and the TXT records it said to publish (zone lines).
struct Initialised {
    dir: tempfile::TempDir,
    records: Vec<String>,
}

impl Initialised {
    fn new(extra: &[&str]) -> Initialised {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().display().to_string();
        let mut args = vec!["init", path.as_str()];
        args.extend(extra);
        let output = run_volley(&args);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
        let records = text(&output.stdout)
            .lines()
            .filter(|line| line.contains(" TXT \""))
            .map(str::to_owned)
            .collect();
        Initialised { dir, records }
    }

    fn campaign(&self) -> String {
        self.dir.path().join("campaign.toml").display().to_string()
    }

    /// The printed records, each kept when `keep` says so, plus an A record for the domain.
    fn zone(&self, keep: impl Fn(&str) -> bool) -> Zone {
        let mut lines: Vec<&str> = self.records.iter().map(String::as_str).collect();
        lines.retain(|line| keep(line));
        let text = format!("{}\nexample.com A 127.0.0.1\n", lines.join("\n"));
        Zone::parse(&text).unwrap()
    }

    /// Points the campaign's `[dns]` at `server`.
    fn use_dns(&self, server: &NameServer) {
        let path = self.campaign();
        let mut toml = std::fs::read_to_string(&path).unwrap();
        toml.push_str(&format!(
            "\n[dns]\nnameservers = [\"{}\"]\ntimeout = \"2s\"\nattempts = 1\n",
            server.addr()
        ));
        std::fs::write(&path, toml).unwrap();
    }

    /// Runs `volley check` (off the async workers, which serve the DNS meanwhile).
    async fn check(&self, extra: &[&str]) -> (Option<i32>, String) {
        let mut args = vec!["check".to_owned(), self.campaign()];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let output = tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run_volley(&args)
        })
        .await
        .unwrap();
        (output.status.code(), text(&output.stdout))
    }
}

/// The table line of the row named `name`.
fn row<'a>(table: &'a str, name: &str) -> &'a str {
    table
        .lines()
        .find(|line| line.get(6..).is_some_and(|rest| rest.starts_with(name)))
        .unwrap_or_else(|| panic!("no row {name:?} in:\n{table}"))
}

async fn start_dns(zone: Zone) -> NameServer {
    tokio::time::timeout(Duration::from_secs(10), NameServer::start(zone))
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_passes_once_the_records_init_printed_are_published() {
    for (flags, records) in [(&[][..], 3), (&["--ed25519"][..], 4)] {
        let init = Initialised::new(flags);
        assert_eq!(init.records.len(), records, "{:?}", init.records);
        let dns = start_dns(init.zone(|_| true)).await;
        init.use_dns(&dns);

        let (code, table) = init.check(&["--sending-ip", "127.0.0.1"]).await;
        assert_eq!(code, Some(0), "{table}");
        assert!(
            !table.contains("FAIL") && !table.contains("WARN"),
            "{table}"
        );
        for name in [
            "campaign file",
            "first message",
            "secret files",
            "dkim algorithms",
            "dkim volley._domainkey.example.com",
            "spf example.com",
            "dmarc example.com",
            "dmarc alignment",
            "one-click unsubscribe",
            "relay auth",
        ] {
            assert!(row(&table, name).starts_with("PASS"), "{name}:\n{table}");
        }
        let passed = records + 7;
        assert!(
            table.contains(&format!("{passed} passed, 0 warnings, 0 failed")),
            "{table}"
        );

        // Direct to MX without --sending-ip: SPF coverage is only a warning.
        let (code, table) = init.check(&[]).await;
        assert_eq!(code, Some(0), "{table}");
        let spf = row(&table, "spf example.com");
        assert!(
            spf.starts_with("WARN") && spf.contains("--sending-ip"),
            "{table}"
        );
        dns.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_dkim_record_fails_and_says_what_to_publish() {
    let init = Initialised::new(&[]);
    let dns = start_dns(init.zone(|line| !line.contains("_domainkey"))).await;
    init.use_dns(&dns);
    let (code, table) = init.check(&["--sending-ip", "127.0.0.1"]).await;
    assert_eq!(code, Some(1), "{table}");
    let dkim = row(&table, "dkim volley._domainkey.example.com");
    assert!(dkim.starts_with("FAIL"), "{table}");
    assert!(dkim.contains("no DKIM record: publish"), "{table}");
    let printed = init
        .records
        .iter()
        .find(|r| r.contains("_domainkey"))
        .unwrap();
    assert!(
        dkim.contains(printed.as_str()),
        "{dkim}\nshould name {printed}"
    );
    assert!(table.contains("1 failed"), "{table}");
    dns.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_of_another_key_fails() {
    let init = Initialised::new(&[]);
    let other = Initialised::new(&[]);
    let foreign = other
        .records
        .iter()
        .find(|r| r.contains("_domainkey"))
        .unwrap();
    let zone = Zone::parse(&format!(
        "{foreign}\nexample.com TXT \"v=spf1 a -all\"\n_dmarc.example.com TXT \"v=DMARC1; p=reject\"\nexample.com A 127.0.0.1\n"
    ))
    .unwrap();
    let dns = start_dns(zone).await;
    init.use_dns(&dns);
    let (code, table) = init.check(&["--sending-ip", "127.0.0.1"]).await;
    assert_eq!(code, Some(1), "{table}");
    let dkim = row(&table, "dkim volley._domainkey.example.com");
    assert!(
        dkim.starts_with("FAIL") && dkim.contains("does not match the private key"),
        "{table}"
    );
    dns.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dmarc_p_none_is_a_warning_not_a_failure() {
    let init = Initialised::new(&[]);
    let mut text: Vec<String> = init
        .records
        .iter()
        .filter(|r| !r.starts_with("_dmarc"))
        .cloned()
        .collect();
    text.push("_dmarc.example.com TXT \"v=DMARC1; p=none\"".into());
    text.push("example.com A 127.0.0.1".into());
    let dns = start_dns(Zone::parse(&text.join("\n")).unwrap()).await;
    init.use_dns(&dns);
    let (code, table) = init.check(&["--sending-ip", "127.0.0.1"]).await;
    assert_eq!(code, Some(0), "{table}");
    let dmarc = row(&table, "dmarc example.com");
    assert!(
        dmarc.starts_with("WARN") && dmarc.contains("p=none"),
        "{table}"
    );
    dns.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_without_tracking_fails_the_unsubscribe_row() {
    let init = Initialised::new(&[]);
    let dns = start_dns(init.zone(|_| true)).await;
    let path = init.campaign();
    let toml = std::fs::read_to_string(&path).unwrap();
    let (head, rest) = toml.split_once("[tracking]").unwrap();
    let (_, tail) = rest.split_once("[bounces]").unwrap();
    std::fs::write(&path, format!("{head}[bounces]{tail}")).unwrap();
    for name in ["newsletter.txt", "newsletter.html"] {
        let template = Path::new(init.dir.path()).join("templates").join(name);
        let body = std::fs::read_to_string(&template).unwrap();
        std::fs::write(
            &template,
            body.replace("{{ unsubscribe_url }}", "https://www.example.com/u"),
        )
        .unwrap();
    }
    init.use_dns(&dns);
    let (code, table) = init.check(&["--sending-ip", "127.0.0.1", "--json"]).await;
    assert_eq!(code, Some(1), "{table}");
    let json: serde_json::Value = serde_json::from_str(&table).unwrap();
    assert_eq!(json["ok"], false);
    let (code, table) = init.check(&["--sending-ip", "127.0.0.1"]).await;
    assert_eq!(code, Some(1), "{table}");
    let unsubscribe = row(&table, "one-click unsubscribe");
    assert!(
        unsubscribe.starts_with("FAIL") && unsubscribe.contains("List-Unsubscribe"),
        "{table}"
    );
    assert!(row(&table, "first message").starts_with("PASS"), "{table}");
    dns.shutdown().await;
}

#[test]
fn init_refuses_to_overwrite_and_keeps_the_key_private() {
    let init = Initialised::new(&["--domain", "acme.example", "--selector", "s1"]);
    let key = init.dir.path().join("dkim/s1.pem");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(init.records[0].starts_with("s1._domainkey.acme.example TXT \"v=DKIM1; k=rsa; p="));
    let before = std::fs::read(&key).unwrap();
    let path = init.dir.path().display().to_string();
    let output = run_volley(&[
        "init",
        &path,
        "--domain",
        "acme.example",
        "--selector",
        "s1",
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("campaign.toml already exists"), "{stderr}");
    assert_eq!(
        std::fs::read(&key).unwrap(),
        before,
        "the key was not touched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_login_without_tls_fails_and_warns_on_loopback() {
    let init = Initialised::new(&[]);
    let dns = start_dns(init.zone(|_| true)).await;
    init.use_dns(&dns);
    std::fs::write(init.dir.path().join("pw.txt"), "relay-secret\n").unwrap();
    let original = std::fs::read_to_string(init.campaign()).unwrap();
    let relay = |host: &str| {
        let section = format!(
            "\n[relay]\nhost = \"{host}\"\nport = 25\ntls = \"none\"\nusername = \"u\"\n\
             password_file = \"pw.txt\"\n"
        );
        std::fs::write(init.campaign(), format!("{original}{section}")).unwrap();
    };

    relay("smtp.example.com");
    let (code, table) = init.check(&["--sending-ip", "127.0.0.1"]).await;
    assert_eq!(code, Some(1), "{table}");
    let auth = row(&table, "relay auth");
    assert!(auth.starts_with("FAIL"), "{table}");
    assert!(
        auth.contains("in clear text; set relay.tls = \"starttls\""),
        "{table}"
    );
    let file = row(&table, "campaign file");
    assert!(
        file.starts_with("FAIL") && file.contains("relay.username is set"),
        "{table}"
    );
    assert!(!table.contains("relay-secret"), "{table}");

    relay("127.0.0.1");
    let (_, table) = init.check(&["--sending-ip", "127.0.0.1"]).await;
    assert!(row(&table, "relay auth").starts_with("WARN"), "{table}");
    assert!(row(&table, "campaign file").starts_with("PASS"), "{table}");
    dns.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_signs_with_rsa_first_and_a_campaign_with_only_ed25519_fails_check() {
    let init = Initialised::new(&["--ed25519"]);
    let toml = std::fs::read_to_string(init.campaign()).unwrap();
    let rsa = toml.find("selector = \"volley\"").unwrap();
    let ed = toml.find("selector = \"volley-ed\"").unwrap();
    assert!(rsa < ed, "RSA is the first [[dkim]] entry:\n{toml}");
    assert!(init.records[0].contains("k=rsa"), "{:?}", init.records);
    assert!(init.records[1].contains("k=ed25519"), "{:?}", init.records);

    // Drop the RSA entry: the campaign is now signed with Ed25519 only.
    let start = toml.find("\n[[dkim]]").unwrap() + 1;
    let end = start + toml[start..].find("\n\n").unwrap() + 2;
    std::fs::write(
        init.campaign(),
        format!("{}{}", &toml[..start], &toml[end..]),
    )
    .unwrap();
    let dns = start_dns(init.zone(|_| true)).await;
    init.use_dns(&dns);
    let (code, table) = init.check(&["--sending-ip", "127.0.0.1"]).await;
    assert_eq!(code, Some(1), "{table}");
    let row = row(&table, "dkim algorithms");
    assert!(row.starts_with("FAIL"), "{table}");
    assert!(row.contains("do not verify Ed25519"), "{table}");
    dns.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subdomain_falls_back_to_its_organizational_dmarc_and_a_malformed_spf_fails() {
    let init = Initialised::new(&["--domain", "news.shop.co.uk"]);
    let mut text: Vec<String> = init
        .records
        .iter()
        .filter(|r| r.contains("_domainkey"))
        .cloned()
        .collect();
    // The Public Suffix List makes shop.co.uk the organizational domain, not co.uk.
    text.push("_dmarc.shop.co.uk TXT \"v=DMARC1; p=reject\"".into());
    text.push("_dmarc.co.uk TXT \"v=DMARC1; p=none\"".into());
    // mail-auth rejects an address of three octets.
    text.push("news.shop.co.uk TXT \"v=spf1 ip4:127.0.0 -all\"".into());
    let dns = start_dns(Zone::parse(&text.join("\n")).unwrap()).await;
    init.use_dns(&dns);
    let (code, table) = init.check(&["--sending-ip", "127.0.0.1"]).await;
    assert_eq!(code, Some(1), "{table}");
    let dmarc = row(&table, "dmarc news.shop.co.uk");
    assert!(
        dmarc.starts_with("PASS") && dmarc.contains("_dmarc.shop.co.uk has p=reject"),
        "{table}"
    );
    let spf = row(&table, "spf news.shop.co.uk");
    assert!(
        spf.starts_with("FAIL") && spf.contains("bad term \"ip4:127.0.0\""),
        "{table}"
    );
    assert!(
        row(&table, "dmarc alignment").starts_with("PASS"),
        "{table}"
    );
    dns.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_html_only_campaign_is_a_warning_that_its_text_part_will_be_generated() {
    let init = Initialised::new(&[]);
    let path = init.campaign();
    let toml = std::fs::read_to_string(&path).unwrap();
    let html_only: String = toml
        .lines()
        .filter(|line| !line.starts_with("text = "))
        .map(|line| format!("{line}\n"))
        .collect();
    assert_ne!(html_only, toml, "init's campaign names a text template");
    std::fs::write(&path, html_only).unwrap();
    let dns = start_dns(init.zone(|_| true)).await;
    init.use_dns(&dns);
    let (code, table) = init.check(&["--sending-ip", "127.0.0.1"]).await;
    assert_eq!(code, Some(0), "a warning, not a failure:\n{table}");
    let text = row(&table, "text part");
    assert!(
        text.starts_with("WARN") && text.contains("text part will be generated from HTML"),
        "{table}"
    );
    assert!(table.contains("1 warning"), "{table}");
    dns.shutdown().await;
}
