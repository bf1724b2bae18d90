//! Interop with a real Postfix (Debian's package) as the relay, started by the test on a
//! loopback port with `scripts/postfix-relay.sh`: every message reaches Postfix's hold queue,
//! with CHUNKING offered (Volley sends `BDAT … LAST`) and without it (`DATA`), over STARTTLS
//! with a certificate made by `openssl req -x509` and pinned in `ca_file`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{list, run, text};
use volley_testkit::campaign::{copy_dkim_keys, CampaignToml, Relay};

/// A private Postfix instance that parks what it receives; stopped on drop.
struct Postfix {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Postfix {
    /// Starts Postfix with a fresh `openssl req -x509` certificate for `relay.test` and
    /// 127.0.0.1; fails the test loudly when Postfix or openssl is missing.
    fn start(chunking: bool) -> Postfix {
        // Postfix refuses a queue under /tmp: the instance lives in Cargo's target folder.
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        make_certificate(dir.path());
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("postfix.log")).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/postfix-relay.sh");
        let mut command = Command::new("bash");
        command
            .arg(script)
            .arg(dir.path().join("pf"))
            .arg(port.to_string())
            .args(["--tls"])
            .arg(dir.path().join("cert.pem"))
            .arg(dir.path().join("key.pem"))
            .env("LIFETIME", "300")
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if !chunking {
            command.arg("--no-chunking");
        }
        let child = command
            .spawn()
            .expect("cannot run scripts/postfix-relay.sh");
        let mut postfix = Postfix { child, dir, port };
        postfix.wait_ready();
        postfix
    }

    /// Waits (at most 30 s) until Postfix answers with its banner.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "Postfix did not start ({status}); is Debian's postfix package installed? \
                     log:\n{}",
                    self.log()
                );
            }
            if let Ok(stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                let mut banner = String::new();
                if BufReader::new(&stream).read_line(&mut banner).is_ok()
                    && banner.starts_with("220")
                {
                    let _ = (&stream).write_all(b"QUIT\r\n");
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "Postfix never answered; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postfix.log")).unwrap_or_default()
    }

    fn hold(&self) -> PathBuf {
        self.dir.path().join("pf/queue/hold")
    }

    /// The messages in the hold queue once `n` are there (waits at most a minute).
    fn wait_held(&self, n: usize) -> Vec<PathBuf> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let held: Vec<PathBuf> = std::fs::read_dir(self.hold())
                .map(|entries| entries.filter_map(|e| Some(e.ok()?.path())).collect())
                .unwrap_or_default();
            if held.len() >= n {
                return held;
            }
            assert!(
                Instant::now() < deadline,
                "Postfix holds {} of {n} messages; log:\n{}",
                held.len(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sums `name=N` over Postfix's "disconnect from" lines (`bdat`, `data`, `starttls`…).
    fn commands(&self, name: &str) -> u64 {
        let key = format!(" {name}=");
        self.log()
            .lines()
            .filter(|line| line.contains("disconnect from"))
            .filter_map(|line| {
                let rest = &line[line.find(&key)? + key.len()..];
                rest.split(['/', ' ']).next()?.parse::<u64>().ok()
            })
            .sum()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
    }
}

/// A self-signed certificate as the guides make it (`CA:TRUE`), for relay.test and 127.0.0.1.
fn make_certificate(dir: &Path) {
    let status = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
        ])
        .args(["-subj", "/CN=relay.test"])
        .args(["-addext", "subjectAltName=DNS:relay.test,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl is missing: apt-get install openssl");
    assert!(status.success(), "openssl req -x509 failed");
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A campaign of `n` recipients through the relay on `port`, over STARTTLS with the
/// certificate pinned.
fn campaign(dir: &Path, port: u16, n: usize) -> String {
    copy_dkim_keys(dir);
    std::fs::write(dir.join("body.txt"), "Hello {{ name }}!\n".repeat(200)).unwrap();
    std::fs::write(dir.join("list.csv"), list(n)).unwrap();
    let relay = Relay::loopback(port)
        .tls("starttls")
        .ca_file("cert.pem")
        .connections(4);
    let toml = CampaignToml::new("postfix")
        .relay(relay)
        .dkim("rsa", "rsa.pem");
    toml.write(&dir.join("campaign.toml")).display().to_string()
}

/// Sends `n` messages through a Postfix that offers CHUNKING or not; returns the Postfix.
fn send_through_postfix(chunking: bool, n: usize) -> Postfix {
    let postfix = Postfix::start(chunking);
    let work = tempfile::tempdir().unwrap();
    std::fs::copy(
        postfix.dir.path().join("cert.pem"),
        work.path().join("cert.pem"),
    )
    .unwrap();
    let campaign = campaign(work.path(), postfix.port, n);
    let out = run(&["send", &campaign, "--no-progress"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}\npostfix: {}",
        text(&out.stdout),
        text(&out.stderr),
        postfix.log()
    );
    assert!(text(&out.stdout).contains(&format!("delivered {n}")));
    let held = postfix.wait_held(n);
    assert_eq!(held.len(), n, "Postfix holds each message once");
    let mut first = Vec::new();
    std::fs::File::open(&held[0])
        .unwrap()
        .read_to_end(&mut first)
        .unwrap();
    assert!(
        String::from_utf8_lossy(&first).contains("DKIM-Signature"),
        "the held message is signed"
    );
    postfix
}

#[test]
fn postfix_offering_chunking_receives_every_message_by_bdat_over_starttls() {
    let postfix = send_through_postfix(true, 60);
    assert_eq!(postfix.commands("bdat"), 60, "{}", postfix.log());
    assert_eq!(postfix.commands("data"), 0);
    assert!(postfix.commands("starttls") >= 1);
}

#[test]
fn postfix_without_chunking_receives_every_message_by_data_over_starttls() {
    let postfix = send_through_postfix(false, 60);
    assert_eq!(postfix.commands("data"), 60, "{}", postfix.log());
    assert_eq!(postfix.commands("bdat"), 0);
}
