//! Fixture-driven tests of [`parse_message`] (one per MTA format in `fixtures/dsn/`) and
//! property tests that it never panics.

use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::*;

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/dsn")
        .join(name)
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(name)).unwrap()
}

fn parse(name: &str) -> BounceReport {
    parse_message(&fixture(name), &Classifier::builtin())
}

/// What one recipient must parse to (category is checked separately, see `CATEGORIES`).
struct Want {
    address: &'static str,
    action: Action,
    status: Option<&'static str>,
    diagnostic: Option<&'static str>,
    hard: bool,
}

fn check(name: &str, kind: ReportKind, to: &[&str], wants: &[Want]) -> BounceReport {
    let report = parse(name);
    assert_eq!(report.kind, kind, "{name}: kind");
    assert_eq!(report.to_addresses, to, "{name}: to_addresses");
    let got: Vec<_> = report
        .recipients
        .iter()
        .map(|r| r.address.as_str())
        .collect();
    let want: Vec<_> = wants.iter().map(|w| w.address).collect();
    assert_eq!(got, want, "{name}: recipients");
    for (r, w) in report.recipients.iter().zip(wants) {
        assert_eq!(r.action, w.action, "{name} {}: action", w.address);
        assert_eq!(
            r.status.as_deref(),
            w.status,
            "{name} {}: status",
            w.address
        );
        assert_eq!(
            r.diagnostic.as_deref(),
            w.diagnostic,
            "{name} {}: diagnostic",
            w.address
        );
        assert_eq!(r.hard, w.hard, "{name} {}: hard", w.address);
    }
    if kind != ReportKind::NotABounce {
        assert_eq!(
            report.original_message_id.as_deref(),
            Some("abc123@example.com"),
            "{name}: message id"
        );
    }
    report
}

fn failed(address: &'static str, status: Option<&'static str>, diagnostic: &'static str) -> Want {
    Want {
        address,
        action: Action::Failed,
        status,
        diagnostic: Some(diagnostic),
        hard: true,
    }
}

#[test]
fn postfix_user_unknown() {
    let report = check(
        "postfix-user-unknown.eml",
        ReportKind::Dsn,
        &["bounces+AAAA@bounce.example.com"],
        &[failed(
            "nosuchuser@example.net",
            Some("5.1.1"),
            "550 5.1.1 <nosuchuser@example.net>: Recipient address rejected: User unknown in virtual mailbox table",
        )],
    );
    let r = &report.recipients[0];
    assert_eq!(
        r.original_recipient.as_deref(),
        Some("nosuchuser@example.net")
    );
    assert_eq!(r.remote_mta.as_deref(), Some("mx1.example.net"));
    let headers: Vec<_> = report
        .original_headers
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(
        headers,
        [
            "return-path",
            "from",
            "to",
            "subject",
            "feedback-id",
            "x-volley-campaign"
        ]
    );
    assert!(report
        .original_headers
        .contains(&("x-volley-campaign".into(), "spring-sale".into())));
}

#[test]
fn postfix_delayed_is_soft() {
    check(
        "postfix-delayed.eml",
        ReportKind::Dsn,
        &["bounces+BBBB@bounce.example.com"],
        &[Want {
            address: "slow@example.org",
            action: Action::Delayed,
            status: Some("4.4.1"),
            diagnostic: Some("connect to mx.example.org[192.0.2.25]:25: Connection timed out"),
            hard: false,
        }],
    );
}

#[test]
fn exim_with_dsn() {
    let report = check(
        "exim-dsn.eml",
        ReportKind::Dsn,
        &["bounces+CCCC@bounce.example.com"],
        &[failed(
            "gone@example.co.uk",
            Some("5.0.0"),
            "550 5.1.1 <gone@example.co.uk>: Recipient address rejected: User unknown",
        )],
    );
    assert_eq!(
        report.recipients[0].remote_mta.as_deref(),
        Some("mx.example.co.uk")
    );
}

