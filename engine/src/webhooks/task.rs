//! One webhook's task: register, then forever read the next batch after its cursors, send it
//! until the receiver takes it (or `give_up_after` passes), move the cursor, and keep the
//! status (backlog, last error, next attempt) up to date.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use secrecy::ExposeSecret;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::batch::{self, Batch, Reading};
use super::client::{self, Target};
use super::sign::signature;
use super::{VariantBook, WebhookLease, WebhookStatus};
use crate::config::WebhookSettings;
use crate::model::{now_millis, Millis};
use crate::store::{Store, StoreError, WebhookCursor};

/// Events are sent once they are this old: an event is written with the time it happened,
/// a moment before it reaches the store (a group of outcomes, a tracking batch), and the
/// cursor must never pass a moment before everything of it is written.
const SETTLE: Duration = Duration::from_secs(3);
/// How often a webhook with nothing to send looks again.
const POLL: Duration = Duration::from_secs(1);
/// The first retry's delay; each next one doubles, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between two tries of a batch.
const MAX_BACKOFF: Duration = Duration::from_secs(3_600);
/// How often the backlog is counted while the webhook is behind.
const COUNT_EVERY: Duration = Duration::from_secs(10);
/// Events counted per campaign at most for the backlog.
const COUNT_CAP: u64 = 1_000_000;

/// Everything one webhook's task needs.
pub(super) struct Runner {
    pub(super) settings: Arc<WebhookSettings>,
    pub(super) target: Target,
    pub(super) store: Store,
    pub(super) status: watch::Sender<WebhookStatus>,
    pub(super) lease: Option<WebhookLease>,
    pub(super) variants: VariantBook,
    pub(super) cancel: CancellationToken,
}

/// How sending a batch ended.
enum Sent {
    /// The receiver took it.
    Taken,
    /// Refused for `give_up_after`: dropped.
    GivenUp,
    /// The server is stopping, or another node took the webhook over.
    Stopped,
}

/// Runs a store call on the blocking pool (the PostgreSQL engine blocks its caller).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| {
        Err(StoreError::Engine {
            path: "webhooks".into(),
            detail: format!("a store call panicked: {e}"),
            source: Box::new(std::io::Error::other(e.to_string())),
        })
    })
}

/// The wait before try `attempt + 1` of a batch: doubling from a second, capped at an hour,
/// between half and all of it (jitter, so that many webhooks do not retry in step).
fn backoff(attempt: u32) -> Duration {
    let full = FIRST_BACKOFF
        .saturating_mul(1u32 << attempt.min(20))
        .min(MAX_BACKOFF);
    let half = full / 2;
    half + half.mul_f64(rand::thread_rng().gen_range(0.0..=1.0))
}

impl Runner {
    /// The task: runs until the server stops.
    pub(super) async fn run(self) {
        let Some(since) = self.register().await else {
            return;
        };
        // Read from the store whenever the webhook is (again) this node's: another node
        // may have moved them meanwhile.
        let mut cursors = HashMap::new();
        let mut fresh = false;
        let mut turn = 0usize;
        let mut counted: Option<Instant> = None;
        while !self.cancel.is_cancelled() {
            if !self.hold_lease().await {
                fresh = false;
                self.pause(POLL * 5).await;
                continue;
            }
            if !fresh {
                let Some(stored) = self.load_cursors().await else {
                    return;
                };
                (cursors, fresh) = (stored, true);
            }
            let next = self.next_batch(&mut cursors, since, &mut turn).await;
            let batch = match next {
                Ok(Some(batch)) => batch,
                Ok(None) => {
                    self.status.send_modify(|s| s.backlog = 0);
                    self.pause(POLL).await;
                    continue;
                }
                Err(error) => {
                    self.failed(&error.to_string(), POLL * 5);
                    self.pause(POLL * 5).await;
                    continue;
                }
            };
            if counted.is_none_or(|at| at.elapsed() >= COUNT_EVERY) {
                self.count_backlog(&cursors, since).await;
                counted = Some(Instant::now());
            }
            let sent = if batch.events.is_empty() {
                Sent::Taken
            } else {
                self.send(&batch).await
            };
            match sent {
                Sent::Stopped => fresh = false,
                Sent::Taken | Sent::GivenUp => self.advance(batch, &mut cursors).await,
            }
        }
    }

