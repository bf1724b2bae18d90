//! Dispatch, the delivery scheduler: one task that decides what is sent when. It owns the
//! campaigns being sent (each a round-robin over its recipient domains), the routing table
//! (domain → destination) and the in-flight budget, and it is fed by events: outcomes
//! recorded, connections ended, lookups answered, campaigns submitted (Stalwart's
//! queue-manager shape: other tasks send events, none locks the schedule).
//!
//! Each pass it hands per-destination batches of recipients to the compose pool
//! ([`JobQueue`]) within each destination's share of the budget and its limits, most urgent
//! campaign first (a destination that an urgent campaign has work for takes nothing from a
//! less urgent one in that pass), and opens connections where messages wait. Recipients whose
//! domain DNS rules out (no such domain, null MX) are bounced and those whose lookup failed or
//! whose destination cannot be reached are deferred, without composing them.
//!
//! ```text
//! store ─pages─► scheduler ─jobs─► compose pool ─► destination queues ◄─ connections
//!                    ▲                                                      │
//!                    └───────── settled (via the recorder) ◄────────────────┘
//! ```

mod blocks;
mod feed;
mod jobs;
mod leases;
mod relays;
mod routes;
mod warmup;
mod window;

pub use jobs::{JobQueue, JobWorker};
pub use routes::{Mode, RelayRoute};
pub use warmup::WarmupHeld;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Semaphore};
use tokio_util::task::TaskTracker;

use feed::CampaignFeed;
use leases::granted;
use routes::{LocalFailure, RouteState, Routing};

use crate::cluster::WorkFilter;
use crate::delivery::{
    local_outcome, run_connection, DeliveryContext, DeliveryEvent, Destination, Resolved, Settled,
    LANES,
};
use crate::model::{add_duration, now_millis, Clock, Millis};
use crate::store::{OutcomeUpdate, RecipientKey, Store, StoreError, StoredRecipient};

/// Messages held in memory at once (composing, queued or being sent, not yet recorded).
const MAX_IN_FLIGHT: usize = 2_048;
/// Recipients handed out per destination visit.
const BATCH: usize = 64;
/// Per destination and connection allowed, messages in flight.
const IN_FLIGHT_PER_CONNECTION: usize = 64;
/// Another connection opens when more than this many messages per open connection wait.
const READY_PER_CONNECTION: usize = 8;
/// How often deferred recipients that fell due are looked for.
const RETRY_CHECK: Duration = Duration::from_secs(2);
/// How often the scheduler looks again while messages are in flight and no event came.
const BUSY_LOOK: Duration = Duration::from_millis(50);
/// Deferred recipients read per look.
const RETRY_PAGE: usize = 512;

/// One recipient for the compose pool: render, sign, queue at its destination.
#[derive(Debug)]
pub struct ComposeJob {
    /// The campaign's index in the running send.
    pub campaign: usize,
    /// Its campaign's priority.
    pub priority: u8,
    /// Where the message goes.
    pub destination: Arc<Destination>,
    /// The recipient.
    pub recipient: StoredRecipient,
}

/// A campaign for the scheduler: its index in the running send, id and priority.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignLane {
    /// Its index (the same in the compose stage and the recorder).
    pub index: usize,
    /// The campaign id.
    pub id: String,
    /// 1 (most urgent) to 5.
    pub priority: u8,
    /// Its local-time sending window (`[schedule] window` / `send_at`), when it has one.
    pub window: Option<Arc<crate::config::SendWindow>>,
    /// Its warm-up (`[warmup]`), when it has one.
    pub warmup: Option<Arc<crate::config::WarmupSettings>>,
}

/// What the scheduler is told by the rest of the pipeline.
#[derive(Debug)]
pub enum SchedulerEvent {
    /// The recorder has written these (outcomes) or let them go (released).
    Settled(Vec<Settled>),
    /// A campaign to send alongside the others (loaded already).
    Submit(CampaignLane),
    /// A campaign to take out of the run (paused or cancelled over the API): its feed stops
    /// taking at once; `done` is told when none of its messages is in flight any more.
    Stop {
        /// The campaign's index in the running send.
        campaign: usize,
        /// Told (or dropped, when the run ends first) once nothing of it is in flight.
        done: tokio::sync::oneshot::Sender<()>,
    },
    /// Recipients were appended to a running campaign (by its index) in these domains (the
    /// transactional lane): their queues are read again at once.
    Arrived {
        /// The campaign's index in the running send.
        campaign: usize,
        /// The domains of the new recipients.
        domains: Vec<String>,
    },
}

/// A relay cap that stopped sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pause {
    /// When sending may go on (epoch milliseconds).
    pub resume_at: Millis,
    /// The campaign-file key of the cap.
    pub cap: &'static str,
    /// Its value.
    pub limit: u32,
}

