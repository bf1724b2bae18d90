//! MTA-STS (RFC 8461) for direct delivery: a recipient domain that publishes a
//! `_mta-sts` TXT record and an HTTPS policy says which MX hosts are its own and that they
//! must be reached over TLS with a valid certificate. [`MtaSts::policy`] looks the record
//! up with the MX resolver, fetches the policy when its id is new (certificate verified,
//! size and time bounded, no redirects) and caches it for its `max_age`; [`MtaSts::apply`]
//! applies it to an MX answer: `enforce` keeps only the listed hosts (none left: the
//! domain's mail is deferred) and its destination requires verified STARTTLS; `testing`
//! changes nothing but reports what would fail; `none`, no record, or a policy that cannot
//! be fetched (and none cached) leave delivery as it was.

mod fetch;
mod policy;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use policy::{Policy, StsMode};

use super::mx::{MxAnswer, MxResolver, Resolved, TxtAnswer};

/// Domains whose policy is cached at most; past it expired entries are dropped, then new
/// policies are used without being cached.
const MAX_CACHED: usize = 100_000;

/// What a domain's policy does to its route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StsCheck {
    /// The policy applies to the hosts in the answer (for `enforce`, already narrowed to the
    /// listed ones).
    Applies(StsMode),
    /// `enforce`, and none of the domain's MX hosts is in the policy: its mail is deferred.
    NoHostAllowed(String),
}

struct Cached {
    id: String,
    policy: Arc<Policy>,
    expires: Instant,
}

/// Looks up, fetches, caches and applies MTA-STS policies.
pub struct MtaSts {
    resolver: MxResolver,
    tls: Arc<rustls::ClientConfig>,
    port: u16,
    timeout: Duration,
    cache: Mutex<HashMap<String, Cached>>,
}

impl std::fmt::Debug for MtaSts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MtaSts")
            .field("port", &self.port)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl MtaSts {
    /// Policies looked up with `resolver` and fetched over `tls` (which must verify
    /// certificates: the public roots plus `[mx] ca_file`) from port `port` (443 but in
    /// tests), each fetch within `timeout`.
    pub fn new(
        resolver: MxResolver,
        tls: Arc<rustls::ClientConfig>,
        port: u16,
        timeout: Duration,
    ) -> MtaSts {
        MtaSts {
            resolver,
            tls,
            port,
            timeout,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Applies `domain`'s `policy` to its MX answer: `enforce` narrows the hosts, `testing`
    /// logs the hosts it does not list. `None` when the policy changes nothing (mode
    /// `none`, or the answer has no hosts).
    pub fn apply(domain: &str, policy: &Policy, resolved: &mut Resolved) -> Option<StsCheck> {
        let MxAnswer::Hosts { hosts, .. } = &mut resolved.answer else {
            return None;
        };
        match policy.mode {
            StsMode::None => None,
            StsMode::Testing => {
                for host in hosts.iter().filter(|h| !policy.allows(&h.name)) {
                    tracing::warn!(%domain, mx = %host.name, patterns = ?policy.mx,
                        "MTA-STS (testing): MX host not in the domain's policy; delivering anyway");
                }
                Some(StsCheck::Applies(StsMode::Testing))
            }
            StsMode::Enforce => {
                let before: Vec<String> = hosts.iter().map(|h| h.name.clone()).collect();
                hosts.retain(|h| policy.allows(&h.name));
                if hosts.is_empty() {
                    let text = format!(
                        "MTA-STS policy of {domain} (enforce) lists none of its MX hosts ({}); \
                         its policy allows {}",
                        before.join(", "),
                        policy.mx.join(", ")
                    );
                    tracing::warn!(%domain, "{text}");
                    return Some(StsCheck::NoHostAllowed(text));
                }
                Some(StsCheck::Applies(StsMode::Enforce))
            }
        }
    }

    /// The policy in force for `domain`: the cached one while its id is unchanged (or the
    /// record cannot be read), else a fresh fetch, else a cached one; `None` when the
    /// domain has none (delivery goes on as without MTA-STS).
    pub async fn policy(&self, domain: &str) -> Option<Arc<Policy>> {
        let id = match self.resolver.txt(&format!("_mta-sts.{domain}")).await {
            TxtAnswer::Records(records) => policy::txt_id(&records),
            TxtAnswer::None => None,
            TxtAnswer::Failed(why) => {
                tracing::debug!(%domain, %why, "MTA-STS record lookup failed");
                None
            }
        };
        let cached = self.cached(domain);
        let id = match (id, cached) {
            (Some(id), Some((cached_id, policy))) if cached_id == id => return Some(policy),
            (None, cached) => return cached.map(|(_, policy)| policy),
            (Some(id), _) => id,
        };
        match self.fetch(domain).await {
            Ok(policy) => {
                let policy = Arc::new(policy);
                self.remember(domain, id, policy.clone());
                Some(policy)
            }
            Err(why) => {
                tracing::warn!(%domain, %why, "MTA-STS policy could not be fetched");
                self.cached(domain).map(|(_, policy)| policy)
            }
        }
    }

    async fn fetch(&self, domain: &str) -> Result<Policy, String> {
        let host = format!("mta-sts.{domain}");
        let addresses = self.resolver.addresses(&host).await?;
        let target = fetch::Target {
            host: &host,
            addresses,
            port: self.port,
            tls: self.tls.clone(),
        };
        let text = fetch::fetch(&target, self.timeout)
            .await
            .map_err(|e| e.to_string())?;
        policy::parse(&text).map_err(|why| format!("the policy of {domain} is invalid: {why}"))
    }

    fn cached(&self, domain: &str) -> Option<(String, Arc<Policy>)> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(domain)
            .filter(|c| c.expires > Instant::now())
            .map(|c| (c.id.clone(), c.policy.clone()))
    }

    fn remember(&self, domain: &str, id: String, policy: Arc<Policy>) {
        let now = Instant::now();
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_CACHED {
            cache.retain(|_, c| c.expires > now);
            if cache.len() >= MAX_CACHED {
                return;
            }
        }
        let expires = now + policy.max_age;
        cache.insert(
            domain.to_owned(),
            Cached {
                id,
                policy,
                expires,
            },
        );
    }
}

#[cfg(test)]
mod tests;
