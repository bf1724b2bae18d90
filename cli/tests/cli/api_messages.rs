//! The transactional lane and `/metrics` over HTTP, driven with curl (an HTTP client nobody
//! here wrote) against the real `volley serve`: while a bulk campaign fills a slow relay, a
//! message posted to `/api/messages` reaches the relay before the bulk is done (asserted on
//! the order of arrival at the relay), its status says delivered with the relay's 250, bad
//! input gets a problem naming the field, and `/metrics` parsed by Python's
//! `prometheus_client` (an independent OpenMetrics parser) counts what was sent.

use crate::support::{list, text, volley, Fixture, PASSWORD};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use volley_testkit::campaign::ServeToml;
use volley_testkit::sink::SinkConfig;

const SEND: &str = "send-secret-for-the-shop";
const READ: &str = "read-secret-for-the-dashboard";
const BULK: usize = 300;

/// A free loopback port (bound, then let go for the server to take).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs curl with `args`; its output (`-w` lines included). Fails loudly when curl is missing.
fn curl(args: &[&str]) -> String {
    let output = std::process::Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "30"])
        .args(args)
        .output()
        .expect("curl is needed by this test: apt-get install -y curl");
    assert!(
        output.status.success(),
        "curl {args:?}: {}",
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// POSTs `body` to `url` with the bearer `secret`; the status code and the body.
pub(crate) fn post(
    url: &str,
    secret: &str,
    body: &str,
    extra: &[&str],
) -> (u16, serde_json::Value) {
    let auth = format!("Authorization: Bearer {secret}");
    let mut args = vec![
        "-X",
        "POST",
        "-H",
        &auth,
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        body,
        "-w",
        "\n%{http_code}",
    ];
    args.extend_from_slice(extra);
    args.push(url);
    split(&curl(&args))
}

pub(crate) fn get(url: &str, secret: &str) -> (u16, String) {
    let auth = format!("Authorization: Bearer {secret}");
    let out = curl(&["-H", &auth, "-w", "\n%{http_code}", url]);
    let (body, code) = out.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap(), body.to_owned())
}

fn split(out: &str) -> (u16, serde_json::Value) {
    let (body, code) = out.rsplit_once('\n').unwrap();
    let json = serde_json::from_str(body).unwrap_or(serde_json::Value::Null);
    (code.trim().parse().unwrap(), json)
}

/// Writes the lane's campaign, the tokens file and the serve file; returns the API's port.
fn write_files(fixture: &Fixture) -> (u16, u16) {
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
            crate::api::sha256sum(SEND),
            crate::api::sha256sum(READ)
        ),
    )
    .unwrap();
    let (port, metrics) = (free_port(), free_port());
    // The store as the engine under test keeps it (`VOLLEY_TEST_STORE`), then the API.
    let serve = ServeToml::new("campaign.volley")
        .campaign("campaign.toml")
        .write(&fixture.path("serve.toml"));
    let mut text = std::fs::read_to_string(&serve).unwrap();
    text.push_str(&format!(
        "\n[api]\nbind = \"127.0.0.1:{port}\"\ntokens_file = \"tokens.toml\"\n\
         transactional = \"tx.toml\"\nmetrics_bind = \"127.0.0.1:{metrics}\"\n"
    ));
    std::fs::write(&serve, text).unwrap();
    (port, metrics)
}

