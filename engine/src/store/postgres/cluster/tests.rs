//! Nodes and leases on a real PostgreSQL (the test kit's throwaway cluster): a live name is
//! refused, two nodes racing for one lease get it once between them, a lease that ran out
//! by the database's clock is taken, a heartbeat reports what it still holds, SIGTERM hands
//! everything back, and the domains with work come from the queue's indexes.

use crate::model::Assignment;
use crate::store::postgres::{PgSettings, PgStore};
use crate::store::{domain_lease, NodeStart, Store, StoreError};
use std::sync::Arc;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(600);

/// A store on a fresh database, and a raw pool on it for what the tests do behind its back.
fn place(name: &str) -> (Arc<volley_testkit::postgres::TempCluster>, Store, PgStore) {
    let cluster = crate::store::postgres::tests::cluster();
    let url = cluster.create_database(name).unwrap();
    let store = Store::open(std::path::Path::new(&url)).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let raw = runtime
        .block_on(PgStore::connect(&PgSettings::new(url)))
        .unwrap();
    std::mem::forget(runtime);
    (cluster, store, raw)
}

fn sql(raw: &PgStore, statement: &'static str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(sqlx::query(statement).execute(raw.pool()))
        .unwrap();
}

fn node(name: &str, lease: Duration) -> NodeStart {
    NodeStart {
        name: name.to_owned(),
        instance: format!("{name}-{}", rand::random::<u32>()),
        host: "test-host".to_owned(),
        pid: 4242,
        version: "test".to_owned(),
        lease,
    }
}

fn names(domains: &[&str]) -> Vec<String> {
    domains.iter().map(|d| domain_lease(d)).collect()
}

#[test]
fn a_live_node_name_is_refused_and_a_stopped_one_is_taken_over() {
    let (_c, store, _raw) = place("cluster_names");
    let cluster = store.cluster().unwrap();
    let a = node("a", LONG);
    cluster.register_node(&a).unwrap();
    let error = cluster.register_node(&node("a", LONG)).unwrap_err();
    assert!(matches!(error, StoreError::NodeInUse { .. }), "{error}");
    let said = error.to_string();
    assert!(
        said.contains("node a is already running") && said.contains("pid 4242"),
        "{said}"
    );
    cluster.claim("a", &names(&["x.example"]), LONG).unwrap();
    assert_eq!(cluster.stop_node("a", &a.instance, false).unwrap(), 1);
    let nodes = cluster.nodes().unwrap();
    assert!(
        nodes[0].stopping && !nodes[0].live && nodes[0].leases == 0,
        "{nodes:?}"
    );
    let again = node("a", LONG);
    cluster.register_node(&again).unwrap();
    // The old instance's heartbeat finds its name taken.
    let error = cluster.heartbeat("a", &a.instance, LONG, 0).unwrap_err();
    assert!(matches!(error, StoreError::NodeReplaced { .. }), "{error}");
    assert!(cluster
        .heartbeat("a", &again.instance, LONG, 0)
        .unwrap()
        .is_empty());
}

#[test]
fn two_nodes_racing_for_the_same_leases_get_each_exactly_once() {
    let (_c, store, _raw) = place("cluster_race");
    let domains: Vec<String> = (0..200)
        .map(|i| domain_lease(&format!("d{i}.example")))
        .collect();
    let barrier = Arc::new(std::sync::Barrier::new(2));
    let racers: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|owner| {
            let (store, domains, barrier) = (store.clone(), domains.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let mut won = Vec::new();
                // One name at a time, then all at once: both shapes race.
                for name in domains.iter().take(100) {
                    won.extend(
                        store
                            .cluster()
                            .unwrap()
                            .claim(owner, std::slice::from_ref(name), LONG)
                            .unwrap(),
                    );
                }
                won.extend(
                    store
                        .cluster()
                        .unwrap()
                        .claim(owner, &domains, LONG)
                        .unwrap(),
                );
                won.sort();
                won.dedup();
                won
            })
        })
        .collect();
    let won: Vec<Vec<String>> = racers.into_iter().map(|r| r.join().unwrap()).collect();
    let mut all: Vec<String> = won.concat();
    all.sort();
    assert_eq!(
        all,
        {
            let mut d = domains.clone();
            d.sort();
            d
        },
        "each name won exactly once"
    );
    let leases = store.cluster().unwrap().leases().unwrap();
    for lease in leases {
        let winner = if won[0].contains(&lease.name) {
            "a"
        } else {
            "b"
        };
        assert_eq!(lease.owner, winner, "{lease:?}");
    }
}

