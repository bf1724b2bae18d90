//! Opening a session to a destination: the relay (retried a few times, its refusals fatal),
//! or the destination's MX hosts in preference order (equal preferences shuffled), each
//! address in turn, with the destination's TLS policy. In opportunistic mode a host whose
//! STARTTLS handshake fails is remembered and tried in plain text for a while.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use tokio_util::sync::CancellationToken;

use super::destination::{Destination, Route};
use super::error::DeliveryError;
use super::mta_sts::{MtaSts, StsCheck, StsMode};
use super::mx::{MxHost, MxResolver};
use super::source::{destination_key, Sources};
use super::token::{connect_relay, RelayDialError, TokenCache};
use crate::config::{MxTls, SourceAddress};
use crate::smtp::{self, Phase, Security, Session, SessionConfig, SmtpError, Timeouts};

/// Consecutive failed connection attempts after which the relay counts as unreachable.
const MAX_RELAY_ATTEMPTS: u32 = 3;
/// Addresses tried per MX host before moving on to the next host.
const ADDRESSES_PER_HOST: usize = 2;

/// How sessions to MX hosts are opened.
pub struct MxConnect {
    /// The MX port (`[mx] port`).
    pub port: u16,
    /// The EHLO name.
    pub helo: String,
    /// TLS that verifies certificates, for `required` and `implicit`.
    pub verified_tls: Arc<rustls::ClientConfig>,
    /// TLS that encrypts without requiring a trusted certificate, for `opportunistic`.
    pub opportunistic_tls: Arc<rustls::ClientConfig>,
    /// How long a host with broken STARTTLS is sent to in plain text.
    pub plain_after_tls_failure: Duration,
    /// Per-phase timeouts.
    pub timeouts: Timeouts,
    /// Address lookups for MX hosts.
    pub resolver: MxResolver,
    /// Record each session's conversation (for `volley test-send`). Default false.
    pub record_transcript: bool,
    /// The local addresses sessions leave from, each with its EHLO name (which replaces
    /// `helo`). Default none: the operating system picks.
    pub sources: Sources,
    plain_hosts: Mutex<HashMap<String, Instant>>,
}

impl std::fmt::Debug for MxConnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MxConnect")
            .field("port", &self.port)
            .field("helo", &self.helo)
            .finish_non_exhaustive()
    }
}

impl MxConnect {
    /// Settings for opening MX sessions.
    pub fn new(
        port: u16,
        helo: String,
        verified_tls: Arc<rustls::ClientConfig>,
        opportunistic_tls: Arc<rustls::ClientConfig>,
        plain_after_tls_failure: Duration,
        resolver: MxResolver,
    ) -> Self {
        MxConnect {
            port,
            helo,
            verified_tls,
            opportunistic_tls,
            plain_after_tls_failure,
            timeouts: Timeouts::default(),
            resolver,
            record_transcript: false,
            sources: Sources::default(),
            plain_hosts: Mutex::new(HashMap::new()),
        }
    }

    /// True while `host` is remembered as having broken STARTTLS.
    fn tls_broken(&self, host: &str) -> bool {
        let mut hosts = self.plain_hosts.lock().unwrap_or_else(|p| p.into_inner());
        match hosts.get(host) {
            Some(&until) if until > Instant::now() => true,
            Some(_) => {
                hosts.remove(host);
                false
            }
            None => false,
        }
    }

    fn remember_tls_broken(&self, host: &str) {
        let until = Instant::now() + self.plain_after_tls_failure;
        self.plain_hosts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(host.to_owned(), until);
    }
}

/// Why no session could be opened.
#[derive(Debug)]
pub(crate) enum ConnectFailure {
    /// The relay refused our configuration or stayed out of reach: the send must stop.
    Fatal(DeliveryError),
    /// A host said 421 before any mail: too many connections, slow down.
    Throttled(String),
    /// No host could be reached; the text says why (last failure).
    Unreachable(String),
    /// Cancelled while trying.
    Cancelled,
}

