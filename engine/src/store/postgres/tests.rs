//! The PostgreSQL engine against a real server: a throwaway cluster from the test kit, one
//! per test binary run, a fresh database per test.

use super::*;
use crate::model::Assignment;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use volley_testkit::postgres::TempCluster;
use volley_testkit::LIMIT;

/// The cluster shared by the tests of this module that run at the same time: started by the
/// first, stopped and removed when the last one drops it (a static would never be dropped).
pub(in crate::store) fn cluster() -> Arc<TempCluster> {
    static SHARED: Mutex<Weak<TempCluster>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(cluster) = shared.upgrade() {
        return cluster;
    }
    let cluster = Arc::new(TempCluster::start().unwrap_or_else(|e| panic!("{e}")));
    *shared = Arc::downgrade(&cluster);
    cluster
}

/// A store on a fresh, empty database of the shared cluster (kept alive with it).
async fn connected(name: &str) -> (Arc<TempCluster>, PgStore) {
    let cluster = cluster();
    let settings = PgSettings::new(cluster.create_database(name).unwrap());
    let store = tokio::time::timeout(LIMIT, PgStore::connect(&settings))
        .await
        .unwrap()
        .unwrap();
    (cluster, store)
}

async fn count(store: &PgStore, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn migrations_apply_on_an_empty_database_and_again_change_nothing() {
    let (_cluster, store) = connected("migrate_twice").await;
    tokio::time::timeout(LIMIT, store.migrate())
        .await
        .unwrap()
        .unwrap();
    let tables = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'";
    let first = count(&store, tables).await;
    assert!(first >= 15, "{first} tables");
    let applied = "SELECT count(*) FROM _sqlx_migrations WHERE success";
    assert_eq!(count(&store, applied).await, MIGRATOR.iter().count() as i64);
    tokio::time::timeout(LIMIT, store.migrate())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(count(&store, tables).await, first);
    assert_eq!(count(&store, applied).await, MIGRATOR.iter().count() as i64);
}

fn rows(n: u64) -> Vec<LoadRow> {
    (0..n)
        .map(|i| {
            let domain = format!("d{}.example", i % 50);
            let email = format!("user{i}@{domain}");
            let assignment = match i % 10 {
                9 => Assignment::Held { fallback: 1 },
                x => Assignment::Variant((x % 2) as u8),
            };
            LoadRow {
                values: vec![email.clone(), format!("Name {i}, \"quoted\"")],
                email,
                domain,
                line: i + 2,
                assignment,
            }
        })
        .collect()
}

/// Loads `rows` through the bounded channel, in batches of 1,000, from another task.
async fn load(store: &PgStore, campaign: &str, rows: Vec<LoadRow>, invalid: u64) -> PgLoadResult {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let feeder = tokio::spawn(async move {
        let mut rows = rows.into_iter().peekable();
        let mut first = true;
        while rows.peek().is_some() {
            let batch = LoadBatch {
                rows: rows.by_ref().take(1_000).collect(),
                invalid: if first { invalid } else { 0 },
            };
            first = false;
            if tx.send(batch).await.is_err() {
                return;
            }
        }
    });
    let columns = vec!["email".to_owned(), "first_name".to_owned()];
    let result = tokio::time::timeout(LIMIT, store.load(campaign, &columns, rx))
        .await
        .unwrap()
        .unwrap();
    feeder.await.unwrap();
    result
}

#[tokio::test]
async fn a_ten_thousand_row_copy_lands_with_the_right_counts() {
    let (_cluster, store) = connected("copy_10k").await;
    store.migrate().await.unwrap();
    sqlx::query(
        "INSERT INTO suppressions (address, reason, at, detail) \
         VALUES ('user3@d3.example', 'hard_bounce', now(), '550 5.1.1 gone')",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let mut list = rows(10_000);
    // Two duplicates of earlier rows (the earlier ones win).
    list.push(LoadRow {
        line: 90_001,
        ..list[5].clone()
    });
    list.push(LoadRow {
        line: 90_002,
        ..list[6].clone()
    });
    let result = load(&store, "spring", list, 3).await;
    let counts = result.counts;
    assert_eq!(counts.total, 10_000);
    assert_eq!(counts.duplicate, 2);
    assert_eq!(counts.invalid, 3);
    assert_eq!(counts.held, 1_000);
    assert_eq!(counts.suppressed, 1);
    assert_eq!(counts.pending, 8_999);
    let stored = "SELECT count(*) FROM recipients WHERE campaign = 1";
    assert_eq!(count(&store, stored).await, 10_000);
    let line = "SELECT line FROM recipients WHERE email = 'user5@d5.example'";
    assert_eq!(count(&store, line).await, 7, "the first row wins");
    let name: String = sqlx::query_scalar("SELECT fields[2] FROM recipients WHERE seq = 42")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(name, "Name 42, \"quoted\"");
    let logged = "SELECT count(*) FROM attempts WHERE state = 'suppressed'";
    assert_eq!(count(&store, logged).await, 1);
    let view = "SELECT count(*) FROM campaign_events('spring')";
    assert_eq!(
        count(&store, view).await,
        1,
        "the analysts' view sees the suppression"
    );
    for statement in [
        "UPDATE campaigns SET tracking_links = ARRAY['https://a.example/', 'https://b.example/']",
        "INSERT INTO track_events (campaign, at, kind, seq, variant, link) \
         VALUES (1, now(), 'click', 42, 0, 1)",
        "INSERT INTO report_events (campaign, at, kind, seq, variant, address, reply, source) \
         VALUES (1, now(), 'complaint', 42, 0, 'user42@d42.example', \
                 '{\"code\": null, \"text\": \"abuse\"}', 'f.eml')",
    ] {
        sqlx::query(statement).execute(store.pool()).await.unwrap();
    }
    assert_eq!(count(&store, view).await, 3);
    let url: String =
        sqlx::query_scalar("SELECT link_url FROM campaign_events('spring') WHERE kind = 'click'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(url, "https://b.example/");
    let loaded: bool = sqlx::query_scalar("SELECT loaded FROM campaigns WHERE id = 'spring'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(loaded);
    // A second load of the same campaign is refused, and changes nothing.
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    drop(tx);
    let again = store.load("spring", &[], rx).await.unwrap_err().to_string();
    assert!(
        again.ends_with("campaign spring is loaded already"),
        "{again}"
    );
    assert_eq!(count(&store, stored).await, 10_000);
}

#[tokio::test]
async fn a_load_that_fails_midway_leaves_nothing() {
    let (_cluster, store) = connected("copy_fails").await;
    store.migrate().await.unwrap();
    let mut list = rows(3_000);
    list[2_500].values[1] = "bad\0value".to_owned();
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    for chunk in list.chunks(1_000) {
        tx.send(LoadBatch {
            rows: chunk.to_vec(),
            invalid: 0,
        })
        .await
        .unwrap();
    }
    drop(tx);
    let columns = vec!["email".to_owned(), "first_name".to_owned()];
    let error = tokio::time::timeout(LIMIT, store.load("broken", &columns, rx))
        .await
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("line 2502: field first_name: contains a NUL byte"),
        "{error}"
    );
    assert_eq!(count(&store, "SELECT count(*) FROM campaigns").await, 0);
    assert_eq!(count(&store, "SELECT count(*) FROM recipients").await, 0);
}

#[tokio::test]
async fn connection_failures_name_the_store_and_never_the_password() {
    let cluster = cluster();
    let password = cluster.password().to_owned();
    // Wrong password.
    let wrong = cluster.url().replace(&password, "not-the-password");
    let error = connect_error_text(PgSettings::new(wrong)).await;
    let shown = cluster.url_without_password();
    assert_eq!(
        error,
        format!(
            "store {shown}: could not connect: password authentication failed \
             (check password_file, password_env or PGPASSWORD)"
        )
    );
    assert!(!error.contains("not-the-password"));
    // Refused: a loopback port nobody listens on (bound, then closed).
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let refused = format!("postgresql://volley:{password}@127.0.0.1:{port}/volley");
    let error = connect_error_text(PgSettings::new(refused)).await;
    assert_eq!(
        error,
        format!(
            "store postgresql://volley@127.0.0.1:{port}/volley: could not connect: \
             connection refused (is PostgreSQL running there, on that port?)"
        )
    );
    // Not a URL.
    let error = connect_error_text(PgSettings::new(format!(
        "postgresql://volley:{password}@127.0.0.1:99999999/x"
    )))
    .await;
    assert!(
        error.starts_with("store postgresql://volley@127.0.0.1:99999999/x: not a PostgreSQL URL"),
        "{error}"
    );
    assert!(!error.contains(&password), "{error}");
    // The password from a file and from a variable both work.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pw"), format!("{password}\n")).unwrap();
    let mut settings = PgSettings::new(cluster.url_without_password());
    settings.password_file = Some(dir.path().join("pw"));
    settings.connect_timeout = Duration::from_secs(30);
    tokio::time::timeout(LIMIT, PgStore::connect(&settings))
        .await
        .unwrap()
        .unwrap();
}

async fn connect_error_text(settings: PgSettings) -> String {
    tokio::time::timeout(LIMIT, PgStore::connect(&settings))
        .await
        .unwrap()
        .unwrap_err()
        .to_string()
}

/// A CA and a server certificate for 127.0.0.1 it signed, made with the openssl command the
/// way PostgreSQL's documentation shows; returns (CA, certificate, key).
fn openssl_certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let file = |name: &str| dir.join(name).display().to_string();
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    let steps: [&[&str]; 3] = [
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=test CA",
            "-keyout",
            &file("ca.key"),
            "-out",
            &file("ca.pem"),
        ],
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            &file("key.pem"),
            "-out",
            &file("req.csr"),
        ],
        &[
            "x509",
            "-req",
            "-in",
            &file("req.csr"),
            "-CA",
            &file("ca.pem"),
            "-CAkey",
            &file("ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &file("ext.cnf"),
            "-out",
            &file("cert.pem"),
        ],
    ];
    for args in steps {
        let made = std::process::Command::new("openssl")
            .args(args)
            .output()
            .expect("the openssl command is needed (apt-get install openssl)");
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
    }
    (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    )
}

#[tokio::test]
async fn tls_to_the_database_verifies_an_openssl_made_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = openssl_certificates(dir.path());
    let cluster = TempCluster::start_tls(&cert, &key).unwrap_or_else(|e| panic!("{e}"));
    let url = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        cluster.url(),
        ca.display()
    );
    let store = tokio::time::timeout(LIMIT, PgStore::connect(&PgSettings::new(url)))
        .await
        .unwrap()
        .unwrap();
    let encrypted: bool =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert!(encrypted, "the connection is not encrypted");
    // A certificate nobody trusts is refused, with the store named.
    let other = tempfile::tempdir().unwrap();
    let (stranger, _, _) = openssl_certificates(other.path());
    let url = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        cluster.url(),
        stranger.display()
    );
    let error = connect_error_text(PgSettings::new(url)).await;
    let shown = format!(
        "store postgresql://volley@127.0.0.1:{}/volley",
        cluster.port()
    );
    assert!(
        error.starts_with(&format!("{shown}?sslmode=verify-full")),
        "{error}"
    );
    assert!(
        error.contains("could not connect: TLS failed: invalid peer certificate"),
        "{error}"
    );
    assert!(!error.contains(cluster.password()), "{error}");
}

