//! `volley serve` (and `volley track serve`, a server with no campaigns of its own): one
//! long-running process that owns a store. It sends each scheduled campaign's due edition and
//! every campaign's due retries, serves tracking and receives bounces, and answers the store's
//! control socket, so `volley status`, `volley send` and `volley events` work through it.
//! When told to stop, transactions in flight finish, state is flushed, and it returns.
//!
//! After each look at its campaigns the server reports the pass ([`Server::passes`], and a
//! log line when it falls idle), so a test or an operator can tell "nothing more is coming"
//! from "not yet".

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::abtest::Look;
use super::held::HeldTests;
use super::host::Host;
use crate::cluster::{Node, NodeSettings};
use crate::config::{
    load_campaign_in, BounceListenSettings, CampaignSettings, ServeSettings, ServeTracking,
};
use crate::control;
use crate::model::Clock;
use crate::recurring::{self, Due};
use crate::store::Store;
use crate::tracking::TokenKey;
use crate::transactional::TxLane;
use crate::webhooks::{WebhookLease, Webhooks};
use crate::Error;

/// How `volley serve` runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The longest the server sleeps between looks at its campaigns (it also wakes at each
    /// firing and each retry falling due); default 30 s.
    pub tick: Duration,
    /// The clock editions, A/B waits and `[ab] recheck_every` go by (default
    /// [`Clock::system`]; deliveries, retries and tracking keep the system's).
    pub clock: Clock,
    /// The cluster node's name (`--node`), over the serve file's `[cluster] node`; default
    /// `<host>-<pid>`. Only on a PostgreSQL store, where every server is a node.
    pub node: Option<String>,
    /// The campaigns whose conversion postbacks the tracking server takes (default none);
    /// the server adds each campaign of its own that sets `[conversions] postback_secret`.
    pub postbacks: crate::tracking::Postbacks,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            tick: Duration::from_secs(30),
            clock: Clock::system(),
            node: None,
            postbacks: crate::tracking::Postbacks::default(),
        }
    }
}

/// One finished look of the server at its campaigns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    /// Looks finished since the server started (0: none yet).
    pub number: u64,
    /// True when, after this look, nothing was being sent or started: until time moves (the
    /// serve clock, or the system's for retries), an event arrives or a campaign file
    /// changes, the next look finds nothing either.
    pub idle: bool,
}

/// A `volley serve` that has taken its store and bound its listeners.
pub struct Server {
    settings: ServeSettings,
    options: ServeOptions,
    store: Store,
    host: Arc<Host>,
    cancel: CancellationToken,
    tasks: TaskTracker,
    control_stop: CancellationToken,
    tracking_addr: Option<SocketAddr>,
    bounces_addr: Option<SocketAddr>,
    api_addr: Option<SocketAddr>,
    /// Campaigns handed to the host lately, when, and the node's grants then (not handed
    /// again while they load, unless the node was granted domains since).
    launched: campaign_control::Launched,
    /// Wakes the server for a look now (a campaign started over the API).
    wake: Arc<tokio::sync::Notify>,
    /// A/B tests whose verdict held, with what it was taken on (taken again only on news).
    held: std::sync::Mutex<HeldTests>,
    /// Campaigns being handed to the host (loading, starting).
    launches: TaskTracker,
    /// The last pass finished.
    passes: watch::Sender<Pass>,
    /// The cluster node this server is (on a PostgreSQL store), and what stops its heartbeat.
    node: Option<(Arc<Node>, CancellationToken)>,
    /// Published campaigns this node has loaded, by id: their document's digest and settings.
    published: std::sync::Mutex<std::collections::HashMap<String, (String, CampaignSettings)>>,
    /// The `[[webhook]]` tasks.
    webhooks: Webhooks,
    /// The transactional lane (`[api] transactional`), when configured.
    transactional: Option<TxLane>,
}

mod api;
mod campaign_control;
mod cluster;
mod metrics;
mod transactional;

