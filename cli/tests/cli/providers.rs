//! Provider webhooks in, as an operator wires them: `volley serve` with `[api]` and
//! `[providers.ses]`, `curl` (a client nobody here wrote) POSTs SES notifications signed by
//! the `openssl` command line, and `volley suppress list` shows what they did: a bounced
//! address suppressed as a hard bounce, a complaining one as a complaint, and a request
//! with a bad signature refused with a problem document and changing nothing.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

use crate::support::{run, text, volley};

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:ses-bounces";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/providers")
}

/// Runs a tool nobody here wrote; fails loudly when it is not installed.
fn tool(name: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(name)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("this test needs `{name}` (apt-get install {name}): {e}"));
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{name} {args:?}: {}",
        text(&out.stderr)
    );
    out.stdout
}

/// An SNS `Notification` on [`TOPIC`] carrying the SES fixture `name`, signed (version 1,
/// RSA-SHA1) by `openssl dgst -sha1 -sign` over SNS's canonical string.
fn signed_notification(name: &str, id: &str) -> Vec<u8> {
    let ses: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("ses").join(name)).unwrap()).unwrap();
    let message = serde_json::to_string(&ses).unwrap();
    let timestamp = "2026-12-05T09:00:00.000Z";
    let canonical = format!(
        "Message\n{message}\nMessageId\n{id}\nTimestamp\n{timestamp}\nTopicArn\n{TOPIC}\nType\nNotification\n"
    );
    let key = fixtures().join("keys/sns-signing.key");
    let signature = tool(
        "openssl",
        &["dgst", "-sha1", "-sign", key.to_str().unwrap()],
        canonical.as_bytes(),
    );
    use base64::Engine as _;
    let sns = serde_json::json!({
        "Type": "Notification",
        "MessageId": id,
        "TopicArn": TOPIC,
        "Message": message,
        "Timestamp": timestamp,
        "SignatureVersion": "1",
        "Signature": base64::engine::general_purpose::STANDARD.encode(signature),
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem",
    });
    serde_json::to_vec_pretty(&sns).unwrap()
}

/// `curl` POSTs `body` as SNS does; the status code and the answer's body.
fn post(url: &str, body: &[u8]) -> (u16, String) {
    let out = tool(
        "curl",
        &[
            "--silent",
            "--show-error",
            "--max-time",
            "30",
            "--header",
            "Content-Type: text/plain; charset=UTF-8",
            "--header",
            "x-amz-sns-message-type: Notification",
            "--data-binary",
            "@-",
            "--write-out",
            "\n%{http_code} %{content_type}",
            url,
        ],
        body,
    );
    let out = text(&out);
    let (answer, status) = out.rsplit_once('\n').unwrap();
    let code = status.split(' ').next().unwrap().parse().unwrap();
    (code, format!("{answer}\n{status}"))
}

/// A running `volley serve`, its stdout kept open to the end.
struct Server {
    child: Child,
    stdout: BufReader<ChildStdout>,
    /// Its API's base URL, from its first line.
    api: String,
}

impl Server {
    /// `volley serve` on `serve.toml` in `dir`.
    fn start(dir: &Path) -> Server {
        let mut child = volley()
            .args([
                "serve",
                "--config",
                dir.join("serve.toml").to_str().unwrap(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let Some(api) = first.split("api on ").nth(1) else {
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("serve did not start its API: {first}{err}");
        };
        let api = api.split(',').next().unwrap().trim().to_owned();
        Server { child, stdout, api }
    }

    /// Stops it with SIGTERM and checks it stopped cleanly.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        let stopped = self.child.wait_with_output().unwrap();
        assert_eq!(
            stopped.status.code(),
            Some(0),
            "{rest}{}",
            text(&stopped.stderr)
        );
    }
}

#[test]
fn a_signed_ses_bounce_and_complaint_suppress_their_addresses_and_a_forgery_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixtures().join("keys/sns-signing.pem"),
        dir.path().join("sns.pem"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("tokens.toml"),
        format!(
            "[[token]]\nname = \"ops\"\nscopes = [\"admin\"]\nsha256 = \"{}\"\n",
            "0".repeat(64)
        ),
    )
    .unwrap();
    let serve_toml =
        volley_testkit::campaign::ServeToml::new("store").write(&dir.path().join("serve.toml"));
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&serve_toml)
        .unwrap();
    write!(
        file,
        "\n[api]\nbind = \"127.0.0.1:0\"\ntokens_file = \"tokens.toml\"\n\
         [providers.ses]\ncert_file = \"sns.pem\"\ntopic_arns = [\"{TOPIC}\"]\n"
    )
    .unwrap();
    drop(file);

    let server = Server::start(dir.path());
    let url = format!("{}/api/providers/ses", server.api);
    let bounce = signed_notification("bounce.json", "4b3f2a7e-0000-4000-8000-000000000001");
    let (code, answer) = post(&url, &bounce);
    assert_eq!(code, 200, "{answer}");
    assert!(answer.contains("\"suppressed\":1"), "{answer}");
    let complaint = signed_notification("complaint.json", "4b3f2a7e-0000-4000-8000-000000000002");
    let (code, answer) = post(&url, &complaint);
    assert_eq!(code, 200, "{answer}");
    // A forgery: the bounce with another address, its signature left as it was.
    let forged = String::from_utf8(bounce)
        .unwrap()
        .replace("jane@example.com", "victim@example.com");
    let (code, answer) = post(&url, forged.as_bytes());
    assert_eq!(code, 401, "{answer}");
    assert!(
        answer.contains("urn:volley:problem:bad-signature"),
        "{answer}"
    );
    assert!(answer.ends_with("application/problem+json"), "{answer}");
    // A body past [api] max_body (1 MiB by default) is refused before it is parsed.
    let (code, answer) = post(&url, &vec![b'{'; 2 << 20]);
    assert_eq!(code, 413, "{answer}");

    server.stop();

    let store = volley_testkit::store::store_arg(&dir.path().join("store"));
    let listed = run(&["suppress", "list", "--store", &store]);
    let csv = text(&listed.stdout);
    assert_eq!(listed.status.code(), Some(0), "{}", text(&listed.stderr));
    let line = |address: &str| {
        csv.lines()
            .find(|l| l.starts_with(address))
            .map(str::to_owned)
    };
    let jane = line("jane@example.com").unwrap_or_else(|| panic!("{csv}"));
    assert!(jane.contains("hard_bounce"), "{csv}");
    assert!(jane.contains("550 5.1.1"), "{csv}");
    let richard = line("richard@example.com").unwrap_or_else(|| panic!("{csv}"));
    assert!(richard.contains("complaint"), "{csv}");
    assert!(line("victim@example.com").is_none(), "{csv}");
}
