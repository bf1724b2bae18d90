//! The SPF rows (best effort): the From domain (and the VERP bounce domain) publish one
//! `v=spf1` record, it does not allow everyone (`+all`), and, following `include:` and
//! `redirect=` within the 10-lookup limit, it covers the relay's addresses (or the
//! `--sending-ip` of a direct-to-MX send).
//!
//! What comes from mail-auth: parsing each record ([`record`], `mail_auth::spf::Spf`), held
//! to RFC 7208 where mail-auth is lenient (out-of-range addresses and prefix lengths,
//! unknown mechanisms). What Volley does itself, and why:
//! - the DNS questions go to the campaign's `[dns]` resolvers, like delivery's, through the
//!   [`Dns`] trait; mail-auth's evaluator has its own resolver and wants a received message
//!   (client address, HELO, MAIL FROM);
//! - the walk reports why, not just a result: which include has no record, which domain has
//!   two, that the DNS-querying terms across all includes and redirects pass the limit of
//!   10 (RFC 7208 §4.6.4), or which of the relay's addresses (every one its host name
//!   resolves to, or `--sending-ip`) is not covered, with the `ip4:`/`ip6:` terms to add;
//! - `+all` is flagged, and a record to publish is suggested.
//!
//! Macros (`%{…}`) are not expanded: a term that uses one counts as a lookup and never
//! matches; `exists:` and `ptr` likewise.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use super::{Check, Dns, Status, TxtAnswer};
use crate::config::CampaignSettings;

mod record;

pub(super) use record::{allows_everyone, is_spf, parse, Mechanism, Qualifier, Record};

/// DNS-querying terms an evaluation may use (RFC 7208 §4.6.4).
const LOOKUP_LIMIT: u32 = 10;

/// The result of evaluating a domain's SPF policy for one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// A mechanism matched with this qualifier.
    Matched(Qualifier),
    /// Nothing matched (neutral).
    NoMatch,
    /// The domain has no SPF record.
    NoRecord,
    /// The policy is broken (bad record, two records, too many lookups).
    PermError(String),
    /// DNS failed.
    TempError(String),
}

/// Evaluates `domain`'s SPF policy for `ip`, counting lookups in `lookups`.
pub(super) fn evaluate<'a, D: Dns>(
    dns: &'a D,
    domain: &'a str,
    ip: IpAddr,
    lookups: &'a mut u32,
) -> Pin<Box<dyn Future<Output = Verdict> + 'a>> {
    Box::pin(async move {
        let record = match fetch(dns, domain).await {
            Ok(Some(record)) => record,
            Ok(None) => return Verdict::NoRecord,
            Err(FetchError::Temp(reason)) => return Verdict::TempError(reason),
            Err(FetchError::Perm(reason)) => return Verdict::PermError(reason),
        };
        for (qualifier, mechanism) in &record.terms {
            match matches(dns, domain, mechanism, ip, lookups).await {
                Ok(true) => return Verdict::Matched(*qualifier),
                Ok(false) => {}
                Err(verdict) => return verdict,
            }
        }
        match &record.redirect {
            Some(target) => {
                if let Err(verdict) = count(lookups) {
                    return verdict;
                }
                match evaluate(dns, target, ip, lookups).await {
                    Verdict::NoRecord => {
                        Verdict::PermError(format!("redirect={target} has no SPF record"))
                    }
                    verdict => verdict,
                }
            }
            None => Verdict::NoMatch,
        }
    })
}

/// Why a domain's SPF record could not be had.
enum FetchError {
    /// DNS failed.
    Temp(String),
    /// The record is broken, or there are several.
    Perm(String),
}

/// The one SPF record of `domain`, or what went wrong.
async fn fetch(dns: &impl Dns, domain: &str) -> Result<Option<Record>, FetchError> {
    let records: Vec<String> = match dns.txt(domain).await {
        TxtAnswer::Records(records) => records.into_iter().filter(|r| is_spf(r)).collect(),
        TxtAnswer::None => Vec::new(),
        TxtAnswer::Failed(reason) => return Err(FetchError::Temp(format!("{domain}: {reason}"))),
    };
    match records.as_slice() {
        [] => Ok(None),
        [one] => parse(one)
            .map(Some)
            .map_err(|reason| FetchError::Perm(format!("{domain}: {reason}"))),
        _ => Err(FetchError::Perm(format!(
            "{domain} has {} SPF records (there must be one)",
            records.len()
        ))),
    }
}

