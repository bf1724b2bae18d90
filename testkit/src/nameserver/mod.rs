//! The name server: a small but real DNS server on loopback that Volley's tests,
//! `volley demo` and the benchmarks point `hickory-resolver` at, so direct-to-MX delivery
//! resolves MX, A, AAAA and TXT records over the real lookup path without touching the
//! real DNS. It answers over UDP and TCP on the same port, authoritatively (AA bit), from a
//! [`Zone`] built in code or read from a zone file.
//!
//! What a query gets:
//!
//! | the zone has for the name             | reply                                             |
//! |---------------------------------------|---------------------------------------------------|
//! | records of the type asked for         | NOERROR with them                                 |
//! | a CNAME (and the type asked is not)   | the CNAME, plus the target's records of that type when the target is in the zone |
//! | records, but none of that type        | NOERROR, no answer, an SOA in authority (NODATA)  |
//! | nothing at all                        | NXDOMAIN with the same SOA                        |
//! | `SERVFAIL`                            | SERVFAIL, whatever the type                       |
//! | `TIMEOUT`                             | no reply at all                                   |
//!
//! The SOA's TTL and minimum (the negative-caching TTL) are 60 seconds. A UDP reply larger
//! than 512 bytes (or than the EDNS size the client offers) is cut to its question with the
//! TC bit set, so the client retries over TCP. Packets that do not decode get FORMERR when
//! they have a query header and are ignored otherwise; responses are never answered.
//!
//! # Zone file format
//!
//! One record per line: a name, an optional TTL in seconds, an optional `IN`, the type and
//! its data. Names are case-insensitive and the trailing dot is optional. `#` starts a
//! comment anywhere outside quotes. `$TTL n` sets the TTL of the records after it (300
//! until then); a TTL before the type applies to that line only. TXT data are one or more
//! quoted strings (`\"` and `\\` escape inside them); each becomes a character-string
//! (split at 255 bytes) and readers concatenate them. `SERVFAIL` and `TIMEOUT` take no data.
//!
//! ```text
//! # comment lines and blank lines are ignored
//! $TTL 120                                   # TTL for the following records
//! d1.example          MX    10 mx1.example
//! d1.example      300 MX    20 mx2.example   # an explicit TTL before the type
//! mx1.example         A     127.0.0.2
//! mx1.example         AAAA  ::1
//! nullmx.example      MX    0 .
//! alias.example       CNAME d1.example
//! s1._domainkey.example.com TXT "v=DKIM1; k=rsa; " "p=MIIB..."   # concatenated
//! broken.example      SERVFAIL
//! slow.example        TIMEOUT
//! ```
//!
//! A bad line (unknown type, bad address, missing field, bad TTL, unterminated quote…)
//! stops parsing with an error naming the line (and the file, from [`Zone::from_file`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), volley_testkit::nameserver::NameServerError> {
//! use std::net::Ipv4Addr;
//! use volley_testkit::nameserver::{NameServer, Zone};
//!
//! let mut zone = Zone::new();
//! zone.mx("d1.example", 10, "mx1.example")
//!     .a("mx1.example", Ipv4Addr::new(127, 0, 0, 2));
//! let dns = NameServer::start(zone).await?;
//! // ... point a resolver at dns.addr() (UDP and TCP) ...
//! assert_eq!(dns.queries_for("d1.example", "MX"), 0);
//! dns.shutdown().await;
//! # Ok(()) }
//! ```

mod answer;
mod error;
mod parse;
mod server;
mod state;
#[cfg(test)]
mod tests;
mod zone;

pub use error::{NameServerError, ZoneProblem};
pub use server::NameServer;
pub use zone::Zone;
