//! Load generator for the tracking server (`scripts/bench-track.sh` drives it).
//!
//! ```text
//! track-load prepare STORE KEY RECIPIENTS PATHS   a store with a tracked campaign, and the
//!                                                 pixel and link paths of its recipients
//! track-load run ADDR PATHS CONNECTIONS SECONDS [o|c]
//!                                                 HTTP/1.1 keep-alive GETs over CONNECTIONS
//!                                                 connections; prints requests/s and latency
//! ```

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    missing_docs
)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use volley::store::{Store, TrackingMeta};
use volley::tracking::{Token, TokenKey, TokenKind};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("prepare") => prepare(&args[2], &args[3], args[4].parse().unwrap(), &args[5]),
        Some("run") => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let filter = args.get(6).cloned().unwrap_or_default();
            runtime.block_on(run(
                args[2].parse().unwrap(),
                &args[3],
                args[4].parse().unwrap(),
                args[5].parse().unwrap(),
                &filter,
            ));
        }
        _ => eprintln!("usage: track-load prepare STORE KEY N PATHS | run ADDR PATHS CONNECTIONS SECONDS [o|c]"),
    }
}

fn prepare(store_dir: &str, key: &str, recipients: u64, paths: &str) {
    let store = Store::open(std::path::Path::new(store_dir)).unwrap();
    let mut loader = store.start_load("bench", vec!["email".to_owned()]).unwrap();
    for i in 0..recipients {
        let domain = format!("d{}.example", i % 100);
        let email = format!("user{i}@{domain}");
        loader
            .add(
                &email,
                &domain,
                vec![email.clone()],
                i + 2,
                volley::model::Assignment::Variant(0),
            )
            .unwrap();
    }
    loader.finish(0, 0, 0).unwrap();
    deliver_all(&store);
    let key = TokenKey::new(key.as_bytes());
    let links = vec![
        "https://shop.example/sale".to_owned(),
        "https://blog.example/news".to_owned(),
    ];
    store
        .set_tracking_meta(
            "bench",
            &TrackingMeta {
                links,
                key_fingerprint: key.fingerprint(),
            },
        )
        .unwrap();
    store.flush_blocking().unwrap();
    let number = store.campaign("bench").unwrap().unwrap().number;
    let mut out = String::new();
    for seq in 0..recipients {
        let token = |kind, link| {
            key.encode(&Token {
                kind,
                campaign: number,
                variant: 0,
                seq,
                link,
            })
        };
        out.push_str(&format!("/o/{}.gif\n", token(TokenKind::Open, 0)));
        out.push_str(&format!(
            "/c/{}\n",
            token(TokenKind::Click, (seq % 2) as u16)
        ));
    }
    std::fs::write(paths, out).unwrap();
}

/// Records every loaded recipient as delivered, as a send would have: the tracking server
/// caches delivered recipients, so what is measured is the path real tracked mail takes.
fn deliver_all(store: &Store) {
    let policy = volley::store::OutcomePolicy {
        retry: volley::model::RetryPolicy::default(),
        suppression: volley::model::SuppressionPolicy::default(),
    };
    let reply = volley::model::ReplyRecord {
        code: Some(250),
        enhanced: Some("2.0.0".to_owned()),
        text: "ok".to_owned(),
        category: None,
        hard: false,
    };
    loop {
        let batch = store.pending("bench", None, 1_000).unwrap();
        if batch.is_empty() {
            break;
        }
        let updates: Vec<volley::store::OutcomeUpdate> = batch
            .into_iter()
            .map(|recipient| volley::store::OutcomeUpdate {
                key: recipient.key,
                outcome: volley::model::Outcome::Delivered {
                    reply: reply.clone(),
                },
                message_id: None,
            })
            .collect();
        store
            .record_outcomes("bench", &policy, &updates, volley::model::now_millis())
            .unwrap();
    }
}

async fn run(addr: SocketAddr, paths: &str, connections: usize, seconds: u64, filter: &str) {
    let prefix = format!("/{filter}");
    let paths: Arc<Vec<String>> = Arc::new(
        std::fs::read_to_string(paths)
            .unwrap()
            .lines()
            .filter(|p| filter.is_empty() || p.starts_with(&prefix))
            .map(str::to_owned)
            .collect(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::<u32>::new()));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..connections {
        let (paths, stop, errors, latencies) = (
            paths.clone(),
            stop.clone(),
            errors.clone(),
            latencies.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::with_capacity(100_000);
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let mut buf = vec![0u8; 4096];
            let mut i = c;
            while !stop.load(Ordering::Relaxed) {
                let path = &paths[i % paths.len()];
                i += connections;
                let request = format!(
                    "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0\r\n\r\n"
                );
                let sent = Instant::now();
                if stream.write_all(request.as_bytes()).await.is_err() {
                    errors.fetch_add(1, Ordering::Relaxed);
                    return mine;
                }
                if !read_response(&mut stream, &mut buf).await {
                    errors.fetch_add(1, Ordering::Relaxed);
                    return mine;
                }
                mine.push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
            }
            latencies.lock().unwrap().extend_from_slice(&mine);
            mine
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = task.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut all = latencies.lock().unwrap().clone();
    all.sort_unstable();
    let at = |q: f64| {
        all.get(((all.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    println!(
        "{} requests in {elapsed:.1}s = {:.0} requests/s over {connections} connections; latency p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms; errors {}",
        all.len(),
        all.len() as f64 / elapsed,
        at(0.5),
        at(0.99),
        at(0.999),
        errors.load(Ordering::Relaxed)
    );
}

/// Reads one response (headers, then Content-Length bytes); false on a broken connection
/// or a status other than 200 or 302.
async fn read_response(stream: &mut TcpStream, buf: &mut [u8]) -> bool {
    let mut have = Vec::with_capacity(512);
    loop {
        let n = match stream.read(buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        have.extend_from_slice(&buf[..n]);
        let Some(end) = have.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&have[..end]).to_ascii_lowercase();
        let ok = head.starts_with("http/1.1 200") || head.starts_with("http/1.1 302");
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while have.len() < end + 4 + length {
            match stream.read(buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => have.extend_from_slice(&buf[..n]),
            }
        }
        return ok;
    }
}
