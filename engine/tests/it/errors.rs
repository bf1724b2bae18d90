//! What goes wrong gets a clear error, and nothing is sent or lost.

use crate::support::{self, Fixture, Setup};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_stops_the_send_and_leaves_everyone_pending() {
    let setup = Setup {
        password: "not-the-password".into(),
        ..Setup::default()
    };
    let fixture = Fixture::new(setup, &support::list(20, 2)).await;
    let error = fixture.send().await.unwrap_err();
    let message = format!("{error}");
    assert!(message.contains("535"), "{message}");
    assert!(message.to_lowercase().contains("auth"), "{message}");
    assert!(
        !message.contains("not-the-password"),
        "the password never shows: {message}"
    );
    assert_eq!(fixture.sink.count(), 0);
    let status = volley::runtime::status(fixture.campaign().settings())
        .await
        .unwrap();
    assert_eq!(status.counts.pending, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_a_clear_error() {
    let setup = Setup {
        trust_sink: false,
        ..Setup::default()
    };
    let fixture = Fixture::new(setup, &support::list(5, 1)).await;
    let error = fixture.send().await.unwrap_err();
    let message = format!("{error}").to_lowercase();
    assert!(message.contains("certificate"), "{message}");
    assert_eq!(fixture.sink.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_field_missing_from_the_list_is_refused_before_sending() {
    let setup = Setup {
        subject: "Hi {{ nickname }}".into(),
        ..Setup::default()
    };
    let fixture = Fixture::new(setup, &support::list(5, 1)).await;
    let settings = volley::config::load_campaign(&fixture.campaign_file(), None).unwrap();
    let error = volley::runtime::Campaign::prepare(settings).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("nickname") && message.contains("list.csv"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthorised_from_domain_is_refused_before_sending() {
    let setup = Setup::default();
    let fixture = Fixture::new(setup, &support::list(5, 1)).await;
    let toml = std::fs::read_to_string(fixture.campaign_file())
        .unwrap()
        .replace("news@example.com", "news@elsewhere.example");
    std::fs::write(fixture.campaign_file(), toml).unwrap();
    let error = volley::config::load_campaign(&fixture.campaign_file(), None).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("elsewhere.example") && message.contains("authorised"),
        "{message}"
    );
    assert_eq!(fixture.sink.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_store_is_reported_and_status_still_answers() {
    let fixture = Fixture::new(Setup::default(), &support::list(5, 1)).await;
    fixture.send().await.unwrap();
    // Hold the store as a running send would. The finished send's own store opens at once:
    // the store waits for sled's writer threads to let go of a folder this process closed.
    let store = volley::store::Store::open(&fixture.path("campaign.volley")).unwrap();
    let second = volley::store::Store::open(&fixture.path("campaign.volley")).unwrap_err();
    assert!(second.to_string().contains("in use"), "{second}");
    drop(store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_relay_is_a_clear_error_and_nobody_is_touched() {
    let fixture = Fixture::new(Setup::default(), &support::list(5, 1)).await;
    // Point the campaign at a port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let toml = std::fs::read_to_string(fixture.campaign_file())
        .unwrap()
        .replace(
            &format!("port = {}", fixture.sink.addr().port()),
            &format!("port = {closed}"),
        );
    std::fs::write(fixture.campaign_file(), toml).unwrap();
    let error = fixture.send().await.unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains(&format!("127.0.0.1:{closed}")) && message.contains("3 attempts"),
        "{message}"
    );
    let status = volley::runtime::status(fixture.campaign().settings())
        .await
        .unwrap();
    assert_eq!(
        (status.counts.pending, status.counts.deferred),
        (5, 0),
        "not attempted, still pending"
    );
}
