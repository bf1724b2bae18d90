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
pub(super) struct Scratch {
    dir: tempfile::TempDir,
}

const CAMPAIGN: &str = r#"[campaign]
id = "t1"
from = "News <news@acme.example>"
subject = "Hi {{ first_name }}"
text = "body.txt"
recipients = "list.csv"
"#;

/// A whole campaign file with one DKIM key and nothing optional, for the smaller test modules
/// to append sections to.
pub(super) const MINIMAL_CAMPAIGN: &str = r#"[campaign]
id = "t1"
from = "News <news@acme.example>"
subject = "Hi"
text = "body.txt"
recipients = "list.csv"

[[dkim]]
domain = "acme.example"
selector = "s1"
key_file = "s1.pem"
"#;

/// Loads [`MINIMAL_CAMPAIGN`] with `section` appended, its list being `list`; errors with the
/// folder shown as `DIR`.
pub(super) fn load_minimal(section: &str, list: &str) -> Result<CampaignSettings, String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("body.txt"), "Hello\n").unwrap();
    std::fs::write(dir.path().join("list.csv"), list).unwrap();
    let file = dir.path().join("news.toml");
    std::fs::write(&file, format!("{MINIMAL_CAMPAIGN}\n{section}\n")).unwrap();
    load_campaign(&file, None).map_err(|e| {
        e.to_string()
            .replace(&dir.path().display().to_string(), "DIR")
    })
}

const DKIM: &str = r#"
[[dkim]]
domain = "acme.example"
selector = "s1"
key_file = "s1.pem"
"#;

