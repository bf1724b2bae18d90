//! A throwaway PostgreSQL cluster for tests: `initdb` and `pg_ctl` from Debian's `postgresql`
//! package, in a temp folder, listening on a free port of 127.0.0.1 only (its unix socket in
//! the temp folder), stopped (`pg_ctl stop -m immediate`) and removed on drop.
//!
//! PostgreSQL refuses to run as root: when the tests run as root, the cluster runs as the
//! system user [`TEST_USER`] (created on first use) through `setpriv`. Every step is bounded
//! in time and fails with [`ClusterError`] naming the step; nothing is skipped silently.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The unprivileged system user the cluster runs as when the tests run as root.
pub const TEST_USER: &str = "volley-test";
/// The superuser of the cluster (password authentication over TCP).
pub const SUPERUSER: &str = "volley";
/// The database created in every cluster.
pub const DATABASE: &str = "volley";
/// The bound on one step (initdb, start, createdb, stop).
const STEP_LIMIT: Duration = Duration::from_secs(60);
/// Start attempts: the free port is found by binding port 0 and may be taken before the
/// server binds it.
const START_ATTEMPTS: usize = 3;

/// Why a throwaway cluster could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// No PostgreSQL server binaries under `/usr/lib/postgresql/*/bin`.
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin \
         (or $VOLLEY_PG_BIN): install Debian's `postgresql` package \
         (`apt-get install -y postgresql`, or run scripts/test-deps.sh)"
    )]
    NotInstalled,
    /// A step failed: what was run and what it said.
    #[error("test PostgreSQL cluster: {step} failed: {detail}")]
    Step {
        /// The step ("initdb", "pg_ctl start", "createdb", "useradd volley-test"…).
        step: String,
        /// Its exit status and output (last lines), or the OS error.
        detail: String,
    },
}

/// A running throwaway cluster with one database. Stopped and removed on drop.
pub struct TempCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    user: Option<(u32, u32)>,
    port: u16,
    password: String,
    /// `ssl=on` with the certificate and key copied into the folder.
    tls: bool,
}

