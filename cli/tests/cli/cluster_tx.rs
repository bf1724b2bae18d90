//! The transactional lane on a cluster: two `volley serve` nodes on one PostgreSQL (the test
//! kit's throwaway server), each with the lane and its own API, curl posting the messages.
//! Every node is a front door: messages posted to node a reach the relay once each, those
//! of the domains node b holds sent by b (its own `/metrics` counts them). A node killed
//! with SIGKILL right after its 202s loses nothing: the other node sends what it left, and
//! answers for the messages' ids.

use crate::api::sha256sum;
use crate::api_messages::{free_port, get, post};
use crate::cluster::Rig;
use crate::support::{arrivals, psql_or_error};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use volley_testkit::sink::SinkConfig;

const SEND: &str = "send-secret-for-the-shop";
const READ: &str = "read-secret-for-the-dashboard";
/// The bound on every wait of these tests: generous, so a busy machine never fails them.
const WAIT: Duration = Duration::from_secs(120);
/// Domains of the messages (and of the bulk list in the first test).
const DOMAINS: usize = 10;

/// One node's ports: the API's and the open metrics'.
struct Ports {
    api: u16,
    metrics: u16,
}

/// Writes the lane's campaign file and the tokens file beside the fixture's campaign.
fn write_lane(rig: &Rig) {
    let fixture = &rig.fixture;
    std::fs::write(fixture.path("tx.txt"), "Your code is {{ code }}.\n").unwrap();
    std::fs::write(fixture.path("none.csv"), "email\n").unwrap();
    fixture
        .toml
        .clone()
        .id("shop-tx")
        .subject("Your code {{ code }}")
        .text("tx.txt")
        .recipients("none.csv")
        .write(&fixture.path("tx.toml"));
    std::fs::write(
        fixture.path("tokens.toml"),
        format!(
            "[[token]]\nname = \"shop\"\nscopes = [\"send\"]\nsha256 = \"{}\"\n\n\
             [[token]]\nname = \"dashboard\"\nscopes = [\"read\"]\nsha256 = \"{}\"\n",
            sha256sum(SEND),
            sha256sum(READ)
        ),
    )
    .unwrap();
}

/// Starts node `name` with the lane and an API, serving `campaigns` (TOML array items).
fn start_node(rig: &mut Rig, name: &str, campaigns: &str) -> Ports {
    let ports = Ports {
        api: free_port(),
        metrics: free_port(),
    };
    let api = format!(
        "\n[api]\nbind = \"127.0.0.1:{}\"\ntokens_file = \"{}\"\ntransactional = \"{}\"\n\
         metrics_bind = \"127.0.0.1:{}\"\n",
        ports.api,
        rig.fixture.path("tokens.toml").display(),
        rig.fixture.path("tx.toml").display(),
        ports.metrics
    );
    let file: PathBuf = rig.serve_file_with(name, "3s", campaigns, &api);
    rig.start_file(name, &file, &[]);
    ports
}

