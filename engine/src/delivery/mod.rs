//! Delivery: SMTP sessions to the relay, many messages per connection, and the mapping of
//! each reply to an [`Outcome`].
//!
//! A fixed number of connection workers share one bounded queue of ready (composed and
//! signed) messages. A worker keeps its session open across messages, drops it after a 421 or
//! an I/O error, and reconnects with back-off. A reply is a value ([`Outcome`]); only failures
//! that no retry can fix (authentication, an untrusted certificate) or a relay that stays out
//! of reach end delivery with a [`DeliveryError`], leaving unsent recipients pending.

mod error;

pub use error::DeliveryError;

use crate::bounce::Classifier;
use crate::model::{Outcome, ReplyRecord};
use crate::smtp::{self, Envelope, Reply, Session, SessionConfig};
use crate::store::{OutcomeUpdate, RecipientKey};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A composed, signed message ready to go to one recipient.
#[derive(Debug)]
pub struct ReadyMessage {
    /// Which recipient, for the outcome.
    pub key: RecipientKey,
    /// Envelope sender and recipient.
    pub envelope: Envelope,
    /// The message bytes, DKIM signature included.
    pub bytes: Vec<u8>,
    /// Its Message-ID, without angle brackets.
    pub message_id: String,
}

/// Consecutive failed connection attempts after which a worker gives up on the relay.
const MAX_CONNECT_ATTEMPTS: u32 = 3;

/// Maps the reply that decided a recipient to its outcome, classifying failures.
pub fn outcome_of(reply: &Reply, classifier: &Classifier) -> Outcome {
    let mut record = reply_record(reply);
    if !reply.is_positive() {
        let class = classifier.classify(Some(reply.code), record.enhanced.as_deref(), &reply.text);
        record.category = Some(class.category);
        record.hard = reply.is_permanent() && class.blames_recipient();
    }
    if reply.is_positive() {
        Outcome::Delivered { reply: record }
    } else if reply.is_permanent() {
        Outcome::Bounced { reply: record }
    } else {
        Outcome::Deferred { reply: record }
    }
}

/// Converts an SMTP reply into the stored form.
pub fn reply_record(reply: &Reply) -> ReplyRecord {
    ReplyRecord {
        code: Some(reply.code),
        enhanced: reply.enhanced.as_ref().map(ToString::to_string),
        text: reply.text.clone(),
        category: None,
        hard: false,
    }
}

