//! A cluster node's lease keeper: it registers the node, then at each heartbeat (every third
//! of the lease time) renews the node and its leases in one transaction, notes leases lost,
//! looks at the work (domains with pending or due recipients in the campaigns it runs) and
//! claims or drains domains for its fair share ([`super::share`]). A node that just joined
//! others claims nothing at its first heartbeat, so they see it (and split relay limits with
//! it) before it sends. Stopping, it hands every lease back at once; a node of the same
//! machine whose process has ended has its leases handed back by the others at once.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::filter::WorkFilter;
use super::share;
use crate::store::{
    domain_lease, lease_domain, load_lease, ClusterStore, NodeInfo, NodeStart, Store, StoreError,
};

/// The longest time between two heartbeats (and looks at the work to share).
const LOOK_EVERY: Duration = Duration::from_secs(5);

/// How a node is named and how long its leases last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSettings {
    /// The node's name (unique among live nodes).
    pub name: String,
    /// How long a lease lasts without renewal; the heartbeat runs every third of it.
    pub lease: Duration,
}

/// A registered node of the cluster.
#[derive(Debug)]
pub(crate) struct Node {
    store: Store,
    settings: NodeSettings,
    instance: String,
    filter: Arc<WorkFilter>,
    /// The campaigns whose work this node shares (the server's, with work).
    campaigns: Mutex<Vec<String>>,
    /// Live nodes at the last heartbeat (itself included).
    live: AtomicUsize,
    /// Set once the first heartbeat went by (claims start after it).
    seen: AtomicBool,
    /// Wakes the heartbeat before its time (work arrived in domains nobody here holds).
    nudge: tokio::sync::Notify,
}

/// The name a node takes when none is given: `<host>-<pid>`.
pub(crate) fn default_name() -> String {
    format!("{}-{}", host_name(), std::process::id())
}

/// Whether process `pid` of this machine has ended (it is not this process).
fn process_ended(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    pid.as_raw_nonzero().get() != i32::try_from(std::process::id()).unwrap_or(0)
        && rustix::process::test_kill_process(pid) == Err(rustix::io::Errno::SRCH)
}

/// The machine's host name (`localhost` when it cannot be read).
pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Runs a store call on the blocking pool (the PostgreSQL engine blocks its caller).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| {
        Err(StoreError::Engine {
            path: "cluster node".into(),
            detail: format!("a store call panicked: {e}"),
            source: Box::new(std::io::Error::other(e.to_string())),
        })
    })
}

impl Node {
    /// Registers the node on `store` (a database shared by nodes); refused while a live node
    /// has the same name.
    pub(crate) async fn register(
        store: Store,
        settings: NodeSettings,
    ) -> Result<Arc<Node>, StoreError> {
        let start = NodeStart {
            name: settings.name.clone(),
            instance: format!("{:016x}", rand::random::<u64>()),
            host: host_name(),
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            lease: settings.lease,
        };
        let instance = start.instance.clone();
        let on = store.clone();
        blocking(move || match on.cluster() {
            Some(cluster) => cluster.register_node(&start),
            None => Ok(()),
        })
        .await?;
        tracing::info!(node = %settings.name, lease = ?settings.lease, "node registered");
        Ok(Arc::new(Node {
            store,
            settings,
            instance,
            filter: Arc::default(),
            campaigns: Mutex::default(),
            live: AtomicUsize::new(1),
            seen: AtomicBool::new(false),
            nudge: tokio::sync::Notify::new(),
        }))
    }

    /// The node's name.
    pub(crate) fn name(&self) -> &str {
        &self.settings.name
    }

    /// The domains this node may take recipients of now.
    pub(crate) fn filter(&self) -> Arc<WorkFilter> {
        self.filter.clone()
    }

    /// Live nodes at the last heartbeat (itself included).
    pub(crate) fn live_nodes(&self) -> usize {
        self.live.load(Ordering::Acquire).max(1)
    }

    /// Runs the next heartbeat now (work arrived in domains the node does not hold: a
    /// transactional message need not wait a whole heartbeat for its domain's claim).
    /// Nudges that come while one is pending make one heartbeat.
    pub(crate) fn look_now(&self) {
        self.nudge.notify_one();
    }

    /// The campaigns whose work the node shares from now on.
    pub(crate) fn set_campaigns(&self, mut ids: Vec<String>) {
        ids.sort();
        ids.dedup();
        *self.campaigns.lock().unwrap_or_else(|p| p.into_inner()) = ids;
    }

