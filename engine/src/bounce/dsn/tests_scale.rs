//! Hostile sizes: reports naming 100,000 or a million recipients (or one recipient 100,000
//! times) parse in time linear in their size and give at most [`MAX_RECIPIENTS`] recipients.
//! The old de-duplication (a scan of the list so far per address) took 38 s on a debug build
//! here for 100,000 complaint fields and would take about an hour for a million; linear
//! parsing takes a second or two. The bound below only catches a hang, it measures nothing (speed is in
//! `benches/benches/dsn.rs`, group `dsn_scale`).

use std::fmt::Write as _;
use std::time::Duration;

use super::*;

const MANY: usize = 100_000;
/// For the shapes that were de-duplicated by a scan of the list so far: a million distinct
/// addresses are half a trillion comparisons that way (hours), a million hash lookups now.
const MILLION: usize = 1_000_000;

/// Parses `message` on its own thread and fails if that takes more than a minute.
fn parse_bounded(message: String) -> BounceReport {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let report = parse_message(message.as_bytes(), &Classifier::builtin());
        let _ = tx.send(report);
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("parsing finishes within a minute")
}

/// A multipart/report of `report_type` whose report part (`part_type`) is `body`.
fn report(report_type: &str, part_type: &str, headers: &str, body: &str) -> String {
    format!(
        "From: MAILER-DAEMON@mx.example\r\nTo: bounces+t@bounce.example\r\n{headers}\
         Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type={report_type}; boundary=\"B\"\r\n\r\n\
         --B\r\nContent-Type: text/plain\r\n\r\nReport.\r\n\r\n\
         --B\r\nContent-Type: {part_type}\r\n\r\n{body}\r\n\
         --B--\r\n"
    )
}

fn dsn(body: &str) -> String {
    report(
        "delivery-status",
        "message/delivery-status",
        "",
        &format!("Reporting-MTA: dns; mx.example\r\n\r\n{body}"),
    )
}

#[test]
fn a_dsn_with_100000_recipient_blocks_gives_the_capped_number() {
    let mut body = String::new();
    for i in 0..MANY {
        let _ = write!(
            body,
            "Original-Recipient: rfc822; u{i}@d.example\r\nFinal-Recipient: rfc822; u{i}@d.example\r\n\
             Action: failed\r\nStatus: 5.1.1\r\n\r\n"
        );
    }
    let report = parse_bounded(dsn(&body));
    assert_eq!(report.kind, ReportKind::Dsn);
    assert_eq!(report.recipients.len(), MAX_RECIPIENTS);
    assert_eq!(report.recipients[0].address, "u0@d.example");
    assert_eq!(report.recipients[499].address, "u499@d.example");
}

#[test]
fn a_dsn_with_100000_recipient_fields_in_one_block_gives_its_first() {
    let mut body = String::from("Action: failed\r\nStatus: 5.1.1\r\n");
    for i in 0..MANY {
        let _ = write!(
            body,
            "Original-Recipient: rfc822; o{i}@d.example\r\nFinal-Recipient: rfc822; u{i}@d.example\r\n"
        );
    }
    let report = parse_bounded(dsn(&body));
    let got: Vec<_> = report.recipients.iter().map(|r| &r.address).collect();
    assert_eq!(got, ["u0@d.example"]);
    assert_eq!(
        report.recipients[0].original_recipient.as_deref(),
        Some("o0@d.example")
    );
}

#[test]
fn a_dsn_repeating_one_recipient_gives_it_once() {
    let block =
        "Final-Recipient: rfc822; same@d.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n";
    let mut body = block.repeat(MANY);
    body.push_str("Final-Recipient: rfc822; other@d.example\r\nAction: failed\r\n\r\n");
    let report = parse_bounded(dsn(&body));
    let got: Vec<_> = report.recipients.iter().map(|r| &r.address).collect();
    // Only the first MAX_DSN_BLOCKS blocks are read: the repeats use them all up.
    assert_eq!(got, ["same@d.example"]);
}

#[test]
fn a_complaint_with_a_million_original_rcpt_to_fields_gives_the_capped_number() {
    let mut body = String::from("Feedback-Type: abuse\r\nVersion: 1\r\n");
    for i in 0..MILLION {
        let _ = write!(body, "Original-Rcpt-To: <u{i}@d.example>\r\n");
    }
    let message = report("feedback-report", "message/feedback-report", "", &body);
    let report = parse_bounded(message);
    assert_eq!(report.kind, ReportKind::Complaint);
    assert_eq!(report.recipients.len(), MAX_RECIPIENTS);
    assert_eq!(report.recipients[1].address, "u1@d.example");
}

#[test]
fn a_complaint_naming_one_recipient_100000_times_gives_it_once() {
    let body = "Feedback-Type: abuse\r\nOriginal-Rcpt-To: <u@d.example>\r\n".repeat(MANY);
    let message = report("feedback-report", "message/feedback-report", "", &body);
    let report = parse_bounded(message);
    let got: Vec<_> = report.recipients.iter().map(|r| &r.address).collect();
    assert_eq!(got, ["u@d.example"]);
}

#[test]
fn a_text_bounce_with_a_million_delivered_to_and_many_failed_addresses_is_capped() {
    let mut headers = String::new();
    let mut failed = String::from("X-Failed-Recipients: ");
    let mut text = String::new();
    for i in 0..MILLION {
        let _ = write!(headers, "Delivered-To: t{i}@bounce.example\r\n");
    }
    for i in 0..MANY {
        let _ = write!(failed, "f{i}@d.example, ");
        let _ = write!(text, "f{i}@d.example: 550 5.1.1 no such user\r\n");
    }
    let message = format!(
        "From: MAILER-DAEMON@mx.example\r\n{headers}{failed}\r\n\
         Subject: Mail delivery failed\r\n\r\n\
         This message was created automatically by mail delivery software.\r\n\r\n{text}"
    );
    let report = parse_bounded(message);
    assert_eq!(report.kind, ReportKind::NonStandard);
    assert_eq!(report.to_addresses.len(), MAX_TO_ADDRESSES);
    assert_eq!(report.recipients.len(), MAX_RECIPIENTS);
    let first = &report.recipients[0];
    assert_eq!(first.address, "f0@d.example");
    assert_eq!(first.status.as_deref(), Some("5.1.1"));
}

#[test]
fn a_body_full_of_quoted_message_ids_is_read_in_one_pass() {
    let noise = "x message-id: ".repeat(MANY);
    let body =
        format!("I'm afraid I wasn't able to deliver.\n{noise}\n> Message-ID: <orig@a.example>\n");
    let message = format!(
        "From: MAILER-DAEMON@mx.example\r\nTo: b@bounce.example\r\nSubject: failure notice\r\n\r\n{body}"
    );
    let report = parse_bounded(message);
    // The body text read is capped (64 KiB), so the quoted id past the noise is not seen;
    // what matters is that scanning the noise finishes.
    assert_eq!(report.kind, ReportKind::NonStandard);
    assert_eq!(report.original_message_id, None);
    let short = "I'm afraid I wasn't able to deliver.\n  > Message-ID: <orig@a.example>\n";
    let message = format!(
        "From: MAILER-DAEMON@mx.example\r\nTo: b@bounce.example\r\nSubject: failure notice\r\n\r\n{short}"
    );
    assert_eq!(
        parse_bounded(message).original_message_id.as_deref(),
        Some("orig@a.example")
    );
}
