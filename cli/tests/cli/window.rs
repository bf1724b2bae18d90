//! Sending windows through the binary (issue 23): a `volley send` whose recipients are all
//! outside their local window sends nothing, says when the next window opens and exits 1
//! (work is left); `volley status` (text and `--json`) counts them as waiting and names the
//! same moment. A `timezone_column` the list does not have is refused before anything loads.

use std::process::Output;
use std::time::Duration;

use crate::support::{output_of, text, Fixture};

/// `volley ARGS…`, two minutes at most.
async fn volley(args: &[&str]) -> Output {
    tokio::time::timeout(Duration::from_secs(120), output_of(args, &[]))
        .await
        .expect("volley finished within two minutes")
}

/// A window of local time that opens three hours from now in UTC and lasts an hour, and the
/// instant (whole minutes, RFC 3339) it opens for a recipient in UTC.
fn closed_window() -> (String, String) {
    let now = chrono::Utc::now();
    let opens = now + chrono::Duration::hours(3);
    let opens = opens
        .date_naive()
        .and_hms_opt(
            chrono::Timelike::hour(&opens),
            chrono::Timelike::minute(&opens),
            0,
        )
        .unwrap()
        .and_utc();
    let closes = opens + chrono::Duration::hours(1);
    let window = format!("{}-{}", opens.format("%H:%M"), closes.format("%H:%M"));
    (window, opens.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_outside_every_window_waits_and_status_says_until_when() {
    // UTC (by name and by default), and Kolkata, where the same hours passed earlier today.
    let csv = "email,name,tz\nann@a.example,Ann,UTC\nbob@b.example,Bob,\n\
               cid@c.example,Cid,Asia/Kolkata\n";
    let mut fixture = Fixture::new(csv, crate::support::PASSWORD).await;
    let (window, opens) = closed_window();
    fixture.add_to_campaign(&format!(
        "[schedule]\nwindow = \"{window}\"\ntimezone_column = \"tz\"\n"
    ));
    let campaign = fixture.campaign();
    let out = volley(&["send", &campaign, "--no-progress"]).await;
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}{}", text(&out.stderr));
    assert!(
        said.contains(&format!(
            "3 recipients wait for their sending window; the next opens at {opens}"
        )),
        "{said}"
    );
    assert_eq!(fixture.sink.count(), 0);

    let out = volley(&["status", &campaign, "--json"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["waiting"].as_u64(), Some(3), "{status}");
    assert_eq!(status["pending"].as_u64(), Some(0), "{status}");
    assert_eq!(
        status["next_window"].as_str(),
        Some(opens.as_str()),
        "{status}"
    );

    let out = volley(&["status", &campaign]).await;
    let said = text(&out.stdout);
    assert!(said.contains("  waiting               3"), "{said}");
    assert!(
        said.contains(&format!(
            "3 recipients waiting for their sending window; the next window opens at {opens}"
        )),
        "{said}"
    );

    // The reports count them too.
    let out = volley(&["report", &campaign]).await;
    let table = text(&out.stdout);
    let row = table
        .lines()
        .find(|l| l.trim_start().starts_with("Waiting"));
    assert!(
        row.is_some_and(|l| l.contains('3') && l.contains("local sending window")),
        "{table}"
    );
    let out = volley(&["report", &campaign, "--format", "csv"]).await;
    let csv = text(&out.stdout);
    assert!(csv.lines().any(|l| l.ends_with(",waiting,3")), "{csv}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timezone_column_the_list_lacks_is_refused_before_loading() {
    let mut fixture =
        Fixture::new("email,name\nann@a.example,Ann\n", crate::support::PASSWORD).await;
    fixture.add_to_campaign("[schedule]\nwindow = \"09:00-17:00\"\ntimezone_column = \"zone\"\n");
    let out = volley(&["send", &fixture.campaign(), "--no-progress"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let said = text(&out.stderr);
    assert!(
        said.contains(
            "line 1: no column \"zone\" for [schedule] timezone_column (found: email, name)"
        ),
        "{said}"
    );
    assert_eq!(fixture.sink.count(), 0);
}
