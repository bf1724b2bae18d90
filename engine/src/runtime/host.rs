//! The process that owns a store answers its control socket: status of any campaign in the
//! store (with the running send's destinations and the tracking counts), and campaigns handed
//! over by another `volley send`, which join the running send (by priority) or, when none
//! runs (a tracking server hosting the store), start one.

use super::pipeline::{load_and_send, load_in_turn, SendOptions};
use super::plan::DeliveryPlan;
use super::run::{Lane, Run, RunHandle};
use super::Campaign;
use crate::cluster::Node;
use crate::config::CampaignSettings;
use crate::control::{self, Request, Response};
use crate::model::Clock;
use crate::store::Store;
use crate::webhooks::{WebhookStatus, Webhooks};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The store owner's side of the control socket.
pub(crate) struct Host {
    store: Store,
    current: Mutex<Option<RunHandle>>,
    cancel: CancellationToken,
    runs: TaskTracker,
    /// The campaign this process was started for, if any (for a clearer status message).
    own: Option<String>,
    /// What editions and A/B waits of the campaigns it takes go by.
    clock: Clock,
    /// On a cluster node (`volley serve` on PostgreSQL): the node, whose leases decide
    /// which domains its send takes.
    node: std::sync::OnceLock<Arc<Node>>,
    /// On `volley serve` with `[[webhook]]`s: their tasks, for the status.
    webhooks: std::sync::OnceLock<Webhooks>,
    /// Held while a campaign joins a send, and while the API pauses or cancels one and takes
    /// it out of the send: one comes wholly before the other.
    gate: std::sync::Mutex<()>,
}

impl Host {
    /// A host for `store`; runs it starts stop when `cancel` fires, and go by `clock`.
    pub(crate) fn new(
        store: Store,
        cancel: CancellationToken,
        own: Option<String>,
        clock: Clock,
    ) -> Arc<Host> {
        Arc::new(Host {
            store,
            current: Mutex::new(None),
            cancel,
            runs: TaskTracker::new(),
            own,
            clock,
            node: std::sync::OnceLock::new(),
            webhooks: std::sync::OnceLock::new(),
            gate: std::sync::Mutex::new(()),
        })
    }

    /// The gate a campaign joins a send through (see the field).
    pub(crate) fn gate(&self) -> std::sync::MutexGuard<'_, ()> {
        self.gate.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether campaign `id` may join a send: not when its document (a campaign made over the
    /// API, or published to a cluster) says paused or cancelled.
    fn may_send(&self, id: &str) -> bool {
        let Some(documents) = self.store.documents() else {
            return true;
        };
        !matches!(
            documents
                .document(id)
                .ok()
                .flatten()
                .map(|record| record.state),
            Some(crate::store::DocumentState::Paused | crate::store::DocumentState::Cancelled)
        )
    }

    /// Makes this host's sends those of cluster node `node`.
    pub(crate) fn join_cluster(&self, node: Arc<Node>) {
        let _ = self.node.set(node);
    }

    /// The cluster node whose sends this host's are, when it is one.
    pub(crate) fn cluster_node(&self) -> Option<Arc<Node>> {
        self.node.get().cloned()
    }

    /// Whether a send this host started is still running.
    pub(crate) fn is_sending(&self) -> bool {
        !self.runs.is_empty()
    }

    /// Whether the running send (a send that lives on, like the transactional lane's) has
    /// campaigns with work left.
    pub(crate) fn run_has_work(&self) -> bool {
        self.current().is_some_and(|run| {
            run.is_open()
                && !run
                    .view
                    .active
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .is_empty()
        })
    }

    /// Makes `run` the send that handed-over campaigns join.
    pub(crate) fn adopt(&self, run: RunHandle) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(run);
    }

    /// Waits for the runs this host started.
    pub(crate) async fn wait(&self) {
        self.runs.close();
        self.runs.wait().await;
    }

    /// The control-socket handler.
    pub(crate) fn handler(self: &Arc<Self>) -> control::Handler {
        let host = self.clone();
        Arc::new(move |request| {
            let host = host.clone();
            Box::pin(async move { host.answer(request).await })
        })
    }

