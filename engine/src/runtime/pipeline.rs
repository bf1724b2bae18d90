//! The send pipeline: a feeder reading due recipients from the store, a pool of compose
//! threads (render, build MIME, DKIM-sign), the relay delivery workers, and one recorder that
//! writes outcomes back in small groups and flushes them (group commit).
//!
//! ```text
//! feeder thread ─job─► compose threads ─ready─► delivery tasks ─outcome─► recorder task ─► store
//!   (bounded)              (bounded)                 (bounded)           flush ≤ 100 ms
//! ```
//! Every channel is bounded, so memory stays flat however long the list is. The duplicate
//! window after a crash is what the recorder holds between a 250 reply and its flush: at most
//! one flush interval of deliveries.

use super::load::load_list;
use super::Campaign;
use crate::bounce::Verp;
use crate::campaign::RowError;
use crate::compose::Composer;
use crate::control::{self, Request, Response};
use crate::delivery::{self, ReadyMessage};
use crate::model::{add_duration, now_millis, Counts, Millis, Outcome, ReplyRecord};
use crate::smtp::Envelope;
use crate::store::{OutcomePolicy, OutcomeUpdate, RecipientKey, Store, StoredRecipient};
use crate::Error;
use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// A flush slower than this is logged (at debug level): it widens the duplicate window after
/// a crash.
const SLOW_FLUSH: Duration = Duration::from_millis(100);
/// Outcomes recorded in one batch at most.
const RECORD_BATCH: usize = 1_024;
/// Recipients read from the store per page.
const PAGE: usize = 512;
/// How often the queue pass looks for deferred recipients that have fallen due.
const RETRY_CHECK: Duration = Duration::from_secs(2);
/// Default for [`SendOptions::linger`].
pub const DEFAULT_LINGER: Duration = Duration::from_secs(60);

/// What the send is doing, for progress displays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading the list into the store.
    Loading,
    /// Sending to pending recipients.
    Sending,
    /// Finished.
    Done,
}

/// A snapshot of a running send.
#[derive(Debug, Clone)]
pub struct Progress {
    /// The current phase.
    pub phase: Phase,
    /// Counts by state (while loading: recipients accepted so far in `total`).
    pub counts: Counts,
}

/// How to run a send.
#[derive(Debug, Clone)]
pub struct SendOptions {
    /// Cancelled to stop cleanly: transactions in flight finish, state is flushed.
    pub cancel: CancellationToken,
    /// Receives progress snapshots.
    pub progress: Option<Arc<watch::Sender<Progress>>>,
    /// When nothing else is left, wait for deferred recipients due within this long instead
    /// of ending (default [`DEFAULT_LINGER`], one minute).
    pub linger: Duration,
}

impl Default for SendOptions {
    fn default() -> Self {
        Self {
            cancel: CancellationToken::new(),
            progress: None,
            linger: DEFAULT_LINGER,
        }
    }
}

/// What a send did.
#[derive(Debug, Clone)]
pub struct SendReport {
    /// The campaign id.
    pub campaign: String,
    /// Counts by state at the end.
    pub counts: Counts,
    /// When the earliest still-deferred recipient is due.
    pub next_due: Option<Millis>,
    /// True when this run loaded the list (false on a re-run).
    pub loaded_now: bool,
    /// The first invalid rows found while loading (this run only).
    pub row_errors: Vec<RowError>,
    /// Delivery attempts made by this run.
    pub attempts: u64,
    /// Wall-clock time of the delivery part of this run.
    pub elapsed: Duration,
    /// The part of `elapsed` spent idle, waiting for deferred recipients to fall due.
    pub idle: Duration,
    /// True when the run was cancelled before it finished.
    pub interrupted: bool,
}

/// Loads the list (first run only) and sends to every pending recipient, retrying deferred
/// ones that fall due while it runs. Ends when nothing is pending and nothing is due.
pub async fn send(campaign: &Campaign, options: SendOptions) -> Result<SendReport, Error> {
    let (session, connections) = campaign.relay_session(false)?;
    let store = Store::open(&campaign.settings.store)?;
    let shutdown = CancellationToken::new();
    let listener = control::bind(store.path())?;
    let handler = status_handler(store.clone(), campaign.id());
    let control_task = tokio::spawn(control::serve(listener, handler, shutdown.clone()));
    let result = load_and_send(campaign, &store, session, connections, &options).await;
    let flushed = store.flush().await;
    shutdown.cancel();
    let _ = control_task.await;
    let report = result?;
    flushed?;
    if let Some(progress) = &options.progress {
        progress.send_replace(Progress {
            phase: Phase::Done,
            counts: report.counts.clone(),
        });
    }
    Ok(report)
}

