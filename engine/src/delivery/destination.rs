//! A destination: where one group of messages goes (the relay, or the MX hosts shared by one
//! or more recipient domains), with its limits, its adaptive back-off and its queue of
//! composed messages waiting for a connection.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::mta_sts::StsMode;
use super::mx::MxHost;
use super::ReadyMessage;
use crate::config::{MxTls, ShapingRule};
use crate::model::{BackoffSnapshot, DestinationBlock, DestinationStatus, Millis, ReplyRecord};
use crate::shaping::{Backoff, BackoffChange, BlockVerdict, Breaker, RateGate};
use crate::smtp::SessionConfig;

/// Priority lanes: 1 (most urgent) to 5.
pub const LANES: usize = 5;

/// How to reach a destination.
#[derive(Debug, Clone)]
pub enum Route {
    /// Through the configured relay; with a token cache when it logs in with XOAUTH2.
    Relay(Arc<SessionConfig>, Option<Arc<super::TokenCache>>),
    /// Straight to these MX hosts (sorted by preference) under a TLS policy.
    Mx {
        /// The hosts.
        hosts: Vec<MxHost>,
        /// The TLS policy.
        tls: MxTls,
        /// The MTA-STS mode of the recipient domains behind it (`enforce` comes with
        /// `tls` required), if they publish a policy.
        sts: Option<StsMode>,
    },
}

impl Route {
    /// True for MX hosts of domains whose MTA-STS policy is in `enforce` mode.
    pub fn sts_enforced(&self) -> bool {
        matches!(
            self,
            Route::Mx {
                sts: Some(StsMode::Enforce),
                ..
            }
        )
    }
}

/// What a relay destination of a send with several relays carries.
#[derive(Debug, Clone)]
pub struct RelayPart {
    /// The relay's name (`name`, default `host:port`).
    pub name: String,
    /// Its hourly and daily caps, when it has any.
    pub budget: Option<Arc<Mutex<crate::shaping::RelayBudget>>>,
    /// True with more than one relay: a refused login, a TLS failure or a relay out of
    /// reach takes it out for its cool-down instead of stopping the send.
    pub fails_over: bool,
}

/// Mutable state behind one lock, held briefly and never across an await.
#[derive(Debug)]
struct State {
    backoff: Backoff,
    /// The circuit breaker on policy blocks.
    breaker: Breaker,
    failing_until: Option<Instant>,
    consecutive_failures: u32,
    /// A cap learned from a relay that refused more connections.
    learned_cap: Option<usize>,
    /// Messages per connection learned from 421s that closed connections (see
    /// [`Destination::closed_after`]).
    learned_messages: Option<u64>,
    /// The message count of a connection the server closed, and when: a connection opened
    /// after that and closed at the same count confirms it as the server's limit.
    close_candidate: Option<(u64, Instant)>,
    /// When connections open together were seen closing at differing counts (a server
    /// closing everything at once): closes of connections opened before then teach nothing.
    mixed_close_at: Option<Instant>,
    /// When the per-connection limit was learned in this run (not one from an earlier run).
    learned_at: Option<Instant>,
    domains: usize,
    delivered: u64,
    throttled: u64,
}

/// One destination, shared by the scheduler and its connection tasks.
#[derive(Debug)]
pub struct Destination {
    /// Its index in the run, for accounting.
    pub id: usize,
    /// Its name: `relay host:port`, or its MX host names.
    pub name: String,
    /// How to reach it.
    pub route: Route,
    /// The limits that apply.
    pub rule: ShapingRule,
    /// The name of the `[shaping.*]` entry behind `rule`.
    pub rule_name: String,
    /// Paces its messages (the rule's rate, lowered by back-off).
    pub messages: RateGate,
    /// Paces its new connections.
    pub connections: RateGate,
    /// True for the relay: a failure to connect or log in stops the whole send.
    pub fatal_connect_errors: bool,
    /// One of several relays (`[[relay]]`): its name, its hourly and daily caps, and
    /// whether a failure that stops a lone relay takes it out instead.
    pub relay: Option<RelayPart>,
    /// Sessions opened to it in this run.
    sessions: AtomicU64,
    /// Why it was taken out last (a relay of several), for when every relay is out.
    last_error: Mutex<Option<super::DeliveryError>>,
    /// Until when it is taken out (a relay of several), for status displays.
    out_until: Mutex<Option<Instant>>,
    ready: ReadyQueue,
    state: Mutex<State>,
    open: AtomicUsize,
    ever_connected: AtomicBool,
    /// The nodes of a cluster splitting this destination's limits (1: not split).
    share: AtomicUsize,
    /// This node's place among them (0-based, by name): the first `cap % nodes` take one
    /// connection more.
    rank: AtomicUsize,
    /// Set when back-off changed since a cluster node last shared it.
    backoff_changed: AtomicBool,
}