/// Opens a session to `destination`.
pub(crate) async fn open(
    destination: &Destination,
    mx: Option<&MxConnect>,
    cancel: &CancellationToken,
) -> Result<Session, ConnectFailure> {
    match &destination.route {
        Route::Relay(config, token) => open_relay(config, token.as_deref(), cancel).await,
        Route::Mx { hosts, tls, sts } => match mx {
            Some(mx) => {
                open_mx(
                    hosts,
                    MxPolicy {
                        tls: *tls,
                        sts: *sts,
                    },
                    mx,
                    cancel,
                )
                .await
            }
            None => Err(ConnectFailure::Unreachable(
                "direct-to-MX delivery is not set up".to_owned(),
            )),
        },
    }
}

/// Opens a session to one of `domain`'s MX hosts under `tls` (for a single message, as
/// `volley test-send` sends), honouring the domain's MTA-STS policy when `sts` is given; the
/// error says what DNS, the policy or the hosts answered.
pub async fn open_direct(
    domain: &str,
    tls: MxTls,
    mx: &MxConnect,
    sts: Option<&MtaSts>,
) -> Result<Session, String> {
    let policy = async {
        match sts {
            Some(sts) => sts.policy(domain).await,
            None => None,
        }
    };
    let (mut resolved, policy) = tokio::join!(mx.resolver.mx(domain), policy);
    let check = policy.and_then(|policy| MtaSts::apply(domain, &policy, &mut resolved));
    let sts = match check {
        Some(StsCheck::NoHostAllowed(text)) => return Err(text),
        Some(StsCheck::Applies(mode)) => Some(mode),
        None => None,
    };
    let hosts = match resolved.answer {
        super::MxAnswer::Hosts { hosts, .. } => hosts,
        super::MxAnswer::NullMx => return Err(format!("{domain} accepts no mail (null MX)")),
        super::MxAnswer::NoSuchDomain => return Err(format!("{domain} does not exist")),
        super::MxAnswer::Failed(why) => {
            return Err(format!("MX lookup for {domain} failed: {why}"))
        }
    };
    let tls = match (tls, sts) {
        (MxTls::Opportunistic | MxTls::None, Some(StsMode::Enforce)) => MxTls::Required,
        (tls, _) => tls,
    };
    let enforced = |why: String| match sts {
        Some(StsMode::Enforce) => format!("MTA-STS policy (enforce): {why}"),
        _ => why,
    };
    match open_mx(&hosts, MxPolicy { tls, sts }, mx, &CancellationToken::new()).await {
        Ok(session) => Ok(session),
        Err(ConnectFailure::Throttled(why) | ConnectFailure::Unreachable(why)) => {
            Err(enforced(why))
        }
        Err(ConnectFailure::Fatal(error)) => Err(error.to_string()),
        Err(ConnectFailure::Cancelled) => Err("cancelled".to_owned()),
    }
}

