//! Where each recipient domain's mail goes: the relay for every domain, or the destination
//! its MX lookup leads to. Domains whose MX hosts are the same (and that fall under the same
//! `[shaping.*]` entry and TLS policy) share one destination: one connection pool, one set of
//! limits. Lookups run as tasks; answers are kept until their TTL runs out and refreshed in
//! the background while the old answer is still used.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::relays::{RelayPool, RelaySlot};
use crate::config::{MxTls, ShapingRule};
use crate::delivery::{
    Destination, MtaSts, MxAnswer, MxResolver, RelayPart, Resolved, Route, StsCheck, StsMode,
    TokenCache,
};
use crate::model::{BackoffSnapshot, Clock, DestinationBlock};
use crate::shaping::{RelayBudget, ShapingPolicy};
use crate::smtp::SessionConfig;

/// Lookups running at once at most.
const MAX_LOOKUPS: usize = 64;

/// One relay of a send (`[relay]`, or a `[[relay]]` entry).
pub struct RelayRoute {
    /// The relay's session settings.
    pub session: Arc<SessionConfig>,
    /// Its access token, when it logs in with XOAUTH2.
    pub token: Option<Arc<TokenCache>>,
    /// Its limits.
    pub rule: ShapingRule,
    /// Its name (`name`, default `host:port`); its destination is `relay <name>`.
    pub name: String,
    /// Its share of the traffic among the relays of its priority.
    pub weight: u32,
    /// Its failover order (lower is preferred).
    pub priority: u32,
    /// How long it is taken out after a failure no retry fixes.
    pub cooldown: Duration,
    /// Its hourly and daily caps, when it has any.
    pub budget: Option<Arc<Mutex<RelayBudget>>>,
}

/// How recipients are routed.
#[expect(
    clippy::large_enum_variant,
    reason = "one per send, built once: boxing the MX parts would buy nothing"
)]
pub enum Mode {
    /// Everything through the relays (one with `[relay]`), split by weight and priority.
    Relay {
        /// The relays, in file order.
        relays: Vec<RelayRoute>,
    },
    /// Straight to each domain's MX hosts.
    Mx {
        /// Looks up MX records.
        resolver: MxResolver,
        /// Picks each destination's `[shaping.*]` rule.
        policy: ShapingPolicy,
        /// `[mx] tls`, for destinations whose rule sets none.
        tls: MxTls,
        /// MTA-STS policies (`[mx] mta_sts`), when on.
        sts: Option<Arc<MtaSts>>,
    },
}

impl std::fmt::Debug for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mode::Relay { relays } => {
                let names: Vec<&str> = relays.iter().map(|r| r.name.as_str()).collect();
                write!(f, "Mode::Relay({})", names.join(", "))
            }
            Mode::Mx { tls, .. } => write!(f, "Mode::Mx(tls {})", tls.as_str()),
        }
    }
}

/// A failure decided without a connection (DNS says so).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LocalFailure {
    /// The enhanced status code to record (`5.1.2`, `4.4.3`…).
    pub(crate) enhanced: &'static str,
    /// What happened.
    pub(crate) text: String,
}

/// Where a domain stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RouteState {
    /// Its MX lookup is running.
    Resolving,
    /// Its mail goes to this destination.
    Routed(usize),
    /// Its recipients get this outcome without a connection.
    Fails(LocalFailure),
}

struct Entry {
    state: RouteState,
    valid_until: Instant,
    refreshing: bool,
}

/// The routing table and the destinations it created.
pub(crate) struct Routing {
    mode: Mode,
    entries: HashMap<String, Entry>,
    by_key: HashMap<String, usize>,
    pub(crate) destinations: Vec<Arc<Destination>>,
    lookups_running: usize,
    answers: mpsc::UnboundedSender<(String, Resolved)>,
    /// Per-connection message limits learned in earlier runs, by destination name.
    learned: HashMap<String, u64>,
    /// On a cluster node: the back-off other nodes left, by destination name.
    shared_backoff: HashMap<String, BackoffSnapshot>,
    /// The relays and the split between them (relay mode only).
    pub(crate) relays: Option<RelayPool>,
    /// Policy blocks kept from earlier runs, by destination name, and the clock their
    /// pauses are measured with.
    blocks: HashMap<String, DestinationBlock>,
    clock: Clock,
}

