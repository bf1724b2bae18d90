//! `[relay] username` with `tls = "none"`: an error naming the keys and their lines, except
//! for a relay on this machine (loopback), which only warns.

use super::*;

use super::tests::MINIMAL_CAMPAIGN as CAMPAIGN;

/// Loads the campaign with a `[relay]` for `host`, plain text, with a login; `secrets` as
/// for sending (true) or for reading the store (false).
fn load_relay(host: &str, secrets: bool) -> Result<CampaignSettings, String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("body.txt"), "Hello\n").unwrap();
    std::fs::write(dir.path().join("list.csv"), "email\nann@example.com\n").unwrap();
    std::fs::write(dir.path().join("pw.txt"), "secret\n").unwrap();
    let text = format!(
        "{CAMPAIGN}\n[relay]\nhost = \"{host}\"\nport = 25\ntls = \"none\"\nusername = \"acme\"\n\
         password_file = \"pw.txt\"\n"
    );
    let path = dir.path().join("campaign.toml");
    std::fs::write(&path, &text).unwrap();
    let result = if secrets {
        load_campaign(&path, None)
    } else {
        load_campaign_for_reading(&path, None)
    };
    // The message with the temp folder as `DIR`.
    result.map_err(|e| {
        e.to_string()
            .replace(&dir.path().display().to_string(), "DIR")
    })
}

#[test]
fn username_without_tls_to_a_remote_relay_is_an_error_naming_keys_and_lines() {
    let err = load_relay("smtp.example.com", true).unwrap_err();
    assert_eq!(
        err,
        "DIR/campaign.toml line 17: relay.username is set but relay.tls = \"none\" (line 16): \
         the password would cross the network to smtp.example.com in clear text; set \
         relay.tls = \"starttls\" (port 587) or \"tls\" (port 465)"
    );
    let err = load_relay("192.0.2.7", true).unwrap_err();
    assert!(err.contains("to 192.0.2.7 in clear text"), "{err}");
}

#[test]
fn username_without_tls_to_loopback_loads_with_a_warning() {
    for host in [
        "127.0.0.1",
        "127.9.9.9",
        "::1",
        "[::1]",
        "localhost",
        "LOCALHOST",
    ] {
        let settings = load_relay(host, true).unwrap_or_else(|e| panic!("{host}: {e}"));
        let relay = settings.relay.unwrap();
        assert_eq!(relay.tls, TlsMode::None);
        assert_eq!(relay.username.as_deref(), Some("acme"));
    }
}

#[test]
fn commands_that_only_read_the_store_are_not_stopped_by_it() {
    load_relay("smtp.example.com", false).unwrap();
}

#[test]
fn loopback_hosts() {
    for host in [
        "127.0.0.1",
        "127.255.0.1",
        "::1",
        "[::1]",
        "localhost",
        "localhost.",
    ] {
        assert!(is_loopback_host(host), "{host}");
    }
    for host in [
        "128.0.0.1",
        "10.0.0.1",
        "::2",
        "localhost.example.com",
        "mylocalhost",
    ] {
        assert!(!is_loopback_host(host), "{host}");
    }
}