impl std::fmt::Debug for TempCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TempCluster")
            .field("dir", &self.dir.path())
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl TempCluster {
    /// Creates and starts a cluster with database [`DATABASE`]; blocks up to a minute or
    /// two. Safe to call from several tests and processes at once (own folder, own port).
    pub fn start() -> Result<TempCluster, ClusterError> {
        TempCluster::start_with(None)
    }

    /// Like [`TempCluster::start`], with TLS on (`ssl=on`): the server presents the PEM
    /// certificate `cert` with its key `key` (both copied into the cluster's folder). Plain
    /// connections are still accepted; clients ask for TLS with `sslmode`.
    pub fn start_tls(cert: &Path, key: &Path) -> Result<TempCluster, ClusterError> {
        TempCluster::start_with(Some((cert, key)))
    }

    fn start_with(tls: Option<(&Path, &Path)>) -> Result<TempCluster, ClusterError> {
        let bin = server_bin()?;
        let user = if rustix::process::geteuid().is_root() {
            Some(test_user()?)
        } else {
            None
        };
        let dir = tempfile::Builder::new()
            .prefix("volley-pg-")
            .tempdir()
            .map_err(|e| step("create the temp folder", e))?;
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .map_err(|e| step("chown the temp folder to volley-test", e))?;
        }
        let password = password();
        let mut cluster = TempCluster {
            dir,
            bin,
            user,
            port: 0,
            password,
            tls: tls.is_some(),
        };
        if let Some((cert, key)) = tls {
            cluster.copy_private(cert, "server.crt")?;
            cluster.copy_private(key, "server.key")?;
        }
        cluster.initdb()?;
        cluster.start_server()?;
        cluster.run(
            "createdb",
            &[
                "-h",
                &cluster.socket_dir(),
                "-p",
                &cluster.port.to_string(),
                "-U",
                SUPERUSER,
                DATABASE,
            ],
        )?;
        Ok(cluster)
    }

    /// `postgresql://volley:<password>@127.0.0.1:<port>/volley`.
    pub fn url(&self) -> String {
        self.url_for(DATABASE)
    }

    /// The URL of another database of this cluster (see [`TempCluster::create_database`]).
    pub fn url_for(&self, database: &str) -> String {
        format!(
            "postgresql://{SUPERUSER}:{}@127.0.0.1:{}/{database}",
            self.password, self.port
        )
    }

    /// The URL without the password (for tests of `password_env` / `password_file`).
    pub fn url_without_password(&self) -> String {
        format!(
            "postgresql://{SUPERUSER}@127.0.0.1:{}/{DATABASE}",
            self.port
        )
    }

    /// The superuser's password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates another (empty) database and returns its URL: one cluster, a fresh database
    /// per test.
    pub fn create_database(&self, name: &str) -> Result<String, ClusterError> {
        self.run(
            "createdb",
            &[
                "-h",
                &self.socket_dir(),
                "-p",
                &self.port.to_string(),
                "-U",
                SUPERUSER,
                name,
            ],
        )?;
        Ok(self.url_for(name))
    }

    /// Starts a watcher process (detached with `setsid`) that stops the cluster and removes
    /// its folder once process `pid` has ended: for a cluster kept in a `static` (never
    /// dropped) that lives as long as a test binary, however that binary ends.
    pub fn stop_when_gone(&self, pid: u32) -> Result<(), ClusterError> {
        let data = self.data_dir();
        let pg_ctl = self.bin.join("pg_ctl").display().to_string();
        let as_user = match self.user {
            Some((uid, gid)) => format!("setpriv --reuid={uid} --regid={gid} --clear-groups -- "),
            None => String::new(),
        };
        let folder = self.dir.path().display().to_string();
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             {as_user}'{pg_ctl}' stop -D '{data}' -m immediate -w -t 30; rm -rf '{folder}'"
        );
        Command::new("setsid")
            .args(["sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| step("start the cluster's watcher (setsid sh)", e))?;
        Ok(())
    }

    /// The folder holding the cluster (its data, socket and log).
    pub fn folder(&self) -> &Path {
        self.dir.path()
    }

    /// Copies `from` into the folder as `name`, owned by the cluster's user, mode 0600.
    fn copy_private(&self, from: &Path, name: &str) -> Result<(), ClusterError> {
        let to = self.dir.path().join(name);
        let what = format!("copy {} into the cluster folder", from.display());
        std::fs::copy(from, &to).map_err(|e| step(&what, e))?;
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| step(&what, e))?;
        if let Some((uid, gid)) = self.user {
            std::os::unix::fs::chown(&to, Some(uid), Some(gid)).map_err(|e| step(&what, e))?;
        }
        Ok(())
    }

    fn data_dir(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn socket_dir(&self) -> String {
        self.dir.path().display().to_string()
    }

    fn initdb(&self) -> Result<(), ClusterError> {
        let pwfile = self.dir.path().join("pwfile");
        std::fs::write(&pwfile, &self.password).map_err(|e| step("write the password file", e))?;
        if let Some((uid, gid)) = self.user {
            std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid))
                .map_err(|e| step("chown the password file", e))?;
        }
        let _ = std::fs::set_permissions(&pwfile, std::fs::Permissions::from_mode(0o600));
        self.run(
            "initdb",
            &[
                "-D",
                &self.data_dir(),
                "-U",
                SUPERUSER,
                &format!("--pwfile={}", pwfile.display()),
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        )
    }

    /// Starts the server on a free port, trying another port if that one was taken meanwhile.
    fn start_server(&mut self) -> Result<(), ClusterError> {
        let mut last = None;
        for _ in 0..START_ATTEMPTS {
            self.port = free_port()?;
            let mut options = format!(
                "-c listen_addresses=127.0.0.1 -p {} -k {} -c max_connections=40 \
                 -c shared_buffers=32MB",
                self.port,
                self.socket_dir()
            );
            if self.tls {
                let dir = self.socket_dir();
                options.push_str(&format!(
                    " -c ssl=on -c ssl_cert_file={dir}/server.crt -c ssl_key_file={dir}/server.key"
                ));
            }
            let log = self.dir.path().join("server.log").display().to_string();
            let limit = STEP_LIMIT.as_secs().to_string();
            let data = self.data_dir();
            let args = [
                "start", "-D", &data, "-l", &log, "-w", "-t", &limit, "-o", &options,
            ];
            match self.run("pg_ctl", &args) {
                Ok(()) => return Ok(()),
                Err(error) => {
                    let server_log = std::fs::read_to_string(&log).unwrap_or_default();
                    if !server_log.contains("could not bind") {
                        return Err(with_log(error, &server_log));
                    }
                    last = Some(with_log(error, &server_log));
                }
            }
        }
        Err(last.unwrap_or(ClusterError::NotInstalled))
    }

    /// Runs the server binary `program` (as the test user when root), bounded by
    /// [`STEP_LIMIT`]; a failure carries its exit status and output.
    fn run(&self, program: &str, args: &[&str]) -> Result<(), ClusterError> {
        let path = self.bin.join(program);
        let mut command = match self.user {
            Some((uid, gid)) => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .arg("--clear-groups")
                    .arg("--")
                    .arg(&path);
                c
            }
            None => Command::new(&path),
        };
        command.args(args).current_dir(self.dir.path());
        run_bounded(&mut command, program)
    }
}