    /// The answer to one control request.
    async fn answer(self: Arc<Self>, request: Request) -> Response {
        match request {
            Request::Status { campaign } => self.status(&campaign),
            Request::Report { spec } => {
                let store = self.store.clone();
                answer_blocking("report", move || {
                    super::report::build_resolved(&store, spec).map(|report| Response::Report {
                        report: Box::new(report),
                    })
                })
                .await
            }
            Request::Submit { campaign_file } => self.submit(campaign_file).await,
            Request::MarkExported {
                campaign,
                since,
                through,
            } => match self.store.mark_exported(
                &campaign,
                since,
                through,
                crate::model::now_millis(),
            ) {
                Ok(()) => Response::Marked,
                Err(error) => Response::Error {
                    message: error.to_string(),
                },
            },
            Request::Gc { options } => self.gc(options).await,
            Request::Export {
                campaign,
                since,
                file,
            } => {
                let store = self.store.clone();
                answer_blocking("export", move || {
                    super::export_events_to(&store, &campaign, since, &file)
                        .map(|(campaign, events)| Response::Exported { campaign, events })
                })
                .await
            }
        }
    }

    /// Collects the finished campaigns `options` names, leaving those being sent alone.
    async fn gc(self: Arc<Self>, options: crate::store::GcOptions) -> Response {
        answer_blocking("gc", move || {
            let store = self.store.clone();
            super::gc::collect_campaigns(&store, &options, |id| self.is_active(id)).map(
                |campaigns| Response::Collected {
                    report: Box::new(crate::store::GcReport {
                        campaigns,
                        bytes_before: 0,
                        bytes_after: 0,
                        compacted: false,
                    }),
                },
            )
        })
        .await
    }