#[test]
fn a_lease_run_out_by_the_database_clock_is_taken_and_a_live_one_is_not() {
    let (_c, store, raw) = place("cluster_expiry");
    let cluster = store.cluster().unwrap();
    let x = names(&["x.example"]);
    assert_eq!(cluster.claim("a", &x, LONG).unwrap(), x);
    assert!(
        cluster.claim("b", &x, LONG).unwrap().is_empty(),
        "held by a for ten minutes"
    );
    // Only the database's clock counts: the lease ran out there.
    sql(
        &raw,
        "UPDATE leases SET until = now() - interval '1 second'",
    );
    assert!(cluster.leases().unwrap()[0].remaining.is_none());
    assert_eq!(cluster.claim("b", &x, LONG).unwrap(), x);
    assert_eq!(cluster.leases().unwrap()[0].owner, "b");
    // A claim by the holder renews it.
    assert_eq!(cluster.claim("b", &x, LONG).unwrap(), x);
}

#[test]
fn a_heartbeat_renews_what_the_node_holds_and_reports_a_lease_taken_over_as_lost() {
    let (_c, store, raw) = place("cluster_heartbeat");
    let cluster = store.cluster().unwrap();
    let a = node("a", Duration::from_secs(30));
    cluster.register_node(&a).unwrap();
    cluster
        .claim(
            "a",
            &names(&["x.example", "y.example"]),
            Duration::from_secs(30),
        )
        .unwrap();
    // a stalls: y runs out and b takes it.
    sql(
        &raw,
        "UPDATE leases SET until = now() - interval '1 second' WHERE name = 'domain:y.example'",
    );
    assert_eq!(
        cluster
            .claim("b", &names(&["y.example"]), LONG)
            .unwrap()
            .len(),
        1
    );
    let held = cluster.heartbeat("a", &a.instance, LONG, 17).unwrap();
    assert_eq!(held, names(&["x.example"]));
    let leases = cluster.leases().unwrap();
    assert!(
        leases[0].remaining.unwrap() > Duration::from_secs(300),
        "renewed for the new lease time: {leases:?}"
    );
    let nodes = cluster.nodes().unwrap();
    assert_eq!(
        (
            nodes[0].name.as_str(),
            nodes[0].sent_last_minute,
            nodes[0].leases
        ),
        ("a", 17, 1)
    );
    assert!(nodes[0].live, "{nodes:?}");
    // Released by name.
    assert_eq!(
        cluster
            .release("a", &names(&["x.example", "y.example"]))
            .unwrap(),
        1
    );
    assert_eq!(cluster.leases().unwrap().len(), 1);
}

#[test]
fn a_node_silent_past_its_lease_is_dead_and_its_name_can_be_taken() {
    let (_c, store, raw) = place("cluster_dead");
    let cluster = store.cluster().unwrap();
    cluster
        .register_node(&node("a", Duration::from_secs(15)))
        .unwrap();
    sql(
        &raw,
        "UPDATE nodes SET heartbeat_at = now() - interval '16 seconds'",
    );
    let nodes = cluster.nodes().unwrap();
    assert!(!nodes[0].live && !nodes[0].stopping, "{nodes:?}");
    cluster
        .register_node(&node("a", Duration::from_secs(15)))
        .unwrap();
    assert!(cluster.nodes().unwrap()[0].live);
}

