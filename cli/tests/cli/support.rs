//! Harness: a campaign in a temp dir sending to an in-process loopback sink, and a way to run
//! the `volley` binary with a time limit.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
pub use volley_testkit::arrivals;
use volley_testkit::campaign::{copy_dkim_keys, CampaignToml, Relay, QUICK_RETRY};
use volley_testkit::sink::{Sink, SinkConfig, SinkTls};

pub const PASSWORD: &str = "cli-relay-pw-123";

/// `volley`, with the environment its store needs (`PGPASSWORD` when the tests run on
/// PostgreSQL: see `volley_testkit::store`).
pub fn volley() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_volley"));
    command
        .env_remove("VOLLEY_LOG")
        .envs(volley_testkit::store::command_env())
        .stdin(Stdio::null());
    command
}

/// The tests about the sled folder itself, which run on sled only, with the reason. Each
/// starts with [`sled_only`]; on PostgreSQL (`VOLLEY_TEST_STORE=postgres`) it says why it
/// does not apply and returns at once.
pub const SLED_ONLY: &[(&str, &str)] = &[
    (
        "access::only_the_owner_and_root_reach_a_running_send",
        "who may reach the control socket in the sled folder (a database has no socket; \
         PostgreSQL's own login decides who reaches it)",
    ),
    (
        "disk::a_full_disk_mid_send_stops_with_a_clear_error_and_a_rerun_loses_nobody",
        "a full disk under the sled folder (a database's disk is the server's)",
    ),
    (
        "format::a_store_from_a_newer_volley_is_refused_by_name_and_left_alone",
        "sled's format key (PostgreSQL's schema has versioned migrations instead)",
    ),
    (
        "handover::a_second_campaign_on_a_busy_store_is_handed_over_and_followed_to_the_end",
        "handing a campaign over the control socket of a held sled folder (a database is \
         shared: each process sends its own campaigns)",
    ),
];

/// Returns true (and says why) when the test `name` (as listed in [`SLED_ONLY`]) does not
/// apply because the tests run on PostgreSQL. Panics for a name not in the list.
pub fn sled_only(name: &str) -> bool {
    let Some((_, reason)) = SLED_ONLY.iter().find(|(test, _)| *test == name) else {
        panic!("{name} is not in support::SLED_ONLY");
    };
    if volley_testkit::store::is_postgres() {
        eprintln!("{name}: sled only, not run on PostgreSQL: it is about {reason}");
        return true;
    }
    false
}

/// Runs `volley ARGS…`, killing it if it takes longer than two minutes.
pub fn run(args: &[&str]) -> Output {
    run_with(args, &[])
}

/// Like [`run`], with the environment variables `envs` set.
pub fn run_with(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut child = volley()
        .args(args)
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("volley {args:?} took too long");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub sink: Sink,
    /// What `campaign.toml` holds: a test adds to it and writes it again (or elsewhere).
    pub toml: CampaignToml,
}

impl Fixture {
    pub async fn new(csv: &str, password: &str) -> Fixture {
        Fixture::with_sink(csv, password, SinkConfig::default()).await
    }

    pub async fn with_sink(csv: &str, password: &str, config: SinkConfig) -> Fixture {
        let sink = Sink::start(SinkConfig {
            tls: SinkTls::StartTls,
            auth: Some(("user".into(), PASSWORD.into())),
            ..config
        })
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        copy_dkim_keys(dir.path());
        std::fs::write(path("ca.pem"), sink.ca_pem().unwrap()).unwrap();
        std::fs::write(path("body.txt"), "Hello {{ name }}!\n").unwrap();
        std::fs::write(path("list.csv"), csv).unwrap();
        std::fs::write(path("pw.txt"), password).unwrap();
        let toml = CampaignToml::new("cli-test")
            .relay(relay_to(&sink, "starttls").ca_file("ca.pem").connections(2))
            .dkim("rsa", "rsa.pem")
            .retry(QUICK_RETRY);
        toml.write(&path("campaign.toml"));
        Fixture { dir, sink, toml }
    }

    /// Adds `sections` (TOML) to the campaign and writes it again.
    pub fn add_to_campaign(&mut self, sections: &str) {
        self.set_campaign(self.toml.clone().section(sections));
    }

    /// Makes `toml` the campaign and writes it.
    pub fn set_campaign(&mut self, toml: CampaignToml) {
        self.toml = toml;
        self.toml.write(&self.path("campaign.toml"));
    }

    pub fn campaign(&self) -> String {
        self.dir.path().join("campaign.toml").display().to_string()
    }

