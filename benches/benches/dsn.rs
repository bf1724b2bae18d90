//! Bounce parsing benchmarks: `parse_message` on each kind of fixture in `fixtures/dsn/`
//! (standard DSN, multi-recipient DSN, non-standard text, ARF complaint, not a bounce), and
//! on the whole corpus as a mixed batch. Target: at least 10,000 messages/s on one core.
//!
//! `dsn_scale` parses reports naming 1,000 to 100,000 recipients: parsing is linear when the
//! throughput (bytes/s) stays the same across sizes; a quadratic step shows as a throughput
//! falling tenfold per tenfold size.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use volley::bounce::classify::Classifier;
use volley::bounce::dsn::parse_message;

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

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures/dsn")
            .join(name),
    )
    .unwrap()
}

fn parse(c: &mut Criterion) {
    let classifier = Classifier::builtin();
    let mut group = c.benchmark_group("dsn_parse");
    group.throughput(Throughput::Elements(1));
    for (label, name) in [
        ("dsn_postfix", "postfix-user-unknown.eml"),
        ("dsn_o365", "exchange-ndr.eml"),
        ("dsn_multi_recipient", "multi-recipient.eml"),
        ("nonstandard_qmail", "qmail.eml"),
        ("nonstandard_exim", "exim-nondsn.eml"),
        ("complaint_arf", "arf-complaint.eml"),
        ("not_a_bounce", "out-of-office.eml"),
    ] {
        let bytes = fixture(name);
        group.bench_function(label, |b| {
            b.iter(|| parse_message(black_box(&bytes), &classifier))
        });
    }
    group.finish();

    let corpus: Vec<Vec<u8>> = FIXTURES.iter().map(|n| fixture(n)).collect();
    let mut group = c.benchmark_group("dsn_corpus");
    group.throughput(Throughput::Elements(corpus.len() as u64));
    group.bench_function("all_fixtures", |b| {
        b.iter(|| {
            for bytes in &corpus {
                black_box(parse_message(black_box(bytes), &classifier));
            }
        })
    });
    group.finish();
}

/// A multipart/report whose report part (`part_type`) is `body`.
fn report(part_type: &str, body: &str) -> Vec<u8> {
    format!(
        "From: MAILER-DAEMON@mx.example\r\nTo: bounces+t@bounce.example\r\n\
         Subject: report\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; boundary=\"B\"\r\n\r\n\
         --B\r\nContent-Type: text/plain\r\n\r\nReport.\r\n\r\n\
         --B\r\nContent-Type: {part_type}\r\n\r\n{body}\r\n--B--\r\n"
    )
    .into_bytes()
}

/// A DSN with `n` per-recipient blocks and an ARF report with `n` `Original-Rcpt-To` fields.
fn scaled(n: usize) -> [(&'static str, Vec<u8>); 2] {
    let mut dsn = String::from("Reporting-MTA: dns; mx.example\r\n\r\n");
    let mut arf = String::from("Feedback-Type: abuse\r\nVersion: 1\r\n");
    for i in 0..n {
        dsn.push_str(&format!(
            "Original-Recipient: rfc822; u{i}@d.example\r\nFinal-Recipient: rfc822; u{i}@d.example\r\n\
             Action: failed\r\nStatus: 5.1.1\r\n\r\n"
        ));
        arf.push_str(&format!("Original-Rcpt-To: <u{i}@d.example>\r\n"));
    }
    [
        ("dsn_blocks", report("message/delivery-status", &dsn)),
        ("arf_rcpt_to", report("message/feedback-report", &arf)),
    ]
}

fn scale(c: &mut Criterion) {
    let classifier = Classifier::builtin();
    let mut group = c.benchmark_group("dsn_scale");
    group.sample_size(10);
    for n in [1_000, 10_000, 100_000] {
        for (label, bytes) in scaled(n) {
            group.throughput(Throughput::Bytes(bytes.len() as u64));
            group.bench_function(format!("{label}/{n}"), |b| {
                b.iter(|| parse_message(black_box(&bytes), &classifier))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, parse, scale);
criterion_main!(benches);