pub use metrics::MetricsSource;

/// How long a launched campaign is not launched again: while it loads and starts, and when a
/// run ended with recipients still pending (a relay cap, a suspended destination). Work that
/// waited for a time and fell due since is not held back.
const RELAUNCH_AFTER: Duration = Duration::from_secs(60);

/// When a campaign has work to send.
#[derive(Debug, Clone, Copy)]
struct Work {
    /// When it is due (on the server's clock).
    at: DateTime<Utc>,
    /// It waited for a time (a retry, a sending window, an A/B verdict), rather than being
    /// due as soon as the campaign may run (not loaded yet, recipients pending).
    timed: bool,
}

/// Starts the tracking server on `[tracking] bind`, on `tasks`, until `cancel`; returns
/// where it listens (when the socket can say).
async fn start_tracking(
    tracking: &ServeTracking,
    (store, postbacks): (&Store, crate::tracking::Postbacks),
    tasks: &TaskTracker,
    cancel: &CancellationToken,
) -> Result<Option<SocketAddr>, Error> {
    let listener = TcpListener::bind(tracking.bind)
        .await
        .map_err(|source| Error::Listen {
            addr: tracking.bind,
            source,
        })?;
    let addr = listener.local_addr().ok();
    let key = TokenKey::new(tracking.key.expose_secret().as_bytes());
    warn_about_other_keys(store, &key)?;
    let server = super::tracking::server(store.clone(), key, tracking)
        .postbacks(postbacks, crate::tracking::DEFAULT_POSTBACKS_PER_SECOND);
    let stop = cancel.clone();
    tasks.spawn(async move {
        if let Err(error) = server.serve(listener, stop.cancelled_owned()).await {
            tracing::error!(%error, "the tracking server stopped");
        }
    });
    Ok(addr)
}

/// Starts the bounce listener on `[bounces] bind`, on `tasks`, until `cancel`; returns where
/// it listens.
async fn start_bounces(
    bounces: &BounceListenSettings,
    store: &Store,
    tasks: &TaskTracker,
    cancel: &CancellationToken,
) -> Result<SocketAddr, Error> {
    let listener = TcpListener::bind(bounces.bind)
        .await
        .map_err(|source| Error::Listen {
            addr: bounces.bind,
            source,
        })?;
    let config = super::bounces::receiver_config(bounces)?;
    let receiver =
        super::bounces::receive_bounces(listener, config, store, None, None, cancel.clone())?;
    let addr = receiver.addr();
    tasks.spawn(receiver.stopped());
    Ok(addr)
}

