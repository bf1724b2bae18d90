//! The send pipeline: a feeder reading due recipients from the store, a pool of compose
//! threads (render, build MIME, DKIM-sign), the relay delivery workers, and one recorder that
//! writes outcomes back in small groups and flushes them (group commit).
//!
//! ```text
//! feeder thread ─job─► compose threads ─ready─► delivery tasks ─outcome─► recorder task ─► store
//!  (feeder.rs)  (bounded)  (composers.rs)  (bounded)          (bounded)   group commit
//! ```
//! Every channel is bounded, so memory stays flat however long the list is. The duplicate
//! window after a crash is what the recorder holds between a 250 reply and its flush: about
//! one flush's worth of deliveries.

use super::composers::spawn_composers;
use super::feeder::{feed, InFlight};
use super::load::load_list;
use super::Campaign;
use crate::campaign::RowError;
use crate::control::{self, Request, Response};
use crate::delivery::{self, ReadyMessage};
use crate::model::{now_millis, Counts, Millis};
use crate::store::{OutcomePolicy, OutcomeUpdate, Store, StoredRecipient};
use crate::Error;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// A flush slower than this is logged (at debug level): it widens the duplicate window after
/// a crash.
const SLOW_FLUSH: Duration = Duration::from_millis(100);
/// Outcomes recorded in one batch at most.
const RECORD_BATCH: usize = 1_024;
/// Recipients read from the store per page.
pub(crate) const PAGE: usize = 512;
/// How often the queue pass looks for deferred recipients that have fallen due.
pub(crate) const RETRY_CHECK: Duration = Duration::from_secs(2);
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
    // Delivery is over (done, or failed): nothing will take more work, so the feeder must
    // not wait for outcomes of messages that can no longer be sent.
    cancel.cancel();
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