impl Destination {
    /// A destination for `route` under `rule`.
    pub fn new(
        id: usize,
        name: String,
        route: Route,
        rule: ShapingRule,
        rule_name: String,
    ) -> Self {
        let fatal_connect_errors = matches!(route, Route::Relay(..));
        let backoff = Backoff::new(&rule);
        let breaker = Breaker::new(&rule);
        Destination {
            id,
            name,
            messages: RateGate::new(backoff.rate()),
            connections: RateGate::new(rule.max_connection_rate.map(|r| r.per_second())),
            route,
            rule,
            rule_name,
            fatal_connect_errors,
            relay: None,
            sessions: AtomicU64::new(0),
            last_error: Mutex::new(None),
            out_until: Mutex::new(None),
            ready: ReadyQueue::default(),
            state: Mutex::new(State {
                backoff,
                breaker,
                failing_until: None,
                consecutive_failures: 0,
                learned_cap: None,
                learned_messages: None,
                close_candidate: None,
                mixed_close_at: None,
                learned_at: None,
                domains: 0,
                delivered: 0,
                throttled: 0,
            }),
            open: AtomicUsize::new(0),
            ever_connected: AtomicBool::new(false),
            share: AtomicUsize::new(1),
            rank: AtomicUsize::new(0),
            backoff_changed: AtomicBool::new(false),
        }
    }

    /// The same destination as one relay of a send (see [`RelayPart`]).
    pub fn with_relay(mut self, relay: RelayPart) -> Self {
        self.relay = Some(relay);
        self
    }

    /// True when a failure that would stop a lone relay takes this one out instead.
    pub fn fails_over(&self) -> bool {
        self.relay.as_ref().is_some_and(|r| r.fails_over)
    }

    /// Sessions opened to it in this run.
    pub fn sessions(&self) -> u64 {
        self.sessions.load(Ordering::Relaxed)
    }

