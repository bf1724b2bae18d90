//! The values of the cluster's part of the store ([`super::ClusterStore`]): a node starting,
//! the nodes and leases as they stand, and the recipient domains with work to share.

use std::time::Duration;

/// A `volley serve` node registering itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStart {
    /// The node's name (`--node NAME`): the owner of its leases.
    pub name: String,
    /// This process's own random id: a restart under the same name is another instance.
    pub instance: String,
    /// The machine it runs on.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// The Volley version it runs.
    pub version: String,
    /// How long its leases last without a renewal (it is dead after that long silent).
    pub lease: Duration,
}

/// A node as the database sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// Its name.
    pub name: String,
    /// The machine it runs on.
    pub host: Option<String>,
    /// Its process id.
    pub pid: Option<u32>,
    /// Time since its last heartbeat, by the database's clock.
    pub heartbeat_age: Duration,
    /// Its lease time.
    pub lease: Duration,
    /// True while it heartbeats within its lease time and is not stopping.
    pub live: bool,
    /// True once it was told to stop and handed its leases back.
    pub stopping: bool,
    /// Leases it holds that have not run out.
    pub leases: u64,
    /// Messages it sent in the last minute, as of its last heartbeat.
    pub sent_last_minute: u64,
}

/// One lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseInfo {
    /// What it is the right to (`domain:example.com`, `load:spring-sale`).
    pub name: String,
    /// The node holding it.
    pub owner: String,
    /// Time left, by the database's clock (`None`: it ran out, anyone may take it).
    pub remaining: Option<Duration>,
}

/// A recipient domain with work: pending recipients, or deferred ones due (within the
/// horizon asked for), over the campaigns asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainWork {
    /// The domain (lowercase, punycode).
    pub domain: String,
    /// Its recipients with work.
    pub recipients: u64,
}

/// The lease name of the right to send to `domain`.
pub fn domain_lease(domain: &str) -> String {
    format!("domain:{domain}")
}

/// The domain a `domain:` lease name is about.
pub fn lease_domain(name: &str) -> Option<&str> {
    name.strip_prefix("domain:")
}

/// The lease name of the right to load campaign `id`'s list.
pub fn load_lease(id: &str) -> String {
    format!("load:{id}")
}