impl Server {
    /// Opens the store, answers its control socket and starts the tracking server, the
    /// bounce listener and the API when configured; everything stops when `cancel` fires.
    pub async fn open(
        mut settings: ServeSettings,
        options: ServeOptions,
        cancel: CancellationToken,
    ) -> Result<Server, Error> {
        let store = open_when_free(&settings.store, &cancel).await?;
        super::cluster_docs::name_serve_node();
        let host = Host::new(store.clone(), cancel.clone(), None, options.clock.clone());
        let tasks = TaskTracker::new();
        let control_stop = CancellationToken::new();
        // A database has no control socket: every command reads it directly.
        if let Some(folder) = settings.store.folder() {
            let socket = control::bind(folder)?;
            tasks.spawn(control::serve(socket, host.handler(), control_stop.clone()));
        }
        let tracking_addr = match &settings.tracking {
            Some(tracking) => {
                for file in &settings.campaigns {
                    if let Ok(campaign) = load_campaign_in(file, &settings.store) {
                        register_postbacks(&options.postbacks, &campaign);
                    }
                }
                let postbacks = options.postbacks.clone();
                start_tracking(tracking, (&store, postbacks), &tasks, &cancel).await?
            }
            None => None,
        };
        let bounces_addr = match &settings.bounces {
            Some(bounces) => Some(start_bounces(bounces, &store, &tasks, &cancel).await?),
            None => None,
        };
        // Before the lane: on a cluster node, its send takes only the node's domains.
        let node = join_cluster(&settings, &options, &store, &host, &tasks, &cancel).await?;
        let transactional = match lane_file(&settings) {
            Some(file) => Some(transactional::start(
                &file, &settings, &store, &host, &tasks, &cancel,
            )?),
            None => None,
        };
        let launched = campaign_control::Launched::default();
        let wake = Arc::new(tokio::sync::Notify::new());
        let campaign_control: crate::api::control::SharedControl =
            Arc::new(campaign_control::ServeControl {
                store: store.clone(),
                location: settings.store.clone(),
                host: host.clone(),
                launched: launched.clone(),
                wake: wake.clone(),
                busy: tokio::sync::Mutex::new(()),
            });
        let api_addr = match &settings.api {
            Some(api) => {
                api::start(
                    api,
                    &settings,
                    (&store, &host, campaign_control),
                    (&options.clock, transactional.clone()),
                    &tasks,
                    &cancel,
                )
                .await?
            }
            None => None,
        };
        let webhooks = start_webhooks(&mut settings, &store, node.as_ref(), &tasks, &cancel)?;
        host.set_webhooks(webhooks.clone());
        Ok(Server {
            settings,
            options,
            store,
            host,
            cancel,
            tasks,
            control_stop,
            tracking_addr,
            bounces_addr,
            api_addr,
            launched,
            wake,
            held: std::sync::Mutex::default(),
            launches: TaskTracker::new(),
            passes: watch::Sender::new(Pass::default()),
            node,
            published: std::sync::Mutex::default(),
            webhooks,
            transactional,
        })
    }

    /// The `[[webhook]]` tasks' status (backlog, last error, next attempt).
    pub fn webhooks(&self) -> &Webhooks {
        &self.webhooks
    }

    /// What renders `/metrics` for this server (cheap to clone; rendering reads the store).
    pub fn metrics(&self) -> MetricsSource {
        MetricsSource::new(self.host.clone(), self.store.clone())
    }

    /// The transactional lane, when `[api] transactional` names its campaign file.
    pub fn transactional(&self) -> Option<&TxLane> {
        self.transactional.as_ref()
    }

    /// The cluster node's name, when this server is one.
    pub fn node_name(&self) -> Option<&str> {
        self.node.as_ref().map(|(node, _)| node.name())
    }

    /// The passes of the server as they finish (take it before [`Server::run`]).
    pub fn passes(&self) -> watch::Receiver<Pass> {
        self.passes.subscribe()
    }

    /// Where the tracking server listens, when it runs.
    pub fn tracking_addr(&self) -> Option<SocketAddr> {
        self.tracking_addr
    }

    /// Where bounces are received, when the listener runs.
    pub fn bounces_addr(&self) -> Option<SocketAddr> {
        self.bounces_addr
    }

    /// Where the API listens, when it runs.
    pub fn api_addr(&self) -> Option<SocketAddr> {
        self.api_addr
    }

    /// Runs until `cancel` fires, then stops cleanly.
    pub async fn run(self) -> Result<(), Error> {
        let mut told = HashSet::new();
        loop {
            let now = self.options.clock.now();
            let wake = self.look(now, &mut told);
            self.finish_pass();
            let mut sleep = (wake - now).to_std().unwrap_or(Duration::ZERO);
            if let Some((node, _)) = &self.node {
                // Domains granted at a heartbeat are sent to at the next look.
                sleep = sleep.min(node.heartbeat_every());
            }
            tokio::select! {
                () = self.cancel.cancelled() => break,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(sleep.min(self.options.tick).max(Duration::from_millis(50))) => {}
            }
        }
        tracing::info!("stopping: sends finish their transactions in flight");
        self.launches.close();
        self.launches.wait().await;
        self.host.wait().await;
        if let Some((node, heartbeat)) = &self.node {
            // Everything in flight is recorded: hand the leases back so others go on now.
            heartbeat.cancel();
            if let Err(error) = node.stop(false).await {
                tracing::error!(%error, "could not hand the leases back; they run out by themselves");
            }
        }
        self.control_stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        self.store.flush().await?;
        Ok(())
    }

