//! Content built for the reader: an HTML-only campaign's text part, generated from each
//! recipient's rendered HTML with numbered, tracked links (parsed by Python's `email`
//! module, an independent MIME reader).

use crate::support::{list, output_of, text, Fixture};
use crate::tracking::tracked_campaign;
use std::io::Write as _;
use std::process::{Command, Stdio};

const KEY: &str = "cli-content-key-0123456789abcdef";

/// An HTML body with two links, an image with alt text and a merge field.
const HTML: &str = "<html><body><h1>Hello {{ name }}</h1>\n\
<p>Our <a href=\"https://shop.example/sale\">winter sale</a> starts today; read\n\
<a href=\"https://blog.example/{{ name }}\">your story</a>.</p>\n\
<p><img src=\"https://cdn.example/logo.png\" alt=\"Acme logo\"></p></body></html>\n";

/// Python's `email` module reads `message`: its content type, then each part's type and
/// decoded text, separated by lines of `----`.
fn python_parts(message: &[u8]) -> String {
    let script = r#"
import sys, email, email.policy
m = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)
print(m.get_content_type())
for part in m.walk():
    if part.get_content_maintype() == 'text':
        print('----', part.get_content_type())
        print(part.get_content())
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed by this test (scripts/test-deps.sh)");
    child.stdin.take().unwrap().write_all(message).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "python3: {}", text(&output.stderr));
    text(&output.stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_html_only_campaign_gets_a_text_part_with_numbered_tracked_links() {
    let mut fixture = Fixture::new(&list(2), crate::support::PASSWORD).await;
    fixture.toml = fixture.toml.clone().no_text();
    let (server, _addr, base) = tracked_campaign(&mut fixture, KEY, 120, "");
    std::fs::write(fixture.path("body.html"), HTML).unwrap();
    let campaign = fixture.campaign();
    let send = output_of(
        &["send", &campaign, "--no-progress"],
        &[("VOLLEY_TRACKING_KEY", KEY)],
    )
    .await;
    assert_eq!(send.status.code(), Some(0), "{}", text(&send.stderr));

    let message = fixture
        .sink
        .received()
        .into_iter()
        .find(|m| m.rcpt_to[0] == "user1@d1.example")
        .unwrap();
    let parsed = python_parts(&message.data);
    let mut parts = parsed.split("---- ");
    assert_eq!(parts.next().map(str::trim), Some("multipart/alternative"));
    let plain = parts.next().unwrap();
    let html = parts.next().unwrap();
    assert!(plain.starts_with("text/plain"), "{parsed}");
    assert!(html.starts_with("text/html"), "{parsed}");
    assert!(plain.contains("Hello Name1"), "{plain}");
    assert!(plain.contains("[winter sale][1]"), "{plain}");
    assert!(plain.contains("[your story][2]"), "{plain}");
    assert!(plain.contains("Acme logo"), "{plain}");
    // The text's links are the HTML's tracked links, in the same order.
    let clicks: Vec<&str> = html
        .split('"')
        .filter(|s| s.starts_with(&format!("{base}/c/")))
        .collect();
    assert_eq!(clicks.len(), 2, "{html}");
    assert!(plain.contains(&format!("[1]: {}", clicks[0])), "{plain}");
    assert!(plain.contains(&format!("[2]: {}", clicks[1])), "{plain}");
    assert!(!plain.contains("/o/"), "no open pixel in the text: {plain}");
    assert!(!plain.contains("shop.example"), "{plain}");
    for line in plain.lines() {
        assert!(
            line.chars().count() <= 78 || line.contains(&base),
            "{line:?}"
        );
    }
    drop(server);
}

/// curl (an independent HTTP client) fetches `url`: the status code and the body.
fn curl(url: &str) -> (String, String) {
    let output = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "30"])
        .args(["--write-out", "\n%{http_code}", url])
        .output()
        .expect("curl is needed by this test: apt-get install -y curl");
    assert!(
        output.status.success(),
        "curl {url}: {}",
        text(&output.stderr)
    );
    let all = text(&output.stdout);
    let (body, code) = all.rsplit_once('\n').unwrap();
    (code.to_owned(), body.to_owned())
}

