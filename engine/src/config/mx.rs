//! The `[mx]` and `[dns]` sections: how direct-to-MX delivery reaches recipients' mail servers
//! and which name servers it asks.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::error::ConfigError;
use super::raw::{RawDns, RawMx};
use super::relay::host_name;
use super::settings::{DnsSettings, MxSettings, MxTls};
use super::source::validate_sources;
use super::validate::{parse_duration, Ctx};

/// The SMTP port of MX hosts.
const MX_PORT: u16 = 25;
/// The port MTA-STS policies are fetched from.
const HTTPS_PORT: u16 = 443;
/// The DNS port when a name server is given without one.
const DNS_PORT: u16 = 53;

/// Checks `[mx]`; `from_domain` is the default EHLO name.
pub(crate) fn validate_mx(
    ctx: &Ctx,
    raw: &RawMx,
    from_domain: &str,
) -> Result<MxSettings, ConfigError> {
    let port = match raw.port {
        Some(port) => {
            ctx.range("mx.port", port, 1, i64::from(u16::MAX))?;
            u16::try_from(port).unwrap_or(MX_PORT) // invariant: range-checked
        }
        None => MX_PORT,
    };
    let helo = match &raw.helo {
        Some(helo) => host_name(ctx, "mx.helo", helo)?,
        None => from_domain.to_owned(),
    };
    let ca_file = match &raw.ca_file {
        Some(value) => {
            let path = ctx.path("mx.ca_file", value)?;
            ctx.readable("mx.ca_file", &path)?;
            Some(path)
        }
        None => None,
    };
    let plain_after_tls_failure = match &raw.plain_after_tls_failure {
        Some(value) => parse_duration(ctx, "mx.plain_after_tls_failure", value)?,
        None => Duration::from_secs(3600),
    };
    let mta_sts_port = match raw.mta_sts_port {
        Some(port) => {
            ctx.range("mx.mta_sts_port", port, 1, i64::from(u16::MAX))?;
            u16::try_from(port).unwrap_or(HTTPS_PORT) // invariant: range-checked
        }
        None => HTTPS_PORT,
    };
    let mta_sts_timeout = match &raw.mta_sts_timeout {
        Some(value) => parse_duration(ctx, "mx.mta_sts_timeout", value)?,
        None => Duration::from_secs(30),
    };
    let source_addresses = match &raw.source_addresses {
        Some(list) => validate_sources(ctx, list, &helo)?,
        None => Vec::new(),
    };
    Ok(MxSettings {
        port,
        helo,
        tls: raw.tls.unwrap_or(MxTls::Opportunistic),
        ca_file,
        plain_after_tls_failure,
        mta_sts: raw.mta_sts.unwrap_or(true),
        mta_sts_port,
        mta_sts_timeout,
        source_addresses,
        source_pick: raw.source_pick.unwrap_or_default(),
    })
}

/// Checks `[dns]`.
pub(crate) fn validate_dns(ctx: &Ctx, raw: &RawDns) -> Result<DnsSettings, ConfigError> {
    let defaults = DnsSettings::default();
    let nameservers = match &raw.nameservers {
        Some(list) if list.is_empty() => {
            return Err(ctx.bad(
                "dns.nameservers",
                "[]",
                "at least one name server, like \"127.0.0.1:53\"",
            ))
        }
        Some(list) => Some(
            list.iter()
                .enumerate()
                .map(|(i, value)| nameserver(ctx, &format!("dns.nameservers[{i}]"), value))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        None => None,
    };
    let timeout = match &raw.timeout {
        Some(value) => parse_duration(ctx, "dns.timeout", value)?,
        None => defaults.timeout,
    };
    let attempts = match raw.attempts {
        Some(n) => {
            ctx.range("dns.attempts", n, 1, 10)?;
            usize::try_from(n).unwrap_or(defaults.attempts) // invariant: range-checked
        }
        None => defaults.attempts,
    };
    Ok(DnsSettings {
        nameservers,
        timeout,
        attempts,
    })
}

/// `ip`, `ip:port` or `[ipv6]:port`.
fn nameserver(ctx: &Ctx, key: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    let text = value.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, DNS_PORT));
    }
    Err(ctx.bad(
        key,
        value,
        "an IP address with an optional port, like 127.0.0.1:5353 or [::1]:53",
    ))
}
