//! A relay's hourly cap held by the cluster as a whole (issue 19): two `volley serve` nodes
//! send one campaign of 100 recipients through a relay whose `max_per_hour` is 30. Each node
//! sends only out of reservations counted in the shared `relay_usage`, so the relay (the
//! test SMTP server) receives 30 messages in all, not 30 from each node.

use crate::support::{list, psql, psql_or_error, relay_to, Fixture, PASSWORD};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use volley_testkit::postgres::TempCluster;
use volley_testkit::sink::SinkConfig;

/// The bound on every wait of this test.
const WAIT: Duration = Duration::from_secs(120);
/// The relay's hourly cap.
const CAP: usize = 30;

/// Starts serve node `name` on `url` serving the fixture's campaign; returns it and its log.
pub(crate) fn start_node(fixture: &Fixture, url: &str, name: &str) -> (Child, PathBuf) {
    let dir = fixture.path(name);
    std::fs::create_dir_all(&dir).unwrap();
    let serve = dir.join("serve.toml");
    std::fs::write(
        &serve,
        format!(
            "campaigns = [\"{}\"]\n\n[store]\nurl = \"{url}\"\npassword_file = \"{}\"\n\
             local_dir = \"local\"\n\n[cluster]\nnode = \"{name}\"\n",
            fixture.campaign(),
            fixture.path("db-password").display()
        ),
    )
    .unwrap();
    let log = dir.join("log");
    let child = crate::support::spawn_serve(&serve, &log, &[]);
    (child, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_through_one_relay_send_no_more_than_its_hourly_cap_in_all() {
    let pg = TempCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let url = pg
        .create_database("quota")
        .unwrap_or_else(|e| panic!("{e}"));
    let url = url.replace(&format!(":{}@", pg.password()), "@");
    let mut fixture = Fixture::with_sink(&list(100), PASSWORD, SinkConfig::default()).await;
    std::fs::write(fixture.path("db-password"), pg.password()).unwrap();
    std::fs::set_permissions(
        fixture.path("db-password"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let relay = relay_to(&fixture.sink, "starttls")
        .ca_file("ca.pem")
        .connections(2)
        .line(&format!("max_per_hour = {CAP}"));
    let toml = fixture.toml.clone().relay(relay).section(&format!(
        "[store]\nurl = \"{url}\"\npassword_file = \"db-password\"\nlocal_dir = \"local\""
    ));
    fixture.set_campaign(toml);
    let mut nodes = vec![
        start_node(&fixture, &url, "quota-a"),
        start_node(&fixture, &url, "quota-b"),
    ];
    let logs = |nodes: &[(Child, PathBuf)]| -> String {
        nodes
            .iter()
            .map(|(_, log)| std::fs::read_to_string(log).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n----\n")
    };
    // Both nodes reach the cap (each says the relay's limit paused it), the relay has the
    // cap's worth, and the shared count says so.
    let deadline = Instant::now() + WAIT;
    loop {
        let paused = nodes.iter().all(|(_, log)| {
            std::fs::read_to_string(log)
                .unwrap_or_default()
                .contains("relay limit reached")
        });
        // Until the first node has made the schema, there is no table to read.
        let used = psql_or_error(
            &pg,
            "quota",
            "SELECT coalesce(sum(messages), 0) FROM relay_usage",
        )
        .unwrap_or_default();
        if paused && fixture.sink.count() >= CAP && used == CAP.to_string() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sent {} (counted {used}):\n{}",
            fixture.sink.count(),
            logs(&nodes)
        );
        assert!(
            fixture.sink.count() <= CAP,
            "past the cap:\n{}",
            logs(&nodes)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (child, _) in &nodes {
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
    }
    for (child, log) in &mut nodes {
        let deadline = Instant::now() + WAIT;
        while child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "did not stop: {}", log.display());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert_eq!(fixture.sink.count(), CAP, "{}", logs(&nodes));
    assert_eq!(
        psql(&pg, "quota", "SELECT sum(messages) FROM relay_usage"),
        CAP.to_string(),
        "the unsent reservations were given back"
    );
    assert_eq!(
        psql(
            &pg,
            "quota",
            "SELECT count(*) FROM recipients WHERE state = 'delivered'"
        ),
        CAP.to_string()
    );
}
