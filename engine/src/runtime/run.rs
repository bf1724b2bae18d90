//! One run of the send pipeline, for one or more campaigns sharing a store and a delivery
//! plan: the scheduler task, the compose threads, the connection tasks and the recorder,
//! wired together and taken down in order.
//!
//! ```text
//! scheduler ─jobs─► compose threads ─► destination queues ◄─ connections ─settled─► recorder ─► store
//!     ▲   (work-stealing pool)                                                        │
//!     └──────────────────────────── settled (after the flush) ◄───────────────────────┘
//! ```

use super::plan::DeliveryPlan;
use super::{Phase, Progress};
use crate::bounce::Classifier;
use crate::cluster::WorkFilter;
use crate::compose::{spawn_composers, ComposeStage, Stages};
use crate::delivery::{DeliveryContext, Settled, SourceCount};
use crate::dispatch::{
    CampaignLane, JobQueue, RunSummary, Scheduler, SchedulerEvent, SchedulerSetup, SchedulerView,
};
use crate::model::Counts;
use crate::recorder::{self, RelayUsage};
use crate::shaping::RateGate;
use crate::store::{OutcomePolicy, Store, StoreError};
use crate::Error;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Settled recipients waiting for the recorder, at most.
const SETTLED_QUEUE: usize = 8_192;
/// Events from connections waiting for the scheduler, at most.
const DELIVERY_EVENTS: usize = 1_024;

/// One campaign of a run.
pub(crate) struct Lane {
    /// The campaign id.
    pub(crate) id: String,
    /// Its priority.
    pub(crate) priority: u8,
    /// How its messages are built.
    pub(crate) stage: Arc<ComposeStage>,
    /// Retry and suppression policies for its outcomes.
    pub(crate) policy: OutcomePolicy,
    /// Where its counts go as they change.
    pub(crate) progress: Option<Arc<watch::Sender<Progress>>>,
    /// Its local-time sending window, when `[schedule]` sets one.
    pub(crate) window: Option<Arc<crate::config::SendWindow>>,
    /// Its warm-up, when `[warmup]` sets one.
    pub(crate) warmup: Option<Arc<crate::config::WarmupSettings>>,
    /// Its campaign-wide stop (`[bounces] max_bounce_rate`…), told its counts.
    pub(crate) guard: Option<Arc<super::stop::CampaignGuard>>,
}

impl recorder::Lane for Lane {
    fn id(&self) -> &str {
        &self.id
    }

    fn policy(&self) -> &OutcomePolicy {
        &self.policy
    }

    fn recorded(&self, counts: Counts) {
        if let Some(guard) = &self.guard {
            guard.note(&counts);
        }
        if let Some(progress) = &self.progress {
            progress.send_modify(|p| {
                p.counts = counts;
                p.phase = Phase::Sending;
            });
        }
    }
}

/// The campaigns of a run, by index.
#[derive(Default)]
pub(crate) struct Registry {
    lanes: RwLock<Vec<Arc<Lane>>>,
    /// Campaigns taken out of the run (paused, cancelled): their lanes stay (what was in
    /// flight is recorded through them) and a later submit takes their place.
    stopped: RwLock<std::collections::HashSet<String>>,
    /// The run's live view (destination names for the metrics).
    view: Arc<SchedulerView>,
}

impl Registry {
    /// The campaign at `index`.
    pub(crate) fn get(&self, index: usize) -> Option<Arc<Lane>> {
        self.lanes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(index)
            .cloned()
    }

    /// Adds a campaign; returns its index, or `None` when it is already part of the run.
    /// A campaign taken out of the run comes back at its old index.
    fn add(&self, lane: Lane) -> Option<usize> {
        let mut lanes = self.lanes.write().unwrap_or_else(|p| p.into_inner());
        if let Some(index) = lanes.iter().position(|l| l.id == lane.id) {
            let mut stopped = self.stopped.write().unwrap_or_else(|p| p.into_inner());
            if !stopped.remove(&lane.id) {
                return None;
            }
            lanes[index] = Arc::new(lane);
            return Some(index);
        }
        lanes.push(Arc::new(lane));
        Some(lanes.len() - 1)
    }
}