/// The engine's sync facade answers from a plain thread and from inside both kinds of tokio
/// runtime, and its last handle can be dropped in any of them (a blocking runtime shutdown
/// inside an async context would panic).
#[test]
fn the_store_handle_works_from_plain_threads_and_inside_either_kind_of_runtime() {
    let cluster = cluster();
    let url = cluster.create_database("facade").unwrap();
    let open = || crate::store::Store::open(Path::new(&url)).unwrap();
    let store = open();
    assert!(store.campaigns().unwrap().is_empty());
    store.flush_blocking().unwrap();
    drop(store);
    let runtimes = [
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
    ];
    for runtime in runtimes {
        runtime.block_on(async {
            let store = open();
            assert!(store.campaigns().unwrap().is_empty());
            assert_eq!(store.counts("nope").unwrap(), None);
            tokio::time::timeout(LIMIT, store.flush())
                .await
                .unwrap()
                .unwrap();
            let task = tokio::spawn(async move { store.campaigns().map(|c| c.len()) });
            assert_eq!(
                tokio::time::timeout(LIMIT, task)
                    .await
                    .unwrap()
                    .unwrap()
                    .unwrap(),
                0
            );
        });
    }
}

/// gc's copy into a folder is not for a database: the error says what to use instead,
/// and never shows the password.
#[test]
fn copying_a_database_into_a_folder_points_at_store_copy() {
    let cluster = cluster();
    let url = cluster.create_database("copy_to").unwrap();
    let store = crate::store::Store::open(Path::new(&url)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let error = store
        .copy_to(&dir.path().join("copy"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("volley store copy"), "{error}");
    assert!(!error.contains(cluster.password()), "{error}");
    assert!(!dir.path().join("copy").exists());
}

/// A delivered message with an unsigned Message-ID is found again by it; an ingested
/// report's fingerprint is remembered.
#[test]
fn a_delivered_message_is_found_by_its_id_and_ingested_reports_are_remembered() {
    use crate::model::{Outcome, ReplyRecord};
    use crate::store::{OutcomePolicy, OutcomeUpdate};
    let cluster = cluster();
    let url = cluster.create_database("messages").unwrap();
    let store = crate::store::Store::open(Path::new(&url)).unwrap();
    let mut loader = store.start_load("c1", vec!["email".into()]).unwrap();
    assert!(loader
        .add(
            "a@x.example",
            "x.example",
            vec![],
            2,
            Assignment::Variant(0)
        )
        .unwrap());
    loader.finish(0, 0, 0).unwrap();
    let key = store.pending("c1", None, 1).unwrap()[0].key.clone();
    let update = OutcomeUpdate {
        key: key.clone(),
        outcome: Outcome::Delivered {
            reply: ReplyRecord {
                code: Some(250),
                enhanced: None,
                text: "ok".into(),
                category: None,
                hard: false,
            },
        },
        message_id: Some("plain-id@volley.example".into()),
    };
    let counts = store
        .record_outcomes("c1", &OutcomePolicy::default(), &[update], 1_000)
        .unwrap();
    assert_eq!(counts.delivered, 1);
    let found = store.message("plain-id@volley.example").unwrap().unwrap();
    assert_eq!((found.campaign.as_str(), &found.key), ("c1", &key));
    assert_eq!(store.message("other@volley.example").unwrap(), None);
    assert!(!store.is_ingested(b"fp").unwrap());
    store.mark_ingested(b"fp").unwrap();
    store.mark_ingested(b"fp").unwrap();
    assert!(store.is_ingested(b"fp").unwrap());
}

/// Two nodes asking a brand-new store for its token secret at the same moment get the same
/// one (the loser of the insert race reads the winner's).
#[test]
fn two_nodes_racing_for_a_new_secret_get_the_same_one() {
    let cluster = cluster();
    for round in 0..4 {
        let url = cluster
            .create_database(&format!("secret_race_{round}"))
            .unwrap();
        let nodes: Vec<_> = (0..2)
            .map(|_| crate::store::Store::open(Path::new(&url)).unwrap())
            .collect();
        let barrier = std::sync::Barrier::new(nodes.len());
        let secrets: Vec<[u8; 32]> = std::thread::scope(|scope| {
            let asks: Vec<_> = nodes
                .iter()
                .map(|node| {
                    let barrier = &barrier;
                    scope.spawn(move || {
                        barrier.wait();
                        node.secret().unwrap()
                    })
                })
                .collect();
            asks.into_iter().map(|ask| ask.join().unwrap()).collect()
        });
        assert_eq!(secrets[0], secrets[1], "round {round}");
    }
}
