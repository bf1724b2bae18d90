//! One connection's life: open a session to its destination, then take messages from the
//! destination's queue (most urgent first), pace them, send them, settle each one, and close
//! when idle, after `max_messages_per_connection`, or when the server says 421.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::destination::Destination;
use super::dial::{open, ConnectFailure, MxConnect};
use super::error::DeliveryError;
use super::throttle::{read_reply, Reading, Stage};
use super::watch::{watch, Watched};
use super::{outcome_of, ReadyMessage, Settled};
use crate::bounce::Classifier;
use crate::model::{now_millis, DestinationBlock, Millis, Outcome, ReplyRecord};
use crate::shaping::{BackoffChange, RateGate, RelayBudget};
use crate::smtp::Session;
use crate::store::OutcomeUpdate;

/// What connections tell the scheduler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryEvent {
    /// A connection task ended (its slot is free).
    ConnectionEnded {
        /// The destination.
        destination: usize,
    },
    /// No host of the destination answered; its queued messages were deferred.
    Unreachable {
        /// The destination.
        destination: usize,
        /// When to try it again.
        until: Instant,
    },
    /// The destination throttled too often and is suspended; its queued messages were
    /// released.
    Suspended {
        /// The destination.
        destination: usize,
        /// When it may be sent to again.
        until: Instant,
    },
    /// The destination's circuit breaker tripped on policy blocks: it is suspended and its
    /// queued messages were released.
    Tripped {
        /// The destination.
        destination: usize,
        /// When it may be probed again.
        until: Instant,
        /// The block: the replies, the count, the pause.
        record: Box<DestinationBlock>,
    },
    /// A probe after a policy block was delivered: the breaker closed again.
    Unblocked {
        /// The destination.
        destination: usize,
    },
    /// One of several relays refused the login, failed TLS or could not be reached; its
    /// queued messages were released (the error is kept on the destination).
    RelayDown {
        /// The destination.
        destination: usize,
    },
    /// A relay cap is reached; the relay's queued messages were released.
    Paused {
        /// The relay's destination.
        destination: usize,
        /// When sending may go on (epoch milliseconds).
        resume_at: Millis,
        /// The campaign-file key of the cap.
        cap: &'static str,
        /// Its value.
        limit: u32,
    },
    /// Delivery must stop (see [`DeliveryContext::take_fatal`]).
    Fatal,
}

/// What every connection of a send shares.
pub struct DeliveryContext {
    /// Where attempts are settled (the recorder).
    pub settled: mpsc::Sender<Settled>,
    /// Where the scheduler hears about connections.
    pub events: mpsc::Sender<DeliveryEvent>,
    /// Classifies failed replies.
    pub classifier: Arc<Classifier>,
    /// Stops every connection (a transaction in flight finishes first).
    pub cancel: CancellationToken,
    /// Paces messages over all destinations (`[shaping.global] max_message_rate`).
    pub global_rate: RateGate,
    /// How MX sessions are opened (direct delivery only).
    pub mx: Option<MxConnect>,
    /// The relay's hourly and daily caps (relay only).
    pub relay_budget: Option<Arc<Mutex<RelayBudget>>>,
    fatal: Mutex<Option<DeliveryError>>,
}

impl DeliveryContext {
    /// A context; `mx` for direct delivery, `relay_budget` for a relay with caps.
    pub fn new(
        settled: mpsc::Sender<Settled>,
        events: mpsc::Sender<DeliveryEvent>,
        classifier: Arc<Classifier>,
        cancel: CancellationToken,
        global_rate: RateGate,
        mx: Option<MxConnect>,
        relay_budget: Option<Arc<Mutex<RelayBudget>>>,
    ) -> Self {
        DeliveryContext {
            settled,
            events,
            classifier,
            cancel,
            global_rate,
            mx,
            relay_budget,
            fatal: Mutex::new(None),
        }
    }

