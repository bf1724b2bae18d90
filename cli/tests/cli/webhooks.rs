//! Webhooks out, end to end: `volley serve` POSTs a campaign's events to a real receiver
//! written in Python (`tests/webhook_receiver.py`: `http.server`, every signature checked
//! with the `standardwebhooks` package, installed in a venv under the target folder). The
//! receiver fails, then hangs past the timeout, then recovers: every event arrives, each
//! recipient's in order. Then a server killed with SIGKILL mid-batch and started again:
//! nothing lost.

use crate::support::{output_of, text, volley, Fixture, PASSWORD};
use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use volley_testkit::campaign::ServeToml;

/// The receiver's secret (any 24 to 64 random bytes, base64, after `whsec_`).
const SECRET: &str = "whsec_dm9sbGV5LXdlYmhvb2stdGVzdC1zZWNyZXQtMzI=";

/// The Python with `standardwebhooks` (the tests' venv).
fn python() -> &'static Path {
    crate::support::python_venv()
}

/// One request as the receiver logged it.
#[derive(Debug, serde::Deserialize)]
struct Request {
    n: u64,
    id: String,
    signature_ok: bool,
    answer: String,
    #[serde(rename = "type")]
    kind: String,
    events: Vec<serde_json::Value>,
}

/// The Python receiver, answering by `script`; killed on drop.
struct Receiver {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Receiver {
    fn start(dir: &Path, script: &str) -> Receiver {
        Receiver::start_with(dir, script, &[])
    }

    /// Like [`Receiver::start`], with the receiver's extra arguments (a certificate and
    /// its key: HTTPS).
    fn start_with(dir: &Path, script: &str, tls: &[&str]) -> Receiver {
        let log = dir.join("received.jsonl");
        let mut child = std::process::Command::new(python())
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/webhook_receiver.py"))
            .args([SECRET, &log.display().to_string(), script])
            .args(tls)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let port = first.trim().parse().unwrap_or_else(|_| {
            panic!("the receiver did not start: {first:?}");
        });
        Receiver { child, port, log }
    }

    /// Every request so far, in arrival order.
    fn requests(&self) -> Vec<Request> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    /// The events of the requests it answered with a 2xx (in arrival order), by id.
    fn taken(&self) -> Vec<serde_json::Value> {
        self.requests()
            .into_iter()
            .filter(|r| r.answer == "ok" || r.answer == "slow")
            .flat_map(|r| r.events)
            .collect()
    }

