//! Store ownership with tracking: `volley track serve` owns the store; a `volley send` on it
//! is handed over and followed, `volley status` asks the server, and the opens and one-click
//! unsubscribes recorded over HTTP show in the status.

use crate::support::{list, output_of, text, volley, Fixture};
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use volley_testkit::http::{Answer, BROWSER};

const KEY: &str = "cli-tracking-key-0123456789abcdef";

/// Kills the tracking server when the test ends, however it ends.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.1 request to the tracking server at `addr` (`host:port`), as a browser.
pub async fn http(addr: &str, method: &str, path: &str, body: &str) -> Answer {
    let addr = addr.parse().unwrap();
    volley_testkit::http::request(addr, method, path, BROWSER, body).await
}

/// The path of the first URL in `data` that starts with `base` and runs to `end`.
pub fn tracking_path(data: &str, base: &str, end: char) -> String {
    let start = data.find(base).expect("a tracking URL in the message") + base.len();
    let rest = &data[start..];
    rest[..rest.find(end).unwrap_or(rest.len())].to_owned()
}

/// Starts `volley track serve` on `store`, listening on a port of its own, with `args` and
/// the environment `env`; returns the server and its banner, which it prints once it holds
/// the store.
pub fn serve_tracking(store: &str, args: &[&str], env: &[(&str, &str)]) -> (Server, String) {
    let mut server = volley()
        .args(["track", "serve", "--store", store, "--bind", "127.0.0.1:0"])
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut banner = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut banner)
        .unwrap();
    (Server(server), banner)
}

/// Opens the first message to `user0@d0.example` (its tracking pixel) and then unsubscribes
/// it in one click, on the tracking server at `addr` whose links start with `base`.
pub async fn open_and_unsubscribe(fixture: &Fixture, addr: &str, base: &str) {
    let first = fixture
        .sink
        .received()
        .into_iter()
        .find(|m| m.rcpt_to[0] == "user0@d0.example")
        .unwrap();
    let data = String::from_utf8_lossy(&first.data).replace("=\r\n", "");
    let unsubscribe = format!("/u/{}", tracking_path(&data, &format!("{base}/u/"), '>'));
    let pixel = format!("/o/{}", tracking_path(&data, &format!("{base}/o/"), '"'));
    assert_eq!(http(addr, "GET", &pixel, "").await.status, 200);
    let page = http(addr, "POST", &unsubscribe, "List-Unsubscribe=One-Click").await;
    assert_eq!(page.status, 200, "{}", page.text());
}

/// Starts `volley track serve` on the fixture's store (stopped after `seconds`) and makes
/// the fixture's campaign a tracked one with an HTML part linking to one page, plus `extra`
/// TOML; returns the server, its address and its base URL.
pub fn tracked_campaign(
    fixture: &mut Fixture,
    key: &str,
    seconds: u32,
    extra: &str,
) -> (Server, String, String) {
    let store = volley_testkit::store::store_arg(&fixture.path("campaign.volley"));
    let seconds = seconds.to_string();
    let env = [("VOLLEY_TRACKING_KEY", key)];
    let (server, banner) = serve_tracking(&store, &["--seconds", &seconds], &env);
    let addr = tracking_path(&banner, "http://", ' ');
    let base = format!("http://{addr}");
    let toml = fixture.toml.clone().html("body.html").section(&format!(
        "[tracking]\nbase_url = \"{base}\"\nkey_env = \"VOLLEY_TRACKING_KEY\"\n{extra}"
    ));
    fixture.set_campaign(toml);
    std::fs::write(
        fixture.path("body.html"),
        "<p>Hello {{ name }}, see <a href=\"https://shop.example/sale\">the sale</a>.</p>\n",
    )
    .unwrap();
    (server, addr, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tracking_server_owns_the_store_and_hosts_sends_and_status() {
    let mut fixture = Fixture::new(&list(5), crate::support::PASSWORD).await;
    let (server, addr, base) = tracked_campaign(&mut fixture, KEY, 120, "");

    let campaign = fixture.campaign();
    let send = output_of(
        &["send", &campaign, "--no-progress"],
        &[("VOLLEY_TRACKING_KEY", KEY)],
    )
    .await;
    let stdout = text(&send.stdout);
    assert_eq!(
        send.status.code(),
        Some(0),
        "{stdout}{}",
        text(&send.stderr)
    );
    // On sled the tracking server holds the store and the send is handed to it; a database
    // is shared, so the send runs itself beside the tracking server.
    if !volley_testkit::store::is_postgres() {
        assert!(stdout.contains("handed over"), "{stdout}");
    }
    assert!(stdout.contains("delivered 5 "), "{stdout}");

    open_and_unsubscribe(&fixture, &addr, &base).await;

    let campaign = fixture.campaign();
    let status = output_of(&["status", &campaign, "--json"], &[]).await;
    assert_eq!(status.status.code(), Some(0), "{}", text(&status.stderr));
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(json["delivered"], 5, "{json}");
    // An open seconds after delivery is a privacy proxy's prefetch, not a person's.
    assert_eq!(json["machine_opens"], 1, "{json}");
    assert_eq!(json["opened"], 0, "{json}");
    assert_eq!(json["unsubscribed"], 1, "{json}");
    assert_eq!(json["clicked"], 0, "{json}");
    drop(server);
}

/// Runs curl (an independent HTTP client) with `args`; its standard output. Fails loudly
/// when curl is missing.
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

#[test]
fn track_serve_serves_metrics_only_with_the_token_given_by_flag() {
    const TOKEN: &str = "metrics-token-from-the-environment";
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store.volley").display().to_string();
    let short = crate::support::run_with(
        &[
            "track",
            "serve",
            "--store",
            &store,
            "--metrics-token-env",
            "VOLLEY_METRICS_TOKEN",
        ],
        &[
            ("VOLLEY_TRACKING_KEY", KEY),
            ("VOLLEY_METRICS_TOKEN", "short"),
        ],
    );
    assert_eq!(short.status.code(), Some(2));
    let stderr = text(&short.stderr);
    assert!(
        stderr.contains("at least 16 bytes") && !stderr.contains("short"),
        "{stderr}"
    );

    let args = [
        "--seconds",
        "120",
        "--metrics-token-env",
        "VOLLEY_METRICS_TOKEN",
        "--header-timeout",
        "5s",
        "--idle-timeout",
        "30s",
        "--max-connections",
        "8",
        "--dedupe-window",
        "0",
        "--daily-cap",
        "10",
    ];
    let env = [
        ("VOLLEY_TRACKING_KEY", KEY),
        ("VOLLEY_METRICS_TOKEN", TOKEN),
    ];
    let (_server, banner) = serve_tracking(&store, &args, &env);
    assert!(!banner.contains(TOKEN), "{banner}");
    let addr = tracking_path(&banner, "http://", ' ');
    let url = format!("http://{addr}/metrics");
    assert_eq!(
        curl(&["-o", "/dev/null", "-w", "%{http_code}", &url]),
        "401"
    );
    let wrong = "Authorization: Bearer metrics-token-of-somebody-else";
    assert_eq!(
        curl(&["-o", "/dev/null", "-w", "%{http_code}", "-H", wrong, &url]),
        "401"
    );
    let right = format!("Authorization: Bearer {TOKEN}");
    let body = curl(&["-H", &right, &url]);
    assert!(body.contains("volley_tracking_not_stored_total"), "{body}");
}
