//! The transactional lane of `volley serve` (`[api] transactional`): its campaign is loaded
//! empty into the store once, and a send that never ends on its own runs it at priority 1.
//! That send becomes the one the server's campaigns join (by priority), so a transactional
//! message goes ahead of bulk traffic to the same destination; they must go the lane's way
//! (the same relay, or both direct to MX), and the lane's `[shaping.global]` holds for all.

use std::path::Path;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::super::host::Host;
use super::super::plan::DeliveryPlan;
use super::super::run::{Lane, Run, RunOptions};
use super::super::{Campaign, DEFAULT_LINGER};
use crate::compose::transactional::TX_COLUMNS;
use crate::config::{load_campaign_in, ServeSettings};
use crate::store::Store;
use crate::transactional::{TxLane, Wake};
use crate::Error;

/// The priority of the lane's messages.
pub(crate) const PRIORITY: u8 = 1;

/// Loads the lane's campaign `file`, starts its send on `tasks` (it stops when `cancel`
/// fires) and makes it the host's running send; returns the lane.
pub(super) fn start(
    file: &Path,
    settings: &ServeSettings,
    store: &Store,
    host: &Arc<Host>,
    tasks: &TaskTracker,
    cancel: &CancellationToken,
) -> Result<TxLane, Error> {
    let lane_settings = load_campaign_in(file, &settings.store)?;
    let campaign = Campaign::prepare_transactional(lane_settings)?;
    let id = campaign.id().to_owned();
    ensure_loaded(store, &campaign)?;
    if let Some(meta) = campaign.tracking_meta() {
        store.set_tracking_meta(&id, &meta)?;
    }
    let plan = DeliveryPlan::for_campaign(&campaign, store)?;
    // On a cluster node the lane sends, like any campaign, only to the domains the node
    // holds; the messages other nodes accepted reach it through `Server::look`.
    let node = host.cluster_node();
    let run = match &node {
        Some(node) => Run::new(store.clone()).serving().in_cluster(node.filter()),
        None => Run::new(store.clone()).serving(),
    };
    let handle = run.handle();
    host.adopt(handle.clone());
    let lane = Lane {
        id: id.clone(),
        priority: PRIORITY,
        stage: campaign.compose_stage(store)?,
        policy: campaign.outcome_policy(),
        progress: None,
        window: None,
        warmup: None,
        guard: None,
    };
    let options = RunOptions {
        cancel: cancel.child_token(),
        linger: DEFAULT_LINGER,
        classifier: campaign.classifier.clone(),
        clock: crate::model::Clock::system(),
    };
    let name = id.clone();
    tasks.spawn(async move {
        match run.execute(plan, lane, options).await {
            Ok(result) => {
                tracing::info!(lane = %name, attempts = result.attempts, "transactional lane stopped");
            }
            Err(error) => tracing::error!(lane = %name, %error, "transactional lane failed"),
        }
    });
    tracing::info!(lane = %id, file = %file.display(), "transactional lane ready");
    // The lane is the run's first campaign: index 0.
    let wake: Wake = Arc::new(move |domains| {
        // A domain this node does not hold is claimed (by the fair share) at the heartbeat:
        // run it now, not up to a heartbeat later.
        if let Some(node) = &node {
            let filter = node.filter();
            if domains.iter().any(|d| !filter.allows(d)) {
                node.look_now();
            }
        }
        if !handle.arrived(0, domains) {
            tracing::warn!(
                "a transactional message arrived after its send stopped; it goes at the next start"
            );
        }
    });
    Ok(TxLane::new(
        store.clone(),
        &id,
        campaign.required_fields(),
        wake,
    )?)
}

/// Loads the lane's campaign with no rows unless it is in the store; refuses a campaign of
/// that id loaded from a list. On a database shared by nodes starting together, one load
/// wins (it is one transaction) and the others fail (the campaign is there, or PostgreSQL
/// broke a deadlock of their DDL): they look again and find the lane loaded.
fn ensure_loaded(store: &Store, campaign: &Campaign) -> Result<(), Error> {
    let mut tries = 1;
    loop {
        match load_empty(store, campaign) {
            Ok(()) => return Ok(()),
            Err(error @ Error::NotALane { .. }) => return Err(error),
            Err(error) if tries >= LOAD_TRIES => return Err(error),
            Err(error) => {
                tracing::debug!(lane = campaign.id(), %error, "loading the lane failed; looking again");
                tries += 1;
            }
        }
    }
}

/// Tries of [`ensure_loaded`]: a loser of the race fails once or twice (a deadlock, then
/// the winner's campaign), then finds it loaded.
const LOAD_TRIES: u32 = 4;

/// One try of [`ensure_loaded`].
fn load_empty(store: &Store, campaign: &Campaign) -> Result<(), Error> {
    let columns: Vec<String> = TX_COLUMNS.map(str::to_owned).to_vec();
    match store.campaign(campaign.id())? {
        Some(meta) if meta.loaded && meta.columns == columns => Ok(()),
        Some(meta) if meta.loaded => Err(Error::NotALane {
            file: campaign.settings().file.clone(),
            campaign: campaign.id().to_owned(),
            store: store.path().to_owned(),
        }),
        _ => {
            store.start_load(campaign.id(), columns)?.finish(0, 0, 0)?;
            Ok(())
        }
    }
}
