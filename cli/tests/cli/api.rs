//! The HTTP API of `volley serve`, driven over real sockets with curl (a client nobody here
//! wrote): tokens and scopes, problem documents naming the field at fault, the suppression
//! list (add, list a page at a time, remove, import a CSV), the upload limit, and the OpenAPI
//! document checked by an independent validator (Python's openapi-spec-validator).

use crate::support::{text, volley};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use volley_testkit::campaign::ServeToml;

pub const READ: &str = "read-secret-0123456789abcdef";
pub const SEND: &str = "send-secret-0123456789abcdef";
pub const ADMIN: &str = "admin-secret-0123456789abcdef";

/// A running `volley serve` with its API; killed when dropped.
pub struct ApiServer {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Where its files are.
    pub dir: PathBuf,
    _own: Option<tempfile::TempDir>,
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SHA-256 of `secret` in hex, as `sha256sum` prints it (the way the docs make a token).
pub fn sha256sum(secret: &str) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum (coreutils) is needed to make the tokens file");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(secret.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    text(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// Writes a tokens file with a `read`, a `send` and an `admin` token into `dir`.
fn write_tokens(dir: &Path) {
    let mut tokens = String::new();
    for (name, scope, secret) in [
        ("crm", "read", READ),
        ("shop", "send", SEND),
        ("ops", "admin", ADMIN),
    ] {
        tokens.push_str(&format!(
            "[[token]]\nname = \"{name}\"\nscopes = [\"{scope}\"]\nsha256 = \"{}\"\n\n",
            sha256sum(secret)
        ));
    }
    std::fs::write(dir.join("tokens.toml"), tokens).unwrap();
}

/// Adds `[api]` (on a port of its own, with `api_lines`) to the serve file `serve`, with a
/// tokens file beside it.
pub fn add_api(serve: &Path, api_lines: &str) {
    write_tokens(serve.parent().unwrap());
    let mut text = std::fs::read_to_string(serve).unwrap();
    text.push_str(&format!(
        "\n[api]\nbind = \"127.0.0.1:0\"\ntokens_file = \"tokens.toml\"\n{api_lines}\n"
    ));
    std::fs::write(serve, text).unwrap();
}

impl ApiServer {
    /// Starts `volley serve` on a new store with `[api]` on a port of its own and
    /// `api_lines` added to `[api]`, and waits for its banner.
    pub fn start(api_lines: &str) -> ApiServer {
        let dir = tempfile::tempdir().unwrap();
        let serve = dir.path().join("serve.toml");
        ServeToml::new("s.volley").write(&serve);
        add_api(&serve, api_lines);
        let path = dir.path().to_path_buf();
        ApiServer::start_in(&path, Some(dir))
    }

