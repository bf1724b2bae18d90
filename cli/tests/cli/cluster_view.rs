//! One view from anywhere (issue 19): a campaign sent by a `volley serve` node on
//! PostgreSQL is read from an empty folder on a "machine" that has only the database URL
//! (and `PGPASSWORD`): `volley status` (with the nodes), `report --format json`, `events`
//! and `ab decide` take the campaign's id instead of its file, their settings (the
//! variants, `[ab]`) coming from the published document, and answer as they do with the
//! file. An unknown id is refused by name, with the ids the store has published.

use crate::support::{list, text, volley, Fixture, PASSWORD};
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};
use volley_testkit::postgres::TempCluster;
use volley_testkit::sink::SinkConfig;

/// The bound on every wait of this test.
const WAIT: Duration = Duration::from_secs(120);

/// `volley ARGS` run in `dir` with only the database password in its environment.
async fn run_in(dir: &Path, password: &str, args: &[&str]) -> Output {
    let mut command = volley();
    command
        .current_dir(dir)
        .args(args)
        .env("PGPASSWORD", password);
    let run = tokio::task::spawn_blocking(move || command.output().unwrap());
    tokio::time::timeout(WAIT, run).await.unwrap().unwrap()
}

/// Its standard output, after checking it exited 0.
fn ok(output: &Output) -> String {
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    text(&output.stdout)
}

/// Polls `volley status ID --json` from `empty` until the test share is out and the rest
/// held for the verdict.
async fn wait_for_test_share(empty: &Path, password: &str, url: &str, log: &Path) {
    let deadline = Instant::now() + WAIT;
    loop {
        let output = run_in(
            empty,
            password,
            &["status", "view", "--store", url, "--json"],
        )
        .await;
        if output.status.success() {
            let status: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
            if status["delivered"].as_u64() > Some(0)
                && status["held"].as_u64() > Some(0)
                && status["pending"] == 0
            {
                return;
            }
        } else {
            // Until the node has published the campaign, its id is unknown.
            let said = text(&output.stderr);
            assert!(said.contains("no campaign \"view\" is published"), "{said}");
        }
        assert!(
            Instant::now() < deadline,
            "the test share never went out:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A JSON answer without what moves on between two runs: the report's time, the nodes'
/// heartbeat ages.
fn steady(json: &str) -> serde_json::Value {
    let mut value: serde_json::Value = serde_json::from_str(json).unwrap();
    if let Some(at) = value.get_mut("generated_at") {
        *at = 0.into();
    }
    for node in value["nodes"].as_array_mut().into_iter().flatten() {
        node["heartbeat_age_ms"] = 0.into();
    }
    value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_report_events_and_ab_decide_work_from_an_empty_folder_with_only_the_url() {
    let pg = TempCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let url = pg.create_database("view").unwrap_or_else(|e| panic!("{e}"));
    let url = url.replace(&format!(":{}@", pg.password()), "@");
    let password = pg.password().to_owned();
    let mut fixture = Fixture::with_sink(&list(40), PASSWORD, SinkConfig::default()).await;
    std::fs::write(fixture.path("db-password"), &password).unwrap();
    std::fs::set_permissions(
        fixture.path("db-password"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let toml = fixture.toml.clone().id("view").section(
        "[[variant]]\nid = \"A\"\nsubject = \"View, version A\"\n\n\
         [[variant]]\nid = \"B\"\nsubject = \"View, version B\"\n\n\
         [ab]\ntest_share = 0.5\nwait = \"1h\"\nmin_per_variant = 5\n",
    );
    fixture.set_campaign(toml.section(&format!(
        "[store]\nurl = \"{url}\"\npassword_file = \"db-password\"\nlocal_dir = \"local\""
    )));
    let (mut node, _) = crate::cluster_quota::start_node(&fixture, &url, "view-a");
    let empty = tempfile::tempdir().unwrap();
    let log = fixture.path("node-a").join("log");
    wait_for_test_share(empty.path(), &password, &url, &log).await;
    let stopped = std::process::Command::new("kill")
        .args(["-TERM", &node.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let code = tokio::time::timeout(WAIT, tokio::task::spawn_blocking(move || node.wait()))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(code.code(), Some(0));

    let here = empty.path();
    let campaign = fixture.campaign();
    let view = |args: &[&str]| -> Vec<String> {
        let mut with = args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
        with.extend(["--store".to_owned(), url.clone()]);
        with
    };
    let file_args = |args: &[&str]| -> Vec<String> {
        args.iter()
            .map(|a| {
                if *a == "view" {
                    campaign.clone()
                } else {
                    (*a).to_owned()
                }
            })
            .chain(["--store".to_owned(), url.clone()])
            .collect()
    };
    for args in [
        &["report", "view", "--format", "json"][..],
        &["events", "view"],
        &["events", "view", "--format", "csv"],
        &["ab", "decide", "view", "--json"],
        &["status", "view", "--json"],
    ] {
        let by_id = view(args);
        let by_id: Vec<&str> = by_id.iter().map(String::as_str).collect();
        let by_file = file_args(args);
        let by_file: Vec<&str> = by_file.iter().map(String::as_str).collect();
        let from_id = ok(&run_in(here, &password, &by_id).await);
        let from_file = ok(&run_in(fixture.dir.path(), &password, &by_file).await);
        if args
            .iter()
            .any(|a| a.contains("json") && !a.contains("jsonl"))
        {
            assert_eq!(steady(&from_id), steady(&from_file), "{args:?}");
        } else {
            assert_eq!(from_id, from_file, "{args:?}");
        }
        assert!(from_id.contains("view"), "{args:?}: {from_id}");
    }
    let decide: serde_json::Value = serde_json::from_str(&ok(&run_in(
        here,
        &password,
        &["ab", "decide", "view", "--store", &url, "--json"],
    )
    .await))
    .unwrap();
    assert!(decide["held"].as_u64() > Some(0), "{decide}");
    assert!(
        decide["decide_after"].is_string(),
        "[ab] wait came along: {decide}"
    );
    let report: serde_json::Value = serde_json::from_str(&ok(&run_in(
        here,
        &password,
        &["report", "view", "--store", &url, "--format", "json"],
    )
    .await))
    .unwrap();
    assert_eq!(
        report["variants"].as_array().map(Vec::len),
        Some(2),
        "{report}"
    );
    let events = ok(&run_in(here, &password, &["events", "view", "--store", &url]).await);
    let delivered = report["counts"]["delivered"].as_u64().unwrap();
    assert!(delivered > 0, "{report}");
    let lines = events
        .lines()
        .filter(|l| l.contains("\"delivered\""))
        .count();
    assert_eq!(lines as u64, delivered, "{events}");
    let status = ok(&run_in(here, &password, &["status", "view", "--store", &url]).await);
    assert!(status.contains("nodes (0 live of 1)"), "{status}");
    assert!(status.contains("view-a"), "{status}");
    assert!(
        std::fs::read_dir(here).unwrap().next().is_none(),
        "nothing written here"
    );

    let unknown = run_in(here, &password, &["status", "nosuch", "--store", &url]).await;
    assert_eq!(unknown.status.code(), Some(2));
    let said = text(&unknown.stderr);
    assert!(
        said.contains("no campaign \"nosuch\" is published"),
        "{said}"
    );
    assert!(said.contains("published: view"), "{said}");
    assert!(!said.contains(&password), "{said}");
}