impl recorder::Lanes for Registry {
    type Lane = Lane;

    fn lane(&self, index: usize) -> Option<Arc<Lane>> {
        self.get(index)
    }

    fn destination_name(&self, id: usize) -> Option<String> {
        self.view
            .destinations
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|d| d.id == id)
            .map(|d| d.name.clone())
    }

    fn relay_name(&self, id: usize) -> Option<String> {
        self.view
            .destinations
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|d| d.id == id)
            .and_then(|d| d.relay.as_ref().map(|r| r.name.clone()))
    }
}

impl Stages for Registry {
    fn stage(&self, index: usize) -> Option<Arc<ComposeStage>> {
        self.get(index).map(|lane| lane.stage.clone())
    }
}

/// What other tasks (the control socket) use to reach a running send.
#[derive(Clone)]
pub(crate) struct RunHandle {
    registry: Arc<Registry>,
    events: mpsc::UnboundedSender<SchedulerEvent>,
    /// Live facts: destinations, campaigns still active, a relay pause.
    pub(crate) view: Arc<SchedulerView>,
    closed: Arc<AtomicBool>,
    /// The delivery path of this run (submitted campaigns must share it).
    pub(crate) plan_key: Arc<RwLock<String>>,
    /// The relays' caps and counts, of those that have caps (for the metrics).
    pub(crate) relay: Arc<RwLock<Vec<RelayUsage>>>,
}

impl RunHandle {
    /// True until the run starts finishing (campaigns can still join it).
    pub(crate) fn is_open(&self) -> bool {
        !self.closed.load(Ordering::Acquire)
    }

    /// Whether campaign `id` is part of the run (and not taken out of it).
    pub(crate) fn has(&self, id: &str) -> bool {
        let stopped = self
            .registry
            .stopped
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(id);
        !stopped
            && self
                .registry
                .lanes
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .any(|lane| lane.id == id)
    }

    /// Takes campaign `id` out of the running send (paused or cancelled over the API): the
    /// scheduler takes nothing more of it; what is in flight finishes. The receiver is told
    /// (or dropped, when the run ends first) once nothing of it is in flight; `None` when
    /// the run does not send it.
    pub(crate) fn stop(&self, id: &str) -> Option<tokio::sync::oneshot::Receiver<()>> {
        let index = {
            let lanes = self
                .registry
                .lanes
                .read()
                .unwrap_or_else(|p| p.into_inner());
            let mut stopped = self
                .registry
                .stopped
                .write()
                .unwrap_or_else(|p| p.into_inner());
            let index = lanes.iter().position(|lane| lane.id == id)?;
            if !stopped.insert(id.to_owned()) {
                return None;
            }
            index
        };
        let (done, told) = tokio::sync::oneshot::channel();
        self.events
            .send(SchedulerEvent::Stop {
                campaign: index,
                done,
            })
            .ok()?;
        Some(told)
    }

    /// Tells the running send that recipients were appended to its campaign at `index`
    /// in `domains` (the transactional lane); false when the run is over.
    pub(crate) fn arrived(&self, index: usize, domains: Vec<String>) -> bool {
        self.events
            .send(SchedulerEvent::Arrived {
                campaign: index,
                domains,
            })
            .is_ok()
    }

    /// Adds a loaded campaign to the running send; an error text when the run is over or
    /// already sends that campaign.
    pub(crate) fn submit(&self, lane: Lane) -> Result<(), String> {
        if self.closed.load(Ordering::Acquire) {
            return Err("the running send is finishing; run the command again in a moment".into());
        }
        let (id, priority, window) = (lane.id.clone(), lane.priority, lane.window.clone());
        let warmup = lane.warmup.clone();
        let index = self
            .registry
            .add(lane)
            .ok_or_else(|| format!("campaign {id} is already being sent by this process"))?;
        self.events
            .send(SchedulerEvent::Submit(CampaignLane {
                index,
                id,
                priority,
                window,
                warmup,
            }))
            .map_err(|_| {
                "the running send is finishing; run the command again in a moment".to_owned()
            })
    }
}

