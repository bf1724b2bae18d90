//! A relay with a self-signed certificate made the way most guides show (`openssl req -x509
//! …`, which marks it `CA:TRUE`), pinned by naming it in `[relay] ca_file`: `volley send`
//! delivers through it over STARTTLS with AUTH; a host name the certificate does not cover,
//! or no `ca_file` at all, stops the send (exit 2) with a message saying what to change.
//! Needs the `openssl` command (fails loudly without it).

use std::path::Path;
use std::process::{Command, Output};

use crate::support::{list, run, text, PASSWORD};
use volley_testkit::campaign::{copy_dkim_keys, CampaignToml, Relay};
use volley_testkit::sink::{Sink, SinkConfig, SinkTls, TestCa};

/// Makes `cert.pem` and `key.pem` in `dir` with the command from the guides.
fn openssl_self_signed(dir: &Path) {
    let output = Command::new("openssl")
        .current_dir(dir)
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-days",
            "365",
            "-subj",
            "/CN=relay.test",
            "-addext",
            "subjectAltName=DNS:relay.test,IP:127.0.0.1",
        ])
        .output()
        .unwrap_or_else(|e| {
            panic!("this test needs the openssl command line (apt-get install openssl): {e}")
        });
    assert!(
        output.status.success(),
        "openssl req failed: {}",
        text(&output.stderr)
    );
}

/// A campaign of `n` recipients in `dir` through the relay at `host:port`; `ca_file` line
/// as given (or none).
fn write_campaign(dir: &Path, host: &str, port: u16, ca_file: Option<&str>, n: usize) {
    copy_dkim_keys(dir);
    std::fs::write(dir.join("body.txt"), "Hello {{ name }}!\n").unwrap();
    std::fs::write(dir.join("list.csv"), list(n)).unwrap();
    std::fs::write(dir.join("pw.txt"), PASSWORD).unwrap();
    let mut relay = Relay::loopback(port)
        .host(host)
        .tls("starttls")
        .login("user", "pw.txt");
    if let Some(file) = ca_file {
        relay = relay.ca_file(file);
    }
    CampaignToml::new("tls-relay")
        .subject("Hi")
        .relay(relay)
        .dkim("rsa", "rsa.pem")
        .write(&dir.join("campaign.toml"));
}

/// A STARTTLS sink with AUTH presenting the openssl certificate of `dir`.
async fn relay(dir: &Path) -> Sink {
    openssl_self_signed(dir);
    let ca = TestCa::from_pem_files(&dir.join("cert.pem"), &dir.join("key.pem")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = SinkConfig {
        tls: SinkTls::StartTls,
        auth: Some(("user".into(), PASSWORD.into())),
        ..SinkConfig::default()
    };
    Sink::start_on(listener, config, Some(ca)).await.unwrap()
}

async fn send(dir: &Path) -> Output {
    let campaign = dir.join("campaign.toml").display().to_string();
    tokio::task::spawn_blocking(move || run(&["send", &campaign, "--no-progress"]))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_openssl_certificate_delivers_over_starttls() {
    let dir = tempfile::tempdir().unwrap();
    let sink = relay(dir.path()).await;
    write_campaign(
        dir.path(),
        "127.0.0.1",
        sink.addr().port(),
        Some("cert.pem"),
        5,
    );
    let output = send(dir.path()).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(text(&output.stdout).contains("delivered 5"), "{stderr}");
    let received = sink.received();
    assert_eq!(received.len(), 5);
    assert!(received
        .iter()
        .all(|m| m.tls && m.auth_user.as_deref() == Some("user")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_host_name_stops_with_the_names_the_certificate_has() {
    let dir = tempfile::tempdir().unwrap();
    let sink = relay(dir.path()).await;
    let port = sink.addr().port();
    write_campaign(dir.path(), "localhost", port, Some("cert.pem"), 3);
    let output = send(dir.path()).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "relay localhost:{port}: the TLS certificate is for relay.test, 127.0.0.1, not \
             localhost: set [relay] host to a name it covers"
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("NotValidForName") && !stderr.contains("Other("),
        "{stderr}"
    );
    assert!(!stderr.contains(PASSWORD), "{stderr}");
    assert_eq!(sink.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_signed_certificate_without_ca_file_says_where_to_put_it() {
    let dir = tempfile::tempdir().unwrap();
    let sink = relay(dir.path()).await;
    let port = sink.addr().port();
    write_campaign(dir.path(), "127.0.0.1", port, None, 3);
    let output = send(dir.path()).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "relay 127.0.0.1:{port}: the TLS certificate is self-signed and not trusted (no \
             ca_file is set): add the relay's certificate (PEM) to the file named by [relay] \
             ca_file"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("CaUsedAsEndEntity"), "{stderr}");
    assert_eq!(sink.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_text_login_to_a_loopback_relay_is_sent_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let config = SinkConfig {
        auth: Some(("user".into(), PASSWORD.into())),
        ..SinkConfig::default()
    };
    let sink = Sink::start(config).await.unwrap();
    write_campaign(dir.path(), "127.0.0.1", sink.addr().port(), None, 2);
    let path = dir.path().join("campaign.toml");
    let toml = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, toml.replace("tls = \"starttls\"", "tls = \"none\"")).unwrap();
    let output = send(dir.path()).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("relay.username") && stderr.contains("clear text"),
        "{stderr}"
    );
    assert!(!stderr.contains(PASSWORD), "{stderr}");
    let received = sink.received();
    assert_eq!(received.len(), 2);
    assert!(received
        .iter()
        .all(|m| !m.tls && m.auth_user.as_deref() == Some("user")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_not_offered_stops_before_any_login() {
    let dir = tempfile::tempdir().unwrap();
    let config = SinkConfig {
        auth: Some(("user".into(), PASSWORD.into())),
        ..SinkConfig::default()
    };
    let sink = Sink::start(config).await.unwrap();
    let port = sink.addr().port();
    write_campaign(dir.path(), "127.0.0.1", port, None, 2);
    let output = send(dir.path()).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "relay 127.0.0.1:{port}: the relay does not offer STARTTLS, so nothing was sent \
             (not even the password or token)"
        )),
        "{stderr}"
    );
    assert_eq!(sink.count(), 0);
}