/// Loads campaign `id` with `n` recipients over `domains` domains (`d<i>.example`).
fn load(store: &Store, id: &str, n: usize, domains: usize) {
    let mut loader = store.start_load(id, vec!["email".into()]).unwrap();
    for i in 0..n {
        let domain = format!("d{}.example", i % domains);
        let email = format!("u{i}@{domain}");
        loader
            .add(
                &email,
                &domain,
                vec![email.clone()],
                i as u64 + 2,
                Assignment::Variant(0),
            )
            .unwrap();
    }
    loader.finish(0, 0, 0).unwrap();
}

#[test]
fn domains_with_work_count_pending_and_due_recipients_through_the_indexes() {
    let (_c, store, raw) = place("cluster_work");
    load(&store, "big", 100_000, 100);
    load(&store, "small", 30, 3);
    let cluster = store.cluster().unwrap();
    let work = cluster
        .domains_with_work(
            &["big".into(), "small".into(), "unknown".into()],
            Duration::ZERO,
        )
        .unwrap();
    assert_eq!(work.len(), 100);
    assert_eq!(work.iter().map(|w| w.recipients).sum::<u64>(), 100_030);
    assert_eq!(
        (work[0].domain.as_str(), work[0].recipients),
        ("d0.example", 1_010)
    );
    // Deferred ones count once due (within the horizon).
    sql(
        &raw,
        "UPDATE recipients SET state = 'deferred', next_attempt = now() + interval '1 minute' \
         WHERE campaign = (SELECT number FROM campaigns WHERE id = 'small')",
    );
    let small = ["small".to_owned()];
    assert!(cluster
        .domains_with_work(&small, Duration::ZERO)
        .unwrap()
        .is_empty());
    assert_eq!(
        cluster
            .domains_with_work(&small, Duration::from_secs(120))
            .unwrap()
            .len(),
        3
    );
    // Mid-send (most of the list delivered), the plan reads the partial indexes, not the
    // 100,000-row partition (recipients_1); the planner may read a 30-row one whole.
    sql(
        &raw,
        "UPDATE recipients SET state = 'delivered' WHERE campaign = 1 AND seq % 100 <> 0",
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let plan: Vec<String> = runtime
        .block_on(async {
            sqlx::query("VACUUM ANALYZE recipients")
                .execute(raw.pool())
                .await?;
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "EXPLAIN {}",
                super::DOMAINS_WITH_WORK
                    .replace("$1", "ARRAY[1,2]")
                    .replace("$2", "0")
            )))
            .fetch_all(raw.pool())
            .await
        })
        .unwrap();
    let plan = plan.join("\n");
    assert!(!plan.contains("Seq Scan on recipients_1 "), "{plan}");
    assert!(
        plan.contains("Index Only Scan using recipients_1_campaign_domain_seq_idx"),
        "{plan}"
    );
}

#[test]
fn relay_usage_of_two_nodes_adds_up_instead_of_overwriting() {
    let cluster = crate::store::postgres::tests::cluster();
    let url = cluster.create_database("cluster_relay_usage").unwrap();
    let a = Store::open(std::path::Path::new(&url)).unwrap();
    let b = Store::open(std::path::Path::new(&url)).unwrap();
    for node in [&a, &b] {
        assert!(node.relay_usage("relay:587", 0).unwrap().is_empty());
    }
    // Each process writes its own absolute counts, as the recorder does.
    a.set_relay_usage("relay:587", &[(100, 5)], 0).unwrap();
    b.set_relay_usage("relay:587", &[(100, 3), (101, 1)], 0)
        .unwrap();
    a.set_relay_usage("relay:587", &[(100, 6)], 0).unwrap();
    assert_eq!(a.relay_usage("relay:587", 0).unwrap(), [(100, 9), (101, 1)]);
}