    /// The running send (or the last one), if any.
    pub(crate) fn current(&self) -> Option<RunHandle> {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Notes the server's webhook tasks (once), for the status.
    pub(crate) fn set_webhooks(&self, webhooks: Webhooks) {
        let _ = self.webhooks.set(webhooks);
    }

    /// The webhooks following `campaign`, with their backlog there and, from the running
    /// tasks, their last error and next attempt.
    fn webhook_statuses(&self, campaign: &str) -> Vec<WebhookStatus> {
        let mut statuses =
            crate::webhooks::campaign_statuses(&self.store, campaign).unwrap_or_default();
        if let Some(webhooks) = self.webhooks.get() {
            webhooks.fill(&mut statuses);
        }
        statuses
    }

    fn status(&self, asked: &str) -> Response {
        let store = &self.store;
        let latest = super::latest_edition(store, asked).ok().flatten();
        let campaign = latest.as_deref().unwrap_or(asked);
        match (store.counts(campaign), store.next_due(campaign)) {
            (Ok(Some(counts)), Ok(next_due)) => {
                let next_window = store.next_window(campaign).ok().flatten();
                let now = Instant::now();
                let run = self.current();
                let destinations = run.as_ref().map_or_else(Vec::new, |run| {
                    run.view
                        .destinations
                        .read()
                        .unwrap_or_else(|p| p.into_inner())
                        .iter()
                        .map(|d| d.status(now))
                        .collect()
                });
                let active = run.as_ref().is_some_and(|run| {
                    run.view
                        .active
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .contains(campaign)
                });
                let paused = run.as_ref().and_then(|run| {
                    run.view
                        .paused
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .map(|p| (p.cap.to_owned(), p.limit, p.resume_at))
                });
                Response::Status {
                    campaign: campaign.to_owned(),
                    counts,
                    next_due,
                    next_window,
                    pid: std::process::id(),
                    active,
                    destinations,
                    paused,
                    tracking: store.tracking_totals(campaign).unwrap_or_default(),
                    webhooks: self.webhook_statuses(campaign),
                    relays: store
                        .relay_tallies(campaign)
                        .unwrap_or_default()
                        .into_boxed_slice(),
                }
            }
            (Ok(None), _) if self.own.as_deref() == Some(campaign) => Response::Error {
                message: format!("campaign {campaign} is still being loaded"),
            },
            (Ok(None), _) => Response::Error {
                message: format!(
                    "campaign {campaign} is not in the store {}",
                    store.path().display()
                ),
            },
            (Err(e), _) | (_, Err(e)) => Response::Error {
                message: e.to_string(),
            },
        }
    }

    async fn submit(self: &Arc<Self>, file: PathBuf) -> Response {
        match self.take(file).await {
            Ok(response) => response,
            Err(message) => Response::Error { message },
        }
    }

    /// Loads a handed-over campaign (its due edition, when it is scheduled) and adds it to
    /// the running send, or starts a send.
    async fn take(self: &Arc<Self>, file: PathBuf) -> Result<Response, String> {
        let mut settings = crate::config::load_campaign(&file, Some(self.store.path()))
            .map_err(|e| format!("loading campaign {}: {e}", file.display()))?;
        super::apply_schedule(&mut settings, self.clock.now()).map_err(|e| e.to_string())?;
        if self.is_active(&settings.id) {
            return Ok(Response::AlreadySending {
                campaign: settings.id,
                pid: std::process::id(),
            });
        }
        self.launch(settings).await
    }

    /// Whether the running send is sending campaign `id`.
    pub(crate) fn is_active(&self, id: &str) -> bool {
        self.current().is_some_and(|run| {
            run.is_open()
                && run
                    .view
                    .active
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .contains(id)
        })
    }

    /// Adds the campaign of `settings` to the running send, or starts a send of it.
    pub(crate) async fn launch(
        self: &Arc<Self>,
        settings: CampaignSettings,
    ) -> Result<Response, String> {
        let store = &self.store;
        let file = settings.file.clone();
        let campaign = Campaign::prepare(settings)
            .map_err(|e| format!("preparing campaign {}: {e}", file.display()))?;
        let plan = DeliveryPlan::for_campaign(&campaign, store).map_err(|e| e.to_string())?;
        let running = self.current().filter(RunHandle::is_open);
        if running.as_ref().is_some_and(|run| run.has(campaign.id())) {
            // Its retries are the running send's (a cluster node's send that has no work on
            // its domains just now ends soon; the transactional lane's run never ends).
            return Ok(Response::AlreadySending {
                campaign: campaign.id().to_owned(),
                pid: std::process::id(),
            });
        }
        if let Some(run) = &running {
            let key = run
                .plan_key
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if plan.key != key {
                return Err(format!(
                    "campaign {} is sent {}, but the running send goes {key}; send it when that one is done",
                    campaign.id(),
                    plan.key
                ));
            }
        }
        let loaded_now = self.load(&campaign).await?;
        let counts = store
            .counts(campaign.id())
            .map_err(|e| e.to_string())?
            .unwrap_or_default();
        let (id, priority) = (campaign.id().to_owned(), campaign.settings.priority);
        let _gate = self.gate();
        if !self.may_send(&id) {
            return Err(format!("campaign {id} was paused or cancelled meanwhile"));
        }
        match running {
            Some(run) => {
                let lane = Lane {
                    id: id.clone(),
                    priority,
                    stage: campaign.compose_stage(store).map_err(|e| e.to_string())?,
                    policy: campaign.outcome_policy(),
                    progress: None,
                    window: campaign.settings.window.clone().map(Arc::new),
                    warmup: campaign.settings.warmup.clone().map(Arc::new),
                    guard: None,
                };
                run.submit(lane)?;
                tracing::info!(campaign = %id, priority, "campaign handed over; it joins the running send");
            }
            None => self.start(campaign),
        }
        Ok(Response::Submitted {
            campaign: id,
            priority,
            loaded_now,
            counts,
        })
    }

    /// Loads the campaign's list unless it is loaded; on a cluster node, only while holding
    /// its load lease (one node loads, the others wait for it). True when loaded now.
    async fn load(&self, campaign: &Campaign) -> Result<bool, String> {
        load_in_turn(
            campaign,
            &self.store,
            self.node.get().map(|n| &**n),
            &self.cancel,
            None,
        )
        .await
        .map(|(loaded_now, _)| loaded_now)
        .map_err(|e| e.to_string())
    }

    /// Starts a send of `campaign` (loaded already) that later campaigns may join.
    fn start(self: &Arc<Self>, campaign: Campaign) {
        let run = match self.node.get() {
            Some(node) => Run::new(self.store.clone()).in_cluster(node.filter()),
            None => Run::new(self.store.clone()),
        };
        self.adopt(run.handle());
        let (host, store) = (self.clone(), self.store.clone());
        tracing::info!(campaign = campaign.id(), "campaign handed over; sending it");
        self.runs.spawn(async move {
            let options = SendOptions {
                cancel: host.cancel.child_token(),
                clock: host.clock.clone(),
                ..SendOptions::default()
            };
            match load_and_send(&campaign, &store, run, &options).await {
                Ok(report) => tracing::info!(
                    campaign = %report.campaign,
                    delivered = report.counts.delivered,
                    bounced = report.counts.bounced,
                    deferred = report.counts.deferred,
                    pending = report.counts.pending,
                    "send finished"
                ),
                Err(error) => tracing::error!(campaign = campaign.id(), %error, "send failed"),
            }
        });
    }
}

/// Answers a control request from work done on the blocking pool: its response, or its
/// error (or its panic) as an error response.
async fn answer_blocking(
    what: &str,
    work: impl FnOnce() -> Result<Response, crate::Error> + Send + 'static,
) -> Response {
    match super::blocking(what, work).await {
        Ok(Ok(response)) => response,
        Ok(Err(error)) | Err(error) => Response::Error {
            message: error.to_string(),
        },
    }
}