/// The view URL in the (decoded) HTML part of the message to `to`.
fn view_url(fixture: &Fixture, to: &str, base: &str) -> String {
    let message = fixture
        .sink
        .received()
        .into_iter()
        .find(|m| m.rcpt_to[0] == to)
        .unwrap();
    let parsed = python_parts(&message.data);
    let start = parsed.find(&format!("{base}/v/")).expect("a view URL");
    let rest = &parsed[start..];
    rest[..rest.find('"').unwrap()].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn view_in_browser_shows_each_recipient_their_own_message_until_gc() {
    let mut fixture = Fixture::new(&list(2), crate::support::PASSWORD).await;
    fixture.toml = fixture
        .toml
        .clone()
        .campaign_line("archive = true\narchive_fields = { name = \"there\" }");
    let (server, _addr, base) = tracked_campaign(&mut fixture, KEY, 120, "");
    std::fs::write(
        fixture.path("body.html"),
        "<html><body><p><a href=\"{{ view_url }}\">View in your browser</a></p>\n\
         <h1>Hello {{ name }}</h1><p>Your <a href=\"https://shop.example/{{ name }}\">page</a>.</p>\n\
         </body></html>\n",
    )
    .unwrap();
    let campaign = fixture.campaign();
    let env = [("VOLLEY_TRACKING_KEY", KEY)];
    let send = output_of(&["send", &campaign, "--no-progress"], &env).await;
    assert_eq!(send.status.code(), Some(0), "{}", text(&send.stderr));

    let first = view_url(&fixture, "user0@d0.example", &base);
    let second = view_url(&fixture, "user1@d1.example", &base);
    assert_ne!(first, second);
    let (code, page) = curl(&first);
    assert_eq!(code, "200", "{page}");
    assert!(page.contains("Hello Name0"), "{page}");
    assert!(!page.contains("Name1"), "{page}");
    assert!(
        page.contains(&format!("href=\"{first}\"")),
        "links to itself: {page}"
    );
    assert!(
        page.contains(&format!("{base}/c/")),
        "tracked links: {page}"
    );
    assert!(!page.contains("/o/"), "no open pixel: {page}");
    let (code, page) = curl(&second);
    assert_eq!(code, "200", "{page}");
    assert!(
        page.contains("Hello Name1") && !page.contains("Name0"),
        "{page}"
    );

    // A forged token: one character changed.
    let mut forged = first.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(curl(&forged).0, "404");

    // The public archive page: no recipient's data, the placeholder instead.
    let (code, page) = curl(&format!("{base}/a/cli-test"));
    assert_eq!(code, "200", "{page}");
    assert!(page.contains("Hello there"), "{page}");
    assert!(!page.contains("Name0") && !page.contains("Name1"), "{page}");
    assert!(!page.contains("/v/") && !page.contains("/c/"), "{page}");
    assert_eq!(curl(&format!("{base}/a/no-such-campaign")).0, "404");
    // Hostile paths are bounded like every other request of the tracking server.
    let (code, _) = curl(&format!("{base}/a/{}", "x".repeat(20_000)));
    assert!(code.starts_with('4'), "{code}");
    let (code, _) = curl(&format!("{base}/v/{}", "A".repeat(20_000)));
    assert!(code.starts_with('4'), "{code}");
    assert_eq!(curl(&first).0, "200", "still serving");

    // Viewing is not an open, and a forged token records nothing.
    let status = output_of(&["status", &campaign, "--json"], &[]).await;
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    for count in ["opened", "machine_opens", "clicked", "unsubscribed"] {
        assert_eq!(json[count], 0, "{count}: {json}");
    }

    // After gc, the recipient's message is gone for good.
    let events = fixture.path("events.jsonl");
    let export = output_of(
        &["events", &campaign, "--out", events.to_str().unwrap()],
        &[],
    )
    .await;
    assert_eq!(export.status.code(), Some(0), "{}", text(&export.stderr));
    let gc = output_of(&["gc", &campaign], &[]).await;
    assert_eq!(gc.status.code(), Some(0), "{}", text(&gc.stderr));
    assert!(
        text(&gc.stdout).contains("collected"),
        "{}",
        text(&gc.stdout)
    );
    let (code, page) = curl(&first);
    assert_eq!(code, "410", "{page}");
    assert!(page.contains("no longer available"), "{page}");
    drop(server);
}
