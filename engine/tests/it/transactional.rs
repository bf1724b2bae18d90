//! The transactional lane of `volley serve` (`[api] transactional`): a message is stored
//! before it is acknowledged and goes out after a restart when the relay was down, an
//! idempotency key sends once, and a message submitted while a bulk campaign fills the
//! relay's queue reaches the relay before the bulk is done (asserted on arrival order at
//! the sink, never on time).

use crate::support::{list, Fixture, Setup, LIMIT, USER};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use volley::runtime::{ServeOptions, Server};
use volley::transactional::{Message, SubmitError, TxLane};
use volley_testkit::campaign::{CampaignToml, Relay, QUICK_RETRY};

/// Writes the lane's campaign file (`tx.toml`: the fixture's relay, its own template) and
/// the serve file with `[api] transactional` and, when `bulk`, the fixture's campaign.
fn write_serve_file(fixture: &Fixture, bulk: bool) -> std::path::PathBuf {
    std::fs::write(fixture.path("tx.txt"), "Your code is {{ code }}.\n").unwrap();
    std::fs::write(fixture.path("none.csv"), "email\n").unwrap();
    let relay = Relay::loopback(fixture.sink.addr().port())
        .tls("starttls")
        .helo("sender.example.com")
        .connections(1)
        .login(USER, "password.txt")
        .ca_file("ca.pem");
    CampaignToml::new("tx")
        .from("Shop <shop@example.com>")
        .subject("Your code {{ code }}")
        .text("tx.txt")
        .recipients("none.csv")
        .relay(relay)
        .dkim("rsa", "rsa.pem")
        .retry(QUICK_RETRY)
        .write(&fixture.path("tx.toml"));
    tokens(fixture);
    let campaigns = if bulk { "\"campaign.toml\"" } else { "" };
    let serve = format!(
        "store = \"store.volley\"\ncampaigns = [{campaigns}]\n\n[api]\nbind = \"127.0.0.1:0\"\n\
         tokens_file = \"tokens.toml\"\ntransactional = \"tx.toml\"\n"
    );
    std::fs::write(fixture.path("serve.toml"), serve).unwrap();
    fixture.path("serve.toml")
}

/// A tokens file with one token (the lane is reached directly here, not over HTTP).
fn tokens(fixture: &Fixture) {
    let hash = "0".repeat(64);
    std::fs::write(
        fixture.path("tokens.toml"),
        format!("[[token]]\nname = \"t\"\nscopes = [\"send\"]\nsha256 = \"{hash}\"\n"),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(
            fixture.path("tokens.toml"),
            std::fs::Permissions::from_mode(0o600),
        );
    }
}

/// A running server with its lane.
struct Running {
    lane: TxLane,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), volley::Error>>,
}

impl Running {
    async fn start(serve_file: &std::path::Path) -> Running {
        let settings = volley::config::load_serve(serve_file).unwrap();
        let cancel = CancellationToken::new();
        let options = ServeOptions {
            tick: Duration::from_millis(100),
            ..ServeOptions::default()
        };
        let server = tokio::time::timeout(LIMIT, Server::open(settings, options, cancel.clone()))
            .await
            .expect("the server opened in time")
            .unwrap();
        let lane = server
            .transactional()
            .expect("the lane is configured")
            .clone();
        let task = tokio::spawn(server.run());
        Running { lane, cancel, task }
    }

    async fn stop(self) {
        self.cancel.cancel();
        tokio::time::timeout(LIMIT, self.task)
            .await
            .expect("the server stopped in time")
            .unwrap()
            .unwrap();
    }
}

fn message(to: &str, code: &str) -> Message {
    Message::from_json(&serde_json::json!({"to": to, "data": {"code": code}})).unwrap()
}

