//! Source addresses for direct delivery (`[mx] source_addresses`): which local address a new
//! connection to an MX host leaves from, and the EHLO name that goes with it. Round-robin
//! takes the addresses in turn; pinned keeps each destination (its set of MX hosts) on one
//! address by a stable hash, so its reputation builds on one IP. Only addresses of the MX
//! host address's family are candidates.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::error::DeliveryError;
use crate::config::{SourceAddress, SourcePick};
use crate::smtp;

/// The configured source addresses and how one is picked; empty means the operating system
/// picks the local address.
#[derive(Debug, Default)]
pub struct Sources {
    list: Vec<SourceAddress>,
    pick: SourcePick,
    next: AtomicUsize,
    /// Messages delivered from each address (same order as `list`).
    delivered: Vec<AtomicU64>,
}

/// Messages delivered from one source address during a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceCount {
    /// The source address.
    pub address: IpAddr,
    /// Its EHLO name.
    pub helo: String,
    /// Messages the receiving servers accepted on connections from it.
    pub delivered: u64,
}

impl Sources {
    /// `list` picked from as `pick` says.
    pub fn new(list: Vec<SourceAddress>, pick: SourcePick) -> Self {
        let delivered = list.iter().map(|_| AtomicU64::new(0)).collect();
        Sources {
            list,
            pick,
            next: AtomicUsize::new(0),
            delivered,
        }
    }