/// A destination that could not be sent to before the run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    /// The destination.
    pub destination: String,
    /// Why: `suspended` (throttled repeatedly), `policy block` (its circuit breaker tripped
    /// on replies saying the sender is blocked) or `unreachable`.
    pub why: &'static str,
    /// When it may be tried again (epoch milliseconds).
    pub until: Millis,
    /// The policy block, for `policy block`: the replies, how many, when it tripped.
    pub block: Option<Box<crate::model::DestinationBlock>>,
}

/// How a run went, beyond the counts the store keeps.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunSummary {
    /// Time spent with nothing to do but wait for deferred recipients to fall due.
    pub idle: Duration,
    /// Set when a relay cap stopped sending before everything went.
    pub paused: Option<Pause>,
    /// Destinations left suspended or unreachable with recipients still pending.
    pub blocked: Vec<Blocked>,
    /// Where each destination stood at the end (throttling seen, limits learned).
    pub destinations: Vec<crate::model::DestinationStatus>,
    /// Recipients held back because their provider's warm-up ceiling for the day is used up.
    pub warmup: Vec<WarmupHeld>,
    /// Policy blocks seen in this run (their breakers tripped), lifted or not.
    pub blocks: Vec<crate::model::DestinationBlock>,
}

/// Live facts for status displays, shared with the control socket.
#[derive(Debug, Default)]
pub struct SchedulerView {
    /// Every destination of the run.
    pub destinations: RwLock<Vec<Arc<Destination>>>,
    /// Campaign ids still being worked on.
    pub active: Mutex<HashSet<String>>,
    /// Set while a relay cap pauses sending.
    pub paused: Mutex<Option<Pause>>,
}

/// How to build a scheduler.
pub struct SchedulerSetup {
    /// The store (read here, but for learned per-connection limits; outcomes are written by
    /// the recorder).
    pub store: Store,
    /// Relay or direct to MX.
    pub mode: Mode,
    /// What connections share.
    pub ctx: Arc<DeliveryContext>,
    /// The compose pool's queue.
    pub jobs: Arc<JobQueue>,
    /// Events from connections.
    pub deliveries: mpsc::Receiver<DeliveryEvent>,
    /// Events from the recorder and the runtime. Unbounded, yet bounded by construction: each
    /// `Settled` event answers one message the scheduler let into flight.
    pub events: mpsc::UnboundedReceiver<SchedulerEvent>,
    /// Connections open at once over all destinations.
    pub max_connections: usize,
    /// When only deferred recipients are left, wait for those due within this long.
    pub linger: Duration,
    /// Keep running when there is nothing left to do (a long-running server).
    pub keep_running: bool,
    /// Where connection tasks are spawned (the caller waits for them).
    pub tracker: TaskTracker,
    /// Live facts for status displays.
    pub view: Arc<SchedulerView>,
    /// On a cluster node: the recipient domains it may take now (its leases). `None`: all.
    pub(crate) filter: Option<Arc<WorkFilter>>,
    /// Where "now" comes from for due retries and sending windows.
    pub clock: Clock,
}

/// Messages the scheduler let into flight and has not heard back about. Counted per
/// destination and priority, so an urgent campaign finds room at a destination that bulk
/// traffic has filled: its room is what is left after traffic at least as urgent as itself.
#[derive(Debug, Default)]
struct Flight {
    keys: HashMap<(usize, RecipientKey), (Option<usize>, u8)>,
    per_destination: HashMap<(usize, u8), usize>,
    per_priority: HashMap<u8, usize>,
    per_campaign: HashMap<usize, usize>,
}

impl Flight {
    fn total(&self) -> usize {
        self.keys.len()
    }

    fn contains(&self, campaign: usize, key: &RecipientKey) -> bool {
        self.keys.contains_key(&(campaign, key.clone()))
    }

    fn add(
        &mut self,
        campaign: usize,
        priority: u8,
        key: RecipientKey,
        destination: Option<usize>,
    ) {
        if self
            .keys
            .insert((campaign, key), (destination, priority))
            .is_none()
        {
            *self.per_campaign.entry(campaign).or_default() += 1;
            *self.per_priority.entry(priority).or_default() += 1;
            if let Some(d) = destination {
                *self.per_destination.entry((d, priority)).or_default() += 1;
            }
        }
    }

    fn remove(&mut self, campaign: usize, key: &RecipientKey) {
        if let Some((destination, priority)) = self.keys.remove(&(campaign, key.clone())) {
            decrement(&mut self.per_campaign, campaign);
            decrement(&mut self.per_priority, priority);
            if let Some(d) = destination {
                decrement(&mut self.per_destination, (d, priority));
            }
        }
    }

    /// Everything in flight to `destination`.
    fn at(&self, destination: usize) -> usize {
        (1..=LANES as u8)
            .map(|p| self.at_priority(destination, p))
            .sum()
    }

    fn at_priority(&self, destination: usize, priority: u8) -> usize {
        self.per_destination
            .get(&(destination, priority))
            .copied()
            .unwrap_or(0)
    }

