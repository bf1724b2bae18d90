//! Abuse: the secrets a campaign holds (the relay password, the DKIM private key, the tracking
//! HMAC key) never show in what `volley` prints, even at `VOLLEY_LOG=trace`, in its errors,
//! or in any file it writes (store, report, export, `.eml`); and secret files that group or
//! others may read are warned about, while the send goes on.

use crate::support::{list, output_of, text, Fixture, PASSWORD};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;
use volley_testkit::nameserver::{NameServer, Zone};

/// The tracking HMAC key of these campaigns, read from `tracking.key`.
const TRACKING_KEY: &str = "abuse-hmac-key-Zq8v3Kx1Wm5T";

/// What every run gets: the most verbose logging there is.
const TRACE: (&str, &str) = ("VOLLEY_LOG", "trace");

/// One secret in one of the forms it could leak in, and what it is, for the failure message.
struct Needle {
    what: String,
    bytes: Vec<u8>,
}

/// Every form of the campaign's secrets worth looking for: `passwords` as written, in base64
/// (AUTH LOGIN) and inside an AUTH PLAIN response; the tracking key as written, in hex and
/// base64; and each base64 body line of every PEM key in `pems`, except a line that also
/// appears in the published public key.
fn needles(passwords: &[&str], pems: &[&str]) -> Vec<Needle> {
    let mut found = Vec::new();
    let mut add = |what: String, text: String| {
        found.push(Needle {
            what,
            bytes: text.into_bytes(),
        })
    };
    for password in passwords {
        add(format!("password {password:?}"), (*password).to_owned());
        add(
            format!("password {password:?} in base64"),
            STANDARD.encode(password),
        );
        add(
            format!("password {password:?} in AUTH PLAIN"),
            STANDARD.encode(format!("\0user\0{password}")),
        );
    }
    let key = TRACKING_KEY.as_bytes();
    add("tracking key".into(), TRACKING_KEY.to_owned());
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    add("tracking key in hex".into(), hex.to_uppercase());
    add("tracking key in hex".into(), hex);
    add("tracking key in base64".into(), STANDARD.encode(key));
    add(
        "tracking key in base64url".into(),
        URL_SAFE_NO_PAD.encode(key),
    );
    let public = std::fs::read_to_string(fixtures().join("rsa2048.txt")).unwrap();
    for pem in pems {
        for line in pem.lines().map(str::trim) {
            if line.len() >= 16 && !line.starts_with("-----") && !public.contains(line) {
                add(format!("DKIM key line {line}"), line.to_owned());
            }
        }
    }
    found
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/dkim")
}

/// Fails naming the secret and where it showed, with the text around it.
fn assert_clean(place: &str, haystack: &[u8], needles: &[Needle]) {
    for needle in needles {
        if let Some(at) = haystack
            .windows(needle.bytes.len())
            .position(|w| w == needle.bytes)
        {
            let start = at.saturating_sub(200);
            let end = (at + needle.bytes.len() + 200).min(haystack.len());
            panic!(
                "{} leaked in {place}:\n…{}…",
                needle.what,
                String::from_utf8_lossy(&haystack[start..end])
            );
        }
    }
}

/// Checks what one run printed (both streams).
fn assert_run_clean(command: &str, output: &Output, needles: &[Needle]) {
    assert_clean(&format!("`{command}` stdout"), &output.stdout, needles);
    assert_clean(&format!("`{command}` stderr"), &output.stderr, needles);
}

/// Checks every file under `dir` except the ones holding the secrets and the campaign file.
fn assert_files_clean(dir: &Path, needles: &[Needle]) -> usize {
    let inputs = ["pw.txt", "rsa.pem", "tracking.key", "campaign.toml"];
    let mut checked = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if !inputs.iter().any(|name| path == dir.join(name)) && path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert_clean(&path.display().to_string(), &bytes, needles);
            checked += 1;
        }
    }
    checked
}

