//! Campaign control over the API, driven with curl (an HTTP client nobody here wrote) against
//! the real `volley serve` and a real SMTP sink: a campaign created from its TOML and
//! files, its list uploaded, started, paused (the sink stops growing once the pause is
//! answered), resumed to the end, and another one cancelled (nothing more is sent, its
//! unsent recipients are final). Bad TOML and an inline secret are problems naming the key.
//! Runs on sled, and on PostgreSQL with `VOLLEY_TEST_STORE=postgres`.

use crate::api::{add_api, ApiServer, Reply, READ, SEND};
use crate::support::{list, Fixture, PASSWORD};
use std::time::{Duration, Instant};
use volley_testkit::campaign::ServeToml;
use volley_testkit::sink::SinkConfig;

/// The campaign's TOML as an API client sends it: secrets by absolute path on the server,
/// templates and the CA file by plain name (sent in `files`).
fn campaign_text(fixture: &Fixture, id: &str) -> String {
    let abs = |name: &str| fixture.path(name).display().to_string();
    fixture
        .toml
        .clone()
        .id(id)
        .to_string()
        .replace("\"pw.txt\"", &format!("{:?}", abs("pw.txt")))
        .replace("\"rsa.pem\"", &format!("{:?}", abs("rsa.pem")))
}

/// The create request for `text`, with the body and the CA file.
fn create_body(fixture: &Fixture, text: &str) -> String {
    let file = |name: &str| {
        serde_json::json!({
            "name": name,
            "content": std::fs::read_to_string(fixture.path(name)).unwrap(),
        })
    };
    serde_json::json!({
        "campaign": text,
        "files": [file("body.txt"), file("ca.pem")],
    })
    .to_string()
}

/// Starts `volley serve` on the fixture's folder with `[api]` and no campaign of its own.
fn serve(fixture: &Fixture) -> ApiServer {
    let serve = fixture.path("serve.toml");
    ServeToml::new("s.volley").write(&serve);
    add_api(&serve, "");
    ApiServer::start_in(fixture.dir.path(), None)
}

fn post(server: &ApiServer, path: &str, body: Option<&str>) -> Reply {
    let mut args = vec!["-X", "POST"];
    if let Some(body) = body {
        args.extend([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            body,
        ]);
    }
    server.curl(Some(SEND), &args, path)
}

/// Creates campaign `id` and uploads `csv` as its list; asserts the answers.
fn create_and_load(server: &ApiServer, fixture: &Fixture, id: &str, csv: &str) {
    let created = post(
        server,
        "/api/campaigns",
        Some(&create_body(fixture, &campaign_text(fixture, id))),
    );
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.json()["id"], id);
    // Not before its list is loaded.
    post(server, &format!("/api/campaigns/{id}/start"), None).assert_problem(409, None);
    let list = fixture.path(&format!("{id}.csv"));
    std::fs::write(&list, csv).unwrap();
    let upload = format!("@{}", list.display());
    let args = [
        "-X",
        "PUT",
        "-H",
        "Content-Type: text/csv",
        "--data-binary",
        &upload,
    ];
    let loaded = server.curl(Some(SEND), &args, &format!("/api/campaigns/{id}/list"));
    assert_eq!(loaded.status, 200, "{loaded:?}");
    let again = server.curl(Some(SEND), &args, &format!("/api/campaigns/{id}/list"));
    again.assert_problem(409, None);
    let _ = loaded;
}

