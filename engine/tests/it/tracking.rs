//! Opens, clicks and one-click unsubscribe, end to end: a tracked campaign goes out, its
//! messages carry signed links, pixel and List-Unsubscribe headers under the DKIM signature,
//! and the tracking server answers them over real HTTP, recording each event on the right
//! recipient, once, with its human/machine flag. Nothing can be forged or redirected.

use crate::support::{self, Fixture, Setup, LIMIT};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use volley::model::{ManualClock, TrackCounts};
use volley::store::{MachineReason, Store};
use volley::tracking::{TokenKey, TrackingServer};
use volley_testkit::http::{get, request, request_with, BROWSER};

pub const KEY: &str = "a tracking key for the tests, long enough";
/// The bearer token `/metrics` is served with, where a test sets one.
pub const METRICS_TOKEN: &str = "metrics token for the tests";

const HTML: &str = r#"<html><body><p>Hi {{ first_name }}</p>
<p><a href="https://shop.example/sale?city={{ city }}&amp;from=mail">Sale</a>
<a href="https://blog.example/news">Blog</a>
<a data-volley-notrack href="https://private.example/">Private</a>
<a href="{{ unsubscribe_url }}">Unsubscribe</a></p></body></html>"#;

/// A tracked campaign, sent; the listener its links point at, not yet served.
async fn sent_campaign(csv: &str) -> (Fixture, TcpListener) {
    sent_campaign_with(csv, HTML).await
}

/// [`sent_campaign`] with its own HTML body.
pub async fn sent_campaign_with(csv: &str, html: &str) -> (Fixture, TcpListener) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let setup = Setup {
        sections: format!(
            "[tracking]\nbase_url = \"http://127.0.0.1:{port}/\"\nkey_file = \"track.key\"\nunsubscribe_mailto = \"unsubscribe@example.com\"\n"
        ),
        ..Setup::default()
    };
    let fixture = Fixture::new(setup, csv).await;
    std::fs::write(fixture.path("track.key"), format!("{KEY}\n")).unwrap();
    std::fs::write(fixture.path("body.html"), html).unwrap();
    let report = fixture.send().await.unwrap();
    assert_eq!(
        report.counts.pending + report.counts.deferred,
        0,
        "{:?}",
        report.counts
    );
    (fixture, listener)
}

/// Serves tracking for the fixture's store until the returned token is cancelled.
fn serve(
    fixture: &Fixture,
    listener: TcpListener,
) -> (Store, CancellationToken, tokio::task::JoinHandle<()>) {
    serve_with(fixture, listener, |server| server)
}

/// [`serve`], the server configured by `configure`.
pub fn serve_with(
    fixture: &Fixture,
    listener: TcpListener,
    configure: impl FnOnce(TrackingServer) -> TrackingServer,
) -> (Store, CancellationToken, tokio::task::JoinHandle<()>) {
    let store = Store::open(&fixture.path("campaign.volley")).unwrap();
    let server = configure(
        TrackingServer::new(store.clone(), TokenKey::new(KEY.as_bytes())).too_soon(Duration::ZERO),
    );
    let stop = CancellationToken::new();
    let shutdown = stop.clone().cancelled_owned();
    let task = tokio::spawn(async move {
        server.serve(listener, shutdown).await.unwrap();
    });
    (store, stop, task)
}

