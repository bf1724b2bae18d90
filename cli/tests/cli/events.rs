//! `volley events`: a sent campaign's history as a user exports it, in CSV and JSON lines.

use crate::support::{list, run, text, Fixture, PASSWORD};

const HEADER: &str =
    "at,campaign,variant,recipient,event,machine,link,url,code,enhanced,reply,category";

/// Sends three good recipients, one that bounces and one deferred once, to the loopback sink.
async fn sent_campaign() -> Fixture {
    let csv = format!("{}bounce-x@d1.example,B\ndefer-y@d2.example,D\n", list(3));
    let fixture = Fixture::new(&csv, PASSWORD).await;
    let campaign = fixture.campaign();
    let sent = tokio::task::spawn_blocking(move || run(&["send", &campaign, "--no-progress"]))
        .await
        .unwrap();
    assert_eq!(sent.status.code(), Some(1), "{}", text(&sent.stderr));
    fixture
}

async fn events(fixture: &Fixture, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["events".to_owned(), fixture.campaign()];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&args)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_exports_every_attempt_as_csv_and_json_lines() {
    let fixture = sent_campaign().await;

    let output = events(&fixture, &["--format", "csv"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let csv = text(&output.stdout);
    assert_eq!(csv.lines().next(), Some(HEADER), "{csv}");
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let of =
        |who: &str| -> Vec<&csv::StringRecord> { rows.iter().filter(|r| &r[3] == who).collect() };
    for i in 0..3 {
        let mine = of(&format!("user{i}@d{i}.example"));
        assert_eq!(mine.len(), 1, "one line per good recipient: {csv}");
        assert_eq!((&mine[0][1], &mine[0][4]), ("cli-test", "delivered"));
        assert_eq!(&mine[0][8], "250", "{csv}");
    }
    let bounce = of("bounce-x@d1.example");
    assert_eq!(bounce.len(), 1, "{csv}");
    assert_eq!(
        (&bounce[0][4], &bounce[0][8], &bounce[0][9], &bounce[0][11]),
        ("bounced", "550", "5.1.1", "user_unknown"),
        "{csv}"
    );
    let defer = of("defer-y@d2.example");
    let story: Vec<(&str, &str)> = defer.iter().map(|r| (&r[4], &r[8])).collect();
    assert_eq!(story, [("deferred", "451"), ("delivered", "250")], "{csv}");
    let times: Vec<&str> = rows.iter().map(|r| &r[0]).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "oldest first");
    assert_eq!(rows.len(), 6, "{csv}");

    let output = events(&fixture, &["--format", "jsonl"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let lines: Vec<serde_json::Value> = text(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 6);
    let bounce = lines.iter().find(|l| l["event"] == "bounced").unwrap();
    assert_eq!(bounce["recipient"], "bounce-x@d1.example");
    assert_eq!(bounce["code"], 550);
    assert_eq!(bounce["category"], "user_unknown");
    assert_eq!(bounce["variant"], "main");
    let at = bounce["at"].as_str().unwrap();
    assert!(
        at.ends_with('Z') && at.len() == "2024-05-01T12:00:00.000Z".len(),
        "{at}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_since_and_out_and_a_bad_since() {
    let fixture = sent_campaign().await;
    let out = fixture.path("events.csv");
    let output = events(
        &fixture,
        &[
            "--format",
            "csv",
            "--since",
            "1h",
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 7);

    let output = events(
        &fixture,
        &["--format", "csv", "--since", "2999-01-01T00:00:00Z"],
    )
    .await;
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(text(&output.stdout).trim_end(), HEADER, "only the header");

    let output = events(&fixture, &["--since", "last tuesday"]).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--since") && stderr.contains("last tuesday"),
        "{stderr}"
    );
}
