//! `[[webhook]]` in the serve file: url, events, secret, filters and limits, checked with
//! the file, entry and value named, and the secret never repeated.

use super::*;
use crate::store::ExportKind;
use secrecy::ExposeSecret;
use std::time::Duration;

/// A valid secret (the Standard Webhooks example's key).
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Loads a serve file of `body` beside a secret file `hook.secret` holding `secret`.
fn serve(body: &str, secret: &str) -> Result<ServeSettings, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hook.secret"), format!("{secret}\n")).unwrap();
    let path = dir.path().join("serve.toml");
    std::fs::write(&path, format!("store = \"store\"\n{body}")).unwrap();
    load_serve(&path)
}

fn hook(extra: &str) -> String {
    format!("[[webhook]]\nurl = \"https://crm.example.com/volley?x=1\"\nsecret_file = \"hook.secret\"\n{extra}")
}

#[test]
fn a_webhook_takes_its_defaults_and_its_secret_bytes() {
    let settings = serve(&hook(""), SECRET).unwrap();
    let [webhook] = &settings.webhooks[..] else {
        panic!("{:?}", settings.webhooks)
    };
    assert_eq!(webhook.name, "crm.example.com");
    assert_eq!(
        webhook.url.path_and_query().unwrap().as_str(),
        "/volley?x=1"
    );
    assert_eq!(webhook.events, DEFAULT_EVENTS.to_vec());
    assert_eq!(webhook.secret.expose_secret().len(), 24);
    assert_eq!(webhook.batch, 100);
    assert_eq!(webhook.timeout, Duration::from_secs(10));
    assert_eq!(webhook.give_up_after, Duration::from_secs(3 * 86_400));
    assert!(webhook.campaigns.is_none() && webhook.ca_file.is_none());
    assert!(serve("", SECRET).unwrap().webhooks.is_empty());
}

#[test]
fn a_webhook_takes_its_events_filter_and_limits() {
    let extra = "name = \"crm\"\nevents = [\"bounced\", \"complained\", \"click\", \"clicked\"]\n\
                 campaigns = [\"news\"]\nbatch = 5\ntimeout = \"2s\"\ngive_up_after = \"1d\"\n";
    let settings = serve(&hook(extra), SECRET).unwrap();
    let webhook = &settings.webhooks[0];
    assert_eq!(webhook.name, "crm");
    assert_eq!(
        webhook.events,
        vec![
            ExportKind::Bounced,
            ExportKind::Complaint,
            ExportKind::Click
        ]
    );
    assert_eq!(webhook.campaigns.as_deref(), Some(&["news".to_owned()][..]));
    assert_eq!(webhook.batch, 5);
    assert_eq!(webhook.timeout, Duration::from_secs(2));
    assert_eq!(webhook.give_up_after, Duration::from_secs(86_400));
}

#[test]
fn bad_webhook_entries_name_the_file_entry_and_value() {
    let http = "[[webhook]]\nurl = \"http://a.example/\"\nsecret_file = \"hook.secret\"\n";
    for (body, said) in [
        (hook("events = [\"delivered\", \"opend\"]\n"), "webhook[0].events[1] = \"opend\""),
        (hook("events = []\n"), "webhook[0].events"),
        (hook("batch = 0\n"), "webhook[0].batch"),
        (hook("timeout = \"1ms\"\n"), "webhook[0].timeout"),
        (hook("give_up_after = \"2h\"\n"), "webhook[0].give_up_after = \"2h\""),
        (hook("name = \"a b\"\n"), "webhook[0].name"),
        (hook("colour = \"red\"\n"), "colour"),
        (hook("ca_file = \"missing.pem\"\n"), "webhook[0].ca_file"),
        (format!("{http}{http}"), "webhook[1].name = \"a.example\""),
        ("[[webhook]]\nurl = \"ftp://a.example/\"\nsecret_file = \"hook.secret\"\n".into(), "webhook[0].url = \"ftp://a.example/\""),
        ("[[webhook]]\nurl = \"/relative\"\nsecret_file = \"hook.secret\"\n".into(), "webhook[0].url"),
        ("[[webhook]]\nurl = \"http://a.example/\"\n".into(), "webhook[0].secret_file or webhook[0].secret_env"),
        (format!("{http}secret_env = \"X\"\n"), "webhook[0].secret_file and webhook[0].secret_env"),
        (
            "[[webhook]]\nurl = \"http://a.example/\"\nsecret_env = \"VOLLEY_TEST_NO_SUCH_VARIABLE\"\n".into(),
            "VOLLEY_TEST_NO_SUCH_VARIABLE",
        ),
    ] {
        let error = serve(&body, SECRET).unwrap_err().to_string();
        assert!(error.contains("serve.toml"), "{body}: {error}");
        assert!(error.contains(said), "{body}: {error}");
    }
}

#[test]
fn a_bad_secret_or_password_is_named_by_where_it_is_never_repeated() {
    for secret in [
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_!!!not-base64!!!",
        "whsec_c2hvcnQ=",
    ] {
        let error = serve(&hook(""), secret).unwrap_err().to_string();
        assert!(
            error.contains("webhook[0].secret_file = \"hook.secret\""),
            "{error}"
        );
        assert!(error.contains("Standard Webhooks secret"), "{error}");
        assert!(!error.contains(secret), "{error}");
    }
    let body =
        "[[webhook]]\nurl = \"https://u:hunter2@a.example/\"\nsecret_file = \"hook.secret\"\n";
    let error = serve(body, SECRET).unwrap_err().to_string();
    assert!(
        error.contains("webhook[0].url") && !error.contains("hunter2"),
        "{error}"
    );
}
