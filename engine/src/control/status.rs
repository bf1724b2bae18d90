//! A campaign's status as the commands show it (`volley status`, the API's campaign status):
//! counts by state, the running send's destinations, tracking totals, the cluster's nodes;
//! and its JSON, the same for `volley status --json` and `GET /api/campaigns/{id}`.

use super::Response;
use crate::model::{
    format_millis, CampaignStop, Counts, DestinationBlock, DestinationStatus, Millis, TrackCounts,
};
use crate::store::{NodeInfo, RelayTally};
use crate::webhooks::WebhookStatus;

/// Counts for one campaign and where they came from.
#[derive(Debug, Clone)]
pub struct StatusReport {
    /// The campaign id.
    pub campaign: String,
    /// Counts by state.
    pub counts: Counts,
    /// When the earliest deferred recipient is due (or a waiting one's window opens).
    pub next_due: Option<Millis>,
    /// When the earliest window of a recipient waiting for its sending window opens.
    pub next_window: Option<Millis>,
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
    /// Policy blocks that held the campaign back: destinations whose circuit breaker
    /// tripped on replies saying the sender is blocked (from the store; while a send runs,
    /// those holding its destinations now).
    pub blocks: Vec<DestinationBlock>,
    /// Set when the campaign is stopped because a rate passed its limit (`[bounces]
    /// max_bounce_rate`, `max_complaint_rate`): a send will not go on until it is raised.
    pub stopped: Option<CampaignStop>,
    /// What each relay did for the campaign (`[[relay]]`): delivered, deferred, bounced and
    /// cool-downs, by relay name; empty when it went direct to MX.
    pub relays: Vec<RelayTally>,
    /// The campaign's warm-up today (`[warmup]`), when it has one and the store was read
    /// directly.
    pub warmup: Option<WarmupStatus>,
}

/// A warm-up key's state today, per provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarmupStatus {
    /// The warm-up key.
    pub key: String,
    /// When the next day (and its new ceilings) begins.
    pub next_day: Millis,
    /// Per provider: today's ceiling (`None`: warm-up done), sent, held back.
    pub providers: Vec<crate::warmup::ProviderPlan>,
}

impl WarmupStatus {
    /// The JSON of `volley status --json`'s `warmup`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "key": self.key,
            "next_day": format_millis(self.next_day),
            "providers": self.providers.iter().map(|p| serde_json::json!({
                "provider": p.provider,
                "ceiling": p.ceiling.limit,
                "sent": p.sent,
                "held": p.held,
                "change": p.ceiling.change.describe(),
            })).collect::<Vec<_>>(),
        })
    }
}

impl StatusReport {
    /// The report of a campaign with nothing loaded yet (created over the API, no list).
    pub fn empty(campaign: &str) -> StatusReport {
        StatusReport {
            campaign: campaign.to_owned(),
            counts: Counts::default(),
            next_due: None,
            next_window: None,
            live_from: None,
            active: false,
            destinations: Vec::new(),
            paused: None,
            tracking: TrackCounts::default(),
            connection_limits: Vec::new(),
            nodes: Vec::new(),
            webhooks: Vec::new(),
            relays: Vec::new(),
            warmup: None,
            blocks: Vec::new(),
            stopped: None,
        }
    }

    /// The report of a control socket's [`Response::Status`] (`asked`: the campaign asked
    /// for, when the answer does not name one); `None` for any other answer.
    pub fn from_response(response: Response, asked: &str) -> Option<StatusReport> {
        let Response::Status {
            campaign,
            counts,
            next_due,
            next_window,
            pid,
            active,
            destinations,
            paused,
            tracking,
            webhooks,
            relays,
        } = response
        else {
            return None;
        };
        Some(StatusReport {
            campaign: if campaign.is_empty() {
                asked.to_owned()
            } else {
                campaign
            },
            counts,
            next_due,
            next_window,
            live_from: Some(pid),
            active,
            connection_limits: destinations
                .iter()
                .filter_map(|d| Some((d.name.clone(), d.messages_per_connection?)))
                .collect(),
            blocks: destinations
                .iter()
                .filter_map(|d| d.block.clone())
                .collect(),
            stopped: None,
            destinations,
            paused,
            tracking,
            nodes: Vec::new(),
            webhooks,
            relays: relays.into_vec(),
            warmup: None,
        })
    }

