//! `volley bounces listen` as a process: its memory stays flat while hostile clients send a
//! 600 MB line with no end and a 50 MB body, and Python's `smtplib` (a client nobody here
//! wrote) delivers a DSN over STARTTLS with an `openssl`-made certificate.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::{text, volley};

/// The most the listener may hold, in kB of resident memory (VmHWM: the peak), whatever the
/// clients send. It starts at about 58 MB here (peak after the abuse: about 63 MB).
const RSS_BOUND_KB: u64 = 100 * 1024;

/// A running `volley bounces listen` on a free loopback port, with its store in `dir`.
struct Listener {
    child: Child,
    addr: SocketAddr,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Listener {
    fn start(dir: &Path, extra: &[&str]) -> Listener {
        let store = dir.join("store").display().to_string();
        let mut child = volley()
            .args([
                "bounces",
                "listen",
                "--store",
                &store,
                "--bind",
                "127.0.0.1:0",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let Some(addr) = first.trim().strip_prefix("receiving bounces on ") else {
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("listen did not start: {first}{err}");
        };
        Listener {
            addr: addr.parse().unwrap(),
            child,
            stdout,
        }
    }

    /// A `/proc/PID/status` field in kB.
    fn memory_kb(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in {status}"))
    }

    /// Stops it with SIGTERM; returns everything else it printed.
    fn stop(mut self) -> (String, String) {
        let pid = rustix::process::Pid::from_raw(i32::try_from(self.child.id()).unwrap()).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        let mut out = String::new();
        self.stdout.read_to_string(&mut out).unwrap();
        let output = self.child.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
        (out, text(&output.stderr))
    }
}

/// A blocking SMTP client for these tests: every read and write bounded.
struct Smtp {
    stream: BufReader<TcpStream>,
}

impl Smtp {
    fn connect(addr: SocketAddr) -> Smtp {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut smtp = Smtp {
            stream: BufReader::new(stream),
        };
        assert!(smtp.reply().starts_with("220 "));
        smtp
    }

    /// The next whole reply, or "" when the server closed.
    fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            if self.stream.read_line(&mut line).unwrap_or(0) == 0 {
                return all;
            }
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all.trim_end().to_owned();
            }
        }
    }

    fn command(&mut self, line: &str) -> String {
        self.stream
            .get_mut()
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
        self.reply()
    }

    /// Writes `total` bytes of `pattern`, repeated; stops quietly if the server closes.
    fn flood(&mut self, pattern: &[u8], total: usize) {
        let chunk: Vec<u8> = pattern.iter().copied().cycle().take(1 << 20).collect();
        let mut sent = 0;
        while sent < total {
            if self.stream.get_mut().write_all(&chunk).is_err() {
                return;
            }
            sent += chunk.len();
        }
    }

    fn start_data(&mut self) {
        assert!(self.command("EHLO abuser.example").starts_with("250"));
        assert!(self.command("MAIL FROM:<>").starts_with("250"));
        assert!(self
            .command("RCPT TO:<bounces@bounce.example.com>")
            .starts_with("250"));
        assert!(self.command("DATA").starts_with("354"));
    }
}