    /// Registers the webhook (retrying while the store fails); returns since when it sends.
    async fn register(&self) -> Option<Millis> {
        loop {
            let (store, name) = (self.store.clone(), self.settings.name.clone());
            match blocking(move || store.register_webhook(&name, now_millis())).await {
                Ok(since) => return Some(since),
                Err(error) => self.failed(&error.to_string(), POLL * 5),
            }
            if !self.pause(POLL * 5).await {
                return None;
            }
        }
    }

    /// The webhook's cursors as stored (retrying while the store fails).
    async fn load_cursors(&self) -> Option<HashMap<String, WebhookCursor>> {
        loop {
            let (store, name) = (self.store.clone(), self.settings.name.clone());
            match blocking(move || store.webhook_cursors(&name)).await {
                Ok(cursors) => return Some(cursors.into_iter().collect()),
                Err(error) => self.failed(&error.to_string(), POLL * 5),
            }
            if !self.pause(POLL * 5).await {
                return None;
            }
        }
    }

    /// Sleeps `wait`; false when the server stops meanwhile.
    async fn pause(&self, wait: Duration) -> bool {
        tokio::select! {
            () = self.cancel.cancelled() => false,
            () = tokio::time::sleep(wait) => true,
        }
    }

    /// Notes a failure in the status and the log (once per distinct error).
    fn failed(&self, error: &str, retry_in: Duration) {
        let next = now_millis() + u64::try_from(retry_in.as_millis()).unwrap_or(u64::MAX);
        let new = self.status.borrow().last_error.as_deref() != Some(error);
        if new {
            tracing::warn!(webhook = %self.settings.name, %error, retry_in = ?retry_in, "webhook request failed; retrying");
        }
        self.status.send_modify(|s| {
            s.last_error = Some(error.to_owned());
            s.next_attempt = Some(next);
        });
    }

    /// On a cluster, takes (or keeps) the webhook's lease; true when this node holds it.
    async fn hold_lease(&self) -> bool {
        let Some(lease) = self.lease.clone() else {
            return true;
        };
        let store = self.store.clone();
        let name = format!("webhook:{}", self.settings.name);
        let held = blocking(move || match store.cluster() {
            Some(cluster) => Ok(!cluster
                .claim(&lease.owner, &[name], lease.lease)?
                .is_empty()),
            None => Ok(true),
        })
        .await;
        match held {
            Ok(held) => held,
            Err(error) => {
                self.failed(&error.to_string(), POLL * 5);
                false
            }
        }
    }

    /// The next batch of the campaigns the webhook follows, taking them in turn. A campaign
    /// seen for the first time gets its cursor at once (at the webhook's registration), so
    /// `volley gc` knows the webhook follows it.
    async fn next_batch(
        &self,
        cursors: &mut HashMap<String, WebhookCursor>,
        since: Millis,
        turn: &mut usize,
    ) -> Result<Option<Batch>, StoreError> {
        let store = self.store.clone();
        let settings = self.settings.clone();
        let known = cursors.clone();
        let variants = self.variants.clone();
        let start = *turn;
        let (found, next_turn, new) = blocking(move || {
            let mut campaigns = store.campaigns()?;
            campaigns.retain(|c| follows(&settings, c));
            let mut new = Vec::new();
            for campaign in campaigns.iter().filter(|c| !known.contains_key(*c)) {
                let cursor = WebhookCursor { at: since, skip: 0 };
                store.set_webhook_cursor(&settings.name, campaign, cursor)?;
                new.push((campaign.clone(), cursor));
            }
            let n = campaigns.len();
            let horizon = now_millis().saturating_sub(SETTLE.as_millis() as u64);
            for k in 0..n {
                let campaign = &campaigns[(start + k) % n];
                let cursor = cursor_of(&known, campaign, since);
                if store
                    .last_event_at(campaign)?
                    .is_none_or(|last| last < cursor.at)
                {
                    continue;
                }
                let reading = Reading {
                    kinds: &settings.events,
                    max: settings.batch,
                    horizon,
                    variants: variants.of(campaign),
                };
                if let Some(batch) = batch::read(&store, campaign, cursor, &reading)? {
                    return Ok((Some(batch), start + k + 1, new));
                }
            }
            Ok((None, start, new))
        })
        .await?;
        cursors.extend(new);
        *turn = next_turn;
        Ok(found)
    }

