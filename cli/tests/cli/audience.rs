//! Engagement audiences: a first campaign goes out, its messages are opened and clicked over
//! HTTP with curl (some by people, some by machines: Apple Mail Privacy Protection's bare
//! user agent, curl's own user agent as a scanner, a HEAD request); a resend `not = "opened"`
//! then reaches exactly those who did not open as a person, `volley audience` counts the
//! same beforehand, and `exclude_campaigns` and `inactive_after` leave out whom they should.

use crate::support::{list, output_of, text, Fixture};
use crate::tracking::{serve_tracking, tracking_path, Server};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use volley_testkit::http::BROWSER;

const KEY: &str = "cli-audience-key-0123456789abcdef";
const TRACKING: (&str, &str) = ("VOLLEY_TRACKING_KEY", KEY);

/// Runs curl (an independent HTTP client) with `args`; its HTTP status. Fails loudly when
/// curl is missing.
fn curl_status(args: &[&str]) -> String {
    let output = std::process::Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "30"])
        .args(["-o", "/dev/null", "-w", "%{http_code}"])
        .args(args)
        .output()
        .expect("curl is needed by this test: apt-get install -y curl");
    assert!(
        output.status.success(),
        "curl {args:?}: {}",
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// The tracking server on the fixture's store (opens judged by user agent only, so a
/// person's open right after delivery counts), and the campaign tracked through it.
fn tracked(fixture: &mut Fixture) -> (Server, String) {
    let store = volley_testkit::store::store_arg(&fixture.path("campaign.volley"));
    let env = [TRACKING];
    let args = ["--seconds", "300", "--too-soon", "0s"];
    let (server, banner) = serve_tracking(&store, &args, &env);
    let base = format!("http://{}", tracking_path(&banner, "http://", ' '));
    let toml = fixture.toml.clone().html("body.html").section(&format!(
        "[tracking]\nbase_url = \"{base}\"\nkey_env = \"VOLLEY_TRACKING_KEY\""
    ));
    fixture.set_campaign(toml);
    std::fs::write(
        fixture.path("body.html"),
        "<p>Hello {{ name }}, see <a href=\"https://shop.example/sale\">the sale</a>.</p>\n",
    )
    .unwrap();
    (server, base)
}

/// The pixel and click URLs of the message `fixture`'s sink received for `address`.
fn urls_of(fixture: &Fixture, address: &str, base: &str) -> (String, String) {
    let message = fixture
        .sink
        .received()
        .into_iter()
        .find(|m| m.rcpt_to[0] == address)
        .unwrap();
    let data = String::from_utf8_lossy(&message.data).replace("=\r\n", "");
    let data = data.replace("=3D", "=");
    let pixel = format!(
        "{base}/o/{}",
        tracking_path(&data, &format!("{base}/o/"), '"')
    );
    let click = format!(
        "{base}/c/{}",
        tracking_path(&data, &format!("{base}/c/"), '"')
    );
    (pixel, click)
}

/// Polls `volley status --json` of the first campaign (at most a minute) until `done`.
async fn wait_for_status(fixture: &Fixture, done: impl Fn(&serde_json::Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = output_of(&["status", &fixture.campaign(), "--json"], &[]).await;
        let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap_or_default();
        if done(&json) {
            return;
        }
        assert!(Instant::now() < deadline, "tracking never recorded: {json}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Writes campaign `id` on the fixture's list and store with `[audience]` `rules`; its path.
fn campaign_with(fixture: &Fixture, id: &str, rules: &str) -> String {
    let file = fixture.path(&format!("{id}.toml"));
    let toml = fixture
        .toml
        .clone()
        .id(id)
        .subject(&format!("{id} for {{{{ name }}}}"))
        .section("[store]\npath = \"campaign.volley\"")
        .section(&format!("[audience]\n{rules}"));
    toml.write(&file).display().to_string()
}

/// `volley audience FILE --json`, which must succeed.
async fn audience_json(file: &str) -> serde_json::Value {
    let out = output_of(&["audience", file, "--json"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The recipients of the messages whose subject starts with `id`.
fn reached(fixture: &Fixture, id: &str) -> BTreeSet<String> {
    fixture
        .sink
        .received()
        .into_iter()
        .filter(|m| String::from_utf8_lossy(&m.data).contains(&format!("Subject: {id} for")))
        .map(|m| m.rcpt_to[0].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_reaches_exactly_who_did_not_open_as_a_person() {
    let mut fixture = Fixture::new(&list(6), crate::support::PASSWORD).await;
    let (server, base) = tracked(&mut fixture);
    let send = output_of(&["send", &fixture.campaign(), "--no-progress"], &[TRACKING]).await;
    assert_eq!(send.status.code(), Some(0), "{}", text(&send.stderr));
    assert_eq!(fixture.sink.count(), 6);

    let urls = |n: usize| urls_of(&fixture, &format!("user{n}@d{n}.example"), &base);
    // user0 opens as a person; user1 clicks as a person (a click means it was opened).
    assert_eq!(curl_status(&["-A", BROWSER, &urls(0).0]), "200");
    assert_eq!(curl_status(&["-A", BROWSER, &urls(1).1]), "302");
    // Machines: Apple's privacy proxy (bare "Mozilla/5.0"), a scanner (curl's own user
    // agent), a HEAD request. user5 does nothing.
    assert_eq!(curl_status(&["-A", "Mozilla/5.0", &urls(2).0]), "200");
    assert_eq!(curl_status(&[&urls(3).0]), "200");
    assert_eq!(curl_status(&["-I", "-A", BROWSER, &urls(4).0]), "200");
    wait_for_status(&fixture, |json| {
        json["opened"] == 1 && json["clicked"] == 1 && json["machine_opens"] == 3
    })
    .await;

    let resend = campaign_with(
        &fixture,
        "again",
        "resend = { campaign = \"cli-test\", not = \"opened\", after = \"0s\" }",
    );
    if !volley_testkit::store::is_postgres() {
        // The tracking server holds the sled store: counting is refused, clearly.
        let busy = output_of(&["audience", &resend], &[]).await;
        assert_eq!(busy.status.code(), Some(2));
        let stderr = text(&busy.stderr);
        assert!(
            stderr.contains("in use by another volley process"),
            "{stderr}"
        );
        assert!(stderr.contains("run it when the send"), "{stderr}");
    }
    drop(server);

    let counted = audience_json(&resend).await;
    assert_eq!(counted["rows"], 6, "{counted}");
    assert_eq!(counted["rules"][0]["rule"], "resend", "{counted}");
    assert_eq!(counted["rules"][0]["removed"], 2, "{counted}");
    assert_eq!(counted["remaining"], 4, "{counted}");
    let table = output_of(&["audience", &resend], &[]).await;
    let table = text(&table.stdout);
    assert!(table.contains("list rows"), "{table}");
    assert!(table.contains("resend"), "{table}");

    let late = campaign_with(
        &fixture,
        "later",
        "resend = { campaign = \"cli-test\", not = \"opened\", after = \"48h\" }",
    );
    let refused = output_of(&["send", &late, "--no-progress"], &[TRACKING]).await;
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stdout));
    let stderr = text(&refused.stderr);
    assert!(stderr.contains("audience.resend"), "{stderr}");
    assert!(stderr.contains("may start at"), "{stderr}");
    assert!(reached(&fixture, "later").is_empty());

    let sent = output_of(&["send", &resend, "--no-progress"], &[TRACKING]).await;
    assert_eq!(sent.status.code(), Some(0), "{}", text(&sent.stderr));
    let expected: BTreeSet<String> = (2..6).map(|n| format!("user{n}@d{n}.example")).collect();
    assert_eq!(reached(&fixture, "again"), expected);

    later_rules(&fixture).await;
}

/// `exclude_campaigns` and `inactive_after`, counted after the first campaign and the resend
/// (user0 and user1 were delivered once and engaged; user2 to user5 twice, never engaged).
async fn later_rules(fixture: &Fixture) {
    let unknown = campaign_with(
        fixture,
        "third",
        "exclude_campaigns = [\"again\", \"nope\"]",
    );
    let out = output_of(&["audience", &unknown], &[]).await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("audience.exclude_campaigns[1]"), "{stderr}");
    assert!(stderr.contains("\"nope\""), "{stderr}");

    let inactive = campaign_with(
        fixture,
        "third",
        "inactive_after = \"1ms\"\ninactive_min_delivered = 2",
    );
    let counted = audience_json(&inactive).await;
    assert_eq!(counted["rules"][0]["rule"], "inactive_after", "{counted}");
    assert_eq!(counted["rules"][0]["removed"], 4, "{counted}");

    let both = campaign_with(
        fixture,
        "third",
        "exclude_campaigns = [\"again\"]\ninactive_after = \"1ms\"\ninactive_min_delivered = 2",
    );
    let counted = audience_json(&both).await;
    assert_eq!(counted["rules"][0]["removed"], 4, "{counted}");
    assert_eq!(counted["rules"][1]["removed"], 0, "{counted}");
    assert_eq!(counted["remaining"], 2, "{counted}");
    let sent = output_of(&["send", &both, "--no-progress"], &[TRACKING]).await;
    assert_eq!(sent.status.code(), Some(0), "{}", text(&sent.stderr));
    let expected: BTreeSet<String> = (0..2).map(|n| format!("user{n}@d{n}.example")).collect();
    assert_eq!(reached(fixture, "third"), expected);
}