    /// Keeps the error that took this relay out.
    pub fn set_last_error(&self, error: super::DeliveryError) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(error);
    }

    /// Notes that this relay is taken out until `until` (`None`: back in), for status.
    pub fn set_taken_out(&self, until: Option<Instant>) {
        *self.out_until.lock().unwrap_or_else(|p| p.into_inner()) = until;
    }

    /// Takes the error that took this relay out, if one did.
    pub fn take_last_error(&self) -> Option<super::DeliveryError> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The queue of composed messages waiting for a connection.
    pub fn ready(&self) -> &ReadyQueue {
        &self.ready
    }

    /// Notes one more recipient domain routed here.
    pub fn add_domain(&self) {
        self.state().domains += 1;
    }

    /// Connections open or opening.
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Counts a connection task starting; pair with [`Self::connection_closed`].
    pub fn connection_started(&self) {
        self.open.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a connection task ending.
    pub fn connection_closed(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }

    /// True once any connection to it was established in this run.
    pub fn ever_connected(&self) -> bool {
        self.ever_connected.load(Ordering::Relaxed)
    }

    /// How many connections it may have now: the back-off's cap, or fewer when the server
    /// refused more.
    pub fn connection_limit(&self) -> usize {
        let state = self.state();
        let cap = state
            .learned_cap
            .map_or(state.backoff.connections(), |learned| {
                learned.min(state.backoff.connections())
            });
        let limit = split(cap, self.nodes(), self.rank.load(Ordering::Relaxed));
        // A node left without a connection of its own still sends what it has composed.
        if limit == 0 && !self.ready.is_empty() {
            return 1;
        }
        limit
    }

    /// True while this node's part of the split leaves it no connection (more nodes than
    /// connections): it should take no recipients for this destination.
    pub fn benched(&self) -> bool {
        let cap = self.state().backoff.connections();
        split(cap, self.nodes(), self.rank.load(Ordering::Relaxed)) == 0
    }

    fn nodes(&self) -> usize {
        self.share.load(Ordering::Relaxed).max(1)
    }

    /// Splits the destination's connection cap and message rate between `nodes` cluster
    /// nodes sending to it (a relay), this one being number `rank` of them (0-based, in
    /// name order): the cap's connections are dealt out one by one, so together the nodes
    /// never open more than the cap (with more nodes than connections, the last ones get
    /// none: see [`Destination::benched`]); the rate is split evenly between the nodes that
    /// got a connection.
    pub fn split_between(&self, nodes: usize, rank: usize) {
        let nodes = nodes.max(1);
        let changed = self.share.swap(nodes, Ordering::Relaxed) != nodes;
        if self.rank.swap(rank, Ordering::Relaxed) != rank || changed {
            let rate = self.state().backoff.rate();
            self.pace(rate);
        }
    }

    /// Sets the message rate: `rate` (the rule's, or back-off's) split between the nodes
    /// that have a connection.
    fn pace(&self, rate: Option<f64>) {
        let cap = self.state().backoff.connections().max(1);
        let senders = self.nodes().min(cap) as f64;
        self.messages.set(rate.map(|r| r / senders));
    }

    /// Remembers that the server takes no more than `n` connections at once (at least one).
    pub fn cap_connections(&self, n: usize) {
        let mut state = self.state();
        let n = n.max(1);
        state.learned_cap = Some(state.learned_cap.map_or(n, |cap| cap.min(n)));
    }

    /// How many messages a connection may carry: the rule's `max_messages_per_connection`, or
    /// fewer once the server's own limit is learned.
    pub fn messages_per_connection(&self) -> u64 {
        let rule = self.rule.max_messages_per_connection;
        self.state().learned_messages.map_or(rule, |n| n.min(rule))
    }

    /// The per-connection message limit learned from the server, if one was.
    pub fn learned_messages_per_connection(&self) -> Option<u64> {
        self.state().learned_messages
    }

    /// Starts from a limit learned in an earlier run (at least one message).
    pub fn learn_messages_per_connection(&self, n: u64) {
        self.state().learned_messages = Some(n.max(1));
    }

    /// Notes that the server closed a connection opened at `opened` (a 421 that is not
    /// throttling) after it had accepted `n` messages on it, at `now`. A server's per-connection cap
    /// closes every connection at the same count: connections open together close alike, and
    /// one opened after such a close closes at that count again, which confirms it; from then
    /// on connections close after `n - 1` messages (a margin for servers that count
    /// differently). A server closing every connection at once closes connections open
    /// together at differing counts: that spoils the candidate, and closes of connections
    /// opened before it teach nothing. Returns the limit when this call learned it.
    pub fn closed_after(&self, n: u64, opened: Instant, now: Instant) -> Option<u64> {
        let mut state = self.state();
        if let (Some(limit), Some(at)) = (state.learned_messages, state.learned_at) {
            if n != limit + 1 && opened <= at {
                // A connection open when the limit was learned closed at another count: that
                // was a server closing everything at once, not a cap. Forget it.
                state.learned_messages = None;
                state.learned_at = None;
                state.close_candidate = None;
                state.mixed_close_at = Some(now);
                return None;
            }
        }
        if n < 2 || state.learned_messages.is_some() {
            return None;
        }
        match state.close_candidate {
            Some((count, at)) if count == n && opened > at => {}
            Some((count, _)) if count == n => return None,
            Some((_, at)) if opened <= at => {
                // Open together with the candidate's connection, closed at another count.
                state.close_candidate = None;
                state.mixed_close_at = Some(now);
                return None;
            }
            _ => {
                if state.mixed_close_at.is_none_or(|mixed| opened > mixed) {
                    state.close_candidate = Some((n, now));
                }
                return None;
            }
        }
        let limit = n - 1;
        state.learned_messages = Some(limit);
        state.learned_at = Some(now);
        drop(state);
        tracing::info!(destination = %self.name, messages = limit, "learned the server's per-connection message limit");
        Some(limit)
    }

    /// When it may be sent to again, if it is suspended (throttled, or by its breaker on
    /// policy blocks) or failing at `now`.
    pub fn blocked_until(&self, now: Instant) -> Option<Instant> {
        let mut state = self.state();
        let failing = state.failing_until.filter(|&until| until > now);
        let suspended = state
            .backoff
            .suspended_until(now)
            .max(state.breaker.open_until(now));
        match (suspended, failing) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// True when the circuit breaker on policy blocks is on here (`block_breaker`).
    pub fn watches_blocks(&self) -> bool {
        self.state().breaker.enabled()
    }

    /// True while the breaker is closed (not suspended, not probing).
    pub fn breaker_closed(&self) -> bool {
        self.state().breaker.is_closed()
    }

    /// Notes a reply that refused `recipient` because the sender is blocked, at `now`
    /// (`now_ms` in epoch milliseconds): counted, or the breaker trips.
    pub fn sender_blocked(
        &self,
        recipient: &str,
        reply: &ReplyRecord,
        now: Instant,
        now_ms: Millis,
    ) -> BlockVerdict {
        let verdict = self
            .state()
            .breaker
            .on_block(&self.name, recipient, reply, now, now_ms);
        if let BlockVerdict::Tripped { until, record } = &verdict {
            let minutes = until.saturating_duration_since(now).as_secs() / 60;
            tracing::warn!(destination = %self.name, minutes, replies = record.replies, reply = %record.last_reply, "the receiver blocks the sender: destination suspended");
        }
        verdict
    }

    /// The policy block holding the destination back while its breaker is open at `now`.
    pub fn holding_block(&self, now: Instant) -> Option<DestinationBlock> {
        let mut state = self.state();
        state.breaker.open_until(now)?;
        state.breaker.record().cloned()
    }

    /// The current (or last) policy block seen here, if any.
    pub fn block(&self) -> Option<DestinationBlock> {
        self.state().breaker.record().cloned()
    }

    /// Takes over a policy block kept from an earlier run (see [`Breaker::resume`]).
    pub fn resume_block(&self, record: &DestinationBlock, now: Instant, now_ms: Millis) {
        self.state().breaker.resume(record, now, now_ms);
    }

    /// Notes a session established.
    pub fn connected(&self) {
        self.ever_connected.store(true, Ordering::Relaxed);
        self.sessions.fetch_add(1, Ordering::Relaxed);
        let mut state = self.state();
        state.consecutive_failures = 0;
        state.failing_until = None;
    }

    /// Notes that no host could be reached; returns when to try again (30 s, doubling up to
    /// 10 minutes with each consecutive failure).
    pub fn connect_failed(&self, now: Instant) -> Instant {
        let mut state = self.state();
        state.consecutive_failures += 1;
        let wait = Duration::from_secs(30) * 2u32.pow(state.consecutive_failures.min(5) - 1);
        let until = now + wait.min(Duration::from_secs(600));
        state.failing_until = Some(until);
        until
    }

    /// Notes a delivery; raises the rate when back-off allows. Returns true when it was the
    /// probe that closed the breaker on policy blocks.
    pub fn delivered(&self, now: Instant) -> bool {
        let (change, unblocked) = {
            let mut state = self.state();
            state.delivered += 1;
            (
                state.backoff.on_delivery(now),
                state.breaker.on_delivery(now),
            )
        };
        if let Some(change) = change {
            self.apply(change);
        }
        if unblocked {
            tracing::info!(destination = %self.name, "the receiver takes mail again: policy block lifted");
        }
        unblocked
    }

    /// Notes a throttling reply; returns the change (a cut, or a suspension).
    pub fn throttled(&self, now: Instant) -> BackoffChange {
        let change = {
            let mut state = self.state();
            state.throttled += 1;
            state.backoff.on_throttle(now)
        };
        self.apply(change);
        change
    }

    /// The back-off state to share with the cluster, when it changed since last asked.
    pub fn backoff_to_share(&self, now: Instant) -> Option<BackoffSnapshot> {
        if !self.backoff_changed.swap(false, Ordering::AcqRel) {
            return None;
        }
        Some(self.state().backoff.snapshot(now))
    }

    /// Takes over the back-off state another node left for this destination.
    pub fn resume_backoff(&self, snapshot: &BackoffSnapshot, now: Instant) {
        let rate = {
            let mut state = self.state();
            state.backoff.resume(snapshot, now);
            state.backoff.rate()
        };
        self.pace(rate);
        tracing::info!(destination = %self.name, rate = ?rate, connections = snapshot.connections, suspended_for = ?snapshot.suspended_for, "back-off taken over from the node that sent here before");
    }

    fn apply(&self, change: BackoffChange) {
        self.backoff_changed.store(true, Ordering::Release);
        match change {
            BackoffChange::Cut {
                rate,
                connections,
                hold_until,
            } => {
                self.pace(Some(rate));
                self.messages.hold_until(hold_until);
                tracing::warn!(destination = %self.name, rate = format!("{rate:.1}/s"), connections, "throttled by the receiver: slowing down");
            }
            BackoffChange::Raised { rate, connections } => {
                self.pace(rate);
                match rate {
                    Some(rate) => {
                        tracing::info!(destination = %self.name, rate = format!("{rate:.1}/s"), connections, "recovering from throttling")
                    }
                    None => {
                        tracing::info!(destination = %self.name, connections, "recovered from throttling: back to full speed")
                    }
                }
            }
            BackoffChange::Suspended { until } => {
                let seconds = until.saturating_duration_since(Instant::now()).as_secs();
                tracing::warn!(destination = %self.name, seconds, "throttled repeatedly: destination suspended");
            }
        }
    }

    /// A snapshot for status displays.
    pub fn status(&self, now: Instant) -> DestinationStatus {
        let mut state = self.state();
        let block_open = state.breaker.open_until(now).is_some();
        let seconds = |until: Instant| until.saturating_duration_since(now).as_secs().max(1);
        DestinationStatus {
            name: self.name.clone(),
            rule: self.rule_name.clone(),
            domains: state.domains,
            connections: self.open_connections(),
            connection_limit: state
                .learned_cap
                .map_or(state.backoff.connections(), |cap| {
                    cap.min(state.backoff.connections())
                }),
            rate: state.backoff.rate(),
            queued: self.ready.len(),
            delivered: state.delivered,
            throttled: state.throttled,
            messages_per_connection: state.learned_messages,
            backing_off: state.backoff.is_throttled(),
            suspended_for: state
                .backoff
                .suspended_until(now)
                .max(state.breaker.open_until(now))
                .map(seconds),
            block: state.breaker.record().filter(|_| block_open).cloned(),
            failing_for: state
                .failing_until
                .filter(|&until| until > now)
                .map(seconds),
            taken_out_for: self
                .out_until
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .map(seconds),
        }
    }
}

/// Node `rank`'s part of `cap` connections dealt out one by one to `nodes` nodes.
fn split(cap: usize, nodes: usize, rank: usize) -> usize {
    let nodes = nodes.max(1);
    cap / nodes + usize::from(rank < cap % nodes)
}

/// Composed messages waiting for a connection, one lane per priority: a connection always
/// takes the most urgent message first, so bulk traffic pauses while urgent messages wait.
/// Its size is bounded by the scheduler, which admits only as many messages as it allows.
#[derive(Debug, Default)]
pub struct ReadyQueue {
    lanes: Mutex<Lanes>,
    notify: Notify,
}

#[derive(Debug, Default)]
struct Lanes {
    queues: [VecDeque<ReadyMessage>; LANES],
    len: usize,
    /// Nothing more is coming for now: an empty queue ends idle connections at once.
    draining: bool,
}

impl ReadyQueue {
    fn lock(&self) -> MutexGuard<'_, Lanes> {
        self.lanes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.lock().len
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues a message behind others of its priority.
    pub fn push(&self, message: ReadyMessage) {
        let lane = lane_of(message.priority);
        let mut lanes = self.lock();
        lanes.queues[lane].push_back(message);
        lanes.len += 1;
        drop(lanes);
        self.notify.notify_one();
    }

    /// Puts a message back at the head of its lane (it was taken but not sent).
    pub fn push_front(&self, message: ReadyMessage) {
        let lane = lane_of(message.priority);
        let mut lanes = self.lock();
        lanes.queues[lane].push_front(message);
        lanes.len += 1;
        drop(lanes);
        self.notify.notify_one();
    }

    /// The most urgent waiting message, if any.
    pub fn try_pop(&self) -> Option<ReadyMessage> {
        let mut lanes = self.lock();
        let message = lanes.queues.iter_mut().find_map(VecDeque::pop_front)?;
        lanes.len -= 1;
        Some(message)
    }

    /// The most urgent message, waiting up to `idle` for one; `None` after `idle` or when
    /// `cancel` fires.
    pub async fn pop(&self, idle: Duration, cancel: &CancellationToken) -> Option<ReadyMessage> {
        let deadline = tokio::time::Instant::now() + idle;
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut lanes = self.lock();
                if let Some(message) = lanes.queues.iter_mut().find_map(VecDeque::pop_front) {
                    lanes.len -= 1;
                    return Some(message);
                }
                if lanes.draining {
                    return None;
                }
            }
            tokio::select! {
                biased;
                () = cancel.cancelled() => return None,
                () = tokio::time::sleep_until(deadline) => return None,
                () = &mut notified => {}
            }
        }
    }

    /// Takes every waiting message of campaign `campaign` (one taken out of the run).
    pub fn drain_campaign(&self, campaign: usize) -> Vec<ReadyMessage> {
        let mut lanes = self.lock();
        let mut out = Vec::new();
        for queue in &mut lanes.queues {
            let (gone, kept): (VecDeque<_>, VecDeque<_>) =
                queue.drain(..).partition(|m| m.campaign == campaign);
            *queue = kept;
            out.extend(gone);
        }
        lanes.len -= out.len();
        out
    }

    /// Takes every waiting message.
    pub fn drain(&self) -> Vec<ReadyMessage> {
        let mut lanes = self.lock();
        lanes.len = 0;
        lanes.queues.iter_mut().flat_map(|q| q.drain(..)).collect()
    }

    /// Says whether more messages are coming soon; while draining, connections waiting on
    /// an empty queue end at once instead of idling (their slots go to other destinations).
    pub fn set_draining(&self, draining: bool) {
        let changed = {
            let mut lanes = self.lock();
            std::mem::replace(&mut lanes.draining, draining) != draining
        };
        if changed && draining {
            self.notify.notify_waiters();
        }
    }
}

