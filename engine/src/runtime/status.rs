//! `volley status`: counts by state, read from the store or, while another process owns the
//! store, asked of that process over its control socket.

use crate::config::CampaignSettings;
use crate::control::{self, Request, Response};
use crate::model::{Counts, DestinationStatus, Millis, TrackCounts};
use crate::store::{NodeInfo, Store, StoreError};
use crate::webhooks::WebhookStatus;
use crate::Error;

/// Counts for one campaign and where they came from.
#[derive(Debug, Clone)]
pub struct StatusReport {
    /// The campaign id.
    pub campaign: String,
    /// Counts by state.
    pub counts: Counts,
    /// When the earliest deferred recipient is due.
    pub next_due: Option<Millis>,
    /// The pid of the running `volley` that answered, when the store was busy.
    pub live_from: Option<u32>,
    /// True while that process is still sending this campaign.
    pub active: bool,
    /// The running send's destinations (empty when no send is running).
    pub destinations: Vec<DestinationStatus>,
    /// Set while a relay cap pauses the running send: (cap key, value, resume time).
    pub paused: Option<(String, u32, Millis)>,
    /// Opens, clicks and unsubscribes (unique recipients; machine-made events apart).
    pub tracking: TrackCounts,
    /// Per-connection message limits learned from servers, by destination name (read from
    /// the store; while a send runs, its destinations carry theirs).
    pub connection_limits: Vec<(String, u64)>,
    /// The cluster's nodes, on a store several nodes share (PostgreSQL); empty otherwise.
    pub nodes: Vec<NodeInfo>,
    /// The webhooks following the campaign: their backlog in it (events not yet
    /// acknowledged) and, when asked of the server running them, their last error and
    /// next attempt.
    pub webhooks: Vec<WebhookStatus>,
}

/// Reads a campaign's counts, directly or through the process that holds the store.
pub async fn status(settings: &CampaignSettings) -> Result<StatusReport, Error> {
    let not_loaded = || Error::NotLoaded {
        campaign: settings.id.clone(),
        store: settings.store.shown(),
    };
    if !settings.store.may_exist() {
        return Err(not_loaded());
    }
    match Store::open_at(&settings.store) {
        Ok(store) => {
            let id =
                super::latest_edition(&store, &settings.id)?.unwrap_or_else(|| settings.id.clone());
            let counts = store.counts(&id)?.ok_or_else(not_loaded)?;
            Ok(StatusReport {
                counts,
                next_due: store.next_due(&id)?,
                live_from: None,
                active: false,
                destinations: Vec::new(),
                paused: None,
                tracking: store.tracking_totals(&id)?,
                connection_limits: store.connection_limits()?,
                nodes: match store.cluster() {
                    Some(cluster) => cluster.nodes()?,
                    None => Vec::new(),
                },
                webhooks: crate::webhooks::campaign_statuses(&store, &id)?,
                campaign: id,
            })
        }
        Err(StoreError::Locked { .. }) => live_status(settings).await,
        Err(other) => Err(other.into()),
    }
}

/// Asks the process that holds the store (a send or a server) for the campaign's status.
async fn live_status(settings: &CampaignSettings) -> Result<StatusReport, Error> {
    let request = Request::Status {
        campaign: settings.id.clone(),
    };
    match control::request(&settings.store.shown(), &request).await? {
        Response::Status {
            campaign,
            counts,
            next_due,
            pid,
            active,
            destinations,
            paused,
            tracking,
            webhooks,
        } => Ok(StatusReport {
            campaign: if campaign.is_empty() {
                settings.id.clone()
            } else {
                campaign
            },
            counts,
            next_due,
            live_from: Some(pid),
            active,
            connection_limits: destinations
                .iter()
                .filter_map(|d| Some((d.name.clone(), d.messages_per_connection?)))
                .collect(),
            destinations,
            paused,
            tracking,
            nodes: Vec::new(),
            webhooks,
        }),
        Response::Error { message } => Err(Error::Remote(message)),
        Response::Submitted { .. }
        | Response::AlreadySending { .. }
        | Response::Exported { .. }
        | Response::Marked
        | Response::Collected { .. }
        | Response::Refused { .. }
        | Response::Report { .. } => Err(Error::Remote(
            "unexpected answer to a status request".to_owned(),
        )),
    }
}