/// The tracked URLs of the message to `address`: (pixel, links in order, unsubscribe).
pub fn urls_of(fixture: &Fixture, address: &str) -> (String, Vec<String>, String, String) {
    let received = fixture.sink.received();
    let message = received
        .iter()
        .find(|m| m.rcpt_to == [address])
        .unwrap_or_else(|| panic!("{address} received nothing"));
    let parsed = mail_parser::MessageParser::default()
        .parse(&message.data)
        .unwrap();
    let html = parsed.body_html(0).unwrap().into_owned();
    let mut urls = Vec::new();
    for part in html.split("href=\"").skip(1) {
        urls.push(part.split('"').next().unwrap().to_owned());
    }
    let pixel = html
        .split("<img src=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    let header = parsed
        .header_raw("List-Unsubscribe")
        .unwrap()
        .trim()
        .to_owned();
    let unsubscribe = header
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap()
        .to_owned();
    (pixel, urls, unsubscribe, header)
}

pub fn path_of(url: &str) -> String {
    let rest = url.split("//").nth(1).unwrap();
    format!("/{}", rest.split_once('/').unwrap().1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_carry_signed_links_a_pixel_and_one_click_unsubscribe_under_dkim() {
    let (fixture, _listener) = sent_campaign(&support::list(3, 1)).await;
    let received = fixture.sink.wait_for(3, LIMIT).await.unwrap();
    let (pixel, urls, unsubscribe, header) = urls_of(&fixture, "user1@d0.example");
    assert!(pixel.contains("/o/") && pixel.ends_with(".gif"), "{pixel}");
    assert_eq!(urls.len(), 4, "{urls:?}");
    assert!(
        urls[0].contains("/c/") && urls[1].contains("/c/"),
        "{urls:?}"
    );
    assert_eq!(
        urls[2], "https://private.example/",
        "an opted-out link stays"
    );
    assert_eq!(
        urls[3], unsubscribe,
        "{{ unsubscribe_url }} is the one-click URL"
    );
    assert!(unsubscribe.contains("/u/"), "{unsubscribe}");
    assert!(
        header.ends_with("<mailto:unsubscribe@example.com?subject=unsubscribe>"),
        "{header}"
    );
    assert!(!received[0].text().contains("data-volley-notrack"));
    let text = received[0].text();
    assert!(
        text.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
        "{text}"
    );
    let signature = text
        .split("DKIM-Signature:")
        .nth(1)
        .unwrap()
        .to_ascii_lowercase();
    let h_tag = signature
        .split("h=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap();
    assert!(
        h_tag.contains("list-unsubscribe") && h_tag.contains("list-unsubscribe-post"),
        "{h_tag}"
    );
    let results = volley::dkim::verify(&received[0].data, &support::dkim_records()).await;
    assert!(results.iter().all(|r| r.pass), "{results:?}");
    let (_, other, _, _) = urls_of(&fixture, "user2@d0.example");
    assert_ne!(other[0], urls[0], "every recipient's tokens are their own");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opens_and_clicks_are_recorded_once_per_request_and_counted_once_per_person() {
    let (fixture, listener) = sent_campaign(&support::list(3, 1)).await;
    let addr: SocketAddr = listener.local_addr().unwrap();
    let clock = ManualClock::new(chrono::Utc::now());
    let (store, stop, task) = serve_with(&fixture, listener, |server| {
        server
            .metrics_token(METRICS_TOKEN.to_owned().into())
            .clock(clock.clock())
    });
    let (pixel, urls, _, _) = urls_of(&fixture, "user1@d0.example");

    let answer = get(addr, &path_of(&pixel)).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("image/gif"));
    assert_eq!(answer.body.len(), 43);
    // The same pixel again within the de-duplication window: served, not stored again.
    let again = get(addr, &path_of(&pixel)).await;
    assert_eq!((again.status, again.body.len()), (200, 43));

    let sale = get(addr, &path_of(&urls[0])).await;
    assert_eq!(sale.status, 302);
    assert_eq!(
        sale.header("location"),
        Some("https://shop.example/sale?city=City1&from=mail")
    );
    clock.advance(Duration::from_secs(2)); // not a burst
    let blog = get(addr, &path_of(&urls[1])).await;
    assert_eq!(blog.header("location"), Some("https://blog.example/news"));
    // A HEAD is a link checker: recorded, flagged machine.
    let head = request(addr, "HEAD", &path_of(&urls[1]), BROWSER, "").await;
    assert_eq!(head.status, 302);

    let counts = store.tracking_totals("test-campaign").unwrap();
    assert_eq!(
        counts,
        TrackCounts {
            opened: 1,
            clicked: 1,
            unsubscribed: 0,
            opens: 1,
            clicks: 2,
            machine_opens: 0,
            machine_clicks: 1,
        }
    );
    let events = store.tracking_events("test-campaign", 0).unwrap();
    assert_eq!(events.len(), 4);
    assert!(
        events.iter().all(|e| e.key.seq == 1),
        "all on user1's record"
    );
    let metrics = request_with(
        addr,
        "GET",
        "/metrics",
        &[("Authorization", &format!("Bearer {METRICS_TOKEN}"))],
        "",
    )
    .await
    .text();
    assert!(
        metrics.contains("volley_tracking_requests_total{route=\"click\",result=\"ok\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("volley_tracking_not_stored_total{reason=\"repeat\"} 1"),
        "{metrics}"
    );
    assert_eq!(get(addr, "/healthz").await.status, 200);
    stop.cancel();
    tokio::time::timeout(LIMIT, task).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn machines_are_told_from_people() {
    let (fixture, listener) = sent_campaign(&support::list(3, 1)).await;
    let addr = listener.local_addr().unwrap();
    let (store, stop, task) = serve(&fixture, listener);
    let (pixel, urls, _, _) = urls_of(&fixture, "user2@d0.example");
    // Apple Mail Privacy Protection's proxy, and a security scanner following every link.
    request(addr, "GET", &path_of(&pixel), "Mozilla/5.0", "").await;
    for url in &urls[..2] {
        let answer = request(addr, "GET", &path_of(url), BROWSER, "").await;
        assert_eq!(answer.status, 302);
    }
    let counts = store.tracking_totals("test-campaign").unwrap();
    assert_eq!((counts.opened, counts.machine_opens), (0, 1), "{counts:?}");
    assert_eq!(
        (counts.clicked, counts.clicks, counts.machine_clicks),
        (0, 0, 2),
        "two links within a second: a scanner, not a person: {counts:?}"
    );
    stop.cancel();
    tokio::time::timeout(LIMIT, task).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_tokens_and_open_redirects_get_nothing() {
    let (fixture, listener) = sent_campaign(&support::list(2, 1)).await;
    let addr = listener.local_addr().unwrap();
    let (store, stop, task) = serve(&fixture, listener);
    let (pixel, urls, unsubscribe, _) = urls_of(&fixture, "user1@d0.example");
    let click = path_of(&urls[0]);
    let token = click.trim_start_matches("/c/").to_owned();
    let mut altered: Vec<u8> = token.bytes().collect();
    altered[10] = if altered[10] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    let forged =
        TokenKey::new(b"somebody else's key, long enough").encode(&volley::tracking::Token {
            kind: volley::tracking::TokenKind::Click,
            campaign: 1,
            variant: 0,
            seq: 1,
            link: 0,
        });
    for path in [
        format!("/c/{altered}"),
        format!("/c/{forged}"),
        "/c/https%3A%2F%2Fevil.example%2F".to_owned(),
        format!("/o/{token}.gif"), // a click token is not a pixel
        path_of(&unsubscribe).replace("/u/", "/c/"), // nor is an unsubscribe token
        format!("/c/{token}x"),
        "/c/".to_owned(),
    ] {
        let answer = get(addr, &path).await;
        assert_eq!(answer.status, 404, "{path}");
    }
    // A URL in the query is ignored: the stored link is where it goes.
    let answer = get(
        addr,
        &format!("{click}?url=https://evil.example/&next=https://evil.example/"),
    )
    .await;
    assert_eq!(answer.status, 302);
    assert_eq!(
        answer.header("location"),
        Some("https://shop.example/sale?city=City1&from=mail")
    );
    let counts = store.tracking_totals("test-campaign").unwrap();
    assert_eq!(
        counts.clicks + counts.machine_clicks,
        1,
        "only the genuine click counted"
    );
    assert_eq!(counts.opens + counts.machine_opens, 0);
    let _ = pixel;
    stop.cancel();
    tokio::time::timeout(LIMIT, task).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_unsubscribe_changes_nothing_post_suppresses_for_the_next_send() {
    let (fixture, listener) = sent_campaign(&support::list(3, 1)).await;
    let addr = listener.local_addr().unwrap();
    let (store, stop, task) = serve(&fixture, listener);
    let (_, _, unsubscribe, _) = urls_of(&fixture, "user0@d0.example");
    let path = path_of(&unsubscribe);
    let page = get(addr, &path).await;
    assert_eq!(page.status, 200);
    assert!(
        page.text().contains("<form method=\"post\""),
        "{}",
        page.text()
    );
    assert_eq!(
        store.tracking_totals("test-campaign").unwrap().unsubscribed,
        0
    );
    assert!(
        store.suppression("user0@d0.example").unwrap().is_none(),
        "GET changes nothing"
    );
    let done = request(addr, "POST", &path, BROWSER, "List-Unsubscribe=One-Click").await;
    assert_eq!(done.status, 200);
    assert!(done.text().contains("unsubscribed"));
    let again = request(addr, "POST", &path, BROWSER, "List-Unsubscribe=One-Click").await;
    assert_eq!(again.status, 200);
    assert_eq!(
        store.tracking_totals("test-campaign").unwrap().unsubscribed,
        1
    );
    let unsubscribes = store
        .tracking_events("test-campaign", 0)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == volley::store::TrackKind::Unsubscribe)
        .count();
    assert_eq!(unsubscribes, 1, "a repeat stores nothing");
    let entry = store.suppression("user0@d0.example").unwrap().unwrap();
    assert_eq!(entry.reason, volley::model::SuppressionReason::Unsubscribe);
    stop.cancel();
    tokio::time::timeout(LIMIT, task).await.unwrap().unwrap();
    drop(store);

    fixture.rename_campaign("next-week");
    let before = fixture.sink.count();
    let report = fixture.send().await.unwrap();
    assert_eq!(
        (report.counts.delivered, report.counts.suppressed),
        (2, 1),
        "{:?}",
        report.counts
    );
    let arrivals = support::arrivals(&fixture.sink);
    assert_eq!(
        arrivals.get("user0@d0.example"),
        Some(&1),
        "not mailed again"
    );
    assert_eq!(fixture.sink.count(), before + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clicks_on_every_link_within_a_second_are_a_machine_burst_and_a_second_apart_a_person() {
    let (fixture, listener) = sent_campaign(&support::list(3, 1)).await;
    let addr: SocketAddr = listener.local_addr().unwrap();
    let clock = ManualClock::new(chrono::Utc::now());
    let (store, stop, task) = serve_with(&fixture, listener, |s| s.clock(clock.clock()));
    let click = |address: &'static str, link: usize| {
        let url = urls_of(&fixture, address).1[link].clone();
        async move { get(addr, &path_of(&url)).await.status }
    };
    // A scanner follows both links at once, another 999 ms apart: bursts, and the first
    // click of each, which alone made a clicker, is taken back.
    assert_eq!(click("user0@d0.example", 0).await, 302);
    assert_eq!(click("user0@d0.example", 1).await, 302);
    assert_eq!(click("user1@d0.example", 0).await, 302);
    clock.advance(Duration::from_millis(999));
    assert_eq!(click("user1@d0.example", 1).await, 302);
    // A person reads on and clicks the second link a second later.
    assert_eq!(click("user2@d0.example", 0).await, 302);
    clock.advance(Duration::from_millis(1_000));
    assert_eq!(click("user2@d0.example", 1).await, 302);

    let counts = store.tracking_totals("test-campaign").unwrap();
    assert_eq!(
        (counts.clicked, counts.clicks, counts.machine_clicks),
        (1, 2, 4),
        "{counts:?}"
    );
    let bursts = store
        .tracking_events("test-campaign", 0)
        .unwrap()
        .iter()
        .filter(|e| e.machine == Some(MachineReason::ClickBurst))
        .count();
    assert_eq!(bursts, 2, "the second click of each scanner");
    stop.cancel();
    tokio::time::timeout(LIMIT, task).await.unwrap().unwrap();
}