    /// In flight to `destination` at `priority` or more urgent.
    fn at_or_above(&self, destination: usize, priority: u8) -> usize {
        (1..=priority)
            .map(|p| self.at_priority(destination, p))
            .sum()
    }

    /// In flight anywhere at `priority` or more urgent.
    fn total_at_or_above(&self, priority: u8) -> usize {
        (1..=priority)
            .map(|p| self.per_priority.get(&p).copied().unwrap_or(0))
            .sum()
    }

    fn of_campaign(&self, campaign: usize) -> usize {
        self.per_campaign.get(&campaign).copied().unwrap_or(0)
    }

    /// Messages in flight per recipient domain.
    fn per_domain(&self) -> HashMap<String, usize> {
        let mut out = HashMap::new();
        for (_, key) in self.keys.keys() {
            *out.entry(key.domain.clone()).or_default() += 1;
        }
        out
    }
}

fn decrement<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: K) {
    if let Some(n) = map.get_mut(&key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(&key);
        }
    }
}

/// The scheduler task's state.
pub struct Scheduler {
    store: Store,
    ctx: Arc<DeliveryContext>,
    jobs: Arc<JobQueue>,
    deliveries: mpsc::Receiver<DeliveryEvent>,
    events: mpsc::UnboundedReceiver<SchedulerEvent>,
    answers: mpsc::UnboundedReceiver<(String, Resolved)>,
    feeds: Vec<CampaignFeed>,
    routing: Routing,
    flight: Flight,
    connections: Arc<Semaphore>,
    tracker: TaskTracker,
    view: Arc<SchedulerView>,
    linger: Duration,
    keep_running: bool,
    last_retry_check: Option<Instant>,
    paused: Option<Pause>,
    unreachable: HashMap<usize, String>,
    idle: Duration,
    wake_at: Option<Instant>,
    filter: Option<Arc<WorkFilter>>,
    /// The filter's domains open at its last grant seen, and that grant's generation.
    open: (u64, HashSet<String>),
    /// Campaigns taken out of the run whose messages are still in flight, and who waits.
    stopping: Vec<(usize, tokio::sync::oneshot::Sender<()>)>,
    /// Where "now" comes from for due retries and sending windows.
    clock: Clock,
    /// The warm-up ceilings of the campaigns that have one.
    warmup: warmup::WarmupGate,
    /// Policy blocks seen in this run.
    blocks: blocks::Blocks,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("campaigns", &self.feeds.len())
            .field("in_flight", &self.flight.total())
            .finish_non_exhaustive()
    }
}

impl Scheduler {
    /// A scheduler for `campaigns` (already loaded into the store).
    pub fn new(
        setup: SchedulerSetup,
        campaigns: Vec<CampaignLane>,
    ) -> Result<Scheduler, StoreError> {
        let (answers_tx, answers) = mpsc::unbounded_channel();
        let learned = setup.store.connection_limits()?.into_iter().collect();
        let kept_blocks = setup
            .store
            .destination_blocks()?
            .into_iter()
            .map(|block| (block.destination.clone(), block))
            .collect();
        let routing = Routing::new(
            setup.mode,
            answers_tx,
            learned,
            kept_blocks,
            setup.clock.clone(),
        );
        {
            let mut view = setup
                .view
                .destinations
                .write()
                .unwrap_or_else(|p| p.into_inner());
            view.clone_from(&routing.destinations);
        }
        let mut scheduler = Scheduler {
            store: setup.store,
            ctx: setup.ctx,
            jobs: setup.jobs,
            deliveries: setup.deliveries,
            events: setup.events,
            answers,
            feeds: Vec::new(),
            routing,
            flight: Flight::default(),
            connections: Arc::new(Semaphore::new(setup.max_connections.max(1))),
            tracker: setup.tracker,
            view: setup.view,
            linger: setup.linger,
            keep_running: setup.keep_running,
            last_retry_check: None,
            paused: None,
            unreachable: HashMap::new(),
            idle: Duration::ZERO,
            wake_at: None,
            filter: setup.filter,
            open: (0, HashSet::new()),
            stopping: Vec::new(),
            clock: setup.clock,
            warmup: warmup::WarmupGate::default(),
            blocks: blocks::Blocks::default(),
        };
        for lane in campaigns {
            scheduler.add_campaign(lane)?;
        }
        Ok(scheduler)
    }

    fn add_campaign(&mut self, lane: CampaignLane) -> Result<(), StoreError> {
        let domains = self.store.pending_domains(&lane.id)?;
        tracing::debug!(campaign = %lane.id, domains = domains.len(), priority = lane.priority, "campaign scheduled");
        self.view
            .active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(lane.id.clone());
        let mut feed = CampaignFeed::new(lane.index, lane.id, lane.priority, domains);
        if let Some(window) = lane.window {
            let columns = self
                .store
                .campaign(&feed.id)?
                .map(|meta| meta.columns)
                .unwrap_or_default();
            feed.window = Some(window::FeedWindow::new(&feed.id, window, &columns));
        }
        feed.warmup = lane.warmup;
        self.feeds.push(feed);
        self.last_retry_check = None;
        Ok(())
    }

