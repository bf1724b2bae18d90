//! Bounce parsing benchmarks: `parse_message` on each kind of fixture in `fixtures/dsn/`
//! (standard DSN, multi-recipient DSN, non-standard text, ARF complaint, not a bounce), and
//! on the whole corpus as a mixed batch. Target: at least 10,000 messages/s on one core.

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

criterion_group!(benches, parse);
criterion_main!(benches);