/// The lane index of a priority (1 to 5; anything else goes to the nearest end).
fn lane_of(priority: u8) -> usize {
    usize::from(priority.clamp(1, LANES as u8) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MxTls;

    fn destination() -> Destination {
        let rule = ShapingRule {
            max_messages_per_connection: 100,
            ..ShapingRule::default()
        };
        let route = Route::Mx {
            hosts: Vec::new(),
            tls: MxTls::Opportunistic,
            sts: None,
        };
        Destination::new(0, "mx.test".into(), route, rule, "default".into())
    }

    #[test]
    fn split_between_nodes_each_takes_its_part_of_the_connections_and_rate() {
        let rule = ShapingRule {
            max_connections: 6,
            max_message_rate: Some(crate::config::Rate {
                count: 30.0,
                per: Duration::from_secs(1),
            }),
            ..ShapingRule::default()
        };
        let route = Route::Mx {
            hosts: Vec::new(),
            tls: MxTls::Opportunistic,
            sts: None,
        };
        let d = Destination::new(0, "relay".into(), route, rule, "relay".into());
        assert_eq!(d.connection_limit(), 6);
        d.split_between(3, 0);
        assert_eq!(d.connection_limit(), 2);
        assert_eq!(d.messages.rate(), Some(10.0));
        // Four nodes: 6 connections dealt out 2, 2, 1, 1; the rate split four ways.
        let parts: Vec<usize> = (0..4)
            .map(|rank| {
                d.split_between(4, rank);
                d.connection_limit()
            })
            .collect();
        assert_eq!(parts, vec![2, 2, 1, 1]);
        assert_eq!(d.messages.rate(), Some(7.5));
        // More nodes than connections: the first six get one each, the rest none (benched),
        // and the rate is split between the six.
        let parts: Vec<usize> = (0..10)
            .map(|rank| {
                d.split_between(10, rank);
                d.connection_limit()
            })
            .collect();
        assert_eq!(parts.iter().sum::<usize>(), 6, "{parts:?}");
        assert!(d.benched() && !parts[..6].contains(&0));
        assert_eq!(d.messages.rate(), Some(5.0));
        d.split_between(1, 0);
        assert!(!d.benched());
        assert_eq!((d.connection_limit(), d.messages.rate()), (6, Some(30.0)));
    }

    #[test]
    fn a_cap_seen_again_on_a_later_connection_is_learned_as_one_less() {
        let d = destination();
        let t = |ms| Instant::now() + Duration::from_millis(ms);
        let first_opened = t(0);
        assert_eq!(d.closed_after(10, first_opened, t(10)), None, "seen once");
        assert_eq!(
            d.closed_after(10, first_opened, t(11)),
            None,
            "a connection open before that close may be the same event"
        );
        assert_eq!(d.messages_per_connection(), 100);
        assert_eq!(d.closed_after(10, t(12), t(20)), Some(9));
        assert_eq!(d.messages_per_connection(), 9);
        assert_eq!(d.status(Instant::now()).messages_per_connection, Some(9));
        assert!(!d.status(Instant::now()).backing_off, "no slowing down");
    }

    #[test]
    fn closes_at_differing_counts_teach_nothing() {
        let d = destination();
        let t = |ms| Instant::now() + Duration::from_millis(ms);
        for (i, n) in [7, 12, 3, 9].into_iter().enumerate() {
            let i = i as u64 * 10;
            assert_eq!(d.closed_after(n, t(i + 1), t(i + 5)), None);
        }
        assert_eq!(d.learned_messages_per_connection(), None);
        assert_eq!(d.messages_per_connection(), 100);
    }

    #[test]
    fn connections_open_together_closing_at_differing_counts_teach_nothing() {
        let d = destination();
        let t = |ms| Instant::now() + Duration::from_millis(ms);
        // Four connections open together; the server closes them all at once, twice.
        for n in [5, 5, 6, 4] {
            assert_eq!(d.closed_after(n, t(0), t(100)), None);
        }
        for n in [4, 7, 4, 4] {
            assert_eq!(
                d.closed_after(n, t(200), t(300)),
                None,
                "4 again, by chance"
            );
        }
        assert_eq!(d.learned_messages_per_connection(), None);
        // A real cap afterwards is still learned.
        assert_eq!(d.closed_after(10, t(400), t(500)), None);
        assert_eq!(d.closed_after(10, t(600), t(700)), Some(9));
    }

    #[test]
    fn a_limit_learned_in_a_close_all_is_forgotten_when_a_sibling_closes_at_another_count() {
        let d = destination();
        let t = |ms| Instant::now() + Duration::from_millis(ms);
        assert_eq!(d.closed_after(25, t(0), t(100)), None);
        // The next close-all: one connection happens to close at 25 again, first.
        assert_eq!(d.closed_after(25, t(200), t(300)), Some(24));
        assert_eq!(d.closed_after(15, t(200), t(301)), None);
        assert_eq!(d.learned_messages_per_connection(), None);
        assert_eq!(d.messages_per_connection(), 100);
    }

    #[test]
    fn a_limit_from_an_earlier_run_applies_at_once() {
        let d = destination();
        d.learn_messages_per_connection(42);
        assert_eq!(d.messages_per_connection(), 42);
        assert_eq!(
            d.closed_after(5, Instant::now(), Instant::now()),
            None,
            "kept for the run"
        );
    }
}
