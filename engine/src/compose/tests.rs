//! Composer scenarios: rendering, escaping, header safety, encodings and signing.

use std::path::Path;
use std::time::Duration;

use mail_parser::{MessageParser, MimeHeaders};

use super::*;
use crate::dkim::{self, DkimKey, Signer};

fn source(name: &str, text: &str) -> Option<TemplateSource> {
    Some(TemplateSource {
        name: name.to_owned(),
        source: text.to_owned(),
    })
}

fn settings() -> MessageSettings {
    MessageSettings {
        from: Mailbox {
            name: Some("Example News".to_owned()),
            address: "news@example.com".to_owned(),
        },
        reply_to: Some(Mailbox {
            name: None,
            address: "help@example.com".to_owned(),
        }),
        extra_headers: vec![(
            "List-Unsubscribe-Post".to_owned(),
            "List-Unsubscribe=One-Click".to_owned(),
        )],
    }
}

fn composer(subject: &str, text: Option<&str>, html: Option<&str>) -> Composer {
    let templates = Templates::new(
        subject,
        text.and_then(|t| source("body.txt", t)),
        html.and_then(|h| source("body.html", h)),
    )
    .unwrap();
    Composer::new(templates, settings(), None)
}

fn row(pairs: &[(&str, &str)]) -> (Vec<String>, Vec<String>) {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .unzip()
}

#[test]
fn variables_lists_every_top_level_variable() {
    let templates = Templates::new(
        "Hi {{ first_name }}",
        source(
            "t.txt",
            "{% for x in items %}{{ x }}{% endfor %} {{ city|upper }}",
        ),
        source(
            "t.html",
            "{% set local = 1 %}<p>{{ code }} {{ local }} {{ range(3)|length }}</p>",
        ),
    )
    .unwrap();
    let vars: Vec<_> = templates.variables().into_iter().collect();
    assert_eq!(vars, ["city", "code", "first_name", "items"]);
}

#[test]
fn syntax_error_names_file_and_line() {
    let err =
        Templates::new("ok", source("news/body.txt", "line one\n{{ broken"), None).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, ComposeError::Syntax { line: Some(2), .. }),
        "{err:?}"
    );
    assert!(text.contains("news/body.txt line 2"), "{text}");
    let err = Templates::new("{% if %}", source("b.txt", "x"), None).unwrap_err();
    assert!(err.to_string().contains("subject"), "{err}");
}

#[test]
fn a_body_is_required() {
    let err = Templates::new("s", None, None).unwrap_err();
    assert!(matches!(err, ComposeError::NoBody));
}

#[test]
fn missing_variable_is_an_error_naming_it() {
    let composer = composer("Hi {{ first_name }}", Some("{{ coupon }}"), None);
    let (names, values) = row(&[("email", "a@example.net"), ("first_name", "Ann")]);
    let err = composer
        .compose("a@example.net", &names, &values)
        .unwrap_err();
    assert!(
        matches!(&err, ComposeError::MissingVariable { variable, template } if variable == "coupon" && template == "body.txt"),
        "{err:?}"
    );
    assert!(err.to_string().contains("`coupon`"));
}

#[test]
fn text_and_html_become_multipart_alternative() {
    let composer = composer(
        "Hello {{ name }}",
        Some("Hi {{ name }},\nsee you.\n"),
        Some("<p>Hi {{ name }}</p>"),
    );
    let (names, values) = row(&[("email", "a@example.net"), ("name", "Ann")]);
    let composed = composer.compose("a@example.net", &names, &values).unwrap();
    let message = MessageParser::default().parse(&composed.bytes).unwrap();
    assert_eq!(message.subject(), Some("Hello Ann"));
    assert_eq!(
        message.body_text(0).unwrap().trim_end(),
        "Hi Ann,\r\nsee you."
    );
    assert_eq!(message.body_html(0).unwrap(), "<p>Hi Ann</p>");
    let content_type = message.content_type().unwrap();
    assert_eq!(content_type.ctype(), "multipart");
    assert_eq!(content_type.subtype(), Some("alternative"));
    let from = message.from().unwrap().first().unwrap();
    assert_eq!(from.name(), Some("Example News"));
    assert_eq!(from.address(), Some("news@example.com"));
    assert_eq!(
        message.reply_to().unwrap().first().unwrap().address(),
        Some("help@example.com")
    );
    assert_eq!(message.message_id(), Some(composed.message_id.as_str()));
    assert!(composed.message_id.ends_with("@example.com"));
    assert!(message.date().is_some());
    assert_eq!(
        message.header_raw("List-Unsubscribe-Post").map(str::trim),
        Some("List-Unsubscribe=One-Click")
    );
    let raw = String::from_utf8(composed.bytes).unwrap();
    assert!(!raw.replace("\r\n", "").contains('\n'), "bare LF in output");
}