fn count(lookups: &mut u32) -> Result<(), Verdict> {
    *lookups += 1;
    if *lookups > LOOKUP_LIMIT {
        Err(Verdict::PermError(format!(
            "more than {LOOKUP_LIMIT} DNS lookups (include, a, mx, exists, ptr, redirect)"
        )))
    } else {
        Ok(())
    }
}

async fn matches<D: Dns>(
    dns: &D,
    domain: &str,
    mechanism: &Mechanism,
    ip: IpAddr,
    lookups: &mut u32,
) -> Result<bool, Verdict> {
    let target = |d: &Option<String>| d.clone().unwrap_or_else(|| domain.to_owned());
    match mechanism {
        Mechanism::All => Ok(true),
        Mechanism::Ip(net, prefix) => Ok(in_network(ip, *net, *prefix)),
        Mechanism::Unchecked(_) => count(lookups).map(|()| false),
        Mechanism::Include(target) => {
            count(lookups)?;
            match evaluate(dns, target, ip, lookups).await {
                Verdict::Matched(Qualifier::Pass) => Ok(true),
                Verdict::Matched(_) | Verdict::NoMatch => Ok(false),
                Verdict::NoRecord => Err(Verdict::PermError(format!(
                    "include:{target} has no SPF record"
                ))),
                verdict => Err(verdict),
            }
        }
        Mechanism::A(d, v4, v6) => {
            count(lookups)?;
            Ok(host_matches(dns, &target(d), ip, *v4, *v6).await)
        }
        Mechanism::Mx(d, v4, v6) => {
            count(lookups)?;
            let hosts = dns.mx_hosts(&target(d)).await.map_err(Verdict::TempError)?;
            for host in hosts.iter().take(10) {
                if host_matches(dns, host, ip, *v4, *v6).await {
                    return Ok(true);
                }
            }
            Ok(false)
        }
    }
}

async fn host_matches(dns: &impl Dns, host: &str, ip: IpAddr, v4: u8, v6: u8) -> bool {
    if host.contains('%') {
        return false;
    }
    let addresses = dns.addresses(host).await.unwrap_or_default();
    addresses.into_iter().any(|net| {
        let prefix = if net.is_ipv4() { v4 } else { v6 };
        in_network(ip, net, prefix)
    })
}