    /// Reports a finished pass; says so in the log when the server falls idle.
    fn finish_pass(&self) {
        crate::metrics::global().set_webhook_backlog(self.webhooks.backlog());
        let idle = self.launches.is_empty() && !self.host.is_sending() && !self.host.run_has_work();
        let was_idle = self.passes.borrow().idle;
        self.passes.send_modify(|pass| {
            pass.number += 1;
            pass.idle = idle;
        });
        let number = self.passes.borrow().number;
        tracing::debug!(pass = number, idle, "pass finished");
        if idle && !was_idle {
            tracing::info!(pass = number, "idle: nothing to send now");
        }
    }

    /// Starts whatever is due at `now`: the serve file's campaigns, and on a database shared
    /// by a cluster every active published one; returns when to look again.
    fn look(&self, now: DateTime<Utc>, told: &mut HashSet<String>) -> DateTime<Utc> {
        let mut wake = now + chrono::Duration::from_std(self.options.tick).unwrap_or_default();
        let mut own = HashSet::new();
        let mut working = Vec::new();
        for file in &self.settings.campaigns {
            let settings = match load_campaign_in(file, &self.settings.store) {
                Ok(settings) => settings,
                Err(error) => {
                    if told.insert(format!("bad {}", file.display())) {
                        tracing::error!(campaign = %file.display(), %error, "cannot run this campaign");
                    }
                    continue;
                }
            };
            own.insert(settings.id.clone());
            register_postbacks(&self.options.postbacks, &settings);
            self.webhooks
                .note_variants(&settings.id, settings.variant_ids());
            wake = wake.min(self.look_at(&settings, now, told, &mut working));
        }
        for settings in self.published(&own, told) {
            self.webhooks
                .note_variants(&settings.id, settings.variant_ids());
            wake = wake.min(self.look_at(&settings, now, told, &mut working));
            if settings.schedule.is_none() && !self.host.is_active(&settings.id) {
                if let Err(error) = super::cluster_docs::finish_if_done(&self.store, &settings.id) {
                    tracing::warn!(campaign = %settings.id, %error, "could not mark the campaign's document done");
                }
            }
        }
        if let Some((node, _)) = &self.node {
            self.share_lane(node, &mut working, told);
            node.set_campaigns(working);
        }
        wake
    }

    /// Starts whatever of campaign `settings` is due at `now`; returns when to look again.
    fn look_at(
        &self,
        settings: &CampaignSettings,
        now: DateTime<Utc>,
        told: &mut HashSet<String>,
        working: &mut Vec<String>,
    ) -> DateTime<Utc> {
        let mut wake = now + chrono::Duration::from_std(self.options.tick).unwrap_or_default();
        let mut ids = self.editions_with_retries(&settings.id, settings.schedule.is_some());
        if let Some(schedule) = &settings.schedule {
            match recurring::due(&settings.id, schedule, now) {
                Due::Edition(edition) => ids.push(edition.id),
                Due::Missed { edition, .. } => {
                    let sent = self.store.counts(&edition.id).ok().flatten().is_some();
                    if !sent && told.insert(edition.id.clone()) {
                        tracing::warn!(edition = %edition.id, fired_at = %edition.fired_at, "edition missed: it fired more than the catch-up time ago, so it is skipped");
                    }
                }
                Due::Waiting { .. } => {}
            }
            if let Some(next) = recurring::next_firing(schedule, now) {
                wake = wake.min(next);
            }
        } else {
            ids.push(settings.id.clone());
        }
        ids.sort();
        ids.dedup();
        for id in ids {
            self.decide_ab_test(settings, &id, now);
            let ab_wait = settings.ab.as_ref().map(|ab| ab.wait);
            if let Some(work) = self.due_work(&id, now, ab_wait) {
                working.push(id.clone());
                wake = wake.min(work.at);
                if work.at <= now && !self.host.is_active(&id) {
                    self.launch(settings, &id, now, work.timed.then_some(work.at));
                }
            }
        }
        wake
    }