    /// Runs until every campaign is done (or, with `keep_running`, until cancelled), then
    /// closes the compose queue and lets idle connections go.
    pub async fn run(mut self) -> Result<RunSummary, StoreError> {
        let result = self.run_loop().await;
        self.jobs.close();
        for destination in &self.routing.destinations {
            destination.ready().set_draining(true);
        }
        result?;
        self.save_learned().await?;
        let warmup = self.warmup_summary()?;
        Ok(RunSummary {
            warmup,
            idle: self.idle,
            paused: self.paused,
            blocked: self.blocked(),
            destinations: self
                .routing
                .destinations
                .iter()
                .map(|d| d.status(Instant::now()))
                .collect(),
            blocks: (0..self.routing.destinations.len())
                .filter_map(|id| self.block_of(id).cloned())
                .collect(),
        })
    }

    async fn run_loop(&mut self) -> Result<(), StoreError> {
        let cancel = self.ctx.cancel.clone();
        loop {
            if cancel.is_cancelled() {
                return Ok(());
            }
            self.tell_stopped();
            self.take_grants();
            self.refresh_relays();
            self.check_retries()?;
            self.fill().await?;
            self.release_blocked().await;
            self.release_stopped().await;
            self.manage_connections();
            self.share_changed_backoff();
            let done = self.is_done()?;
            self.publish();
            if done && !self.keep_running {
                return Ok(());
            }
            let idle = self.flight.total() == 0;
            let started = Instant::now();
            let wake = self.next_wake();
            tokio::select! {
                biased;
                () = cancel.cancelled() => return Ok(()),
                Some(event) = self.events.recv() => self.on_event(event)?,
                Some(event) = self.deliveries.recv() => self.on_delivery(event),
                Some((domain, resolved)) = self.answers.recv() => self.routing.resolved(domain, resolved),
                () = granted(self.filter.as_deref()) => {}
                () = tokio::time::sleep_until(wake.into()) => {}
            }
            if idle && self.flight.total() == 0 {
                self.idle += started.elapsed();
            }
            self.drain_events()?;
        }
    }

    /// Takes every event already waiting, so one pass handles them together.
    fn drain_events(&mut self) -> Result<(), StoreError> {
        while let Ok(event) = self.events.try_recv() {
            self.on_event(event)?;
        }
        while let Ok(event) = self.deliveries.try_recv() {
            self.on_delivery(event);
        }
        while let Ok((domain, resolved)) = self.answers.try_recv() {
            self.routing.resolved(domain, resolved);
        }
        Ok(())
    }

    fn on_event(&mut self, event: SchedulerEvent) -> Result<(), StoreError> {
        match event {
            SchedulerEvent::Settled(settled) => {
                self.warmup.settled(&self.store, &settled)?;
                for item in settled {
                    let (campaign, key) = item.recipient();
                    self.flight.remove(campaign, key);
                    if let Settled::Released { campaign, key, .. } = &item {
                        if let Some(feed) = self.feeds.iter_mut().find(|f| f.index == *campaign) {
                            feed.rewind(&key.domain);
                        }
                    }
                }
            }
            SchedulerEvent::Submit(lane) => self.add_campaign(lane)?,
            SchedulerEvent::Stop { campaign, done } => self.stop_campaign(campaign, done),
            SchedulerEvent::Arrived { campaign, domains } => {
                if let Some(feed) = self.feeds.iter_mut().find(|f| f.index == campaign) {
                    for domain in &domains {
                        feed.rewind(domain);
                    }
                }
            }
        }
        Ok(())
    }