#[test]
fn exim_without_dsn_is_read_from_text() {
    let report = check(
        "exim-nondsn.eml",
        ReportKind::NonStandard,
        &["bounces+DDDD@bounce.example.com"],
        &[failed(
            "nobody@example.org",
            Some("5.1.1"),
            "550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown in virtual mailbox table",
        )],
    );
    assert!(report
        .original_headers
        .contains(&("feedback-id".into(), "spring-sale:acme:volley".into())));
}

#[test]
fn sendmail() {
    check(
        "sendmail.eml",
        ReportKind::Dsn,
        &["bounces+EEEE@bounce.example.com"],
        &[failed(
            "jsmith@example.edu",
            Some("5.1.1"),
            "550 5.1.1 <jsmith@example.edu>... User unknown",
        )],
    );
}

#[test]
fn office365_ndr() {
    check(
        "exchange-ndr.eml",
        ReportKind::Dsn,
        &["bounces+FFFF@bounce.example.com"],
        &[failed(
            "jane.doe@contoso.com",
            Some("5.1.10"),
            "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
        )],
    );
}

#[test]
fn gmail_no_such_user() {
    let report = check(
        "gmail-nosuchuser.eml",
        ReportKind::Dsn,
        &["bounces+GGGG@bounce.example.com"],
        &[Want {
            address: "no.such.user.1234@gmail.com",
            action: Action::Failed,
            status: Some("5.1.1"),
            diagnostic: Some(
                "550-5.1.1 The email account that you tried to reach does not exist. Please try \
                 550-5.1.1 double-checking the recipient's email address for typos or \
                 550-5.1.1 unnecessary spaces. For more information, go to 550 5.1.1  \
                 https://support.google.com/mail/?p=NoSuchUser \
                 41be03b00d2f7-6c35a2d9b41si1234567a12.301 - gsmtp",
            ),
            hard: true,
        }],
    );
    assert!(report.recipients[0]
        .remote_mta
        .as_deref()
        .unwrap()
        .starts_with("gmail-smtp-in.l.google.com."));
}

#[test]
fn qmail() {
    check(
        "qmail.eml",
        ReportKind::NonStandard,
        &["bounces+HHHH@bounce.example.com"],
        &[failed(
            "old.user@example.net",
            Some("5.1.1"),
            "550 5.1.1 <old.user@example.net>... No such user",
        )],
    );
}

#[test]
fn yahoo_mailbox_full() {
    check(
        "yahoo-mailbox-full.eml",
        ReportKind::NonStandard,
        &["bounces+IIII@bounce.example.com"],
        &[Want {
            hard: false, // mailbox full: soft, the address may work again
            ..failed(
                "full.box@yahoo.com",
                Some("5.2.2"),
                "552 5.2.2 Mailbox is full; over quota [RCPT_TO]",
            )
        }],
    );
}

#[test]
fn multi_recipient_report_gives_each_recipient() {
    check(
        "multi-recipient.eml",
        ReportKind::Dsn,
        &["bounces+JJJJ@bounce.example.com"],
        &[
            failed(
                "alice@example.com",
                Some("5.1.1"),
                "550 5.1.1 <alice@example.com>: Recipient address rejected: User unknown",
            ),
            Want {
                address: "bob@example.org",
                action: Action::Delayed,
                status: Some("4.4.1"),
                diagnostic: Some("421 4.4.1 Connection timed out"),
                hard: false,
            },
            // A policy rejection is soft: the address is not gone.
            Want {
                hard: false,
                ..failed(
                    "carol@example.net",
                    Some("5.7.1"),
                    "550 5.7.1 Message rejected due to local policy",
                )
            },
        ],
    );
}