#[test]
fn message_ids_are_unique() {
    let composer = composer("s", Some("t"), None);
    let (names, values) = row(&[("email", "a@example.net")]);
    let a = composer.compose("a@example.net", &names, &values).unwrap();
    let b = composer.compose("a@example.net", &names, &values).unwrap();
    assert_ne!(a.message_id, b.message_id);
}

#[test]
fn html_escapes_merge_values_and_text_does_not() {
    let composer = composer("s", Some("{{ name }}"), Some("<p>{{ name }}</p>"));
    let (names, values) = row(&[("name", "<b>Tom & \"Jerry\"</b>")]);
    let composed = composer.compose("a@example.net", &names, &values).unwrap();
    let message = MessageParser::default().parse(&composed.bytes).unwrap();
    assert_eq!(
        message.body_html(0).unwrap(),
        "<p>&lt;b&gt;Tom &amp; &quot;Jerry&quot;&lt;&#x2f;b&gt;</p>"
    );
    assert_eq!(message.body_text(0).unwrap(), "<b>Tom & \"Jerry\"</b>");
}

#[test]
fn merge_values_cannot_inject_headers() {
    let mut settings = settings();
    settings.from.name = Some("News\r\nBcc: from@evil.example".to_owned());
    let templates = Templates::new("Hi {{ name }}", source("b.txt", "{{ name }}"), None).unwrap();
    let composer = Composer::new(templates, settings, None);
    let evil = "Ann\r\nBcc: victim@evil.example\r\n\r\nfake body\nX-Evil: 1\rY: 2";
    let (names, values) = row(&[("name", evil)]);
    let composed = composer
        .compose_with_headers(
            "a@example.net",
            &names,
            &values,
            &[("X-Ref", "a\nBcc: x@evil.example")],
        )
        .unwrap();
    let message = MessageParser::default().parse(&composed.bytes).unwrap();
    assert!(message.bcc().is_none(), "a Bcc header was injected");
    assert!(message.header_raw("X-Evil").is_none());
    assert!(message.header_raw("Y").is_none());
    let subject = message.subject().unwrap();
    assert!(!subject.contains(['\r', '\n']), "{subject:?}");
    assert!(
        subject.starts_with("Hi Ann") && subject.contains("Bcc: victim"),
        "{subject:?}"
    );
    let raw = String::from_utf8_lossy(&composed.bytes);
    let header_block = raw.split("\r\n\r\n").next().unwrap();
    assert!(
        header_block
            .lines()
            .all(|l| !l.starts_with("Bcc") && !l.starts_with("X-Evil")),
        "{header_block}"
    );
}

#[test]
fn bad_recipient_address_is_refused() {
    let composer = composer("s", Some("t"), None);
    for to in [
        "a@example.net\r\nBcc: x@y.z",
        "no-at-sign",
        "a b@example.net",
        "<a@b.c>",
    ] {
        let err = composer.compose(to, &[], &[]).unwrap_err();
        assert!(
            matches!(err, ComposeError::InvalidAddress { field: "To", .. }),
            "{to}: {err:?}"
        );
    }
}

#[test]
fn extra_headers_cannot_override_our_own() {
    let mut settings = settings();
    settings
        .extra_headers
        .push(("From".to_owned(), "x@evil.example".to_owned()));
    let templates = Templates::new("s", source("b.txt", "t"), None).unwrap();
    let composer = Composer::new(templates, settings, None);
    let err = composer.compose("a@example.net", &[], &[]).unwrap_err();
    assert!(matches!(err, ComposeError::InvalidHeader { .. }), "{err:?}");
}

#[test]
fn non_ascii_subject_and_body_are_encoded() {
    let composer = composer(
        "Grüße, {{ name }} — 日本",
        Some("Crème brûlée for {{ name }}"),
        None,
    );
    let (names, values) = row(&[("name", "Zoë")]);
    let composed = composer.compose("a@example.net", &names, &values).unwrap();
    assert!(composed.bytes.is_ascii(), "output must be 7-bit clean");
    let raw = String::from_utf8_lossy(&composed.bytes);
    assert!(raw.contains("Subject: =?utf-8?"), "{raw}");
    let message = MessageParser::default().parse(&composed.bytes).unwrap();
    assert_eq!(message.subject(), Some("Grüße, Zoë — 日本"));
    assert_eq!(message.body_text(0).unwrap(), "Crème brûlée for Zoë");
}

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/dkim")
        .join(name)
}