/// The fixture's campaign, tracked with the key in `tracking.key`, its `[dns]` pointed at
/// `dns` (so `volley check` never leaves loopback).
fn track_and_resolve_locally(fixture: &mut Fixture, dns: &NameServer) {
    std::fs::write(fixture.path("tracking.key"), format!("{TRACKING_KEY}\n")).unwrap();
    std::fs::write(
        fixture.path("body.html"),
        "<p>Hi {{ name }}, <a href=\"https://shop.example/sale\">the sale</a></p>\n",
    )
    .unwrap();
    let toml = fixture.toml.clone().html("body.html").section(&format!(
        "[tracking]\nbase_url = \"https://t.example.com\"\nkey_file = \"tracking.key\"\n\
         unsubscribe_mailto = \"unsub@example.com\"\n\n\
         [dns]\nnameservers = [\"{}\"]\ntimeout = \"2s\"\nattempts = 1",
        dns.addr()
    ));
    fixture.set_campaign(toml);
}

/// A loopback DNS server that knows nothing of DKIM, SPF or DMARC (check rows fail quickly).
async fn dns() -> NameServer {
    let zone = Zone::parse("example.com A 127.0.0.1\n").unwrap();
    tokio::time::timeout(Duration::from_secs(10), NameServer::start(zone))
        .await
        .unwrap()
        .unwrap()
}