    /// A third of the lease time, at most [`LOOK_EVERY`]: leases handed back by a stopping
    /// node are taken within that long, whatever the lease time.
    pub(crate) fn heartbeat_every(&self) -> Duration {
        (self.settings.lease / 3)
            .min(LOOK_EVERY)
            .max(Duration::from_millis(100))
    }

    /// Heartbeats until `stop` fires; claims nothing once `draining` fired (shutting down).
    pub(crate) async fn keep(
        self: Arc<Self>,
        draining: CancellationToken,
        stop: CancellationToken,
    ) {
        let mut said: Option<String> = None;
        loop {
            match self.clone().beat(draining.is_cancelled()).await {
                Ok(()) => said = None,
                Err(StoreError::NodeReplaced { .. }) => {
                    tracing::error!(node = %self.name(), "another process registered this node name: this one stops taking work");
                    self.filter.close();
                    return;
                }
                Err(error) => {
                    let text = error.to_string();
                    if said.as_deref() != Some(text.as_str()) {
                        tracing::warn!(node = %self.name(), %error, "heartbeat failed: no new work once the leases may have run out");
                        said = Some(text);
                    }
                }
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(self.heartbeat_every()) => {}
                () = self.nudge.notified() => {}
            }
        }
    }

    /// One heartbeat: renew, count live nodes, then (unless `quiet`) take the fair share.
    async fn beat(self: Arc<Self>, quiet: bool) -> Result<(), StoreError> {
        let node = self.clone();
        let started = Instant::now();
        let held = blocking(move || node.renew()).await?;
        let margin = (self.settings.lease / 10).max(Duration::from_millis(50));
        let valid_until = started + self.settings.lease.saturating_sub(margin);
        let lost = self.filter.renewed(&held, valid_until);
        if !lost.is_empty() {
            tracing::warn!(node = %self.name(), ?lost, "leases taken over while this node was silent");
        }
        // A node that joins others waits one heartbeat, so they count it (and split relay
        // limits with it) before it sends; a node alone starts at once.
        let first = !self.seen.swap(true, Ordering::AcqRel);
        if quiet || (first && self.live_nodes() > 1) {
            return Ok(());
        }
        let node = self.clone();
        blocking(move || node.share()).await
    }

    /// Renews the node and its leases; returns the domains it still holds.
    fn renew(&self) -> Result<HashSet<String>, StoreError> {
        let Some(cluster) = self.store.cluster() else {
            return Ok(HashSet::new());
        };
        let held = cluster.heartbeat(
            &self.settings.name,
            &self.instance,
            self.settings.lease,
            self.filter.sent_last_minute(),
        )?;
        let nodes = cluster.nodes()?;
        let reaped = self.reap_dead_here(cluster, &nodes);
        let live: Vec<&str> = nodes
            .iter()
            .filter(|n| n.live && !reaped.contains(&n.name))
            .map(|n| n.name.as_str())
            .collect();
        let rank = live
            .iter()
            .position(|n| *n == self.settings.name)
            .unwrap_or(live.len());
        self.filter.set_rank(rank);
        let live = live.len();
        self.live.store(live.max(1), Ordering::Release);
        self.filter.set_live_nodes(live.max(1));
        Ok(held
            .iter()
            .filter_map(|name| lease_domain(name).map(str::to_owned))
            .collect())
    }

    /// Hands back the leases of the nodes of this machine whose process has ended (a
    /// `volley send` or `volley serve` killed a moment ago): their work moves at once rather
    /// than when their leases run out. Returns their names.
    fn reap_dead_here(&self, cluster: &dyn ClusterStore, nodes: &[NodeInfo]) -> HashSet<String> {
        let here = host_name();
        let mut reaped = HashSet::new();
        for node in nodes {
            let (Some(host), Some(pid)) = (&node.host, node.pid) else {
                continue;
            };
            if node.stopping || *host != here || node.name == self.settings.name {
                continue;
            }
            if node.leases == 0 && !node.live {
                continue;
            }
            if !process_ended(pid) {
                continue;
            }
            match cluster.reap_node(&node.name, host, pid) {
                Ok(released) => {
                    tracing::info!(node = %self.name(), dead = %node.name, released, "a node of this machine has ended: its leases are handed back");
                    reaped.insert(node.name.clone());
                }
                Err(error) => {
                    tracing::warn!(node = %self.name(), dead = %node.name, %error, "could not hand a dead node's leases back")
                }
            }
        }
        reaped
    }

