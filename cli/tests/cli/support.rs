//! Harness: a campaign in a temp dir sending to an in-process loopback sink, and a way to run
//! the `volley` binary with a time limit.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use volley::sink::{Sink, SinkConfig, SinkTls};

pub const PASSWORD: &str = "cli-relay-pw-123";

pub fn volley() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_volley"));
    command.env_remove("VOLLEY_LOG").stdin(Stdio::null());
    command
}

/// Runs `volley ARGS…`, killing it if it takes longer than two minutes.
pub fn run(args: &[&str]) -> Output {
    run_with(args, &[])
}

/// Like [`run`], with the environment variables `envs` set.
pub fn run_with(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut child = volley()
        .args(args)
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("volley {args:?} took too long");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub sink: Sink,
}

impl Fixture {
    pub async fn new(csv: &str, password: &str) -> Fixture {
        Fixture::with_sink(csv, password, SinkConfig::default()).await
    }

    pub async fn with_sink(csv: &str, password: &str, config: SinkConfig) -> Fixture {
        let sink = Sink::start(SinkConfig {
            tls: SinkTls::StartTls,
            auth: Some(("user".into(), PASSWORD.into())),
            ..config
        })
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/dkim");
        let path = |name: &str| dir.path().join(name);
        std::fs::copy(fixtures.join("rsa2048.pem"), path("rsa.pem")).unwrap();
        std::fs::write(path("ca.pem"), sink.ca_pem().unwrap()).unwrap();
        std::fs::write(path("body.txt"), "Hello {{ name }}!\n").unwrap();
        std::fs::write(path("list.csv"), csv).unwrap();
        std::fs::write(path("pw.txt"), password).unwrap();
        let toml = format!(
            r#"[campaign]
id = "cli-test"
from = "News <news@example.com>"
subject = "Hi {{{{ name }}}}"
text = "body.txt"
recipients = "list.csv"

[relay]
host = "127.0.0.1"
port = {}
tls = "starttls"
username = "user"
password_file = "pw.txt"
ca_file = "ca.pem"
connections = 2

[[dkim]]
domain = "example.com"
selector = "rsa"
key_file = "rsa.pem"

[retry]
schedule = ["1s"]
expire_after = "1h"
"#,
            sink.addr().port()
        );
        std::fs::write(path("campaign.toml"), toml).unwrap();
        Fixture { dir, sink }
    }

    pub fn campaign(&self) -> String {
        self.dir.path().join("campaign.toml").display().to_string()
    }

    /// Starts `volley send` on this campaign in the background; `capture` keeps its output.
    pub fn spawn_send(&self, capture: bool) -> std::process::Child {
        let output = || {
            if capture {
                Stdio::piped()
            } else {
                Stdio::null()
            }
        };
        volley()
            .args(["send", &self.campaign(), "--no-progress"])
            .stdout(output())
            .stderr(output())
            .spawn()
            .unwrap()
    }

    /// Waits (at most a minute) until the sink has accepted `n` messages from a send that is
    /// still running.
    pub async fn wait_for_arrivals(&self, n: usize, child: &mut std::process::Child) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.sink.count() < n {
            assert!(Instant::now() < deadline, "the send never got going");
            assert!(
                child.try_wait().unwrap().is_none(),
                "the send ended before {n} arrived"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

pub fn list(n: usize) -> String {
    let mut csv = String::from("email,name\n");
    for i in 0..n {
        writeln!(csv, "user{i}@d{}.example,Name{i}", i % 50).unwrap();
    }
    csv
}

/// How many times each address was received.
pub fn arrivals(sink: &volley::sink::Sink) -> std::collections::HashMap<String, usize> {
    let mut counts = std::collections::HashMap::new();
    for message in sink.received() {
        for rcpt in message.rcpt_to {
            *counts.entry(rcpt).or_insert(0) += 1;
        }
    }
    counts
}

/// Runs `volley ARGS…` to the end off the async runtime, with `envs` set, and returns what
/// it printed and its exit status.
pub async fn output_of(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let envs: Vec<(String, String)> = envs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    tokio::task::spawn_blocking(move || volley().args(&args).envs(envs).output().unwrap())
        .await
        .unwrap()
}