fn start_server(fixture: &Fixture) -> Child {
    volley()
        .args([
            "serve",
            "--config",
            &fixture.path("serve.toml").display().to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn stop(server: Child) {
    let pid = server.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let stopped = server.wait_with_output().unwrap();
    assert_eq!(stopped.status.code(), Some(0), "{}", text(&stopped.stderr));
}

/// Waits (at most a minute) until `done` holds, failing with `what`.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_posted_message_overtakes_the_bulk_send_and_metrics_count_it() {
    let config = SinkConfig {
        reply_delay: Duration::from_millis(4),
        pipelining: false,
        ..SinkConfig::default()
    };
    let fixture = Fixture::with_sink(&list(BULK), PASSWORD, config).await;
    let (port, metrics_port) = write_files(&fixture);
    let mut server = start_server(&fixture);
    fixture.wait_for_arrivals(20, &mut server).await;
    let base = format!("http://127.0.0.1:{port}");

    let (code, accepted) = post(
        &format!("{base}/api/messages"),
        SEND,
        r#"{"to": "vip@z.example", "data": {"code": "493021"}}"#,
        &["-H", "Idempotency-Key: order-1"],
    );
    assert_eq!(code, 202, "{accepted}");
    let id = accepted["id"].as_str().unwrap().to_owned();

    // The message reaches the relay while most of the bulk is still to come.
    until("the transactional message never arrived", || {
        fixture
            .sink
            .received()
            .iter()
            .any(|r| r.rcpt_to == ["vip@z.example"])
    })
    .await;
    let at_arrival = fixture.sink.count();
    assert!(
        at_arrival < BULK / 2,
        "it arrived {at_arrival}th, behind most of the bulk"
    );
    let message = fixture
        .sink
        .received()
        .into_iter()
        .find(|r| r.rcpt_to == ["vip@z.example"])
        .unwrap();
    assert!(message.text().contains("Your code is 493021."));

    // A retry with the same key gets the same id; the status says delivered with the 250.
    let (code, again) = post(
        &format!("{base}/api/messages"),
        SEND,
        r#"{"to": "vip@z.example", "data": {"code": "493021"}}"#,
        &["-H", "Idempotency-Key: order-1"],
    );
    assert_eq!((code, again["id"].as_str()), (202, Some(id.as_str())));
    let url = format!("{base}/api/messages/{id}");
    until("never recorded as delivered", || {
        get(&url, READ).1.contains("\"delivered\"")
    })
    .await;
    let (code, body) = get(&url, READ);
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(code, 200, "{body}");
    assert_eq!(status["to"], "vip@z.example", "{status}");
    assert_eq!(status["last_reply"]["code"], 250, "{status}");

    // Bad input names its field; a read token cannot send.
    let (code, problem) = post(
        &format!("{base}/api/messages"),
        SEND,
        r#"{"to": "not an address", "data": {"code": "1"}}"#,
        &[],
    );
    assert_eq!(code, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "to", "{problem}");
    let (code, _) = post(
        &format!("{base}/api/messages"),
        READ,
        r#"{"to": "a@b.example", "data": {"code": "1"}}"#,
        &[],
    );
    assert_eq!(code, 403);

    // The bulk finishes; /metrics (read token) counts both campaigns' deliveries.
    fixture
        .sink
        .wait_for(BULK + 1, Duration::from_secs(120))
        .await
        .unwrap();
    until("the metrics never counted the bulk", || {
        get(&format!("{base}/metrics"), READ)
            .1
            .contains("campaign=\"cli-test\",destination=\"relay")
    })
    .await;
    let (code, metrics) = get(&format!("{base}/metrics"), READ);
    assert_eq!(code, 200);
    let (code, _) = get(&format!("{base}/metrics"), SEND);
    assert_eq!(code, 403, "a send token cannot read the metrics");
    // `[api] metrics_bind`: the same metrics without a token, and nothing else there.
    let open = curl(&[&format!("http://127.0.0.1:{metrics_port}/metrics")]);
    assert!(open.contains("volley_messages_total"), "{open}");
    let other = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("http://127.0.0.1:{metrics_port}/api/messages/1"),
    ]);
    assert_eq!(other, "404");
    stop(server);
    let parsed = parse_metrics(&metrics);
    let delivered = |campaign: &str| {
        parsed
            .iter()
            .filter(|(name, labels, _)| {
                name == "volley_messages_total"
                    && labels["campaign"] == campaign
                    && labels["outcome"] == "delivered"
            })
            .map(|(_, _, value)| value)
            .sum::<f64>()
    };
    assert_eq!(delivered("shop-tx"), 1.0, "{metrics}");
    assert!(delivered("cli-test") >= 1.0, "{metrics}");
    let accepted: f64 = parsed
        .iter()
        .filter(|(name, labels, _)| {
            name == "volley_transactional_messages_total" && labels["kind"] == "accepted"
        })
        .map(|(_, _, v)| v)
        .sum();
    assert_eq!(accepted, 1.0, "{metrics}");
    assert!(
        parsed
            .iter()
            .any(|(name, _, _)| name == "volley_store_write_seconds_count"),
        "{metrics}"
    );
}

/// Parses the OpenMetrics text with Python's `prometheus_client` (in the tests' venv);
/// every sample as (name, labels, value).
fn parse_metrics(metrics: &str) -> Vec<(String, std::collections::BTreeMap<String, String>, f64)> {
    use std::io::Write;
    let script = "import json, sys\n\
        from prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
        out = []\n\
        for family in text_string_to_metric_families(sys.stdin.read()):\n\
        \x20   for s in family.samples:\n\
        \x20       out.append([s.name, s.labels, s.value])\n\
        print(json.dumps(out))\n";
    let mut child = std::process::Command::new(crate::support::python_venv())
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the tests' Python venv");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client could not parse the metrics: {}\n{metrics}",
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
