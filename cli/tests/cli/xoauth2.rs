//! `volley send` through a relay nobody here wrote that takes only AUTH XOAUTH2
//! (`scripts/xoauth2-relay.py`, Python's aiosmtpd with a custom `auth_XOAUTH2` mechanism,
//! answering a bad token the way Gmail does). The token comes from a command whose first
//! token is stale: Volley fetches a fresh one once and everyone is delivered, and neither
//! token shows in what `volley` prints, debug logs included.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::{output_of, text};
use volley_testkit::campaign::{copy_dkim_keys, CampaignToml, Relay, QUICK_RETRY};

/// Debian's Python, where the python3-aiosmtpd package installs the module.
const PYTHON: &str = "/usr/bin/python3";
const USER: &str = "news@example.com";
const STALE: &str = "ya29.stale-token-0000";
const GOOD: &str = "ya29.fresh-token-1111";
const RECIPIENTS: usize = 20;

/// The relay process; killed on drop.
struct Xoauth2Relay {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Xoauth2Relay {
    /// Starts the relay; fails loudly when python3 or its aiosmtpd module is missing.
    fn start(dir: &Path) -> Xoauth2Relay {
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
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/xoauth2-relay.py");
        let log = dir.join("relay.log");
        let mut child = Command::new(PYTHON)
            .arg(script)
            .args([log.to_str().unwrap(), USER, GOOD])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot run scripts/xoauth2-relay.py");
        let stdout = child.stdout.take().unwrap();
        let mut first = String::new();
        // Ends at the first line or when the script exits (EOF).
        BufReader::new(stdout).read_line(&mut first).unwrap();
        let port = first
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("xoauth2-relay.py did not start: {first:?}"));
        Xoauth2Relay { child, port, log }
    }

    /// The relay's log lines starting with `event`.
    fn events(&self, event: &str) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (name, rest) = l.split_once(' ').unwrap_or((l, ""));
                (name == event).then(|| rest.to_owned())
            })
            .collect()
    }
}

impl Drop for Xoauth2Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The campaign, and `get-token`: `STALE` on its first run, `GOOD` afterwards.
fn write_campaign(dir: &Path, port: u16) -> String {
    copy_dkim_keys(dir);
    std::fs::write(dir.join("body.txt"), "Hello {{ name }}!\n").unwrap();
    let mut csv = String::from("email,name\n");
    for i in 0..RECIPIENTS {
        csv.push_str(&format!("user{i}@d{}.example,Name{i}\n", i % 4));
    }
    std::fs::write(dir.join("list.csv"), csv).unwrap();
    let script = format!(
        "#!/bin/sh\ndir=$(dirname \"$0\")\n\
         if [ -e \"$dir/fetched\" ]; then echo '{GOOD}'; else touch \"$dir/fetched\"; echo '{STALE}'; fi\n"
    );
    let path = dir.join("get-token");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
    let relay = Relay::loopback(port).connections(1).line(&format!(
        "username = \"{USER}\"\nauth = \"xoauth2\"\ntoken_command = [\"./get-token\"]"
    ));
    let toml = CampaignToml::new("xoauth2")
        .relay(relay)
        .dkim("rsa", "rsa.pem")
        .retry(QUICK_RETRY);
    toml.write(&dir.join("campaign.toml")).display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volley_send_logs_in_to_an_aiosmtpd_relay_with_a_refreshed_token() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Xoauth2Relay::start(dir.path());
    let campaign = write_campaign(dir.path(), relay.port);

    let args = ["send", campaign.as_str(), "--no-progress"];
    let sent = tokio::time::timeout(
        Duration::from_secs(120),
        output_of(&args, &[("VOLLEY_LOG", "debug")]),
    )
    .await
    .expect("volley send finished within two minutes");
    let (stdout, stderr) = (text(&sent.stdout), text(&sent.stderr));
    assert!(
        sent.status.success(),
        "exit {:?}\n{stdout}\n{stderr}",
        sent.status.code()
    );
    assert_eq!(relay.events("accepted").len(), RECIPIENTS);
    // The stale token was refused once, Gmail-style; the fresh one logged in.
    assert_eq!(relay.events("auth-refused").len(), 1);
    assert!(relay.events("auth-ok").iter().all(|u| u == USER));
    assert!(
        stderr.contains("relay refused the access token"),
        "{stderr}"
    );
    for shown in [&stdout, &stderr] {
        for secret in [STALE, GOOD, "stale-token", "fresh-token"] {
            assert!(!shown.contains(secret), "volley printed {secret}: {shown}");
        }
    }
}