    /// The editions of `id` in the store (when scheduled) that still have retries to send.
    fn editions_with_retries(&self, id: &str, scheduled: bool) -> Vec<String> {
        if !scheduled {
            return Vec::new();
        }
        self.store
            .campaigns()
            .unwrap_or_default()
            .into_iter()
            .filter(|c| recurring::is_edition_of(c, id))
            .collect()
    }

    /// When campaign `id` has work: now when it is not loaded yet or has pending recipients,
    /// else when its first retry falls due or (test then winner, `ab_wait` set) when the
    /// held remainder is to be decided: after the wait, and once a verdict held, at its next
    /// recheck; `None` when it is done. The A/B times are on the serve clock, retries on
    /// the system's.
    fn due_work(&self, id: &str, now: DateTime<Utc>, ab_wait: Option<Duration>) -> Option<Work> {
        let Ok(counts) = self.store.counts(id) else {
            return None;
        };
        // Retries go by the store's clock, which is the system's.
        let at_system_time = |millis: crate::model::Millis| {
            let at = DateTime::<Utc>::from_timestamp_millis(i64::try_from(millis).ok()?)?;
            let system_now = Utc::now();
            Some(if at <= system_now {
                now
            } else {
                now + (at - system_now)
            })
        };
        let untimed = Some(Work {
            at: now,
            timed: false,
        });
        match counts {
            None => untimed,
            Some(counts) if counts.pending > 0 => untimed,
            Some(counts) => {
                let retry = self
                    .store
                    .next_due(id)
                    .ok()
                    .flatten()
                    .and_then(at_system_time);
                // A sending window opens on the send's clock, which is this one.
                let window =
                    self.store.next_window(id).ok().flatten().and_then(|at| {
                        DateTime::<Utc>::from_timestamp_millis(i64::try_from(at).ok()?)
                    });
                let retry = match (retry, window) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                let decision = ab_wait.filter(|_| counts.held > 0).and_then(|wait| {
                    let sent = self.store.ab_record(id).ok()?.test_sent_at?;
                    let due = crate::model::add_duration(sent, wait);
                    DateTime::<Utc>::from_timestamp_millis(i64::try_from(due).ok()?)
                });
                let recheck = self.held().next_check(id);
                let decision = match (decision, recheck) {
                    (Some(due), Some(recheck)) => Some(due.max(recheck)),
                    (due, _) => due,
                };
                let at = match (retry, decision) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                at.map(|at| Work { at, timed: true })
            }
        }
    }