/// A run being set up: its handle exists before it starts, for the control socket.
pub(crate) struct Run {
    store: Store,
    registry: Arc<Registry>,
    events: mpsc::UnboundedSender<SchedulerEvent>,
    events_rx: mpsc::UnboundedReceiver<SchedulerEvent>,
    view: Arc<SchedulerView>,
    closed: Arc<AtomicBool>,
    plan_key: Arc<RwLock<String>>,
    relay: Arc<RwLock<Vec<RelayUsage>>>,
    /// On a cluster node: the domains it may send to (the run ends when those have no work
    /// left; the server starts another when the node is granted more).
    filter: Option<Arc<WorkFilter>>,
    /// Keep running with nothing to send, until cancelled (the transactional lane's run).
    keep_running: bool,
}

/// What a finished run did.
pub(crate) struct RunResult {
    /// Outcomes recorded.
    pub(crate) attempts: u64,
    /// Idle time, pause, blocked destinations.
    pub(crate) summary: RunSummary,
    /// Messages delivered from each `[mx] source_addresses` address.
    pub(crate) sources: Vec<SourceCount>,
}

/// How the run goes.
pub(crate) struct RunOptions {
    /// Stops the run cleanly.
    pub(crate) cancel: CancellationToken,
    /// See [`super::SendOptions::linger`].
    pub(crate) linger: Duration,
    /// Classifies failed replies.
    pub(crate) classifier: Arc<Classifier>,
    /// Where "now" comes from for due retries and sending windows.
    pub(crate) clock: crate::model::Clock,
}

impl Run {
    /// A run over `store`.
    pub(crate) fn new(store: Store) -> Run {
        let (events, events_rx) = mpsc::unbounded_channel();
        let view: Arc<SchedulerView> = Arc::default();
        Run {
            store,
            registry: Arc::new(Registry {
                lanes: RwLock::default(),
                stopped: RwLock::default(),
                view: view.clone(),
            }),
            events,
            events_rx,
            view,
            closed: Arc::default(),
            plan_key: Arc::default(),
            relay: Arc::default(),
            filter: None,
            keep_running: false,
        }
    }

    /// A run that keeps running with nothing to send until cancelled: the transactional
    /// lane's, which campaigns join as they come.
    pub(crate) fn serving(mut self) -> Run {
        self.keep_running = true;
        self
    }

    /// The run of a cluster node: it sends only to the domains `filter` opens.
    pub(crate) fn in_cluster(mut self, filter: Arc<WorkFilter>) -> Run {
        self.filter = Some(filter);
        self
    }

    /// Whether this is a cluster node's run (leases, not the local send lock, keep two
    /// nodes from sending to one domain at once).
    pub(crate) fn is_cluster(&self) -> bool {
        self.filter.is_some()
    }

    /// The handle other tasks reach the run with.
    pub(crate) fn handle(&self) -> RunHandle {
        RunHandle {
            registry: self.registry.clone(),
            events: self.events.clone(),
            view: self.view.clone(),
            closed: self.closed.clone(),
            plan_key: self.plan_key.clone(),
            relay: self.relay.clone(),
        }
    }

