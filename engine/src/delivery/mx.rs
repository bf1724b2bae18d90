//! MX lookups for direct delivery: which hosts receive a domain's mail, in what order, and
//! their addresses. Answers carry how long they may be reused (their TTL); the caller caches
//! them. The resolver is hickory's, pointed at `[dns] nameservers` or the system's.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;

use super::error::DeliveryError;
use super::mta_sts::StsCheck;
use crate::config::DnsSettings;

/// How long a "no such domain" or null-MX answer is reused.
const NEGATIVE_TTL: Duration = Duration::from_secs(300);
/// How long a failed lookup (SERVFAIL, timeout) is remembered before asking again.
const FAILURE_TTL: Duration = Duration::from_secs(30);
/// Entries a resolver's own cache keeps.
const CACHE_ENTRIES: u64 = 16_384;

/// One host that accepts mail for a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxHost {
    /// Its name, lowercase, without the trailing dot.
    pub name: String,
    /// Its MX preference (lower goes first); 0 for an implicit MX.
    pub preference: u16,
}

/// What DNS says about where a domain's mail goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MxAnswer {
    /// Deliver to these hosts, by preference.
    Hosts {
        /// The hosts, sorted by preference.
        hosts: Vec<MxHost>,
        /// True when the domain has no MX records and its own A/AAAA records stand in
        /// (RFC 5321 §5.1).
        implicit: bool,
    },
    /// The domain publishes a null MX (RFC 7505): it accepts no mail.
    NullMx,
    /// The domain does not exist (NXDOMAIN).
    NoSuchDomain,
    /// The lookup failed for now (SERVFAIL, timeout, unreachable name server).
    Failed(String),
}

/// What DNS says about the TXT records of a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxtAnswer {
    /// The records, each one's character-strings concatenated.
    Records(Vec<String>),
    /// The name has no TXT records, or does not exist.
    None,
    /// The lookup failed (SERVFAIL, timeout, unreachable name server).
    Failed(String),
}

/// An answer and until when it may be reused.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The answer.
    pub answer: MxAnswer,
    /// When to ask again.
    pub valid_until: Instant,
    /// What the domain's MTA-STS policy does to the answer; `None` when none applies (or
    /// it was not looked up).
    pub sts: Option<StsCheck>,
}

/// Looks up MX hosts and addresses (and TXT records, for the preflight checks).
#[derive(Clone)]
pub struct MxResolver {
    resolver: std::sync::Arc<TokioResolver>,
}

impl std::fmt::Debug for MxResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MxResolver").finish_non_exhaustive()
    }
}

