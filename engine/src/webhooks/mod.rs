//! Webhooks out: `volley serve` POSTs the store's events (deliveries, bounces, complaints,
//! unsubscribes, opens, clicks…) to each `[[webhook]]` of its serve file, as signed JSON
//! batches (Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`).
//!
//! No second write path: a webhook reads the event history the store keeps anyway (what
//! `volley events` exports) through a durable cursor per campaign
//! ([`crate::store::HistoryStore::set_webhook_cursor`]), moved only after the receiver
//! answered 2xx. So a receiver down for hours, or a Volley killed mid-batch, loses nothing:
//! delivery is at least once, each event carrying a stable id for the receiver to
//! de-duplicate. One batch is in flight per webhook at a time and a campaign's batches go in
//! history order, so one recipient's events are never reordered. A refused batch is retried
//! (the same `webhook-id`, body and events) with exponential back-off and jitter up to about
//! an hour, for `give_up_after` (at least a day); then it is dropped, logged. On a
//! PostgreSQL cluster one node at a time sends a given webhook (lease `webhook:<name>`).
//!
//! Where it sits: beside tracking, fed by the store, started by `runtime::serve`.

mod batch;
mod client;
mod sign;
mod task;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::WebhookSettings;
use crate::model::Millis;
use crate::store::{ExportKind, Store, StoreError};

/// Where one webhook stands, as `volley status` and the metrics show it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WebhookStatus {
    /// The webhook's name.
    pub name: String,
    /// Events not yet acknowledged by its receiver (counted every few seconds while it is
    /// behind; events of the last few seconds are not counted yet).
    pub backlog: u64,
    /// Why the last request failed, while its batch has not gone through.
    pub last_error: Option<String>,
    /// When the failed batch is tried again (epoch ms), while it has not gone through.
    pub next_attempt: Option<Millis>,
}

/// The cluster lease a webhook is sent under: the node's name and its lease time.
#[derive(Debug, Clone)]
pub struct WebhookLease {
    /// The node (lease owner).
    pub owner: String,
    /// How long the lease lasts without renewal (the node's heartbeat renews it).
    pub lease: Duration,
}

/// The webhooks of one `volley serve`: their tasks' status, and the campaigns' variant
/// names they print. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Webhooks {
    statuses: Vec<watch::Receiver<WebhookStatus>>,
    variants: VariantBook,
}

/// Variant ids by campaign id (a scheduled campaign's id covers its editions).
#[derive(Debug, Clone, Default)]
pub(crate) struct VariantBook(Arc<Mutex<HashMap<String, Vec<String>>>>);

impl VariantBook {
    /// The variant ids of `campaign` (or of the scheduled campaign it is an edition of).
    pub(crate) fn of(&self, campaign: &str) -> Vec<String> {
        let book = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ids) = book.get(campaign) {
            return ids.clone();
        }
        book.iter()
            .find(|(id, _)| crate::recurring::is_edition_of(campaign, id))
            .map(|(_, ids)| ids.clone())
            .unwrap_or_default()
    }
}

impl Webhooks {
    /// Starts one task per webhook on `tasks`, until `cancel`: each registers itself in the
    /// store, then sends what follows its cursors. `tls` is each webhook's TLS client
    /// configuration (in the same order); `lease`, on a cluster, the node sending them.
    pub fn start(
        store: &Store,
        webhooks: Vec<(Arc<WebhookSettings>, Arc<rustls::ClientConfig>)>,
        lease: Option<WebhookLease>,
        tasks: &TaskTracker,
        cancel: &CancellationToken,
    ) -> Webhooks {
        let variants = VariantBook::default();
        let mut statuses = Vec::with_capacity(webhooks.len());
        for (settings, tls) in webhooks {
            let (status, watched) = watch::channel(WebhookStatus {
                name: settings.name.clone(),
                ..WebhookStatus::default()
            });
            statuses.push(watched);
            let runner = task::Runner {
                target: client::Target {
                    url: settings.url.clone(),
                    tls,
                    timeout: settings.timeout,
                },
                settings,
                store: store.clone(),
                status,
                lease: lease.clone(),
                variants: variants.clone(),
                cancel: cancel.clone(),
            };
            tasks.spawn(runner.run());
        }
        Webhooks { statuses, variants }
    }

    /// Every webhook's status now, in the serve file's order.
    pub fn statuses(&self) -> Vec<WebhookStatus> {
        self.statuses.iter().map(|s| s.borrow().clone()).collect()
    }

    /// The total backlog of every webhook (events not yet acknowledged).
    pub fn backlog(&self) -> u64 {
        self.statuses.iter().map(|s| s.borrow().backlog).sum()
    }

    /// Fills in each status's last error and next attempt from the running task of the same
    /// name.
    pub fn fill(&self, statuses: &mut [WebhookStatus]) {
        for status in statuses {
            if let Some(running) = self
                .statuses
                .iter()
                .find(|s| s.borrow().name == status.name)
            {
                let running = running.borrow();
                status.last_error.clone_from(&running.last_error);
                status.next_attempt = running.next_attempt;
            }
        }
    }

    /// Notes campaign `id`'s variant ids, so its events name their variant.
    pub fn note_variants(&self, id: &str, variants: Vec<String>) {
        let mut book = self.variants.0.lock().unwrap_or_else(|p| p.into_inner());
        if book.get(id) != Some(&variants) {
            book.insert(id.to_owned(), variants);
        }
    }
}

/// Events counted per webhook for `volley status` at most.
const STATUS_CAP: u64 = 1_000_000;

/// Every kind of event.
const EVERY_KIND: [ExportKind; 10] = [
    ExportKind::Delivered,
    ExportKind::Deferred,
    ExportKind::Bounced,
    ExportKind::Expired,
    ExportKind::Suppressed,
    ExportKind::Cancelled,
    ExportKind::Open,
    ExportKind::Click,
    ExportKind::Unsubscribe,
    ExportKind::Complaint,
];

/// Every webhook following `campaign` (it has a cursor there) with its backlog there: the
/// events after its cursor, of every kind (its cursor passes over those it does not send),
/// counted up to a million. The last error and next attempt are the running server's to
/// say ([`Webhooks::fill`]).
pub fn campaign_statuses(store: &Store, campaign: &str) -> Result<Vec<WebhookStatus>, StoreError> {
    let mut statuses = Vec::new();
    let last = store.last_event_at(campaign)?;
    for (name, _, cursor) in store.webhook_positions(campaign)? {
        let Some(cursor) = cursor else { continue };
        let backlog = match last {
            Some(last) if last >= cursor.at => batch::count_after(
                store,
                campaign,
                cursor,
                &EVERY_KIND,
                Millis::MAX,
                STATUS_CAP,
            )?,
            _ => 0,
        };
        statuses.push(WebhookStatus {
            name,
            backlog,
            last_error: None,
            next_attempt: None,
        });
    }
    Ok(statuses)
}

/// The first webhook (by name) that follows `campaign` and has events of it not yet
/// acknowledged: `volley gc` keeps such a campaign's history.
pub fn first_behind(store: &Store, campaign: &str) -> Result<Option<String>, StoreError> {
    let Some(last) = store.last_event_at(campaign)? else {
        return Ok(None);
    };
    for (name, _, cursor) in store.webhook_positions(campaign)? {
        // No cursor: the webhook does not follow this campaign.
        let Some(cursor) = cursor else { continue };
        if last < cursor.at {
            continue;
        }
        if batch::count_after(store, campaign, cursor, &EVERY_KIND, Millis::MAX, 1)? > 0 {
            return Ok(Some(name));
        }
    }
    Ok(None)
}
