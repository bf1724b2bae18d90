//! List load into the PostgreSQL store (`scripts/bench-pg-load.sh` drives it): writes a CSV
//! of ROWS recipients over 1,000 domains, starts a throwaway cluster on loopback
//! (volley_testkit::postgres::TempCluster), migrates it, then RUNS times loads the list as a
//! new campaign — the CSV reader on a blocking thread, batches over a bounded channel, binary
//! COPY, de-duplication and counters, commit — and prints rows/s from first read to commit.
//!
//! ```text
//! pg-load [ROWS=1000000] [RUNS=3]
//! ```

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    missing_docs
)]

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use volley::campaign::RecipientReader;
use volley::model::Assignment;
use volley::store::postgres::{LoadBatch, LoadRow, PgSettings, PgStore};
use volley_testkit::postgres::TempCluster;

const BATCH: usize = 1_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rows: u64 = args.get(1).map_or(1_000_000, |s| s.parse().unwrap());
    let runs: u32 = args.get(2).map_or(3, |s| s.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("recipients.csv");
    write_csv(&csv, rows);
    let started = Instant::now();
    let read = RecipientReader::open(&csv)
        .unwrap()
        .filter(Result::is_ok)
        .count();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "CSV reader alone: {read} rows in {seconds:.2} s = {:.0} rows/s",
        read as f64 / seconds
    );
    let cluster = TempCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = PgStore::connect(&PgSettings::new(cluster.url()))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        for run in 1..=runs {
            let started = Instant::now();
            let loaded = load(&store, &format!("bench-{run}"), &csv).await;
            let seconds = started.elapsed().as_secs_f64();
            println!(
                "run {run}: {loaded} rows in {seconds:.2} s = {:.0} rows/s",
                loaded as f64 / seconds
            );
        }
    });
}

/// Loads the CSV as `campaign`; returns the recipients stored.
async fn load(store: &PgStore, campaign: &str, csv: &Path) -> u64 {
    let reader = RecipientReader::open(csv).unwrap();
    let columns = reader.columns().to_vec();
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let feeder = tokio::task::spawn_blocking(move || {
        let mut batch = LoadBatch::default();
        for row in reader {
            match row {
                Ok(row) => batch.rows.push(LoadRow {
                    email: row.email,
                    domain: row.domain,
                    values: row.values,
                    line: row.line,
                    assignment: Assignment::Variant(0),
                }),
                Err(_) => batch.invalid += 1,
            }
            if batch.rows.len() >= BATCH && tx.blocking_send(std::mem::take(&mut batch)).is_err() {
                return;
            }
        }
        let _ = tx.blocking_send(batch);
    });
    let result = store.load(campaign, &columns, rx).await.unwrap();
    feeder.await.unwrap();
    result.counts.total
}

fn write_csv(path: &Path, rows: u64) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(out, "email,first_name,city").unwrap();
    for i in 0..rows {
        writeln!(
            out,
            "user{i}@d{}.example,Name{i},City {}",
            i % 1_000,
            i % 97
        )
        .unwrap();
    }
    out.flush().unwrap();
}