async fn submit(lane: &TxLane, m: Message, key: Option<&str>) -> Result<String, SubmitError> {
    tokio::time::timeout(LIMIT, lane.submit(m, key.map(str::to_owned)))
        .await
        .expect("submitted in time")
        .map(|s| s.id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_is_sent_with_the_lanes_template_and_its_status_gives_the_250() {
    let fixture = Fixture::new(Setup::default(), "email,first_name,city\n").await;
    let running = Running::start(&write_serve_file(&fixture, false)).await;
    let id = submit(&running.lane, message("ann@a.example", "493021"), None)
        .await
        .unwrap();
    let got = fixture.sink.wait_for(1, LIMIT).await.unwrap();
    assert_eq!(got[0].rcpt_to, ["ann@a.example"]);
    let text = got[0].text();
    assert!(text.contains("Subject: Your code 493021"), "{text}");
    assert!(text.contains("Your code is 493021."), "{text}");
    assert!(text.contains("DKIM-Signature:"), "{text}");
    // The outcome is recorded once the group is flushed: wait for it, bounded.
    let status = tokio::time::timeout(LIMIT, async {
        loop {
            let status = running.lane.status(&id).unwrap().unwrap();
            if status.state == volley::model::RecipientState::Delivered {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("recorded as delivered in time");
    assert_eq!(status.to, "ann@a.example");
    assert_eq!(status.attempts, 1);
    assert_eq!(status.last_reply.and_then(|r| r.code), Some(250));
    assert!(running.lane.status("999999").unwrap().is_none());
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_accepted_while_the_relay_is_down_goes_out_after_a_restart() {
    let mut fixture = Fixture::new(Setup::default(), "email,first_name,city\n").await;
    let serve_file = write_serve_file(&fixture, false);
    fixture.sink.stop().await;
    let running = Running::start(&serve_file).await;
    submit(&running.lane, message("bob@b.example", "111"), None)
        .await
        .unwrap();
    // Accepted means stored: stop the server (the relay never answered) and start again.
    running.stop().await;
    let config = fixture.sink.config().clone();
    fixture.restart_sink(config).await;
    let running = Running::start(&serve_file).await;
    let got = fixture.sink.wait_for(1, LIMIT).await.unwrap();
    assert_eq!(got[0].rcpt_to, ["bob@b.example"]);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_sends_once_and_refuses_another_body() {
    let fixture = Fixture::new(Setup::default(), "email,first_name,city\n").await;
    let running = Running::start(&write_serve_file(&fixture, false)).await;
    let lane = &running.lane;
    let first = submit(lane, message("cid@c.example", "1"), Some("order-7"))
        .await
        .unwrap();
    let again = submit(lane, message("cid@c.example", "1"), Some("order-7"))
        .await
        .unwrap();
    assert_eq!(first, again, "a retry gets the first id");
    let other = submit(lane, message("cid@c.example", "2"), Some("order-7")).await;
    assert!(
        matches!(other, Err(SubmitError::KeyReused { ref id, .. }) if *id == first),
        "{other:?}"
    );
    // A message without a key after them: once it arrived, the keyed one did, once.
    submit(lane, message("dee@d.example", "3"), None)
        .await
        .unwrap();
    fixture.sink.wait_for(2, LIMIT).await.unwrap();
    running.stop().await;
    let to: Vec<_> = fixture
        .sink
        .received()
        .into_iter()
        .map(|r| r.rcpt_to[0].clone())
        .collect();
    assert_eq!(
        to.iter().filter(|a| *a == "cid@c.example").count(),
        1,
        "{to:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suppressed_address_is_refused_at_once_and_missing_fields_are_named() {
    let fixture = Fixture::new(Setup::default(), "email,first_name,city\n").await;
    let serve_file = write_serve_file(&fixture, false);
    {
        let store = volley::store::Store::open(&fixture.path("store.volley")).unwrap();
        volley::runtime::suppress_add(&store, "gone@a.example", None, "asked by phone").unwrap();
        store.flush_blocking().unwrap();
    }
    let running = Running::start(&serve_file).await;
    let refused = submit(&running.lane, message("gone@a.example", "1"), None).await;
    assert!(
        matches!(refused, Err(SubmitError::Suppressed { ref address, .. }) if address == "gone@a.example"),
        "{refused:?}"
    );
    let lacking =
        Message::from_json(&serde_json::json!({"to": "a@a.example", "data": {}})).unwrap();
    match submit(&running.lane, lacking, None).await {
        Err(SubmitError::Invalid(errors)) => assert_eq!(errors[0].field, "data.code"),
        other => panic!("expected the missing field named, got {other:?}"),
    }
    running.stop().await;
    assert_eq!(fixture.sink.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transactional_message_overtakes_a_running_bulk_send_at_the_relay() {
    const BULK: usize = 300;
    let setup = Setup {
        connections: 1,
        pipelining: false,
        reply_delay: Duration::from_millis(2),
        ..Setup::default()
    };
    let fixture = Fixture::new(setup, &list(BULK, 1)).await;
    let running = Running::start(&write_serve_file(&fixture, true)).await;
    // The bulk campaign is under way: some of it has reached the relay.
    fixture.sink.wait_for(10, LIMIT).await.unwrap();
    submit(&running.lane, message("vip@z.example", "42"), None)
        .await
        .unwrap();
    let all = fixture.sink.wait_for(BULK + 1, LIMIT * 4).await.unwrap();
    running.stop().await;
    let position = all
        .iter()
        .position(|r| r.rcpt_to == ["vip@z.example"])
        .expect("the transactional message arrived");
    // It went ahead of the bulk queue: far more bulk messages came after it than the
    // in-flight window (64 per connection) that was already on its way.
    eprintln!(
        "the transactional message arrived {position}th of {}",
        all.len()
    );
    assert!(
        all.len() - 1 - position > BULK / 2,
        "the transactional message arrived {position}th of {}",
        all.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lane_refuses_a_campaign_id_loaded_from_a_list() {
    let fixture = Fixture::new(Setup::default(), "email,first_name,city\n").await;
    let serve_file = write_serve_file(&fixture, false);
    // A list campaign under the lane's id.
    {
        let store = volley::store::Store::open(&fixture.path("store.volley")).unwrap();
        let mut loader = store
            .start_load("tx", vec!["email".into(), "first_name".into()])
            .unwrap();
        loader
            .add(
                "ann@a.example",
                "a.example",
                vec!["ann@a.example".into(), "Ann".into()],
                2,
                volley::model::Assignment::Variant(0),
            )
            .unwrap();
        loader.finish(0, 0, 0).unwrap();
    }
    let settings = volley::config::load_serve(&serve_file).unwrap();
    let error = Server::open(settings, ServeOptions::default(), CancellationToken::new())
        .await
        .err()
        .expect("refused");
    assert!(
        error.to_string().contains("not a transactional lane"),
        "{error}"
    );
}