    /// Counts the events not yet acknowledged into the status.
    async fn count_backlog(&self, cursors: &HashMap<String, WebhookCursor>, since: Millis) {
        let store = self.store.clone();
        let settings = self.settings.clone();
        let cursors = cursors.clone();
        let counted = blocking(move || {
            let horizon = now_millis().saturating_sub(SETTLE.as_millis() as u64);
            let mut total = 0u64;
            for campaign in store.campaigns()? {
                if !follows(&settings, &campaign) {
                    continue;
                }
                let cursor = cursor_of(&cursors, &campaign, since);
                if store
                    .last_event_at(&campaign)?
                    .is_none_or(|last| last < cursor.at)
                {
                    continue;
                }
                total += batch::count_after(
                    &store,
                    &campaign,
                    cursor,
                    &settings.events,
                    horizon,
                    COUNT_CAP,
                )?;
            }
            Ok(total)
        })
        .await;
        if let Ok(backlog) = counted {
            self.status.send_modify(|s| s.backlog = backlog);
        }
    }

    /// Sends `batch` until it is taken, given up on, or the server stops.
    async fn send(&self, batch: &Batch) -> Sent {
        let body = serde_json::json!({"type": "volley.events", "events": batch.events}).to_string();
        let key = self.settings.secret.expose_secret();
        let mut first_failure: Option<Instant> = None;
        let mut attempt = 0u32;
        loop {
            let timestamp = now_millis() / 1_000;
            let headers = [
                ("webhook-id", batch.id.clone()),
                ("webhook-timestamp", timestamp.to_string()),
                (
                    "webhook-signature",
                    signature(key, &batch.id, timestamp, body.as_bytes()),
                ),
            ];
            let error = match client::post(&self.target, &headers, body.clone()).await {
                Ok(_) => {
                    self.status.send_modify(|s| {
                        s.last_error = None;
                        s.next_attempt = None;
                    });
                    return Sent::Taken;
                }
                Err(error) => error,
            };
            let failing_for = first_failure.get_or_insert_with(Instant::now).elapsed();
            if failing_for >= self.settings.give_up_after {
                tracing::error!(webhook = %self.settings.name, campaign = %batch.campaign, events = batch.events.len(), %error, "webhook batch refused for longer than give_up_after: dropped");
                return Sent::GivenUp;
            }
            let wait = backoff(attempt);
            attempt = attempt.saturating_add(1);
            self.failed(&error.to_string(), wait);
            if !self.pause(wait).await || !self.hold_lease().await {
                return Sent::Stopped;
            }
        }
    }

    /// Moves the campaign's cursor past `batch` (durably, then in `cursors`). When the
    /// store fails the cursor stays: the batch is read and sent again (at least once).
    async fn advance(&self, batch: Batch, cursors: &mut HashMap<String, WebhookCursor>) {
        let (store, name, campaign, end) = (
            self.store.clone(),
            self.settings.name.clone(),
            batch.campaign.clone(),
            batch.end,
        );
        match blocking(move || store.set_webhook_cursor(&name, &campaign, end)).await {
            Ok(()) => {
                let taken = u64::try_from(batch.events.len()).unwrap_or(0);
                self.status
                    .send_modify(|s| s.backlog = s.backlog.saturating_sub(taken));
                cursors.insert(batch.campaign, batch.end);
            }
            Err(error) => self.failed(&error.to_string(), POLL),
        }
    }
}

/// Where the webhook stands in `campaign`: its cursor, or the moment it was registered.
fn cursor_of(
    cursors: &HashMap<String, WebhookCursor>,
    campaign: &str,
    since: Millis,
) -> WebhookCursor {
    cursors
        .get(campaign)
        .copied()
        .unwrap_or(WebhookCursor { at: since, skip: 0 })
}

/// Whether events of `campaign` go to the webhook (`campaigns`, editions included).
pub(crate) fn follows(settings: &WebhookSettings, campaign: &str) -> bool {
    settings.campaigns.as_ref().is_none_or(|ids| {
        ids.iter()
            .any(|id| id == campaign || crate::recurring::is_edition_of(campaign, id))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_back_off_doubles_with_jitter_up_to_an_hour() {
        for attempt in 0..40 {
            let full = FIRST_BACKOFF
                .saturating_mul(1u32 << attempt.min(20))
                .min(MAX_BACKOFF);
            let wait = backoff(attempt);
            assert!(wait >= full / 2 && wait <= full, "{attempt}: {wait:?}");
        }
        assert!(backoff(30) >= MAX_BACKOFF / 2);
    }
}
