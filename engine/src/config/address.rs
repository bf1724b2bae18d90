//! Email address syntax: the one checker used for the campaign's From and Reply-To (here, in
//! `config`) and for every recipient row (re-exported by `campaign`), so both agree on what
//! an address is.
//!
//! The accepted form is deliberately the common one: a dot-atom local part (RFC 5322, ASCII
//! only) and a DNS domain converted to its ASCII (punycode) form by UTS 46.

use std::net::Ipv4Addr;

use super::error::AddressError;

/// Longest local part in octets (RFC 5321 §4.5.3.1.1).
const MAX_LOCAL: usize = 64;
/// Longest domain in octets (RFC 5321 §4.5.3.1.2, without the trailing dot).
const MAX_DOMAIN: usize = 253;
/// Longest DNS label in octets.
const MAX_LABEL: usize = 63;
/// Longest whole address in octets (the RFC 5321 path limit less its angle brackets).
const MAX_ADDRESS: usize = 254;

/// Checks and normalises one email address, returning `(address, domain)`.
///
/// Surrounding whitespace is trimmed. The local part must be an RFC 5322 dot-atom of ASCII
/// characters, at most 64 octets, and keeps its case. The domain is converted to lowercase
/// ASCII (internationalised names become punycode, `xn--…`), must have at least two labels
/// of at most 63 octets each, at most 253 octets in all, and may not be an IP literal. The
/// whole address is at most 254 octets. The returned domain is the domain part of the
/// returned address.
pub fn normalize_address(raw: &str) -> Result<(String, String), AddressError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(AddressError::Empty);
    }
    let (local, domain) = trimmed.rsplit_once('@').ok_or(AddressError::MissingAt)?;
    if local.is_empty() {
        return Err(AddressError::EmptyLocalPart);
    }
    if domain.is_empty() {
        return Err(AddressError::EmptyDomain);
    }
    check_local_part(local)?;
    let domain = normalize_domain(domain)?;
    let address = format!("{local}@{domain}");
    if address.len() > MAX_ADDRESS {
        return Err(AddressError::AddressTooLong { len: address.len() });
    }
    Ok((address, domain))
}

/// Checks a local part against the RFC 5322 dot-atom rules.
fn check_local_part(local: &str) -> Result<(), AddressError> {
    if !local.is_ascii() {
        return Err(AddressError::NonAsciiLocalPart);
    }
    if local.len() > MAX_LOCAL {
        return Err(AddressError::LocalPartTooLong { len: local.len() });
    }
    if let Some(ch) = local.chars().find(|&c| c != '.' && !is_atext(c)) {
        return Err(AddressError::LocalPartChar { ch });
    }
    if local.starts_with('.') || local.ends_with('.') {
        return Err(AddressError::LocalPartEdgeDot);
    }
    if local.contains("..") {
        return Err(AddressError::LocalPartDoubleDot);
    }
    Ok(())
}

/// Whether `c` is an RFC 5322 `atext` character.
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c)
}

/// Converts a domain to lowercase ASCII (UTS 46, punycode) and checks DNS shape.
///
/// Used for address domains and for `[[dkim]]` domains alike.
pub(crate) fn normalize_domain(domain: &str) -> Result<String, AddressError> {
    if domain.starts_with('[') || domain.parse::<Ipv4Addr>().is_ok() {
        return Err(AddressError::IpLiteral);
    }
    let ascii = idna::domain_to_ascii_cow(domain.as_bytes(), idna::AsciiDenyList::STD3)
        .map_err(|_| AddressError::InvalidDomain)?;
    let ascii = ascii.to_ascii_lowercase();
    if ascii.len() > MAX_DOMAIN {
        return Err(AddressError::DomainTooLong { len: ascii.len() });
    }
    let mut labels = 0usize;
    for label in ascii.split('.') {
        check_label(label)?;
        labels += 1;
    }
    if labels < 2 {
        return Err(AddressError::SingleLabel);
    }
    let tld_numeric = ascii
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()));
    if tld_numeric {
        return Err(AddressError::NumericTld);
    }
    Ok(ascii)
}

