//! The transactional lane: single messages submitted one at a time (`POST /api/messages`),
//! sent by `volley serve` at priority 1, ahead of any bulk traffic to the same destination.
//!
//! The lane is one campaign in the store (the id of its campaign file, `[api] transactional`),
//! loaded empty when the server starts; each message is a row appended to it
//! ([`crate::store::CampaignStore::append`]) with the fixed columns
//! `email, data, subject, text, html` (see `compose::transactional`). [`TxLane::submit`]
//! checks the request, refuses a suppressed address at once, appends the row and flushes
//! the store before it answers, then wakes the running send: a crash after the answer loses
//! nothing. An idempotency key names the first message for [`IDEMPOTENCY_WINDOW`]: a retry
//! gets the same id and sends nothing more; another request with the same key is refused.
//!
//! ```text
//! HTTP ─► TxLane::submit ─append+flush─► store ─► scheduler (woken: Arrived) ─► compose ─► relay/MX
//! ```

mod request;

pub use request::{Content, FieldError, Message};

use std::sync::Arc;
use std::time::Duration;

use crate::model::{now_millis, Millis, RecipientState, ReplyRecord, Suppression};
use crate::store::{AppendRow, Appended, IdempotencyKey, RecipientKey, Store, StoreError};

/// How long an idempotency key names its first message.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

/// Events read at most to find a delivered message's reply.
const REPLY_SEARCH: usize = 10_000;

/// What wakes the running send when messages arrived in these domains.
pub type Wake = Arc<dyn Fn(Vec<String>) + Send + Sync>;

/// The transactional lane of a running server.
#[derive(Clone)]
pub struct TxLane {
    store: Store,
    campaign: String,
    number: u32,
    required: Arc<Vec<String>>,
    wake: Wake,
}

impl std::fmt::Debug for TxLane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxLane")
            .field("campaign", &self.campaign)
            .finish_non_exhaustive()
    }
}

/// Why a message was not accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The request is malformed: each problem names its field.
    #[error("the message is invalid: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    /// The address is on the suppression list.
    #[error("{address} is suppressed ({reason}: {detail})")]
    Suppressed {
        /// The address.
        address: String,
        /// Why (hard bounce, complaint, unsubscribe, manual …).
        reason: String,
        /// The detail kept with the entry.
        detail: String,
    },
    /// The idempotency key was used within its window for another request.
    #[error("idempotency key {key} was used for another request (message {id})")]
    KeyReused {
        /// The key.
        key: String,
        /// The message the key named first.
        id: String,
    },
    /// The store could not take the message.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A message accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// Its id (for [`TxLane::status`]).
    pub id: String,
    /// False when an idempotency key named an earlier message (nothing more is sent).
    pub new: bool,
}

/// Where one message stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageStatus {
    /// Its id.
    pub id: String,
    /// The address it goes to.
    pub to: String,
    /// Its state.
    pub state: RecipientState,
    /// Delivery attempts made so far.
    pub attempts: u32,
    /// When the first attempt was made (epoch milliseconds).
    pub first_attempt: Option<Millis>,
    /// When a deferred message is tried again (epoch milliseconds).
    pub next_attempt: Option<Millis>,
    /// The last reply (or local failure), when there was one (a delivery's reply is in the
    /// event history, not kept here).
    pub last_reply: Option<ReplyRecord>,
}

impl TxLane {
    /// The lane of campaign `campaign` (loaded already) in `store`: messages must give the
    /// merge fields `required` in their `data`; `wake` tells the running send of new ones.
    pub fn new(
        store: Store,
        campaign: &str,
        required: Vec<String>,
        wake: Wake,
    ) -> Result<TxLane, StoreError> {
        let number = store
            .campaign(campaign)?
            .map(|meta| meta.number)
            .ok_or_else(|| StoreError::UnknownCampaign {
                campaign: campaign.to_owned(),
                path: store.path().to_owned(),
            })?;
        Ok(TxLane {
            store,
            campaign: campaign.to_owned(),
            number,
            required: Arc::new(required),
            wake,
        })
    }

    /// The lane's campaign id.
    pub fn campaign(&self) -> &str {
        &self.campaign
    }

    /// Tells the running send that messages wait in `domains` (on a cluster node, those
    /// other nodes accepted in the domains this one holds).
    pub(crate) fn arrived(&self, domains: Vec<String>) {
        (self.wake)(domains);
    }

    /// The merge fields a templated message's `data` must give.
    pub fn required_fields(&self) -> &[String] {
        &self.required
    }

