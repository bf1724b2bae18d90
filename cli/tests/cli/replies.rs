//! `volley send` through a picky relay nobody here wrote (`scripts/picky-relay.py`, on
//! Python's aiosmtpd): it greylists one domain's recipients once at RCPT, closes each
//! connection after 97 messages, closes every connection twice ("Message limit reached") and
//! answers 451 to three DATA commands. None of that is throttling: everyone is delivered in
//! one run, exactly once, with no slowing down, and `volley status` shows the per-connection
//! limit Volley learned.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::{output_of, text};
use volley_testkit::campaign::{copy_dkim_keys, CampaignToml, Relay, QUICK_RETRY};

/// Debian's Python, where the python3-aiosmtpd package installs the module.
const PYTHON: &str = "/usr/bin/python3";
const RECIPIENTS: usize = 3000;
const GREY: usize = 100;

/// The relay process; killed on drop.
pub(crate) struct PickyRelay {
    child: Child,
    pub(crate) port: u16,
    log: PathBuf,
}

impl PickyRelay {
    /// Starts the relay; fails loudly when python3 or its aiosmtpd module is missing.
    pub(crate) fn start(dir: &Path) -> PickyRelay {
        let probe = Command::new(PYTHON)
            .args(["-c", "import aiosmtpd"])
            .output()
            .expect("/usr/bin/python3 is needed for this test (Debian: apt-get install python3)");
        assert!(
            probe.status.success(),
            "Python's aiosmtpd is needed for this test (Debian: apt-get install \
             python3-aiosmtpd): {}",
            text(&probe.stderr)
        );
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/picky-relay.py");
        let log = dir.join("relay.log");
        let mut child = Command::new(PYTHON)
            .arg(script)
            .arg(&log)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot run scripts/picky-relay.py");
        let stdout = child.stdout.take().unwrap();
        let mut first = String::new();
        // Ends at the first line or when the script exits (EOF).
        BufReader::new(stdout).read_line(&mut first).unwrap();
        let port = first
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("picky-relay.py did not start: {first:?}"));
        PickyRelay { child, port, log }
    }

    /// The relay's log lines, by event: `accepted`, `greylisted`, `data451`…
    pub(crate) fn events(&self) -> HashMap<String, Vec<String>> {
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for line in std::fs::read_to_string(&self.log).unwrap().lines() {
            let (event, rest) = line.split_once(' ').unwrap_or((line, ""));
            out.entry(event.to_owned())
                .or_default()
                .push(rest.to_owned());
        }
        out
    }
}

impl Drop for PickyRelay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_campaign(dir: &Path, port: u16) -> String {
    copy_dkim_keys(dir);
    std::fs::write(dir.join("body.txt"), "Hello {{ name }}!\n").unwrap();
    let mut csv = String::from("email,name\n");
    for i in 0..RECIPIENTS {
        let domain = if i < GREY {
            "grey.example".to_owned()
        } else {
            format!("d{}.example", i % 20)
        };
        writeln!(csv, "user{i}@{domain},Name{i}").unwrap();
    }
    std::fs::write(dir.join("list.csv"), csv).unwrap();
    let toml = CampaignToml::new("picky")
        .relay(Relay::loopback(port).connections(4))
        .dkim("rsa", "rsa.pem")
        .retry(QUICK_RETRY);
    toml.write(&dir.join("campaign.toml")).display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_picky_relay_gets_everyone_in_one_run_without_slowing_down() {
    let dir = tempfile::tempdir().unwrap();
    let relay = PickyRelay::start(dir.path());
    let campaign = write_campaign(dir.path(), relay.port);

    let args = ["send", campaign.as_str(), "--no-progress"];
    let sent = tokio::time::timeout(Duration::from_secs(120), output_of(&args, &[]))
        .await
        .expect("volley send finished within two minutes");
    let stderr = text(&sent.stderr);
    assert!(
        sent.status.success(),
        "exit {:?}\n{}\n{stderr}",
        sent.status.code(),
        text(&sent.stdout)
    );
    assert!(!stderr.contains("slowing down"), "{stderr}");
    assert!(!stderr.contains("suspended"), "{stderr}");

    // The relay's own count: everyone exactly once.
    let events = relay.events();
    let mut accepted: HashMap<&str, usize> = HashMap::new();
    for rcpt in &events["accepted"] {
        *accepted.entry(rcpt.as_str()).or_default() += 1;
    }
    assert_eq!(accepted.len(), RECIPIENTS, "recipients the relay accepted");
    let twice: Vec<_> = accepted.iter().filter(|(_, &n)| n > 1).collect();
    assert!(twice.is_empty(), "delivered twice: {twice:?}");
    // It did everything it promised.
    assert_eq!(events["greylisted"].len(), GREY);
    assert_eq!(events["data451"].len(), 3);
    assert_eq!(events["closed-all"].len(), 2);
    assert!(!events["closed-per-connection"].is_empty());

    let status = output_of(&["status", &campaign, "--json"], &[]).await;
    assert!(status.status.success(), "{}", text(&status.stderr));
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(json["total"], RECIPIENTS as u64, "{json}");
    assert_eq!(json["delivered"], RECIPIENTS as u64, "{json}");
    assert_eq!(json["deferred"], 0, "{json}");
    assert_eq!(json["pending"], 0, "{json}");
    let limits = json["connection_limits"].as_array().unwrap();
    assert_eq!(limits.len(), 1, "{json}");
    assert_eq!(limits[0]["messages_per_connection"], 96, "{json}");

    let status = output_of(&["status", &campaign], &[]).await;
    let shown = text(&status.stdout);
    assert!(
        shown.contains(&format!(
            "learned limit: relay 127.0.0.1:{} takes 96 messages per connection",
            relay.port
        )),
        "{shown}"
    );
}