    /// Counts one delivery on a connection whose local end is `local`.
    pub(crate) fn count_delivery(&self, local: Option<SocketAddr>) {
        let Some(local) = local else { return };
        if let Some(i) = self.list.iter().position(|s| s.address == local.ip()) {
            if let Some(count) = self.delivered.get(i) {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Messages delivered from each address so far (empty without source addresses).
    pub fn counts(&self) -> Vec<SourceCount> {
        self.list
            .iter()
            .zip(&self.delivered)
            .map(|(source, count)| SourceCount {
                address: source.address,
                helo: source.helo.clone(),
                delivered: count.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// True when no source address is configured.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// True when a connection to `target` can be made: no source address is configured, or
    /// one of `target`'s family is.
    pub(crate) fn reaches(&self, target: IpAddr) -> bool {
        self.list.is_empty()
            || self
                .list
                .iter()
                .any(|s| s.address.is_ipv4() == target.is_ipv4())
    }

    /// Binds each address once (to any port) so that one not on this host stops the send
    /// before it starts, naming the address and its `[mx] source_addresses` entry.
    pub fn probe(&self) -> Result<(), DeliveryError> {
        for (i, source) in self.list.iter().enumerate() {
            probe(source.address, &format!("[mx] source_addresses[{i}]"))?;
        }
        Ok(())
    }

    /// The source for a new connection to `target`, an address of the destination whose
    /// MX hosts `destination` names (see [`destination_key`]); `None` when no configured
    /// address has `target`'s family.
    pub(crate) fn choose(&self, destination: &str, target: IpAddr) -> Option<&SourceAddress> {
        let candidates: Vec<&SourceAddress> = self
            .list
            .iter()
            .filter(|s| s.address.is_ipv4() == target.is_ipv4())
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let n = match self.pick {
            SourcePick::Pinned => {
                // invariant: the remainder is below `candidates.len()`, a usize.
                usize::try_from(stable_hash(destination) % candidates.len() as u64).unwrap_or(0)
            }
            _ => self.next.fetch_add(1, Ordering::Relaxed) % candidates.len(),
        };
        candidates.get(n).copied()
    }
}

/// Adds `more` (another run's counts) to `total`, address by address.
pub fn add_counts(total: &mut Vec<SourceCount>, more: Vec<SourceCount>) {
    for count in more {
        match total.iter_mut().find(|t| t.address == count.address) {
            Some(t) => t.delivered += count.delivered,
            None => total.push(count),
        }
    }
}

/// Binds `address` once, as a start-up check; `key` names where it is configured.
pub fn probe(address: IpAddr, key: &str) -> Result<(), DeliveryError> {
    smtp::bind_source(address)
        .map(drop)
        .map_err(|source| DeliveryError::SourceAddress {
            address,
            key: key.to_owned(),
            source,
        })
}

/// A destination's identity for pinning: its MX host names, lower-cased, sorted and
/// comma-joined (the same for every domain those hosts serve).
pub(crate) fn destination_key<'a>(hosts: impl Iterator<Item = &'a str>) -> String {
    let mut names: Vec<String> = hosts
        .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();
    names.join(",")
}

/// FNV-1a (64 bits): the same number for the same text in every run and on every node,
/// unlike the standard library's hasher, whose algorithm may change between releases.
fn stable_hash(text: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    text.bytes()
        .fold(OFFSET, |hash, b| (hash ^ u64::from(b)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(ip: &str, helo: &str) -> SourceAddress {
        SourceAddress {
            address: ip.parse().unwrap(),
            helo: helo.to_owned(),
        }
    }

    fn three(pick: SourcePick) -> Sources {
        Sources::new(
            vec![
                source("192.0.2.10", "a.test"),
                source("192.0.2.11", "b.test"),
                source("2001:db8::10", "c.test"),
            ],
            pick,
        )
    }

    const V4: &str = "198.51.100.1";
    const V6: &str = "2001:db8:1::25";

    fn pick(sources: &Sources, destination: &str, target: &str) -> String {
        let chosen = sources.choose(destination, target.parse().unwrap());
        chosen.map(|s| s.helo.clone()).unwrap_or_default()
    }

    #[test]
    fn round_robin_alternates_within_the_target_family() {
        let sources = three(SourcePick::RoundRobin);
        let picks: Vec<String> = (0..4).map(|_| pick(&sources, "mx.a", V4)).collect();
        assert_eq!(picks, ["a.test", "b.test", "a.test", "b.test"]);
        assert_eq!(pick(&sources, "mx.a", V6), "c.test");
    }

    #[test]
    fn pinned_keeps_a_destination_on_one_address_and_spreads_destinations() {
        let sources = three(SourcePick::Pinned);
        let mut seen = std::collections::HashSet::new();
        for d in 0..20 {
            let destination = format!("mx{d}.example.net");
            let first = pick(&sources, &destination, V4);
            for _ in 0..5 {
                assert_eq!(pick(&sources, &destination, V4), first, "{destination}");
            }
            seen.insert(first);
        }
        assert_eq!(seen.len(), 2, "twenty destinations use both IPv4 sources");
        // Stable across runs and releases: a fixed destination has a fixed address.
        assert_eq!(stable_hash("mx.example.com"), 0x3c67_e667_f6ef_ab8f); // FNV-1a reference value
    }

    #[test]
    fn deliveries_are_counted_by_the_connection_s_local_address() {
        let sources = three(SourcePick::RoundRobin);
        for local in [
            "192.0.2.11:40000",
            "192.0.2.11:40001",
            "[2001:db8::10]:2525",
            "127.0.0.1:1",
        ] {
            sources.count_delivery(Some(local.parse().unwrap()));
        }
        sources.count_delivery(None);
        let counts: Vec<u64> = sources.counts().iter().map(|c| c.delivered).collect();
        assert_eq!(counts, [0, 2, 1]);
        let mut total = sources.counts();
        add_counts(&mut total, sources.counts());
        assert_eq!(total[1].delivered, 4);
    }

    #[test]
    fn no_source_of_the_family_is_none() {
        let sources = Sources::new(vec![source("192.0.2.10", "a.test")], SourcePick::Pinned);
        assert!(sources.choose("mx.a", V6.parse().unwrap()).is_none());
        assert!(Sources::default()
            .choose("mx.a", V4.parse().unwrap())
            .is_none());
    }

    #[test]
    fn the_destination_key_ignores_order_case_and_the_root_dot() {
        let a = destination_key(["MX2.Example.com.", "mx1.example.com"].into_iter());
        let b = destination_key(["mx1.example.com", "mx2.example.com"].into_iter());
        assert_eq!(a, b);
        assert_eq!(a, "mx1.example.com,mx2.example.com");
    }

    #[test]
    fn an_address_not_on_this_host_fails_the_probe_and_is_named() {
        assert!(probe("127.0.0.1".parse().unwrap(), "[mx] source_addresses[0]").is_ok());
        let error = probe("192.0.2.10".parse().unwrap(), "[mx] source_addresses[1]")
            .unwrap_err()
            .to_string();
        assert!(error.contains("192.0.2.10"), "{error}");
        assert!(error.contains("[mx] source_addresses[1]"), "{error}");
    }
}
