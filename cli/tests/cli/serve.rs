//! `volley serve` and cron-friendly `volley send` for a scheduled campaign: the due edition is
//! sent, a second run of the same edition exits at once with code 3, `volley status` answers
//! through the server and so does `volley events`, SIGTERM stops it cleanly, and a re-run
//! finishes without duplicates.

use crate::support::{list, output_of, text, volley, Fixture, PASSWORD};
use std::process::Stdio;
use std::time::Duration;
use volley_testkit::campaign::ServeToml;
use volley_testkit::sink::SinkConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_sends_the_due_edition_refuses_an_overlap_and_stops_cleanly() {
    let config = SinkConfig {
        reply_delay: Duration::from_millis(4),
        ..SinkConfig::default()
    };
    let mut fixture = Fixture::with_sink(&list(300), PASSWORD, config).await;
    // Fired on 1 January at midnight; a long catch-up keeps that edition due all year.
    fixture.add_to_campaign("[schedule]\ncron = \"0 0 1 1 *\"\ncatch_up = \"400d\"");
    ServeToml::new("campaign.volley")
        .campaign("campaign.toml")
        .write(&fixture.path("serve.toml"));

    let mut server = volley()
        .args([
            "serve",
            "--config",
            &fixture.path("serve.toml").display().to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    fixture.wait_for_arrivals(30, &mut server).await;

    let campaign = fixture.campaign();
    let second = output_of(&["send", &campaign, "--no-progress"], &[]).await;
    let said = text(&second.stdout);
    assert_eq!(
        second.status.code(),
        Some(3),
        "{said}{}",
        text(&second.stderr)
    );
    assert!(said.contains("is already being sent"), "{said}");

    let campaign = fixture.campaign();
    let status = output_of(&["status", &campaign, "--json"], &[]).await;
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let edition = json["campaign"].as_str().unwrap().to_owned();
    assert!(
        edition.starts_with("cli-test.") && edition.ends_with("-01-01"),
        "{json}"
    );
    assert_eq!(json["total"], 300, "{json}");

    // The store is the server's: the export goes through it.
    let campaign = fixture.campaign();
    let events = output_of(&["events", &campaign, "--format", "csv"], &[]).await;
    let csv = text(&events.stdout);
    assert_eq!(events.status.code(), Some(0), "{}", text(&events.stderr));
    assert!(
        csv.starts_with("at,campaign,variant,recipient,event,"),
        "{csv}"
    );
    // Parsed as CSV: a reply text may hold a line break inside its quoted field.
    let rows: Vec<csv::StringRecord> = csv::Reader::from_reader(csv.as_bytes())
        .records()
        .map(Result::unwrap)
        .collect();
    let delivered = rows.iter().filter(|r| &r[4] == "delivered").count();
    assert!(delivered >= 30, "{csv}");
    assert!(rows.iter().all(|r| r[1] == *edition), "{csv}");

    let pid = server.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let stopped = tokio::task::spawn_blocking(move || server.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stopped.status.code(), Some(0), "{}", text(&stopped.stderr));
    let at_stop = fixture.sink.count();
    assert!(at_stop < 300, "stopped before the end ({at_stop})");

    let campaign = fixture.campaign();
    let rerun = output_of(&["send", &campaign, "--no-progress"], &[]).await;
    let said = text(&rerun.stdout);
    assert_eq!(
        rerun.status.code(),
        Some(0),
        "{said}{}",
        text(&rerun.stderr)
    );
    assert!(
        said.contains(&format!("sending edition {edition}")),
        "{said}"
    );
    let got = crate::support::arrivals(&fixture.sink);
    assert_eq!(got.len(), 300, "everybody got the edition");
    assert!(
        got.values().all(|n| *n == 1),
        "nobody twice after a clean stop"
    );
}