    /// Claims, drains and releases domains for the node's fair share.
    fn share(&self) -> Result<(), StoreError> {
        let Some(cluster) = self.store.cluster() else {
            return Ok(());
        };
        let campaigns = self
            .campaigns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let work = cluster.domains_with_work(&campaigns, self.heartbeat_every())?;
        let others: HashSet<String> = cluster
            .leases()?
            .into_iter()
            .filter(|l| l.owner != self.settings.name && l.remaining.is_some())
            .filter_map(|l| lease_domain(&l.name).map(str::to_owned))
            .collect();
        let held = self.filter.held();
        if self.filter.benched() {
            // No relay connection of its own: it hands its domains back and claims none.
            self.filter.drain(held.iter().cloned());
            return self.release_idle(cluster, Vec::new());
        }
        let plan = share::plan(
            &work,
            &held,
            &self.filter.draining(),
            &others,
            self.live_nodes(),
        );
        if !plan.drain.is_empty() {
            tracing::info!(node = %self.name(), domains = plan.drain.len(), "draining domains for a fairer share");
            self.filter.drain(plan.drain);
        }
        self.release_idle(cluster, plan.idle)?;
        if !plan.claim.is_empty() {
            let names: Vec<String> = plan.claim.iter().map(|d| domain_lease(d)).collect();
            let won = cluster.claim(&self.settings.name, &names, self.settings.lease)?;
            tracing::debug!(node = %self.name(), asked = names.len(), won = won.len(), "domains claimed");
            self.filter.grant(
                won.iter()
                    .filter_map(|n| lease_domain(n).map(str::to_owned)),
            );
        }
        Ok(())
    }

    /// Releases, once nothing is in flight to them, the draining domains and `idle` ones
    /// (held without work).
    fn release_idle(
        &self,
        cluster: &dyn ClusterStore,
        idle: Vec<String>,
    ) -> Result<(), StoreError> {
        let mut release: Vec<String> = self.filter.draining().into_iter().collect();
        release.extend(idle);
        release.retain(|d| self.filter.in_flight(d) == 0);
        if !release.is_empty() {
            let names: Vec<String> = release.iter().map(|d| domain_lease(d)).collect();
            cluster.release(&self.settings.name, &names)?;
            self.filter.revoke(&release);
        }
        Ok(())
    }

    /// Waits for this node's turn to load campaign `id`: `Ok(true)` when it holds the load
    /// lease (load, then [`Node::loaded`]), `Ok(false)` once another node loaded it.
    pub(crate) async fn load_turn(
        &self,
        id: &str,
        cancel: &CancellationToken,
    ) -> Result<bool, StoreError> {
        let name = load_lease(id);
        loop {
            let (store, id_, owner, lease, name_) = (
                self.store.clone(),
                id.to_owned(),
                self.settings.name.clone(),
                self.settings.lease,
                name.clone(),
            );
            let turn = blocking(move || {
                if store.campaign(&id_)?.is_some_and(|m| m.loaded) {
                    return Ok(Some(false));
                }
                let Some(cluster) = store.cluster() else {
                    return Ok(Some(true));
                };
                let won = !cluster.claim(&owner, &[name_], lease)?.is_empty();
                Ok(won.then_some(true))
            })
            .await?;
            if let Some(turn) = turn {
                return Ok(turn);
            }
            tokio::select! {
                () = cancel.cancelled() => return Ok(false),
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
    }

    /// Hands back the load lease of campaign `id`.
    pub(crate) async fn loaded(&self, id: &str) -> Result<(), StoreError> {
        let (store, owner, names) = (
            self.store.clone(),
            self.settings.name.clone(),
            vec![load_lease(id)],
        );
        blocking(move || match store.cluster() {
            Some(cluster) => cluster.release(&owner, &names).map(|_| ()),
            None => Ok(()),
        })
        .await
    }

    /// Stopping: closes every domain, hands all leases back and marks the node stopping (or,
    /// with `forget`, removes it: a node for one job), so the others take its work at once.
    /// Call once its sends finished and were recorded.
    pub(crate) async fn stop(&self, forget: bool) -> Result<u64, StoreError> {
        self.filter.close();
        let (store, name, instance) = (
            self.store.clone(),
            self.settings.name.clone(),
            self.instance.clone(),
        );
        let released = blocking(move || match store.cluster() {
            Some(cluster) => cluster.stop_node(&name, &instance, forget),
            None => Ok(0),
        })
        .await?;
        tracing::info!(node = %self.name(), released, "leases handed back");
        Ok(released)
    }
}
