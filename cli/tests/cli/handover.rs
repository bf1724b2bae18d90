//! A second `volley send` on a store that a running send holds: its campaign is handed over,
//! sent alongside by priority, and followed to the end.

use crate::support::{list, text, volley, Fixture, PASSWORD};
use std::time::Duration;
use volley_testkit::sink::SinkConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_campaign_on_a_busy_store_is_handed_over_and_followed_to_the_end() {
    if crate::support::sled_only(
        "handover::a_second_campaign_on_a_busy_store_is_handed_over_and_followed_to_the_end",
    ) {
        return;
    }
    let config = SinkConfig {
        reply_delay: Duration::from_millis(4),
        ..SinkConfig::default()
    };
    let fixture = Fixture::with_sink(&list(400), PASSWORD, config).await;
    let urgent = fixture
        .toml
        .clone()
        .id("urgent")
        .campaign_line("priority = 1");
    urgent
        .recipients("urgent.csv")
        .section("[store]\npath = \"campaign.volley\"")
        .write(&fixture.path("urgent.toml"));
    let mut csv = String::from("email,name\n");
    for i in 0..10 {
        csv.push_str(&format!("urgent{i}@u.example,U{i}\n"));
    }
    std::fs::write(fixture.path("urgent.csv"), csv).unwrap();

    let mut child = fixture.spawn_send(false);
    fixture.wait_for_arrivals(30, &mut child).await;
    let urgent_file = fixture.path("urgent.toml").display().to_string();
    let output = tokio::task::spawn_blocking(move || {
        volley()
            .args(["send", &urgent_file, "--no-progress"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        text(&output.stderr)
    );
    assert!(stdout.contains("handed over"), "{stdout}");
    assert!(stdout.contains("delivered 10 "), "{stdout}");
    let bulk_done = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bulk_done.code(), Some(0));
    let arrived = fixture.sink.received();
    let urgent: Vec<_> = arrived
        .iter()
        .filter(|m| m.rcpt_to[0].starts_with("urgent"))
        .collect();
    assert_eq!(urgent.len(), 10);
    assert_eq!(arrived.len(), 410, "both campaigns complete, nobody twice");
}
