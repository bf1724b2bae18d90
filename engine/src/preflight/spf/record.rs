//! SPF records, parsed by mail-auth, then held to RFC 7208 where mail-auth is lenient, and
//! turned into the terms the coverage walk follows.

use std::net::IpAddr;

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::spf::{self, Macro, Spf};

/// `+`, `-`, `~` or `?` before a mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::preflight) enum Qualifier {
    /// `+` (the default): pass.
    Pass,
    /// `-`: fail.
    Fail,
    /// `~`: soft fail.
    SoftFail,
    /// `?`: neutral.
    Neutral,
}

/// One mechanism of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::preflight) enum Mechanism {
    /// `all`.
    All,
    /// `include:domain`.
    Include(String),
    /// `a[:domain][/cidr4][//cidr6]`.
    A(Option<String>, u8, u8),
    /// `mx[:domain][/cidr4][//cidr6]`.
    Mx(Option<String>, u8, u8),
    /// `ip4:` or `ip6:` an address with a prefix length.
    Ip(IpAddr, u8),
    /// `exists:`, `ptr` and terms whose domain uses a macro: counted as lookups, never
    /// matched here (named by their kind).
    Unchecked(String),
}

/// A parsed `v=spf1` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::preflight) struct Record {
    /// The mechanisms, in order.
    pub(in crate::preflight) terms: Vec<(Qualifier, Mechanism)>,
    /// `redirect=domain`, if any.
    pub(in crate::preflight) redirect: Option<String>,
}

/// True when a TXT record is an SPF record.
pub(in crate::preflight) fn is_spf(text: &str) -> bool {
    let text = text.trim_start();
    text.get(..6)
        .is_some_and(|v| v.eq_ignore_ascii_case("v=spf1"))
        && text[6..].chars().next().is_none_or(char::is_whitespace)
}

/// Parses an SPF record with mail-auth; the error names the term at fault.
pub(in crate::preflight) fn parse(text: &str) -> Result<Record, String> {
    if !is_spf(text) {
        return Err("does not start with v=spf1".to_owned());
    }
    let spf = Spf::parse(text.as_bytes()).map_err(|_| rejected(text))?;
    strict(text)?;
    let mut terms: Vec<_> = spf
        .directives
        .iter()
        .map(|d| (qualifier(&d.qualifier), mechanism(&d.mechanism)))
        .collect();
    let redirect = match spf.redirect.as_ref().map(literal) {
        Some(Some(Some(target))) => Some(target),
        Some(_) => {
            // A macro redirect: one lookup, never followed.
            terms.push((
                Qualifier::Neutral,
                Mechanism::Unchecked("redirect".to_owned()),
            ));
            None
        }
        None => None,
    };
    Ok(Record { terms, redirect })
}

/// Why mail-auth rejects `text`: the first term it rejects on its own.
fn rejected(text: &str) -> String {
    text.split_whitespace()
        .skip(1)
        .find(|term| Spf::parse(format!("v=spf1 {term}").as_bytes()).is_err())
        .map_or_else(
            || "malformed (mail-auth rejects it)".to_owned(),
            |term| format!("bad term {term:?}"),
        )
}

/// mail-auth is lenient where strict receivers are not: it reads `ip4:300.1.1.1` as
/// 255.1.1.1 and `a/99` as `a/32` (it saturates numbers), and takes an unknown word such as
/// `frobnicate -all` for a modifier whose value is the next term. RFC 7208 makes each a
/// permanent error, so each term must be a known mechanism or a `name=value` modifier, every
/// `ip4:`/`ip6:` address must parse as std reads addresses, and every prefix length of `a`,
/// `mx`, `ip4` and `ip6` must be in range.
fn strict(text: &str) -> Result<(), String> {
    for term in text.split_whitespace().skip(1) {
        let rest = term.trim_start_matches(['+', '-', '~', '?']);
        let name_end = rest.find([':', '/', '=']).unwrap_or(rest.len());
        if rest[name_end..].starts_with('=') {
            continue; // a modifier: mail-auth has checked its name and value
        }
        let (head, cidr) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (kind, address) = head.split_once(':').unwrap_or((head, ""));
        // `/n` (ip4, ip6) or `/n4`, `//n6`, `/n4//n6` (a, mx).
        let (v4, v6) = cidr.split_once("//").unwrap_or((cidr, ""));
        let v4 = v4.strip_prefix('/').unwrap_or(v4);
        let good = match kind.to_ascii_lowercase().as_str() {
            "ip4" => address.parse::<std::net::Ipv4Addr>().is_ok() && in_range(v4, 32),
            "ip6" => {
                let length = cidr.strip_prefix('/').unwrap_or(cidr);
                address.parse::<std::net::Ipv6Addr>().is_ok() && in_range(length, 128)
            }
            "a" | "mx" => in_range(v4, 32) && in_range(v6, 128),
            "all" | "include" | "ptr" | "exists" => true,
            _ => false,
        };
        if !good {
            return Err(format!("bad term {term:?}"));
        }
    }
    Ok(())
}