/// The relay, retrying transient failures with back-off (1 s, then 2 s).
async fn open_relay(
    config: &SessionConfig,
    token: Option<&TokenCache>,
    cancel: &CancellationToken,
) -> Result<Session, ConnectFailure> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let error = tokio::select! {
            () = cancel.cancelled() => return Err(ConnectFailure::Cancelled),
            result = connect_relay(config, token) => match result {
                Ok(session) => return Ok(session),
                Err(RelayDialError::Smtp(error)) => error,
                Err(RelayDialError::Token(source)) => {
                    return Err(ConnectFailure::Fatal(DeliveryError::Token {
                        host: config.host.clone(),
                        port: config.port,
                        source,
                    }))
                }
            },
        };
        if error.is_configuration() {
            return Err(ConnectFailure::Fatal(DeliveryError::relay_refused(
                &config.host,
                config.port,
                error,
            )));
        }
        if attempt >= MAX_RELAY_ATTEMPTS {
            return Err(ConnectFailure::Fatal(DeliveryError::Unreachable {
                host: config.host.clone(),
                port: config.port,
                attempts: attempt,
                source: error,
            }));
        }
        tracing::warn!(host = %config.host, %error, attempt, "could not connect; retrying");
        let wait = Duration::from_secs(1 << (attempt - 1).min(4));
        tokio::select! {
            () = cancel.cancelled() => return Err(ConnectFailure::Cancelled),
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// The MX hosts in preference order, equal preferences shuffled.
pub(crate) fn host_order(hosts: &[MxHost]) -> Vec<&MxHost> {
    let mut ordered: Vec<&MxHost> = hosts.iter().collect();
    let mut rng = rand::thread_rng();
    ordered.shuffle(&mut rng);
    ordered.sort_by_key(|h| h.preference); // stable: ties stay shuffled
    ordered
}

/// A destination's TLS policy and the MTA-STS mode of its domains.
#[derive(Debug, Clone, Copy)]
struct MxPolicy {
    tls: MxTls,
    sts: Option<StsMode>,
}

async fn open_mx(
    hosts: &[MxHost],
    policy: MxPolicy,
    mx: &MxConnect,
    cancel: &CancellationToken,
) -> Result<Session, ConnectFailure> {
    let mut last = String::from("no MX host to try");
    let mut throttled = None;
    let destination = destination_key(hosts.iter().map(|h| h.name.as_str()));
    for host in host_order(hosts) {
        let addresses = tokio::select! {
            () = cancel.cancelled() => return Err(ConnectFailure::Cancelled),
            found = mx.resolver.addresses(&host.name) => found,
        };
        let addresses = match addresses {
            Ok(addresses) => addresses,
            Err(why) => {
                last = why;
                continue;
            }
        };
        let addresses = match reachable(&host.name, addresses, &mx.sources) {
            Ok(addresses) => addresses,
            Err(why) => {
                last = why;
                continue;
            }
        };
        for ip in addresses.into_iter().take(ADDRESSES_PER_HOST) {
            let source = mx.sources.choose(&destination, ip);
            let attempt = tokio::select! {
                () = cancel.cancelled() => return Err(ConnectFailure::Cancelled),
                attempt = open_checked(&host.name, ip, source, policy, mx) => attempt,
            };
            match attempt {
                Ok(session) => {
                    tracing::debug!(host = %host.name, %ip, source = ?session.local_address(), helo = source.map_or(mx.helo.as_str(), |s| s.helo.as_str()), "connected to MX host");
                    return Ok(session);
                }
                Err(error) => {
                    tracing::debug!(host = %host.name, %ip, %error, "MX host failed; trying the next");
                    if is_banner_421(&error) {
                        throttled = Some(error.to_string());
                    }
                    last = error.to_string();
                }
            }
        }
    }
    Err(match throttled {
        Some(why) => ConnectFailure::Throttled(why),
        None => ConnectFailure::Unreachable(last),
    })
}

/// The addresses of MX host `host` that a configured source address can reach (all of them
/// without source addresses); addresses of a family no source address has are skipped. When
/// none is left, why (logged).
fn reachable(
    host: &str,
    addresses: Vec<std::net::IpAddr>,
    sources: &Sources,
) -> Result<Vec<std::net::IpAddr>, String> {
    let (usable, skipped): (Vec<_>, Vec<_>) =
        addresses.into_iter().partition(|ip| sources.reaches(*ip));
    if !skipped.is_empty() {
        tracing::debug!(%host, ?skipped, "skipping MX host addresses of a family [mx] source_addresses does not have");
    }
    match skipped.first() {
        Some(ip) if usable.is_empty() => {
            let family = if ip.is_ipv4() { "IPv4" } else { "IPv6" };
            let why = format!("{host} has only {family} addresses and [mx] source_addresses has no {family} address");
            tracing::info!(%host, ?skipped, "skipping this MX host: {why}");
            Err(why)
        }
        _ => Ok(usable),
    }
}

/// One address of one MX host under `policy`. For a domain whose MTA-STS policy is in
/// `testing` mode, opportunistic TLS first tries verified STARTTLS and logs a failure
/// (what `enforce` would refuse) before connecting as usual.
async fn open_checked(
    host: &str,
    ip: std::net::IpAddr,
    source: Option<&SourceAddress>,
    policy: MxPolicy,
    mx: &MxConnect,
) -> Result<Session, SmtpError> {
    if policy.sts == Some(StsMode::Testing)
        && policy.tls == MxTls::Opportunistic
        && !mx.tls_broken(host)
    {
        match open_host(host, (ip, source), MxTls::Required, mx).await {
            Ok(session) => return Ok(session),
            Err(error) if is_tls_failure(&error) => {
                tracing::warn!(%host, %error, "MTA-STS (testing): the MX host failed the policy's TLS check (STARTTLS with a valid certificate); delivering anyway");
            }
            Err(_) => {}
        }
    }
    open_host(host, (ip, source), policy.tls, mx).await
}

/// One address of one MX host (from `source`, with its EHLO name, when given), under `tls`;
/// opportunistic STARTTLS that breaks is retried in plain text at once and the host
/// remembered.
async fn open_host(
    host: &str,
    (ip, source): (std::net::IpAddr, Option<&SourceAddress>),
    tls: MxTls,
    mx: &MxConnect,
) -> Result<Session, SmtpError> {
    let (security, tls_config) = match tls {
        MxTls::Opportunistic if mx.tls_broken(host) => (Security::None, &mx.opportunistic_tls),
        MxTls::Opportunistic => (Security::Opportunistic, &mx.opportunistic_tls),
        MxTls::Required => (Security::StartTls, &mx.verified_tls),
        MxTls::Implicit => (Security::Tls, &mx.verified_tls),
        _ => (Security::None, &mx.opportunistic_tls),
    };
    let mut config = SessionConfig::new(host, mx.port, tls_config.clone());
    config.address = Some(ip);
    config.security = security;
    config.source = source.map(|s| s.address);
    config.helo = source.map_or(&mx.helo, |s| &s.helo).clone();
    config.timeouts = mx.timeouts;
    config.record_transcript = mx.record_transcript;
    match smtp::connect(&config).await {
        Err(error) if security == Security::Opportunistic && is_tls_failure(&error) => {
            tracing::warn!(%host, %error, "STARTTLS failed; sending in plain text to this host for a while");
            mx.remember_tls_broken(host);
            config.security = Security::None;
            smtp::connect(&config).await
        }
        other => other,
    }
}

/// A failure of the STARTTLS step or the handshake after it.
fn is_tls_failure(error: &SmtpError) -> bool {
    matches!(error.phase(), Phase::StartTls | Phase::TlsHandshake)
}

/// A 421 at the greeting or EHLO: the host refuses more connections for now.
fn is_banner_421(error: &SmtpError) -> bool {
    matches!(error, SmtpError::Rejected { reply, phase, .. }
        if reply.code == 421 && matches!(phase, Phase::Banner | Phase::Ehlo))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_go_by_preference_with_ties_shuffled() {
        let host = |name: &str, preference| MxHost {
            name: name.to_owned(),
            preference,
        };
        let hosts = vec![host("c", 20), host("a1", 10), host("b", 30), host("a2", 10)];
        let mut first_seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let order: Vec<&str> = host_order(&hosts).iter().map(|h| h.name.as_str()).collect();
            assert_eq!(&order[2..], ["c", "b"]);
            first_seen.insert(order[0]);
        }
        assert_eq!(
            first_seen.len(),
            2,
            "both equal-preference hosts come first sometimes"
        );
    }
}