    /// Stores `message` durably (flushed before this returns), then wakes the running send.
    /// With `idempotency_key`, a retry within [`IDEMPOTENCY_WINDOW`] returns the first
    /// message's id and stores nothing; a different request with the key is refused.
    pub async fn submit(
        &self,
        message: Message,
        idempotency_key: Option<String>,
    ) -> Result<Submitted, SubmitError> {
        let submitted = self.submit_one(message, idempotency_key).await;
        if submitted.is_err() {
            crate::metrics::global().transactional("refused");
        }
        submitted
    }

    async fn submit_one(
        &self,
        message: Message,
        idempotency_key: Option<String>,
    ) -> Result<Submitted, SubmitError> {
        message.check_fields(&self.required)?;
        if let Some(entry) = self.suppressed(&message.to).await? {
            return Err(SubmitError::Suppressed {
                address: message.to.clone(),
                reason: entry.reason.to_string(),
                detail: entry.detail,
            });
        }
        let idempotency = idempotency_key.map(|key| IdempotencyKey {
            fingerprint: message.fingerprint(),
            key,
            window: IDEMPOTENCY_WINDOW,
        });
        let key_text = idempotency.as_ref().map(|i| i.key.clone());
        let row = AppendRow {
            address: message.to.clone(),
            domain: message.domain.clone(),
            values: message.values(),
            variant: message.variant(),
            idempotency,
        };
        let (store, campaign) = (self.store.clone(), self.campaign.clone());
        let started = std::time::Instant::now();
        let appended = tokio::task::spawn_blocking(move || {
            store.append(&campaign, std::slice::from_ref(&row), now_millis())
        })
        .await
        .map_err(|e| self.task_failed(e))??;
        let metrics = crate::metrics::global();
        match appended.into_iter().next() {
            Some(Appended::New(key)) => {
                self.store.flush().await?;
                metrics.store_write(started.elapsed());
                metrics.transactional("accepted");
                (self.wake)(vec![key.domain.clone()]);
                Ok(Submitted {
                    id: key.seq.to_string(),
                    new: true,
                })
            }
            Some(Appended::Existing { key, same_request }) => {
                let id = key.seq.to_string();
                if same_request {
                    metrics.transactional("repeated");
                    Ok(Submitted { id, new: false })
                } else {
                    Err(SubmitError::KeyReused {
                        key: key_text.unwrap_or_default(),
                        id,
                    })
                }
            }
            None => Err(SubmitError::Invalid(vec![FieldError::new(
                "to",
                "the store took nothing",
            )])),
        }
    }

    /// Where message `id` stands, or `None` when there is no such message.
    pub fn status(&self, id: &str) -> Result<Option<MessageStatus>, StoreError> {
        let Ok(seq) = id.parse::<u64>() else {
            return Ok(None);
        };
        let Some(key) = self.store.recipient_key_by_number(self.number, seq)? else {
            return Ok(None);
        };
        let Some(record) = self.record(&key)? else {
            return Ok(None);
        };
        let last_reply = match (&record.last_reply, record.state, record.first_attempt) {
            (None, RecipientState::Delivered, Some(first)) => {
                self.delivery_reply(&record.email, first)?
            }
            _ => record.last_reply.clone(),
        };
        Ok(Some(MessageStatus {
            id: id.to_owned(),
            to: record.email,
            state: record.state,
            attempts: record.attempts,
            first_attempt: record.first_attempt,
            next_attempt: record.next_attempt,
            last_reply,
        }))
    }

    /// The reply of the delivery to `to` at or after `first` (a delivered message keeps
    /// its reply in the event history only): the first delivery event to that address from
    /// a second before, among at most [`REPLY_SEARCH`] events.
    fn delivery_reply(&self, to: &str, first: Millis) -> Result<Option<ReplyRecord>, StoreError> {
        let events = self
            .store
            .export_events(&self.campaign, first.saturating_sub(1_000))?;
        for event in events.take(REPLY_SEARCH) {
            let event = event?;
            if event.kind == crate::store::ExportKind::Delivered && event.recipient == to {
                return Ok(event.reply);
            }
        }
        Ok(None)
    }

    fn record(
        &self,
        key: &RecipientKey,
    ) -> Result<Option<crate::store::RecipientRecord>, StoreError> {
        self.store.recipient(&self.campaign, key)
    }

    /// The suppression entry of `address`, read off the async workers.
    async fn suppressed(&self, address: &str) -> Result<Option<Suppression>, StoreError> {
        let (store, address) = (self.store.clone(), address.to_owned());
        tokio::task::spawn_blocking(move || store.suppression(&address))
            .await
            .map_err(|e| self.task_failed(e))?
    }

    /// A store task that panicked, as a store error.
    fn task_failed(&self, error: tokio::task::JoinError) -> StoreError {
        StoreError::Engine {
            path: self.store.path().to_owned(),
            detail: "a store task of the transactional lane failed".to_owned(),
            source: Box::new(std::io::Error::other(error.to_string())),
        }
    }
}