async fn load_and_send(
    campaign: &Campaign,
    store: &Store,
    session: crate::smtp::SessionConfig,
    connections: usize,
    options: &SendOptions,
) -> Result<SendReport, Error> {
    let loaded_now = !store
        .campaign(campaign.id())?
        .is_some_and(|meta| meta.loaded);
    let row_errors = if loaded_now {
        load(campaign, store, options.progress.clone()).await?
    } else {
        Vec::new()
    };
    if let Some(progress) = &options.progress {
        progress.send_replace(Progress {
            phase: Phase::Sending,
            counts: store.counts(campaign.id())?.unwrap_or_default(),
        });
    }
    let started = Instant::now();
    let (attempts, idle) = run(campaign, store, Arc::new(session), connections, options).await?;
    Ok(SendReport {
        campaign: campaign.id().to_owned(),
        next_due: store.next_due(campaign.id())?,
        counts: store.counts(campaign.id())?.unwrap_or_default(),
        loaded_now,
        row_errors,
        attempts,
        elapsed: started.elapsed(),
        idle,
        interrupted: options.cancel.is_cancelled(),
    })
}

/// Loads the list on a blocking thread; returns the first invalid rows.
async fn load(
    campaign: &Campaign,
    store: &Store,
    progress: Option<Arc<watch::Sender<Progress>>>,
) -> Result<Vec<RowError>, Error> {
    let (recipients, id, store) = (
        campaign.settings.recipients.clone(),
        campaign.id().to_owned(),
        store.clone(),
    );
    let report = move |accepted| {
        if let Some(progress) = &progress {
            progress.send_replace(Progress {
                phase: Phase::Loading,
                counts: Counts {
                    total: accepted,
                    ..Counts::default()
                },
            });
        }
    };
    report(0);
    let loaded = tokio::task::spawn_blocking(move || load_list(&recipients, &id, &store, &report))
        .await
        .map_err(|e| Error::Io {
            path: "loader task".into(),
            source: std::io::Error::other(e.to_string()),
        })??;
    let c = &loaded.counts;
    tracing::info!(
        campaign = campaign.id(),
        accepted = c.total,
        invalid = c.invalid,
        duplicate = c.duplicate,
        "list loaded"
    );
    Ok(loaded.row_errors)
}

fn status_handler(store: Store, campaign: &str) -> control::Handler {
    let own = campaign.to_owned();
    Arc::new(move |request| match request {
        Request::Status { campaign } => {
            match (store.counts(&campaign), store.next_due(&campaign)) {
                (Ok(Some(counts)), Ok(next_due)) => Response::Status {
                    counts,
                    next_due,
                    pid: std::process::id(),
                },
                (Ok(None), _) if campaign == own => Response::Error {
                    message: format!("campaign {campaign} is still being loaded"),
                },
                (Ok(None), _) => Response::Error {
                    message: format!(
                        "campaign {campaign} is not in this store (this process sends {own})"
                    ),
                },
                (Err(e), _) | (_, Err(e)) => Response::Error {
                    message: e.to_string(),
                },
            }
        }
    })
}

