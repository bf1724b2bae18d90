//! Store size per recipient (issue 18): loads N rows into a fresh sled store, then records a
//! delivery for every one of them (groups of 1,024, as the recorder does), and prints the
//! load rate and the folder's size per recipient after the load and after the send, before
//! any gc. The rows look like the bench's: 100 domains, an address and a first name. The
//! Message-IDs are shaped like the composer's signed ones (never indexed by the store).
//!
//! ```text
//! store-size DIR [ROWS]     DIR must not exist yet; ROWS defaults to 100000
//! ```

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    missing_docs
)]

use std::path::Path;
use std::time::Instant;
use volley::model::{Assignment, Outcome, ReplyRecord};
use volley::store::{OutcomePolicy, OutcomeUpdate, Store};

const GROUP: usize = 1_024;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(dir) = args.get(1) else {
        eprintln!("usage: store-size DIR [ROWS]");
        std::process::exit(2);
    };
    let rows: u64 = args.get(2).map_or(100_000, |n| n.parse().unwrap());
    let dir = Path::new(dir);
    assert!(!dir.exists(), "{} exists already", dir.display());
    let store = Store::open(dir).unwrap();
    let started = Instant::now();
    load(&store, rows);
    let seconds = started.elapsed().as_secs_f64();
    let loaded = folder_bytes(dir);
    println!(
        "load: {rows} rows in {seconds:.2} s = {:.0} rows/s; store {loaded} bytes = {:.0} bytes/recipient",
        rows as f64 / seconds,
        loaded as f64 / rows as f64
    );
    let started = Instant::now();
    let recorded = send(&store);
    let seconds = started.elapsed().as_secs_f64();
    store.flush_blocking().unwrap();
    drop(store);
    let sent = folder_bytes(dir);
    println!(
        "send: {recorded} deliveries recorded in {seconds:.2} s = {:.1} us each; store {sent} bytes = {:.0} bytes/recipient",
        seconds * 1e6 / recorded as f64,
        sent as f64 / rows as f64
    );
}

fn load(store: &Store, rows: u64) {
    let columns = vec!["email".to_owned(), "first_name".to_owned()];
    let mut loader = store.start_load("size", columns).unwrap();
    for i in 0..rows {
        let domain = format!("d{}.example", i % 100);
        let email = format!("user{i}@{domain}");
        let values = vec![email.clone(), format!("Name{i}")];
        loader
            .add(&email, &domain, values, i + 2, Assignment::Variant(0))
            .unwrap();
    }
    loader.finish(0, 0, 0).unwrap();
}

/// Records a delivery for every pending recipient, a group and a flush at a time.
fn send(store: &Store) -> u64 {
    let reply = ReplyRecord {
        code: Some(250),
        enhanced: Some("2.0.0".to_owned()),
        text: "Ok: queued as 4BCD1234".to_owned(),
        category: None,
        hard: false,
    };
    let policy = OutcomePolicy::default();
    let mut recorded = 0;
    loop {
        let page = store.pending("size", None, GROUP).unwrap();
        if page.is_empty() {
            return recorded;
        }
        let updates: Vec<OutcomeUpdate> = page
            .into_iter()
            .map(|r| OutcomeUpdate {
                message_id: Some(signed_shape(r.record.line)),
                key: r.key,
                outcome: Outcome::Delivered {
                    reply: reply.clone(),
                },
            })
            .collect();
        recorded += updates.len() as u64;
        store
            .record_outcomes("size", &policy, &updates, 1_700_000_000_000)
            .unwrap();
        store.flush_blocking().unwrap();
    }
}

/// A Message-ID shaped like the composer's (a 28-character base32 token naming campaign,
/// recipient and MAC), which the store decodes instead of indexing.
fn signed_shape(n: u64) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut token: Vec<u8> = (0..28)
        .map(|i| ALPHABET[((n >> ((i % 12) * 5)) & 31) as usize])
        .collect();
    token[27] = ALPHABET[(n % 32) as usize];
    format!("{}@example.com", String::from_utf8_lossy(&token))
}

/// The size of every file under `dir` (what `du -sb` counts, less the folders themselves).
fn folder_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() {
            folder_bytes(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}