impl MxResolver {
    /// A resolver asking `settings.nameservers` (UDP, falling back to TCP), or the system's
    /// configured name servers when none are given. The hosts file is not consulted.
    pub fn new(settings: &DnsSettings) -> Result<MxResolver, DeliveryError> {
        let provider = TokioRuntimeProvider::default();
        let mut builder = match &settings.nameservers {
            Some(servers) => {
                let servers = servers
                    .iter()
                    .map(|addr| {
                        let mut server = NameServerConfig::udp_and_tcp(addr.ip());
                        for connection in &mut server.connections {
                            connection.port = addr.port();
                        }
                        server
                    })
                    .collect();
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(servers),
                    provider,
                )
            }
            None => TokioResolver::builder(provider).map_err(|e| DeliveryError::Resolver {
                detail: format!("cannot read the system's DNS configuration: {e}"),
            })?,
        };
        let options = builder.options_mut();
        options.timeout = settings.timeout;
        options.attempts = settings.attempts;
        options.cache_size = CACHE_ENTRIES;
        options.use_hosts_file = ResolveHosts::Never;
        options.ndots = 0;
        let resolver = builder.build().map_err(|e| DeliveryError::Resolver {
            detail: e.to_string(),
        })?;
        Ok(MxResolver {
            resolver: std::sync::Arc::new(resolver),
        })
    }

    /// Where mail for `domain` (lowercase ASCII) goes.
    pub async fn mx(&self, domain: &str) -> Resolved {
        let fqdn = format!("{}.", domain.trim_end_matches('.'));
        match self.resolver.mx_lookup(fqdn.as_str()).await {
            Ok(lookup) => {
                let mut hosts: Vec<MxHost> = lookup
                    .answers()
                    .iter()
                    .filter_map(|record| match &record.data {
                        RData::MX(mx) => Some(mx),
                        _ => None,
                    })
                    .filter(|mx| !mx.exchange.is_root())
                    .map(|mx| MxHost {
                        name: host_name(&mx.exchange.to_ascii()),
                        preference: mx.preference,
                    })
                    .collect();
                if hosts.is_empty() {
                    // Only "." (RFC 7505), or no usable exchange at all.
                    return negative(MxAnswer::NullMx);
                }
                hosts.sort_by_key(|h| h.preference);
                hosts.dedup_by(|a, b| a.name == b.name);
                Resolved {
                    answer: MxAnswer::Hosts {
                        hosts,
                        implicit: false,
                    },
                    valid_until: lookup.valid_until(),
                    sts: None,
                }
            }
            Err(error) if error.is_nx_domain() => negative(MxAnswer::NoSuchDomain),
            Err(error) if error.is_no_records_found() => Resolved {
                answer: MxAnswer::Hosts {
                    hosts: vec![MxHost {
                        name: domain.to_owned(),
                        preference: 0,
                    }],
                    implicit: true,
                },
                valid_until: Instant::now() + NEGATIVE_TTL,
                sts: None,
            },
            Err(error) => Resolved {
                answer: MxAnswer::Failed(describe(&error)),
                valid_until: Instant::now() + FAILURE_TTL,
                sts: None,
            },
        }
    }

    /// The addresses of `host`, IPv4 first; an error text when there are none or the lookup
    /// failed.
    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, String> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let fqdn = format!("{}.", host.trim_end_matches('.'));
        match self.resolver.lookup_ip(fqdn.as_str()).await {
            Ok(lookup) => {
                let mut ips: Vec<IpAddr> = lookup.iter().collect();
                ips.sort_by_key(|ip| ip.is_ipv6());
                if ips.is_empty() {
                    Err(format!("{host} has no address"))
                } else {
                    Ok(ips)
                }
            }
            Err(error) if error.is_nx_domain() || error.is_no_records_found() => {
                Err(format!("{host} has no address"))
            }
            Err(error) => Err(format!(
                "address lookup for {host} failed: {}",
                describe(&error)
            )),
        }
    }
}

impl MxResolver {
    /// The TXT records of `name`; text that is not UTF-8 is replaced lossily.
    pub async fn txt(&self, name: &str) -> TxtAnswer {
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        match self.resolver.txt_lookup(fqdn.as_str()).await {
            Ok(lookup) => TxtAnswer::Records(
                lookup
                    .answers()
                    .iter()
                    .filter_map(|record| match &record.data {
                        RData::TXT(txt) => {
                            Some(String::from_utf8_lossy(&txt.txt_data.concat()).into_owned())
                        }
                        _ => None,
                    })
                    .collect(),
            ),
            Err(error) if error.is_nx_domain() || error.is_no_records_found() => TxtAnswer::None,
            Err(error) => TxtAnswer::Failed(describe(&error)),
        }
    }
}

fn negative(answer: MxAnswer) -> Resolved {
    Resolved {
        answer,
        valid_until: Instant::now() + NEGATIVE_TTL,
        sts: None,
    }
}

/// A host name from DNS: lowercase, no trailing dot.
fn host_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// A short text for a failed lookup.
fn describe(error: &NetError) -> String {
    match error {
        NetError::Timeout => "the DNS query timed out".to_owned(),
        other => other.to_string(),
    }
}