impl Routing {
    /// Takes the back-off other cluster nodes left (by destination name): destinations
    /// made from now on start from it, and those already made take it over now.
    pub(crate) fn share_backoff(&mut self, shared: HashMap<String, BackoffSnapshot>) {
        let now = std::time::Instant::now();
        for destination in &self.destinations {
            if let Some(snapshot) = shared.get(&destination.name) {
                if self.shared_backoff.get(&destination.name) != Some(snapshot) {
                    destination.resume_backoff(snapshot, now);
                }
            }
        }
        self.shared_backoff = shared;
    }

    /// A table for `mode`; answers of lookups arrive on `answers` (at most [`MAX_LOOKUPS`]
    /// at a time, so the channel stays small).
    /// `learned` are per-connection message limits learned in earlier runs, and `blocks`
    /// the policy blocks kept from them (their pauses measured with `clock`), by destination
    /// name.
    /// Relay cool-downs run on `clock`.
    pub(crate) fn new(
        mode: Mode,
        answers: mpsc::UnboundedSender<(String, Resolved)>,
        learned: HashMap<String, u64>,
        blocks: HashMap<String, DestinationBlock>,
        clock: Clock,
    ) -> Self {
        let mut routing = Routing {
            mode,
            entries: HashMap::new(),
            by_key: HashMap::new(),
            destinations: Vec::new(),
            lookups_running: 0,
            answers,
            learned,
            shared_backoff: HashMap::new(),
            relays: None,
            blocks,
            clock: clock.clone(),
        };
        let relays = match &mut routing.mode {
            Mode::Relay { relays } => std::mem::take(relays),
            Mode::Mx { .. } => return routing,
        };
        let fails_over = relays.len() > 1;
        let mut slots = Vec::with_capacity(relays.len());
        for relay in relays {
            let route = Route::Relay(relay.session.clone(), relay.token.clone());
            let name = format!("relay {}", relay.name);
            let part = RelayPart {
                name: relay.name.clone(),
                budget: relay.budget.clone(),
                fails_over,
            };
            let id = routing.add_relay(name, route, relay.rule.clone(), part);
            slots.push(RelaySlot {
                destination: id,
                name: relay.name,
                weight: relay.weight,
                priority: relay.priority,
                cooldown: relay.cooldown,
            });
        }
        routing.relays = Some(RelayPool::new(slots, clock));
        routing
    }

    fn add_relay(
        &mut self,
        name: String,
        route: Route,
        rule: ShapingRule,
        part: RelayPart,
    ) -> usize {
        let key = name.clone();
        self.add_destination(key, name, route, rule, "relay".to_owned(), Some(part))
    }

    /// The relay the next batch goes to (relay mode): see [`RelayPool::pick`].
    pub(crate) fn pick_relay(&mut self) -> Option<usize> {
        self.relays.as_mut().and_then(RelayPool::pick)
    }

    /// Lookups still running.
    pub(crate) fn lookups_running(&self) -> usize {
        self.lookups_running
    }

    /// Where `domain` stands; starts (or refreshes) its lookup when needed.
    pub(crate) fn route(&mut self, domain: &str) -> RouteState {
        if let Some(pool) = &self.relays {
            return RouteState::Routed(pool.preferred());
        }
        let now = Instant::now();
        match self.entries.get_mut(domain) {
            Some(entry) if entry.valid_until > now || entry.refreshing => {
                return entry.state.clone();
            }
            Some(entry) if self.lookups_running < MAX_LOOKUPS => {
                entry.refreshing = true;
                let state = entry.state.clone();
                self.look_up(domain);
                return state;
            }
            Some(entry) => return entry.state.clone(),
            None => {}
        }
        if self.lookups_running >= MAX_LOOKUPS {
            return RouteState::Resolving;
        }
        self.entries.insert(
            domain.to_owned(),
            Entry {
                state: RouteState::Resolving,
                valid_until: now,
                refreshing: true,
            },
        );
        self.look_up(domain);
        RouteState::Resolving
    }

    fn look_up(&mut self, domain: &str) {
        let Mode::Mx { resolver, sts, .. } = &self.mode else {
            return;
        };
        self.lookups_running += 1;
        let (resolver, sts, answers, domain) = (
            resolver.clone(),
            sts.clone(),
            self.answers.clone(),
            domain.to_owned(),
        );
        tokio::spawn(async move {
            let policy = async {
                match &sts {
                    Some(sts) => sts.policy(&domain).await,
                    None => None,
                }
            };
            let (mut resolved, policy) = tokio::join!(resolver.mx(&domain), policy);
            if let Some(policy) = policy {
                resolved.sts = MtaSts::apply(&domain, &policy, &mut resolved);
            }
            let _ = answers.send((domain, resolved));
        });
    }

