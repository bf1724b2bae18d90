//! The records the name server answers from: a [`Zone`] built in code (one call per record)
//! or parsed from the zone text format (see `parse.rs`). Names are kept in a canonical form
//! (lower case, no trailing dot) so lookups ignore case and a trailing dot.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use hickory_proto::rr::{Name, RecordType};

use super::NameServerError;

/// TTL of records added before any [`Zone::ttl`] call, in seconds.
const DEFAULT_TTL: u32 = 300;

/// Longest character-string a TXT record can carry; longer text is split.
const TXT_CHUNK: usize = 255;

/// The records a [`NameServer`](super::NameServer) answers from. Names are
/// case-insensitive and a trailing dot is optional everywhere. Every builder call adds to
/// what is there (two `mx` calls for one name give two MX records).
///
/// `Zone::default()` is empty, with a TTL of 300 seconds for the records added.
#[derive(Debug, Clone)]
pub struct Zone {
    /// TTL given to the records added next.
    ttl: u32,
    /// Everything known about each name, by canonical name.
    names: BTreeMap<String, Node>,
}

/// Everything the zone says about one name.
#[derive(Debug, Clone, Default)]
pub(super) struct Node {
    /// The name's records, in the order they were added.
    pub(super) records: Vec<Entry>,
    /// A scripted failure for every query of this name, if any.
    pub(super) fault: Option<Fault>,
}

/// A scripted failure: how the server misbehaves for a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fault {
    /// Answer SERVFAIL to every query.
    ServFail,
    /// Never answer.
    Timeout,
}

/// One record of a name: its TTL and data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    /// Time to live in seconds.
    pub(super) ttl: u32,
    /// The record data.
    pub(super) data: Data,
}

/// Record data as given; names are checked when the answer is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Data {
    /// A mail exchanger (`"."` for a null MX).
    Mx {
        /// Lower is preferred.
        preference: u16,
        /// The exchange host.
        exchange: String,
    },
    /// An IPv4 address.
    A(Ipv4Addr),
    /// An IPv6 address.
    Aaaa(Ipv6Addr),
    /// Character-strings of at most 255 bytes each.
    Txt(Vec<Vec<u8>>),
    /// An alias for another name.
    Cname(String),
}

impl Data {
    /// The DNS type of this data.
    pub(super) fn record_type(&self) -> RecordType {
        match self {
            Data::Mx { .. } => RecordType::MX,
            Data::A(_) => RecordType::A,
            Data::Aaaa(_) => RecordType::AAAA,
            Data::Txt(_) => RecordType::TXT,
            Data::Cname(_) => RecordType::CNAME,
        }
    }
}

impl Default for Zone {
    fn default() -> Self {
        Zone {
            ttl: DEFAULT_TTL,
            names: BTreeMap::new(),
        }
    }
}

impl Zone {
    /// An empty zone (records added get a TTL of 300 seconds until [`Zone::ttl`] changes it).
    pub fn new() -> Zone {
        Zone::default()
    }

    /// Parses the zone text format described in the [module docs](super). Errors name the
    /// line number and what is wrong with it.
    pub fn parse(text: &str) -> Result<Zone, NameServerError> {
        super::parse::parse(text).map_err(|(line, reason)| NameServerError::Zone {
            file: None,
            line,
            reason,
        })
    }

    /// Reads and parses a zone file. Errors name the file and the line.
    pub fn from_file(path: &Path) -> Result<Zone, NameServerError> {
        let text = std::fs::read_to_string(path).map_err(|source| NameServerError::ReadZone {
            path: path.to_owned(),
            source,
        })?;
        super::parse::parse(&text).map_err(|(line, reason)| NameServerError::Zone {
            file: Some(path.to_owned()),
            line,
            reason,
        })
    }

    /// Adds an MX record: mail for `name` goes to `exchange`, lower `preference` first.
    pub fn mx(&mut self, name: &str, preference: u16, exchange: &str) -> &mut Zone {
        self.add(
            name,
            Data::Mx {
                preference,
                exchange: exchange.to_owned(),
            },
        )
    }

    /// Adds a null MX (RFC 7505: `MX 0 .`): the domain accepts no mail.
    pub fn null_mx(&mut self, name: &str) -> &mut Zone {
        self.mx(name, 0, ".")
    }

    /// Adds an A record.
    pub fn a(&mut self, name: &str, ip: Ipv4Addr) -> &mut Zone {
        self.add(name, Data::A(ip))
    }

    /// Adds an AAAA record.
    pub fn aaaa(&mut self, name: &str, ip: Ipv6Addr) -> &mut Zone {
        self.add(name, Data::Aaaa(ip))
    }

    /// Adds a TXT record holding `text`; text longer than 255 bytes is split into several
    /// character-strings, which readers (SPF, DKIM, DMARC) concatenate.
    pub fn txt(&mut self, name: &str, text: &str) -> &mut Zone {
        self.add(name, Data::Txt(split_txt(&[text.as_bytes()])))
    }

    /// Adds a TXT record made of the given character-strings (each split at 255 bytes).
    pub(super) fn txt_strings(&mut self, name: &str, strings: &[&[u8]]) -> &mut Zone {
        self.add(name, Data::Txt(split_txt(strings)))
    }

    /// Adds a CNAME: `name` is an alias of `target`. Queries for `name` get the CNAME and,
    /// when `target` is in this zone, its records of the type asked for.
    pub fn cname(&mut self, name: &str, target: &str) -> &mut Zone {
        self.add(name, Data::Cname(target.to_owned()))
    }