/// An absent prefix length, or a number from 0 to `max`.
fn in_range(length: &str, max: u8) -> bool {
    length.is_empty()
        || (length.bytes().all(|b| b.is_ascii_digit())
            && length.parse::<u8>().is_ok_and(|n| n <= max))
}

fn qualifier(qualifier: &spf::Qualifier) -> Qualifier {
    match qualifier {
        spf::Qualifier::Pass => Qualifier::Pass,
        spf::Qualifier::Fail => Qualifier::Fail,
        spf::Qualifier::SoftFail => Qualifier::SoftFail,
        spf::Qualifier::Neutral => Qualifier::Neutral,
    }
}

/// A domain spec: `Some(None)` when absent (the current domain), `Some(Some(name))` when
/// plain text, `None` when it uses a macro.
fn literal(spec: &Macro) -> Option<Option<String>> {
    match spec {
        Macro::None => Some(None),
        Macro::Literal(name) => Some(Some(String::from_utf8_lossy(name).to_ascii_lowercase())),
        Macro::Variable { .. } | Macro::List(_) => None,
    }
}

/// The prefix length of a contiguous network mask.
fn prefix(ones: u32) -> u8 {
    u8::try_from(ones).unwrap_or(u8::MAX)
}

fn mechanism(mechanism: &spf::Mechanism) -> Mechanism {
    let unchecked = |what: &str| Mechanism::Unchecked(what.to_owned());
    match mechanism {
        spf::Mechanism::All => Mechanism::All,
        spf::Mechanism::Include { macro_string } => match literal(macro_string) {
            Some(Some(target)) => Mechanism::Include(target),
            _ => unchecked("include"),
        },
        spf::Mechanism::A {
            macro_string,
            ip4_mask,
            ip6_mask,
        } => match literal(macro_string) {
            Some(d) => Mechanism::A(
                d,
                prefix(ip4_mask.count_ones()),
                prefix(ip6_mask.count_ones()),
            ),
            None => unchecked("a"),
        },
        spf::Mechanism::Mx {
            macro_string,
            ip4_mask,
            ip6_mask,
        } => match literal(macro_string) {
            Some(d) => Mechanism::Mx(
                d,
                prefix(ip4_mask.count_ones()),
                prefix(ip6_mask.count_ones()),
            ),
            None => unchecked("mx"),
        },
        spf::Mechanism::Ip4 { addr, mask } => {
            Mechanism::Ip(IpAddr::V4(*addr), prefix(mask.count_ones()))
        }
        spf::Mechanism::Ip6 { addr, mask } => {
            Mechanism::Ip(IpAddr::V6(*addr), prefix(mask.count_ones()))
        }
        spf::Mechanism::Ptr { .. } => unchecked("ptr"),
        spf::Mechanism::Exists { .. } => unchecked("exists"),
    }
}

/// True when the record lets any host send (`+all` or a bare `all`).
pub(in crate::preflight) fn allows_everyone(record: &Record) -> bool {
    record
        .terms
        .iter()
        .any(|(q, m)| *q == Qualifier::Pass && *m == Mechanism::All)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn records_parse_into_mechanisms() {
        let record =
            parse("v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 a mx:mail.example.com/28 include:_spf.p.example -all exp=x")
                .unwrap();
        assert_eq!(
            record.terms,
            vec![
                (Qualifier::Pass, Mechanism::Ip(ip("192.0.2.0"), 24)),
                (Qualifier::Pass, Mechanism::Ip(ip("2001:db8::"), 32)),
                (Qualifier::Pass, Mechanism::A(None, 32, 128)),
                (
                    Qualifier::Pass,
                    Mechanism::Mx(Some("mail.example.com".into()), 28, 128)
                ),
                (Qualifier::Pass, Mechanism::Include("_spf.p.example".into())),
                (Qualifier::Fail, Mechanism::All),
            ]
        );
        assert_eq!(
            parse("V=SPF1 redirect=_spf.example.com")
                .unwrap()
                .redirect
                .as_deref(),
            Some("_spf.example.com")
        );
        for bad in [
            "v=spf1 ip4:300.1.1.1",
            "v=spf1 ip4:::1",
            "v=spf1 include:",
            "v=spf1 foo",
            "v=spf1 a/99",
            "v=spf1 mx/24//129",
            "v=spf1 ip6:2001:db8::/200",
            "v=spf10 -all",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        for good in [
            "v=spf1 a/24//64 mx//48 ip4:192.0.2.1/0 ip6:::1 -all",
            "v=spf1",
        ] {
            assert!(parse(good).is_ok(), "{good}");
        }
        assert!(is_spf("v=spf1") && !is_spf("v=DKIM1; p=x"));
        assert!(allows_everyone(&parse("v=spf1 +all").unwrap()));
        assert!(allows_everyone(&parse("v=spf1 all").unwrap()));
        assert!(!allows_everyone(&parse("v=spf1 ~all").unwrap()));
    }
}