    /// Starts `volley serve --config serve.toml` in `dir` (its file written already).
    pub fn start_in(dir: &Path, own: Option<tempfile::TempDir>) -> ApiServer {
        let serve = dir.join("serve.toml");
        let mut child = volley()
            .args([
                "serve",
                "--tick",
                "1",
                "--config",
                &serve.display().to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut banner = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut banner)
            .unwrap();
        let base = banner
            .split("api on ")
            .nth(1)
            .unwrap_or_else(|| panic!("no API in the banner: {banner:?}"))
            .split([',', '\n'])
            .next()
            .unwrap()
            .trim()
            .to_owned();
        ApiServer {
            child,
            base,
            dir: dir.to_path_buf(),
            _own: own,
        }
    }

    /// `curl` of `path` with `args` (and the bearer `token`, when given): the status, the
    /// headers and the body.
    pub fn curl(&self, token: Option<&str>, args: &[&str], path: &str) -> Reply {
        let mut command = Command::new("curl");
        command.args(["-sS", "--max-time", "60", "-D", "-", "-o", "-"]);
        if let Some(token) = token {
            command.args(["-H", &format!("Authorization: Bearer {token}")]);
        }
        command.args(args).arg(format!("{}{path}", self.base));
        let out = command
            .output()
            .expect("curl is needed by the API tests (apt-get install curl)");
        assert!(out.status.success(), "curl failed: {}", text(&out.stderr));
        Reply::parse(&text(&out.stdout))
    }
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

impl Reply {
    fn parse(raw: &str) -> Reply {
        // A 100 Continue comes first when curl sends a large body.
        let mut rest = raw;
        loop {
            let (head, body) = rest.split_once("\r\n\r\n").unwrap_or((rest, ""));
            let status: u16 = head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("no status in {raw:?}"));
            if status == 100 {
                rest = body;
                continue;
            }
            return Reply {
                status,
                headers: head.to_ascii_lowercase(),
                body: body.to_owned(),
            };
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }

    /// Asserts a problem document of `status` naming `field`.
    pub fn assert_problem(&self, status: u16, field: Option<&str>) {
        assert_eq!(self.status, status, "{self:?}");
        assert!(
            self.headers
                .contains("content-type: application/problem+json"),
            "{self:?}"
        );
        let json = self.json();
        assert_eq!(json["status"], status, "{self:?}");
        if let Some(field) = field {
            assert_eq!(json["errors"][0]["field"], field, "{self:?}");
        }
    }
}

#[test]
fn tokens_and_scopes_decide_who_may_do_what() {
    let server = ApiServer::start("");
    let health = server.curl(None, &[], "/api/health");
    assert_eq!(
        (health.status, health.json()["status"].clone()),
        (200, "ok".into())
    );

    let anonymous = server.curl(None, &[], "/api/suppressions");
    anonymous.assert_problem(401, None);
    assert!(
        anonymous.headers.contains("www-authenticate: bearer"),
        "{anonymous:?}"
    );
    server
        .curl(Some("not-a-token-of-ours"), &[], "/api/suppressions")
        .assert_problem(401, None);

    let put = ["-X", "PUT"];
    // A read token cannot add to the list; a send token can, but cannot read it.
    server
        .curl(Some(READ), &put, "/api/suppressions/a@example.com")
        .assert_problem(403, None);
    let added = server.curl(Some(SEND), &put, "/api/suppressions/a@example.com");
    assert_eq!(added.status, 201, "{added:?}");
    assert_eq!(added.json()["email"], "a@example.com");
    assert_eq!(added.json()["reason"], "manual");
    server
        .curl(Some(SEND), &[], "/api/suppressions")
        .assert_problem(403, None);
    let listed = server.curl(Some(READ), &[], "/api/suppressions");
    assert_eq!(listed.status, 200, "{listed:?}");
    assert_eq!(listed.json()["suppressions"][0]["email"], "a@example.com");
    // Admin may do both.
    assert_eq!(
        server.curl(Some(ADMIN), &[], "/api/suppressions").status,
        200
    );
    let again = server.curl(Some(ADMIN), &put, "/api/suppressions/a@example.com");
    assert_eq!(again.status, 200, "{again:?}");
}

#[test]
fn problems_name_the_field_at_fault() {
    let server = ApiServer::start("");
    let put = ["-X", "PUT"];
    server
        .curl(Some(SEND), &put, "/api/suppressions/not-an-address")
        .assert_problem(422, Some("address"));
    let json = [
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/json",
        "--data",
    ];
    let with = |body: &str| {
        let mut args = json.to_vec();
        args.push(body);
        server.curl(Some(SEND), &args, "/api/suppressions/b@example.com")
    };
    with(r#"{"reason": "whim"}"#).assert_problem(422, Some("reason"));
    with(r#"{"reason": 3}"#).assert_problem(422, Some("reason"));
    with(r#"{"colour": "red"}"#).assert_problem(422, Some("colour"));
    with(r#"{"reason": "#).assert_problem(400, None);
    let added = with(r#"{"reason": "complaint", "detail": "said so on the phone"}"#);
    assert_eq!(added.status, 201, "{added:?}");
    assert_eq!(added.json()["reason"], "complaint");
    server
        .curl(Some(READ), &[], "/api/suppressions?limit=0")
        .assert_problem(422, Some("limit"));
    server
        .curl(Some(READ), &[], "/api/nothing-here")
        .assert_problem(404, None);
}

#[test]
fn suppressions_import_page_and_remove() {
    let server = ApiServer::start("max_upload = 4096");
    let csv = server.dir.join("suppress.csv");
    std::fs::write(
        &csv,
        "email,reason,detail\nc@example.com,,\nbroken-address,,\nd@example.com,complaint,fbl\n\
         e@example.com,whim,\nf@example.com,,\ng@example.com,,\nh@example.com,,\n",
    )
    .unwrap();
    let upload = format!("@{}", csv.display());
    let imported = server.curl(
        Some(SEND),
        &["-H", "Content-Type: text/csv", "--data-binary", &upload],
        "/api/suppressions/import",
    );
    assert_eq!(imported.status, 200, "{imported:?}");
    let json = imported.json();
    assert_eq!(json["added"], 5, "{json}");
    let errors: Vec<String> = json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(errors.len(), 2, "{json}");
    assert!(errors[0].contains("line 3, field email"), "{errors:?}");
    assert!(errors[1].contains("line 5, field reason"), "{errors:?}");

    // Pages of two: every address once, in order, then no next page.
    let mut seen = Vec::new();
    let mut path = "/api/suppressions?limit=2".to_owned();
    for _ in 0..10 {
        let page = server.curl(Some(READ), &[], &path).json();
        for entry in page["suppressions"].as_array().unwrap() {
            seen.push(entry["email"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(next) => path = format!("/api/suppressions?limit=2&after={next}"),
            None => break,
        }
    }
    assert_eq!(
        seen,
        ["c", "d", "f", "g", "h"].map(|l| format!("{l}@example.com")),
        "no repeats, no gaps"
    );

    let delete = ["-X", "DELETE"];
    let removed = server.curl(Some(SEND), &delete, "/api/suppressions/d@example.com");
    assert_eq!(removed.status, 204, "{removed:?}");
    server
        .curl(Some(SEND), &delete, "/api/suppressions/d@example.com")
        .assert_problem(404, None);

    // An upload past max_upload is refused whole: nothing of it is added.
    let mut big = String::from("email\n");
    for i in 0..400 {
        big.push_str(&format!("big{i}@example.com\n"));
    }
    std::fs::write(&csv, &big).unwrap();
    for extra in [&[][..], &["-H", "Transfer-Encoding: chunked"][..]] {
        let mut args = vec!["--data-binary", &upload];
        args.extend_from_slice(extra);
        server
            .curl(Some(SEND), &args, "/api/suppressions/import")
            .assert_problem(413, None);
    }
    let page = server
        .curl(Some(READ), &[], "/api/suppressions?limit=1000")
        .json();
    assert_eq!(page["suppressions"].as_array().unwrap().len(), 4, "{page}");
}

#[test]
fn the_openapi_document_passes_an_independent_validator() {
    let server = ApiServer::start("");
    let served = server.curl(None, &[], "/api/openapi.json");
    assert_eq!(served.status, 200);
    let checked_in =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../api/openapi.json"))
            .unwrap();
    assert_eq!(
        served.body, checked_in,
        "the served document is the checked-in one"
    );
    let file = server.dir.join("openapi.json");
    std::fs::write(&file, &served.body).unwrap();
    let python = crate::support::python_venv().display().to_string();
    let out = Command::new(&python)
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("{python} is needed to validate the OpenAPI document: {e}"));
    assert!(
        out.status.success(),
        "openapi-spec-validator refused the document: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("OK"), "{}", text(&out.stdout));
}

/// Polls `what` every 100 ms until it gives something, for at most `seconds`.
pub fn wait_until<T>(seconds: u64, what: &str, mut poll: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    loop {
        if let Some(found) = poll() {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "waited too long for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_served_campaign_shows_its_status_and_pages_its_events_without_repeats_or_gaps() {
    let fixture =
        crate::support::Fixture::new(&crate::support::list(60), crate::support::PASSWORD).await;
    let serve = ServeToml::new("campaign.volley")
        .campaign("campaign.toml")
        .write(&fixture.path("serve.toml"));
    add_api(&serve, "");
    let server = ApiServer::start_in(fixture.dir.path(), None);

    let listed = server.curl(Some(READ), &[], "/api/campaigns").json();
    assert!(
        listed["campaigns"].as_array().unwrap().is_empty() || listed["campaigns"][0] == "cli-test",
        "{listed}"
    );
    let status = wait_until(60, "the campaign to be sent", || {
        let reply = server.curl(Some(READ), &[], "/api/campaigns/cli-test");
        let json = (reply.status == 200).then(|| reply.json())?;
        (json["delivered"] == 60 && json["pending"] == 0).then_some(json)
    });
    assert_eq!(status["campaign"], "cli-test", "{status}");
    assert_eq!(fixture.sink.count(), 60);
    // The same keys as `volley status --json` prints, and the state of a campaign with a
    // document (on PostgreSQL, a served campaign is published as one).
    let cli = crate::support::output_of(&["status", &fixture.campaign(), "--json"], &[]).await;
    let cli: serde_json::Value = serde_json::from_slice(&cli.stdout).unwrap();
    let keys = |v: &serde_json::Value| {
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.retain(|k| k != "state");
        keys.sort();
        keys
    };
    assert_eq!(keys(&status), keys(&cli));
    let published = volley_testkit::store::is_postgres();
    assert_eq!(status.get("state").is_some(), published, "{status}");
    server
        .curl(Some(READ), &[], "/api/campaigns/no-such-campaign")
        .assert_problem(404, None);
    let report = server.curl(Some(READ), &[], "/api/campaigns/cli-test/report");
    assert_eq!(report.status, 200, "{report:?}");
    let cli =
        crate::support::output_of(&["report", &fixture.campaign(), "--format", "json"], &[]).await;
    let cli: serde_json::Value = serde_json::from_slice(&cli.stdout).unwrap();
    assert_eq!(
        keys(&report.json()),
        keys(&cli),
        "the keys of volley report --format json"
    );
    assert_eq!(report.json()["counts"]["delivered"], 60, "{report:?}");
    // Deciding needs `send`; this campaign has no A/B test to decide.
    let post = ["-X", "POST"];
    server
        .curl(Some(READ), &post, "/api/campaigns/cli-test/ab/decide")
        .assert_problem(403, None);
    server
        .curl(Some(SEND), &post, "/api/campaigns/cli-test/ab/decide")
        .assert_problem(409, None);
    server
        .curl(
            Some(READ),
            &[],
            "/api/campaigns/cli-test/events?after=nonsense",
        )
        .assert_problem(422, Some("after"));

    // Pages of seven, followed with their cursor until all 60 deliveries are in.
    let mut rows = Vec::new();
    let mut path = "/api/campaigns/cli-test/events?limit=7".to_owned();
    wait_until(60, "every delivery in the event pages", || {
        let page = server.curl(Some(READ), &[], &path).json();
        let events = page["events"].as_array().unwrap();
        assert!(events.len() <= 7, "{page}");
        rows.extend(events.iter().cloned());
        path = format!(
            "/api/campaigns/cli-test/events?limit=7&after={}",
            page["next"].as_str().unwrap()
        );
        let delivered = rows.iter().filter(|r| r["event"] == "delivered").count();
        (delivered >= 60).then_some(())
    });
    let mut recipients: Vec<&str> = rows
        .iter()
        .filter(|r| r["event"] == "delivered")
        .map(|r| r["recipient"].as_str().unwrap())
        .collect();
    assert_eq!(recipients.len(), 60, "no repeats");
    recipients.sort();
    recipients.dedup();
    assert_eq!(recipients.len(), 60, "no gaps");
    assert!(rows
        .iter()
        .all(|r| r["campaign"] == "cli-test" && r["variant"] == "main"));
    // Past the end: nothing, and the same cursor back.
    let cursor = path.split("after=").nth(1).unwrap().to_owned();
    let page = server.curl(Some(READ), &[], &path).json();
    assert_eq!(page["events"].as_array().unwrap().len(), 0, "{page}");
    assert_eq!(page["next"], cursor.as_str());
}

/// Reads what `stream` says until it closes or `seconds` pass; `None` when time ran out.
fn read_until_closed(stream: &mut std::net::TcpStream, seconds: u64) -> Option<String> {
    use std::io::Read as _;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(seconds)))
        .unwrap();
    let mut said = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Some(text(&said)),
            Ok(n) => said.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Some(text(&said)),
            Err(_) => return None,
        }
    }
}

#[test]
fn hostile_clients_meet_limits() {
    use std::io::Write as _;
    let server = ApiServer::start(
        "max_body = 1024\nheader_timeout = \"1s\"\nidle_timeout = \"2s\"\nmax_connections = 2",
    );
    // A JSON body past max_body: 413, naming the key.
    let big = format!("{{\"detail\": \"{}\"}}", "x".repeat(2000));
    let refused = server.curl(
        Some(SEND),
        &[
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/json",
            "--data",
            &big,
        ],
        "/api/suppressions/big@example.com",
    );
    refused.assert_problem(413, None);
    assert!(refused.json()["detail"]
        .as_str()
        .unwrap()
        .contains("max_body"));

    let addr = server.base.trim_start_matches("http://").to_owned();
    // A client that never finishes its headers is cut off.
    let mut slow = std::net::TcpStream::connect(&addr).unwrap();
    slow.write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    assert!(
        read_until_closed(&mut slow, 30).is_some(),
        "a slow client's connection stays open"
    );

    // Two connections held open take both places: a third waits until they go.
    let held: Vec<std::net::TcpStream> = (0..2)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    let mut third = std::net::TcpStream::connect(&addr).unwrap();
    third
        .write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    drop(held);
    let answer = read_until_closed(&mut third, 30).expect("the third connection was never served");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