#[test]
fn relay_reservations_of_racing_nodes_never_add_up_past_the_cap() {
    let cluster = crate::store::postgres::tests::cluster();
    let url = cluster.create_database("cluster_relay_reserve").unwrap();
    let now = 29_000_000;
    let quota = crate::store::RelayQuota {
        per_hour: Some(100),
        per_day: Some(150),
        minute: now,
        ..Default::default()
    };
    // An hour and a half ago, 40 went out: the day counts them, the hour does not.
    let a = Store::open(std::path::Path::new(&url)).unwrap();
    a.set_relay_usage("relay:587", &[(now - 90, 40)], 0)
        .unwrap();
    let racers: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let node = Store::open(std::path::Path::new(&url)).unwrap();
                let cluster = node.cluster().unwrap();
                (0..10)
                    .map(|_| cluster.reserve_relay("relay:587", quota, 7).unwrap())
                    .sum::<u32>()
            })
        })
        .collect();
    let granted: u32 = racers.into_iter().map(|r| r.join().unwrap()).sum();
    assert_eq!(granted, 100, "the hourly cap, not 4 × 10 × 7");
    let cluster_a = a.cluster().unwrap();
    assert_eq!(cluster_a.reserve_relay("relay:587", quota, 7).unwrap(), 0);
    // Giving 30 back makes room for 10 more under the day's cap (150 − 40 − 70 = 40).
    let back = crate::store::RelayQuota {
        give_back: 30,
        back_minute: now,
        ..quota
    };
    assert_eq!(cluster_a.reserve_relay("relay:587", back, 50).unwrap(), 30);
    let next_hour = crate::store::RelayQuota {
        minute: now + 61,
        ..quota
    };
    assert_eq!(
        cluster_a.reserve_relay("relay:587", next_hour, 50).unwrap(),
        10,
        "an hour on, the day's cap is what is left"
    );
}

#[test]
fn a_dead_node_of_this_machine_is_reaped_once_and_a_re_registered_one_is_not() {
    let (_pg, store, _raw) = place("cluster_reap");
    let cluster = store.cluster().unwrap();
    cluster.register_node(&node("a", LONG)).unwrap();
    let won = cluster.claim("a", &names(&["x.example"]), LONG).unwrap();
    assert_eq!(won.len(), 1);
    // Another host or pid: not this node.
    assert_eq!(cluster.reap_node("a", "elsewhere", 42).unwrap(), 0);
    let start = node("a", LONG);
    assert_eq!(
        cluster.reap_node("a", &start.host, start.pid + 1).unwrap(),
        0
    );
    assert_eq!(cluster.reap_node("a", &start.host, start.pid).unwrap(), 1);
    assert!(cluster.leases().unwrap().is_empty());
    let row = cluster.nodes().unwrap().into_iter().find(|n| n.name == "a");
    assert!(row.is_some_and(|n| n.stopping && !n.live));
    assert_eq!(cluster.reap_node("a", &start.host, start.pid).unwrap(), 0);
}

#[test]
fn a_destinations_back_off_is_shared_with_what_is_left_of_its_suspension() {
    use crate::model::BackoffSnapshot;
    let (_pg, store, raw) = place("cluster_backoff");
    let cluster = store.cluster().unwrap();
    let cut = BackoffSnapshot {
        rate: Some(2.5),
        connections: 2,
        floor: 2.5,
        ceiling: 10.0,
        suspended_for: None,
    };
    cluster.save_backoff("mx.a.example", &cut).unwrap();
    let suspended = BackoffSnapshot {
        rate: None,
        ceiling: f64::INFINITY,
        suspended_for: Some(LONG),
        ..cut
    };
    cluster.save_backoff("relay:587", &suspended).unwrap();
    let saved = cluster.backoffs(LONG).unwrap();
    assert_eq!(saved.len(), 2);
    assert_eq!(saved[0].0, "mx.a.example");
    assert_eq!(saved[0].1, cut);
    let left = saved[1].1.suspended_for.unwrap();
    assert!(
        left <= LONG && left > LONG - Duration::from_secs(60),
        "{left:?}"
    );
    assert_eq!(saved[1].1.rate, None);
    // Saved long ago: forgotten.
    sql(
        &raw,
        "UPDATE destination_backoff SET saved_at = now() - interval '2 hours' WHERE name = 'mx.a.example'",
    );
    let recent = cluster.backoffs(Duration::from_secs(3_600)).unwrap();
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].0, "relay:587");
}
