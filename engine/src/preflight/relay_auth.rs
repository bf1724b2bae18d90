//! The relay login row: the relay password must only ever travel encrypted. A
//! `[relay] username` with `tls = "none"` fails (sending refuses it too), except for a relay on
//! this machine (loopback), which is a warning; a login over STARTTLS or implicit TLS passes.

use super::{Check, Status};
use crate::config::{is_loopback_host, CampaignSettings, RelayAuth, TlsMode};

/// The row's name in the table.
const NAME: &str = "relay auth";

/// The row for the campaign's relay login.
pub(super) fn check(settings: &CampaignSettings) -> Check {
    let Some(relay) = &settings.relay else {
        return Check::new(NAME, Status::Pass, "no relay: direct to MX, no login");
    };
    if relay.username.is_none() {
        return Check::new(NAME, Status::Pass, "no relay.username: no login");
    }
    let host = &relay.host;
    let secret = match relay.auth {
        RelayAuth::XOAuth2 { .. } => "access token",
        _ => "password",
    };
    match relay.tls {
        TlsMode::StartTls => Check::new(
            NAME,
            Status::Pass,
            format!("the {secret} to {host} is sent only after STARTTLS"),
        ),
        TlsMode::None if is_loopback_host(host) => Check::new(
            NAME,
            Status::Warn,
            format!(
                "relay.username with relay.tls = \"none\": the {secret} goes to {host} in \
                 clear text (allowed only because it is this machine)"
            ),
        ),
        TlsMode::None => Check::new(
            NAME,
            Status::Fail,
            format!(
                "relay.username with relay.tls = \"none\": the {secret} would cross the \
                 network to {host} in clear text; set relay.tls = \"starttls\" (port 587) or \
                 \"tls\" (port 465)"
            ),
        ),
        _ => Check::new(
            NAME,
            Status::Pass,
            format!("the {secret} to {host} is sent only over TLS"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The row for a campaign with `relay` as its `[relay]` section.
    fn row(relay: &str) -> Check {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("body.txt"), "Hello\n").unwrap();
        std::fs::write(dir.path().join("list.csv"), "email\nann@example.com\n").unwrap();
        std::fs::write(dir.path().join("pw.txt"), "secret\n").unwrap();
        let text = format!(
            "[campaign]\nid = \"t\"\nfrom = \"a@acme.example\"\nsubject = \"Hi\"\n\
             text = \"body.txt\"\nrecipients = \"list.csv\"\n\n[[dkim]]\ndomain = \
             \"acme.example\"\nselector = \"s\"\nkey_file = \"s.pem\"\n\n{relay}"
        );
        let path = dir.path().join("campaign.toml");
        std::fs::write(&path, text).unwrap();
        // As `volley check` does when the file does not load for sending.
        let settings = crate::config::load_campaign_for_reading(&path, None).unwrap();
        check(&settings)
    }

    const LOGIN: &str = "username = \"u\"\npassword_file = \"pw.txt\"\n";

    #[test]
    fn clear_text_login_fails_warns_on_loopback_and_passes_over_tls() {
        let remote = row(&format!(
            "[relay]\nhost = \"smtp.example.com\"\nport = 25\ntls = \"none\"\n{LOGIN}"
        ));
        assert_eq!(remote.status, Status::Fail, "{remote:?}");
        assert!(
            remote.detail.contains("set relay.tls = \"starttls\""),
            "{remote:?}"
        );
        let local = row(&format!(
            "[relay]\nhost = \"127.0.0.1\"\nport = 25\ntls = \"none\"\n{LOGIN}"
        ));
        assert_eq!(local.status, Status::Warn, "{local:?}");
        let tls = row(&format!("[relay]\nhost = \"smtp.example.com\"\n{LOGIN}"));
        assert_eq!(tls.status, Status::Pass, "{tls:?}");
        assert!(tls.detail.contains("only after STARTTLS"), "{tls:?}");
        let none = row("[relay]\nhost = \"smtp.example.com\"\ntls = \"none\"\n");
        assert_eq!(none.status, Status::Pass, "{none:?}");
        assert_eq!(row("").status, Status::Pass);
        assert_eq!(remote.name, "relay auth");
    }
}
