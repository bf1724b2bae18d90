#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]
use volley::model::{Outcome, ReplyRecord};
use volley::store::{OutcomePolicy, OutcomeUpdate, Store};

fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap()
}

fn main() {
    let n: u64 = std::env::args().nth(1).map_or(300_000, |a| a.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut loader = store.start_load("c", vec!["email".into()]).unwrap();
    for i in 0..n {
        let domain = format!("d{}.example", i % 1000);
        let email = format!("user{i}@{domain}");
        loader.add(&email, &domain, vec![email.clone()], i + 2).unwrap();
    }
    loader.finish(0, 0).unwrap();
    println!("loaded {n}: rss {} MB", rss() / 1024);
    let reply = ReplyRecord { code: Some(250), enhanced: None, text: "ok".into(), category: None, hard: false };
    let policy = OutcomePolicy::default();
    let mut done = 0u64;
    for domain in store.pending_domains("c").unwrap() {
        let page = store.pending_in("c", &domain, None, 100_000).unwrap();
        for chunk in page.chunks(256) {
            let updates: Vec<OutcomeUpdate> = chunk
                .iter()
                .map(|r| OutcomeUpdate { key: r.key.clone(), outcome: Outcome::Delivered { reply: reply.clone() }, message_id: None })
                .collect();
            store.record_outcomes("c", &policy, &updates, 1).unwrap();
            store.flush_blocking().unwrap();
            done += updates.len() as u64;
            if done % 50_000 < 256 {
                println!("recorded {done}: rss {} MB", rss() / 1024);
            }
        }
    }
    println!("end: rss {} MB", rss() / 1024);
}