    /// The report as JSON: what `volley status --json` prints and the API answers.
    pub fn to_json(&self) -> serde_json::Value {
        let c = &self.counts;
        serde_json::json!({
            "campaign": self.campaign,
            "total": c.total,
            "pending": c.pending,
            "delivered": c.delivered,
            "deferred": c.deferred,
            "bounced": c.bounced,
            "expired": c.expired,
            "suppressed": c.suppressed,
            "held": c.held,
            "cancelled": c.cancelled,
            "holdout": c.holdout,
            "invalid": c.invalid,
            "duplicate": c.duplicate,
            "excluded": c.excluded,
            "waiting": c.waiting,
            "next_attempt": self.next_due.map(format_millis),
            "next_window": self.next_window.map(format_millis),
            "running_pid": self.live_from,
            "sending": self.active,
            "paused": self.paused.as_ref().map(|(cap, limit, at)| serde_json::json!({
                "cap": cap, "limit": limit, "resume_at": format_millis(*at),
            })),
            "opened": self.tracking.opened,
            "clicked": self.tracking.clicked,
            "unsubscribed": self.tracking.unsubscribed,
            "opens": self.tracking.opens,
            "clicks": self.tracking.clicks,
            "machine_opens": self.tracking.machine_opens,
            "machine_clicks": self.tracking.machine_clicks,
            "destinations": self.destinations,
            "connection_limits": self.connection_limits.iter().map(|(name, messages)| serde_json::json!({
                "destination": name, "messages_per_connection": messages,
            })).collect::<Vec<_>>(),
            "nodes": self.nodes.iter().map(node_json).collect::<Vec<_>>(),
            "relays": self.relays.iter().map(|r| serde_json::json!({
                "relay": r.relay, "delivered": r.delivered, "deferred": r.deferred,
                "bounced": r.bounced, "cooldowns": r.cooldowns,
            })).collect::<Vec<_>>(),
            "blocks": self.blocks.iter().map(block_json).collect::<Vec<_>>(),
            "stopped": self.stopped.map(|s| serde_json::json!({
                "limit": s.metric.key(), "rate": s.rate, "max": s.limit, "sample": s.sample,
            })),
            "webhooks": self.webhooks.iter().map(|w| serde_json::json!({
                "name": w.name, "backlog": w.backlog, "last_error": w.last_error,
                "next_attempt": w.next_attempt.map(format_millis),
            })).collect::<Vec<_>>(),
            "warmup": self.warmup.as_ref().map(WarmupStatus::to_json),
        })
    }
}

/// One policy block for the JSON: its times as RFC 3339, its replies as the server sent
/// them.
fn block_json(block: &DestinationBlock) -> serde_json::Value {
    serde_json::json!({
        "destination": block.destination,
        "category": block.category,
        "replies": block.replies,
        "trips": block.trips,
        "first_reply": block.first_reply.to_string(),
        "last_reply": block.last_reply.to_string(),
        "tripped_at": format_millis(block.tripped_at),
        "paused_until": format_millis(block.paused_until),
        "lifted_at": block.lifted_at.map(format_millis),
        "campaigns": block.campaigns,
    })
}

/// One cluster node for the JSON.
fn node_json(node: &NodeInfo) -> serde_json::Value {
    serde_json::json!({
        "name": node.name,
        "host": node.host,
        "pid": node.pid,
        "heartbeat_age_ms": u64::try_from(node.heartbeat_age.as_millis()).unwrap_or(u64::MAX),
        "lease_ms": u64::try_from(node.lease.as_millis()).unwrap_or(u64::MAX),
        "live": node.live,
        "stopping": node.stopping,
        "leases": node.leases,
        "sent_last_minute": node.sent_last_minute,
    })
}