    /// Takes a test-then-winner campaign's verdict when it is due (and the campaign is not
    /// being sent), so its remainder goes out at once rather than at the next relaunch. A
    /// verdict that held is taken again only when an event arrived, the rules changed or
    /// `[ab] recheck_every` passed (by the serve clock, `now`), and said again only when it
    /// says something new.
    fn decide_ab_test(&self, settings: &CampaignSettings, id: &str, now: DateTime<Utc>) {
        let Some(ab) = &settings.ab else {
            return;
        };
        if self.host.is_active(id) {
            return;
        }
        // Read before the verdict: an event arriving meanwhile shows at the next look.
        let mark = match self.store.ab_mark(id) {
            Ok(mark) => mark,
            Err(error) => {
                tracing::error!(campaign = id, %error, "could not read the A/B counters");
                return;
            }
        };
        if !self.held().is_due(id, &mark, ab, now) {
            return;
        }
        let mut settings = settings.clone();
        settings.id = id.to_owned();
        match super::abtest::look(&settings, &self.store, self.options.clock.now_millis()) {
            Ok(Look::Decided) => {
                self.held().forget(id);
                self.launched
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(id);
            }
            Ok(Look::Held(reason)) => {
                if self
                    .held()
                    .checked(id, mark, ab, now, &format!("{reason:?}"))
                {
                    tracing::warn!(campaign = id, ?reason, recheck_every = %humantime::format_duration(ab.recheck_every), "A/B test inconclusive: the remainder stays held");
                } else {
                    tracing::debug!(campaign = id, "A/B verdict taken again: still held");
                }
            }
            Ok(Look::Looking { reason, until }) => {
                // Sequential, no stop yet: looked at again when an event arrives, and at the
                // end of the wait at the latest.
                let until = i64::try_from(until)
                    .ok()
                    .and_then(DateTime::<Utc>::from_timestamp_millis);
                let mut held = self.held();
                let news = held.checked(id, mark, ab, now, &format!("going on: {reason:?}"));
                held.not_after(id, until);
                drop(held);
                if news {
                    tracing::info!(campaign = id, ?reason, "A/B test goes on: no stop yet");
                }
            }
            Ok(Look::NotDue) => self.held().forget(id),
            Err(error) => {
                let said = format!("error: {error}");
                if self.held().checked(id, mark, ab, now, &said) {
                    tracing::error!(campaign = id, %error, "could not take the A/B verdict");
                }
            }
        }
    }

    /// The held A/B tests (a lock held for a few map operations, never across an await).
    fn held(&self) -> std::sync::MutexGuard<'_, HeldTests> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands campaign `id` (one-off, or an edition) of `settings` to the host at `clock` (the
    /// server's time); `timed` is when its work fell due, if it waited for a time (a retry,
    /// a sending window, an A/B verdict): work that fell due since the last hand-over is
    /// new, and goes at once.
    fn launch(
        &self,
        settings: &CampaignSettings,
        id: &str,
        clock: DateTime<Utc>,
        timed: Option<DateTime<Utc>>,
    ) {
        {
            let mut launched = self.launched.lock().unwrap_or_else(|p| p.into_inner());
            let at = tokio::time::Instant::now();
            // A cluster node's send ends when its domains have no work; a grant starts another.
            let grants = self
                .node
                .as_ref()
                .map_or(0, |(node, _)| node.filter().generation());
            if launched.get(id).is_some_and(|last| {
                at.duration_since(last.at) < RELAUNCH_AFTER
                    && last.grants == grants
                    && timed.is_none_or(|due| due <= last.clock)
            }) {
                return;
            }
            launched.insert(
                id.to_owned(),
                campaign_control::LastLaunch { at, grants, clock },
            );
        }
        let mut settings = settings.clone();
        settings.id = id.to_owned();
        let host = self.host.clone();
        let id = id.to_owned();
        self.launches.spawn(async move {
            match host.launch(settings).await {
                Ok(control::Response::AlreadySending { .. }) => {}
                Ok(_) => tracing::info!(campaign = %id, "sending"),
                Err(message) => tracing::warn!(campaign = %id, %message, "could not start"),
            }
        });
    }
}

/// How long the server waits for a sled store another process holds (a `volley status` or
/// `volley report` reading it a moment) before giving up.
const STORE_WAIT: Duration = Duration::from_secs(15);