    /// The error that stopped delivery, if one did.
    pub fn take_fatal(&self) -> Option<DeliveryError> {
        self.fatal.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Stops delivery with `error` (the first one set is kept).
    pub(crate) fn set_fatal(&self, error: DeliveryError) {
        self.fatal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(error);
    }

    async fn settle(&self, settled: Settled) -> bool {
        self.settled.send(settled).await.is_ok()
    }

    async fn tell(&self, event: DeliveryEvent) {
        let _ = self.events.send(event).await;
    }
}

/// Runs one connection to `destination` until its queue stays empty for the idle timeout,
/// the per-connection message limit is reached, the session breaks, or delivery is
/// cancelled. The caller has counted it with [`Destination::connection_started`]; `permit`
/// is its slot under the global connection cap.
pub async fn run_connection(
    destination: Arc<Destination>,
    ctx: Arc<DeliveryContext>,
    permit: OwnedSemaphorePermit,
) {
    let mut connection = Connection {
        destination,
        ctx,
        session: None,
        opened: Instant::now(),
        accepted: 0,
    };
    connection.run().await;
    if let Some(session) = connection.session.take() {
        let _ = session.quit().await;
    }
    drop(permit);
    connection.destination.connection_closed();
    let destination = connection.destination.id;
    connection
        .ctx
        .tell(DeliveryEvent::ConnectionEnded { destination })
        .await;
}

struct Connection {
    destination: Arc<Destination>,
    ctx: Arc<DeliveryContext>,
    session: Option<Session>,
    /// When the session was established.
    opened: Instant,
    /// Messages the server accepted on this connection.
    accepted: u64,
}

/// How sending one message went, for the connection.
enum Sent {
    /// Settled; carry on if the session is still usable.
    Done,
    /// The message went back to the queue; close this connection.
    Stop,
}

impl Connection {
    async fn run(&mut self) {
        let cancel = self.ctx.cancel.clone();
        tokio::select! {
            () = cancel.cancelled() => return,
            () = self.destination.connections.pass() => {}
        }
        match open(&self.destination, self.ctx.mx.as_ref(), &cancel).await {
            Ok(session) => {
                self.destination.connected();
                self.session = Some(session);
                self.opened = Instant::now();
            }
            Err(failure) => return connect_failed(&self.destination, &self.ctx, failure).await,
        }
        let idle = self.destination.rule.idle_timeout;
        loop {
            let sent = self.session.as_ref().map_or(0, Session::messages_sent);
            if sent >= self.destination.messages_per_connection() {
                return;
            }
            let Some(message) = self.destination.ready().pop(idle, &cancel).await else {
                return;
            };
            match self.send(message).await {
                Sent::Done if self.session.is_some() => {}
                _ => return,
            }
        }
    }

    /// Paces, sends and settles one message.
    async fn send(&mut self, message: ReadyMessage) -> Sent {
        let cancel = self.ctx.cancel.clone();
        let paced = async {
            self.destination.messages.pass().await;
            self.ctx.global_rate.pass().await;
        };
        tokio::select! {
            () = cancel.cancelled() => {
                self.destination.ready().push_front(message);
                return Sent::Stop;
            }
            () = paced => {}
        }
        let budget = self
            .destination
            .relay
            .as_ref()
            .and_then(|r| r.budget.as_ref())
            .or(self.ctx.relay_budget.as_ref());
        if let Some(budget) = budget {
            let taken = budget
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .try_take(now_millis());
            if let Err(exhausted) = taken {
                self.destination.ready().push_front(message);
                release_queue(&self.destination, &self.ctx).await;
                self.ctx
                    .tell(DeliveryEvent::Paused {
                        destination: self.destination.id,
                        resume_at: exhausted.resume_at,
                        cap: exhausted.cap,
                        limit: exhausted.limit,
                    })
                    .await;
                return Sent::Stop;
            }
        }
        let Some((outcome, stage)) = self.transact(&message).await else {
            self.destination.ready().push_front(message);
            return Sent::Stop;
        };
        self.shape(&outcome, stage).await;
        let outcome = self.watch_blocks(&message, outcome).await;
        let settled = Settled::Outcome {
            campaign: message.campaign,
            destination: Some(self.destination.id),
            update: OutcomeUpdate {
                key: message.key,
                outcome,
                message_id: Some(message.message_id),
            },
        };
        if !self.ctx.settle(settled).await {
            return Sent::Stop;
        }
        Sent::Done
    }

    /// Feeds a reply that blames the sender to the destination's breaker (see `watch`):
    /// returns the outcome to record; a trip closes this connection, hands the queue back
    /// and tells the scheduler.
    async fn watch_blocks(&mut self, message: &ReadyMessage, outcome: Outcome) -> Outcome {
        let recipient = message.envelope.rcpt_to.first().map_or("", String::as_str);
        match watch(
            &self.destination,
            recipient,
            message.blocked_before,
            outcome,
        ) {
            Watched::Unchanged(outcome) | Watched::Block(outcome) => outcome,
            Watched::Tripped {
                outcome,
                until,
                record,
            } => {
                self.session = None;
                release_queue(&self.destination, &self.ctx).await;
                let destination = self.destination.id;
                self.ctx
                    .tell(DeliveryEvent::Tripped {
                        destination,
                        until,
                        record,
                    })
                    .await;
                outcome
            }
        }
    }

    /// Runs one transaction for `message` on the session (`None` without one): its outcome,
    /// and the stage of the reply that decided it (`None` when the connection was lost).
    async fn transact(&mut self, message: &ReadyMessage) -> Option<(Outcome, Option<Stage>)> {
        let session = self.session.as_mut()?;
        let transaction = tracing::debug_span!("smtp.transaction");
        let sent = session
            .send(&message.envelope, &message.bytes)
            .instrument(transaction)
            .await;
        Some(match sent {
            Ok(transaction) => {
                let outcome = outcome_of(transaction.outcome_for(0), &self.ctx.classifier);
                if let (Outcome::Delivered { .. }, Some(mx)) = (&outcome, &self.ctx.mx) {
                    mx.sources.count_delivery(session.local_address());
                }
                if !session.is_usable() {
                    self.session = None;
                }
                (outcome, Some(Stage::of(&transaction, 0)))
            }
            Err(error) => {
                tracing::warn!(destination = %self.destination.name, %error, "connection lost during a transaction");
                self.session = None;
                let reply = ReplyRecord::local(error.to_string());
                (Outcome::Deferred { reply }, None)
            }
        })
    }

