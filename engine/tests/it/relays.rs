//! Several relays (`[[relay]]`): traffic split by weight, failover by priority, and a relay
//! that goes away mid-send taken out while its messages move to the others. One of the three
//! relays is Python's aiosmtpd (`scripts/picky-relay.py`, a receiver nobody here wrote), and
//! it is the one killed: nobody is lost, and only transactions cut by the kill may arrive
//! twice.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use volley::runtime::{self, SendOptions};
use volley_testkit::campaign::{copy_dkim_keys, CampaignToml, Relay, QUICK_RETRY};
use volley_testkit::script_server::ScriptServer;
use volley_testkit::sink::{Sink, SinkConfig};

use crate::support::{list, LIMIT, PASSWORD, USER};

/// `scripts/picky-relay.py` without its tricks, answering each DATA after `delay`: a slow
/// relay, killed with SIGKILL when asked (or on drop).
fn slow_aiosmtpd(dir: &Path, delay: Duration) -> ScriptServer {
    let delay = format!("{}", delay.as_secs_f64());
    let args = [
        "--per-connection",
        "1000000",
        "--grey-domain",
        "none.invalid",
        "--close-all-at",
        "",
        "--data-451",
        "0",
        "--data-delay",
        &delay,
    ];
    ScriptServer::start("picky-relay.py", &dir.join("aiosmtpd.log"), &args, false)
}

/// Waits until `server` accepted at least `n` recipients (bounded by [`LIMIT`]).
async fn wait_for(server: &ScriptServer, n: usize) {
    let deadline = tokio::time::Instant::now() + LIMIT;
    while server.events("accepted").len() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "aiosmtpd accepted only {} of {n}",
            server.events("accepted").len()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A campaign folder for `n` recipients over `domains` domains, sent through `relays`.
fn campaign(dir: &Path, n: usize, domains: usize, relays: Vec<Relay>) -> PathBuf {
    copy_dkim_keys(dir);
    std::fs::write(dir.join("body.txt"), "Hi {{ first_name }}\n").unwrap();
    std::fs::write(dir.join("list.csv"), list(n, domains)).unwrap();
    std::fs::write(dir.join("password.txt"), "not-the-password\n").unwrap();
    CampaignToml::new("relays")
        .from("Example News <news@example.com>")
        .subject("Hello {{ first_name }}")
        .relays(relays)
        .dkim("ed", "ed.pem")
        .retry(QUICK_RETRY)
        .write(&dir.join("campaign.toml"))
}

fn load(path: &Path) -> runtime::Campaign {
    let settings = volley::config::load_campaign(path, None).unwrap();
    runtime::Campaign::prepare(settings).unwrap()
}

/// How often each recipient arrived, over every receiver.
fn arrivals(lists: &[Vec<String>]) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for rcpt in lists.iter().flatten() {
        *out.entry(rcpt.clone()).or_default() += 1;
    }
    out
}