impl Drop for TempCluster {
    fn drop(&mut self) {
        if self.port == 0 {
            return;
        }
        let data = self.data_dir();
        if self
            .run(
                "pg_ctl",
                &["stop", "-D", &data, "-m", "immediate", "-w", "-t", "30"],
            )
            .is_err()
        {
            kill_postmaster(&self.dir.path().join("data/postmaster.pid"));
        }
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` with `initdb` and `pg_ctl` (or
/// `$VOLLEY_PG_BIN`).
fn server_bin() -> Result<PathBuf, ClusterError> {
    if let Some(dir) = std::env::var_os("VOLLEY_PG_BIN") {
        let dir = PathBuf::from(dir);
        return has_server(&dir)
            .then_some(dir)
            .ok_or(ClusterError::NotInstalled);
    }
    let entries =
        std::fs::read_dir("/usr/lib/postgresql").map_err(|_| ClusterError::NotInstalled)?;
    let mut found: Vec<(u32, PathBuf)> = entries
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            has_server(&bin).then_some((version, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, bin)| bin)
        .ok_or(ClusterError::NotInstalled)
}

fn has_server(bin: &Path) -> bool {
    bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()
}

/// The uid and gid of [`TEST_USER`], creating the system user when it does not exist (a
/// concurrent creation by another test process is fine).
fn test_user() -> Result<(u32, u32), ClusterError> {
    if let Some(ids) = user_ids() {
        return Ok(ids);
    }
    let mut useradd = Command::new("useradd");
    useradd.args([
        "--system",
        "--no-create-home",
        "--shell",
        "/usr/sbin/nologin",
        TEST_USER,
    ]);
    let created = run_bounded(&mut useradd, "useradd volley-test");
    match (user_ids(), created) {
        (Some(ids), _) => Ok(ids),
        (None, Err(error)) => Err(error),
        (None, Ok(())) => Err(step("look up volley-test", "not found after useradd")),
    }
}

fn user_ids() -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").arg(flag).arg(TEST_USER).output().ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

/// Runs `command` with its output captured, killed after [`STEP_LIMIT`].
fn run_bounded(command: &mut Command, what: &str) -> Result<(), ClusterError> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            step(
                what,
                format!("could not run {:?}: {e}", command.get_program()),
            )
        })?;
    // Drained on threads so a chatty child never blocks on a full pipe.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + STEP_LIMIT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!("still running after {STEP_LIMIT:?}: killed"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => break Err(e.to_string()),
        }
    };
    let output = format!(
        "{}{}",
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default()
    );
    match status {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(step(what, format!("{status}: {}", tail(&output)))),
        Err(reason) => Err(step(what, format!("{reason}: {}", tail(&output)))),
    }
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.trim().lines().collect();
    lines[lines.len().saturating_sub(8)..].join(" | ")
}

fn with_log(error: ClusterError, log: &str) -> ClusterError {
    match error {
        ClusterError::Step { step, detail } => ClusterError::Step {
            step,
            detail: format!("{detail}; server log: {}", tail(log)),
        },
        other => other,
    }
}

fn step(step: &str, detail: impl std::fmt::Display) -> ClusterError {
    ClusterError::Step {
        step: step.to_owned(),
        detail: detail.to_string(),
    }
}

fn free_port() -> Result<u16, ClusterError> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| step("find a free port", e))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| step("find a free port", e))
}

/// A random password: 24 hex digits from the OS.
fn password() -> String {
    let mut bytes = [0u8; 12];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if read.is_err() {
        // Not secret in any case: a loopback cluster that lives for one test.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes.copy_from_slice(&nanos.to_le_bytes()[..12]);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Last resort when `pg_ctl stop` failed: SIGKILL the postmaster named in its pid file.
fn kill_postmaster(pid_file: &Path) {
    let Ok(text) = std::fs::read_to_string(pid_file) else {
        return;
    };
    if let Some(pid) = text.lines().next().map(str::trim) {
        let _ = Command::new("kill").args(["-9", pid]).status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_clusters_run_side_by_side_and_are_removed_on_drop() {
        let a = TempCluster::start().unwrap();
        let b = TempCluster::start().unwrap();
        assert_ne!(a.port(), b.port());
        assert!(a.url().starts_with("postgresql://volley:"));
        assert!(a
            .url()
            .ends_with(&format!("@127.0.0.1:{}/volley", a.port())));
        let dir = a.dir.path().to_owned();
        drop(a);
        assert!(!dir.exists(), "{} left behind", dir.display());
        // The other one is still up.
        assert!(std::net::TcpStream::connect(("127.0.0.1", b.port())).is_ok());
        let url = b.create_database("second").unwrap();
        assert!(url.ends_with("/second"));
    }

    #[test]
    fn a_missing_installation_names_the_package() {
        let text = ClusterError::NotInstalled.to_string();
        assert!(text.contains("`postgresql` package"), "{text}");
    }
}