/// Opens the store, waiting (at most [`STORE_WAIT`]) while another process holds it: a
/// command that reads it directly holds it for a moment, and a server started meanwhile
/// must not die of that. A send or server that keeps holding it is refused after the wait.
async fn open_when_free(
    location: &crate::store::StoreLocation,
    cancel: &CancellationToken,
) -> Result<Store, Error> {
    let deadline = tokio::time::Instant::now() + STORE_WAIT;
    let mut said = false;
    loop {
        match Store::open_at(location) {
            Err(crate::store::StoreError::Locked { path })
                if tokio::time::Instant::now() < deadline && !cancel.is_cancelled() =>
            {
                if !std::mem::replace(&mut said, true) {
                    tracing::info!(store = %path.display(), "the store is in use by another volley process; waiting for it");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return Ok(other?),
        }
    }
}

/// The transactional lane's campaign file, when the serve file names one.
fn lane_file(settings: &ServeSettings) -> Option<std::path::PathBuf> {
    settings.api.as_ref()?.transactional.clone()
}

/// Logs the tracked campaigns of the store whose tokens another key signed: their links and
/// pixels will not be recognised.
fn warn_about_other_keys(store: &Store, key: &TokenKey) -> Result<(), Error> {
    let fingerprint = key.fingerprint();
    for campaign in store.campaigns()? {
        if let Some(meta) = store.tracking_meta(&campaign)? {
            if meta.key_fingerprint != fingerprint {
                tracing::warn!(%campaign, "this campaign's tracking tokens were signed with another key; its opens and clicks will get 404");
            }
        }
    }
    Ok(())
}

/// On a PostgreSQL store, registers this server as a cluster node (refused while a live node
/// has its name), makes the host's sends take only the domains it holds, and starts its
/// heartbeat on `tasks`: it claims no new work once `cancel` fires and stops when the
/// returned token does (after the leases were handed back).
async fn join_cluster(
    settings: &ServeSettings,
    options: &ServeOptions,
    store: &Store,
    host: &Arc<Host>,
    tasks: &TaskTracker,
    cancel: &CancellationToken,
) -> Result<Option<(Arc<Node>, CancellationToken)>, Error> {
    if store.cluster().is_none() || !settings.cluster.join {
        return Ok(None);
    }
    let name = options
        .node
        .clone()
        .or_else(|| settings.cluster.node.clone())
        .unwrap_or_else(crate::cluster::default_name);
    let node_settings = NodeSettings {
        name,
        lease: settings.cluster.lease,
    };
    let node = Node::register(store.clone(), node_settings).await?;
    host.join_cluster(node.clone());
    let stop = CancellationToken::new();
    tasks.spawn(node.clone().keep(cancel.clone(), stop.clone()));
    Ok(Some((node, stop)))
}

/// Starts the serve file's `[[webhook]]` tasks on `tasks` (taking them out of `settings`),
/// each with its TLS client configuration; on a cluster node, under the node's leases.
fn start_webhooks(
    settings: &mut ServeSettings,
    store: &Store,
    node: Option<&(Arc<Node>, CancellationToken)>,
    tasks: &TaskTracker,
    cancel: &CancellationToken,
) -> Result<Webhooks, Error> {
    let mut webhooks = Vec::with_capacity(settings.webhooks.len());
    for webhook in std::mem::take(&mut settings.webhooks) {
        let tls = super::plan::tls_trusting(webhook.ca_file.as_deref())?;
        webhooks.push((Arc::new(webhook), tls));
    }
    let lease = node.map(|(node, _)| WebhookLease {
        owner: node.name().to_owned(),
        lease: settings.cluster.lease,
    });
    Ok(Webhooks::start(store, webhooks, lease, tasks, cancel))
}

/// Lets the tracking server take conversion postbacks for `settings`' campaign when it sets
/// `[conversions] postback_secret_file` or `postback_secret_env` (and stops when it no longer
/// does).
pub fn register_postbacks(postbacks: &crate::tracking::Postbacks, settings: &CampaignSettings) {
    let conversions = &settings.conversions;
    match &conversions.postback_secret {
        Some(secret) if settings.secrets_read => postbacks.register(
            &settings.id,
            secret.expose_secret().as_bytes(),
            conversions.window,
            conversions.currency.as_deref(),
        ),
        _ => postbacks.forget(&settings.id),
    }
}