/// Runs `connections` workers delivering `messages` through the relay described by `session`
/// until the queue is closed and empty, or `cancel` fires (a transaction in flight still
/// finishes). Every attempted message yields exactly one [`OutcomeUpdate`] on `outcomes`.
pub async fn deliver_via_relay(
    session: Arc<SessionConfig>,
    connections: usize,
    messages: async_channel::Receiver<ReadyMessage>,
    outcomes: mpsc::Sender<OutcomeUpdate>,
    classifier: Arc<Classifier>,
    cancel: CancellationToken,
) -> Result<(), DeliveryError> {
    let mut workers = tokio::task::JoinSet::new();
    let opened = Arc::new(AtomicU64::new(0));
    let alive = Arc::new(AtomicU64::new(connections.max(1) as u64));
    for _ in 0..connections.max(1) {
        let worker = Worker {
            config: session.clone(),
            messages: messages.clone(),
            outcomes: outcomes.clone(),
            classifier: classifier.clone(),
            cancel: cancel.clone(),
            session: None,
            opened: opened.clone(),
            alive: alive.clone(),
            retired: false,
        };
        workers.spawn(worker.run());
    }
    drop(outcomes);
    let mut first_error = None;
    while let Some(joined) = workers.join_next().await {
        if let Ok(Err(error)) = joined {
            // One worker's fatal error stops the others: they would hit the same wall.
            cancel.cancel();
            first_error.get_or_insert(error);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// One connection's worth of delivery.
struct Worker {
    config: Arc<SessionConfig>,
    messages: async_channel::Receiver<ReadyMessage>,
    outcomes: mpsc::Sender<OutcomeUpdate>,
    classifier: Arc<Classifier>,
    cancel: CancellationToken,
    session: Option<Session>,
    /// Sessions opened by all workers of this delivery: while it is zero, a relay that
    /// cannot be reached stops the send; once the relay has accepted a connection, a worker
    /// that cannot get one (the relay caps connections, say) retires instead, unless it is
    /// the last one left.
    opened: Arc<AtomicU64>,
    /// Workers still running.
    alive: Arc<AtomicU64>,
    /// Set when this worker retired (already counted out of `alive`).
    retired: bool,
}

impl Worker {
    async fn run(mut self) -> Result<(), DeliveryError> {
        let result = self.deliver_all().await;
        if !self.retired {
            self.alive.fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(session) = self.session.take() {
            let _ = session.quit().await;
        }
        result
    }

    async fn deliver_all(&mut self) -> Result<(), DeliveryError> {
        loop {
            let message = tokio::select! {
                biased;
                () = self.cancel.cancelled() => return Ok(()),
                message = self.messages.recv() => match message {
                    Ok(message) => message,
                    Err(_) => return Ok(()),
                },
            };
            let outcome = if self.session.is_some() {
                self.send(&message).await
            } else {
                match connect(&self.config, &self.cancel).await {
                    Ok(Some(session)) => {
                        self.opened.fetch_add(1, Ordering::Relaxed);
                        self.session = Some(session);
                        self.send(&message).await
                    }
                    Ok(None) => return Ok(()), // cancelled while reconnecting
                    Err(DeliveryError::Unreachable { source, .. }) if self.may_retire() => {
                        self.retired = true;
                        // Others are delivering: this connection is one too many. The message
                        // goes back for a retry and this worker retires.
                        tracing::warn!(host = %self.config.host, error = %source, "a connection could not be opened; continuing with fewer");
                        let reply = ReplyRecord::local(format!("could not connect: {source}"));
                        let update = OutcomeUpdate {
                            key: message.key,
                            outcome: Outcome::Deferred { reply },
                            message_id: None,
                        };
                        let _ = self.outcomes.send(update).await;
                        return Ok(());
                    }
                    Err(error) => return Err(error),
                }
            };
            if self
                .outcomes
                .send(OutcomeUpdate {
                    key: message.key,
                    outcome,
                    message_id: Some(message.message_id),
                })
                .await
                .is_err()
            {
                return Ok(());
            }
        }
    }

    /// True when this worker may stop for want of a connection: the relay has accepted
    /// connections before and another worker is still running. Claims the retirement.
    fn may_retire(&self) -> bool {
        self.opened.load(Ordering::Relaxed) > 0
            && self
                .alive
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    (n > 1).then(|| n - 1)
                })
                .is_ok()
    }

    /// Sends one message on the open session; never fails, the failure becomes the outcome.
    async fn send(&mut self, message: &ReadyMessage) -> Outcome {
        let Some(session) = self.session.as_mut() else {
            return Outcome::Deferred {
                reply: ReplyRecord::local("no session"),
            };
        };
        match session.send(&message.envelope, &message.bytes).await {
            Ok(transaction) => {
                let outcome = outcome_of(transaction.outcome_for(0), &self.classifier);
                if !session.is_usable() {
                    self.session = None;
                }
                outcome
            }
            Err(error) => {
                tracing::warn!(host = %self.config.host, %error, "connection lost during a transaction");
                self.session = None;
                Outcome::Deferred {
                    reply: ReplyRecord::local(error.to_string()),
                }
            }
        }
    }
}

/// Opens a session, retrying transient failures with back-off (1s, then 2s); `None` when
/// cancelled meanwhile.
async fn connect(
    config: &SessionConfig,
    cancel: &CancellationToken,
) -> Result<Option<Session>, DeliveryError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let error = match smtp::connect(config).await {
            Ok(session) => return Ok(Some(session)),
            Err(error) => error,
        };
        if error.is_configuration() {
            return Err(DeliveryError::Refused {
                host: config.host.clone(),
                port: config.port,
                source: error,
            });
        }
        if attempt >= MAX_CONNECT_ATTEMPTS {
            return Err(DeliveryError::Unreachable {
                host: config.host.clone(),
                port: config.port,
                attempts: attempt,
                source: error,
            });
        }
        tracing::warn!(host = %config.host, %error, attempt, "could not connect; retrying");
        let wait = Duration::from_secs(1 << (attempt - 1).min(4));
        tokio::select! {
            () = cancel.cancelled() => return Ok(None),
            () = tokio::time::sleep(wait) => {}
        }
    }
}
