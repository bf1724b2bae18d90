//! Campaigns handed to the cluster on PostgreSQL (issue 19), with real `volley` processes
//! standing for machines: a campaign sent by `volley send` from folder A is finished by a
//! `volley serve` node started from an empty folder B that has only the DKIM key and the
//! database URL, and the database never holds a secret; a node lacking the DKIM key says so
//! once and sends nothing of the campaign while another node finishes it; three nodes racing
//! one firing of a scheduled campaign load and send one edition.

use crate::support::{list, psql, text, volley};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use volley_testkit::campaign::{copy_dkim_keys, CampaignToml, Relay, QUICK_RETRY};
use volley_testkit::postgres::TempCluster;
use volley_testkit::sink::{Sink, SinkConfig, SinkTls};

const RELAY_PASSWORD: &str = "cluster-relay-pw-9731";
/// The relay password's variable: every node has it in its environment.
const RELAY_ENV: &str = "VOLLEY_TEST_RELAY_PASSWORD";
/// The DKIM key's variable, for the campaign whose key travels by environment.
const DKIM_ENV: &str = "VOLLEY_TEST_DKIM_KEY";
/// How long a test waits for anything.
const PATIENCE: Duration = Duration::from_secs(120);

/// A database of a fresh cluster: its URL without the password.
fn database(cluster: &TempCluster, name: &str) -> String {
    let url = cluster
        .create_database(name)
        .unwrap_or_else(|e| panic!("{e}"));
    url.replace(&format!(":{}@", cluster.password()), "@")
}

/// A sink answering slowly enough that a send can be killed mid-way.
async fn slow_sink() -> Sink {
    Sink::start(SinkConfig {
        tls: SinkTls::StartTls,
        auth: Some(("user".into(), RELAY_PASSWORD.into())),
        reply_delay: Duration::from_millis(10),
        ..SinkConfig::default()
    })
    .await
    .unwrap()
}

/// The `[relay]` of the sink: STARTTLS, its CA beside the campaign, the password from
/// [`RELAY_ENV`].
fn relay(sink: &Sink) -> Relay {
    Relay::loopback(sink.addr().port())
        .tls("starttls")
        .ca_file("ca.pem")
        .connections(2)
        .line(&format!(
            "username = \"user\"\npassword_env = \"{RELAY_ENV}\""
        ))
}

/// Writes a campaign's folder (`body.txt`, `list.csv` of `n` recipients, the sink's CA) and
/// returns its campaign file.
fn campaign_folder(dir: &Path, sink: &Sink, toml: CampaignToml, n: usize) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("ca.pem"), sink.ca_pem().unwrap()).unwrap();
    std::fs::write(dir.join("body.txt"), "Hello {{ name }}!\n").unwrap();
    std::fs::write(dir.join("list.csv"), list(n)).unwrap();
    toml.write(&dir.join("campaign.toml"))
}

/// A `volley` process whose log goes to a file (a pipe nobody reads would fill and stall it).
struct Node {
    child: Child,
    log: PathBuf,
}

impl Node {
    fn start(args: &[&str], envs: &[(&str, &str)], log: PathBuf) -> Node {
        let file = std::fs::File::create(&log).unwrap();
        let child = volley()
            .args(args)
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap();
        Node { child, log }
    }

