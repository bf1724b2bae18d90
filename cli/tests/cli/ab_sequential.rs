//! Sequential A/B verdicts through the binary: an independent Python implementation of the
//! mixture SPRT clicks tracked links in batches and checks `volley ab decide --json` at every
//! look (`scripts/ab-check-sequential.py`, stdlib only: `python3` must be installed); and one
//! complaint among 100 deliveries vetoes nothing and names no winner.

use crate::support::{list, output_of, text, Fixture};
use crate::tracking::{tracked_campaign, tracking_path};
use std::collections::BTreeMap;

const KEY: &str = "cli-ab-sequential-key-0123456789abcdef";

/// The variant a delivered message is ("A" or "B"), by its subject.
fn variant_of(data: &[u8]) -> &'static str {
    let data = String::from_utf8_lossy(data);
    if data.contains("Subject: Version A") {
        "A"
    } else if data.contains("Subject: Version B") {
        "B"
    } else {
        "?"
    }
}

const VARIANTS: &str = "\n[[variant]]\nid = \"A\"\nsubject = \"Version A\"\n\n\
     [[variant]]\nid = \"B\"\nsubject = \"Version B\"\n\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_independent_msprt_agrees_with_ab_decide_at_every_look() {
    let mut fixture = Fixture::new(&list(400), crate::support::PASSWORD).await;
    let sections = format!(
        "{VARIANTS}[ab]\ntest_share = 0.5\nwait = \"1h\"\nmin_per_variant = 20\n\
         on_inconclusive = \"hold\"\n"
    );
    let (_server, addr, base) = tracked_campaign(&mut fixture, KEY, 300, &sections);
    let campaign = fixture.campaign();
    let env = [("VOLLEY_TRACKING_KEY", KEY)];
    let send = output_of(&["send", &campaign, "--no-progress"], &env).await;
    assert_eq!(send.status.code(), Some(0), "{}", text(&send.stderr));
    let test_share = fixture.sink.received();
    assert_eq!(test_share.len(), 200);

    // One tracked link per delivered message, by variant, for the script to click.
    let mut links: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for message in &test_share {
        let data = String::from_utf8_lossy(&message.data).replace("=\r\n", "");
        let path = format!("/c/{}", tracking_path(&data, &format!("{base}/c/"), '"'));
        links
            .entry(variant_of(&message.data))
            .or_default()
            .push(path);
    }
    assert_eq!(links.keys().copied().collect::<Vec<_>>(), ["A", "B"]);
    let clicks = fixture.path("clicks.json");
    std::fs::write(&clicks, serde_json::to_string(&links).unwrap()).unwrap();

    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scripts/ab-check-sequential.py"
    );
    let volley = env!("CARGO_BIN_EXE_volley");
    let clicks = clicks.display().to_string();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .args([script, volley, &campaign, &addr, &clicks])
            .args(["--rates", "A=0.1,B=0.45", "--looks", "6", "--seed", "7"])
            .envs(volley_testkit::store::command_env())
            .env_remove("VOLLEY_LOG")
            .output()
            .expect("python3 runs (install it: apt-get install -y python3)")
    })
    .await
    .unwrap();
    let said = text(&output.stdout);
    assert!(output.status.success(), "{said}{}", text(&output.stderr));
    assert!(said.contains("6 looks agree"), "{said}");
    // Early looks go on; by the last one B's lead is decisive.
    let lines: Vec<&str> = said.lines().collect();
    assert!(
        lines[0].contains("inconclusive") || lines[0].contains("too few"),
        "{said}"
    );
    assert!(lines[5].contains("winner B"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_complaint_in_a_hundred_deliveries_vetoes_nothing_and_names_no_winner() {
    let mut fixture = Fixture::new(&list(400), crate::support::PASSWORD).await;
    fixture.add_to_campaign(&format!(
        "{VARIANTS}[ab]\ntest_share = 0.5\nwait = \"1h\"\nmax_complaint_rate = 0.003\n"
    ));
    let campaign = fixture.campaign();
    let send = output_of(&["send", &campaign, "--no-progress"], &[]).await;
    assert_eq!(send.status.code(), Some(0), "{}", text(&send.stderr));
    let test_share = fixture.sink.received();
    assert_eq!(test_share.len(), 200);
    let to_b = test_share
        .iter()
        .find(|m| variant_of(&m.data) == "B")
        .unwrap();
    // The feedback loop returns the original, found by its Message-ID.
    let data = String::from_utf8_lossy(&to_b.data).into_owned();
    let message_id = tracking_path(&data, "Message-ID: <", '>');
    let fixtures = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/dsn/arf-complaint.eml"
    );
    let rcpt = to_b.rcpt_to[0].clone();
    let arf = std::fs::read_to_string(fixtures)
        .unwrap()
        .replace("bounces+KKKK@bounce.example.com", &to_b.mail_from)
        .replace("Complainer@MailProvider.example", &rcpt)
        .replace("Complainer@mailprovider.example", &rcpt)
        .replace("abc123@example.com", &message_id);
    let eml = fixture.path("arf.eml");
    std::fs::write(&eml, arf).unwrap();
    let ingest = output_of(
        &[
            "bounces",
            "ingest",
            "--campaign",
            &campaign,
            &eml.display().to_string(),
        ],
        &[],
    )
    .await;
    assert_eq!(ingest.status.code(), Some(0), "{}", text(&ingest.stderr));

    let decide = output_of(&["ab", "decide", &campaign, "--json"], &[]).await;
    assert_eq!(decide.status.code(), Some(0), "{}", text(&decide.stderr));
    let verdict: serde_json::Value = serde_json::from_slice(&decide.stdout).unwrap();
    let b = &verdict["variants"][1];
    assert_eq!(
        (b["id"].as_str(), b["delivered"].as_u64()),
        (Some("B"), Some(100)),
        "{verdict}"
    );
    // 1 % seen against a 0.3 % limit, but no evidence: not vetoed.
    assert!(
        (b["complaint_rate"].as_f64().unwrap() - 0.01).abs() < 1e-12,
        "{verdict}"
    );
    let complaints = &b["guardrails"][2];
    assert_eq!(complaints["limit"], "complaint_rate", "{verdict}");
    assert_eq!(complaints["events"], 1, "{verdict}");
    assert_eq!(complaints["vetoed"], false, "{verdict}");
    assert!(complaints["p_value"].as_f64().unwrap() > 0.05, "{verdict}");
    assert_eq!(b["exceeded"], serde_json::json!([]), "{verdict}");
    assert!(b["vetoed"].is_null(), "{verdict}");
    assert!(verdict["winner"].is_null(), "{verdict}");
    assert_ne!(verdict["stop"], "vetoed", "{verdict}");
    assert_eq!(verdict["method"], "sequential", "{verdict}");

    let table = output_of(&["ab", "decide", &campaign], &[]).await;
    let table = text(&table.stdout);
    assert!(!table.contains("cannot win"), "{table}");
    assert!(
        !table.contains("vetoed") && !table.contains("Stopped"),
        "{table}"
    );
}
