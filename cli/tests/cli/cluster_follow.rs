//! `volley send` on a cluster's database hands its campaign to the cluster and follows it:
//! the `volley serve` nodes running (with no campaign file of their own) take shares of it,
//! the send sends its own share and ends when every recipient is final. And the front doors
//! are stateless: a one-click unsubscribe taken by one node's tracking server stops the next
//! message to that address from another node.

use crate::cluster::Rig;
use crate::support::{text, volley};
use crate::tracking::{http, tracking_path};
use std::collections::BTreeSet;
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const KEY: &str = "cluster-tracking-key-0123456789abcdef";

/// Starts `volley send` on the rig's campaign; its output lands in the returned slot when it
/// ends.
fn spawn_send(rig: &Rig, campaign: &str) -> Arc<Mutex<Option<Output>>> {
    let child = volley()
        .args(["send", campaign, "--no-progress"])
        .current_dir(rig.fixture.dir.path())
        .env("VOLLEY_LOG", "info")
        .env("VOLLEY_TRACKING_KEY", KEY)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let slot = Arc::new(Mutex::new(None));
    let done = slot.clone();
    std::thread::spawn(move || {
        let output = child.wait_with_output().unwrap();
        *done.lock().unwrap() = Some(output);
    });
    slot
}

/// Runs `volley send` on `campaign` to its end, polling the status meanwhile; returns its
/// output and the nodes seen sending.
async fn send_to_the_end(rig: &Rig, campaign: &str) -> (Output, BTreeSet<String>) {
    let sent = spawn_send(rig, campaign);
    let mut senders = BTreeSet::new();
    let ended = sent.clone();
    rig.wait_for("the send to end", &mut senders, move |_| {
        ended.lock().unwrap().is_some()
    })
    .await;
    let output = sent.lock().unwrap().take().unwrap();
    (output, senders)
}

