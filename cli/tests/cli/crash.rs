//! kill -9 in the middle of a send, then a re-run: nobody is lost, and the duplicates stay
//! within the documented window. Also: status answers while a send runs.

use crate::support::{list, run, text, Fixture, PASSWORD};
use std::time::Duration;
use volley_testkit::sink::SinkConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_send_then_rerun_loses_nobody() {
    let total = 3_000;
    let fixture = Fixture::new(&list(total), PASSWORD).await;
    let mut child = fixture.spawn_send(false);
    // Kill it once a good part of the list has arrived.
    fixture.wait_for_arrivals(total / 3, &mut child).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let at_kill = fixture.sink.count();
    assert!(at_kill < total, "killed before the end");

    let campaign = fixture.campaign();
    let output = tokio::task::spawn_blocking(move || run(&["send", &campaign, "--no-progress"]))
        .await
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );

    let mut per_address = std::collections::HashMap::new();
    for message in fixture.sink.received() {
        *per_address
            .entry(message.rcpt_to[0].clone())
            .or_insert(0usize) += 1;
    }
    let lost = total - per_address.len();
    let duplicates: usize = per_address.values().map(|n| n - 1).sum();
    eprintln!("killed after {at_kill} arrivals: lost {lost}, duplicates {duplicates}");
    assert_eq!(lost, 0);
    // The window: deliveries not yet flushed (≤ 100 ms of them) plus transactions in flight.
    assert!(
        duplicates <= 500,
        "duplicates {duplicates} beyond the documented window"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_answers_while_a_send_holds_the_store() {
    let config = SinkConfig {
        reply_delay: Duration::from_millis(5),
        ..SinkConfig::default()
    };
    let fixture = Fixture::with_sink(&list(400), PASSWORD, config).await;
    let mut child = fixture.spawn_send(false);
    fixture.wait_for_arrivals(20, &mut child).await;
    let campaign = fixture.campaign();
    let output = tokio::task::spawn_blocking(move || run(&["status", &campaign, "--json"]))
        .await
        .unwrap();
    let still_running = child.try_wait().unwrap().is_none();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["total"], 400);
    if still_running && volley_testkit::store::is_postgres() {
        // A database is read directly, by every command: no process answers for it.
        assert!(json["running_pid"].is_null(), "{json}");
    } else if still_running {
        assert!(
            json["running_pid"].is_u64(),
            "answered by the running send: {json}"
        );
        assert_eq!(json["sending"], true, "{json}");
        let relay = &json["destinations"][0];
        assert!(
            relay["name"]
                .as_str()
                .unwrap()
                .starts_with("relay 127.0.0.1:"),
            "the running send's destinations: {json}"
        );
    }
    if still_running {
        let campaign = fixture.campaign();
        let busy = tokio::task::spawn_blocking(move || run(&["send", &campaign]))
            .await
            .unwrap();
        assert_eq!(
            busy.status.code(),
            Some(3),
            "the same campaign twice: refused"
        );
        assert!(
            text(&busy.stdout).contains("is already being sent by volley (pid"),
            "{}",
            text(&busy.stdout)
        );
    }
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_cleanly_and_a_rerun_finishes_without_duplicates() {
    let total = 600;
    let config = SinkConfig {
        reply_delay: Duration::from_millis(5),
        ..SinkConfig::default()
    };
    let fixture = Fixture::with_sink(&list(total), PASSWORD, config).await;
    let mut child = fixture.spawn_send(true);
    fixture.wait_for_arrivals(50, &mut child).await;
    let pid = child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("interrupted"),
        "{}",
        text(&output.stdout)
    );
    let at_stop = fixture.sink.count();
    assert!(at_stop < total, "stopped before the end");

    let campaign = fixture.campaign();
    let rerun = tokio::task::spawn_blocking(move || run(&["send", &campaign, "--no-progress"]))
        .await
        .unwrap();
    assert_eq!(rerun.status.code(), Some(0), "{}", text(&rerun.stderr));
    let mut per_address = std::collections::HashMap::new();
    for message in fixture.sink.received() {
        *per_address
            .entry(message.rcpt_to[0].clone())
            .or_insert(0usize) += 1;
    }
    assert_eq!(per_address.len(), total, "nobody lost");
    assert!(
        per_address.values().all(|&n| n == 1),
        "a clean stop records every delivery: no duplicates"
    );
}