    /// Sends `first` (and whatever is submitted meanwhile) until done or cancelled.
    pub(crate) async fn execute(
        self,
        plan: DeliveryPlan,
        first: Lane,
        options: RunOptions,
    ) -> Result<RunResult, Error> {
        let first_lane = self.register_first(&plan.key, first)?;
        let threads = std::thread::available_parallelism().map_or(2, usize::from);
        let (jobs, workers) = JobQueue::new(threads);
        let (settled_tx, settled_rx) = mpsc::channel::<Settled>(SETTLED_QUEUE);
        let (deliveries_tx, deliveries_rx) = mpsc::channel(DELIVERY_EVENTS);
        let cancel = options.cancel.child_token();
        let relay_usage = plan.relay_usage;
        *self.relay.write().unwrap_or_else(|p| p.into_inner()) = relay_usage.clone();
        let ctx = Arc::new(DeliveryContext::new(
            settled_tx.clone(),
            deliveries_tx,
            options.classifier,
            cancel.clone(),
            RateGate::new(plan.global.max_message_rate.map(|r| r.per_second())),
            plan.mx,
            None,
        ));
        let composers = spawn_composers(workers, self.registry.clone(), settled_tx, cancel.clone())
            .map_err(|source| Error::Io {
                path: "compose thread".into(),
                source,
            })?;
        let quota_stop = CancellationToken::new();
        let quotas: Vec<_> = relay_usage
            .iter()
            .filter_map(|usage| super::relay_share::spawn(&self.store, usage, quota_stop.clone()))
            .collect();
        let recorder = self.spawn_recorder(settled_rx, relay_usage, cancel);
        let tracker = TaskTracker::new();
        let scheduler = Scheduler::new(
            SchedulerSetup {
                store: self.store.clone(),
                mode: plan.mode,
                ctx: ctx.clone(),
                jobs: jobs.clone(),
                deliveries: deliveries_rx,
                events: self.events_rx,
                max_connections: plan.global.max_connections,
                linger: options.linger,
                keep_running: self.keep_running,
                tracker: tracker.clone(),
                view: self.view.clone(),
                filter: self.filter.clone(),
                clock: options.clock,
            },
            vec![first_lane],
        )?;
        let scheduled = scheduler.run().await;
        self.closed.store(true, Ordering::Release);
        let attempts = wind_down(jobs, tracker, composers, ctx, recorder).await;
        quota_stop.cancel();
        for quota in quotas {
            let _ = quota.await;
        }
        let (attempts, sources) = attempts?;
        Ok(RunResult {
            attempts,
            summary: scheduled?,
            sources,
        })
    }

    /// Records the run's delivery path and registers its first campaign (index 0).
    fn register_first(&self, plan_key: &str, first: Lane) -> Result<CampaignLane, Error> {
        *self.plan_key.write().unwrap_or_else(|p| p.into_inner()) = plan_key.to_owned();
        let lane = CampaignLane {
            index: 0,
            id: first.id.clone(),
            priority: first.priority,
            window: first.window.clone(),
            warmup: first.warmup.clone(),
        };
        if self.registry.add(first).is_none() {
            return Err(Error::Remote("campaign registered twice".into()));
        }
        Ok(lane)
    }

    /// Starts the recorder on `settled`; when recording fails, `cancel` stops the send.
    fn spawn_recorder(
        &self,
        settled: mpsc::Receiver<Settled>,
        relay_usage: Vec<RelayUsage>,
        cancel: CancellationToken,
    ) -> tokio::task::JoinHandle<Result<u64, StoreError>> {
        let recording = recorder::record(
            self.store.clone(),
            self.registry.clone(),
            settled,
            self.events.clone(),
            relay_usage,
        );
        tokio::spawn(async move {
            let recorded = recording.await;
            if let Err(error) = &recorded {
                // Nothing more can be recorded (a full disk, a file-size limit): stop
                // sending instead of waiting for outcomes that will never be written.
                tracing::error!(%error, "recording outcomes failed: stopping the send");
                cancel.cancel();
            }
            recorded
        })
    }
}

/// Takes a finished run down in order: no more jobs, connections done, compose threads
/// joined, then the recorder drained (it ends when the last sender of outcomes is gone).
/// Returns the outcomes recorded and the deliveries per source address, or the failure that
/// ended delivery.
async fn wind_down(
    jobs: Arc<JobQueue>,
    tracker: TaskTracker,
    composers: Vec<std::thread::JoinHandle<()>>,
    ctx: Arc<DeliveryContext>,
    recorder: tokio::task::JoinHandle<Result<u64, StoreError>>,
) -> Result<(u64, Vec<SourceCount>), Error> {
    jobs.close();
    tracker.close();
    tracker.wait().await;
    for composer in composers {
        let _ = tokio::task::spawn_blocking(move || composer.join()).await;
    }
    let fatal = ctx.take_fatal();
    let sources = ctx
        .mx
        .as_ref()
        .map(|mx| mx.sources.counts())
        .unwrap_or_default();
    drop(ctx);
    let attempts = recorder.await.map_err(|e| Error::Io {
        path: "recorder task".into(),
        source: std::io::Error::other(e.to_string()),
    })??;
    match fatal {
        Some(error) => Err(error.into()),
        None => Ok((attempts, sources)),
    }
}