/// Waits until node `name`'s log says `needle`.
async fn wait_for_log(rig: &Rig, name: &str, needle: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !rig.log(name).contains(needle) {
        assert!(
            std::time::Instant::now() < deadline,
            "node {name} never said {needle:?}:\n{}",
            rig.log(name)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_hands_its_campaign_to_the_nodes_and_follows_it_to_the_end() {
    let mut rig = Rig::new("cluster_follow", 600, Duration::from_millis(10)).await;
    for name in ["a", "b"] {
        let file = rig.serve_file_with(name, "3s", "", "");
        rig.start_file(name, &file, &[]);
    }
    for name in ["a", "b"] {
        wait_for_log(&rig, name, "node registered").await;
    }
    let campaign = rig.fixture.campaign();
    let (output, senders) = send_to_the_end(&rig, &campaign).await;
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("delivered 600"), "{stdout}");
    let status = rig.status().await;
    assert_eq!(status["delivered"], 600, "{status}");
    assert!(
        senders.contains("a") && senders.contains("b"),
        "both serve nodes took shares: {senders:?}\n{stderr}"
    );
    assert_eq!(rig.duplicates(), 0);
    // The send was a node of its own while it ran; it left with its leases.
    let nodes = status["nodes"].as_array().unwrap();
    assert!(
        !nodes
            .iter()
            .any(|n| n["name"].as_str().is_some_and(|n| n.starts_with("send-"))),
        "{status}"
    );
    assert!(stderr.contains("node registered"), "{stderr}");
    rig.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsubscribe_taken_by_one_node_stops_the_next_message_from_another() {
    let mut rig = Rig::new("cluster_unsubscribe", 5, Duration::ZERO).await;
    // Node a: a front door (tracking) and a sending node, with no campaign file.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tracking =
        format!("[tracking]\nbind = \"127.0.0.1:{port}\"\nkey_env = \"VOLLEY_TRACKING_KEY\"");
    let file = rig.serve_file_with("a", "3s", "", &tracking);
    rig.start_file("a", &file, &[("VOLLEY_TRACKING_KEY", KEY)]);
    wait_for_log(&rig, "a", "node registered").await;
    let base = format!("http://127.0.0.1:{port}");
    std::fs::write(
        rig.fixture.path("body.html"),
        "<p>Hello {{ name }}, see <a href=\"https://shop.example/sale\">the sale</a>.</p>\n",
    )
    .unwrap();
    let tracked = rig.fixture.toml.clone().html("body.html").section(&format!(
        "[tracking]\nbase_url = \"{base}\"\nkey_env = \"VOLLEY_TRACKING_KEY\""
    ));
    rig.fixture.set_campaign(tracked.clone());
    let first = rig.fixture.campaign();
    let (output, _) = send_to_the_end(&rig, &first).await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));

    // The second campaign is loaded before the unsubscribe: only the check as each message
    // is composed can stop it.
    let second = rig.fixture.path("second.toml");
    tracked.clone().id("cli-test-2").write(&second);
    let second = second.display().to_string();
    let loaded =
        crate::support::output_of(&["load", &second], &[("VOLLEY_TRACKING_KEY", KEY)]).await;
    assert_eq!(loaded.status.code(), Some(0), "{}", text(&loaded.stderr));

    let message = rig
        .fixture
        .sink
        .received()
        .into_iter()
        .find(|m| m.rcpt_to[0] == "user0@d0.example")
        .unwrap();
    let data = String::from_utf8_lossy(&message.data).replace("=\r\n", "");
    let unsubscribe = format!("/u/{}", tracking_path(&data, &format!("{base}/u/"), '>'));
    let addr = format!("127.0.0.1:{port}");
    let page = http(&addr, "POST", &unsubscribe, "List-Unsubscribe=One-Click").await;
    assert_eq!(page.status, 200, "{}", page.text());

    // Node a stops; node b, which never saw the unsubscribe, sends the second campaign.
    rig.signal("a", "-TERM");
    assert_eq!(rig.exit_of("a").await, Some(0), "{}", rig.log("a"));
    let before = rig.fixture.sink.count();
    let file = rig.serve_file_with("b", "3s", &format!("\"{second}\""), "");
    rig.start_file("b", &file, &[("VOLLEY_TRACKING_KEY", KEY)]);
    let password = rig.pg.password().to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let status = loop {
        let output =
            crate::support::output_of(&["status", &second, "--json"], &[("PGPASSWORD", &password)])
                .await;
        let status: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
        if status["delivered"] == 4 && status["suppressed"] == 1 {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "node b never finished the second campaign: {status}\n{}",
            rig.log("b")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(status["pending"], 0, "{status}");
    let second_round: Vec<String> = rig.fixture.sink.received()[before..]
        .iter()
        .flat_map(|m| m.rcpt_to.clone())
        .collect();
    let logs = format!("a:\n{}\nb:\n{}", rig.log("a"), rig.log("b"));
    assert_eq!(second_round.len(), 4, "{second_round:?} {status}\n{logs}");
    assert!(
        !second_round.contains(&"user0@d0.example".to_owned()),
        "{second_round:?}"
    );
    rig.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destinations_back_off_is_taken_over_by_the_next_process_that_sends_there() {
    use volley_testkit::sink::{RateLimit, SinkConfig, ThrottleReply};
    let csv: String = std::iter::once("email,name\n".to_owned())
        .chain((0..30).map(|i| format!("user{i}@d0.example,Name{i}\n")))
        .collect();
    let config = SinkConfig {
        rate_limit: Some(RateLimit {
            messages: 5,
            per: Duration::from_secs(1),
            reply: ThrottleReply::Close421,
        }),
        ..SinkConfig::default()
    };
    let rig = Rig::with_list("cluster_backoff", &csv, 30, config).await;
    let first = rig.fixture.campaign();
    let (output, _) = send_to_the_end(&rig, &first).await;
    let said = text(&output.stderr);
    assert!(said.contains("throttled by the receiver"), "{said}");
    let saved = crate::support::psql(
        &rig.pg,
        "cluster_backoff",
        "SELECT count(*) FROM destination_backoff",
    );
    assert_eq!(saved.trim(), "1", "{said}");

    // A second campaign through the same relay, by another process: it starts from the
    // back-off the first one left, not from full speed.
    let second = rig.fixture.path("second.toml");
    rig.fixture.toml.clone().id("cli-test-2").write(&second);
    let second = second.display().to_string();
    let (output, _) = send_to_the_end(&rig, &second).await;
    let said = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{said}");
    assert!(
        said.contains("back-off taken over from the node that sent here before"),
        "{said}"
    );
}