/// Runs the stages until done or cancelled; returns the number of attempts made and the time
/// spent waiting for retries.
async fn run(
    campaign: &Campaign,
    store: &Store,
    session: Arc<crate::smtp::SessionConfig>,
    connections: usize,
    options: &SendOptions,
) -> Result<(u64, Duration), Error> {
    let cancel = options.cancel.child_token();
    let in_flight = Arc::new(InFlight::default());
    let (job_tx, job_rx) = crossbeam_channel::bounded::<StoredRecipient>(1_024);
    let (ready_tx, ready_rx) = async_channel::bounded::<ReadyMessage>(512);
    let (outcome_tx, outcome_rx) = mpsc::channel::<OutcomeUpdate>(8_192);

    let feeder = {
        let (store, campaign_id, in_flight, cancel) = (
            store.clone(),
            campaign.id().to_owned(),
            in_flight.clone(),
            cancel.clone(),
        );
        let linger = options.linger;
        std::thread::Builder::new()
            .name("volley-feeder".into())
            .spawn(move || feed(&store, &campaign_id, &job_tx, &in_flight, &cancel, linger))
            .map_err(|source| Error::Io {
                path: "feeder thread".into(),
                source,
            })?
    };
    let composers = spawn_composers(campaign, store, job_rx, ready_tx, outcome_tx.clone())?;
    let recorder = tokio::spawn(record(
        store.clone(),
        campaign.id().to_owned(),
        campaign.outcome_policy(),
        outcome_rx,
        in_flight.clone(),
        options.progress.clone(),
    ));
    let delivered = delivery::deliver_via_relay(
        session,
        connections,
        ready_rx,
        outcome_tx,
        campaign.classifier.clone(),
        cancel.clone(),
    )
    .await;
    if delivered.is_err() {
        cancel.cancel();
    }
    in_flight.wake();
    let feed_result = tokio::task::spawn_blocking(move || feeder.join()).await;
    for composer in composers {
        let _ = tokio::task::spawn_blocking(move || composer.join()).await;
    }
    let recorded = recorder.await.map_err(|e| Error::Io {
        path: "recorder task".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    delivered?;
    let attempts = recorded?;
    if let Ok(Ok(Err(error))) = feed_result {
        return Err(error.into());
    }
    Ok((attempts, in_flight.idle()))
}

/// Counts jobs handed out and outcomes recorded, so the feeder can wait for a pass to drain;
/// also keeps the time spent idle waiting for retries, which throughput figures leave out.
#[derive(Default)]
struct InFlight {
    state: Mutex<(u64, u64)>,
    changed: Condvar,
    idle: Mutex<Duration>,
}

impl InFlight {
    fn waited(&self, duration: Duration) {
        *self.idle.lock().unwrap_or_else(|p| p.into_inner()) += duration;
    }

    fn idle(&self) -> Duration {
        *self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fed(&self) {
        self.lock().0 += 1;
    }

    fn done(&self, n: u64) {
        self.lock().1 += n;
        self.changed.notify_all();
    }

    fn wake(&self) {
        self.changed.notify_all();
    }

    /// Blocks until every job fed has an outcome, or `cancel` fires.
    fn drain(&self, cancel: &CancellationToken) {
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
fn feed(
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

/// The envelope sender of each message.
#[derive(Clone)]
enum ReturnPath {
    /// The From address for every message.
    Fixed(String),
    /// `bounces+TOKEN@domain`, one per recipient.
    Verp(Box<Verp>, u32),
}

impl ReturnPath {
    fn for_campaign(campaign: &Campaign, store: &Store) -> Result<ReturnPath, Error> {
        let Some(domain) = &campaign.settings.bounces.domain else {
            return Ok(ReturnPath::Fixed(campaign.settings.from.address.clone()));
        };
        let number = store
            .campaign(campaign.id())?
            .map(|meta| meta.number)
            .ok_or_else(|| Error::NotLoaded {
                campaign: campaign.id().to_owned(),
                store: store.path().to_owned(),
            })?;
        Ok(ReturnPath::Verp(
            Box::new(Verp::new(&store.secret()?, domain)),
            number,
        ))
    }

    fn for_recipient(&self, key: &RecipientKey) -> String {
        match self {
            ReturnPath::Fixed(address) => address.clone(),
            ReturnPath::Verp(verp, number) => verp.return_path(*number, key.seq),
        }
    }
}

/// Everything a compose thread needs.
struct ComposeStage {
    composer: Arc<Composer>,
    columns: Arc<Vec<String>>,
    return_path: ReturnPath,
    store: Store,
}

impl ComposeStage {
    /// Builds the message for one recipient, or the outcome that replaces sending it.
    fn prepare(&self, job: StoredRecipient) -> Result<ReadyMessage, OutcomeUpdate> {
        let address = &job.record.email;
        match self.store.suppression(address) {
            Ok(Some(entry)) => {
                let reply =
                    ReplyRecord::local(format!("suppressed: {} ({})", entry.reason, entry.detail));
                return Err(OutcomeUpdate {
                    key: job.key,
                    outcome: Outcome::Suppressed { reply },
                    message_id: None,
                });
            }
            Ok(None) => {}
            Err(error) => tracing::error!(%error, "could not read the suppression list"),
        }
        match self
            .composer
            .compose(address, &self.columns, &job.record.values)
        {
            Ok(composed) => Ok(ReadyMessage {
                envelope: Envelope {
                    mail_from: self.return_path.for_recipient(&job.key),
                    rcpt_to: vec![job.record.email],
                },
                key: job.key,
                bytes: composed.bytes,
                message_id: composed.message_id,
            }),
            Err(error) => {
                tracing::error!(%address, %error, "message could not be composed");
                let reply = ReplyRecord::local(format!("message could not be composed: {error}"));
                Err(OutcomeUpdate {
                    key: job.key,
                    outcome: Outcome::Bounced { reply },
                    message_id: None,
                })
            }
        }
    }
}

/// One compose thread per core: check suppression, render, build and sign, then queue for
/// delivery.
fn spawn_composers(
    campaign: &Campaign,
    store: &Store,
    jobs: crossbeam_channel::Receiver<StoredRecipient>,
    ready: async_channel::Sender<ReadyMessage>,
    outcomes: mpsc::Sender<OutcomeUpdate>,
) -> Result<Vec<std::thread::JoinHandle<()>>, Error> {
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let stage = Arc::new(ComposeStage {
        composer: campaign.composer.clone(),
        columns: Arc::new(campaign.columns.clone()),
        return_path: ReturnPath::for_campaign(campaign, store)?,
        store: store.clone(),
    });
    (0..threads)
        .map(|n| {
            let (jobs, ready, outcomes, stage) =
                (jobs.clone(), ready.clone(), outcomes.clone(), stage.clone());
            std::thread::Builder::new()
                .name(format!("volley-compose-{n}"))
                .spawn(move || {
                    for job in jobs {
                        let sent = match stage.prepare(job) {
                            Ok(message) => ready.send_blocking(message).is_ok(),
                            Err(update) => outcomes.blocking_send(update).is_ok(),
                        };
                        if !sent {
                            return;
                        }
                    }
                })
                .map_err(|source| Error::Io {
                    path: "compose thread".into(),
                    source,
                })
        })
        .collect()
}

/// The recorder: group commit. It waits for an outcome, takes every other outcome already
/// waiting (up to [`RECORD_BATCH`]), writes them in one batch and flushes; outcomes that
/// arrive during a flush form the next group. The window between a server's 250 and its
/// durable record is therefore about one flush (flushes slower than [`SLOW_FLUSH`] are
/// logged). Returns the number of outcomes recorded.
async fn record(
    store: Store,
    campaign: String,
    policy: OutcomePolicy,
    mut outcomes: mpsc::Receiver<OutcomeUpdate>,
    in_flight: Arc<InFlight>,
    progress: Option<Arc<watch::Sender<Progress>>>,
) -> Result<u64, crate::store::StoreError> {
    let mut group: Vec<OutcomeUpdate> = Vec::with_capacity(RECORD_BATCH);
    let mut recorded = 0u64;
    while let Some(first) = outcomes.recv().await {
        group.push(first);
        while group.len() < RECORD_BATCH {
            match outcomes.try_recv() {
                Ok(update) => group.push(update),
                Err(_) => break,
            }
        }
        let counts = store.record_outcomes(&campaign, &policy, &group, now_millis())?;
        let flush_started = Instant::now();
        store.flush().await?;
        if flush_started.elapsed() > SLOW_FLUSH {
            tracing::debug!(
                millis = flush_started.elapsed().as_millis() as u64,
                "slow store flush"
            );
        }
        let n = group.len() as u64;
        recorded += n;
        group.clear();
        in_flight.done(n);
        if let Some(progress) = &progress {
            progress.send_modify(|p| p.counts = counts);
        }
    }
    Ok(recorded)
}

impl SendReport {
    /// Delivery attempts per second of busy time (idle waits for retries left out).
    pub fn messages_per_second(&self) -> f64 {
        let busy = self.elapsed.saturating_sub(self.idle).as_secs_f64();
        self.attempts as f64 / busy.max(0.001)
    }
}
