//! Several relays (`[[relay]]`): names, weights, priorities and cool-downs with their
//! defaults, each entry's own login and caps, and every bad entry named by its index and key.

use std::time::Duration;

use secrecy::ExposeSecret as _;

use super::*;

use super::tests::MINIMAL_CAMPAIGN as CAMPAIGN;

/// Loads the campaign followed by `relays` (TOML), in a folder holding `pw.txt`.
fn load(relays: &str) -> Result<CampaignSettings, String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("body.txt"), "Hello\n").unwrap();
    std::fs::write(dir.path().join("list.csv"), "email\nann@example.com\n").unwrap();
    std::fs::write(dir.path().join("pw.txt"), "second-secret\n").unwrap();
    let path = dir.path().join("campaign.toml");
    std::fs::write(&path, format!("{CAMPAIGN}\n{relays}\n")).unwrap();
    load_campaign(&path, None).map_err(|e| {
        e.to_string()
            .replace(&dir.path().display().to_string(), "DIR")
    })
}

const THREE: &str = r#"
[[relay]]
name = "primary"
host = "smtp-a.example"
weight = 2
max_per_hour = 1000

[[relay]]
host = "smtp-b.example"
port = 2525
username = "news"
password_file = "pw.txt"
cooldown = "90s"

[[relay]]
name = "backup"
host = "smtp-c.example"
priority = 1
connections = 2
"#;

#[test]
fn relay_entries_load_with_their_own_settings_and_defaults() {
    let settings = load(THREE).unwrap();
    let relays = &settings.relays;
    assert_eq!(relays.len(), 3);
    let names: Vec<&str> = relays.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["primary", "smtp-b.example:2525", "backup"]);
    assert_eq!(
        relays
            .iter()
            .map(|r| (r.weight, r.priority))
            .collect::<Vec<_>>(),
        [(2, 0), (1, 0), (1, 1)]
    );
    assert_eq!(
        relays[0].cooldown,
        Duration::from_secs(300),
        "default 5 minutes"
    );
    assert_eq!(relays[1].cooldown, Duration::from_secs(90));
    assert_eq!(relays[0].max_per_hour, Some(1000));
    assert_eq!(relays[1].max_per_hour, None);
    assert_eq!(relays[2].connections, 2);
    assert_eq!(relays[1].username.as_deref(), Some("news"));
    assert_eq!(
        relays[1].password.as_ref().unwrap().expose_secret(),
        "second-secret"
    );
    // The first entry is also `relay` (what single-relay code paths use).
    assert_eq!(settings.relay.as_ref().unwrap().name, "primary");
    let files = settings.secret_files();
    assert!(
        files.iter().any(|(key, _)| key == "relay[1].password_file"),
        "{files:?}"
    );
}

#[test]
fn a_single_relay_table_keeps_its_meaning() {
    let settings = load("[relay]\nhost = \"smtp.example\"\n").unwrap();
    assert_eq!(settings.relays.len(), 1);
    let relay = settings.relay.unwrap();
    assert_eq!(relay.name, "smtp.example:587");
    assert_eq!((relay.weight, relay.priority), (1, 0));
}

#[test]
fn bad_relay_entries_are_named_by_index_and_key() {
    let entry = |i: usize, line: &str| {
        let mut text = String::new();
        for n in 0..3 {
            text.push_str(&format!("[[relay]]\nhost = \"smtp-{n}.example\"\n"));
            if n == i {
                text.push_str(line);
                text.push('\n');
            }
        }
        text
    };
    let cases = [
        (
            entry(2, "weight = 0"),
            "DIR/campaign.toml: relay[2].weight = 0 is out of range (1 to 1000000)",
        ),
        (
            entry(1, "priority = -1"),
            "DIR/campaign.toml: relay[1].priority = -1 is out of range (0 to 1000000)",
        ),
        (entry(0, "cooldown = \"soon\""), "relay[0].cooldown"),
        (entry(1, "port = 0"), "relay[1].port"),
        (
            entry(2, "password_env = \"NO_SUCH_VOLLEY_VAR\""),
            "relay[2].password_env",
        ),
        (entry(1, "name = \"smtp-0.example:587\""), "relay[1].name"),
    ];
    for (text, want) in cases {
        let error = load(&text).unwrap_err();
        assert!(
            error.contains(want),
            "{error}\nwanted: {want}\nfor:\n{text}"
        );
    }
}

#[test]
fn mixing_relay_and_relay_entries_is_refused() {
    let error =
        load("[relay]\nhost = \"a.example\"\n\n[[relay]]\nhost = \"b.example\"\n").unwrap_err();
    assert!(
        error.starts_with("DIR/campaign.toml line 16: ")
            && error.ends_with("cannot be mixed; write every relay as a [[relay]] entry"),
        "{error}"
    );
    let error =
        load("[[relay]]\nhost = \"a.example\"\n\n[relay]\nhost = \"b.example\"\n").unwrap_err();
    assert!(error.contains("cannot be mixed"), "{error}");
    let error = load("[[relay]]\nhost = \"a.example\"\nwieght = 2\n").unwrap_err();
    assert!(error.contains("wieght"), "{error}");
}
