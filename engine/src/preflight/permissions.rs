//! The secret files row: the relay password file, the tracking key file and the DKIM key
//! files should be readable by their owner only (`chmod 600`). Loose ones are a warning, not a
//! failure: sending works, but anyone who can read them can log in to the relay, forge
//! tracking tokens or sign mail as the domain.

use super::{Check, Status};
use crate::config::{loose_permissions, CampaignSettings};

/// The row's name in the table.
const NAME: &str = "secret files";

/// The row for every file the campaign reads a secret from.
pub(super) fn check(settings: &CampaignSettings) -> Check {
    let files = settings.secret_files();
    if files.is_empty() {
        return Check::new(NAME, Status::Pass, "no secret is read from a file");
    }
    let loose: Vec<String> = files
        .iter()
        .filter_map(|(key, path)| loose_permissions(path).map(|l| format!("{key}: {l}")))
        .collect();
    if loose.is_empty() {
        let keys: Vec<&str> = files.iter().map(|(key, _)| key.as_str()).collect();
        return Check::new(
            NAME,
            Status::Pass,
            format!("{}: readable by their owner only", keys.join(", ")),
        );
    }
    Check::new(NAME, Status::Warn, loose.join("; "))
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    /// A relay campaign whose password file, tracking key file and DKIM key have `mode`.
    fn campaign(dir: &std::path::Path, mode: u32) -> CampaignSettings {
        let key = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/dkim");
        std::fs::copy(key.join("ed25519.pem"), dir.join("ed.pem")).unwrap();
        std::fs::write(dir.join("pw.txt"), "relay-password").unwrap();
        std::fs::write(dir.join("t.key"), "tracking-key-0123456789").unwrap();
        std::fs::write(dir.join("body.txt"), "Hi").unwrap();
        std::fs::write(dir.join("list.csv"), "email\na@b.example\n").unwrap();
        for name in ["ed.pem", "pw.txt", "t.key"] {
            let permissions = std::fs::Permissions::from_mode(mode);
            std::fs::set_permissions(dir.join(name), permissions).unwrap();
        }
        let toml = r#"[campaign]
id = "perm"
from = "news@example.com"
subject = "Hi"
text = "body.txt"
recipients = "list.csv"

[relay]
host = "127.0.0.1"
username = "u"
password_file = "pw.txt"

[[dkim]]
domain = "example.com"
selector = "ed"
key_file = "ed.pem"

[tracking]
base_url = "https://t.example.com"
key_file = "t.key"
"#;
        let file = dir.join("c.toml");
        std::fs::write(&file, toml).unwrap();
        crate::config::load_campaign(&file, None).unwrap()
    }

    #[test]
    fn private_files_pass() {
        let dir = tempfile::tempdir().unwrap();
        let row = check(&campaign(dir.path(), 0o600));
        assert_eq!(row.status, Status::Pass, "{row:?}");
        assert!(
            row.detail
                .starts_with("relay.password_file, tracking.key_file, dkim[0].key_file"),
            "{row:?}"
        );
    }

    #[test]
    fn files_others_may_read_are_a_warning_naming_each_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let row = check(&campaign(dir.path(), 0o644));
        assert_eq!(row.status, Status::Warn, "{row:?}");
        for (key, name) in [
            ("relay.password_file", "pw.txt"),
            ("tracking.key_file", "t.key"),
            ("dkim[0].key_file", "ed.pem"),
        ] {
            let path = dir.path().join(name).display().to_string();
            assert!(row.detail.contains(&format!("{key}: {path}")), "{row:?}");
            assert!(row.detail.contains(&format!("chmod 600 {path}")), "{row:?}");
        }
        assert!(row.detail.contains("mode 0644"), "{row:?}");
    }
}