/// True when `ip` is in `net/prefix` (and of the same family).
pub(super) fn in_network(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// The SPF rows: the From domain and, when set, the `[bounces]` domain.
pub(super) async fn checks(
    dns: &impl Dns,
    settings: &CampaignSettings,
    sending_ip: Option<IpAddr>,
) -> Vec<Check> {
    let mut domains = vec![settings.from.domain.clone()];
    if let Some(bounces) = &settings.bounces.domain {
        if !domains.contains(bounces) {
            domains.push(bounces.clone());
        }
    }
    let senders = senders(dns, settings, sending_ip).await;
    let mut rows = Vec::new();
    for domain in domains {
        let (status, detail) = check_domain(dns, &domain, &senders).await;
        rows.push(Check::new(format!("spf {domain}"), status, detail));
    }
    rows
}

/// Where the mail leaves from, as far as can be known.
enum Senders {
    /// The relay's addresses (or `--sending-ip`, or `[mx] source_addresses`).
    Known { what: String, ips: Vec<IpAddr> },
    /// The relay's host name did not resolve.
    Unresolved { host: String, reason: String },
    /// Direct to MX without `--sending-ip`.
    Unknown,
}

async fn senders(
    dns: &impl Dns,
    settings: &CampaignSettings,
    sending_ip: Option<IpAddr>,
) -> Senders {
    if let Some(ip) = sending_ip {
        return Senders::Known {
            what: format!("the sending address {ip}"),
            ips: vec![ip],
        };
    }
    let Some(relay) = &settings.relay else {
        let sources = &settings.mx.source_addresses;
        if sources.is_empty() {
            return Senders::Unknown;
        }
        return Senders::Known {
            what: "the source addresses ([mx] source_addresses)".to_owned(),
            ips: sources.iter().map(|s| s.address).collect(),
        };
    };
    match dns.addresses(&relay.host).await {
        Ok(ips) => Senders::Known {
            what: format!("relay {}", relay.host),
            ips,
        },
        Err(reason) => Senders::Unresolved {
            host: relay.host.clone(),
            reason,
        },
    }
}

/// The SPF record suggested when the sending addresses are not known: the domain's MX and A
/// hosts (add `ip4:` or the provider's `include:`).
pub const SUGGESTED_UNKNOWN_SENDERS: &str = "v=spf1 mx a ~all";

async fn check_domain(dns: &impl Dns, domain: &str, senders: &Senders) -> (Status, String) {
    let suggestion = match senders {
        Senders::Known { ips, .. } => {
            let mut spf = String::from("v=spf1");
            for ip in ips {
                spf.push_str(&format!(" ip{}:{ip}", if ip.is_ipv4() { 4 } else { 6 }));
            }
            spf + " ~all"
        }
        Senders::Unresolved { host, .. } => format!("v=spf1 a:{host} ~all"),
        Senders::Unknown => SUGGESTED_UNKNOWN_SENDERS.to_owned(),
    };
    let record = match fetch(dns, domain).await {
        Ok(Some(record)) => record,
        Ok(None) => {
            return (
                Status::Fail,
                format!("no SPF record: publish {domain} TXT \"{suggestion}\" (or your provider's include:)"),
            )
        }
        Err(FetchError::Temp(reason)) => {
            return (Status::Fail, format!("cannot look up the SPF record: {reason}"))
        }
        Err(FetchError::Perm(reason)) => {
            return (Status::Fail, format!("broken SPF record: {reason}"))
        }
    };
    if allows_everyone(&record) {
        return (
            Status::Fail,
            format!("the SPF record of {domain} ends in +all: anyone may send as {domain}; use ~all or -all"),
        );
    }
    let (what, ips) = match senders {
        Senders::Known { what, ips } => (what, ips),
        Senders::Unresolved { host, reason } => {
            return (
                Status::Warn,
                format!("record found, but the relay host {host} does not resolve ({reason}), so its coverage cannot be checked"),
            )
        }
        Senders::Unknown => {
            return (
                Status::Warn,
                "record found; direct to MX: coverage of the sending host cannot be checked without --sending-ip".to_owned(),
            )
        }
    };
    let mut uncovered = Vec::new();
    for ip in ips {
        let mut lookups = 0;
        match evaluate(dns, domain, *ip, &mut lookups).await {
            Verdict::Matched(Qualifier::Pass) => {}
            Verdict::PermError(reason) => {
                return (Status::Fail, format!("broken SPF policy: {reason}"))
            }
            Verdict::TempError(reason) => {
                return (
                    Status::Warn,
                    format!("cannot follow the SPF policy: {reason}"),
                )
            }
            _ => uncovered.push(ip.to_string()),
        }
    }
    if uncovered.is_empty() {
        (Status::Pass, format!("covers {what}"))
    } else {
        (
            Status::Warn,
            format!(
                "does not cover {what} ({}): add {} to the record of {domain}",
                uncovered.join(", "),
                uncovered
                    .iter()
                    .map(|ip| if ip.contains(':') {
                        format!("ip6:{ip}")
                    } else {
                        format!("ip4:{ip}")
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preflight::fake::FakeDns;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    async fn verdict(dns: &FakeDns, domain: &str, address: &str) -> Verdict {
        let mut lookups = 0;
        evaluate(dns, domain, ip(address), &mut lookups).await
    }

    #[test]
    fn networks_match_by_prefix() {
        assert!(in_network(ip("192.0.2.77"), ip("192.0.2.0"), 24));
        assert!(!in_network(ip("192.0.3.1"), ip("192.0.2.0"), 24));
        assert!(in_network(ip("10.1.2.3"), ip("0.0.0.0"), 0));
        assert!(in_network(ip("2001:db8::1"), ip("2001:db8::"), 32));
        assert!(!in_network(ip("127.0.0.1"), ip("::1"), 128));
    }

    #[tokio::test]
    async fn includes_redirects_a_and_mx_are_followed() {
        let dns = FakeDns::default()
            .txt("example.com", "v=spf1 include:_spf.provider.example -all")
            .txt(
                "_spf.provider.example",
                "v=spf1 ip4:198.51.100.0/24 redirect=_more.provider.example",
            )
            .txt(
                "_more.provider.example",
                "v=spf1 a:out.provider.example mx ~all",
            )
            .ip("out.provider.example", "203.0.113.5")
            .mx("_more.provider.example", "mx.provider.example")
            .ip("mx.provider.example", "203.0.113.9");
        let pass = Verdict::Matched(Qualifier::Pass);
        assert_eq!(verdict(&dns, "example.com", "198.51.100.20").await, pass);
        assert_eq!(verdict(&dns, "example.com", "203.0.113.5").await, pass);
        assert_eq!(verdict(&dns, "example.com", "203.0.113.9").await, pass);
        // The include's ~all does not match for the including record, whose -all then does.
        assert_eq!(
            verdict(&dns, "example.com", "192.0.2.1").await,
            Verdict::Matched(Qualifier::Fail)
        );
        assert_eq!(
            verdict(&dns, "nothing.example", "192.0.2.1").await,
            Verdict::NoRecord
        );
    }

    #[tokio::test]
    async fn lookups_are_bounded_and_broken_policies_are_errors() {
        let looping = FakeDns::default().txt("loop.example", "v=spf1 include:loop.example -all");
        assert!(matches!(
            verdict(&looping, "loop.example", "192.0.2.1").await,
            Verdict::PermError(reason) if reason.contains("more than 10")
        ));
        let two = FakeDns::default()
            .txt("two.example", "v=spf1 -all")
            .txt("two.example", "v=spf1 ~all");
        assert!(matches!(
            verdict(&two, "two.example", "192.0.2.1").await,
            Verdict::PermError(_)
        ));
        let dangling = FakeDns::default().txt("d.example", "v=spf1 include:gone.example -all");
        assert!(matches!(
            verdict(&dangling, "d.example", "192.0.2.1").await,
            Verdict::PermError(_)
        ));
    }

    #[tokio::test]
    async fn domain_rows_fail_warn_and_pass() {
        let relay = Senders::Known {
            what: "relay smtp.p.example".into(),
            ips: vec![ip("192.0.2.10")],
        };
        let dns = FakeDns::default()
            .txt("open.example", "v=spf1 +all")
            .txt("good.example", "v=spf1 ip4:192.0.2.0/24 -all")
            .txt("other.example", "v=spf1 ip4:198.51.100.1 -all")
            .txt("broken.example", "v=spf1 ip4:192.0.2 -all")
            .txt("lenient.example", "v=spf1 ip4:192.0.2.300 -all")
            .txt("unknown.example", "v=spf1 ip4:192.0.2.10 frobnicate -all")
            .txt(
                "macro.example",
                "v=spf1 include:%{d}.spf.example a:%{i}.x.example ~all",
            );
        let (status, detail) = check_domain(&dns, "none.example", &relay).await;
        assert_eq!(status, Status::Fail);
        assert!(
            detail.contains("publish none.example TXT \"v=spf1 ip4:192.0.2.10 ~all\""),
            "{detail}"
        );
        let (status, detail) = check_domain(&dns, "open.example", &relay).await;
        assert_eq!(status, Status::Fail);
        assert!(detail.contains("+all"), "{detail}");
        assert_eq!(
            check_domain(&dns, "good.example", &relay).await.0,
            Status::Pass
        );
        let (status, detail) = check_domain(&dns, "other.example", &relay).await;
        assert_eq!(status, Status::Warn);
        assert!(detail.contains("add ip4:192.0.2.10"), "{detail}");
        // mail-auth rejects the record: a failure naming the term.
        let (status, detail) = check_domain(&dns, "broken.example", &relay).await;
        assert_eq!(status, Status::Fail);
        assert!(
            detail.contains("broken SPF record: broken.example: bad term \"ip4:192.0.2\""),
            "{detail}"
        );
        // mail-auth would take `frobnicate -all` for a modifier; it is an unknown mechanism.
        let (status, detail) = check_domain(&dns, "unknown.example", &relay).await;
        assert_eq!(status, Status::Fail);
        assert!(detail.contains("bad term \"frobnicate\""), "{detail}");
        // mail-auth would read 192.0.2.255 here; strict receivers reject the record.
        let (status, detail) = check_domain(&dns, "lenient.example", &relay).await;
        assert_eq!(status, Status::Fail);
        assert!(detail.contains("bad term \"ip4:192.0.2.300\""), "{detail}");
        // Terms with macros are not expanded: the relay is not covered, nothing is broken.
        let (status, detail) = check_domain(&dns, "macro.example", &relay).await;
        assert_eq!(status, Status::Warn, "{detail}");
        assert!(detail.contains("does not cover"), "{detail}");
        let (status, detail) = check_domain(&dns, "good.example", &Senders::Unknown).await;
        assert_eq!(status, Status::Warn);
        assert!(detail.contains("--sending-ip"), "{detail}");
    }
}
