//! The delivery plan of a send: relay or direct to MX, with the sessions, resolver, TLS
//! configurations, limits and relay caps that go with it. Built from the first campaign's
//! settings; campaigns submitted to a running send must share it.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::Campaign;
use crate::config::{CampaignSettings, GlobalLimits, Rate, RelaySettings, ShapingRule};
use crate::delivery::{MtaSts, MxConnect, MxResolver, Sources};
use crate::dispatch::{Mode, RelayRoute};
use crate::model::now_millis;
use crate::recorder::RelayUsage;
use crate::shaping::{RelayBudget, RelayCaps, ShapingPolicy};
use crate::smtp;
use crate::store::Store;
use crate::Error;

/// Minutes of relay usage a day's cap looks back over.
const DAY_MINUTES: u64 = 24 * 60;

/// Everything delivery needs, decided once per send.
pub(crate) struct DeliveryPlan {
    /// Relay or MX routing.
    pub(crate) mode: Mode,
    /// How MX sessions are opened (direct delivery only).
    pub(crate) mx: Option<MxConnect>,
    /// The caps of the relays that have hourly or daily ones.
    pub(crate) relay_usage: Vec<RelayUsage>,
    /// `[shaping.global]`.
    pub(crate) global: GlobalLimits,
    /// Names the delivery path; a campaign submitted to a running send must have the same.
    pub(crate) key: String,
}

impl DeliveryPlan {
    /// The plan `campaign` asks for; relay caps start from the counts kept in `store`.
    pub(crate) fn for_campaign(campaign: &Campaign, store: &Store) -> Result<DeliveryPlan, Error> {
        let settings = campaign.settings();
        if settings.relays.is_empty() {
            let resolver = MxResolver::new(&settings.dns)?;
            let mx = mx_connect(settings, resolver.clone())?;
            let sts = mta_sts(settings, &mx).map(Arc::new);
            return Ok(DeliveryPlan {
                mode: Mode::Mx {
                    resolver,
                    policy: ShapingPolicy::new(settings.shaping.clone()),
                    tls: settings.mx.tls,
                    sts,
                },
                mx: Some(mx),
                relay_usage: Vec::new(),
                global: settings.shaping.global,
                key: format!("direct to MX (port {})", settings.mx.port),
            });
        }
        let mut relays = Vec::with_capacity(settings.relays.len());
        let mut usages = Vec::new();
        let mut keys = Vec::new();
        for relay in &settings.relays {
            let (session, connections) = campaign.session_for(relay, false)?;
            let user = relay.username.as_deref().unwrap_or("");
            let key = format!("{}:{}:{user}", relay.host, relay.port);
            let usage = relay_usage(relay, &key, store)?;
            relays.push(RelayRoute {
                session: Arc::new(session),
                token: super::campaign::token_for(relay),
                rule: relay_rule(relay, &settings.shaping.default, connections),
                name: relay.name.clone(),
                weight: relay.weight,
                priority: relay.priority,
                cooldown: relay.cooldown,
                budget: usage.as_ref().map(|u| u.budget.clone()),
            });
            usages.extend(usage);
            keys.push(key);
        }
        Ok(DeliveryPlan {
            mode: Mode::Relay { relays },
            mx: None,
            relay_usage: usages,
            global: settings.shaping.global,
            key: format!("relay {}", keys.join(", ")),
        })
    }
}

/// The relay's shaping: its `connections`, `max_per_second` and
/// `max_messages_per_connection`, with the default rule's idle time and throttling response.
fn relay_rule(relay: &RelaySettings, defaults: &ShapingRule, connections: usize) -> ShapingRule {
    ShapingRule {
        max_connections: connections,
        max_message_rate: relay.max_per_second.map(|n| Rate {
            count: f64::from(n),
            per: Duration::from_secs(1),
        }),
        max_connection_rate: None,
        max_messages_per_connection: relay.max_messages_per_connection.unwrap_or(u64::MAX),
        idle_timeout: defaults.idle_timeout,
        tls: None,
        throttle_replies: defaults.throttle_replies.clone(),
        suspend_after: defaults.suspend_after,
        suspend_window: defaults.suspend_window,
        suspend_for: defaults.suspend_for,
        block_breaker: defaults.block_breaker,
        block_threshold: defaults.block_threshold,
        block_window: defaults.block_window,
        block_pause: defaults.block_pause,
        block_max_pause: defaults.block_max_pause,
    }
}

/// The relay's hourly and daily caps with the last day's counts from `store` (kept under
/// `key`), when it has either cap.
fn relay_usage(
    relay: &RelaySettings,
    key: &str,
    store: &Store,
) -> Result<Option<RelayUsage>, Error> {
    let caps = RelayCaps {
        per_hour: relay.max_per_hour,
        per_day: relay.max_per_day,
    };
    if caps.per_hour.is_none() && caps.per_day.is_none() {
        return Ok(None);
    }
    let since = (now_millis() / 60_000).saturating_sub(DAY_MINUTES);
    let history = store.relay_usage(key, since)?;
    let mut budget = RelayBudget::new(caps, history);
    if store.cluster().is_some() {
        // Several processes share the store: each sends out of reservations of the caps.
        budget = budget.shared();
    }
    Ok(Some(RelayUsage {
        key: key.to_owned(),
        budget: Arc::new(Mutex::new(budget)),
    }))
}

/// How MX sessions are opened for a campaign without a relay: `[mx]` (port, HELO name, extra
/// CA, plain text after a broken STARTTLS, source addresses) and `[timeouts]`, looking MX
/// hosts up with `resolver`. A source address that is not on this host is an error.
pub(crate) fn mx_connect(
    settings: &CampaignSettings,
    resolver: MxResolver,
) -> Result<MxConnect, Error> {
    let mut mx = MxConnect::new(
        settings.mx.port,
        settings.mx.helo.clone(),
        tls_trusting(settings.mx.ca_file.as_deref())?,
        smtp::tls_opportunistic_config()?,
        settings.mx.plain_after_tls_failure,
        resolver,
    );
    mx.timeouts = settings.timeouts;
    mx.sources = Sources::new(
        settings.mx.source_addresses.clone(),
        settings.mx.source_pick,
    );
    mx.sources.probe()?;
    Ok(mx)
}

/// MTA-STS policies for direct delivery when `[mx] mta_sts` is on: looked up with `mx`'s
/// resolver, fetched with its certificate-verifying TLS (public roots plus `[mx] ca_file`).
pub(crate) fn mta_sts(settings: &CampaignSettings, mx: &MxConnect) -> Option<MtaSts> {
    settings.mx.mta_sts.then(|| {
        MtaSts::new(
            mx.resolver.clone(),
            mx.verified_tls.clone(),
            settings.mx.mta_sts_port,
            settings.mx.mta_sts_timeout,
        )
    })
}

/// The TLS client configuration for servers whose certificate must be trusted: the public
/// roots plus `ca_file` when set (its certificates pinned, the file named in refusals).
pub(crate) fn tls_trusting(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, Error> {
    Ok(match ca_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|source| Error::Io {
                path: path.to_path_buf(),
                source,
            })?;
            smtp::tls_client_config_for_file(&pem, path)?
        }
        None => smtp::tls_client_config(None)?,
    })
}
