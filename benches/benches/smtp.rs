//! SMTP benchmarks: one ~10 KB message through Volley's client to its test server over a real
//! loopback TCP session that stays open, as delivery does: step by step (four round trips),
//! pipelined envelope + DATA (two), and BDAT with the envelope (one).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use volley::smtp::{self, Envelope, SessionConfig};
use volley_testkit::sink::{Sink, SinkConfig};

fn message() -> Vec<u8> {
    let mut message =
        b"From: a@example.com\r\nTo: b@example.net\r\nSubject: bench\r\n\r\n".to_vec();
    while message.len() < 10_000 {
        message.extend_from_slice(b"Volley delivers every message personalised and on time.\r\n");
    }
    message
}

fn bench_smtp(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let message = message();
    let envelope = Envelope {
        mail_from: "a@example.com".to_owned(),
        rcpt_to: vec!["b@example.net".to_owned()],
    };
    let mut group = c.benchmark_group("smtp");
    group.throughput(Throughput::Elements(1));
    for (name, pipelining, chunking) in [
        ("stepwise", false, false),
        ("pipelined DATA", true, false),
        ("BDAT", true, true),
    ] {
        let (sink, mut session) = runtime.block_on(async {
            let sink = Sink::start(SinkConfig {
                keep_bodies: false,
                pipelining,
                chunking,
                ..SinkConfig::default()
            })
            .await
            .unwrap();
            let tls = smtp::tls_client_config(None).unwrap();
            let config = SessionConfig::new("127.0.0.1", sink.addr().port(), tls);
            let session = smtp::connect(&config).await.unwrap();
            (sink, session)
        });
        group.bench_function(format!("{name}/10KB"), |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let transaction = session.send(&envelope, &message).await.unwrap();
                    assert!(transaction.accepted());
                })
            })
        });
        drop(sink);
    }
    group.finish();
}

criterion_group!(benches, bench_smtp);
criterion_main!(benches);
