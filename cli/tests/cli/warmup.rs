//! Warm-up through the binary (issue 23), against a relay nobody here wrote
//! (`scripts/picky-relay.py`, on Python's aiosmtpd, which logs every recipient it accepts):
//! with a relay there are no MX hosts, so the recipient domain says the provider
//! (`gmail.com` is gmail). The first `volley send` delivers gmail's first-day ceiling and
//! everyone else, says how many wait for tomorrow's allowance and exits 1 (work is left); a
//! second run the same day sends nothing more; `volley status` (text and `--json`) shows the
//! ceiling, what was sent and what is held back.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use crate::support::{output_of, text};
use volley_testkit::campaign::{copy_dkim_keys, CampaignToml, Relay, QUICK_RETRY};
use volley_testkit::script_server::ScriptServer;

/// `volley ARGS…`, two minutes at most.
async fn volley(args: &[&str]) -> Output {
    tokio::time::timeout(Duration::from_secs(120), output_of(args, &[]))
        .await
        .expect("volley finished within two minutes")
}

fn write_campaign(dir: &Path, port: u16) -> String {
    copy_dkim_keys(dir);
    std::fs::write(dir.join("body.txt"), "Hello {{ name }}!\n").unwrap();
    let mut csv = String::from("email,name\n");
    for i in 0..25 {
        writeln!(csv, "user{i}@gmail.com,Name{i}").unwrap();
    }
    for i in 0..5 {
        writeln!(csv, "user{i}@example.org,Other{i}").unwrap();
    }
    std::fs::write(dir.join("list.csv"), csv).unwrap();
    CampaignToml::new("warm")
        .relay(Relay::loopback(port).connections(2))
        .dkim("rsa", "rsa.pem")
        .retry(QUICK_RETRY)
        .section("[warmup]\nstart = 10\n[warmup.providers.others]\nstart = 100\n")
        .write(&dir.join("campaign.toml"))
        .display()
        .to_string()
}

/// Recipients the relay accepted, by domain.
fn accepted(relay: &ScriptServer, domain: &str) -> usize {
    relay
        .events("accepted")
        .iter()
        .filter(|r| r.ends_with(domain))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warmup_ceiling_holds_recipients_for_tomorrow_across_two_runs() {
    let dir = tempfile::tempdir().unwrap();
    let relay = ScriptServer::start("picky-relay.py", &dir.path().join("relay.log"), &[], false);
    let campaign = write_campaign(dir.path(), relay.port);
    // The next UTC midnight (a test run across midnight would see a new day's ceiling).
    let tomorrow = (chrono::Utc::now().date_naive() + chrono::Days::new(1))
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();

    let out = volley(&["send", &campaign, "--no-progress"]).await;
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}{}", text(&out.stderr));
    assert!(
        said.contains(&format!(
            "15 recipients wait for tomorrow's warm-up allowance: gmail 15 (ceiling 10 \
             reached); the next day begins at {tomorrow}"
        )),
        "{said}"
    );
    assert_eq!(accepted(&relay, "@gmail.com"), 10);
    assert_eq!(accepted(&relay, "@example.org"), 5);

    let out = volley(&["send", &campaign, "--no-progress"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("this run: 0 attempts in"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(
        accepted(&relay, "@gmail.com"),
        10,
        "nothing more the same day"
    );

    let out = volley(&["status", &campaign, "--json"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["pending"], 15, "{status}");
    let warmup = &status["warmup"];
    assert_eq!(warmup["key"], "example.com", "{status}");
    assert_eq!(warmup["next_day"], tomorrow.as_str(), "{status}");
    let gmail = warmup["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["provider"] == "gmail")
        .unwrap();
    assert_eq!(
        (&gmail["ceiling"], &gmail["sent"], &gmail["held"]),
        (&10.into(), &10.into(), &15.into()),
        "{status}"
    );

    let out = volley(&["status", &campaign]).await;
    let said = text(&out.stdout);
    assert!(said.contains("warm-up example.com"), "{said}");
    assert!(
        said.contains("    gmail               10        10        15  first day"),
        "{said}"
    );
}
