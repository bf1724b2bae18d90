//! The feeder: reads due recipients from the store and hands them to the compose threads,
//! one pass over the pending queue, then the retries that fall due.

use super::pipeline::{PAGE, RETRY_CHECK};
use crate::model::{add_duration, now_millis, Millis};
use crate::store::{Store, StoredRecipient};
use std::collections::HashSet;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Counts jobs handed out and outcomes recorded, so the feeder can wait for a pass to drain;
/// also keeps the time spent idle waiting for retries, which throughput figures leave out.
#[derive(Default)]
pub(crate) struct InFlight {
    state: Mutex<(u64, u64)>,
    changed: Condvar,
    idle: Mutex<Duration>,
}

impl InFlight {
    pub(crate) fn waited(&self, duration: Duration) {
        *self.idle.lock().unwrap_or_else(|p| p.into_inner()) += duration;
    }

    pub(crate) fn idle(&self) -> Duration {
        *self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn fed(&self) {
        self.lock().0 += 1;
    }

    pub(crate) fn done(&self, n: u64) {
        self.lock().1 += n;
        self.changed.notify_all();
    }

    pub(crate) fn wake(&self) {
        self.changed.notify_all();
    }

    /// Blocks until every job fed has an outcome, or `cancel` fires.
    pub(crate) fn drain(&self, cancel: &CancellationToken) {
        let mut state = self.lock();
        while state.0 > state.1 && !cancel.is_cancelled() {
            state = match self.changed.wait_timeout(state, Duration::from_millis(50)) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, u64)> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The feeder: one pass over the pending queue (with the retries that fall due meanwhile
/// mixed in), then passes over due retries until none is due within [`SendOptions::linger`].
pub(crate) fn feed(
    store: &Store,
    campaign: &str,
    jobs: &crossbeam_channel::Sender<StoredRecipient>,
    in_flight: &InFlight,
    cancel: &CancellationToken,
    linger: Duration,
) -> Result<(), crate::store::StoreError> {
    let mut after = None;
    // Retries handed out during the queue pass: still in the retry index until recorded.
    let mut retried = HashSet::new();
    let mut last_retry_check = Instant::now();
    loop {
        let page = store.pending(campaign, after.as_ref(), PAGE)?;
        let Some(last) = page.last() else { break };
        after = Some(last.key.clone());
        if !hand_out(page, jobs, in_flight, cancel) {
            return Ok(());
        }
        if last_retry_check.elapsed() >= RETRY_CHECK {
            last_retry_check = Instant::now();
            let due: Vec<_> = store
                .due(campaign, now_millis(), PAGE)?
                .into_iter()
                .filter(|r| retried.insert(r.key.clone()))
                .collect();
            if !hand_out(due, jobs, in_flight, cancel) {
                return Ok(());
            }
        }
    }
    in_flight.drain(cancel);
    loop {
        let due = store.due(campaign, now_millis(), PAGE)?;
        if cancel.is_cancelled() {
            return Ok(());
        }
        if due.is_empty() {
            match store.next_due(campaign)? {
                Some(at) if at <= add_duration(now_millis(), linger) => {
                    let started = Instant::now();
                    wait_until(at, cancel);
                    in_flight.waited(started.elapsed());
                    continue;
                }
                _ => return Ok(()),
            }
        }
        if !hand_out(due, jobs, in_flight, cancel) {
            return Ok(());
        }
        in_flight.drain(cancel);
    }
}

/// Sleeps until `at` (epoch milliseconds) or until cancelled.
fn wait_until(at: Millis, cancel: &CancellationToken) {
    while !cancel.is_cancelled() {
        let now = now_millis();
        if now >= at {
            return;
        }
        std::thread::sleep(Duration::from_millis((at - now).min(50)));
    }
}

/// Sends a page of jobs; false when the pipeline is closing.
fn hand_out(
    page: Vec<StoredRecipient>,
    jobs: &crossbeam_channel::Sender<StoredRecipient>,
    in_flight: &InFlight,
    cancel: &CancellationToken,
) -> bool {
    for job in page {
        if cancel.is_cancelled() {
            return false;
        }
        in_flight.fed();
        if jobs.send(job).is_err() {
            return false;
        }
    }
    true
}