    /// `volley serve` on the serve file `config`, looking at its campaigns every second.
    fn serve(config: &Path, envs: &[(&str, &str)]) -> Node {
        let log = config.with_extension("log");
        let config = config.display().to_string();
        Node::start(&["serve", "--config", &config, "--tick", "1"], envs, log)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log says `needle`.
    async fn wait_for_log(&mut self, needle: &str) {
        let deadline = Instant::now() + PATIENCE;
        while !self.log().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "never logged {needle:?}:\n{}",
                self.log()
            );
            assert!(
                self.child.try_wait().unwrap().is_none(),
                "ended:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, then its exit code (it must stop within the patience).
    async fn stop(mut self) -> (Option<i32>, String) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status.code(), self.log());
            }
            assert!(Instant::now() < deadline, "did not stop:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Distinct recipients the sink accepted.
fn distinct(sink: &Sink) -> usize {
    let mut all: Vec<String> = sink
        .received()
        .into_iter()
        .flat_map(|r| r.rcpt_to)
        .collect();
    all.sort();
    all.dedup();
    all.len()
}

/// Waits until the sink has seen `n` distinct recipients.
async fn wait_for_distinct(sink: &Sink, n: usize) {
    let deadline = Instant::now() + PATIENCE;
    while distinct(sink) < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} arrived",
            distinct(sink)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `count` messages arrived while `send` still runs, then kills it (SIGKILL).
async fn kill_mid_way(sink: &Sink, send: &mut Node, count: usize) {
    let deadline = Instant::now() + PATIENCE;
    while sink.count() < count {
        assert!(Instant::now() < deadline, "the send never got going");
        assert!(
            send.child.try_wait().unwrap().is_none(),
            "ended early:\n{}",
            send.log()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    send.child.kill().unwrap();
    send.child.wait().unwrap();
}

/// Waits until `sql` answers `expected`.
async fn wait_for_sql(cluster: &TempCluster, db: &str, sql: &str, expected: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let got = psql(cluster, db, sql);
        if got == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{sql}: {got:?}, not {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A serve file in `dir` on database `url` serving `campaigns` (relative file names).
fn serve_file(dir: &Path, url: &str, campaigns: &[&str]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let list: Vec<String> = campaigns.iter().map(|c| format!("\"{c}\"")).collect();
    let path = dir.join("serve.toml");
    std::fs::write(
        &path,
        format!("store = \"{url}\"\ncampaigns = [{}]\n", list.join(", ")),
    )
    .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_killed_on_machine_a_is_finished_by_a_node_with_only_the_key_and_the_url() {
    let cluster = TempCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let url = database(&cluster, "docs_handover");
    let sink = slow_sink().await;
    let root = tempfile::tempdir().unwrap();
    // The DKIM key sits where both "machines" keep it; the rest of A is A's alone.
    let keys = root.path().join("etc-volley");
    std::fs::create_dir(&keys).unwrap();
    copy_dkim_keys(&keys);
    let key_file = keys.join("rsa.pem");
    let a = root.path().join("machine-a");
    std::fs::create_dir(&a).unwrap();
    std::fs::write(a.join("db-pw.txt"), cluster.password()).unwrap();
    let toml = CampaignToml::new("handover")
        .relay(relay(&sink))
        .dkim("rsa", &key_file.display().to_string())
        .retry(QUICK_RETRY)
        .section(&format!(
            "[store]\nurl = \"{url}\"\npassword_file = \"db-pw.txt\"\nlocal_dir = \"local\""
        ));
    let campaign = campaign_folder(&a, &sink, toml, 300);

    let campaign_arg = campaign.display().to_string();
    let mut send = Node::start(
        &["send", &campaign_arg, "--no-progress"],
        &[(RELAY_ENV, RELAY_PASSWORD)],
        a.join("send.log"),
    );
    kill_mid_way(&sink, &mut send, 40).await;
    assert!(sink.count() < 300, "the send was killed before the end");
    // Machine A is gone, its files with it.
    std::fs::remove_dir_all(&a).unwrap();

    let b = root.path().join("machine-b");
    let config = serve_file(&b, &url, &[]);
    let mut node = Node::serve(
        &config,
        &[
            (RELAY_ENV, RELAY_PASSWORD),
            ("PGPASSWORD", cluster.password()),
        ],
    );
    node.wait_for_log("published campaign loaded on this node")
        .await;
    wait_for_distinct(&sink, 300).await;
    wait_for_sql(
        &cluster,
        "docs_handover",
        "SELECT state FROM campaign_documents WHERE id = 'handover'",
        "done",
    )
    .await;
    let (code, log) = node.stop().await;
    assert_eq!(code, Some(0), "{log}");
    assert!(
        b.join("serve.volley/cluster/handover/campaign.toml")
            .is_file(),
        "{log}"
    );
    let duplicates = sink.count() - 300;
    eprintln!("duplicates after kill -9 of the send: {duplicates}");
    assert!(duplicates <= 100, "{duplicates} duplicates");

    // The database never holds a secret: not the DKIM key, the relay or database password.
    let stored = psql(
        &cluster,
        "docs_handover",
        "SELECT document::text FROM campaign_documents UNION ALL \
         SELECT encode(body, 'escape') FROM campaign_files",
    );
    let pem = std::fs::read_to_string(&key_file).unwrap();
    assert!(stored.contains(&key_file.display().to_string()), "{stored}");
    for secret in [
        pem.lines().nth(1).unwrap(),
        RELAY_PASSWORD,
        cluster.password(),
    ] {
        assert!(
            !stored.contains(secret),
            "a secret in the database:\n{stored}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_lacking_the_dkim_key_says_so_and_leaves_the_campaign_to_another() {
    let cluster = TempCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let url = database(&cluster, "docs_lacking");
    let sink = slow_sink().await;
    let root = tempfile::tempdir().unwrap();
    let a = root.path().join("machine-a");
    std::fs::create_dir(&a).unwrap();
    copy_dkim_keys(&a);
    let pem = std::fs::read_to_string(a.join("rsa.pem")).unwrap();
    let toml = CampaignToml::new("lacking")
        .relay(relay(&sink))
        .retry(QUICK_RETRY)
        .section(&format!("[store]\nurl = \"{url}\"\nlocal_dir = \"local\""))
        .section(&format!(
            "[[dkim]]\ndomain = \"example.com\"\nselector = \"rsa\"\nkey_env = \"{DKIM_ENV}\""
        ));
    let campaign = campaign_folder(&a, &sink, toml, 200);
    let db = ("PGPASSWORD", cluster.password());
    let campaign_arg = campaign.display().to_string();
    let mut send = Node::start(
        &["send", &campaign_arg, "--no-progress"],
        &[(RELAY_ENV, RELAY_PASSWORD), (DKIM_ENV, &pem), db],
        a.join("send.log"),
    );
    kill_mid_way(&sink, &mut send, 30).await;
    let sent_by_a = sink.count();

    // Node C has the relay password but not the DKIM key.
    let config_c = serve_file(&root.path().join("machine-c"), &url, &[]);
    let mut c = Node::serve(&config_c, &[(RELAY_ENV, RELAY_PASSWORD), db]);
    let said = format!(
        "cannot send campaign lacking: dkim[0].key_env {DKIM_ENV}: not set; leaving it to other nodes"
    );
    c.wait_for_log(&said).await;
    c.wait_for_log("idle: nothing to send now").await;
    assert_eq!(sink.count(), sent_by_a, "node C sent nothing");

    let config_b = serve_file(&root.path().join("machine-b"), &url, &[]);
    let b = Node::serve(
        &config_b,
        &[(RELAY_ENV, RELAY_PASSWORD), (DKIM_ENV, &pem), db],
    );
    wait_for_distinct(&sink, 200).await;
    wait_for_sql(
        &cluster,
        "docs_lacking",
        "SELECT state FROM campaign_documents WHERE id = 'lacking'",
        "done",
    )
    .await;
    let (code_b, log_b) = b.stop().await;
    let (code_c, log_c) = c.stop().await;
    assert_eq!((code_b, code_c), (Some(0), Some(0)), "{log_b}\n{log_c}");
    assert!(
        log_b.contains("published campaign loaded on this node"),
        "{log_b}"
    );
    assert_eq!(log_c.matches(&said).count(), 1, "said once:\n{log_c}");
    assert!(!log_c.contains("published campaign loaded"), "{log_c}");
    assert!(!log_c.contains("sending"), "{log_c}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_racing_one_firing_send_one_edition() {
    let cluster = TempCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let url = database(&cluster, "docs_race");
    let sink = slow_sink().await;
    let root = tempfile::tempdir().unwrap();
    let db = ("PGPASSWORD", cluster.password());
    let mut nodes = Vec::new();
    let mut configs = Vec::new();
    for name in ["node-1", "node-2", "node-3"] {
        let dir = root.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        copy_dkim_keys(&dir);
        // Fired on 1 January at midnight; a long catch-up keeps that edition due all year.
        let toml = CampaignToml::new("race")
            .relay(relay(&sink))
            .dkim("rsa", "rsa.pem")
            .retry(QUICK_RETRY)
            .section("[schedule]\ncron = \"0 0 1 1 *\"\ncatch_up = \"400d\"")
            .section(&format!("[store]\nurl = \"{url}\""));
        campaign_folder(&dir, &sink, toml, 200);
        configs.push(serve_file(&dir, &url, &["campaign.toml"]));
    }
    for config in &configs {
        nodes.push(Node::serve(config, &[(RELAY_ENV, RELAY_PASSWORD), db]));
    }
    wait_for_distinct(&sink, 200).await;
    let campaign = root
        .path()
        .join("node-1/campaign.toml")
        .display()
        .to_string();
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        let output = volley()
            .args(["status", &campaign, "--json"])
            .env("PGPASSWORD", cluster.password())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        if json["delivered"] == 200 {
            break json;
        }
        assert!(Instant::now() < deadline, "{json}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut logs = Vec::new();
    for node in nodes {
        let (code, log) = node.stop().await;
        assert_eq!(code, Some(0), "{log}");
        logs.push(log);
    }
    let edition = status["campaign"].as_str().unwrap();
    assert!(
        edition.starts_with("race.") && edition.ends_with("-01-01"),
        "{status}"
    );
    assert_eq!(status["total"], 200, "{status}");
    assert_eq!(sink.count(), 200, "one edition's messages, each once");
    assert_eq!(
        psql(&cluster, "docs_race", "SELECT id FROM campaigns"),
        edition
    );
    let loads: usize = logs.iter().map(|l| l.matches("list loaded").count()).sum();
    assert_eq!(loads, 1, "loaded once:\n{}", logs.join("\n----\n"));
    // The others waited for the lease rather than failing to load or send it.
    for log in &logs {
        assert!(
            !log.contains("could not start") && !log.contains("send failed"),
            "{log}"
        );
    }
    assert_eq!(
        psql(&cluster, "docs_race", "SELECT count(*) FROM leases"),
        "0"
    );
}
