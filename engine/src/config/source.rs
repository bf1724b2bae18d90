//! Source addresses: the local IP addresses outbound connections leave from (`[mx]
//! source_addresses` and `source_pick`, `[relay] source_address`), each MX source with the
//! name it gives in EHLO. Whether an address really belongs to this host is checked when a
//! send starts (`delivery`), not here: loading a campaign file never touches the network.

use std::net::IpAddr;

use serde::Deserialize;

use super::error::ConfigError;
use super::relay::host_name;
use super::validate::Ctx;

/// One local address outbound connections to MX hosts are bound to, and its EHLO name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceAddress {
    /// The address (IPv4 or IPv6); it must be an address of this host.
    pub address: IpAddr,
    /// The name sent in EHLO from this address (before and after STARTTLS); default `[mx]
    /// helo`. It should be the address's reverse DNS name.
    pub helo: String,
}

/// How a connection's source address is chosen among several (`[mx] source_pick`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum SourcePick {
    /// Each new connection takes the next address in turn (`"round-robin"`, the default).
    #[default]
    RoundRobin,
    /// A destination (its set of MX hosts) always leaves from the same address, chosen by a
    /// stable hash of its MX host names, so its reputation builds on one IP (`"pinned"`).
    Pinned,
}

/// One `source_addresses` entry as written: `"192.0.2.10"` or `{ address = "192.0.2.10",
/// helo = "mta1.example.com" }`.
#[derive(Debug)]
pub(crate) enum RawSource {
    /// Just the address.
    Address(String),
    /// The address and its EHLO name.
    Table(RawSourceTable),
}

/// The table form of a `source_addresses` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSourceTable {
    pub(crate) address: String,
    /// Absent: `[mx] helo`.
    #[serde(default)]
    pub(crate) helo: Option<String>,
}

impl<'de> Deserialize<'de> for RawSource {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // By hand rather than `untagged`, so a bad key in the table keeps its own message.
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawSource;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "an IP address, or a table { address = \"192.0.2.10\", helo = \"mta1.example.com\" }",
                )
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(RawSource::Address(text.to_owned()))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                RawSourceTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(RawSource::Table)
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// Checks `[mx] source_addresses`; `helo` is the EHLO name of entries without their own.
pub(crate) fn validate_sources(
    ctx: &Ctx,
    raw: &[RawSource],
    helo: &str,
) -> Result<Vec<SourceAddress>, ConfigError> {
    const KEY: &str = "mx.source_addresses";
    if raw.is_empty() {
        return Err(ctx.bad(
            KEY,
            "[]",
            "at least one address, like [\"192.0.2.10\"] (or leave the key out)",
        ));
    }
    let mut sources: Vec<SourceAddress> = Vec::with_capacity(raw.len());
    for (i, entry) in raw.iter().enumerate() {
        let source = match entry {
            RawSource::Address(text) => SourceAddress {
                address: source_ip(ctx, &format!("{KEY}[{i}]"), text)?,
                helo: helo.to_owned(),
            },
            RawSource::Table(table) => SourceAddress {
                address: source_ip(ctx, &format!("{KEY}[{i}].address"), &table.address)?,
                helo: match &table.helo {
                    Some(name) => host_name(ctx, &format!("{KEY}[{i}].helo"), name)?,
                    None => helo.to_owned(),
                },
            },
        };
        if sources.iter().any(|s| s.address == source.address) {
            return Err(ctx.bad(
                &format!("{KEY}[{i}]"),
                &source.address.to_string(),
                "an address not listed before (each source address appears once)",
            ));
        }
        sources.push(source);
    }
    Ok(sources)
}

/// A source address: a specific unicast IPv4 or IPv6 address.
pub(crate) fn source_ip(ctx: &Ctx, key: &str, value: &str) -> Result<IpAddr, ConfigError> {
    let text = value.trim();
    // `[2001:db8::1]` is accepted as well as `2001:db8::1`.
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    match bare.parse::<IpAddr>() {
        Ok(ip) if ip.is_unspecified() || ip.is_multicast() => Err(ctx.bad(
            key,
            value,
            "a specific address of this host (not 0.0.0.0, :: or a multicast address)",
        )),
        Ok(IpAddr::V4(v4)) if v4.is_broadcast() => Err(ctx.bad(
            key,
            value,
            "a specific address of this host (not the broadcast address)",
        )),
        Ok(ip) => Ok(ip),
        Err(_) => Err(ctx.bad(
            key,
            value,
            "an IPv4 or IPv6 address of this host, like 192.0.2.10 or 2001:db8::10",
        )),
    }
}
