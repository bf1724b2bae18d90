//! `volley store copy`: a campaign sent (a bounce, a deferral retried, a tracked open and an
//! unsubscribe) is copied to a fresh PostgreSQL database and back to a new sled folder, and
//! `status --json`, `report --format json` and `events` answer the same on all three, field
//! by field.

use crate::support::{list, output_of, text, Fixture};
use crate::tracking::{open_and_unsubscribe, serve_tracking, tracked_campaign};
use serde_json::Value;
use std::process::Output;
use volley_testkit::postgres::TempCluster;

const KEY: &str = "cli-copy-tracking-key-0123456789abcdef";

/// `volley <args>` with the tracking key in the environment, off the async workers.
async fn volley_run(args: &[&str]) -> Output {
    output_of(args, &[("VOLLEY_TRACKING_KEY", KEY)]).await
}

/// The three answers compared, read from the store at `store`: status, report, events.
async fn answers(campaign: &str, store: &str) -> Result<(Value, Value, String), String> {
    let status = volley_run(&["status", campaign, "--store", store, "--json"]).await;
    let report = volley_run(&["report", campaign, "--store", store, "--format", "json"]).await;
    let events = volley_run(&["events", campaign, "--store", store, "--format", "jsonl"]).await;
    for (what, output) in [
        ("status", &status),
        ("report", &report),
        ("events", &events),
    ] {
        if output.status.code() != Some(0) {
            return Err(format!("{what}: {}", text(&output.stderr)));
        }
    }
    let json = |o: &Output| serde_json::from_slice::<Value>(&o.stdout).unwrap();
    Ok((json(&status), json(&report), text(&events.stdout)))
}

/// Compares two JSON values field by field (all but `generated_at`), naming the path of the
/// first difference.
fn same(path: &str, a: &Value, b: &Value) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: Vec<_> = x.keys().chain(y.keys()).collect();
            // When the report was made is the one field that must differ.
            for key in keys.into_iter().filter(|k| *k != "generated_at") {
                let none = Value::Null;
                let (p, q) = (x.get(key).unwrap_or(&none), y.get(key).unwrap_or(&none));
                same(&format!("{path}.{key}"), p, q);
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{path}: {a} vs {b}");
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                same(&format!("{path}[{i}]"), p, q);
            }
        }
        _ => assert_eq!(a, b, "{path} differs"),
    }
}

async fn copy(from: &str, to: &str) -> Output {
    volley_run(&["store", "copy", "--from", from, "--to", to]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sent_campaign_is_copied_to_postgresql_and_back_and_answers_the_same() {
    let csv = format!("{}bounce-x@d1.example,B\ndefer-y@d2.example,D\n", list(3));
    let mut fixture = Fixture::new(&csv, crate::support::PASSWORD).await;
    let (server, addr, base) = tracked_campaign(&mut fixture, KEY, 120, "");
    let campaign = fixture.campaign();
    let send = volley_run(&["send", &campaign, "--no-progress"]).await;
    assert_eq!(send.status.code(), Some(1), "{}", text(&send.stderr));
    open_and_unsubscribe(&fixture, &addr, &base).await;
    drop(server);

    // The campaign's own store: a sled folder, or with VOLLEY_TEST_STORE=postgres a database
    // of the tests' cluster (then the copy goes from one PostgreSQL to another and to sled).
    let store = volley_testkit::store::store_arg(&fixture.path("campaign.volley"));
    let before = answers(&campaign, &store).await.unwrap();
    assert_eq!(before.0["bounced"], 1, "{}", before.0);
    assert_eq!(before.0["unsubscribed"], 1, "{}", before.0);
    assert!(before.2.contains("\"unsubscribe\""), "{}", before.2);

    let cluster = tokio::task::spawn_blocking(TempCluster::start)
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("this test needs PostgreSQL (initdb, pg_ctl): {e}"));
    let url = cluster.url();
    let copied = copy(&store, &url).await;
    let said = text(&copied.stdout);
    assert_eq!(
        copied.status.code(),
        Some(0),
        "{said}{}",
        text(&copied.stderr)
    );
    assert!(said.contains("copied 1 campaign, 5 recipients"), "{said}");
    assert!(!said.contains(cluster.password()), "{said}");

    // The copy in PostgreSQL answers the same, field by field.
    let on_postgres = answers(&campaign, &url).await.unwrap();
    same("status", &before.0, &on_postgres.0);
    same("report", &before.1, &on_postgres.1);
    assert_eq!(before.2, on_postgres.2, "events");

    let again = copy(&store, &url).await;
    assert_eq!(again.status.code(), Some(2));
    let error = text(&again.stderr);
    assert!(
        error.contains("campaign cli-test is already in this store"),
        "{error}"
    );

    let back = fixture.path("back.volley").display().to_string();
    let copied = copy(&url, &back).await;
    assert_eq!(copied.status.code(), Some(0), "{}", text(&copied.stderr));
    let after = answers(&campaign, &back).await.unwrap();
    same("status", &before.0, &after.0);
    same("report", &before.1, &after.1);
    assert_eq!(before.2, after.2, "events");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_held_by_another_process_is_not_copied() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("held.volley").display().to_string();
    // The banner comes once the server holds the store.
    let env = [("VOLLEY_TRACKING_KEY", KEY)];
    let (server, _banner) = serve_tracking(&store, &["--seconds", "120"], &env);
    let target = dir.path().join("copy.volley").display().to_string();
    let output = copy(&store, &target).await;
    assert_eq!(output.status.code(), Some(2));
    let error = text(&output.stderr);
    assert!(
        error.contains("is held by another volley process"),
        "{error}"
    );
    assert!(error.contains("nothing was copied"), "{error}");
    drop(server);
    let missing = dir.path().join("nope").display().to_string();
    let output = copy(&missing, &target).await;
    assert!(
        text(&output.stderr).contains("does not exist"),
        "{}",
        text(&output.stderr)
    );
}