    /// Takes campaign `index` out of the run: its feed goes now (nothing more is taken),
    /// what is in flight finishes and is recorded, then `done` is told.
    fn stop_campaign(&mut self, index: usize, done: tokio::sync::oneshot::Sender<()>) {
        if let Some(feed) = self.feeds.iter().find(|f| f.index == index) {
            tracing::info!(campaign = %feed.id, "campaign taken out of the running send");
            self.view
                .active
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&feed.id);
        }
        self.feeds.retain(|f| f.index != index);
        self.stopping.push((index, done));
        self.tell_stopped();
    }

    /// Lets go of the waiting messages of the campaigns taken out of the run (composed, not
    /// yet on a connection): their recipients stay pending, for a resume.
    async fn release_stopped(&mut self) {
        let stopping: Vec<usize> = self.stopping.iter().map(|(index, _)| *index).collect();
        for index in stopping {
            for destination in &self.routing.destinations {
                for message in destination.ready().drain_campaign(index) {
                    let released = Settled::Released {
                        campaign: message.campaign,
                        destination: Some(destination.id),
                        key: message.key,
                    };
                    if self.ctx.settled.send(released).await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// Tells those waiting for a stopped campaign whose messages are all settled now.
    fn tell_stopped(&mut self) {
        let flight = &self.flight;
        let (settled, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.stopping)
            .into_iter()
            .partition(|(index, _)| flight.of_campaign(*index) == 0);
        self.stopping = waiting;
        for (_, done) in settled {
            let _ = done.send(());
        }
    }

    fn on_delivery(&mut self, event: DeliveryEvent) {
        match event {
            DeliveryEvent::ConnectionEnded { .. } | DeliveryEvent::Fatal => {}
            DeliveryEvent::Unreachable { destination, .. } => {
                let enforced = self
                    .routing
                    .destinations
                    .get(destination)
                    .is_some_and(|d| d.route.sts_enforced());
                let why = if enforced {
                    "MTA-STS policy (enforce): no MX host answered with STARTTLS and a valid certificate"
                } else {
                    "no MX host answered"
                };
                self.unreachable.insert(destination, why.to_owned());
            }
            DeliveryEvent::Tripped {
                destination,
                record,
                ..
            } => self.block_tripped(destination, *record),
            DeliveryEvent::Unblocked { destination } => self.block_lifted(destination),
            DeliveryEvent::Suspended { destination, until } => {
                if let Some(d) = self.routing.destinations.get(destination) {
                    let seconds = until.saturating_duration_since(Instant::now()).as_secs();
                    tracing::warn!(destination = %d.name, seconds, "destination suspended after repeated throttling");
                }
            }
            DeliveryEvent::RelayDown { destination } => self.relay_down(destination),
            DeliveryEvent::Paused {
                destination,
                resume_at,
                cap,
                limit,
            } => {
                let all_held = self
                    .routing
                    .relays
                    .as_mut()
                    .is_none_or(|pool| pool.hold(destination, resume_at));
                if !all_held {
                    let name = self
                        .routing
                        .destinations
                        .get(destination)
                        .map(|d| d.name.clone());
                    tracing::warn!(
                        relay = name.as_deref().unwrap_or("?"),
                        cap,
                        limit,
                        "relay limit reached: its traffic goes to the other relays"
                    );
                    return;
                }
                if self.paused.is_none_or(|p| p.resume_at < resume_at) {
                    tracing::warn!(cap, limit, resume_at = %crate::model::format_millis(resume_at), "relay limit reached: sending paused");
                    self.paused = Some(Pause {
                        resume_at,
                        cap,
                        limit,
                    });
                }
            }
        }
    }

    /// Takes relay `id` out for its cool-down (its queue was released); counts it for the
    /// campaigns of the run; when every relay is out, delivery stops with its error as a
    /// lone relay's would.
    fn relay_down(&mut self, id: usize) {
        let Some(pool) = self.routing.relays.as_mut() else {
            return;
        };
        if matches!(pool.blocked(id), Some(relays::Blocked::Out { .. })) {
            return; // Another connection told already.
        }
        let Some((name, until, all_out)) = pool.take_out(id) else {
            return;
        };
        let left = Duration::from_millis(until.saturating_sub(self.clock.now_millis()));
        if let Some(destination) = self.routing.destinations.get(id) {
            destination.set_taken_out(Some(Instant::now() + left));
        }
        tracing::warn!(relay = %name, seconds = left.as_secs(), "relay taken out for its cool-down");
        let tally = crate::store::RelayTally {
            relay: name,
            cooldowns: 1,
            ..Default::default()
        };
        for feed in &self.feeds {
            if let Err(error) = self
                .store
                .add_relay_tallies(&feed.id, std::slice::from_ref(&tally))
            {
                tracing::warn!(%error, campaign = %feed.id, "could not count a relay cool-down");
            }
        }
        if all_out {
            let error = self
                .routing
                .destinations
                .get(id)
                .and_then(|d| d.take_last_error());
            if let Some(error) = error {
                self.ctx.set_fatal(error);
            }
            self.ctx.cancel.cancel();
        }
    }

    /// Relays whose cool-down is over are probed; a probe that opened a session brings its
    /// relay back.
    fn refresh_relays(&mut self) {
        let Some(pool) = self.routing.relays.as_mut() else {
            return;
        };
        let destinations = &self.routing.destinations;
        let sessions = |id: usize| destinations.get(id).map_or(0, |d| d.sessions());
        for id in pool.refresh(now_millis(), sessions) {
            if let Some(destination) = destinations.get(id) {
                destination.set_taken_out(None);
            }
        }
        for destination in destinations {
            if pool.probing(destination.id) {
                pool.note_sessions(destination.id, destination.sessions());
            }
        }
    }

    /// Pulls deferred recipients that fell due into their campaigns' feeds.
    fn check_retries(&mut self) -> Result<(), StoreError> {
        if self
            .last_retry_check
            .is_some_and(|at| at.elapsed() < RETRY_CHECK)
        {
            return Ok(());
        }
        self.last_retry_check = Some(Instant::now());
        let now = self.clock.now_millis();
        for position in 0..self.feeds.len() {
            if self.feeds[position].retries_waiting() >= RETRY_PAGE {
                continue;
            }
            let due = self.due_here(&self.feeds[position].id, now)?;
            let flight = &self.flight;
            self.feeds[position].add_retries(due, |c, k| flight.contains(c, k));
        }
        Ok(())
    }

    /// Hands recipients to the compose pool, most urgent campaign first.
    async fn fill(&mut self) -> Result<(), StoreError> {
        let mut order: Vec<usize> = (0..self.feeds.len()).collect();
        order.sort_by_key(|&i| (self.feeds[i].priority, self.feeds[i].index));
        let mut claimed: HashMap<usize, u8> = HashMap::new();
        let paused = self.paused.is_some_and(|p| p.resume_at > now_millis());
        if !paused {
            self.paused = None;
        }
        for position in order {
            let visits = self.feeds[position].domain_count();
            for _ in 0..visits {
                if self.flight.total() >= MAX_IN_FLIGHT {
                    return Ok(());
                }
                let Some(domain) = self.feeds[position].next_domain() else {
                    break;
                };
                if !self.may_take(&domain) {
                    continue;
                }
                let priority = self.feeds[position].priority;
                match self.routing.route(&domain) {
                    RouteState::Resolving => {}
                    RouteState::Fails(failure) => {
                        self.settle_locally(position, &domain, &failure).await?;
                    }
                    RouteState::Routed(id) => {
                        let id = self.routing.pick_relay().unwrap_or(id);
                        if claimed.get(&id).is_some_and(|&p| p < priority) {
                            continue;
                        }
                        claimed.entry(id).or_insert(priority);
                        self.feed_destination(position, &domain, id, paused).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Feeds one domain's recipients to its destination, within its room.
    async fn feed_destination(
        &mut self,
        position: usize,
        domain: &str,
        id: usize,
        paused: bool,
    ) -> Result<(), StoreError> {
        let Some(destination) = self.routing.destinations.get(id).cloned() else {
            return Ok(());
        };
        let now = Instant::now();
        if destination.blocked_until(now).is_some() {
            if let Some(block) = destination.holding_block(now) {
                return self.hold_for_block(position, domain, id, block).await;
            }
            if let Some(why) = self.unreachable.get(&id).cloned() {
                let failure = LocalFailure {
                    enhanced: "4.4.1",
                    text: format!("{why} for {} (not tried again yet)", destination.name),
                };
                self.settle_locally(position, domain, &failure).await?;
            }
            return Ok(());
        }
        self.unreachable.remove(&id);
        if (paused && destination.fatal_connect_errors) || self.relay_blocked(id) {
            return Ok(());
        }
        let priority = self.feeds[position].priority;
        let cap = destination.connection_limit().max(1) * IN_FLIGHT_PER_CONNECTION;
        let room = cap
            .saturating_sub(self.flight.at_or_above(id, priority))
            .min(MAX_IN_FLIGHT.saturating_sub(self.flight.total_at_or_above(priority)))
            .min(BATCH);
        if room == 0 {
            return Ok(());
        }
        let granted = self.warmup_reserve(position, domain, id, room)?;
        let room = granted.as_ref().map_or(room, |g| g.count);
        if room == 0 {
            return Ok(());
        }
        let feed = &mut self.feeds[position];
        let flight = &self.flight;
        // A failed read ends the run; a reservation it leaves counts as sent (the safe side).
        let recipients = feed.take(&self.store, domain, room, |c, k| flight.contains(c, k))?;
        let campaign = feed.index;
        let recipients = match &mut feed.window {
            Some(window) => {
                let (send, wait) = window.split(&feed.id, recipients, self.clock.now_millis());
                self.wait_for_windows(campaign, priority, wait).await;
                send
            }
            None => recipients,
        };
        if let Some(granted) = granted {
            self.warmup
                .sent(&self.store, campaign, granted, &recipients)?;
        }
        if recipients.is_empty() {
            return Ok(());
        }
        if let Some(filter) = &self.filter {
            filter.note_sent(recipients.len());
        }
        destination.ready().set_draining(false);
        let jobs: Vec<ComposeJob> = recipients
            .into_iter()
            .map(|recipient| {
                self.flight
                    .add(campaign, priority, recipient.key.clone(), Some(id));
                ComposeJob {
                    campaign,
                    priority,
                    destination: destination.clone(),
                    recipient,
                }
            })
            .collect();
        self.jobs.push_batch(jobs);
        Ok(())
    }

    /// Settles a batch of a domain's recipients without a connection: bounced or deferred as
    /// `failure` says.
    async fn settle_locally(
        &mut self,
        position: usize,
        domain: &str,
        failure: &LocalFailure,
    ) -> Result<(), StoreError> {
        let campaign = self.feeds[position].index;
        let recipients = self.take_locally(position, domain)?;
        for recipient in recipients {
            let outcome =
                local_outcome(failure.enhanced, failure.text.clone(), &self.ctx.classifier);
            let settled = Settled::Outcome {
                campaign,
                destination: None,
                update: OutcomeUpdate {
                    key: recipient.key,
                    outcome,
                    message_id: None,
                },
            };
            if self.ctx.settled.send(settled).await.is_err() {
                break;
            }
        }
        Ok(())
    }

    /// Takes a batch of `domain`'s recipients of campaign `position` to settle without a
    /// connection, counting them in flight until their outcomes are recorded.
    fn take_locally(
        &mut self,
        position: usize,
        domain: &str,
    ) -> Result<Vec<StoredRecipient>, StoreError> {
        let priority = self.feeds[position].priority;
        let room = MAX_IN_FLIGHT
            .saturating_sub(self.flight.total_at_or_above(priority))
            .min(BATCH * 4);
        let feed = &mut self.feeds[position];
        let campaign = feed.index;
        let flight = &self.flight;
        let recipients = feed.take(&self.store, domain, room, |c, k| flight.contains(c, k))?;
        for recipient in &recipients {
            self.flight
                .add(campaign, priority, recipient.key.clone(), None);
        }
        Ok(recipients)
    }

    /// Hands back messages that reached the queue of a destination that cannot be sent to
    /// now (suspended, unreachable, paused): composed after its queue was last emptied, they
    /// would otherwise wait there with no connection to take them.
    async fn release_blocked(&mut self) {
        let now = Instant::now();
        let paused = self.paused.is_some();
        for destination in &self.routing.destinations {
            let blocked = destination.blocked_until(now).is_some()
                || (paused && destination.fatal_connect_errors)
                || self.relay_blocked(destination.id);
            if !blocked || destination.ready().is_empty() {
                continue;
            }
            for message in destination.ready().drain() {
                let released = Settled::Released {
                    campaign: message.campaign,
                    destination: Some(destination.id),
                    key: message.key,
                };
                if self.ctx.settled.send(released).await.is_err() {
                    return;
                }
            }
        }
    }

    /// Opens connections where messages wait: one at first, another while more than
    /// [`READY_PER_CONNECTION`] per open connection wait, up to the destination's limit and
    /// the global cap. Lets idle connections of destinations with nothing in flight go.
    fn manage_connections(&mut self) {
        let now = Instant::now();
        for destination in &self.routing.destinations {
            let in_flight = self.flight.at(destination.id);
            if in_flight == 0 {
                destination.ready().set_draining(true);
                continue;
            }
            if destination.blocked_until(now).is_some()
                || self.ctx.cancel.is_cancelled()
                || self.relay_blocked(destination.id)
            {
                continue;
            }
            let open = destination.open_connections();
            let probing = self
                .routing
                .relays
                .as_ref()
                .is_some_and(|pool| pool.probing(destination.id));
            let limit = if probing {
                1
            } else {
                destination.connection_limit()
            };
            let waiting = destination.ready().len();
            let wanted = if open == 0 {
                1
            } else if waiting > open * READY_PER_CONNECTION {
                open + 1
            } else {
                open
            };
            for _ in open..wanted.min(limit) {
                let Ok(permit) = self.connections.clone().try_acquire_owned() else {
                    return;
                };
                destination.connection_started();
                self.tracker.spawn(run_connection(
                    destination.clone(),
                    self.ctx.clone(),
                    permit,
                ));
            }
        }
    }

    /// True when nothing is in flight and nothing can be sent before the linger runs out.
    fn is_done(&mut self) -> Result<bool, StoreError> {
        self.wake_at = None;
        if self.flight.total() > 0 || self.routing.lookups_running() > 0 {
            return Ok(false);
        }
        let now = Instant::now();
        let horizon = add_duration(self.clock.now_millis(), self.linger);
        let mut done = true;
        let mut active = HashSet::new();
        for position in 0..self.feeds.len() {
            let feed_done = self.feed_done(position, now, horizon)?;
            if !feed_done {
                active.insert(self.feeds[position].id.clone());
                done = false;
            }
        }
        *self.view.active.lock().unwrap_or_else(|p| p.into_inner()) = active;
        Ok(done)
    }

    /// True when campaign `position` has nothing it can send before `horizon`.
    fn feed_done(
        &mut self,
        position: usize,
        now: Instant,
        horizon: Millis,
    ) -> Result<bool, StoreError> {
        // Due retries keep their domain in the ring, so the loop below covers them too.
        if self.flight.of_campaign(self.feeds[position].index) > 0 {
            return Ok(false);
        }
        let domains: Vec<String> = self.feeds[position].domains().cloned().collect();
        for domain in domains {
            if !self.may_take(&domain) {
                continue;
            }
            let RouteState::Routed(id) = self.routing.route(&domain) else {
                return Ok(false);
            };
            let warm = self.warmup_blocked(position, &domain, id);
            match self.blocked_until(id, now).max(warm) {
                Some(until) if until > horizon => continue,
                Some(until) => {
                    self.wake_hint(until);
                    return Ok(false);
                }
                None => return Ok(false),
            }
        }
        // Deferred recipients due before the horizon keep the run going, unless their
        // destination cannot be sent to before then.
        let id = self.feeds[position].id.clone();
        let due = self.due_here(&id, horizon)?;
        for recipient in due {
            if !self.may_take(&recipient.key.domain) {
                continue;
            }
            if let RouteState::Routed(dest) = self.routing.route(&recipient.key.domain) {
                let warm = self.warmup_blocked(position, &recipient.key.domain, dest);
                if self
                    .blocked_until(dest, now)
                    .max(warm)
                    .is_some_and(|until| until > horizon)
                {
                    continue;
                }
            }
            self.wake_hint(recipient.record.next_attempt.unwrap_or(horizon));
            return Ok(false);
        }
        Ok(true)
    }

    /// Until when destination `id` cannot be sent to (suspended, unreachable, or the relay
    /// paused by a cap), in epoch milliseconds.
    fn blocked_until(&self, id: usize, now: Instant) -> Option<Millis> {
        let destination = self.routing.destinations.get(id)?;
        let blocked = destination
            .blocked_until(now)
            .map(|until| add_duration(now_millis(), until.saturating_duration_since(now)));
        let paused = self
            .paused
            .filter(|_| destination.fatal_connect_errors)
            .map(|p| p.resume_at);
        let relay = match self
            .routing
            .relays
            .as_ref()
            .and_then(|pool| pool.blocked(id))
        {
            Some(relays::Blocked::Out { for_ms }) => {
                Some(add_duration(now_millis(), Duration::from_millis(for_ms)))
            }
            Some(relays::Blocked::Held { until }) => Some(until),
            None => None,
        };
        blocked.max(paused).max(relay)
    }

    /// True while relay `id` is taken out or held by a cap (never for MX destinations).
    fn relay_blocked(&self, id: usize) -> bool {
        self.routing
            .relays
            .as_ref()
            .is_some_and(|pool| pool.blocked(id).is_some())
    }

    fn wake_hint(&mut self, at: Millis) {
        let wait = Duration::from_millis(at.saturating_sub(self.clock.now_millis()));
        let at = Instant::now() + wait;
        self.wake_at = Some(self.wake_at.map_or(at, |w| w.min(at)));
    }

    /// When to look again with no event: the next retry check, or sooner when something
    /// falls due.
    fn next_wake(&self) -> Instant {
        let check = self
            .last_retry_check
            .map_or_else(Instant::now, |at| at + RETRY_CHECK);
        let check = check.max(Instant::now() + Duration::from_millis(10));
        let check = if self.flight.total() > 0 {
            // Messages are moving: look again soon, to open connections where they wait.
            check.min(Instant::now() + BUSY_LOOK)
        } else {
            check
        };
        self.wake_at.map_or(check, |at| at.min(check))
    }

    fn publish(&self) {
        if let Some(filter) = &self.filter {
            filter.set_busy(self.flight.per_domain());
        }
        *self.view.paused.lock().unwrap_or_else(|p| p.into_inner()) = self.paused;
        let mut destinations = self
            .view
            .destinations
            .write()
            .unwrap_or_else(|p| p.into_inner());
        if destinations.len() != self.routing.destinations.len() {
            destinations.clone_from(&self.routing.destinations);
        }
    }

    /// Keeps the per-connection limits learned in this run for the next ones and for
    /// `volley status`.
    async fn save_learned(&self) -> Result<(), StoreError> {
        let mut any = false;
        for destination in &self.routing.destinations {
            if let Some(limit) = destination.learned_messages_per_connection() {
                self.store.set_connection_limit(&destination.name, limit)?;
                any = true;
            }
        }
        if any {
            self.store.flush().await?;
        }
        Ok(())
    }

    /// Destinations still blocked with recipients of some campaign pending.
    fn blocked(&self) -> Vec<Blocked> {
        let now = Instant::now();
        let mut out = Vec::new();
        for destination in &self.routing.destinations {
            let Some(until) = destination.blocked_until(now) else {
                continue;
            };
            let status = destination.status(now);
            let block = destination.holding_block(now);
            let why = if block.is_some() {
                "policy block"
            } else if status.suspended_for.is_some() {
                "suspended"
            } else {
                "unreachable"
            };
            out.push(Blocked {
                destination: destination.name.clone(),
                why,
                until: add_duration(now_millis(), until.saturating_duration_since(now)),
                block: block.map(Box::new),
            });
        }
        out
    }
}