impl Scratch {
    pub(super) fn new() -> Scratch {
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
    pub(super) fn load_with(&self, extra: &str) -> Result<CampaignSettings, ConfigError> {
        self.load(&format!("{CAMPAIGN}{DKIM}{extra}"))
    }

    /// Checks each campaign text's error message (after `DIR/campaign.toml: `).
    fn assert_errors<T: AsRef<str>>(&self, cases: &[(T, &str)]) {
        for (text, want) in cases {
            let text = text.as_ref();
            assert_eq!(
                self.error(text),
                format!("DIR/campaign.toml: {want}"),
                "for:\n{text}"
            );
        }
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
    assert_eq!(
        settings.timeouts,
        crate::smtp::Timeouts::default(),
        "the example spells out the defaults"
    );
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
    assert_eq!(settings.store.folder().unwrap(), dir.join("example.volley"));
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
    assert_eq!(
        settings.store.folder().unwrap(),
        s.dir.path().join("campaign.volley")
    );
    assert_eq!(
        settings.dkim[0].key,
        KeySource::File(s.dir.path().join("s1.pem"))
    );
}

#[test]
fn store_path_and_override() {
    let s = Scratch::new();
    let settings = s.load_with("\n[store]\npath = \"state/here\"\n").unwrap();
    assert_eq!(
        settings.store.folder().unwrap(),
        s.dir.path().join("state/here")
    );
    let elsewhere = Path::new("/tmp/elsewhere.volley");
    let settings = load_campaign(&s.file(), Some(elsewhere)).unwrap();
    assert_eq!(settings.store.folder().unwrap(), elsewhere);
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
    assert_eq!(retry.jitter, 0.1, "default ±10 %");
}

#[test]
fn retry_jitter_is_a_bounded_fraction() {
    let s = Scratch::new();
    let retry = s.load_with("\n[retry]\njitter = 0\n").unwrap().retry;
    assert_eq!(retry.jitter, 0.0);
    let retry = s.load_with("\n[retry]\njitter = 0.25\n").unwrap().retry;
    assert_eq!(retry.jitter, 0.25);
    for bad in ["-0.1", "0.9", "nan"] {
        let err = s
            .load_with(&format!("\n[retry]\njitter = {bad}\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("retry.jitter"), "{bad}: {err}");
    }
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
fn reading_commands_do_without_the_secrets() {
    let s = Scratch::new();
    let text = format!(
        "{CAMPAIGN}{DKIM}\n[relay]\nhost = \"h.example\"\nusername = \"u\"\npassword_env = \"VOLLEY_TEST_PW_NOT_SET\"\n\n[tracking]\nbase_url = \"https://t.acme.example\"\nkey_env = \"VOLLEY_TEST_KEY_NOT_SET\"\n"
    );
    std::fs::write(s.file(), &text).unwrap();
    let settings = super::load_campaign_for_reading(&s.file(), None).unwrap();
    assert_eq!(settings.id, "t1");
    assert!(!settings.secrets_read);
    assert!(
        load_campaign(&s.file(), None).is_err(),
        "sending still needs them"
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
fn soft_bounce_run_settings_parse() {
    let s = Scratch::new();
    let defaults = s.load_with("").unwrap().bounces;
    assert_eq!(
        (
            defaults.soft_limit,
            defaults.soft_window,
            defaults.soft_min_span
        ),
        (
            3,
            Duration::from_secs(30 * 86_400),
            Duration::from_secs(15 * 86_400)
        )
    );
    let set = |span: &str| {
        s.load_with(&format!(
            "\n[bounces]\nsoft_window = \"30d\"\nsoft_min_span = \"{span}\"\n"
        ))
    };
    assert_eq!(
        set("7d").unwrap().bounces.soft_min_span,
        Duration::from_secs(7 * 86_400)
    );
    assert_eq!(set("0s").unwrap().bounces.soft_min_span, Duration::ZERO);
    let err = set("40d").unwrap_err().to_string();
    assert!(
        err.contains("bounces.soft_min_span = \"40d\"")
            && err.contains("no longer than bounces.soft_window"),
        "{err}"
    );
}

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
    s.assert_errors(&cases);
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

#[test]
fn direct_delivery_defaults() {
    let s = Scratch::new();
    let settings = s.load_with("").unwrap();
    assert!(settings.relay.is_none());
    assert_eq!(settings.mx.port, 25);
    assert_eq!(settings.mx.helo, "acme.example");
    assert_eq!(settings.mx.tls, MxTls::Opportunistic);
    assert_eq!(
        settings.mx.plain_after_tls_failure,
        Duration::from_secs(3600)
    );
    assert_eq!(settings.dns, DnsSettings::default());
    let rule = &settings.shaping.default;
    assert_eq!(rule.max_connections, 10);
    assert_eq!(rule.max_messages_per_connection, 100);
    assert_eq!(rule.max_message_rate, None);
    assert_eq!(settings.shaping.global.max_connections, 500);
    assert!(settings.shaping.rules.is_empty());
}

#[test]
fn mx_dns_and_shaping_sections_parse() {
    let s = Scratch::new();
    let settings = s
        .load_with(
            r#"
[mx]
port = 2525
helo = "mailer.acme.example"
tls = "required"
plain_after_tls_failure = "10m"

[dns]
nameservers = ["127.0.0.1:5353", "::1", "10.0.0.1"]
timeout = "2s"
attempts = 3

[shaping.default]
max_connections = 4
max_message_rate = "600/min"
idle_timeout = "30s"
throttle_replies = ["Please Wait"]

[shaping."gmail.com"]
max_connections = 20
max_message_rate = 50

[shaping."outlook.com"]
max_messages_per_connection = 10
tls = "opportunistic"
suspend_after = 2
suspend_for = "1h"

[shaping.global]
max_connections = 100
max_message_rate = "10000/h"
"#,
        )
        .unwrap();
    assert_eq!(settings.mx.port, 2525);
    assert_eq!(settings.mx.helo, "mailer.acme.example");
    assert_eq!(settings.mx.tls, MxTls::Required);
    assert_eq!(
        settings.mx.plain_after_tls_failure,
        Duration::from_secs(600)
    );
    let servers = settings.dns.nameservers.clone().unwrap();
    let shown: Vec<String> = servers.iter().map(ToString::to_string).collect();
    assert_eq!(shown, ["127.0.0.1:5353", "[::1]:53", "10.0.0.1:53"]);
    assert_eq!(settings.dns.timeout, Duration::from_secs(2));
    assert_eq!(settings.dns.attempts, 3);
    let default = &settings.shaping.default;
    assert_eq!(default.max_connections, 4);
    assert_eq!(default.max_message_rate.unwrap().per_second(), 10.0);
    assert_eq!(default.idle_timeout, Duration::from_secs(30));
    assert_eq!(default.throttle_replies, ["please wait"]);
    let rule = |name: &str| {
        &settings
            .shaping
            .rules
            .iter()
            .find(|(n, _)| n == name)
            .unwrap()
            .1
    };
    let gmail = rule("gmail.com");
    assert_eq!(gmail.max_connections, 20);
    assert_eq!(gmail.max_message_rate.unwrap().per_second(), 50.0);
    assert_eq!(
        gmail.idle_timeout,
        Duration::from_secs(30),
        "inherits the default"
    );
    let outlook = rule("outlook.com");
    assert_eq!(outlook.max_connections, 4);
    assert_eq!(outlook.max_messages_per_connection, 10);
    assert_eq!(outlook.tls, Some(MxTls::Opportunistic));
    assert_eq!(
        (outlook.suspend_after, outlook.suspend_for),
        (2, Duration::from_secs(3600))
    );
    assert_eq!(settings.shaping.global.max_connections, 100);
    let global_rate = settings.shaping.global.max_message_rate.unwrap();
    assert!((global_rate.per_second() - 10_000.0 / 3600.0).abs() < 1e-9);
}

#[test]
fn relay_caps_parse() {
    let s = Scratch::new();
    let settings = s
        .load_with(
            "[relay]\nhost = \"smtp.example\"\nmax_per_second = 14\nmax_per_hour = 1000\nmax_per_day = 20000\nmax_messages_per_connection = 50\n",
        )
        .unwrap();
    let relay = settings.relay.unwrap();
    assert_eq!(relay.max_per_second, Some(14));
    assert_eq!(relay.max_per_hour, Some(1000));
    assert_eq!(relay.max_per_day, Some(20_000));
    assert_eq!(relay.max_messages_per_connection, Some(50));
}

#[test]
fn delivery_settings_errors_name_the_key() {
    let s = Scratch::new();
    let with = |extra: &str| format!("{CAMPAIGN}{DKIM}\n{extra}\n");
    let cases: Vec<(String, &str)> = vec![
        (with("[mx]\nport = 0"), "mx.port = 0 is out of range (1 to 65535)"),
        (with("[mx]\nhelo = \"a b\""), "mx.helo = \"a b\" is invalid: a host name or IP address without spaces"),
        (with("[dns]\nnameservers = []"), "dns.nameservers = \"[]\" is invalid: at least one name server, like \"127.0.0.1:53\""),
        (with("[dns]\nnameservers = [\"dns.example\"]"), "dns.nameservers[0] = \"dns.example\" is invalid: an IP address with an optional port, like 127.0.0.1:5353 or [::1]:53"),
        (with("[dns]\nattempts = 0"), "dns.attempts = 0 is out of range (1 to 10)"),
        (with("[dns]\ntimeout = \"0s\""), "dns.timeout = \"0s\" is not a valid duration: it must be longer than zero"),
        (with("[shaping.default]\nmax_connections = 0"), "shaping.default.max_connections = 0 is out of range (1 to 1000)"),
        (with("[shaping.default]\nmax_message_rate = \"fast\""), "shaping.default.max_message_rate = \"fast\" is invalid: a positive rate such as 20 (per second), \"100/s\", \"600/min\", \"5000/h\" or \"100000/day\""),
        (with("[shaping.default]\nmax_message_rate = \"10/fortnight\""), "shaping.default.max_message_rate = \"10/fortnight\" is invalid: a positive rate such as 20 (per second), \"100/s\", \"600/min\", \"5000/h\" or \"100000/day\""),
        (with("[shaping.default]\nmax_message_rate = -5"), "shaping.default.max_message_rate = \"-5\" is invalid: a positive rate such as 20 (per second), \"100/s\", \"600/min\", \"5000/h\" or \"100000/day\""),
        (with("[shaping.\"gmail.com\"]\nidle_timeout = \"soon\""), "shaping.\"gmail.com\".idle_timeout = \"soon\" is not a valid duration: expected number at 0 (write it like 30m, 2h or 3d)"),
        (with("[shaping.\"not a domain\"]\nmax_connections = 2"), "shaping.\"not a domain\" = \"not a domain\" is invalid: \"default\", \"global\", a domain (gmail.com) or an MX host suffix (google.com)"),
        (with("[shaping.global]\nidle_timeout = \"5s\""), "shaping.global.idle_timeout does not apply here: shaping.global takes max_connections and max_message_rate only"),
        (with("[relay]\nhost = \"h.example\"\nmax_per_day = 0"), "relay.max_per_day = 0 is out of range (1 to 4294967295)"),
    ];
    s.assert_errors(&cases);
}

#[test]
fn an_unknown_shaping_key_names_its_line() {
    let s = Scratch::new();
    let text = format!("{CAMPAIGN}{DKIM}\n[shaping.default]\nmax_conections = 3\n");
    let err = s.error(&text);
    assert!(err.contains("line 14"), "{err}");
    assert!(err.contains("max_conections"), "{err}");
}

#[test]
fn schedules_parse_and_bad_ones_name_the_key() {
    let s = Scratch::new();
    let settings = s
        .load_with("\n[schedule]\ncron = \"0 9 * * MON\"\ntimezone = \"Europe/Berlin\"\n")
        .unwrap();
    let schedule = settings.schedule.unwrap();
    assert_eq!(schedule.cron_text, "0 9 * * MON");
    assert_eq!(schedule.timezone, chrono_tz::Europe::Berlin);
    assert_eq!(schedule.catch_up, Duration::from_secs(6 * 3600));
    let with = |extra: &str| format!("{CAMPAIGN}{DKIM}\n[schedule]\n{extra}\n");
    let cases = [
        (
            with("cron = \"every monday\""),
            "schedule.cron = \"every monday\" is invalid: five fields: minute hour day-of-month month day-of-week, like \"0 9 * * MON\"",
        ),
        (
            with("cron = \"0 0 9 * * MON\""),
            "schedule.cron = \"0 0 9 * * MON\" is invalid: five fields: minute hour day-of-month month day-of-week, like \"0 9 * * MON\"",
        ),
        (
            with("cron = \"0 9 * * MON\"\ntimezone = \"Mars/Olympus\""),
            "schedule.timezone = \"Mars/Olympus\" is invalid: an IANA time zone name, like \"Europe/Berlin\" or \"UTC\"",
        ),
    ];
    s.assert_errors(&cases);
}

#[test]
fn serve_files_load_and_bad_ones_name_the_key() {
    let s = Scratch::new();
    std::fs::write(s.file(), format!("{CAMPAIGN}{DKIM}")).unwrap();
    let serve = s.dir.path().join("volley.toml");
    let load = |text: &str| {
        std::fs::write(&serve, text).unwrap();
        super::load_serve(&serve)
    };
    let settings = load("store = \"news.volley\"\ncampaigns = [\"campaign.toml\"]\n[bounces]\nbind = \"127.0.0.1:2526\"\n").unwrap();
    assert_eq!(
        settings.store.folder().unwrap(),
        s.dir.path().join("news.volley")
    );
    assert_eq!(settings.campaigns, [s.file()]);
    let bounces = settings.bounces.unwrap();
    assert_eq!(bounces.bind, "127.0.0.1:2526".parse().unwrap());
    assert_eq!(bounces.spool, s.dir.path().join("news.volley/bounce-spool"));
    let error = |text: &str| {
        load(text)
            .unwrap_err()
            .to_string()
            .replace(&s.dir.path().display().to_string(), "DIR")
    };
    assert_eq!(
        error("store = \"s\"\n[bounces]\nbind = \"localhost\"\n"),
        "DIR/volley.toml: bounces.bind = \"localhost\" is invalid: an address and port, like 127.0.0.1:8025"
    );
    let missing = error("store = \"s\"\ncampaigns = [\"gone.toml\"]\n");
    assert!(
        missing.contains("campaigns[0]") && missing.contains("gone.toml"),
        "{missing}"
    );
    let unknown = error("store = \"s\"\n\n[tracking]\nbind = \"127.0.0.1:1\"\nkey = \"x\"\n");
    assert!(
        unknown.contains("line 5") && unknown.contains("key"),
        "{unknown}"
    );
}

#[test]
fn the_serve_files_tracking_limits_and_metrics_token_load_and_bad_ones_name_the_key() {
    let s = Scratch::new();
    let serve = s.dir.path().join("volley.toml");
    std::fs::write(
        s.dir.path().join("track.key"),
        "a tracking key, long enough\n",
    )
    .unwrap();
    std::fs::write(
        s.dir.path().join("metrics.token"),
        "a metrics token, long enough\n",
    )
    .unwrap();
    let load = |extra: &str| {
        let text = format!(
            "store = \"s\"\n[tracking]\nbind = \"127.0.0.1:8025\"\nkey_file = \"track.key\"\n{extra}"
        );
        std::fs::write(&serve, text).unwrap();
        super::load_serve(&serve)
    };
    let defaults = load("").unwrap().tracking.unwrap();
    assert!(defaults.metrics_token.is_none());
    assert_eq!(
        (
            defaults.header_timeout,
            defaults.dedupe_window,
            defaults.daily_cap
        ),
        (None, None, None)
    );
    let set = load(
        "metrics_token_file = \"metrics.token\"\nheader_timeout = \"5s\"\nidle_timeout = \"30s\"\n\
         max_connections = 64\ndedupe_window = \"0\"\ndaily_cap = 20\n",
    )
    .unwrap()
    .tracking
    .unwrap();
    assert_eq!(
        set.metrics_token
            .as_ref()
            .map(|t| t.expose_secret().to_owned()),
        Some("a metrics token, long enough".to_owned())
    );
    assert_eq!(set.header_timeout, Some(Duration::from_secs(5)));
    assert_eq!(set.idle_timeout, Some(Duration::from_secs(30)));
    assert_eq!(set.max_connections, Some(64));
    assert_eq!(set.dedupe_window, Some(Duration::ZERO));
    assert_eq!(set.daily_cap, Some(20));
    for off in ["0s", "off"] {
        let window = load(&format!("dedupe_window = \"{off}\"\n")).unwrap();
        assert_eq!(window.tracking.unwrap().dedupe_window, Some(Duration::ZERO));
    }
    let error = |extra: &str| {
        load(extra)
            .unwrap_err()
            .to_string()
            .replace(&s.dir.path().display().to_string(), "DIR")
    };
    for (extra, key) in [
        ("header_timeout = \"soon\"\n", "tracking.header_timeout"),
        ("idle_timeout = \"0s\"\n", "tracking.idle_timeout"),
        ("max_connections = 0\n", "tracking.max_connections"),
        ("daily_cap = -1\n", "tracking.daily_cap"),
        (
            "metrics_token_env = \"VOLLEY_TEST_UNSET_METRICS\"\n",
            "tracking.metrics_token_env",
        ),
        (
            "metrics_token_file = \"metrics.token\"\nmetrics_token_env = \"X\"\n",
            "tracking.metrics_token_file",
        ),
    ] {
        let message = error(extra);
        assert!(
            message.contains(key) && message.starts_with("DIR/volley.toml"),
            "{extra}: {message}"
        );
    }
    std::fs::write(s.dir.path().join("metrics.token"), "short\n").unwrap();
    let weak = error("metrics_token_file = \"metrics.token\"\n");
    assert!(
        weak.contains("at least 16 bytes") && !weak.contains("short"),
        "{weak}"
    );
}

const VARIANTS: &str = r#"
[[variant]]
id = "A"
subject = "Spring sale"

[[variant]]
id = "B"
weight = 2
subject = "Spring sale: 20 % off"
from_name = "Ann at Acme"
text = "body.txt"
"#;

#[test]
fn variants_and_test_then_winner_load_with_their_defaults() {
    let scratch = Scratch::new();
    let split = scratch.load_with(VARIANTS).unwrap();
    assert_eq!(split.variant_ids(), ["A", "B"]);
    assert_eq!(split.variants[1].weight, 2.0);
    assert_eq!(split.variants[1].from_name.as_deref(), Some("Ann at Acme"));
    assert!(split.variants[1].text.is_some() && split.variants[0].text.is_none());
    assert!(
        split.ab.is_none(),
        "variants without [ab] split the whole list"
    );

    let ab = scratch
        .load_with(&format!("{VARIANTS}\n[ab]\ntest_share = 0.2\n"))
        .unwrap()
        .ab
        .unwrap();
    assert_eq!(ab.test_share, 0.2);
    assert_eq!(ab.wait, Duration::from_secs(4 * 3600));
    assert_eq!(ab.rules, crate::ab::Rules::default());
    assert_eq!(ab.on_inconclusive, OnInconclusive::Split);
    assert_eq!(ab.recheck_every, Duration::from_secs(5 * 60));
    let ab = scratch
        .load_with(&format!(
            "{VARIANTS}\n[ab]\ntest_share = 0.1\nmetric = \"clicks_per_open\"\nwait = \"90m\"\n\
             confidence = 0.99\nmin_per_variant = 500\non_inconclusive = \"variant:B\"\n\
             recheck_every = \"90s\"\n"
        ))
        .unwrap()
        .ab
        .unwrap();
    assert_eq!(ab.rules.metric, crate::ab::Metric::ClicksPerOpen);
    assert_eq!((ab.rules.confidence, ab.rules.min_per_variant), (0.99, 500));
    assert_eq!(ab.on_inconclusive, OnInconclusive::Variant(1));
    assert_eq!(ab.recheck_every, Duration::from_secs(90));
    assert_eq!(scratch.load_with("").unwrap().variant_ids(), ["main"]);
}

#[test]
fn bad_variants_and_ab_settings_name_their_key() {
    let scratch = Scratch::new();
    let one = "\n[[variant]]\nid = \"A\"\n";
    let cases: Vec<(String, &str)> = vec![
        (one.to_owned(), "variant"),
        (
            format!("{VARIANTS}\n[[variant]]\nid = \"A\"\n"),
            "variant[2].id",
        ),
        (
            VARIANTS.replace("id = \"B\"", "id = \"B C\""),
            "variant[1].id",
        ),
        (
            VARIANTS.replace("weight = 2", "weight = 0"),
            "variant[1].weight",
        ),
        (
            VARIANTS.replace("text = \"body.txt\"", "text = \"nope.txt\""),
            "variant[1].text",
        ),
        ("\n[ab]\ntest_share = 0.2\n".to_owned(), "[[variant]]"),
        (
            format!("{VARIANTS}\n[ab]\ntest_share = 1.0\n"),
            "ab.test_share",
        ),
        (
            format!("{VARIANTS}\n[ab]\ntest_share = 0.2\nconfidence = 1.5\n"),
            "ab.confidence",
        ),
        (
            format!("{VARIANTS}\n[ab]\ntest_share = 0.2\nwait = \"soon\"\n"),
            "ab.wait",
        ),
        (
            format!("{VARIANTS}\n[ab]\ntest_share = 0.2\nrecheck_every = \"0s\"\n"),
            "ab.recheck_every",
        ),
        (
            format!("{VARIANTS}\n[ab]\ntest_share = 0.2\nmin_per_variant = 0\n"),
            "ab.min_per_variant",
        ),
        (
            format!("{VARIANTS}\n[ab]\ntest_share = 0.2\non_inconclusive = \"variant:C\"\n"),
            "ab.on_inconclusive",
        ),
        (
            format!("{VARIANTS}\n[ab]\ntest_share = 0.2\nmax_complaint_rate = 2\n"),
            "ab.max_complaint_rate",
        ),
        (
            format!("{VARIANTS}\n[ab]\ntest_share = 0.2\nmetric = \"profit\"\n"),
            "line",
        ),
    ];
    for (extra, key) in cases {
        let err = scratch.load_with(&extra).unwrap_err().to_string();
        assert!(
            err.contains("campaign.toml") && err.contains(key),
            "{key}: {err}"
        );
    }
}

#[test]
fn conversions_settings_load_and_bad_ones_name_their_key() {
    let scratch = Scratch::new();
    let settings = scratch
        .load_with(&format!(
            "{VARIANTS}\n[ab]\ntest_share = 0.2\nmetric = \"revenue\"\n\n\
             [conversions]\nwindow = \"3d\"\ncurrency = \"eur\"\n"
        ))
        .unwrap();
    assert_eq!(
        settings.ab.unwrap().rules.metric,
        crate::ab::Metric::Revenue
    );
    assert_eq!(
        settings.conversions.window,
        std::time::Duration::from_secs(3 * 86_400)
    );
    assert_eq!(settings.conversions.currency.as_deref(), Some("EUR"));
    assert!(settings.conversions.postback_secret.is_none());
    for (extra, key) in [
        ("[conversions]\nwindow = \"soon\"\n", "conversions.window"),
        (
            "[conversions]\ncurrency = \"euro\"\n",
            "conversions.currency",
        ),
        (
            "[conversions]\npostback_secret_env = \"VOLLEY_NO_SUCH_VARIABLE_HERE\"\n",
            "conversions.postback_secret_env",
        ),
        (
            "[conversions]\npostback_secret = \"inline\"\n",
            "postback_secret",
        ),
    ] {
        let err = scratch.load_with(extra).unwrap_err().to_string();
        assert!(err.contains(key), "{key}: {err}");
    }
}
