//! Due retries on a cluster node (issue 19): a node reads the due retries of the domains it
//! holds, by domain. Here another node holds `big.example`, whose 600 deferred recipients
//! fell due before the node's own five of `small.example`: a first page of "all due
//! retries" (512) would hold none of the node's, and it would never send them. It sends
//! its five, and nothing of the domain it does not hold.

use crate::support::{psql, text, volley, Fixture, PASSWORD};
use std::process::Command;
use std::time::{Duration, Instant};
use volley_testkit::postgres::TempCluster;
use volley_testkit::sink::SinkConfig;

/// The bound on every wait of this test.
const WAIT: Duration = Duration::from_secs(120);

/// 600 recipients at `big.example`, then 5 at `small.example`.
fn big_and_small() -> String {
    let mut csv = String::from("email,name\n");
    for i in 0..600 {
        csv.push_str(&format!("user{i}@big.example,Big{i}\n"));
    }
    for i in 0..5 {
        csv.push_str(&format!("user{i}@small.example,Small{i}\n"));
    }
    csv
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_sends_its_own_due_retries_when_most_due_retries_are_another_nodes() {
    let pg = TempCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let url = pg.create_database("due").unwrap_or_else(|e| panic!("{e}"));
    let url = url.replace(&format!(":{}@", pg.password()), "@");
    let mut fixture = Fixture::with_sink(&big_and_small(), PASSWORD, SinkConfig::default()).await;
    std::fs::write(fixture.path("db-password"), pg.password()).unwrap();
    std::fs::set_permissions(
        fixture.path("db-password"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    fixture.add_to_campaign(&format!(
        "[store]\nurl = \"{url}\"\npassword_file = \"db-password\"\nlocal_dir = \"local\""
    ));
    let campaign = fixture.campaign();
    let load = volley().args(["load", &campaign]).output().unwrap();
    assert!(load.status.success(), "{}", text(&load.stderr));

    // Every recipient deferred and due: big.example's an hour ago, small.example's a
    // minute ago; big.example leased by a node that is busy elsewhere.
    psql(
        &pg,
        "due",
        "UPDATE recipients SET state = 'deferred', attempts = 1, \
         first_attempt = now() - interval '2 hours', \
         next_attempt = CASE WHEN domain = 'big.example' \
             THEN now() - interval '1 hour' + seq * interval '1 millisecond' \
             ELSE now() - interval '1 minute' END",
    );
    psql(
        &pg,
        "due",
        "INSERT INTO leases (name, owner, until) \
         VALUES ('domain:big.example', 'ghost', now() + interval '1 hour')",
    );
    assert_eq!(
        psql(
            &pg,
            "due",
            "SELECT count(*) FROM recipients WHERE state = 'deferred' AND next_attempt <= now()"
        ),
        "605"
    );

    let (mut node, log) = crate::cluster_quota::start_node(&fixture, &url, "small-one");
    let deadline = Instant::now() + WAIT;
    while fixture.sink.count() < 5 {
        if Instant::now() >= deadline || node.try_wait().unwrap().is_some() {
            let _ = node.kill();
            panic!(
                "{} of the node's 5 due retries sent:\n{}",
                fixture.sink.count(),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Command::new("kill")
        .args(["-TERM", &node.id().to_string()])
        .status()
        .unwrap();
    let waited = tokio::time::timeout(WAIT, tokio::task::spawn_blocking(move || node.wait()))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(waited.code(), Some(0));
    let domains: Vec<String> = fixture
        .sink
        .received()
        .into_iter()
        .flat_map(|m| m.rcpt_to)
        .map(|r| {
            r.rsplit_once('@')
                .map(|(_, d)| d.to_owned())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(domains.len(), 5, "{domains:?}");
    assert!(domains.iter().all(|d| d == "small.example"), "{domains:?}");
    assert_eq!(
        psql(
            &pg,
            "due",
            "SELECT count(*) FROM recipients WHERE domain = 'small.example' AND state = 'delivered'"
        ),
        "5"
    );
}
