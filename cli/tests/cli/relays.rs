//! Several relays (`[[relay]]`) from the command line: `volley check` names a bad entry by
//! its index and key; a send whose primary relay refuses the login goes through the
//! priority-1 backup, and `volley status` (text and `--json`) and `volley report` (JSON, CSV,
//! table) show the split and the primary taken out.

use std::path::Path;

use crate::support::{list, output_of, text, PASSWORD};
use volley_testkit::campaign::{copy_dkim_keys, CampaignToml, Relay};
use volley_testkit::sink::{Sink, SinkConfig};

/// A campaign of `n` recipients in `dir` through `relays`; `pw.txt` holds a wrong password.
fn write_campaign(dir: &Path, n: usize, relays: Vec<Relay>) -> String {
    copy_dkim_keys(dir);
    std::fs::write(dir.join("body.txt"), "Hello {{ name }}!\n").unwrap();
    std::fs::write(dir.join("list.csv"), list(n)).unwrap();
    std::fs::write(dir.join("pw.txt"), "not-the-password\n").unwrap();
    CampaignToml::new("relays")
        .subject("Hi")
        .relays(relays)
        .dkim("rsa", "rsa.pem")
        .write(&dir.join("campaign.toml"))
        .display()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_a_bad_relay_entry_by_index_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let campaign = write_campaign(
        dir.path(),
        3,
        vec![
            Relay::loopback(2525).line("name = \"one\""),
            Relay::loopback(2526).line("weight = 0"),
        ],
    );
    let output = output_of(&["check", &campaign], &[]).await;
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("relay[1].weight = 0 is out of range"),
        "{stdout}"
    );
    let campaign = write_campaign(
        dir.path(),
        3,
        vec![
            Relay::loopback(2525).line("name = \"same\""),
            Relay::loopback(2526).line("name = \"same\""),
        ],
    );
    let output = output_of(&["check", &campaign], &[]).await;
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("relay[1].name"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_report_show_the_backup_taking_over_from_a_refusing_primary() {
    let dir = tempfile::tempdir().unwrap();
    let primary = Sink::start(SinkConfig {
        auth: Some(("user".to_owned(), PASSWORD.to_owned())),
        ..SinkConfig::default()
    })
    .await
    .unwrap();
    let backup = Sink::start(SinkConfig::default()).await.unwrap();
    let campaign = write_campaign(
        dir.path(),
        12,
        vec![
            Relay::loopback(primary.addr().port())
                .login("user", "pw.txt")
                .line("name = \"primary\"\nweight = 3"),
            Relay::loopback(backup.addr().port()).line("name = \"backup\"\npriority = 1"),
        ],
    );
    let output = output_of(&["send", &campaign, "--no-progress"], &[]).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!((primary.count(), backup.count()), (0, 12));

    let output = output_of(&["status", &campaign], &[]).await;
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("relay backup: 12 delivered, 0 deferred, 0 bounced"),
        "{stdout}"
    );
    assert!(
        stdout.contains("relay primary: 0 delivered, 0 deferred, 0 bounced; taken out 1 time"),
        "{stdout}"
    );
    let output = output_of(&["status", &campaign, "--json"], &[]).await;
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        json["relays"],
        serde_json::json!([
            {"relay": "backup", "delivered": 12, "deferred": 0, "bounced": 0, "cooldowns": 0},
            {"relay": "primary", "delivered": 0, "deferred": 0, "bounced": 0, "cooldowns": 1},
        ]),
        "{json}"
    );
    let output = output_of(&["report", &campaign, "--format", "json"], &[]).await;
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["relays"], json["relays"], "{report}");
    let csv = text(
        &output_of(&["report", &campaign, "--format", "csv"], &[])
            .await
            .stdout,
    );
    assert!(csv.contains("relay,backup,delivered,12"), "{csv}");
    let table = text(&output_of(&["report", &campaign], &[]).await.stdout);
    assert!(table.contains("RELAYS"), "{table}");
    let html = text(
        &output_of(&["report", &campaign, "--format", "html"], &[])
            .await
            .stdout,
    );
    assert!(
        html.contains("<tr><td><code>primary</code></td><td><strong>0</strong></td>"),
        "{html}"
    );
}
