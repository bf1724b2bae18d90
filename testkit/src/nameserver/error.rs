//! The name server's errors: a zone that cannot be read or parsed, or sockets that cannot be
//! bound. DNS replies the server sends (NXDOMAIN, SERVFAIL, silence) are behaviour, not errors.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Why the test name server could not do what was asked of it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NameServerError {
    /// A zone line is invalid. `Display` reads `zones/test.zone line 4: …` (or `zone line 4: …`
    /// for text that did not come from a file).
    #[error("{} line {line}: {reason}", file_label(.file.as_deref()))]
    Zone {
        /// The zone file, when the text came from one.
        file: Option<PathBuf>,
        /// The 1-based line number.
        line: usize,
        /// What is wrong with the line.
        reason: ZoneProblem,
    },
    /// The zone file could not be read.
    #[error("{}: cannot read the zone file: {source}", path.display())]
    ReadZone {
        /// The zone file.
        path: PathBuf,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// The server only listens on loopback addresses; another address was asked for.
    #[error("{addr}: the test name server only listens on loopback addresses")]
    NotLoopback {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// Binding the UDP socket or the TCP listener failed.
    #[error("could not bind the name server to {addr} ({protocol}): {source}")]
    Bind {
        /// The address asked for (port 0 when any free port would do).
        addr: SocketAddr,
        /// `"udp"` or `"tcp"`.
        protocol: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The bound socket has no readable local address.
    #[error("could not read the name server socket's local address: {0}")]
    LocalAddr(std::io::Error),
}

/// What is wrong with one zone line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ZoneProblem {
    /// The record type is not one the zone format knows.
    #[error("unknown record type {0:?} (expected MX, A, AAAA, TXT, CNAME, SERVFAIL or TIMEOUT)")]
    UnknownType(String),
    /// A required field is missing.
    #[error("missing {0}")]
    Missing(&'static str),
    /// There is more on the line than the record type takes.
    #[error("unexpected {0:?} after the record")]
    Extra(String),
    /// A TTL (in `$TTL` or before the type) is not a number of seconds.
    #[error("bad TTL {0:?}: expected a whole number of seconds")]
    BadTtl(String),
    /// An IPv4 or IPv6 address does not parse.
    #[error("bad {kind} address {value:?}")]
    BadIp {
        /// `"IPv4"` or `"IPv6"`.
        kind: &'static str,
        /// The text given.
        value: String,
    },
    /// An MX preference is not a number from 0 to 65535.
    #[error("bad MX preference {0:?}: expected a number from 0 to 65535")]
    BadPreference(String),
    /// A domain name is not valid.
    #[error("bad domain name {name:?}: {reason}")]
    BadName {
        /// The text given.
        name: String,
        /// Why it was refused.
        reason: String,
    },
    /// A quoted string has no closing quote.
    #[error("unterminated quoted string")]
    UnterminatedQuote,
    /// A TXT record's data is not a quoted string.
    #[error("TXT data must be quoted strings, found {0:?}")]
    UnquotedText(String),
    /// A quoted string appears where a name, number or type was expected.
    #[error("unexpected quoted string {0:?}")]
    UnexpectedQuote(String),
    /// A `$` directive other than `$TTL`.
    #[error("unknown directive {0:?} (only $TTL is supported)")]
    UnknownDirective(String),
}

fn file_label(file: Option<&std::path::Path>) -> String {
    match file {
        Some(path) => path.display().to_string(),
        None => "zone".to_owned(),
    }
}
