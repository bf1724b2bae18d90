//! What the tasks of a test's thread log, kept for asserts.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::LIMIT;

/// The log lines written while a [`Logs::capture`] guard lives.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// Captures this thread's logs at `level` and above while the guard lives (so the
    /// tasks to watch must run on a current-thread runtime).
    pub fn capture(level: tracing::Level) -> (Logs, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(level)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// How many times `what` has been logged.
    pub fn count(&self, what: &str) -> usize {
        self.text().matches(what).count()
    }

    /// Waits (at most [`LIMIT`]) until `what` has been logged `n` times.
    pub async fn wait_for(&self, what: &str, n: usize) {
        let deadline = tokio::time::Instant::now() + LIMIT;
        while self.count(what) < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "never logged {n} × {what:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
