//! `volley send` through a relay nobody here wrote that takes only AUTH XOAUTH2
//! (`scripts/xoauth2-relay.py`, Python's aiosmtpd with a custom `auth_XOAUTH2` mechanism,
//! answering a bad token the way Gmail does). The token comes from a command whose first
//! token is stale: Volley fetches a fresh one once and everyone is delivered, and neither
//! token shows in what `volley` prints, debug logs included.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::Duration;

use crate::support::{output_of, text};
use volley_testkit::campaign::{copy_dkim_keys, CampaignToml, Relay, QUICK_RETRY};
use volley_testkit::script_server::ScriptServer;

const USER: &str = "news@example.com";
const STALE: &str = "ya29.stale-token-0000";
const GOOD: &str = "ya29.fresh-token-1111";
const RECIPIENTS: usize = 20;

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
    // Quiet: the script's errors would show the token.
    let log = dir.path().join("relay.log");
    let relay = ScriptServer::start("xoauth2-relay.py", &log, &[USER, GOOD], true);
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