#[test]
fn arf_complaint() {
    let report = check(
        "arf-complaint.eml",
        ReportKind::Complaint,
        &["fbl@bounce.example.com"],
        &[Want {
            address: "Complainer@mailprovider.example",
            action: Action::Complaint,
            status: None,
            diagnostic: None,
            hard: true,
        }],
    );
    assert_eq!(report.feedback_type.as_deref(), Some("abuse"));
    assert_eq!(report.recipients[0].category, Category::Other);
    assert!(report
        .original_headers
        .iter()
        .any(|(n, v)| n == "return-path" && v.contains("bounces+KKKK@")));
}

#[test]
fn out_of_office_is_not_a_bounce() {
    let report = check(
        "out-of-office.eml",
        ReportKind::NotABounce,
        &["bounces+LLLL@bounce.example.com", "news@acme.example"],
        &[],
    );
    assert!(report.recipients.is_empty());
}

/// Categories the real classifier must give. The TEMPORARY stand-in classifies everything as
/// `Other`, so this table is only checked once `CHECK_CATEGORIES` is true.
/// MERGER: set it to true when the real `classify.rs` lands (and adjust rows if its rules
/// legitimately differ).
const CHECK_CATEGORIES: bool = true;
const CATEGORIES: [(&str, &str, Category); 12] = [
    (
        "postfix-user-unknown.eml",
        "nosuchuser@example.net",
        Category::InvalidRecipient,
    ),
    ("postfix-delayed.eml", "slow@example.org", Category::Network),
    (
        "exim-dsn.eml",
        "gone@example.co.uk",
        Category::InvalidRecipient,
    ),
    (
        "exim-nondsn.eml",
        "nobody@example.org",
        Category::InvalidRecipient,
    ),
    (
        "sendmail.eml",
        "jsmith@example.edu",
        Category::InvalidRecipient,
    ),
    (
        "exchange-ndr.eml",
        "jane.doe@contoso.com",
        Category::InvalidRecipient,
    ),
    (
        "gmail-nosuchuser.eml",
        "no.such.user.1234@gmail.com",
        Category::InvalidRecipient,
    ),
    (
        "qmail.eml",
        "old.user@example.net",
        Category::InvalidRecipient,
    ),
    (
        "yahoo-mailbox-full.eml",
        "full.box@yahoo.com",
        Category::MailboxFull,
    ),
    (
        "multi-recipient.eml",
        "alice@example.com",
        Category::InvalidRecipient,
    ),
    ("multi-recipient.eml", "bob@example.org", Category::Network),
    (
        "multi-recipient.eml",
        "carol@example.net",
        Category::PolicyBlock,
    ),
];

#[test]
fn categories_from_the_real_classifier() {
    for (name, address, category) in CATEGORIES {
        let report = parse(name);
        let r = report
            .recipients
            .iter()
            .find(|r| r.address == address)
            .unwrap();
        if CHECK_CATEGORIES {
            assert_eq!(r.category, category, "{name} {address}");
        }
    }
}

#[test]
fn report_serializes_with_snake_case_names() {
    let json = serde_json::to_value(parse("multi-recipient.eml")).unwrap();
    assert_eq!(json["kind"], "dsn");
    assert_eq!(json["recipients"][1]["action"], "delayed");
    assert_eq!(json["recipients"][0]["status"], "5.1.1");
    assert!(json.get("to_addresses").is_none());
}

