//! Tests of campaign-file loading: the shipped example, syntax errors with lines, every
//! validation key, secrets and defaults.

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::ExposeSecret;

use super::*;

fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/campaigns/example.toml")
}

/// A campaign folder with templates and a recipients file; `body` is appended to a valid
/// `[campaign]` section (so the section can be extended) and followed by a `[[dkim]]` entry.
struct Scratch {
    dir: tempfile::TempDir,
}

const CAMPAIGN: &str = r#"[campaign]
id = "t1"
from = "News <news@acme.example>"
subject = "Hi {{ first_name }}"
text = "body.txt"
recipients = "list.csv"
"#;

const DKIM: &str = r#"
[[dkim]]
domain = "acme.example"
selector = "s1"
key_file = "s1.pem"
"#;

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("body.txt"), "Hello {{ first_name }}\n").unwrap();
        std::fs::write(dir.path().join("list.csv"), "email\nann@example.com\n").unwrap();
        Scratch { dir }
    }

    fn file(&self) -> PathBuf {
        self.dir.path().join("campaign.toml")
    }

    /// Writes `text` as campaign.toml and loads it.
    fn load(&self, text: &str) -> Result<CampaignSettings, ConfigError> {
        std::fs::write(self.file(), text).unwrap();
        load_campaign(&self.file(), None)
    }

    /// Loads the standard campaign + dkim + `extra` sections.
    fn load_with(&self, extra: &str) -> Result<CampaignSettings, ConfigError> {
        self.load(&format!("{CAMPAIGN}{DKIM}{extra}"))
    }

    /// The error message for `text`, with the scratch folder replaced by `DIR`.
    fn error(&self, text: &str) -> String {
        let err = self.load(text).unwrap_err().to_string();
        err.replace(&self.dir.path().display().to_string(), "DIR")
    }
}

#[test]
fn the_annotated_example_loads() {
    let settings = load_campaign(&example_path(), None).unwrap();
    let dir = example_path().parent().unwrap().to_path_buf();
    assert_eq!(settings.id, "spring-sale");
    assert_eq!(settings.from.name.as_deref(), Some("Acme News"));
    assert_eq!(settings.from.address, "news@acme.example");
    assert_eq!(settings.from.domain, "acme.example");
    assert_eq!(settings.reply_to.unwrap().address, "help@acme.example");
    assert!(settings.subject.contains("{{ first_name }}"));
    let text = settings.text.unwrap();
    assert_eq!(text.path, dir.join("templates/spring.txt"));
    assert!(text.source.starts_with("Hello {{ first_name }},"));
    assert!(settings
        .html
        .unwrap()
        .source
        .contains("<strong>20% off</strong>"));
    assert_eq!(settings.recipients, dir.join("recipients.csv"));
    assert_eq!(settings.priority, 3);
    let relay = settings.relay.unwrap();
    assert_eq!(
        (relay.host.as_str(), relay.port, relay.tls),
        ("smtp.provider.example", 587, TlsMode::StartTls)
    );
    assert_eq!(relay.username.as_deref(), Some("acme"));
    assert_eq!(
        relay.password.unwrap().expose_secret(),
        "example-relay-password"
    );
    assert_eq!(relay.helo, "mailer.acme.example");
    assert_eq!(relay.connections, 4);
    assert_eq!(settings.dkim.len(), 1);
    assert_eq!(settings.dkim[0].domain, "acme.example");
    assert_eq!(settings.dkim[0].selector, "s1");
    assert_eq!(
        settings.dkim[0].key,
        KeySource::File(dir.join("../dkim/rsa2048.pem"))
    );
    assert_eq!(settings.retry, RetrySettings::default());
    assert_eq!(settings.store, dir.join("example.volley"));
}

#[test]
fn unknown_key_names_the_file_and_line() {
    let s = Scratch::new();
    let text = CAMPAIGN.replace("subject =", "colour = \"red\"\nsubject =");
    let err = s.error(&format!("{text}{DKIM}"));
    assert!(
        err.starts_with(
            "DIR/campaign.toml line 4: unknown field `colour`, expected one of `id`, `from`"
        ),
        "{err}"
    );
}

#[test]
fn unknown_key_in_a_later_section_names_its_line() {
    let s = Scratch::new();
    let err = s.error(&format!(
        "{CAMPAIGN}{DKIM}\n[relay]\nhost = \"h.example\"\nprot = 25\n"
    ));
    assert!(
        err.starts_with("DIR/campaign.toml line 15: unknown field `prot`"),
        "{err}"
    );
}