    /// Starts `volley send` on this campaign in the background; `capture` keeps its output.
    pub fn spawn_send(&self, capture: bool) -> std::process::Child {
        let output = || {
            if capture {
                Stdio::piped()
            } else {
                Stdio::null()
            }
        };
        volley()
            .args(["send", &self.campaign(), "--no-progress"])
            .stdout(output())
            .stderr(output())
            .spawn()
            .unwrap()
    }

    /// Waits (at most a minute) until the sink has accepted `n` messages from a send that is
    /// still running.
    pub async fn wait_for_arrivals(&self, n: usize, child: &mut std::process::Child) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.sink.count() < n {
            assert!(Instant::now() < deadline, "the send never got going");
            assert!(
                child.try_wait().unwrap().is_none(),
                "the send ended before {n} arrived"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

pub fn list(n: usize) -> String {
    let mut csv = String::from("email,name\n");
    for i in 0..n {
        writeln!(csv, "user{i}@d{}.example,Name{i}", i % 50).unwrap();
    }
    csv
}

/// The `[relay]` of a campaign sending to `sink` over `tls` as `user` with the password in
/// `pw.txt`.
pub fn relay_to(sink: &Sink, tls: &str) -> Relay {
    Relay::loopback(sink.addr().port())
        .tls(tls)
        .login("user", "pw.txt")
}

/// Runs `volley ARGS…` to the end off the async runtime, with `envs` set, and returns what
/// it printed and its exit status.
pub async fn output_of(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let envs: Vec<(String, String)> = envs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    tokio::task::spawn_blocking(move || volley().args(&args).envs(envs).output().unwrap())
        .await
        .unwrap()
}

/// `psql -At -c SQL` on database `db` of `cluster` as its superuser (PostgreSQL's own
/// client, to check what Volley wrote without going through Volley).
pub(crate) fn psql(cluster: &volley_testkit::postgres::TempCluster, db: &str, sql: &str) -> String {
    psql_or_error(cluster, db, sql).unwrap_or_else(|e| panic!("psql: {e}"))
}

/// [`psql`], or what it said when it failed (a table not made yet).
pub(crate) fn psql_or_error(
    cluster: &volley_testkit::postgres::TempCluster,
    db: &str,
    sql: &str,
) -> Result<String, String> {
    let port = cluster.port().to_string();
    let output = Command::new("psql")
        .args(["-X", "-At", "-h", "127.0.0.1", "-p", &port])
        .args([
            "-U",
            volley_testkit::postgres::SUPERUSER,
            "-d",
            db,
            "-c",
            sql,
        ])
        .env("PGPASSWORD", cluster.password())
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .expect("psql is needed (apt-get install -y postgresql-client)");
    if output.status.success() {
        Ok(text(&output.stdout).trim().to_owned())
    } else {
        Err(text(&output.stderr))
    }
}

/// Starts `volley serve --config FILE --tick 1` (a cluster node, in the tests that use
/// one) with `envs` set; its info log goes to `log`.
pub fn spawn_serve(
    file: &std::path::Path,
    log: &std::path::Path,
    envs: &[(&str, &str)],
) -> std::process::Child {
    volley()
        .args([
            "serve",
            "--config",
            &file.display().to_string(),
            "--tick",
            "1",
        ])
        .env("VOLLEY_LOG", "info")
        .envs(envs.iter().copied())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

/// The Python packages the tests check Volley with, from PyPI: Standard Webhooks' own
/// signature check, an OpenAPI validator and Prometheus' text-format parser.
const PYTHON_PACKAGES: &[&str] = &[
    "standardwebhooks==1.1.0",
    "openapi-spec-validator>=0.7,<0.8",
    "prometheus-client>=0.20,<1",
];

/// The Python of a venv (built once, under the target folder) with [`PYTHON_PACKAGES`];
/// panics with what is missing when it cannot be built (python3-venv, PyPI).
pub fn python_venv() -> &'static std::path::Path {
    static PYTHON: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PYTHON.get_or_init(|| {
        let venv = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("test-venv");
        let python = venv.join("bin/python");
        if venv.join("ready").exists() {
            return python;
        }
        let building = venv.with_extension(format!("building-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&building);
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&building)
            .status()
            .unwrap_or_else(|e| panic!("python3 is needed (scripts/test-deps.sh): {e}"));
        assert!(
            made.success(),
            "python3 -m venv failed (python3-venv missing?)"
        );
        let pip = Command::new(building.join("bin/python"))
            .args(["-m", "pip", "install", "--quiet"])
            .args(PYTHON_PACKAGES)
            .status()
            .unwrap();
        assert!(
            pip.success(),
            "pip could not install {PYTHON_PACKAGES:?} from PyPI"
        );
        std::fs::write(building.join("ready"), "").unwrap();
        if std::fs::rename(&building, &venv).is_err() {
            // Another test process built it meanwhile.
            let _ = std::fs::remove_dir_all(&building);
        }
        python
    })
}
