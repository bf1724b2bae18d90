//! A receiving server nobody here wrote: one of the repository's `scripts/*.py` servers on
//! Debian's Python and its aiosmtpd. Each script takes a log file as its first argument,
//! prints `listening PORT` once it accepts connections, and writes one line per event to the
//! log: the event's name, a space, and the rest (`accepted user@example.com`).
//!
//! A test helper: like `assert!`, it panics when the server cannot start, so a machine
//! without Python's aiosmtpd fails the test loudly, naming the Debian package.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Debian's Python, where the python3-aiosmtpd package installs the module.
pub const PYTHON: &str = "/usr/bin/python3";

/// A running `scripts/NAME.py` server; killed on drop.
pub struct ScriptServer {
    child: Child,
    /// The loopback port it listens on.
    pub port: u16,
    log: PathBuf,
}

impl ScriptServer {
    /// Starts `scripts/<script>` with `log` and then `args` as its arguments and waits for
    /// its `listening PORT` line. Its stderr is shown unless `quiet` (for a script whose
    /// errors would print a secret the test uses).
    pub fn start(script: &str, log: &Path, args: &[&str], quiet: bool) -> ScriptServer {
        require_aiosmtpd();
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../scripts")
            .join(script);
        let mut child = Command::new(PYTHON)
            .arg(&path)
            .arg(log)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(if quiet {
                Stdio::null()
            } else {
                Stdio::inherit()
            })
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
        let mut first = String::new();
        if let Some(stdout) = child.stdout.take() {
            // Ends at the first line or when the script exits (EOF).
            let _ = BufReader::new(stdout).read_line(&mut first);
        }
        let port = first
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{script} did not start: {first:?}"));
        ScriptServer {
            child,
            port,
            log: log.to_owned(),
        }
    }

    /// Every logged event, in order, as (name, rest of the line).
    pub fn log(&self) -> Vec<(String, String)> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|line| {
                let (name, rest) = line.split_once(' ').unwrap_or((line, ""));
                (name.to_owned(), rest.to_owned())
            })
            .collect()
    }

    /// The rest of each logged line whose event is `event`, in order.
    pub fn events(&self, event: &str) -> Vec<String> {
        self.log()
            .into_iter()
            .filter_map(|(name, rest)| (name == event).then_some(rest))
            .collect()
    }

    /// Kills it (SIGKILL) and waits for it: a server that goes away mid-send.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ScriptServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Panics, naming the Debian package, unless Debian's Python can import aiosmtpd.
fn require_aiosmtpd() {
    let probe = Command::new(PYTHON)
        .args(["-c", "import aiosmtpd"])
        .output()
        .unwrap_or_else(|e| {
            panic!("{PYTHON} is needed for this test (Debian: apt-get install python3): {e}")
        });
    assert!(
        probe.status.success(),
        "Python's aiosmtpd is needed for this test (Debian: apt-get install python3-aiosmtpd): {}",
        String::from_utf8_lossy(&probe.stderr)
    );
}