#[test]
fn wrong_type_names_the_line() {
    let s = Scratch::new();
    let err = s
        .load_with("\n[relay]\nhost = \"h.example\"\nport = \"587\"\n")
        .unwrap_err();
    match err {
        ConfigError::Syntax { line, message, .. } => {
            assert_eq!(line, Some(15));
            assert!(
                message.contains("invalid type: string \"587\""),
                "{message}"
            );
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn bad_tls_mode_lists_the_choices() {
    let s = Scratch::new();
    let err = s.error(&format!(
        "{CAMPAIGN}{DKIM}\n[relay]\nhost = \"h.example\"\ntls = \"ssl\"\n"
    ));
    assert!(
        err.contains("line 15: unknown variant `ssl`, expected one of `none`, `starttls`, `tls`"),
        "{err}"
    );
}

#[test]
fn missing_campaign_section_is_reported() {
    let s = Scratch::new();
    let err = s.error(DKIM);
    assert!(err.contains("missing field `campaign`"), "{err}");
}

#[test]
fn relay_defaults_follow_the_port() {
    let s = Scratch::new();
    let relay = s
        .load_with("\n[relay]\nhost = \"h.example\"\n")
        .unwrap()
        .relay
        .unwrap();
    assert_eq!(
        (relay.port, relay.tls, relay.connections),
        (587, TlsMode::StartTls, 4)
    );
    assert_eq!(relay.helo, "acme.example");
    assert!(relay.username.is_none() && relay.password.is_none() && relay.ca_file.is_none());

    let relay = s
        .load_with("\n[relay]\nhost = \"h.example\"\nport = 465\n")
        .unwrap()
        .relay
        .unwrap();
    assert_eq!((relay.port, relay.tls), (465, TlsMode::Tls));

    let relay = s
        .load_with("\n[relay]\nhost = \"h.example\"\nport = 25\ntls = \"none\"\n")
        .unwrap()
        .relay
        .unwrap();
    assert_eq!((relay.port, relay.tls), (25, TlsMode::None));
}

#[test]
fn campaign_defaults() {
    let s = Scratch::new();
    let settings = s.load_with("").unwrap();
    assert!(settings.relay.is_none());
    assert_eq!(settings.priority, 3);
    assert_eq!(settings.reply_to, None);
    assert!(settings.html.is_none());
    let min = |m: u64| Duration::from_secs(m * 60);
    assert_eq!(
        settings.retry.schedule,
        vec![min(5), min(30), min(120), min(360)]
    );
    assert_eq!(settings.retry.expire_after, Duration::from_secs(3 * 86_400));
    assert_eq!(settings.store, s.dir.path().join("campaign.volley"));
    assert_eq!(
        settings.dkim[0].key,
        KeySource::File(s.dir.path().join("s1.pem"))
    );
}

#[test]
fn store_path_and_override() {
    let s = Scratch::new();
    let settings = s.load_with("\n[store]\npath = \"state/here\"\n").unwrap();
    assert_eq!(settings.store, s.dir.path().join("state/here"));
    let elsewhere = Path::new("/tmp/elsewhere.volley");
    let settings = load_campaign(&s.file(), Some(elsewhere)).unwrap();
    assert_eq!(settings.store, elsewhere);
}

#[test]
fn retry_settings_parse() {
    let s = Scratch::new();
    let retry = s
        .load_with("\n[retry]\nschedule = [\"90s\", \"1h 30m\"]\nexpire_after = \"12h\"\n")
        .unwrap()
        .retry;
    assert_eq!(
        retry.schedule,
        vec![Duration::from_secs(90), Duration::from_secs(5400)]
    );
    assert_eq!(retry.expire_after, Duration::from_secs(12 * 3600));
    assert_eq!(retry.delay_after(7), Duration::from_secs(5400));
}

#[test]
fn password_from_env() {
    let s = Scratch::new();
    std::env::set_var("VOLLEY_TEST_PW_FROM_ENV", "s3cret-env");
    let relay = s
        .load_with("\n[relay]\nhost = \"h.example\"\nusername = \"u\"\npassword_env = \"VOLLEY_TEST_PW_FROM_ENV\"\n")
        .unwrap()
        .relay
        .unwrap();
    assert_eq!(
        relay.password.as_ref().unwrap().expose_secret(),
        "s3cret-env"
    );
    assert!(!format!("{relay:?}").contains("s3cret-env"));
}

#[test]
fn password_from_file_drops_the_trailing_newline() {
    let s = Scratch::new();
    std::fs::write(s.dir.path().join("pw.txt"), "s3cret file\r\n").unwrap();
    let settings = s
        .load_with(
            "\n[relay]\nhost = \"h.example\"\nusername = \"u\"\npassword_file = \"pw.txt\"\n",
        )
        .unwrap();
    let relay = settings.relay.as_ref().unwrap();
    assert_eq!(
        relay.password.as_ref().unwrap().expose_secret(),
        "s3cret file"
    );
    assert!(!format!("{settings:?}").contains("s3cret"));
}

#[test]
fn missing_env_var_is_named() {
    let s = Scratch::new();
    let text = format!(
        "{CAMPAIGN}{DKIM}\n[relay]\nhost = \"h.example\"\nusername = \"u\"\npassword_env = \"VOLLEY_TEST_PW_NOT_SET\"\n"
    );
    assert_eq!(
        s.error(&text),
        "DIR/campaign.toml: relay.password_env: environment variable VOLLEY_TEST_PW_NOT_SET is not set, empty or not valid UTF-8"
    );
}

#[test]
fn missing_password_file_is_named() {
    let s = Scratch::new();
    let text = format!(
        "{CAMPAIGN}{DKIM}\n[relay]\nhost = \"h.example\"\nusername = \"u\"\npassword_file = \"nope.txt\"\n"
    );
    let err = s.error(&text);
    assert!(
        err.starts_with("DIR/campaign.toml: relay.password_file: cannot read DIR/nope.txt: "),
        "{err}"
    );
}

#[test]
fn unauthorised_from_domain_is_refused() {
    let s = Scratch::new();
    let text = CAMPAIGN.replace("news@acme.example", "news@other.example");
    let extra = "\n[[dkim]]\ndomain = \"Acme.Example\"\nselector = \"s2\"\nkey_env = \"K\"\n\n[[dkim]]\ndomain = \"b.example\"\nselector = \"s1\"\nkey_env = \"K\"\n";
    assert_eq!(
        s.error(&format!("{text}{DKIM}{extra}")),
        "DIR/campaign.toml: campaign.from: domain other.example is not an authorised sender: \
         no [[dkim]] entry for it (configured: acme.example, b.example)"
    );
    assert!(s.error(&text).ends_with("(configured: none)"));
}

/// Each broken value and the message it must give.
#[test]
fn validation_errors_name_the_key() {
    let s = Scratch::new();
    let dkim2 = |body: &str| format!("{CAMPAIGN}{DKIM}\n[[dkim]]\n{body}\n");
    let relay = |body: &str| format!("{CAMPAIGN}{DKIM}\n[relay]\nhost = \"h.example\"\n{body}\n");
    let campaign = |from: &str, to: &str| format!("{}{DKIM}", CAMPAIGN.replace(from, to));
    let cases: Vec<(String, &str)> = vec![
        (campaign("id = \"t1\"", "id = \"spring sale\""),
         "campaign.id = \"spring sale\" is invalid: use 1 to 64 of the characters A-Z a-z 0-9 . _ -"),
        (campaign("news@acme.example", "news.acme.example"),
         "campaign.from = \"News <news.acme.example>\" is not valid: missing @"),
        (campaign("subject = \"Hi {{ first_name }}\"", "subject = \"  \""),
         "campaign.subject must not be empty"),
        (campaign("subject = \"Hi {{ first_name }}\"", "subject = \"a\\nBcc: x@y.example\""),
         "campaign.subject = \"a\\nBcc: x@y.example\" is invalid: a single line"),
        (campaign("text = \"body.txt\"", "priority = 9\ntext = \"body.txt\""),
         "campaign.priority = 9 is out of range (1 to 5)"),
        (campaign("text = \"body.txt\"", "reply_to = \"x@\""),
         "campaign.reply_to = \"x@\" is not valid: nothing after the @"),
        (campaign("text = \"body.txt\"", "html = \"gone.html\""),
         "campaign.html: cannot read DIR/gone.html: No such file or directory (os error 2)"),
        (campaign("text = \"body.txt\"\n", ""),
         "campaign.text or campaign.html is required: a campaign needs a text or an HTML body template"),
        (campaign("list.csv", "nobody.csv"),
         "campaign.recipients: cannot read DIR/nobody.csv: No such file or directory (os error 2)"),
        (relay("port = 0"), "relay.port = 0 is out of range (1 to 65535)"),
        (relay("port = 70000"), "relay.port = 70000 is out of range (1 to 65535)"),
        (relay("connections = 0"), "relay.connections = 0 is out of range (1 to 100)"),
        (relay("connections = 101"), "relay.connections = 101 is out of range (1 to 100)"),
        (relay("helo = \"my host\""),
         "relay.helo = \"my host\" is invalid: a host name or IP address without spaces"),
        (relay("username = \"u\""),
         "relay.password_env or relay.password_file is required: relay.username is set"),
        (relay("password_env = \"X\"\npassword_file = \"pw\""),
         "relay.password_env and relay.password_file are both set; use one of them"),
        (relay("ca_file = \"ca.pem\""),
         "relay.ca_file: cannot read DIR/ca.pem: No such file or directory (os error 2)"),
        (dkim2("domain = \"acme.example\"\nselector = \"s1\"\nkey_env = \"K\""),
         "dkim[1]: duplicate entry for s1._domainkey.acme.example (first in dkim[0])"),
        (dkim2("domain = \"b.example\"\nselector = \"s1\""),
         "dkim[1].key_file or dkim[1].key_env is required: a DKIM entry needs its private key"),
        (dkim2("domain = \"b.example\"\nselector = \"s1\"\nkey_file = \"a\"\nkey_env = \"K\""),
         "dkim[1].key_file and dkim[1].key_env are both set; use one of them"),
        (dkim2("domain = \"b.example\"\nselector = \"s1\"\nkey_file = \"\""),
         "dkim[1].key_file must not be empty"),
        (dkim2("domain = \"localhost\"\nselector = \"s1\"\nkey_env = \"K\""),
         "dkim[1].domain = \"localhost\" is not valid: domain needs at least two labels (like example.com)"),
        (dkim2("domain = \"b.example\"\nselector = \"s 1\"\nkey_env = \"K\""),
         "dkim[1].selector = \"s 1\" is invalid: DNS labels like s1 or mail-2024"),
        (format!("{CAMPAIGN}{DKIM}\n[retry]\nschedule = [\"5m\", \"30m\", \"2 fortnights\"]\n"),
         "retry.schedule[2] = \"2 fortnights\" is not a valid duration: unknown time unit \"fortnights\", supported units: ns, us/µs, ms, sec, min, hours, days, weeks, months, years (and few variations) (write it like 30m, 2h or 3d)"),
        (format!("{CAMPAIGN}{DKIM}\n[retry]\nschedule = [\"0s\"]\n"),
         "retry.schedule[0] = \"0s\" is not a valid duration: it must be longer than zero"),
        (format!("{CAMPAIGN}{DKIM}\n[retry]\nschedule = []\n"),
         "retry.schedule = \"[]\" is not a valid duration: at least one interval is required"),
        (format!("{CAMPAIGN}{DKIM}\n[retry]\nexpire_after = \"soon\"\n"),
         "retry.expire_after = \"soon\" is not a valid duration: expected number at 0 (write it like 30m, 2h or 3d)"),
    ];
    for (text, want) in cases {
        assert_eq!(
            s.error(&text),
            format!("DIR/campaign.toml: {want}"),
            "for:\n{text}"
        );
    }
}

#[test]
fn display_names_and_bare_addresses() {
    let s = Scratch::new();
    let cases = [
        ("news@acme.example", None, "news@acme.example"),
        (
            "\\\"Acme, Inc.\\\" <News@ACME.example>",
            Some("Acme, Inc."),
            "News@acme.example",
        ),
        ("<news@acme.example>", None, "news@acme.example"),
    ];
    for (from, name, address) in cases {
        let text = CAMPAIGN.replace("News <news@acme.example>", from);
        let settings = s.load(&format!("{text}{DKIM}")).unwrap();
        assert_eq!(settings.from.name.as_deref(), name, "{from}");
        assert_eq!(settings.from.address, address, "{from}");
    }
}

#[test]
fn unreadable_campaign_file_is_named() {
    let err = load_campaign(Path::new("/nonexistent/c.toml"), None).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/nonexistent/c.toml: cannot read campaign file"),
        "{err}"
    );
}
