//! Topics and the preference page (issue 22), end to end through the `volley` binary: a
//! one-click unsubscribe (curl) from a `digest` campaign keeps the next digest from the
//! recipient but not a `product-news` campaign; the suppression list's export and import
//! keep topics; the preference page refuses a forged CSRF token and a cross-site post
//! (curl), and works in headless Chromium driven over the DevTools protocol.

use crate::support::{list, output_of, text, volley, Fixture};
use crate::tracking::{serve_tracking, tracking_path, Server};
use std::process::Command;

const KEY: &str = "cli-topics-key-0123456789abcdef01";
const USER: &str = "user0@d0.example";

/// Runs curl (an independent HTTP client) with `args`; its standard output (the status
/// code last, from `-w`). Fails loudly when curl is missing.
fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl must be installed (apt-get install curl)");
    assert!(out.status.success(), "curl {args:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

/// The status code curl printed last.
fn status_of(out: &str) -> &str {
    out.rsplit('\n').next().unwrap_or("")
}

/// A tracking server on the fixture's store and three campaign files sharing that store:
/// `digest-1` and `digest-2` (topic `digest`) and `news-1` (topic `product-news`).
fn topic_campaigns(fixture: &mut Fixture) -> (Server, String) {
    let store = volley_testkit::store::store_arg(&fixture.path("campaign.volley"));
    let env = [("VOLLEY_TRACKING_KEY", KEY)];
    let (server, banner) = serve_tracking(&store, &["--seconds", "300"], &env);
    let base = format!("http://{}", tracking_path(&banner, "http://", ' '));
    std::fs::write(
        fixture.path("body.html"),
        "<p>Hello {{ name }}. <a href=\"{{ preferences_url }}\">Your preferences</a></p>\n",
    )
    .unwrap();
    let tracking =
        format!("[tracking]\nbase_url = \"{base}\"\nkey_env = \"VOLLEY_TRACKING_KEY\"\n");
    for (id, topic, subject) in [
        (
            "digest-1",
            "topic = \"digest\"\ntopic_name = \"Weekly digest\"",
            "Digest one",
        ),
        (
            "digest-2",
            "topic = \"digest\"\ntopic_name = \"Weekly digest\"",
            "Digest two",
        ),
        (
            "news-1",
            "topic = \"product-news\"\ntopic_name = \"Product news\"",
            "News one",
        ),
    ] {
        let toml = fixture
            .toml
            .clone()
            .id(id)
            .subject(subject)
            .html("body.html")
            .campaign_line(topic)
            .section(&tracking)
            .section("[store]\npath = \"campaign.volley\"\n");
        toml.write(&fixture.path(&format!("{id}.toml")));
    }
    (server, base)
}

/// Sends campaign `id` to the end; its `volley status --json`.
async fn send(fixture: &Fixture, id: &str) -> serde_json::Value {
    let file = fixture.path(&format!("{id}.toml")).display().to_string();
    let env = [("VOLLEY_TRACKING_KEY", KEY)];
    let sent = output_of(&["send", &file, "--no-progress"], &env).await;
    assert_eq!(
        sent.status.code(),
        Some(0),
        "{}{}",
        text(&sent.stdout),
        text(&sent.stderr)
    );
    let status = output_of(&["status", &file, "--json"], &[]).await;
    assert_eq!(status.status.code(), Some(0), "{}", text(&status.stderr));
    serde_json::from_slice(&status.stdout).unwrap()
}

/// The message of the campaign with `subject` to `USER` (quoted-printable soft breaks
/// joined), if the sink has one.
fn message_to_user(fixture: &Fixture, subject: &str) -> Option<String> {
    fixture
        .sink
        .received()
        .into_iter()
        .map(|m| {
            (
                m.rcpt_to[0].clone(),
                String::from_utf8_lossy(&m.data).replace("=\r\n", ""),
            )
        })
        .find(|(to, data)| to == USER && data.contains(&format!("Subject: {subject}")))
        .map(|(_, data)| data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_unsubscribe_stops_the_digest_but_not_product_news() {
    let mut fixture = Fixture::new(&list(3), crate::support::PASSWORD).await;
    let (server, base) = topic_campaigns(&mut fixture);

    assert_eq!(send(&fixture, "digest-1").await["delivered"], 3);
    let first = message_to_user(&fixture, "Digest one").expect("the first digest");
    let path = tracking_path(&first, &format!("{base}/u/"), '>');
    let one_click = curl(&[
        "-X",
        "POST",
        "-d",
        "List-Unsubscribe=One-Click",
        &format!("{base}/u/{path}"),
    ]);
    assert_eq!(status_of(&one_click), "200", "{one_click}");

    let digest = send(&fixture, "digest-2").await;
    assert_eq!(
        (digest["delivered"].as_u64(), digest["suppressed"].as_u64()),
        (Some(2), Some(1)),
        "{digest}"
    );
    assert!(message_to_user(&fixture, "Digest two").is_none());
    let news = send(&fixture, "news-1").await;
    assert_eq!(
        (news["delivered"].as_u64(), news["suppressed"].as_u64()),
        (Some(3), Some(0)),
        "{news}"
    );
    assert!(message_to_user(&fixture, "News one").is_some());

    // The preference page: the digest unticked, product news ticked; a forged token and a
    // cross-site post are refused and change nothing.
    let page_path = tracking_path(&first, &format!("{base}/p/"), '"');
    let page_url = format!("{base}/p/{page_path}");
    let page = curl(&[&page_url]);
    assert_eq!(status_of(&page), "200", "{page}");
    assert!(
        page.contains("id=\"topic-digest\" name=\"topic\" value=\"digest\">"),
        "{page}"
    );
    assert!(page.contains("value=\"product-news\" checked>"), "{page}");
    assert!(
        page.contains("<label for=\"topic-digest\">Weekly digest</label>"),
        "{page}"
    );
    let csrf = tracking_path(&page, "name=\"csrf\" value=\"", '"');
    let everything = "shown=digest&shown=product-news&topic=digest&topic=product-news";
    let (issued, _) = csrf.split_once('.').unwrap();
    let forged = format!("csrf={issued}.AAAAAAAAAAAAAAAAAAAAAA&{everything}");
    let refused = curl(&["-X", "POST", "-d", &forged, &page_url]);
    assert_eq!(status_of(&refused), "403", "{refused}");
    let cross = format!("csrf={csrf}&{everything}");
    let origin = curl(&[
        "-X",
        "POST",
        "-H",
        "Origin: https://evil.example",
        "-d",
        &cross,
        &page_url,
    ]);
    assert_eq!(status_of(&origin), "403", "{origin}");
    // Hostile bodies: too large, too many fields.
    let big = fixture.path("big.form");
    std::fs::write(&big, "x".repeat(20_000)).unwrap();
    let large = curl(&[
        "-X",
        "POST",
        "--data-binary",
        &format!("@{}", big.display()),
        &page_url,
    ]);
    assert_eq!(status_of(&large), "413", "{large}");
    let many = format!("csrf={csrf}&{}", "x=1&".repeat(300));
    let fields = curl(&["-X", "POST", "-d", &many, &page_url]);
    assert_eq!(status_of(&fields), "400", "{fields}");
    let unchanged = curl(&[&page_url]);
    assert!(unchanged.contains("value=\"digest\">"), "{unchanged}");
    // The real form, as a browser posts it: the digest again (a 303 back to the page).
    let saved = curl(&["-X", "POST", "-d", &cross, &page_url]);
    assert_eq!(status_of(&saved), "303", "{saved}");
    let rejoined = curl(&[&format!("{page_url}?saved=1")]);
    assert!(rejoined.contains("value=\"digest\" checked>"), "{rejoined}");
    assert!(
        rejoined.contains("Your preferences are saved."),
        "{rejoined}"
    );
    drop(server);
}

#[test]
fn suppress_export_and_import_keep_topics() {
    let dir = tempfile::tempdir().unwrap();
    let store = volley_testkit::store::store_arg(&dir.path().join("a.volley"));
    let other = volley_testkit::store::store_arg(&dir.path().join("b.volley"));
    let run = |args: &[&str]| {
        let out = volley().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    };
    run(&["suppress", "add", "--store", &store, "a@x.example"]);
    run(&[
        "suppress",
        "add",
        "--store",
        &store,
        "--topic",
        "digest",
        "a@x.example",
    ]);
    run(&[
        "suppress",
        "add",
        "--store",
        &store,
        "--topic",
        "digest",
        "b@x.example",
    ]);
    let csv = dir.path().join("list.csv");
    run(&[
        "suppress",
        "export",
        "--store",
        &store,
        "--out",
        &csv.display().to_string(),
    ]);
    let exported = std::fs::read_to_string(&csv).unwrap();
    let rows: Vec<&str> = exported.lines().collect();
    assert_eq!(rows[0], "email,reason,at,campaign,detail,topic");
    assert!(
        rows[1].starts_with("a@x.example,manual,") && rows[1].ends_with(','),
        "{exported}"
    );
    assert!(
        rows[2].starts_with("a@x.example,manual,") && rows[2].ends_with(",digest"),
        "{exported}"
    );
    assert!(
        rows[3].starts_with("b@x.example,") && rows[3].ends_with(",digest"),
        "{exported}"
    );
    assert_eq!(rows.len(), 4, "{exported}");

    let imported = run(&[
        "suppress",
        "import",
        "--store",
        &other,
        &csv.display().to_string(),
    ]);
    assert!(imported.contains("imported 3 addresses"), "{imported}");
    let again = run(&["suppress", "export", "--store", &other]);
    let topics = |csv: &str| -> Vec<String> {
        csv.lines()
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                format!("{} {}", f[0], f[f.len() - 1])
            })
            .collect()
    };
    assert_eq!(topics(&again), topics(&exported));

    // A topic that is not an id is refused with its line and field.
    std::fs::write(&csv, "email,topic\nc@x.example,Not An Id\n").unwrap();
    let bad = volley()
        .args([
            "suppress",
            "import",
            "--store",
            &other,
            &csv.display().to_string(),
        ])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        text(&bad.stderr).contains("line 2, field topic"),
        "{}",
        text(&bad.stderr)
    );
    run(&[
        "suppress",
        "remove",
        "--store",
        &other,
        "--topic",
        "digest",
        "b@x.example",
    ]);
    assert!(!run(&["suppress", "export", "--store", &other]).contains("b@x.example"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preference_page_works_in_headless_chromium() {
    let mut fixture = Fixture::new(&list(2), crate::support::PASSWORD).await;
    let (server, base) = topic_campaigns(&mut fixture);
    assert_eq!(send(&fixture, "digest-1").await["delivered"], 2);
    assert_eq!(send(&fixture, "news-1").await["delivered"], 2);
    let first = message_to_user(&fixture, "Digest one").expect("the digest");
    let page_url = format!(
        "{base}/p/{}",
        tracking_path(&first, &format!("{base}/p/"), '"')
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cli/preferences_cdp.py");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("/usr/bin/python3")
            .args([script, &page_url, "digest"])
            .output()
            .expect("/usr/bin/python3 must be installed (with python3-websocket and chromium)")
    });
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), out)
        .await
        .expect("the Chromium run took over two minutes")
        .unwrap();
    assert!(
        out.status.success(),
        "chromium run failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["before"]["checked"], true, "{seen}");
    assert_eq!(seen["before"]["label"], "Weekly digest", "{seen}");
    assert_eq!(seen["before"]["boxes"], 3, "{seen}");
    assert_eq!(seen["after"]["saved"], true, "{seen}");
    assert_eq!(seen["after"]["checked"], false, "{seen}");
    drop(server);

    // The store says so too: a digest entry from the preference page, nothing global.
    let store = volley_testkit::store::store_arg(&fixture.path("campaign.volley"));
    let listed = output_of(&["suppress", "export", "--store", &store], &[]).await;
    let listed = text(&listed.stdout);
    let rows: Vec<&str> = listed.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{listed}");
    assert!(
        rows[0].starts_with(USER) && rows[0].ends_with("preference page,digest"),
        "{listed}"
    );
}

#[test]
fn the_api_keeps_the_topic_of_each_suppression() {
    use crate::api::{ApiServer, READ, SEND};
    let server = ApiServer::start("max_upload = 4096");
    let put = |address: &str, body: &str| {
        let args = [
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/json",
            "-d",
            body,
        ];
        server.curl(Some(SEND), &args, &format!("/api/suppressions/{address}"))
    };
    let added = put("a@example.com", r#"{"topic":"digest"}"#);
    assert_eq!(added.status, 201, "{added:?}");
    assert_eq!(added.json()["topic"], "digest");
    assert_eq!(put("a@example.com", "").status, 201);
    assert_eq!(put("b@example.com", r#"{"topic":"digest"}"#).status, 201);
    put("b@example.com", r#"{"topic":"Not An Id"}"#).assert_problem(422, Some("topic"));
    let csv = server.dir.join("topics.csv");
    std::fs::write(&csv, "email,topic\nc@example.com,news\n").unwrap();
    let upload = format!("@{}", csv.display());
    let args = ["-H", "Content-Type: text/csv", "--data-binary", &upload];
    let imported = server.curl(Some(SEND), &args, "/api/suppressions/import");
    assert_eq!(imported.json()["added"], 1, "{imported:?}");

    // Pages of one: every entry once, an address's global entry before its topics.
    let mut seen = Vec::new();
    let mut path = "/api/suppressions?limit=1".to_owned();
    for _ in 0..10 {
        let page = server.curl(Some(READ), &[], &path).json();
        for entry in page["suppressions"].as_array().unwrap() {
            seen.push(format!("{} {}", entry["email"], entry["topic"]));
        }
        match (page["next"].as_str(), page["next_topic"].as_str()) {
            (Some(next), Some(topic)) => {
                path = format!("/api/suppressions?limit=1&after={next}&after_topic={topic}")
            }
            (Some(next), None) => path = format!("/api/suppressions?limit=1&after={next}"),
            _ => break,
        }
    }
    assert_eq!(
        seen,
        [
            "\"a@example.com\" null",
            "\"a@example.com\" \"digest\"",
            "\"b@example.com\" \"digest\"",
            "\"c@example.com\" \"news\""
        ]
    );
    let delete = ["-X", "DELETE"];
    let path = "/api/suppressions/a@example.com?topic=digest";
    assert_eq!(server.curl(Some(SEND), &delete, path).status, 204);
    server
        .curl(Some(SEND), &delete, path)
        .assert_problem(404, None);
    let page = server.curl(Some(READ), &[], "/api/suppressions").json();
    assert_eq!(page["suppressions"].as_array().unwrap().len(), 3, "{page}");
}