#[tokio::test]
async fn composed_message_is_signed_and_verifies() {
    let rsa = DkimKey::from_file("example.com", "rsa", &fixture("rsa2048.pem")).unwrap();
    let ed = DkimKey::from_file("example.com", "ed", &fixture("ed25519.pem")).unwrap();
    let records = vec![
        (rsa.dns_name(), rsa.dns_record().unwrap()),
        (ed.dns_name(), ed.dns_record().unwrap()),
    ];
    let templates = Templates::new(
        "Ciao {{ name }}",
        source("b.txt", "Hi {{ name }}\n"),
        source("b.html", "<p>Hi {{ name }}</p>\n"),
    )
    .unwrap();
    let composer = Composer::new(templates, settings(), Some(Signer::new(vec![ed, rsa])));
    let (names, values) = row(&[("name", "Ann")]);
    let composed = composer.compose("a@example.net", &names, &values).unwrap();
    assert!(composed.bytes.starts_with(b"DKIM-Signature: "));
    let results = tokio::time::timeout(
        Duration::from_secs(10),
        dkim::verify(&composed.bytes, &records),
    )
    .await
    .unwrap();
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(results.iter().all(|r| r.pass), "{results:?}");
    let raw = String::from_utf8_lossy(&composed.bytes);
    let h = raw
        .split("h=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_ascii_lowercase();
    for header in [
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "list-unsubscribe-post",
    ] {
        assert!(h.contains(header), "{header} not signed: {h}");
    }
}

#[test]
fn composer_is_shareable_between_threads() {
    fn assert_shareable<T: Send + Sync>() {}
    assert_shareable::<Composer>();
}

/// The names of the top-level header fields, after checking that every header line ends
/// with CRLF (no bare CR or LF).
fn header_names(bytes: &[u8]) -> Vec<String> {
    let raw = String::from_utf8_lossy(bytes);
    let (head, _) = raw.split_once("\r\n\r\n").expect("a header block");
    assert!(
        !head.replace("\r\n", "").contains(['\r', '\n']),
        "bare CR or LF in {head:?}"
    );
    head.split("\r\n")
        .filter(|line| !line.starts_with([' ', '\t']))
        .map(|line| {
            line.split(':')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase()
        })
        .collect()
}

/// Header fields the test composer writes (its settings add List-Unsubscribe-Post).
const COMPOSER_HEADERS: [&str; 10] = [
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "reply-to",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "list-unsubscribe-post",
];

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 64, ..proptest::prelude::ProptestConfig::default()
    })]

    #[test]
    fn any_template_source_compiles_or_is_a_syntax_error(
        subject in "[{}%# a-z|()\"'.,=~\r\n-]{0,40}",
        body in "[{}%# a-z|()\"'.,=~\r\n-]{0,80}",
        name in "[a-zA-Z\r\n:]{0,20}",
    ) {
        let templates = match Templates::new(&subject, source("b.txt", &body), None) {
            Ok(templates) => templates,
            Err(err) => {
                proptest::prop_assert!(
                    matches!(err, ComposeError::Syntax { .. }),
                    "{:?}", err
                );
                return Ok(());
            }
        };
        let composer = Composer::new(templates, settings(), None);
        let (names, values) = row(&[("email", "a@example.net"), ("name", &name)]);
        if let Ok(composed) = composer.compose("a@example.net", &names, &values) {
            for field in header_names(&composed.bytes) {
                proptest::prop_assert!(COMPOSER_HEADERS.contains(&field.as_str()), "{}", field);
            }
        }
    }

    #[test]
    fn merge_values_with_line_breaks_never_add_a_header(
        name in "[a-zA-Z :\r\n]{0,30}",
        city in "[a-zA-Z :\r\n]{0,30}",
        split in 0usize..3,
    ) {
        let evil = format!("{name}\r\nBcc: victim@evil.example\r\n\r\n{city}");
        let values = [name.as_str(), city.as_str(), evil.as_str()];
        let composer = composer(
            "Hi {{ name }} {{ city }}",
            Some("{{ name }}\n{{ city }}"),
            Some("<p>{{ city }}</p>"),
        );
        let (names, values) = row(&[
            ("email", "a@example.net"),
            ("name", values[split]),
            ("city", values[(split + 1) % 3]),
        ]);
        let composed = composer
            .compose_with_headers("a@example.net", &names, &values, &[("X-Ref", &values[2])])
            .unwrap();
        for field in header_names(&composed.bytes) {
            proptest::prop_assert!(
                COMPOSER_HEADERS.contains(&field.as_str()) || field == "x-ref",
                "{}", field
            );
        }
    }
}