fn rcpts(sink: &Sink) -> Vec<String> {
    sink.received()
        .iter()
        .flat_map(|m| m.rcpt_to.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_relays_one_killed_mid_send_lose_nobody() {
    const N: usize = 240;
    const C_CONNECTIONS: usize = 2;
    let dir = tempfile::tempdir().unwrap();
    let a = Sink::start(SinkConfig::default()).await.unwrap();
    let b = Sink::start(SinkConfig::default()).await.unwrap();
    let mut c = slow_aiosmtpd(dir.path(), Duration::from_millis(40));
    let file = campaign(
        dir.path(),
        N,
        12,
        vec![
            Relay::loopback(a.addr().port()).line("name = \"a\"\nweight = 2"),
            Relay::loopback(b.addr().port()).line("name = \"b\""),
            Relay::loopback(c.port)
                .connections(C_CONNECTIONS)
                .line("name = \"python\""),
        ],
    );
    let campaign = load(&file);
    let send = tokio::spawn(async move {
        tokio::time::timeout(LIMIT, runtime::send(&campaign, SendOptions::default())).await
    });
    // The slow Python relay has taken some of its share: kill it mid-send.
    wait_for(&c, 10).await;
    c.kill();
    let report = send.await.unwrap().expect("send finished in time").unwrap();
    assert_eq!(report.counts.delivered, N as u64, "{report:?}");
    assert_eq!(report.counts.pending + report.counts.deferred, 0);

    let (from_a, from_b, from_c) = (rcpts(&a), rcpts(&b), c.events("accepted"));
    let seen = arrivals(&[from_a.clone(), from_b.clone(), from_c.clone()]);
    assert_eq!(seen.len(), N, "every recipient arrived somewhere");
    let twice: Vec<_> = seen.iter().filter(|(_, &n)| n > 1).collect();
    assert!(
        twice.len() <= C_CONNECTIONS && twice.iter().all(|(_, &n)| n == 2),
        "only transactions cut by the kill may arrive twice: {twice:?}"
    );
    eprintln!(
        "a {} b {} python {} (killed), arrived twice {}",
        from_a.len(),
        from_b.len(),
        from_c.len(),
        twice.len()
    );
    // The split: a took about twice b's share of what c did not carry.
    assert!(
        from_c.len() >= 10 && from_c.len() < N / 4 + 10,
        "{}",
        from_c.len()
    );
    assert!(
        from_a.len() > from_b.len(),
        "{} vs {}",
        from_a.len(),
        from_b.len()
    );

    // What `volley status` shows: the split, and the killed relay taken out.
    let settings = volley::config::load_campaign(&file, None).unwrap();
    let status = runtime::status(&settings).await.unwrap();
    let by_name: HashMap<&str, &volley::store::RelayTally> = status
        .relays
        .iter()
        .map(|r| (r.relay.as_str(), r))
        .collect();
    assert_eq!(by_name.len(), 3, "{:?}", status.relays);
    let delivered: u64 = status.relays.iter().map(|r| r.delivered).sum();
    assert_eq!(delivered, N as u64, "{:?}", status.relays);
    assert!(by_name["python"].cooldowns >= 1, "{:?}", status.relays);
    eprintln!("status: {:?}", status.relays);
    assert_eq!((by_name["a"].cooldowns, by_name["b"].cooldowns), (0, 0));
    assert_eq!(by_name["a"].delivered, from_a.len() as u64);
    assert_eq!(by_name["b"].delivered, from_b.len() as u64);
    assert!(by_name["python"].delivered <= from_c.len() as u64);
    let json = status.to_json();
    assert_eq!(json["relays"].as_array().unwrap().len(), 3, "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_relay_is_used_only_when_the_primary_refuses_the_login() {
    let dir = tempfile::tempdir().unwrap();
    let primary = Sink::start(SinkConfig {
        auth: Some((USER.to_owned(), PASSWORD.to_owned())),
        ..SinkConfig::default()
    })
    .await
    .unwrap();
    let backup = Sink::start(SinkConfig::default()).await.unwrap();
    let file = campaign(
        dir.path(),
        30,
        3,
        vec![
            // The password file holds the wrong password: the primary says 535.
            Relay::loopback(primary.addr().port())
                .login(USER, "password.txt")
                .line("name = \"primary\""),
            Relay::loopback(backup.addr().port()).line("name = \"backup\"\npriority = 1"),
        ],
    );
    let report = tokio::time::timeout(LIMIT, runtime::send(&load(&file), SendOptions::default()))
        .await
        .expect("send finished in time")
        .unwrap();
    assert_eq!(report.counts.delivered, 30);
    assert_eq!(primary.count(), 0);
    assert!(primary.stats().auth_failures >= 1);
    assert_eq!(backup.wait_for(30, LIMIT).await.unwrap().len(), 30);
    let settings = volley::config::load_campaign(&file, None).unwrap();
    let status = runtime::status(&settings).await.unwrap();
    let relays: Vec<(&str, u64, u64)> = status
        .relays
        .iter()
        .map(|r| (r.relay.as_str(), r.delivered, r.cooldowns))
        .collect();
    assert_eq!(relays, [("backup", 30, 0), ("primary", 0, 1)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_relay_refusing_the_login_the_send_stops_as_for_a_lone_relay() {
    let dir = tempfile::tempdir().unwrap();
    let config = || SinkConfig {
        auth: Some((USER.to_owned(), PASSWORD.to_owned())),
        ..SinkConfig::default()
    };
    let (one, two) = (
        Sink::start(config()).await.unwrap(),
        Sink::start(config()).await.unwrap(),
    );
    let file = campaign(
        dir.path(),
        10,
        2,
        vec![
            Relay::loopback(one.addr().port()).login(USER, "password.txt"),
            Relay::loopback(two.addr().port()).login(USER, "password.txt"),
        ],
    );
    let error = tokio::time::timeout(LIMIT, runtime::send(&load(&file), SendOptions::default()))
        .await
        .expect("send finished in time")
        .unwrap_err()
        .to_string();
    assert!(error.contains("refused"), "{error}");
    assert_eq!(one.count() + two.count(), 0);
}
