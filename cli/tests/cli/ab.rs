//! Test then winner through the binary: `volley send` sends the test share and holds the
//! rest, clicks arrive over HTTP at the tracking server, `volley ab decide` gives the verdict,
//! and the next `volley send` after `[ab] wait` sends the remainder with the winner. Then
//! `volley report` shows it in every format.

use crate::support::{arrivals, list, output_of, text, Fixture};
use crate::tracking::{http, tracked_campaign, tracking_path};

const KEY: &str = "cli-ab-test-key-0123456789abcdef";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_then_winner_sends_the_remainder_with_the_variant_people_clicked() {
    let mut fixture = Fixture::new(&list(200), crate::support::PASSWORD).await;
    let variants = "\n[[variant]]\nid = \"A\"\nsubject = \"Spring sale, version A\"\n\n\
         [[variant]]\nid = \"B\"\nsubject = \"Spring sale, version B\"\n\n\
         [ab]\ntest_share = 0.5\nwait = \"2s\"\nmin_per_variant = 20\n";
    let (server, addr, base) = tracked_campaign(&mut fixture, KEY, 170, variants);
    let campaign = fixture.campaign();
    let env = [("VOLLEY_TRACKING_KEY", KEY)];

    // The test share: half the list, split evenly; the other half is held.
    let send = output_of(&["send", &campaign, "--no-progress"], &env).await;
    assert_eq!(
        send.status.code(),
        Some(0),
        "{}{}",
        text(&send.stdout),
        text(&send.stderr)
    );
    let test_share = fixture.sink.received();
    assert_eq!(test_share.len(), 100);
    let subject_of = |data: &[u8]| {
        let data = String::from_utf8_lossy(data);
        if data.contains("Subject: Spring sale, version A") {
            'A'
        } else if data.contains("Subject: Spring sale, version B") {
            'B'
        } else {
            '?'
        }
    };
    let a = test_share
        .iter()
        .filter(|m| subject_of(&m.data) == 'A')
        .count();
    assert_eq!((a, test_share.len() - a), (50, 50));
    assert!(test_share.iter().all(|m| {
        let data = String::from_utf8_lossy(&m.data);
        let variant = subject_of(&m.data);
        data.contains("Feedback-ID: ") && data.contains(&format!(":{variant}:volley:"))
    }));

    // People click B far more often than A: 30 of 50 against 5 of 50.
    let mut clicks = Vec::new();
    let (mut a_clicks, mut b_clicks) = (0, 0);
    for message in &test_share {
        let data = String::from_utf8_lossy(&message.data).replace("=\r\n", "");
        let wanted = match subject_of(&message.data) {
            'A' if a_clicks < 5 => {
                a_clicks += 1;
                true
            }
            'B' if b_clicks < 30 => {
                b_clicks += 1;
                true
            }
            _ => false,
        };
        if wanted {
            clicks.push(format!(
                "/c/{}",
                tracking_path(&data, &format!("{base}/c/"), '"')
            ));
        }
    }
    let mut statuses = Vec::new();
    for path in &clicks {
        statuses.push(http(&addr, "GET", path, "").await.status);
    }
    assert!(statuses.iter().all(|s| *s == 302), "{statuses:?}");

    let decide = output_of(&["ab", "decide", &campaign, "--json"], &[]).await;
    assert_eq!(decide.status.code(), Some(0), "{}", text(&decide.stderr));
    let verdict: serde_json::Value = serde_json::from_slice(&decide.stdout).unwrap();
    assert_eq!(verdict["verdict"], "winner", "{verdict}");
    assert_eq!(verdict["winner"], "B", "{verdict}");
    assert_eq!(verdict["metric"], "clicks", "{verdict}");
    assert!(verdict["p_value"].as_f64().unwrap() < 0.05, "{verdict}");
    assert_eq!(verdict["held"], 100, "{verdict}");
    let b = &verdict["variants"][1];
    assert_eq!(
        (
            b["id"].as_str(),
            b["delivered"].as_u64(),
            b["clicks"].as_u64()
        ),
        (Some("B"), Some(50), Some(30))
    );
    assert!((b["rate"].as_f64().unwrap() - 0.6).abs() < 1e-9, "{b}");
    assert!(b["ci_low"].as_f64().unwrap() < 0.6 && b["ci_high"].as_f64().unwrap() > 0.6);
    assert!(b["prob_best"].as_f64().unwrap() > 0.99, "{b}");

    // After the wait, the next send decides and sends the remainder, all of it with B.
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    let send = output_of(&["send", &campaign, "--no-progress"], &env).await;
    assert_eq!(
        send.status.code(),
        Some(0),
        "{}{}",
        text(&send.stdout),
        text(&send.stderr)
    );
    let all = fixture.sink.received();
    assert_eq!(all.len(), 200);
    assert!(
        arrivals(&fixture.sink).values().all(|n| *n == 1),
        "each recipient once"
    );
    let remainder = &all[100..];
    assert!(remainder.iter().all(|m| subject_of(&m.data) == 'B'));

    let decide = output_of(&["ab", "decide", &campaign, "--json"], &[]).await;
    let verdict: serde_json::Value = serde_json::from_slice(&decide.stdout).unwrap();
    assert_eq!(verdict["held"], 0, "{verdict}");
    // The verdict stays the test's: the remainder, all B, is no random split to compare.
    assert_eq!(verdict["verdict"], "winner", "{verdict}");
    assert_eq!(verdict["variants"][1]["delivered"], 50, "{verdict}");
    assert_eq!(verdict["decision"]["how"], "winner", "{verdict}");
    assert_eq!(verdict["decision"]["variant"], "B", "{verdict}");
    assert_eq!(verdict["decision"]["released"], 100, "{verdict}");

    // The report, through the server that holds the store, in every format.
    let json = output_of(&["report", &campaign, "--format", "json"], &[]).await;
    assert_eq!(json.status.code(), Some(0), "{}", text(&json.stderr));
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["counts"]["delivered"], 200, "{report}");
    assert_eq!(report["variants"][0]["recipients"], 50, "{report}");
    assert_eq!(report["variants"][1]["recipients"], 150, "{report}");
    assert_eq!(
        report["variants"][1]["engagement"]["clicked"], 30,
        "{report}"
    );
    assert_eq!(report["domains"].as_array().unwrap().len(), 10, "{report}");
    assert_eq!(report["other_domains"]["recipients"], 160, "{report}");
    let table = output_of(&["report", &campaign], &[]).await;
    let table = text(&table.stdout);
    assert!(table.contains("B"), "{table}");
    let csv = output_of(&["report", &campaign, "--format", "csv"], &[]).await;
    let csv = text(&csv.stdout);
    assert!(csv.starts_with("section,item,metric,value"), "{csv}");
    assert!(csv.contains("variant,B,delivered,150"), "{csv}");
    let html_file = fixture.path("report.html");
    let html = output_of(
        &[
            "report",
            &campaign,
            "--format",
            "html",
            "--out",
            &html_file.display().to_string(),
        ],
        &[],
    )
    .await;
    assert_eq!(html.status.code(), Some(0), "{}", text(&html.stderr));
    let page = std::fs::read_to_string(&html_file).unwrap();
    if let Some(dir) = std::env::var_os("VOLLEY_REPORT_SCREENSHOTS") {
        // For looking at a real campaign's report (the Chromium test checks the rendering).
        std::fs::copy(&html_file, std::path::Path::new(&dir).join("ab-flow.html")).unwrap();
    }
    assert!(page.contains("data-chart=\"timeline\"") && page.contains("data-chart=\"rates\""));
    drop(server);
}