    /// Waits (at most two minutes) until the events taken satisfy `done`.
    async fn wait_until(&self, what: &str, done: impl Fn(&[serde_json::Value]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let taken = self.taken();
            if done(&taken) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: never came; the receiver saw {:#?}",
                self.requests()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A campaign of `csv` served by `volley serve`, with a webhook to `receiver` taking
/// `batch` events per request and waiting `timeout` for an answer.
fn serve_file(fixture: &Fixture, receiver: &Receiver, batch: u32, timeout: &str) -> String {
    let url = format!("http://127.0.0.1:{}/volley/events", receiver.port);
    serve_file_to(
        fixture,
        &url,
        &format!("batch = {batch}\ntimeout = \"{timeout}\"\n"),
    )
}

/// A campaign served by `volley serve`, with a webhook to `url` and the `extra` keys.
fn serve_file_to(fixture: &Fixture, url: &str, extra: &str) -> String {
    std::fs::write(fixture.path("hook.secret"), SECRET).unwrap();
    let path = fixture.path("serve.toml");
    ServeToml::new("campaign.volley")
        .campaign("campaign.toml")
        .write(&path);
    let webhook = format!(
        "\n[[webhook]]\nname = \"crm\"\nurl = \"{url}\"\n\
         secret_file = \"hook.secret\"\nevents = [\"delivered\", \"deferred\", \"bounced\"]\n\
         give_up_after = \"1d\"\n{extra}"
    );
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&webhook);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn spawn_serve(config: &str) -> Child {
    // What the server says goes next to its file, for a failing test to show.
    let log = std::fs::File::create(serve_log(config)).unwrap();
    volley()
        .args(["serve", "--config", config])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// Where [`spawn_serve`] puts the server's log.
fn serve_log(config: &str) -> PathBuf {
    Path::new(config).with_extension("log")
}

/// Stops a server with SIGTERM and waits for it.
async fn stop(server: Child) {
    let pid = server.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let stopped = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || server.wait_with_output()),
    )
    .await
    .unwrap()
    .unwrap()
    .unwrap();
    assert_eq!(stopped.status.code(), Some(0));
}

/// The campaign's events of the webhook's kinds, as `volley events` exports them.
async fn exported(fixture: &Fixture) -> Vec<serde_json::Value> {
    let campaign = fixture.campaign();
    let out = output_of(&["events", &campaign], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|e| ["delivered", "deferred", "bounced"].contains(&e["event"].as_str().unwrap()))
        .collect()
}

/// The key an event is compared by: recipient, kind and time.
fn key(event: &serde_json::Value) -> (String, String, String) {
    let field = |name: &str| event[name].as_str().unwrap_or_default().to_owned();
    (field("recipient"), field("event"), field("at"))
}

/// Recipients that reached a final state among `events`.
fn finished(events: &[serde_json::Value]) -> HashSet<String> {
    events
        .iter()
        .filter(|e| e["event"] == "delivered" || e["event"] == "bounced")
        .map(|e| e["recipient"].as_str().unwrap().to_owned())
        .collect()
}

/// Every exported event arrived (by id at least once), and each recipient's events came in
/// the order they happened.
fn assert_all_in_order(taken: &[serde_json::Value], exported: &[serde_json::Value]) {
    let arrived: HashSet<_> = taken.iter().map(key).collect();
    for event in exported {
        assert!(arrived.contains(&key(event)), "never arrived: {event}");
    }
    let ids: HashSet<&str> = taken.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), exported.len(), "one id per event");
    let mut seen = HashSet::new();
    let mut last: HashMap<String, String> = HashMap::new();
    for event in taken {
        if !seen.insert(event["id"].as_str().unwrap().to_owned()) {
            continue; // a duplicate (at least once): its first copy was checked
        }
        let (recipient, _, at) = key(event);
        if let Some(before) = last.insert(recipient.clone(), at.clone()) {
            assert!(before <= at, "{recipient}: {at} came after {before}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_fails_then_hangs_then_recovers_gets_every_event_in_order() {
    let mut csv = String::from("email,name\n");
    for i in 0..6 {
        csv.push_str(&format!(
            "user{i}@d{i}.example,U{i}\ndefer{i}@d{i}.example,D{i}\n"
        ));
    }
    csv.push_str("bounce0@d0.example,B0\nbounce1@d1.example,B1\n");
    let fixture = Fixture::new(&csv, PASSWORD).await;
    let receiver = Receiver::start(fixture.dir.path(), "fail,hang,ok");
    let config = serve_file(&fixture, &receiver, 4, "2s");
    let server = spawn_serve(&config);
    receiver
        .wait_until("every recipient's final event", |taken| {
            finished(taken).len() == 14
        })
        .await;
    // Once the last batch's answer is in, nothing is left to acknowledge.
    let campaign = fixture.campaign();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = json_of(&["status", &campaign, "--json"]).await;
        let webhook = &status["webhooks"][0];
        if webhook["backlog"] == 0 && webhook["last_error"].is_null() {
            assert_eq!(webhook["name"], "crm", "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "a backlog is left: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop(server).await;

    let requests = receiver.requests();
    assert!(requests.iter().all(|r| r.signature_ok), "{requests:#?}");
    assert!(requests.iter().all(|r| r.kind == "volley.events"));
    // The script: a 500, a request left hanging past the timeout, then taken; each try of a
    // batch carries the batch's id.
    let answers: Vec<&str> = requests.iter().map(|r| r.answer.as_str()).collect();
    assert_eq!(answers[..3], ["fail", "hang", "ok"], "{requests:#?}");
    assert_eq!(requests[0].id, requests[1].id);
    assert_eq!(requests[1].id, requests[2].id);
    assert_eq!(requests[0].events, requests[2].events);
    assert!(requests.iter().all(|r| r.events.len() <= 4));
    assert_eq!(requests[0].n, 0);

    let taken = receiver.taken();
    let exported = exported(&fixture).await;
    assert!(
        exported.iter().any(|e| e["event"] == "deferred"),
        "{exported:#?}"
    );
    assert!(
        exported.iter().any(|e| e["event"] == "bounced"),
        "{exported:#?}"
    );
    assert_all_in_order(&taken, &exported);
    for event in &taken {
        assert!(event["id"].as_str().unwrap().starts_with("evt_"), "{event}");
        assert_eq!(event["campaign"], "cli-test", "{event}");
        assert_eq!(event["variant"], "main", "{event}");
    }
    let bounced = taken.iter().find(|e| e["event"] == "bounced").unwrap();
    assert_eq!(bounced["code"], 550, "{bounced}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_batch_loses_no_event_after_a_restart() {
    let mut csv = String::from("email,name\n");
    for i in 0..24 {
        csv.push_str(&format!("user{i}@d{}.example,U{i}\n", i % 5));
    }
    let fixture = Fixture::new(&csv, PASSWORD).await;
    // Every answer takes a second: a kill lands while a batch is in flight.
    let receiver = Receiver::start(fixture.dir.path(), "slow");
    let config = serve_file(&fixture, &receiver, 3, "20s");
    let mut server = spawn_serve(&config);
    let deadline = Instant::now() + Duration::from_secs(120);
    while receiver.requests().len() < 3 {
        assert!(Instant::now() < deadline, "no third batch");
        assert!(server.try_wait().unwrap().is_none(), "the server stopped");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.kill().unwrap(); // SIGKILL, the third batch unanswered
    server.wait().unwrap();
    let before = receiver.requests().len();
    assert!(
        finished(&receiver.taken()).len() < 24,
        "killed before the end"
    );

    let server = spawn_serve(&config);
    receiver
        .wait_until("every delivery", |taken| finished(taken).len() == 24)
        .await;
    stop(server).await;
    let taken = receiver.taken();
    let exported = exported(&fixture).await;
    assert_eq!(exported.len(), 24, "{exported:#?}");
    assert_all_in_order(&taken, &exported);
    let duplicates = taken.len() - exported.len();
    eprintln!("killed after {before} requests: {duplicates} events sent twice");
    assert!(receiver.requests().iter().all(|r| r.signature_ok));
}

/// `volley ARGS… --json`, parsed (it must succeed).
async fn json_of(args: &[&str]) -> serde_json::Value {
    let out = output_of(args, &[]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "volley {args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_stays_down_shows_in_status_and_keeps_gc_from_collecting() {
    let fixture = Fixture::new("email,name\nuser0@d0.example,U0\n", PASSWORD).await;
    let receiver = Receiver::start(fixture.dir.path(), "fail");
    let config = serve_file(&fixture, &receiver, 10, "2s");
    let server = spawn_serve(&config);
    let campaign = fixture.campaign();
    let postgres = volley_testkit::store::is_postgres();
    let deadline = Instant::now() + Duration::from_secs(120);
    let webhook = loop {
        // The server may not answer yet, nor have loaded the campaign.
        let out = output_of(&["status", &campaign, "--json"], &[]).await;
        let status: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        let webhook = status["webhooks"][0].clone();
        // A database is read directly: the last error is the server's alone to know.
        let failed = if postgres {
            webhook["backlog"] == 1 && receiver.requests().len() >= 2
        } else {
            webhook["last_error"].is_string()
        };
        if failed {
            break webhook;
        }
        assert!(
            Instant::now() < deadline,
            "no failure in the status: {status} {}; the server said: {}",
            text(&out.stderr),
            std::fs::read_to_string(serve_log(&config)).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(webhook["name"], "crm", "{webhook}");
    assert_eq!(webhook["backlog"], 1, "{webhook}");
    let said = text(&output_of(&["status", &campaign], &[]).await.stdout);
    assert!(
        said.contains("webhook crm: 1 event not yet acknowledged"),
        "{said}"
    );
    if !postgres {
        assert!(
            webhook["last_error"].as_str().unwrap().contains("500"),
            "{webhook}"
        );
        assert!(webhook["next_attempt"].is_string(), "{webhook}");
        assert!(
            said.contains("; failing (the receiver answered 500"),
            "{said}"
        );
    }
    stop(server).await;

    // Exported or not (--force), the webhook still has to send it.
    let gc = json_of(&["gc", &campaign, "--force", "--json"]).await;
    assert_eq!(gc["campaigns"][0]["outcome"], "webhook_behind", "{gc}");
    assert_eq!(gc["campaigns"][0]["webhook"], "crm", "{gc}");
    let said = text(&output_of(&["gc", &campaign, "--force"], &[]).await.stdout);
    assert!(
        said.contains("webhook crm has not had every event"),
        "{said}"
    );
    // Removed for good: forgotten, it holds nothing back.
    let gc = json_of(&[
        "gc",
        &campaign,
        "--force",
        "--forget-webhook",
        "crm",
        "--json",
    ])
    .await;
    assert_eq!(gc["campaigns"][0]["outcome"], "collected", "{gc}");
    assert!(receiver.requests().iter().all(|r| r.signature_ok));
}

/// A certificate and key for `localhost` made by the `openssl` command.
fn openssl_certificate(dir: &Path) -> (String, String) {
    let cert = dir.join("cert.pem").display().to_string();
    let key = dir.join("key.pem").display().to_string();
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ])
        .args(["-keyout", &key, "-out", &cert])
        .output()
        .expect("the openssl command is needed (apt-get install openssl)");
    assert!(made.status.success(), "{}", text(&made.stderr));
    (cert, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_receiver_with_its_certificate_in_ca_file_gets_the_events() {
    let fixture = Fixture::new("email,name\nuser0@d0.example,U0\n", PASSWORD).await;
    let (cert, key) = openssl_certificate(fixture.dir.path());
    let receiver = Receiver::start_with(fixture.dir.path(), "ok", &[&cert, &key]);
    let url = format!("https://localhost:{}/volley/events", receiver.port);
    let config = serve_file_to(&fixture, &url, "ca_file = \"cert.pem\"\n");
    let server = spawn_serve(&config);
    receiver
        .wait_until("the delivery, over TLS", |taken| finished(taken).len() == 1)
        .await;
    stop(server).await;
    assert!(receiver.requests().iter().all(|r| r.signature_ok));
}

/// A `volley serve` node `name` of the database `url` (password in `db-password`) serving
/// the fixture's campaign, with a webhook to `receiver`; its log in `<name>/log`.
fn start_node(fixture: &Fixture, url: &str, name: &str, receiver: &Receiver) -> Child {
    let dir = fixture.path(name);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("serve.toml");
    let toml = format!(
        "campaigns = [\"{}\"]\n\n[store]\nurl = \"{url}\"\npassword_file = \"{}\"\n\
         local_dir = \"local\"\n\n[cluster]\nnode = \"{name}\"\nlease = \"3s\"\n\n\
         [[webhook]]\nname = \"crm\"\nurl = \"http://127.0.0.1:{}/volley/events\"\n\
         secret_file = \"{}\"\nevents = [\"delivered\"]\nbatch = 3\ntimeout = \"20s\"\n",
        fixture.campaign(),
        fixture.path("db-password").display(),
        receiver.port,
        fixture.path("hook.secret").display(),
    );
    std::fs::write(&file, toml).unwrap();
    let log = std::fs::File::create(dir.join("log")).unwrap();
    volley()
        .args(["serve", "--config", &file.display().to_string()])
        .env("VOLLEY_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_send_a_webhook_one_at_a_time_and_the_other_takes_over() {
    use volley_testkit::postgres::TempCluster;
    let pg = TempCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let url = pg
        .create_database("webhook_nodes")
        .unwrap_or_else(|e| panic!("{e}"));
    let url = url.replace(&format!(":{}@", pg.password()), "@");
    let mut csv = String::from("email,name\n");
    for i in 0..24 {
        csv.push_str(&format!("user{i}@d{}.example,U{i}\n", i % 5));
    }
    let mut fixture = Fixture::new(&csv, PASSWORD).await;
    let password = fixture.path("db-password");
    std::fs::write(&password, pg.password()).unwrap();
    std::fs::set_permissions(
        &password,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    fixture.add_to_campaign(&format!(
        "[store]\nurl = \"{url}\"\npassword_file = \"db-password\"\nlocal_dir = \"local\""
    ));
    std::fs::write(fixture.path("hook.secret"), SECRET).unwrap();
    // Every answer takes a second: the two nodes would overlap if both sent.
    let receiver = Receiver::start(fixture.dir.path(), "slow");
    let mut nodes = vec![
        ("a", start_node(&fixture, &url, "a", &receiver)),
        ("b", start_node(&fixture, &url, "b", &receiver)),
    ];
    receiver
        .wait_until("three batches", |taken| taken.len() >= 9)
        .await;
    // One node at a time: no event twice so far.
    let taken = receiver.taken();
    let ids: HashSet<&str> = taken.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), taken.len(), "sent twice while both nodes ran");
    let sql = "SELECT owner FROM leases WHERE name = 'webhook:crm'";
    let holder = crate::support::psql(&pg, "webhook_nodes", sql);
    let (index, other) = match holder.trim() {
        "a" => (0, "b"),
        "b" => (1, "a"),
        owner => panic!("the webhook's lease is held by {owner:?}"),
    };
    // The holder stops (SIGTERM hands its leases back): the other goes on.
    let (_, holder_child) = nodes.remove(index);
    stop(holder_child).await;
    receiver
        .wait_until("every delivery", |taken| finished(taken).len() == 24)
        .await;
    let owner = crate::support::psql(&pg, "webhook_nodes", sql);
    assert_eq!(owner.trim(), other, "the other node took the webhook over");
    let (_, last) = nodes.remove(0);
    stop(last).await;
    let exported = exported(&fixture).await;
    assert_eq!(exported.len(), 24);
    assert_all_in_order(&receiver.taken(), &exported);
}