/// Waits (at most two minutes) until `done` holds, failing with `what`.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn slow_sink() -> SinkConfig {
    SinkConfig {
        reply_delay: Duration::from_millis(10),
        pipelining: false,
        ..SinkConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_created_over_the_api_is_sent_paused_resumed_and_done() {
    const N: usize = 120;
    let fixture = Fixture::with_sink(&list(0), PASSWORD, slow_sink()).await;
    let server = serve(&fixture);
    let loaded = {
        create_and_load(&server, &fixture, "api-news", &list(N));
        server.curl(Some(READ), &[], "/api/campaigns/api-news")
    };
    assert_eq!(loaded.status, 200, "{loaded:?}");
    let started = post(&server, "/api/campaigns/api-news/start", None);
    assert_eq!(started.status, 200, "{started:?}");
    assert_eq!(started.json()["state"], "active");

    until("nothing arrived", || fixture.sink.count() >= 10).await;
    let paused = post(&server, "/api/campaigns/api-news/pause", None);
    assert_eq!(paused.status, 200, "{paused:?}");
    assert_eq!(paused.json()["state"], "paused");
    // The pause answers once what was in flight is recorded: the sink has exactly those.
    let delivered = paused.json()["counts"]["delivered"].as_u64().unwrap() as usize;
    assert_eq!(fixture.sink.count(), delivered, "{paused:?}");
    assert!(delivered < N, "all sent before the pause: {paused:?}");
    // Two of the server's looks (--tick 1) later nothing more has gone out; nor after a
    // restart (the pause is the document's state, in the store).
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(fixture.sink.count(), delivered);
    drop(server);
    let server = serve(&fixture);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(fixture.sink.count(), delivered, "sent after a restart");

    let resumed = post(&server, "/api/campaigns/api-news/resume", None);
    assert_eq!(resumed.json()["state"], "active", "{resumed:?}");
    until("the rest never arrived", || fixture.sink.count() >= N).await;
    let mut to: Vec<String> = fixture
        .sink
        .received()
        .into_iter()
        .flat_map(|r| r.rcpt_to)
        .collect();
    to.sort();
    to.dedup();
    assert_eq!(to.len(), N, "every recipient once");
    until("the document never became done", || {
        let again = post(&server, "/api/campaigns/api-news/start", None);
        again.status == 409 && again.body.contains("is done")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_campaign_sends_nothing_more_and_its_rest_is_final() {
    const N: usize = 120;
    let fixture = Fixture::with_sink(&list(0), PASSWORD, slow_sink()).await;
    let server = serve(&fixture);
    create_and_load(&server, &fixture, "api-cancel", &list(N));
    assert_eq!(
        post(&server, "/api/campaigns/api-cancel/start", None).status,
        200
    );
    until("nothing arrived", || fixture.sink.count() >= 5).await;
    let cancelled = post(&server, "/api/campaigns/api-cancel/cancel", None);
    assert_eq!(cancelled.status, 200, "{cancelled:?}");
    let json = cancelled.json();
    assert_eq!(json["state"], "cancelled");
    let counts = &json["counts"];
    assert_eq!(counts["pending"], 0, "{json}");
    assert_eq!(counts["deferred"], 0, "{json}");
    let delivered = counts["delivered"].as_u64().unwrap() as usize;
    assert_eq!(fixture.sink.count(), delivered);
    assert_eq!(
        counts["cancelled"].as_u64().unwrap() as usize,
        N - delivered,
        "{json}"
    );
    assert_eq!(counts["expired"], 0, "cancelled is not expired: {json}");
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(fixture.sink.count(), delivered, "sent after the cancel");
    post(&server, "/api/campaigns/api-cancel/resume", None).assert_problem(409, None);
    // What a user reads: the state, and the cancelled recipients with their reason.
    let status = server.curl(Some(READ), &[], "/api/campaigns/api-cancel");
    assert_eq!(status.json()["state"], "cancelled", "{status:?}");
    assert_eq!(
        status.json()["cancelled"].as_u64().unwrap() as usize,
        N - delivered
    );
    let events = server.curl(
        Some(READ),
        &[],
        "/api/campaigns/api-cancel/events?limit=1000",
    );
    let cancelled_events = events.json()["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "cancelled" && e["reply"] == "cancelled over the API")
        .count();
    assert_eq!(cancelled_events, N - delivered);
    // Cancelling again changes nothing.
    let again = post(&server, "/api/campaigns/api-cancel/cancel", None);
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(again.json()["counts"], json["counts"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_ab_test_cancels_the_remainder_it_was_holding() {
    const N: usize = 100;
    let fixture = Fixture::new(&list(0), PASSWORD).await;
    let server = serve(&fixture);
    let ab = "[[variant]]\nid = \"a\"\nsubject = \"A\"\n\n\
              [[variant]]\nid = \"b\"\nsubject = \"B\"\n\n\
              [ab]\ntest_share = 0.2\nwait = \"1h\"\n";
    let text = format!("{}\n{ab}", campaign_text(&fixture, "api-held"));
    let created = post(
        &server,
        "/api/campaigns",
        Some(&create_body(&fixture, &text)),
    );
    assert_eq!(created.status, 201, "{created:?}");
    let csv = fixture.path("held.csv");
    std::fs::write(&csv, list(N)).unwrap();
    let upload = format!("@{}", csv.display());
    let args = [
        "-X",
        "PUT",
        "-H",
        "Content-Type: text/csv",
        "--data-binary",
        &upload,
    ];
    let loaded = server.curl(Some(SEND), &args, "/api/campaigns/api-held/list");
    assert_eq!(loaded.status, 200, "{loaded:?}");
    assert_eq!(
        post(&server, "/api/campaigns/api-held/start", None).status,
        200
    );
    // The test share goes out; the rest waits an hour for the verdict.
    until("the test share never arrived", || {
        fixture.sink.count() >= 20
    })
    .await;
    let cancelled = post(&server, "/api/campaigns/api-held/cancel", None);
    assert_eq!(cancelled.status, 200, "{cancelled:?}");
    let counts = &cancelled.json()["counts"];
    assert_eq!(counts["held"], 0, "{counts}");
    assert_eq!(counts["pending"], 0, "{counts}");
    let delivered = counts["delivered"].as_u64().unwrap() as usize;
    assert_eq!(
        counts["cancelled"].as_u64().unwrap() as usize,
        N - delivered,
        "{counts}"
    );
    assert_eq!(fixture.sink.count(), delivered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_toml_an_inline_secret_and_a_file_outside_are_problems_naming_the_key() {
    let fixture = Fixture::new(&list(0), PASSWORD).await;
    let server = serve(&fixture);
    let text = campaign_text(&fixture, "api-bad");

    let broken = text.replacen("[relay]", "[relay\n", 1);
    let reply = post(
        &server,
        "/api/campaigns",
        Some(&create_body(&fixture, &broken)),
    );
    reply.assert_problem(422, Some("campaign"));
    assert!(reply.body.contains("line"), "{reply:?}");

    let inline = text.replacen("[relay]", "[relay]\npassword = \"hunter2\"", 1);
    let reply = post(
        &server,
        "/api/campaigns",
        Some(&create_body(&fixture, &inline)),
    );
    reply.assert_problem(422, Some("relay.password"));
    assert!(
        !reply.body.contains("hunter2"),
        "the secret echoed: {reply:?}"
    );

    let outside = text.replacen("\"body.txt\"", "\"/etc/passwd\"", 1);
    let reply = post(
        &server,
        "/api/campaigns",
        Some(&create_body(&fixture, &outside)),
    );
    reply.assert_problem(422, Some("campaign.text"));

    let bad_port = text.replacen("[relay]", "[relay]\nport = 0", 1);
    let reply = post(
        &server,
        "/api/campaigns",
        Some(&create_body(&fixture, &bad_port)),
    );
    assert_eq!(reply.status, 422, "{reply:?}");

    // A read token cannot create; an unknown campaign is 404.
    let body = create_body(&fixture, &text);
    let args = [
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        &body,
    ];
    server
        .curl(Some(READ), &args, "/api/campaigns")
        .assert_problem(403, None);
    post(&server, "/api/campaigns/nothing/start", None).assert_problem(404, None);
}