    /// Takes a lookup's answer.
    pub(crate) fn resolved(&mut self, domain: String, resolved: Resolved) {
        self.lookups_running = self.lookups_running.saturating_sub(1);
        let state = match (resolved.answer, resolved.sts) {
            (_, Some(StsCheck::NoHostAllowed(text))) => RouteState::Fails(LocalFailure {
                enhanced: "4.7.5",
                text,
            }),
            (MxAnswer::Hosts { hosts, .. }, sts) => {
                let sts = match sts {
                    Some(StsCheck::Applies(mode)) => Some(mode),
                    _ => None,
                };
                RouteState::Routed(self.destination_for(&domain, hosts, sts))
            }
            (MxAnswer::NullMx, _) => RouteState::Fails(LocalFailure {
                enhanced: "5.1.10",
                text: format!("{domain} accepts no mail (null MX, RFC 7505)"),
            }),
            (MxAnswer::NoSuchDomain, _) => RouteState::Fails(LocalFailure {
                enhanced: "5.1.2",
                text: format!("{domain} does not exist (DNS NXDOMAIN)"),
            }),
            (MxAnswer::Failed(why), _) => {
                tracing::warn!(%domain, %why, "MX lookup failed; its recipients are deferred");
                RouteState::Fails(LocalFailure {
                    enhanced: "4.4.3",
                    text: format!("MX lookup for {domain} failed: {why}"),
                })
            }
        };
        self.entries.insert(
            domain,
            Entry {
                state,
                valid_until: resolved.valid_until,
                refreshing: false,
            },
        );
    }

    /// The destination for a domain served by `hosts`, created on first use.
    /// Under an MTA-STS `enforce` policy the certificate must be verified (`required`, or
    /// `implicit` when the rule says so).
    fn destination_for(
        &mut self,
        domain: &str,
        hosts: Vec<crate::delivery::MxHost>,
        sts: Option<StsMode>,
    ) -> usize {
        let Mode::Mx { policy, tls, .. } = &self.mode else {
            return 0;
        };
        let names: Vec<String> = hosts.iter().map(|h| h.name.clone()).collect();
        let (rule_name, rule) = policy.rule_for(domain, &names);
        let (rule_name, rule) = (rule_name.to_owned(), rule.clone());
        let tls = match (rule.tls.unwrap_or(*tls), sts) {
            (MxTls::Implicit, _) => MxTls::Implicit,
            (_, Some(StsMode::Enforce)) => MxTls::Required,
            (tls, _) => tls,
        };
        let mut sorted: Vec<String> = hosts
            .iter()
            .map(|h| format!("{}:{}", h.preference, h.name))
            .collect();
        sorted.sort();
        let sts_word = sts.map_or("", StsMode::as_str);
        let key = format!(
            "{rule_name}|{}|{sts_word}|{}",
            tls.as_str(),
            sorted.join(",")
        );
        if let Some(&id) = self.by_key.get(&key) {
            self.destinations[id].add_domain();
            return id;
        }
        let name = names.join(",");
        let route = Route::Mx { hosts, tls, sts };
        let id = self.add_destination(key, name, route, rule, rule_name, None);
        self.destinations[id].add_domain();
        id
    }

    fn add_destination(
        &mut self,
        key: String,
        name: String,
        route: Route,
        rule: ShapingRule,
        rule_name: String,
        relay: Option<RelayPart>,
    ) -> usize {
        let id = self.destinations.len();
        let mut destination = Destination::new(id, name, route, rule, rule_name);
        if let Some(part) = relay {
            destination = destination.with_relay(part);
        }
        let destination = Arc::new(destination);
        if let Some(&limit) = self.learned.get(&destination.name) {
            destination.learn_messages_per_connection(limit);
        }
        if let Some(snapshot) = self.shared_backoff.get(&destination.name) {
            destination.resume_backoff(snapshot, std::time::Instant::now());
        }
        if let Some(block) = self.blocks.get(&destination.name) {
            let now_ms = self.clock.now_millis();
            destination.resume_block(block, std::time::Instant::now(), now_ms);
        }
        self.destinations.push(destination);
        self.by_key.insert(key, id);
        id
    }
}