/// Checks one ASCII DNS label: 1 to 63 letters, digits and inner hyphens.
fn check_label(label: &str) -> Result<(), AddressError> {
    if label.is_empty() {
        return Err(AddressError::EmptyLabel);
    }
    if label.len() > MAX_LABEL {
        return Err(AddressError::LabelTooLong { len: label.len() });
    }
    if !label
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(AddressError::InvalidDomain);
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(AddressError::LabelHyphen);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_addresses_normalise() {
        let long_local = "a".repeat(64);
        let long_ok = format!("{long_local}@example.com");
        let cases: &[(&str, &str, &str)] = &[
            ("ann@example.com", "ann@example.com", "example.com"),
            (
                "  Ann.Lee@Example.COM \t",
                "Ann.Lee@example.com",
                "example.com",
            ),
            (
                "o'neil+tag@mail.example.org",
                "o'neil+tag@mail.example.org",
                "mail.example.org",
            ),
            (
                "!#$%&'*+/=?^_`{|}~-@example.com",
                "!#$%&'*+/=?^_`{|}~-@example.com",
                "example.com",
            ),
            (
                "ann@bücher.example",
                "ann@xn--bcher-kva.example",
                "xn--bcher-kva.example",
            ),
            (
                "ann@BÜCHER.example",
                "ann@xn--bcher-kva.example",
                "xn--bcher-kva.example",
            ),
            (
                "ann@münchen.de",
                "ann@xn--mnchen-3ya.de",
                "xn--mnchen-3ya.de",
            ),
            (
                "ann@xn--mnchen-3ya.de",
                "ann@xn--mnchen-3ya.de",
                "xn--mnchen-3ya.de",
            ),
            ("ann@a-b.c0.example", "ann@a-b.c0.example", "a-b.c0.example"),
            (&long_ok, &long_ok, "example.com"),
        ];
        for (raw, address, domain) in cases {
            let got = normalize_address(raw);
            assert_eq!(
                got,
                Ok((address.to_string(), domain.to_string())),
                "input {raw:?}"
            );
        }
    }

    #[test]
    fn bad_addresses_give_reasons() {
        let long_local = format!("{}@example.com", "a".repeat(65));
        let long_label = format!("ann@{}.com", "b".repeat(64));
        let long_domain = format!("ann@{}com", "abcdefghi.".repeat(26));
        let long_address = format!("{}@{}abcdefghij", "a".repeat(64), "abcdefghi.".repeat(18));
        let cases: &[(&str, &str)] = &[
            ("", "empty address"),
            ("   ", "empty address"),
            ("ann.example.com", "missing @"),
            ("@example.com", "nothing before the @"),
            ("ann@", "nothing after the @"),
            (&long_local, "local part too long (65 > 64)"),
            ("jörg@example.com", "local part has non-ASCII characters (internationalised local parts are not supported)"),
            ("ann lee@example.com", "invalid character ' ' in local part"),
            ("\"ann\"@example.com", "invalid character '\"' in local part"),
            ("ann@lee@example.com", "invalid character '@' in local part"),
            (".ann@example.com", "local part starts or ends with a dot"),
            ("ann.@example.com", "local part starts or ends with a dot"),
            ("ann..lee@example.com", "local part has two dots in a row"),
            ("ann@[192.0.2.1]", "IP address literals are not accepted"),
            ("ann@192.0.2.1", "IP address literals are not accepted"),
            ("ann@localhost", "domain needs at least two labels (like example.com)"),
            ("ann@example..com", "domain has an empty label"),
            ("ann@example.com.", "domain has an empty label"),
            ("ann@exa_mple.com", "invalid domain name"),
            ("ann@exa mple.com", "invalid domain name"),
            ("ann@-example.com", "domain label starts or ends with a hyphen"),
            ("ann@example-.com", "domain label starts or ends with a hyphen"),
            ("ann@example.123", "top-level domain is all digits"),
            (&long_label, "domain label too long (64 > 63)"),
            (&long_domain, "domain too long (263 > 253)"),
            (&long_address, "address too long (255 > 254)"),
        ];
        for (raw, reason) in cases {
            match normalize_address(raw) {
                Ok(ok) => panic!("{raw:?} was accepted as {ok:?}"),
                Err(err) => assert_eq!(err.to_string(), *reason, "input {raw:?}"),
            }
        }
    }
}