#[test]
fn text_only_bounces_of_other_mtas() {
    let exchange = b"From: postmaster@corp.example\r\nTo: bounces+MMMM@bounce.example.com\r\nSubject: Undeliverable: hello\r\n\r\nYour message did not reach some or all of the intended recipients.\r\n\r\n      Subject:  hello\r\n\r\nThe following recipient(s) cannot be reached:\r\n\r\n      Pat Lee on 6/3/2024 10:00 AM\r\n            The e-mail account does not exist at the organization this message was sent to.\r\n            <mail.corp.example #5.1.1 smtp;550 5.1.1 <pat@corp.example>... User unknown>\r\n";
    let report = parse_message(exchange, &Classifier::builtin());
    assert_eq!(report.kind, ReportKind::NonStandard);
    assert_eq!(report.recipients.len(), 1);
    assert_eq!(report.recipients[0].address, "pat@corp.example");
    assert_eq!(report.recipients[0].status.as_deref(), Some("5.1.1"));
    assert!(report.recipients[0].hard);

    let delayed = b"From: MAILER-DAEMON@mx.example\nTo: bounces+NNNN@bounce.example.com\nSubject: Warning: could not send message for past 4 hours\nX-Failed-Recipients: later@example.org\n\nThe message has not yet been delivered to later@example.org.\n451 4.4.1 No answer from host; will continue trying.\n\nMessage-ID: <abc123@example.com>\n";
    let report = parse_message(delayed, &Classifier::builtin());
    assert_eq!(report.kind, ReportKind::NonStandard);
    assert_eq!(report.recipients[0].action, Action::Delayed);
    assert!(!report.recipients[0].hard);
    assert_eq!(
        report.original_message_id.as_deref(),
        Some("abc123@example.com")
    );
}

#[test]
fn garbage_and_plain_mail_are_not_bounces() {
    for input in [
        &b""[..],
        b"\0\xff\xfe",
        b"Subject: hi\n\nsee you at 550 Main St",
        b"no headers at all",
    ] {
        let report = parse_message(input, &Classifier::builtin());
        assert_eq!(report.kind, ReportKind::NotABounce, "{input:?}");
        assert!(report.recipients.is_empty());
    }
}

const FIXTURES: [&str; 12] = [
    "postfix-user-unknown.eml",
    "postfix-delayed.eml",
    "exim-dsn.eml",
    "exim-nondsn.eml",
    "sendmail.eml",
    "exchange-ndr.eml",
    "gmail-nosuchuser.eml",
    "qmail.eml",
    "yahoo-mailbox-full.eml",
    "multi-recipient.eml",
    "arf-complaint.eml",
    "out-of-office.eml",
];

#[test]
fn mailbox_messages_parse_like_their_files() {
    let mbox = crate::bounce::mailbox::read_messages(&fixture_path("mixed.mbox")).unwrap();
    let kinds: Vec<_> = mbox
        .iter()
        .map(|m| parse_message(&m.bytes, &Classifier::builtin()).kind)
        .collect();
    assert_eq!(
        kinds,
        [
            ReportKind::Dsn,
            ReportKind::NonStandard,
            ReportKind::NotABounce
        ]
    );
    let maildir = crate::bounce::mailbox::read_messages(&fixture_path("maildir")).unwrap();
    let kinds: Vec<_> = maildir
        .iter()
        .map(|m| parse_message(&m.bytes, &Classifier::builtin()).kind)
        .collect();
    assert_eq!(kinds, [ReportKind::NonStandard, ReportKind::Complaint]);
}

#[test]
fn a_message_that_trips_mail_parser_is_read_without_a_panic() {
    // Found by `scripts/fuzz.sh` (target `dsn`): the ARF fixture with a mangled Date and
    // boundary makes mail-parser hit a `debug_assert!` in debug builds.
    let report = parse_message(
        &fixture("fuzz-mail-parser-assert.eml"),
        &Classifier::builtin(),
    );
    if cfg!(debug_assertions) {
        assert_eq!(report.kind, ReportKind::NotABounce);
        assert!(report.recipients.is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse_message(&bytes, &Classifier::builtin());
    }

    #[test]
    fn never_panics_on_mutated_fixtures(
        index in 0..FIXTURES.len(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..16),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = fixture(FIXTURES[index]);
        for (at, byte, op) in edits {
            let i = at.index(bytes.len().max(1)).min(bytes.len());
            match op {
                0 if i < bytes.len() => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ if i < bytes.len() => { bytes.remove(i); }
                _ => {}
            }
        }
        let keep = cut.index(bytes.len() + 1);
        bytes.truncate(keep.max(bytes.len() / 2));
        let _ = parse_message(&bytes, &Classifier::builtin());
    }
}