/// Runs `volley ARGS…` at trace level with `envs`, checks what it printed, and returns it.
async fn run_clean(args: &[&str], envs: &[(&str, &str)], needles: &[Needle]) -> Output {
    let mut all = vec![TRACE];
    all.extend_from_slice(envs);
    let output = output_of(args, &all).await;
    assert_run_clean(&args.join(" "), &output, needles);
    output
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_output_logs_or_files_of_any_command() {
    let mut fixture = Fixture::new(&list(5), PASSWORD).await;
    let dns = dns().await;
    track_and_resolve_locally(&mut fixture, &dns);
    let pem = std::fs::read_to_string(fixture.path("rsa.pem")).unwrap();
    let needles = needles(&[PASSWORD], &[&pem]);
    let campaign = fixture.campaign();
    let path = |name: &str| fixture.path(name).display().to_string();

    let sent = run_clean(&["send", &campaign, "--no-progress"], &[], &needles).await;
    let stderr = text(&sent.stderr);
    assert_eq!(sent.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("TRACE") && stderr.contains("DEBUG"),
        "VOLLEY_LOG=trace took effect:\n{stderr}"
    );
    assert_eq!(fixture.sink.count(), 5);

    let (report, events, out) = (path("report.json"), path("events.csv"), path("out"));
    let runs: Vec<Vec<&str>> = vec![
        vec!["status", &campaign],
        vec!["status", &campaign, "--json"],
        vec!["report", &campaign, "--format", "json"],
        vec!["report", &campaign, "--format", "json", "--out", &report],
        vec!["events", &campaign],
        vec!["events", &campaign, "--format", "csv", "--out", &events],
        vec!["check", &campaign],
        vec!["check", &campaign, "--json"],
        vec!["test-send", &campaign, "--to", "me@inbox.example"],
        vec!["send", &campaign, "--dry-run", &out],
    ];
    for args in &runs {
        let output = run_clean(args, &[], &needles).await;
        let code = output.status.code();
        let expected = if args[0] == "check" { [0, 1] } else { [0, 0] };
        assert!(
            code.is_some_and(|c| expected.contains(&c)),
            "{args:?} exited {code:?}: {}",
            text(&output.stderr)
        );
    }
    let report = std::fs::read_to_string(fixture.path("report.json")).unwrap();
    assert!(report.contains("cli-test"), "{report}");
    assert!(std::fs::read_to_string(fixture.path("events.csv"))
        .unwrap()
        .contains("delivered"));

    // The store, the report, the export and the .eml files: nothing there either.
    let checked = assert_files_clean(fixture.dir.path(), &needles);
    assert!(checked > 10, "only {checked} files were looked at");
    // What went over the wire is signed with the key, never carries it.
    for message in fixture.sink.received() {
        assert_clean("a sent message", &message.data, &needles);
    }
    dns.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_login_names_no_password() {
    let wrong = "Wr0ng-relay-passw0rd!";
    let mut fixture = Fixture::new(&list(3), PASSWORD).await;
    let dns = dns().await;
    track_and_resolve_locally(&mut fixture, &dns);
    // The password comes from the environment this time.
    let toml = std::fs::read_to_string(fixture.campaign())
        .unwrap()
        .replace(
            "password_file = \"pw.txt\"",
            "password_env = \"ABUSE_SMTP_PASSWORD\"",
        );
    std::fs::write(fixture.campaign(), toml).unwrap();
    let pem = std::fs::read_to_string(fixture.path("rsa.pem")).unwrap();
    let needles = needles(&[wrong, PASSWORD], &[&pem]);
    let campaign = fixture.campaign();
    let env = [("ABUSE_SMTP_PASSWORD", wrong)];

    let sent = run_clean(&["send", &campaign, "--no-progress"], &env, &needles).await;
    let stderr = text(&sent.stderr);
    assert_eq!(sent.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("535"), "the refusal is shown: {stderr}");
    let proof = ["test-send", &campaign, "--to", "me@inbox.example"];
    let proof = run_clean(&proof, &env, &needles).await;
    assert_eq!(proof.status.code(), Some(2), "{}", text(&proof.stderr));
    for args in [vec!["status", &campaign], vec!["check", &campaign]] {
        run_clean(&args, &env, &needles).await;
    }
    assert_eq!(fixture.sink.count(), 0);
    assert_files_clean(fixture.dir.path(), &needles);
    dns.shutdown().await;
}

/// A DKIM key that does not load.
enum BadKey {
    /// A key file with this text.
    File(String),
    /// A key file that is a folder, so cannot be read.
    Folder,
    /// A key in an environment variable, with this text.
    Env(String),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_or_unreadable_dkim_key_is_named_never_shown() {
    let mut fixture = Fixture::new(&list(3), PASSWORD).await;
    let dns = dns().await;
    track_and_resolve_locally(&mut fixture, &dns);
    let pem = std::fs::read_to_string(fixture.path("rsa.pem")).unwrap();
    // Valid PEM armour and base64, but the DER inside is cut short: not a key.
    let lines: Vec<&str> = pem.lines().collect();
    let mut broken: Vec<&str> = lines[..lines.len() / 2].to_vec();
    broken.push(lines[lines.len() - 1]);
    let broken = broken.join("\n") + "\n";
    // The same body as an RSA key under the wrong label, and a file that cannot be read.
    let mislabelled = pem.replace("PRIVATE KEY", "EC PRIVATE KEY");
    let needles = needles(&[PASSWORD], &[&pem]);
    let campaign = fixture.campaign();
    let original = std::fs::read_to_string(&campaign).unwrap();
    let cases = [
        ("a truncated key file", BadKey::File(broken.clone())),
        ("a mislabelled key file", BadKey::File(mislabelled)),
        ("a folder as key file", BadKey::Folder),
        ("a truncated key in the environment", BadKey::Env(broken)),
    ];
    for (case, bad) in cases {
        let (toml, env, named) = match &bad {
            BadKey::File(body) => {
                std::fs::write(fixture.path("bad.pem"), body).unwrap();
                (original.replace("rsa.pem", "bad.pem"), vec![], "bad.pem")
            }
            BadKey::Folder => {
                std::fs::create_dir_all(fixture.path("bad.pem")).unwrap();
                (original.replace("rsa.pem", "bad.pem"), vec![], "bad.pem")
            }
            BadKey::Env(pem) => (
                original.replace("key_file = \"rsa.pem\"", "key_env = \"ABUSE_DKIM_KEY\""),
                vec![("ABUSE_DKIM_KEY", pem.as_str())],
                "ABUSE_DKIM_KEY",
            ),
        };
        std::fs::write(&campaign, toml).unwrap();

        let sent = run_clean(&["send", &campaign, "--no-progress"], &env, &needles).await;
        let stderr = text(&sent.stderr);
        assert_eq!(sent.status.code(), Some(2), "{case}: {stderr}");
        assert!(
            stderr.contains(named),
            "{case}: the source is named: {stderr}"
        );
        let proof = ["test-send", &campaign, "--to", "me@inbox.example"];
        let proof = run_clean(&proof, &env, &needles).await;
        assert_eq!(proof.status.code(), Some(2), "{case}");
        let check = run_clean(&["check", &campaign, "--json"], &env, &needles).await;
        assert_eq!(check.status.code(), Some(1), "{case}");
        let _ = std::fs::remove_dir(fixture.path("bad.pem"));
        let _ = std::fs::remove_file(fixture.path("bad.pem"));
    }
    assert_eq!(fixture.sink.count(), 0);
    assert_files_clean(fixture.dir.path(), &needles);
    dns.shutdown().await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_files_others_may_read_are_warned_about_and_the_send_goes_on() {
    use std::os::unix::fs::PermissionsExt as _;
    let mut fixture = Fixture::new(&list(3), PASSWORD).await;
    let dns = dns().await;
    track_and_resolve_locally(&mut fixture, &dns);
    let secrets = ["pw.txt", "tracking.key", "rsa.pem"];
    let chmod = |mode: u32| {
        for name in secrets {
            let permissions = std::fs::Permissions::from_mode(mode);
            std::fs::set_permissions(fixture.path(name), permissions).unwrap();
        }
    };
    let campaign = fixture.campaign();
    let out = |name: &str| fixture.path(name).display().to_string();

    chmod(0o644);
    let loose = output_of(&["send", &campaign, "--dry-run", &out("loose")], &[]).await;
    let stderr = text(&loose.stderr);
    assert_eq!(
        loose.status.code(),
        Some(0),
        "warned, not stopped: {stderr}"
    );
    for name in secrets {
        let path = out(name);
        let warning = stderr
            .lines()
            .find(|line| line.contains(&format!("{path} holds a secret")))
            .unwrap_or_else(|| panic!("no warning about {path}:\n{stderr}"));
        assert!(
            warning.contains("WARN")
                && warning.contains("(mode 0644)")
                && warning.contains(&format!("`chmod 600 {path}`")),
            "{warning}"
        );
        assert_eq!(
            stderr.matches(&format!("{path} holds")).count(),
            1,
            "warned once: {stderr}"
        );
    }
    assert_eq!(std::fs::read_dir(fixture.path("loose")).unwrap().count(), 3);
    let check = output_of(&["check", &campaign, "--json"], &[]).await;
    let json: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
    let row = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["name"] == "secret files")
        .unwrap_or_else(|| panic!("no secret files row: {json}"));
    assert_eq!(row["status"], "warn", "{row}");
    let detail = row["detail"].as_str().unwrap();
    for key in [
        "relay.password_file",
        "tracking.key_file",
        "dkim[0].key_file",
    ] {
        assert!(detail.contains(key), "{detail}");
    }
    assert!(
        detail.contains(&format!("chmod 600 {}", out("rsa.pem"))),
        "{detail}"
    );

    chmod(0o600);
    let private = output_of(&["send", &campaign, "--dry-run", &out("private")], &[]).await;
    let stderr = text(&private.stderr);
    assert_eq!(private.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("holds a secret"), "{stderr}");
    assert!(!stderr.contains("chmod"), "{stderr}");
    let check = output_of(&["check", &campaign], &[]).await;
    let table = text(&check.stdout);
    let row = table
        .lines()
        .find(|line| line.contains("secret files"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(row.starts_with("PASS"), "{table}");
    assert!(
        !text(&check.stderr).contains("chmod"),
        "{}",
        text(&check.stderr)
    );
    dns.shutdown().await;
}