#[test]
fn listen_memory_stays_flat_under_a_600_mb_line_and_a_50_mb_body() {
    let dir = tempfile::tempdir().unwrap();
    let listener = Listener::start(dir.path(), &[]);
    let start_kb = listener.memory_kb("VmRSS:");

    // A command line that never ends: cut off at 512 octets, the connection closed.
    // Its reply is read meanwhile: once the server closes, the unread flood resets the
    // connection, and a reset discards what was not read yet.
    let mut smtp = Smtp::connect(listener.addr);
    let mut replies = Smtp {
        stream: BufReader::new(smtp.stream.get_ref().try_clone().unwrap()),
    };
    let reading = std::thread::spawn(move || replies.reply());
    smtp.flood(b"X", 600 << 20);
    assert_eq!(reading.join().unwrap(), "500 5.5.2 Line too long, closing");

    // 600 MB after DATA with no LF at all: counted as it arrives, never buffered.
    let started = std::time::Instant::now();
    let mut smtp = Smtp::connect(listener.addr);
    smtp.start_data();
    smtp.flood(b"Y", 600 << 20);
    smtp.stream.get_mut().write_all(b"\r\n.\r\n").unwrap();
    assert_eq!(smtp.reply(), "552 5.3.4 Message size exceeds fixed limit");

    // 50 MB of ordinary lines.
    smtp.start_data();
    smtp.flood(
        b"0123456789012345678901234567890123456789012345678901234567890123456789\r\n",
        50 << 20,
    );
    // The flood may end mid-line: CRLF first, then the end marker.
    smtp.stream.get_mut().write_all(b"\r\n.\r\n").unwrap();
    assert_eq!(smtp.reply(), "552 5.3.4 Message size exceeds fixed limit");
    assert_eq!(smtp.command("QUIT"), "221 2.0.0 Bye");
    eprintln!("650 MB of DATA refused in {:?}", started.elapsed());

    let peak_kb = listener.memory_kb("VmHWM:");
    let now_kb = listener.memory_kb("VmRSS:");
    eprintln!(
        "volley bounces listen: RSS {start_kb} kB at start, {now_kb} kB after, peak {peak_kb} kB"
    );
    assert!(
        peak_kb < RSS_BOUND_KB,
        "peak RSS {peak_kb} kB is past {RSS_BOUND_KB} kB (it started at {start_kb} kB)"
    );
    let spool = dir.path().join("store").join("bounce-spool");
    assert_eq!(
        std::fs::read_dir(&spool).unwrap().count(),
        0,
        "nothing of it stays"
    );
    listener.stop();
}

/// A certificate and key for `localhost` made by the `openssl` command.
fn openssl_certificate(dir: &Path) -> (String, String) {
    let cert = dir.join("cert.pem").display().to_string();
    let key = dir.join("key.pem").display().to_string();
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ])
        .args(["-keyout", &key, "-out", &cert])
        .output()
        .expect("the openssl command is needed (apt-get install openssl)");
    assert!(made.status.success(), "{}", text(&made.stderr));
    (cert, key)
}

#[test]
fn python_smtplib_delivers_a_dsn_over_starttls_and_it_is_ingested() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = openssl_certificate(dir.path());
    let listener = Listener::start(dir.path(), &["--tls-cert", &cert, "--tls-key", &key]);
    let dsn =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/dsn/postfix-user-unknown.eml");
    let script = r#"
import smtplib, ssl, sys
host, port, cafile, path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
context = ssl.create_default_context(cafile=cafile)
with smtplib.SMTP(host, port, timeout=60) as smtp:
    smtp.ehlo("mail.example.net")
    if not smtp.has_extn("starttls"):
        sys.exit("no STARTTLS offered")
    smtp.starttls(context=context)
    smtp.ehlo("mail.example.net")
    with open(path, "rb") as f:
        refused = smtp.sendmail("", ["bounces+AAAA@bounce.example.com"], f.read())
    print("sent", refused, smtp.sock.version())
"#;
    let sent = Command::new("python3")
        .args([
            "-c",
            script,
            "localhost",
            &listener.addr.port().to_string(),
            &cert,
        ])
        .arg(&dsn)
        .output()
        .expect("python3 is needed for this test (apt-get install python3)");
    assert!(
        sent.status.success(),
        "smtplib failed: {}{}",
        text(&sent.stdout),
        text(&sent.stderr)
    );
    let said = text(&sent.stdout);
    assert!(said.starts_with("sent {} TLS"), "{said}");
    let (out, err) = listener.stop();
    // Parsed, and recorded: nobody of this store was sent to, so it matches no recipient.
    assert!(out.contains("1 message:"), "{out}{err}");
    assert!(
        err.contains("bounce for nosuchuser@example.net matches no recipient"),
        "{out}{err}"
    );
}
