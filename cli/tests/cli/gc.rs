//! `volley gc`: a finished campaign's per-recipient data goes once its events are exported;
//! its report and status stay the same, tracking links and one-click unsubscribe in mail
//! already sent keep working, and the store shrinks when gc has it to itself.

use crate::support::{list, output_of, text, Fixture, PASSWORD};
use crate::tracking::{http, tracked_campaign, tracking_path};
use serde_json::Value;
use volley_testkit::http::Answer;

const KEY: &str = "cli-gc-tracking-key-0123456789abcdef";

async fn json_of(args: &[&str]) -> Value {
    let output = output_of(args, &[("VOLLEY_TRACKING_KEY", KEY)]).await;
    assert_eq!(
        output.status.code(),
        Some(0),
        "volley {args:?}: {}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("volley {args:?}: {e}: {}", text(&output.stdout)))
}

/// The tracking paths (`/c/…` of the first link, `/u/…`) in the message sent to `address`.
fn links_of(fixture: &Fixture, base: &str, address: &str) -> (String, String) {
    let message = fixture
        .sink
        .received()
        .into_iter()
        .find(|m| m.rcpt_to[0] == address)
        .unwrap();
    let data = String::from_utf8_lossy(&message.data).replace("=\r\n", "");
    (
        format!("/c/{}", tracking_path(&data, &format!("{base}/c/"), '"')),
        format!("/u/{}", tracking_path(&data, &format!("{base}/u/"), '>')),
    )
}

async fn request(addr: &str, method: &'static str, path: String) -> Answer {
    let body = if method == "POST" {
        "List-Unsubscribe=One-Click"
    } else {
        ""
    };
    http(addr, method, &path, body).await
}

fn outcome(report: &Value) -> &str {
    report["campaigns"][0]["outcome"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_collects_an_exported_campaign_and_tracking_still_works() {
    let csv = format!("{}bounce-1@d1.example,Bounce\n", list(40));
    let mut fixture = Fixture::new(&csv, PASSWORD).await;
    let (server, addr, base) = tracked_campaign(&mut fixture, KEY, 180, "");
    let campaign = fixture.campaign();
    let send = output_of(
        &["send", &campaign, "--no-progress"],
        &[("VOLLEY_TRACKING_KEY", KEY)],
    )
    .await;
    assert_eq!(send.status.code(), Some(1), "{}", text(&send.stderr));
    let (click, unsubscribe) = links_of(&fixture, &base, "user0@d0.example");
    assert_eq!(request(&addr, "GET", click).await.status, 302);
    assert_eq!(request(&addr, "POST", unsubscribe).await.status, 200);

    // Events not exported yet: nothing is collected (asked of the server holding the store).
    let report = json_of(&["gc", &campaign, "--json"]).await;
    assert_eq!(outcome(&report), "not_exported", "{report}");
    assert_eq!(report["compacted"], false);

    let before = json_of(&["report", &campaign, "--format", "json"]).await;
    let status_before = json_of(&["status", &campaign, "--json"]).await;
    let exported = fixture.path("events.jsonl");
    let export = output_of(
        &["events", &campaign, "--out", exported.to_str().unwrap()],
        &[],
    )
    .await;
    assert_eq!(export.status.code(), Some(0), "{}", text(&export.stderr));
    let lines = std::fs::read_to_string(&exported).unwrap().lines().count();
    assert_eq!(lines, 41 + 2, "41 outcomes, a click and an unsubscribe");

    let report = json_of(&["gc", &campaign, "--json"]).await;
    assert_eq!(outcome(&report), "collected", "{report}");
    assert_eq!(report["campaigns"][0]["removed"]["recipients"], 41);
    assert_eq!(
        report["compacted"], false,
        "the server holds the store: the files shrink at the next gc"
    );

    // Report and status read the same after gc (the report's time aside).
    let mut after = json_of(&["report", &campaign, "--format", "json"]).await;
    after["generated_at"] = before["generated_at"].clone();
    assert_eq!(after, before);
    assert_eq!(
        json_of(&["status", &campaign, "--json"]).await,
        status_before
    );

    // Mail already sent still works: the link redirects, the unsubscribe suppresses.
    let (click, unsubscribe) = links_of(&fixture, &base, "user2@d2.example");
    let response = request(&addr, "GET", click).await;
    assert_eq!(response.status, 302, "{response:?}");
    assert_eq!(
        response.header("location"),
        Some("https://shop.example/sale"),
        "{response:?}"
    );
    assert_eq!(request(&addr, "POST", unsubscribe).await.status, 200);
    drop(server);

    let store = volley_testkit::store::store_arg(&fixture.path("campaign.volley"));
    let store = store.as_str();
    let suppressed = output_of(&["suppress", "list", "--store", store], &[]).await;
    let suppressed = text(&suppressed.stdout);
    assert!(suppressed.contains("user2@d2.example"), "{suppressed}");

    // The new events are all that `volley events` has left; once exported, gc (with the
    // store to itself now) collects them too and rewrites the store smaller.
    let export = output_of(&["events", &campaign], &[]).await;
    assert_eq!(export.status.code(), Some(0), "{}", text(&export.stderr));
    let left: Vec<Value> = text(&export.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = left.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(kinds, ["click", "unsubscribe"], "{left:?}");
    assert!(left.iter().all(|e| e["recipient"] == "user2@d2.example"));
    assert!(text(&export.stderr).contains("collected"), "warned");

    let report = json_of(&["gc", "--store", store, "--json"]).await;
    assert_eq!(outcome(&report), "collected", "{report}");
    if !volley_testkit::store::is_postgres() {
        // Only a sled folder is rewritten; a database reuses the space itself.
        assert_eq!(report["compacted"], true, "{report}");
        let (before, after) = (
            report["bytes_before"].as_u64().unwrap(),
            report["bytes_after"].as_u64().unwrap(),
        );
        assert!(after < before, "{before} → {after}");
    }
    let unsubscribed = json_of(&["status", &campaign, "--json"]).await;
    assert_eq!(unsubscribed["unsubscribed"], 2, "{unsubscribed}");
    assert_eq!(unsubscribed["delivered"], 40);

    let table = output_of(&["gc", "--store", store], &[]).await;
    let table = text(&table.stdout);
    assert!(
        table.contains("cli-test") && table.contains("collected earlier, nothing new"),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_keeps_a_campaign_with_recipients_left_and_force_skips_the_export() {
    let csv = format!("{}defer-1@d1.example,Later\n", list(3));
    let mut fixture = Fixture::new(&csv, PASSWORD).await;
    let toml = fixture.toml.clone();
    fixture.set_campaign(toml.retry("schedule = [\"1h\"]\nexpire_after = \"1h\""));
    let campaign = fixture.campaign();
    let send = output_of(&["send", &campaign, "--no-progress"], &[]).await;
    assert_eq!(send.status.code(), Some(1), "{}", text(&send.stderr));

    let table = output_of(&["gc", &campaign, "--force"], &[]).await;
    let stdout = text(&table.stdout);
    assert_eq!(table.status.code(), Some(0), "{}", text(&table.stderr));
    assert!(
        stdout.contains("kept: 1 recipient still to send"),
        "{stdout}"
    );

    let dry = output_of(&["gc", &campaign, "--dry-run", "--force"], &[]).await;
    assert!(text(&dry.stdout).contains("kept"), "{}", text(&dry.stdout));

    let missing = output_of(&["gc"], &[]).await;
    assert_eq!(missing.status.code(), Some(2));
}
