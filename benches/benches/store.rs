//! Store benchmarks: what the pipeline asks of sled per message. Loading rows into per-domain
//! batches, reading a page of a domain's pending queue, and recording a group of delivery
//! outcomes (one atomic batch, as the recorder does before each flush).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use volley::model::{Outcome, ReplyRecord};
use volley::store::{OutcomePolicy, OutcomeUpdate, Store};

const ROWS: u64 = 10_000;
const GROUP: usize = 1_024;

fn loaded_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let columns = vec!["email".to_owned(), "first_name".to_owned()];
    let mut loader = store.start_load("bench", columns).unwrap();
    for i in 0..ROWS {
        let domain = format!("d{}.example", i % 100);
        let email = format!("user{i}@{domain}");
        loader
            .add(
                &email,
                &domain,
                vec![email.clone(), format!("Name{i}")],
                i + 2,
                volley::model::Assignment::Variant(0),
            )
            .unwrap();
    }
    loader.finish(0, 0, 0).unwrap();
    (dir, store)
}

fn delivered() -> Outcome {
    Outcome::Delivered {
        reply: ReplyRecord {
            code: Some(250),
            enhanced: Some("2.0.0".to_owned()),
            text: "Ok: queued".to_owned(),
            category: None,
            hard: false,
        },
    }
}

fn bench_store(c: &mut Criterion) {
    let mut group = c.benchmark_group("store");
    group.sample_size(10);
    group.throughput(Throughput::Elements(ROWS));
    group.bench_function("load/10000 rows", |b| {
        b.iter_batched(|| (), |()| loaded_store(), BatchSize::PerIteration)
    });
    let (_dir, store) = loaded_store();
    group.throughput(Throughput::Elements(100));
    group.bench_function("pending_in/100 of one domain", |b| {
        b.iter(|| store.pending_in("bench", "d7.example", None, 100).unwrap())
    });
    group.throughput(Throughput::Elements(GROUP as u64));
    group.bench_function("record_outcomes/1024 deliveries", |b| {
        b.iter_batched(
            || {
                let (dir, store) = loaded_store();
                let updates: Vec<OutcomeUpdate> = store
                    .pending("bench", None, GROUP)
                    .unwrap()
                    .into_iter()
                    .map(|r| OutcomeUpdate {
                        key: r.key,
                        outcome: delivered(),
                        message_id: Some(format!("{:032x}@example.com", r.record.line)),
                    })
                    .collect();
                (dir, store, updates)
            },
            |(_dir, store, updates)| {
                store
                    .record_outcomes("bench", &OutcomePolicy::default(), &updates, 1)
                    .unwrap()
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, bench_store);
criterion_main!(benches);
