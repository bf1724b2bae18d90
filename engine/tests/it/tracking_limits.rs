//! The tracking server faces hostile clients: a recipient replaying their own link grows the
//! store by a bounded amount, slow, idle and oversized clients are cut, connections are
//! capped, `/metrics` wants its token, and a merge value cannot move a tracked link to
//! another host. All over real HTTP to a real server on a real sled store.

use crate::support::{self, LIMIT};
use crate::tracking::{path_of, sent_campaign_with, serve_with, urls_of, METRICS_TOKEN};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use volley::tracking::TrackingLimits;
use volley_testkit::http::{get, request_with, KeepAlive, BROWSER};

const HTML: &str = r#"<html><body><p>Hi {{ first_name }}</p>
<p><a href="https://shop.example{{ city }}">Shop</a>
<a href="https://shop.example/city/{{ city }}?from={{ city }}">City</a></p></body></html>"#;

fn limits(configure: impl FnOnce(&mut TrackingLimits)) -> TrackingLimits {
    let mut limits = TrackingLimits::default();
    configure(&mut limits);
    limits
}

/// Reads from `stream` until the server closes it; what it sent before.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    tokio::time::timeout(LIMIT, async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .expect("the server closed the connection in time");
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_identical_requests_store_a_bounded_number_of_events() {
    let (fixture, listener) = sent_campaign_with(&support::list(2, 1), HTML).await;
    let addr = listener.local_addr().unwrap();
    let (store, stop, task) = serve_with(&fixture, listener, |server| server);
    let (pixel, urls, _, _) = urls_of(&fixture, "user1@d0.example");
    let (pixel, click) = (path_of(&pixel), path_of(&urls[1]));
    let clients = (0..4).map(|c| {
        let (pixel, click) = (pixel.clone(), click.clone());
        tokio::spawn(async move {
            let mut connection = KeepAlive::connect(addr).await;
            for i in 0..2_500 {
                let path = if (i + c) % 2 == 0 { &pixel } else { &click };
                let answer = connection.get(path).await;
                assert!(matches!(answer.status, 200 | 302), "{}", answer.status);
            }
        })
    });
    for client in clients.collect::<Vec<_>>() {
        tokio::time::timeout(LIMIT * 5, client)
            .await
            .unwrap()
            .unwrap();
    }
    let events = store.tracking_events("test-campaign", 0).unwrap();
    assert_eq!(events.len(), 2, "one open and one click: {events:?}");
    let counts = store.tracking_totals("test-campaign").unwrap();
    assert_eq!((counts.opens, counts.clicks), (1, 1), "{counts:?}");
    stop.cancel();
    tokio::time::timeout(LIMIT, task).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_cap_holds_without_dedupe_and_across_a_restart() {
    let (fixture, listener) = sent_campaign_with(&support::list(2, 1), HTML).await;
    let addr = listener.local_addr().unwrap();
    let capped = limits(|l| {
        l.dedupe_window = Duration::ZERO;
        l.daily_cap = 5;
    });
    let (pixel, _, _, _) = urls_of(&fixture, "user0@d0.example");
    let pixel = path_of(&pixel);
    let (store, stop, task) = serve_with(&fixture, listener, |s| s.limits(capped.clone()));
    let mut connection = KeepAlive::connect(addr).await;
    for _ in 0..20 {
        assert_eq!(connection.get(&pixel).await.status, 200);
    }
    drop(connection);
    assert_eq!(store.tracking_events("test-campaign", 0).unwrap().len(), 5);
    stop.cancel();
    tokio::time::timeout(LIMIT, task).await.unwrap().unwrap();
    drop(store);

    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let (store, stop, task) = serve_with(&fixture, listener, |s| s.limits(capped));
    for _ in 0..5 {
        assert_eq!(get(addr, &pixel).await.status, 200, "still answered");
    }
    assert_eq!(
        store.tracking_events("test-campaign", 0).unwrap().len(),
        5,
        "the day's count was kept in the store"
    );
    stop.cancel();
    tokio::time::timeout(LIMIT, task).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_sending_a_header_byte_per_second_is_cut() {
    let (fixture, listener) = sent_campaign_with(&support::list(1, 1), HTML).await;
    let addr = listener.local_addr().unwrap();
    let short = limits(|l| l.header_timeout = Duration::from_secs(1));
    let (_store, stop, task) = serve_with(&fixture, listener, |s| s.limits(short));
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nX-Slow: {}\r\n\r\n",
        "a".repeat(60)
    );
    let trickle = tokio::spawn(async move {
        let mut sent = 0;
        for byte in head.bytes() {
            if writer.write_all(&[byte]).await.is_err() {
                break;
            }
            sent += 1;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        sent
    });
    let mut seen = Vec::new();
    tokio::time::timeout(LIMIT, reader.read_to_end(&mut seen))
        .await
        .expect("the slow client was cut in time")
        .ok();
    let seen = String::from_utf8_lossy(&seen);
    assert!(!seen.contains("200 OK"), "{seen}");
    trickle.abort();
    assert_eq!(get(addr, "/healthz").await.status, 200, "others are served");
    stop.cancel();
    tokio::time::timeout(LIMIT, task).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_kept_alive_connection_is_closed() {
    let (fixture, listener) = sent_campaign_with(&support::list(1, 1), HTML).await;
    let addr = listener.local_addr().unwrap();
    let idle = limits(|l| {
        l.idle_timeout = Duration::from_secs(1);
        l.header_timeout = Duration::from_secs(600);
    });
    let (_store, stop, task) = serve_with(&fixture, listener, |s| s.limits(idle));
    let mut connection = KeepAlive::connect(addr).await;
    connection.send("/healthz").await;
    // The answer (unless this client was so slow that it idled before asking), then the
    // close: the header timeout is far off, so only idling closes it.
    if let Some(answer) = connection.answer().await {
        assert_eq!(answer.status, 200);
        assert!(connection.answer().await.is_none(), "closed while idle");
    }
    stop.cancel();
    tokio::time::timeout(LIMIT, task).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_header_timeout_also_bounds_the_wait_for_the_next_request() {
    let (fixture, listener) = sent_campaign_with(&support::list(1, 1), HTML).await;
    let addr = listener.local_addr().unwrap();
    let short = limits(|l| {
        l.header_timeout = Duration::from_secs(1);
        l.idle_timeout = Duration::from_secs(600);
    });
    let (_store, stop, task) = serve_with(&fixture, listener, |s| s.limits(short));
    let mut connection = KeepAlive::connect(addr).await;
    connection.send("/healthz").await;
    if let Some(answer) = connection.answer().await {
        assert_eq!(answer.status, 200);
        assert!(connection.answer().await.is_none(), "closed while waiting");
    }
    stop.cancel();
    tokio::time::timeout(LIMIT, task).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_heads_and_unsubscribe_bodies_are_refused() {
    let (fixture, listener) = sent_campaign_with(&support::list(1, 1), HTML).await;
    let addr = listener.local_addr().unwrap();
    let (store, stop, task) = serve_with(&fixture, listener, |server| server);
    let (_, _, unsubscribe, _) = urls_of(&fixture, "user0@d0.example");

    let mut stream = TcpStream::connect(addr).await.unwrap();
    let filler = "x".repeat(1_000);
    let mut head = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n");
    for i in 0..100 {
        head.push_str(&format!("X-Filler-{i}: {filler}\r\n"));
    }
    head.push_str("\r\n");
    // The server may close before all 100 KB are written.
    let _ = tokio::time::timeout(LIMIT, stream.write_all(head.as_bytes())).await;
    let seen = String::from_utf8_lossy(&read_until_closed(&mut stream).await).into_owned();
    assert!(
        seen.is_empty() || seen.starts_with("HTTP/1.1 431"),
        "refused or closed: {seen}"
    );

    // A one-click POST announcing 100 KB: 413 before the body is read, nothing recorded.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let post = format!(
        "POST {} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: {BROWSER}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 102400\r\n\r\nList-Unsubscribe=One-Click",
        path_of(&unsubscribe)
    );
    stream.write_all(post.as_bytes()).await.unwrap();
    let seen = String::from_utf8_lossy(&read_until_closed(&mut stream).await).into_owned();
    assert!(seen.starts_with("HTTP/1.1 413"), "{seen}");
    assert!(store.suppression("user0@d0.example").unwrap().is_none());
    assert_eq!(get(addr, "/healthz").await.status, 200, "still serving");
    stop.cancel();
    tokio::time::timeout(LIMIT, task).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_past_the_cap_waits_for_a_free_place() {
    let (fixture, listener) = sent_campaign_with(&support::list(1, 1), HTML).await;
    let addr = listener.local_addr().unwrap();
    let two = limits(|l| {
        l.max_connections = 2;
        l.header_timeout = Duration::from_secs(600);
        l.idle_timeout = Duration::from_secs(600);
    });
    let (_store, stop, task) = serve_with(&fixture, listener, |s| s.limits(two));
    let mut first = KeepAlive::connect(addr).await;
    let mut second = KeepAlive::connect(addr).await;
    assert_eq!(first.get("/healthz").await.status, 200);
    assert_eq!(second.get("/healthz").await.status, 200);
    let mut third = KeepAlive::connect(addr).await;
    third.send("/healthz").await;
    let waiting = tokio::time::timeout(Duration::from_millis(500), third.answer()).await;
    assert!(
        waiting.is_err(),
        "the third connection is not served while two are open"
    );
    drop(first);
    let answer = third.answer().await.expect("served once a place is free");
    assert_eq!(answer.status, 200);
    drop(second);
    stop.cancel();
    tokio::time::timeout(LIMIT, task).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_want_the_bearer_token() {
    let (fixture, listener) = sent_campaign_with(&support::list(1, 1), HTML).await;
    let addr = listener.local_addr().unwrap();
    let (store, stop, task) = serve_with(&fixture, listener, |server| server);
    assert_eq!(
        get(addr, "/metrics").await.status,
        404,
        "not served without a token"
    );
    stop.cancel();
    tokio::time::timeout(LIMIT, task).await.unwrap().unwrap();
    drop(store);

    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let (_store, stop, task) = serve_with(&fixture, listener, |server| {
        server.metrics_token(METRICS_TOKEN.to_owned().into())
    });
    let bearer = |token: &str| format!("Bearer {token}");
    let no_token = get(addr, "/metrics").await;
    assert_eq!(no_token.status, 401);
    assert_eq!(no_token.header("www-authenticate"), Some("Bearer"));
    let wrong = request_with(
        addr,
        "GET",
        "/metrics",
        &[("Authorization", &bearer("nope"))],
        "",
    )
    .await;
    assert_eq!(wrong.status, 401);
    let right = request_with(
        addr,
        "GET",
        "/metrics",
        &[("Authorization", &bearer(METRICS_TOKEN))],
        "",
    )
    .await;
    assert_eq!(right.status, 200);
    assert!(
        right.text().contains("volley_tracking_requests_total"),
        "{}",
        right.text()
    );
    assert!(!right.text().contains(METRICS_TOKEN));
    stop.cancel();
    tokio::time::timeout(LIMIT, task).await.unwrap().unwrap();
}

/// Runs curl (an independent HTTP client) with `args`; its standard output.
async fn curl(args: &[&str]) -> String {
    let output = tokio::time::timeout(
        LIMIT,
        tokio::process::Command::new("curl")
            .args(["--silent", "--show-error", "--max-time", "30"])
            .args(args)
            .output(),
    )
    .await
    .expect("curl finished in time")
    .expect("curl is needed by this test: apt-get install -y curl");
    assert!(
        output.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The 302 answer's `Location` to a GET of `url`, as curl received it.
async fn location_by_curl(url: &str) -> String {
    let head = curl(&["-o", "/dev/null", "-D", "-", "-A", BROWSER, url]).await;
    assert!(head.starts_with("HTTP/1.1 302"), "{head}");
    head.lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("location")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no Location: {head}"))
}

/// The host of an absolute URL as a browser reads it (after any `user@`).
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority.rsplit('@').next().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_value_cannot_move_a_tracked_link_to_another_host_seen_by_curl() {
    let csv =
        "email,first_name,city\nuser0@d0.example,Eve,@evil.example\nuser1@d0.example,Bob,/sale\n";
    let (fixture, listener) = sent_campaign_with(csv, HTML).await;
    let addr: SocketAddr = listener.local_addr().unwrap();
    let (_store, stop, task) = serve_with(&fixture, listener, |server| {
        server.metrics_token(METRICS_TOKEN.to_owned().into())
    });
    let (_, urls, _, _) = urls_of(&fixture, "user0@d0.example");
    let mut locations = Vec::new();
    for url in &urls[..2] {
        let url = format!("http://{addr}{}", path_of(url));
        locations.push(location_by_curl(&url).await);
    }
    assert_eq!(
        locations,
        [
            "https://shop.example%40evil%2Eexample",
            "https://shop.example/city/%40evil.example?from=%40evil.example",
        ]
    );
    for location in &locations {
        assert!(host_of(location).starts_with("shop.example"), "{location}");
        assert!(!host_of(location).contains("evil.example"), "{location}");
    }
    let (_, urls, _, _) = urls_of(&fixture, "user1@d0.example");
    let url = format!("http://{addr}{}", path_of(&urls[1]));
    assert_eq!(
        location_by_curl(&url).await,
        "https://shop.example/city/%2Fsale?from=%2Fsale"
    );
    // And /metrics through curl, with and without the token.
    let metrics = format!("http://{addr}/metrics");
    let denied = curl(&["-o", "/dev/null", "-w", "%{http_code}", &metrics]).await;
    assert_eq!(denied, "401");
    let header = format!("Authorization: Bearer {METRICS_TOKEN}");
    let body = curl(&["-H", &header, &metrics]).await;
    assert!(
        body.contains("volley_tracking_requests_total{route=\"click\",result=\"ok\"} 3"),
        "{body}"
    );
    stop.cancel();
    tokio::time::timeout(LIMIT, task).await.unwrap().unwrap();
}