    /// Feeds the outcome to the destination: a delivery to its back-off, a 421 that closed
    /// the connection to its per-connection limit, and throttling (read from the reply and
    /// the `stage` it came at) to its back-off; a suspension releases its queue and closes
    /// this connection. A lost connection (`stage` `None`) says nothing about the pace.
    async fn shape(&mut self, outcome: &Outcome, stage: Option<Stage>) {
        let now = Instant::now();
        let reading = match (outcome, stage) {
            (Outcome::Delivered { .. }, _) => {
                self.accepted += 1;
                if self.destination.delivered(now) {
                    let destination = self.destination.id;
                    self.ctx
                        .tell(DeliveryEvent::Unblocked { destination })
                        .await;
                }
                return;
            }
            (Outcome::Deferred { reply } | Outcome::Bounced { reply }, Some(stage)) => {
                read_reply(reply, stage, &self.destination.rule.throttle_replies)
            }
            _ => return,
        };
        match reading {
            Reading::ThisMessage => {}
            Reading::Reconnect => {
                let accepted = self.accepted;
                tracing::debug!(destination = %self.destination.name, accepted, "the server closed the connection; reconnecting");
                self.destination
                    .closed_after(accepted, self.opened, Instant::now());
            }
            Reading::SlowDown => {
                if let BackoffChange::Suspended { until } = self.destination.throttled(now) {
                    self.session = None;
                    release_queue(&self.destination, &self.ctx).await;
                    let destination = self.destination.id;
                    self.ctx
                        .tell(DeliveryEvent::Suspended { destination, until })
                        .await;
                }
            }
        }
    }
}

/// Hands every queued message of the destination back unsent.
async fn release_queue(destination: &Destination, ctx: &DeliveryContext) {
    for message in destination.ready().drain() {
        let released = Settled::Released {
            campaign: message.campaign,
            destination: Some(destination.id),
            key: message.key,
        };
        if !ctx.settle(released).await {
            return;
        }
    }
}

/// Why a destination's queue is deferred when none of its hosts answered; under an
/// MTA-STS `enforce` policy, the policy is named.
fn unreachable_text(destination: &Destination, why: &str) -> String {
    if destination.route.sts_enforced() {
        format!(
            "MTA-STS policy (enforce): no MX host of {} could be reached with STARTTLS and a \
             valid certificate: {why}",
            destination.name
        )
    } else {
        format!(
            "could not connect to any MX host of {}: {why}",
            destination.name
        )
    }
}

/// No session: stop the send (relay), note throttling, or defer the queue when no host
/// of the destination answers and no other connection to it is open.
async fn connect_failed(destination: &Destination, ctx: &DeliveryContext, failure: ConnectFailure) {
    match failure {
        ConnectFailure::Cancelled => {}
        ConnectFailure::Fatal(error) => {
            let others_open = destination.open_connections() > 1;
            let gone = matches!(error, DeliveryError::Unreachable { .. });
            if destination.ever_connected() && others_open && !(gone && destination.fails_over()) {
                // The relay caps connections: carry on with the ones it allows.
                tracing::warn!(destination = %destination.name, %error, "a connection could not be opened; continuing with fewer");
                destination.cap_connections(destination.open_connections() - 1);
                return;
            }
            if destination.fails_over() {
                tracing::warn!(destination = %destination.name, %error, "relay taken out for its cool-down; its messages go to the other relays");
                destination.set_last_error(error);
                release_queue(destination, ctx).await;
                let id = destination.id;
                ctx.tell(DeliveryEvent::RelayDown { destination: id }).await;
                return;
            }
            ctx.set_fatal(error);
            ctx.cancel.cancel();
            ctx.tell(DeliveryEvent::Fatal).await;
        }
        ConnectFailure::Throttled(why) => {
            tracing::debug!(destination = %destination.name, %why, "connection refused with 421");
            destination.throttled(Instant::now());
        }
        ConnectFailure::Unreachable(why) if destination.open_connections() > 1 => {
            tracing::debug!(destination = %destination.name, %why, "an extra connection could not be opened");
        }
        ConnectFailure::Unreachable(why) => {
            let until = destination.connect_failed(Instant::now());
            tracing::warn!(destination = %destination.name, %why, "no MX host answered; deferring its messages");
            let text = unreachable_text(destination, &why);
            for message in destination.ready().drain() {
                let settled = Settled::Outcome {
                    campaign: message.campaign,
                    destination: Some(destination.id),
                    update: OutcomeUpdate {
                        key: message.key,
                        outcome: Outcome::Deferred {
                            reply: ReplyRecord::local(text.clone()),
                        },
                        message_id: None,
                    },
                };
                if !ctx.settle(settled).await {
                    return;
                }
            }
            let id = destination.id;
            ctx.tell(DeliveryEvent::Unreachable {
                destination: id,
                until,
            })
            .await;
        }
    }
}