    /// Makes every query for `name` (any type) get SERVFAIL. The name counts as existing.
    /// Replaces an earlier [`Zone::timeout`] for the same name.
    pub fn servfail(&mut self, name: &str) -> &mut Zone {
        self.node(name).fault = Some(Fault::ServFail);
        self
    }

    /// Makes queries for `name` (any type) go unanswered, so resolvers time out. The name
    /// counts as existing. Replaces an earlier [`Zone::servfail`] for the same name.
    pub fn timeout(&mut self, name: &str) -> &mut Zone {
        self.node(name).fault = Some(Fault::Timeout);
        self
    }

    /// Sets the TTL, in seconds, of the records added after this call (default 300).
    pub fn ttl(&mut self, seconds: u32) -> &mut Zone {
        self.ttl = seconds;
        self
    }

    /// The TTL the next record added gets.
    pub(super) fn current_ttl(&self) -> u32 {
        self.ttl
    }

    /// What the zone says about a canonical name (see [`canonical`]), if anything.
    pub(super) fn lookup(&self, key: &str) -> Option<&Node> {
        self.names.get(key)
    }

    fn add(&mut self, name: &str, data: Data) -> &mut Zone {
        let ttl = self.ttl;
        self.node(name).records.push(Entry { ttl, data });
        self
    }

    fn node(&mut self, name: &str) -> &mut Node {
        self.names.entry(canonical_str(name)).or_default()
    }
}

/// The canonical form of a name: lower case ASCII (IDNA for non-ASCII), no trailing dot;
/// the root is `""`.
pub(super) fn canonical(name: &Name) -> String {
    let ascii = name.to_lowercase().to_ascii();
    ascii.trim_end_matches('.').to_owned()
}

/// The canonical form of a name given as text. Text that is not a valid name is only
/// lower-cased (it then matches no query).
pub(super) fn canonical_str(name: &str) -> String {
    match parse_name(name) {
        Ok(parsed) => canonical(&parsed),
        Err(_) => name.trim().trim_end_matches('.').to_ascii_lowercase(),
    }
}

/// Parses a name as written in a zone (trailing dot optional, `"."` is the root) into a
/// fully qualified name.
pub(super) fn parse_name(name: &str) -> Result<Name, String> {
    let trimmed = name.trim();
    if trimmed == "." {
        return Ok(Name::root());
    }
    let mut parsed = Name::from_str_relaxed(trimmed).map_err(|error| error.to_string())?;
    if parsed.is_root() {
        return Err("empty name".to_owned());
    }
    parsed.set_fqdn(true);
    Ok(parsed)
}

/// Splits each string into character-strings of at most 255 bytes (an empty string stays
/// one empty character-string; no strings at all give one empty character-string).
fn split_txt(strings: &[&[u8]]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for string in strings {
        if string.is_empty() {
            out.push(Vec::new());
        }
        out.extend(string.chunks(TXT_CHUNK).map(<[u8]>::to_vec));
    }
    if out.is_empty() {
        out.push(Vec::new());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_case_insensitive_and_the_trailing_dot_is_optional() {
        let mut zone = Zone::new();
        zone.a("MX1.Example.", Ipv4Addr::LOCALHOST);
        zone.a("mx1.example", Ipv4Addr::new(127, 0, 0, 2));
        let node = zone.lookup("mx1.example").unwrap();
        assert_eq!(node.records.len(), 2);
        let from_wire = Name::from_ascii("mX1.EXAMPLE.").unwrap();
        assert_eq!(canonical(&from_wire), "mx1.example");
    }

    #[test]
    fn ttl_applies_to_the_records_added_after_it() {
        let mut zone = Zone::new();
        zone.a("a.example", Ipv4Addr::LOCALHOST)
            .ttl(5)
            .a("b.example", Ipv4Addr::LOCALHOST);
        assert_eq!(zone.lookup("a.example").unwrap().records[0].ttl, 300);
        assert_eq!(zone.lookup("b.example").unwrap().records[0].ttl, 5);
    }

    #[test]
    fn long_txt_is_split_into_255_byte_strings() {
        let text = "x".repeat(600);
        let mut zone = Zone::new();
        zone.txt("t.example", &text);
        let Data::Txt(strings) = &zone.lookup("t.example").unwrap().records[0].data else {
            panic!("not a TXT record");
        };
        let lengths: Vec<usize> = strings.iter().map(Vec::len).collect();
        assert_eq!(lengths, [255, 255, 90]);
        assert_eq!(strings.concat(), text.as_bytes());
    }

    #[test]
    fn servfail_and_timeout_names_exist_without_records() {
        let mut zone = Zone::new();
        zone.servfail("broken.example").timeout("slow.example.");
        assert_eq!(
            zone.lookup("broken.example").unwrap().fault,
            Some(Fault::ServFail)
        );
        assert_eq!(
            zone.lookup("slow.example").unwrap().fault,
            Some(Fault::Timeout)
        );
        assert!(zone.lookup("slow.example").unwrap().records.is_empty());
    }

    #[test]
    fn names_parse_with_underscores_and_the_root() {
        assert!(parse_name("s1._domainkey.example.com").is_ok());
        assert!(parse_name(".").unwrap().is_root());
        assert!(parse_name("bad..name").is_err());
        assert!(parse_name("has space.example").is_err());
    }
}
