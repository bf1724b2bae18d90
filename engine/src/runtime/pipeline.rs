//! `volley send`: load the list once, then run the pipeline (see `run.rs`) for the campaign,
//! answering the control socket meanwhile: status questions, and campaigns handed over by a
//! second `volley send` on the same store, which are sent alongside by priority.

use super::abtest::AbProgress;
use super::host::Host;
use super::load::load_list;
use super::plan::DeliveryPlan;
use super::run::{Lane, Run, RunOptions};
use super::stop::CampaignGuard;
use super::Campaign;
use crate::campaign::{Audience, RowError};
use crate::cluster::Node;
use crate::control;
use crate::dispatch::{Blocked, Pause};
use crate::model::{now_millis, Clock, Counts, Millis};
use crate::store::Store;
use crate::Error;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

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
    /// What the A/B wait is measured with: when the test share went out and when the
    /// verdict is due (default [`Clock::system`]; deliveries and retries keep the system's).
    pub clock: Clock,
}

impl Default for SendOptions {
    fn default() -> Self {
        Self {
            cancel: CancellationToken::new(),
            progress: None,
            linger: DEFAULT_LINGER,
            clock: Clock::system(),
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
    /// When the earliest still-deferred recipient is due (or a waiting one's window opens).
    pub next_due: Option<Millis>,
    /// When the earliest sending window of a recipient waiting for one opens
    /// (`counts.waiting` wait).
    pub next_window: Option<Millis>,
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
    /// Set when a relay cap stopped sending: what is left goes when the cap allows.
    pub paused: Option<Pause>,
    /// Destinations left suspended or unreachable with recipients still pending.
    pub blocked: Vec<Blocked>,
    /// Policy blocks this run saw: destinations whose circuit breaker tripped on replies
    /// saying the sender is blocked (lifted again by a probe, or not).
    pub blocks: Vec<crate::model::DestinationBlock>,
    /// Set when the campaign-wide stop ended the send (`[bounces] max_bounce_rate`,
    /// `max_complaint_rate`): the rate, its limit, the sample. The rest stays unsent.
    pub stopped: Option<crate::model::CampaignStop>,
    /// Where each destination stood at the end: throttling replies seen, suspension, the
    /// per-connection message limit learned.
    pub destinations: Vec<crate::model::DestinationStatus>,
    /// Where a test-then-winner A/B campaign stands.
    pub ab: Option<AbProgress>,
    /// Messages this run delivered from each `[mx] source_addresses` address (empty without
    /// source addresses).
    pub sources: Vec<crate::delivery::SourceCount>,
    /// Recipients left pending because their provider's warm-up ceiling for the day is
    /// used up (`[warmup]`), per key and provider.
    pub warmup: Vec<crate::dispatch::WarmupHeld>,
}

/// Loads the list (first run only) and sends to every pending recipient, retrying deferred
/// ones that fall due while it runs. Ends when nothing is pending and nothing is due (or
/// when what is left cannot be sent before the linger runs out: a destination suspended or
/// unreachable, a relay cap reached).
pub async fn send(campaign: &Campaign, options: SendOptions) -> Result<SendReport, Error> {
    let store = Store::open_at(&campaign.settings.store)?;
    if store.cluster().is_some() {
        return super::cluster_send::send(campaign, &store, options).await;
    }
    let run = Run::new(store.clone());
    let host = Host::new(
        store.clone(),
        options.cancel.clone(),
        Some(campaign.id().to_owned()),
        options.clock.clone(),
    );
    host.adopt(run.handle());
    let shutdown = CancellationToken::new();
    // sled is single-process: other commands reach this one through its control socket. A
    // database has none: every command reads it directly.
    let control_task = match campaign.settings.store.folder() {
        Some(folder) => {
            let listener = control::bind(folder)?;
            Some(tokio::spawn(control::serve(
                listener,
                host.handler(),
                shutdown.clone(),
            )))
        }
        None => None,
    };
    let result = load_and_send(campaign, &store, run, &options).await;
    let flushed = store.flush().await;
    shutdown.cancel();
    if let Some(task) = control_task {
        let _ = task.await;
    }
    host.wait().await;
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

/// Loads the list (first run only) and runs the pipeline for `campaign` with `run`.
pub(crate) async fn load_and_send(
    campaign: &Campaign,
    store: &Store,
    run: Run,
    options: &SendOptions,
) -> Result<SendReport, Error> {
    // A cluster node's leases keep nodes apart: it holds the local lock when it can (so a
    // `volley send` beside it is refused), and sends without it when another node on this
    // machine holds it.
    let lock = super::send_lock::lock(&campaign.settings.store, campaign.id());
    let _lock = match lock {
        Err(Error::AlreadySending { .. }) if run.is_cluster() => None,
        lock => Some(lock?),
    };
    let prepared = prepare(campaign, store, None, options).await?;
    let started = Instant::now();
    // The campaign-wide stop ends this run alone (as a cancel would), and one already past
    // its limit does not start.
    let stop = options.cancel.child_token();
    let guard = Arc::new(CampaignGuard::new(
        campaign.settings.bounces.stop,
        store.clone(),
        campaign.id(),
        stop.clone(),
    ));
    guard.note(&store.counts(campaign.id())?.unwrap_or_default());
    let mut run_options = run_options(campaign, options);
    run_options.cancel = stop;
    let result = run
        .execute(
            DeliveryPlan::for_campaign(campaign, store)?,
            lane(campaign, store, options, Some(guard.clone()))?,
            run_options,
        )
        .await?;
    let sent = Sent {
        attempts: result.attempts,
        elapsed: started.elapsed(),
        summary: result.summary,
        sources: result.sources,
    };
    let mut report = finish(campaign, store, prepared, sent, options)?;
    report.stopped = guard.stopped();
    Ok(report)
}

/// What a send found before sending.
pub(crate) struct Prepared {
    /// True when this process loaded the list.
    loaded_now: bool,
    /// The first invalid rows found while loading.
    row_errors: Vec<RowError>,
    /// True when the A/B verdict was taken now.
    decided_now: bool,
    /// Why the A/B remainder stays held, when it does.
    holding: Option<crate::ab::Reason>,
}

/// What the sending part of a send did.
pub(crate) struct Sent {
    /// Outcomes recorded.
    pub(crate) attempts: u64,
    /// Wall-clock time spent sending.
    pub(crate) elapsed: Duration,
    /// Idle time, pause, blocked destinations (of the last run, idle time of all).
    pub(crate) summary: crate::dispatch::RunSummary,
    /// Messages delivered from each source address (of all runs).
    pub(crate) sources: Vec<crate::delivery::SourceCount>,
}

/// Before sending: loads the list when the store lacks it (on a cluster node, in its turn:
/// one node loads, the others wait), publishes the campaign to the cluster, and takes the A/B
/// verdict when it is due.
pub(crate) async fn prepare(
    campaign: &Campaign,
    store: &Store,
    node: Option<&Node>,
    options: &SendOptions,
) -> Result<Prepared, Error> {
    let (loaded_now, row_errors) = load_in_turn(
        campaign,
        store,
        node,
        &options.cancel,
        options.progress.clone(),
    )
    .await?;
    super::cluster_docs::publish(campaign, store)?;
    let (decided_now, holding) = decide_ab(campaign, store, options.clock.now_millis()).await?;
    if let Some(progress) = &options.progress {
        progress.send_replace(Progress {
            phase: Phase::Sending,
            counts: store.counts(campaign.id())?.unwrap_or_default(),
        });
    }
    Ok(Prepared {
        loaded_now,
        row_errors,
        decided_now,
        holding,
    })
}

/// The lane `campaign` is sent in.
pub(crate) fn lane(
    campaign: &Campaign,
    store: &Store,
    options: &SendOptions,
    guard: Option<Arc<CampaignGuard>>,
) -> Result<Lane, Error> {
    Ok(Lane {
        id: campaign.id().to_owned(),
        priority: campaign.settings.priority,
        stage: campaign.compose_stage(store)?,
        policy: campaign.outcome_policy(),
        progress: options.progress.clone(),
        window: campaign.settings.window.clone().map(Arc::new),
        warmup: campaign.settings.warmup.clone().map(Arc::new),
        guard,
    })
}

/// How a run of `campaign` goes.
pub(crate) fn run_options(campaign: &Campaign, options: &SendOptions) -> RunOptions {
    RunOptions {
        cancel: options.cancel.clone(),
        linger: options.linger,
        classifier: campaign.classifier.clone(),
        clock: options.clock.clone(),
    }
}

/// After sending: marks a finished campaign's document done, releases the A/B remainder
/// when the verdict allows, and reports.
pub(crate) fn finish(
    campaign: &Campaign,
    store: &Store,
    prepared: Prepared,
    sent: Sent,
    options: &SendOptions,
) -> Result<SendReport, Error> {
    let interrupted = options.cancel.is_cancelled();
    if let Err(error) = super::cluster_docs::finish_if_done(store, campaign.id()) {
        tracing::warn!(campaign = campaign.id(), %error, "could not mark the campaign's document done");
    }
    let ab = super::abtest::after_send(
        campaign,
        store,
        interrupted,
        prepared.decided_now,
        prepared.holding,
        options.clock.now_millis(),
    )?;
    Ok(SendReport {
        ab,
        campaign: campaign.id().to_owned(),
        next_due: store.next_due(campaign.id())?,
        next_window: store.next_window(campaign.id())?,
        counts: store.counts(campaign.id())?.unwrap_or_default(),
        loaded_now: prepared.loaded_now,
        row_errors: prepared.row_errors,
        attempts: sent.attempts,
        elapsed: sent.elapsed,
        idle: sent.summary.idle,
        interrupted,
        paused: sent.summary.paused,
        blocked: sent.summary.blocked,
        blocks: sent.summary.blocks,
        stopped: None,
        destinations: sent.summary.destinations,
        sources: sent.sources,
        warmup: sent.summary.warmup,
    })
}

/// Loads the list unless the store has it; on a cluster node, only while holding the
/// campaign's load lease (one node loads, the others wait for it and load nothing).
pub(crate) async fn load_in_turn(
    campaign: &Campaign,
    store: &Store,
    node: Option<&Node>,
    cancel: &CancellationToken,
    progress: Option<Arc<watch::Sender<Progress>>>,
) -> Result<(bool, Vec<RowError>), Error> {
    let id = campaign.id();
    if let Some(node) = node {
        if !node.load_turn(id, cancel).await? {
            if cancel.is_cancelled() {
                return Ok((false, Vec::new()));
            }
            // Another node loaded it: only the tracked links are recorded here.
            return load_once(campaign, store, None).await;
        }
    }
    let loaded = load_once(campaign, store, progress).await;
    if let Some(node) = node {
        if let Err(error) = node.loaded(id).await {
            tracing::warn!(campaign = id, %error, "could not hand the load lease back; it runs out by itself");
        }
    }
    loaded
}

/// Takes a test-then-winner campaign's verdict when its wait is over (on a blocking thread);
/// returns whether it was decided now, and why the remainder stays held when it does.
async fn decide_ab(
    campaign: &Campaign,
    store: &Store,
    now: Millis,
) -> Result<(bool, Option<crate::ab::Reason>), Error> {
    let (settings, store) = (campaign.settings.clone(), store.clone());
    let (decided_now, holding) = super::blocking("A/B decision task", move || {
        super::abtest::decide_if_due(&settings, &store, now)
    })
    .await??;
    if let Some(reason) = &holding {
        tracing::warn!(
            campaign = campaign.id(),
            ?reason,
            "A/B test inconclusive: the remainder stays held"
        );
    }
    Ok((decided_now, holding))
}

/// Loads the list when the store does not have it yet, and records the campaign's tracked
/// links; returns whether it loaded now and the first invalid rows.
pub(crate) async fn load_once(
    campaign: &Campaign,
    store: &Store,
    progress: Option<Arc<watch::Sender<Progress>>>,
) -> Result<(bool, Vec<RowError>), Error> {
    let loaded_now = !store
        .campaign(campaign.id())?
        .is_some_and(|meta| meta.loaded);
    let row_errors = if loaded_now {
        load(campaign, store, progress).await?
    } else {
        Vec::new()
    };
    if let Some(meta) = campaign.tracking_meta() {
        store.set_tracking_meta(campaign.id(), &meta)?;
    }
    match &campaign.settings.topic {
        Some(topic) => store.set_campaign_topic(campaign.id(), topic)?,
        None => store.clear_campaign_topic(campaign.id())?,
    }
    if let Some(view) = campaign.view_meta() {
        store.set_view_meta(campaign.id(), view)?;
    }
    Ok((loaded_now, row_errors))
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
    let assigner = super::load::assigner_for(&campaign.settings);
    let filter = super::load::RowFilter::of(campaign);
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
    let started = std::time::Instant::now();
    let (rules, file) = (
        campaign.settings.audience.clone(),
        campaign.settings.file.clone(),
    );
    let loaded = super::blocking("loader task", move || {
        let audience = Audience::build(&store, &rules, &file, now_millis())?;
        let filter = filter.with_audience(audience);
        load_list(&recipients, &id, &store, assigner, &filter, &report)
    })
    .await??;
    let c = &loaded.counts;
    tracing::info!(
        campaign = campaign.id(),
        accepted = c.total,
        invalid = c.invalid,
        duplicate = c.duplicate,
        excluded = c.excluded,
        seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
        "list loaded"
    );
    Ok(loaded.row_errors)
}

impl SendReport {
    /// Delivery attempts per second of busy time (idle waits for retries left out).
    pub fn messages_per_second(&self) -> f64 {
        let busy = self.elapsed.saturating_sub(self.idle).as_secs_f64();
        self.attempts as f64 / busy.max(0.001)
    }
}