/// Waits (at most [`WAIT`]) until `done` holds, failing with `what` and the nodes' logs.
async fn until(rig: &Rig, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what}\n--- a:\n{}\n--- b:\n{}",
            rig.log("a"),
            rig.log("b")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether something listens on `port` (the node's API is up).
fn listening(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// Posts one message to `to` through the API on `port` (idempotency key `key`); its id.
fn send(port: u16, to: &str, key: &str) -> String {
    let body = format!(r#"{{"to": "{to}", "data": {{"code": "{key}"}}}}"#);
    let header = format!("Idempotency-Key: {key}");
    let (code, accepted) = post(
        &format!("http://127.0.0.1:{port}/api/messages"),
        SEND,
        &body,
        &["-H", &header],
    );
    assert_eq!(code, 202, "{accepted}");
    accepted["id"].as_str().unwrap().to_owned()
}

/// The lane's messages node `metrics` says it delivered (`volley_messages_total`).
fn lane_delivered(metrics: u16) -> f64 {
    let (code, text) = get(&format!("http://127.0.0.1:{metrics}/metrics"), READ);
    assert_eq!(code, 200, "{text}");
    text.lines()
        .filter(|l| l.starts_with("volley_messages_total{"))
        .filter(|l| l.contains("campaign=\"shop-tx\"") && l.contains("outcome=\"delivered\""))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// The lane's addresses, one per domain.
fn lane_addresses() -> Vec<String> {
    (0..DOMAINS)
        .map(|d| format!("vip{d}@d{d}.example"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_posted_to_one_node_are_sent_once_some_by_the_node_holding_their_domain() {
    let mut csv = String::from("email,name\n");
    for i in 0..200 {
        csv.push_str(&format!("user{i}@d{}.example,U{i}\n", i % DOMAINS));
    }
    let config = SinkConfig {
        reply_delay: Duration::from_millis(15),
        pipelining: false,
        ..SinkConfig::default()
    };
    let mut rig = Rig::with_list("cluster_tx_front", &csv, 200, config).await;
    write_lane(&rig);
    // Node b sends a bulk campaign and so holds its share of the domains; node a has no
    // campaign of its own: it takes the messages.
    let campaign = format!("\"{}\"", rig.fixture.campaign());
    let b = start_node(&mut rig, "b", &campaign);
    let a = start_node(&mut rig, "a", "");
    let held_by_b = "SELECT count(*) FROM leases WHERE owner = 'b' AND name LIKE 'domain:%'";
    until(&rig, "node b never held a domain", || {
        // The schema may not be there yet.
        psql_or_error(&rig.pg, "cluster_tx_front", held_by_b).is_ok_and(|n| n != "0")
    })
    .await;
    until(&rig, "the nodes' APIs never came up", || {
        listening(a.api) && listening(b.api)
    })
    .await;

    let addresses = lane_addresses();
    let ids: Vec<String> = addresses
        .iter()
        .enumerate()
        .map(|(i, to)| send(a.api, to, &format!("order-{i}")))
        .collect();
    let arrived_all = || {
        let arrived = arrivals(rig.sink());
        addresses.iter().all(|a| arrived.contains_key(a))
    };
    until(&rig, "the messages never all arrived", arrived_all).await;
    // Each id is known to both nodes; each says delivered.
    for id in &ids {
        let url = |port: u16| format!("http://127.0.0.1:{port}/api/messages/{id}");
        until(&rig, "a message never recorded as delivered", || {
            get(&url(a.api), READ).1.contains("\"delivered\"")
        })
        .await;
        assert!(get(&url(b.api), READ).1.contains("\"delivered\""));
    }
    rig.sink()
        .wait_for(200 + DOMAINS, WAIT)
        .await
        .unwrap_or_else(|e| panic!("the bulk never finished: {e}"));
    let arrived = arrivals(rig.sink());
    let twice: BTreeMap<_, _> = arrived.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent twice: {twice:?}");
    let (by_a, by_b) = (lane_delivered(a.metrics), lane_delivered(b.metrics));
    eprintln!("lane messages delivered: {by_a} by node a, {by_b} by node b");
    assert_eq!(by_a + by_b, DOMAINS as f64);
    assert!(by_b >= 1.0, "node b sent none of the messages node a took");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_after_its_202s_loses_no_message() {
    // A slow relay: node a is likely killed with messages in flight.
    let config = SinkConfig {
        reply_delay: Duration::from_millis(150),
        pipelining: false,
        ..SinkConfig::default()
    };
    let mut rig = Rig::with_list("cluster_tx_kill", "email,name\n", 0, config).await;
    write_lane(&rig);
    let a = start_node(&mut rig, "a", "");
    let b = start_node(&mut rig, "b", "");
    until(&rig, "the nodes' APIs never came up", || {
        listening(a.api) && listening(b.api)
    })
    .await;
    let addresses = lane_addresses();
    let ids: Vec<String> = addresses
        .iter()
        .enumerate()
        .map(|(i, to)| send(a.api, to, &format!("order-{i}")))
        .collect();
    rig.signal("a", "-KILL");
    assert_eq!(rig.exit_of("a").await, None, "killed");
    // Node b sends whatever a left, and answers for every id.
    for id in &ids {
        let url = format!("http://127.0.0.1:{}/api/messages/{id}", b.api);
        until(&rig, "a message of the killed node never delivered", || {
            get(&url, READ).1.contains("\"delivered\"")
        })
        .await;
    }
    let arrived = arrivals(rig.sink());
    for address in &addresses {
        let n = arrived.get(address).copied().unwrap_or(0);
        // Twice only when a was killed between the relay's 250 and recording it.
        assert!((1..=2).contains(&n), "{address} arrived {n} times");
    }
    let duplicates: usize = arrived.values().map(|n| n - 1).sum();
    let by_b = lane_delivered(b.metrics);
    eprintln!("kill -9 after the 202s: {duplicates} duplicate(s) of {DOMAINS}; {by_b} sent by b");
    // Ten messages over one slow connection take seconds: a was killed long before.
    assert!(by_b >= 1.0, "node b sent none of what the killed node took");
}
