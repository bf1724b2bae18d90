//! SMTP replies: parsing (multi-line, RFC 3463 enhanced codes) and EHLO capabilities.
//!
//! The parser works on the session's read buffer and reports how many bytes a complete reply
//! used, so pipelined replies that arrive together are taken one at a time. It is our own
//! (rather than smtp-proto's `ResponseReceiver`) because that one stores enhanced-code parts
//! in a `u8` (so `4.7.650` would come out wrong) and does not check that continuation lines
//! carry the same code.

use std::fmt;

/// Longest reply accepted, all lines together; a longer one is a protocol error.
pub(crate) const MAX_REPLY_BYTES: usize = 64 * 1024;

/// An RFC 3463 enhanced status code such as `5.1.1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnhancedCode {
    /// Class: 2 success, 4 persistent transient failure, 5 permanent failure.
    pub class: u8,
    /// Subject (0–999).
    pub subject: u16,
    /// Detail (0–999).
    pub detail: u16,
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// One server reply: its code, optional enhanced code and text.
///
/// For a multi-line reply, `text` holds the lines joined with `\n` (the enhanced code, when
/// present, is removed from every line that repeats it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit reply code.
    pub code: u16,
    /// The enhanced status code, when the first line starts with one.
    pub enhanced: Option<EnhancedCode>,
    /// The reply text without code, separators and line endings.
    pub text: String,
}

impl Reply {
    /// Builds a reply from its parts (handy for tests and synthetic replies).
    pub fn new(code: u16, enhanced: Option<EnhancedCode>, text: impl Into<String>) -> Self {
        Reply {
            code,
            enhanced,
            text: text.into(),
        }
    }

    /// 2xx (completion) or 3xx (intermediate, such as 354 after DATA).
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    /// 4xx: temporary failure, try again later.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// 5xx: permanent failure.
    pub fn is_permanent(&self) -> bool {
        (500..600).contains(&self.code)
    }

    /// 2xx only.
    pub(crate) fn is_completion(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// The lines of the text.
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.text.split('\n')
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(enhanced) = self.enhanced {
            write!(f, " {enhanced}")?;
        }
        for line in self.lines() {
            if !line.is_empty() {
                write!(f, " {line}")?;
            }
        }
        Ok(())
    }
}

/// A reply that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError(pub(crate) String);

/// A complete reply found at the start of a buffer.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub(crate) reply: Reply,
    /// Bytes used, line endings included.
    pub(crate) used: usize,
}

/// Parses one complete reply at the start of `buf`, as the client does with its read buffer:
/// the reply and the bytes it used (line endings included), `Ok(None)` when more bytes are
/// needed, or the reason the bytes are not an SMTP reply. For fuzzing and property tests.
pub fn parse_reply_bytes(buf: &[u8]) -> Result<Option<(Reply, usize)>, String> {
    match parse_reply(buf) {
        Ok(parsed) => Ok(parsed.map(|p| (p.reply, p.used))),
        Err(ParseError(reason)) => Err(reason),
    }
}

/// Parses one complete reply at the start of `buf`; `Ok(None)` when more bytes are needed.
pub(crate) fn parse_reply(buf: &[u8]) -> Result<Option<Parsed>, ParseError> {
    ReplyParser::default().parse(buf)
}

/// Reads one reply as its bytes arrive, resuming where the last call stopped, so a reply
/// split over many reads costs time linear in its size. The reply may be at most
/// [`MAX_REPLY_BYTES`] long, all lines and line endings together, however it is split into
/// lines. One parser reads one reply: start a new one (or take the old) once a reply is done.
#[derive(Debug, Default)]
pub(crate) struct ReplyParser {
    /// Bytes of the complete lines read so far.
    pos: usize,
    /// How far past `pos` a line end was looked for and not found.
    searched: usize,
    code: Option<u16>,
    enhanced: Option<EnhancedCode>,
    text: String,
}

impl ReplyParser {
    /// Parses on in `buf`, the bytes of this reply so far (those of the last call and
    /// perhaps more after them; further replies may follow). `Ok(None)` when more are needed.
    pub(crate) fn parse(&mut self, buf: &[u8]) -> Result<Option<Parsed>, ParseError> {
        loop {
            let from = (self.pos + self.searched).min(buf.len());
            let Some(offset) = buf[from..].iter().position(|&b| b == b'\n') else {
                self.searched = buf.len() - self.pos;
                if buf.len() > MAX_REPLY_BYTES {
                    return Err(too_long());
                }
                return Ok(None);
            };
            let end = from + offset + 1;
            if end > MAX_REPLY_BYTES {
                return Err(too_long());
            }
            let line = strip_cr(&buf[self.pos..end - 1]);
            let last = self.line(line)?;
            self.pos = end;
            self.searched = 0;
            if last {
                return Ok(self.code.map(|code| Parsed {
                    reply: Reply {
                        code,
                        enhanced: self.enhanced,
                        text: std::mem::take(&mut self.text),
                    },
                    used: end,
                }));
            }
        }
    }

    /// Takes one line (without its ending); true when it is the reply's last.
    fn line(&mut self, line: &[u8]) -> Result<bool, ParseError> {
        let (line_code, last, rest) = split_line(line)?;
        match self.code {
            None => {
                self.code = Some(line_code);
                self.enhanced = parse_enhanced(rest).map(|(e, _)| e);
            }
            Some(c) if c != line_code => {
                return Err(ParseError(format!(
                    "continuation line code {line_code} differs from {c}"
                )));
            }
            Some(_) => self.text.push('\n'),
        }
        let rest = match (self.enhanced, parse_enhanced(rest)) {
            (Some(e), Some((found, after))) if e == found => after,
            _ => rest,
        };
        self.text.push_str(&String::from_utf8_lossy(rest));
        Ok(last)
    }
}

fn too_long() -> ParseError {
    ParseError(format!("reply longer than {MAX_REPLY_BYTES} bytes"))
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Splits `250-text` into (250, is_last_line, "text").
fn split_line(line: &[u8]) -> Result<(u16, bool, &[u8]), ParseError> {
    let bad = || ParseError(format!("malformed reply line {:?}", lossy_prefix(line)));
    let digits = line.get(..3).ok_or_else(bad)?;
    if !digits.iter().all(u8::is_ascii_digit) || !(b'2'..=b'5').contains(&digits[0]) {
        return Err(bad());
    }
    let code = digits
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    match line.get(3) {
        None => Ok((code, true, &[])),
        Some(b' ') => Ok((code, true, &line[4..])),
        Some(b'-') => Ok((code, false, &line[4..])),
        Some(_) => Err(bad()),
    }
}

fn lossy_prefix(line: &[u8]) -> String {
    String::from_utf8_lossy(&line[..line.len().min(40)]).into_owned()
}

/// Parses `d.ddd.ddd` followed by a space or the end; returns the code and the text after it.
fn parse_enhanced(text: &[u8]) -> Option<(EnhancedCode, &[u8])> {
    let end = text.iter().position(|&b| b == b' ').unwrap_or(text.len());
    let mut parts = text[..end].split(|&b| b == b'.');
    let mut number = |max_len: usize| -> Option<u16> {
        let part = parts.next()?;
        if part.is_empty() || part.len() > max_len || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(
            part.iter()
                .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0')),
        )
    };
    let class = number(1)?;
    let subject = number(3)?;
    let detail = number(3)?;
    if parts.next().is_some() || !matches!(class, 2 | 4 | 5) {
        return None;
    }
    let after = text.get(end + 1..).unwrap_or(&[]);
    let class = u8::try_from(class).ok()?;
    Some((
        EnhancedCode {
            class,
            subject,
            detail,
        },
        after,
    ))
}

/// What the server announced in its EHLO reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// PIPELINING (RFC 2920).
    pub pipelining: bool,
    /// STARTTLS (RFC 3207).
    pub starttls: bool,
    /// AUTH mechanisms offered, upper-cased, in the server's order (empty: no AUTH).
    pub auth: Vec<String>,
    /// SIZE (RFC 1870): `Some(limit)` when advertised, `Some(0)` meaning no fixed limit.
    pub size: Option<u64>,
    /// 8BITMIME (RFC 6152).
    pub eight_bit_mime: bool,
    /// SMTPUTF8 (RFC 6531).
    pub smtputf8: bool,
    /// CHUNKING / BDAT (RFC 3030).
    pub chunking: bool,
    /// ENHANCEDSTATUSCODES (RFC 2034).
    pub enhanced_status_codes: bool,
}

impl Capabilities {
    /// Reads the capabilities from an EHLO reply (the first line is the server's name).
    pub fn from_ehlo(reply: &Reply) -> Self {
        let mut caps = Capabilities::default();
        for line in reply.lines().skip(1) {
            let mut words = line.split([' ', '=']);
            let keyword = words.next().unwrap_or("").to_ascii_uppercase();
            match keyword.as_str() {
                "PIPELINING" => caps.pipelining = true,
                "STARTTLS" => caps.starttls = true,
                "8BITMIME" => caps.eight_bit_mime = true,
                "SMTPUTF8" => caps.smtputf8 = true,
                "CHUNKING" => caps.chunking = true,
                "ENHANCEDSTATUSCODES" => caps.enhanced_status_codes = true,
                "SIZE" => {
                    let limit = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
                    caps.size = Some(limit);
                }
                "AUTH" => {
                    for mechanism in words.filter(|w| !w.is_empty()) {
                        let mechanism = mechanism.to_ascii_uppercase();
                        if !caps.auth.contains(&mechanism) {
                            caps.auth.push(mechanism);
                        }
                    }
                }
                _ => {}
            }
        }
        caps
    }

    /// True when the server offers the AUTH mechanism `name` (upper case).
    pub fn offers_auth(&self, name: &str) -> bool {
        self.auth.iter().any(|m| m == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Parsed {
        parse_reply(s.as_bytes()).unwrap().unwrap()
    }

    #[test]
    fn single_line_with_enhanced_code() {
        let p = parse("550 5.1.1 user unknown\r\nextra");
        assert_eq!(p.used, 24);
        assert_eq!(p.reply.code, 550);
        assert_eq!(p.reply.enhanced.unwrap().to_string(), "5.1.1");
        assert_eq!(p.reply.text, "user unknown");
        assert_eq!(p.reply.to_string(), "550 5.1.1 user unknown");
        assert!(p.reply.is_permanent());
    }

    #[test]
    fn wide_enhanced_code_and_plain_text() {
        let p = parse("452 4.7.650 throttled\r\n");
        let e = p.reply.enhanced.unwrap();
        assert_eq!((e.class, e.subject, e.detail), (4, 7, 650));
        let p = parse("250 8BITMIME\r\n");
        assert_eq!(p.reply.enhanced, None);
        assert_eq!(p.reply.text, "8BITMIME");
        let p = parse("354\r\n");
        assert_eq!((p.reply.code, p.reply.text.as_str()), (354, ""));
    }

    #[test]
    fn multi_line_reply_needs_its_last_line() {
        let s = "250-mx.example\r\n250-PIPELINING\r\n250 SIZE 1000\r\n";
        for cut in 0..s.len() {
            assert!(
                parse_reply(&s.as_bytes()[..cut]).unwrap().is_none(),
                "{cut}"
            );
        }
        let p = parse(s);
        assert_eq!(p.used, s.len());
        assert_eq!(p.reply.text, "mx.example\nPIPELINING\nSIZE 1000");
        assert_eq!(p.reply.to_string(), "250 mx.example PIPELINING SIZE 1000");
    }

    #[test]
    fn enhanced_code_removed_from_every_line() {
        let p = parse("550-5.7.1 first\r\n550 5.7.1 second\r\n");
        assert_eq!(p.reply.text, "first\nsecond");
    }

    #[test]
    fn malformed_replies_are_errors() {
        for bad in [
            "hello\r\n",
            "25\r\n",
            "250x\r\n",
            "250-a\r\n251 b\r\n",
            "650 x\r\n",
        ] {
            assert!(parse_reply(bad.as_bytes()).is_err(), "{bad}");
        }
        let long = "250-".to_owned() + &"x".repeat(MAX_REPLY_BYTES) + "\r\n";
        assert!(parse_reply(long.as_bytes()).is_err());
    }

    /// A reply of exactly `total` bytes: `250-x` lines padded by the last line's text.
    fn reply_of(total: usize) -> String {
        let mut reply = "250-x\r\n".repeat((total - 6) / 7 - 1);
        let pad = total - reply.len() - 6;
        reply.push_str(&format!("250 {}\r\n", "y".repeat(pad)));
        assert_eq!(reply.len(), total);
        reply
    }

    #[test]
    fn the_byte_cap_is_the_same_for_many_lines_and_one() {
        let many = reply_of(MAX_REPLY_BYTES);
        assert_eq!(parse(&many).used, MAX_REPLY_BYTES);
        let many = reply_of(MAX_REPLY_BYTES + 1);
        let err = parse_reply(many.as_bytes()).unwrap_err();
        assert_eq!(err.0, format!("reply longer than {MAX_REPLY_BYTES} bytes"));
        let one = format!("250 {}\r\n", "y".repeat(MAX_REPLY_BYTES - 6));
        assert_eq!(parse(&one).used, MAX_REPLY_BYTES);
        let one = format!("250 {}\r\n", "y".repeat(MAX_REPLY_BYTES - 5));
        assert_eq!(parse_reply(one.as_bytes()).unwrap_err(), err);
        // Followed by the next reply, a reply at the cap still parses alone.
        let two = reply_of(MAX_REPLY_BYTES) + "250 ok\r\n";
        assert_eq!(parse(&two).used, MAX_REPLY_BYTES);
    }

    #[test]
    fn a_reply_fed_one_byte_at_a_time_resumes_where_it_stopped() {
        let wire = reply_of(MAX_REPLY_BYTES);
        let mut parser = ReplyParser::default();
        for end in 1..wire.len() {
            assert!(parser.parse(&wire.as_bytes()[..end]).unwrap().is_none());
            // Each call looks only at the bytes it has not seen (a rescan would make this
            // loop quadratic: 2 billion byte visits instead of 64 thousand).
            assert_eq!(parser.pos + parser.searched, end);
        }
        let parsed = parser.parse(wire.as_bytes()).unwrap().unwrap();
        assert_eq!(parsed.used, MAX_REPLY_BYTES);
        assert_eq!(parsed.reply.lines().count(), (MAX_REPLY_BYTES - 6) / 7);
    }

    #[test]
    fn capabilities_from_ehlo() {
        let s = "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n\
                 250-AUTH=LOGIN\r\n250-AUTH PLAIN login CRAM-MD5\r\n250-STARTTLS\r\n\
                 250-SMTPUTF8\r\n250 CHUNKING\r\n";
        let caps = Capabilities::from_ehlo(&parse(s).reply);
        assert!(caps.pipelining && caps.starttls && caps.eight_bit_mime);
        assert!(caps.smtputf8 && caps.chunking && !caps.enhanced_status_codes);
        assert_eq!(caps.size, Some(1000));
        assert_eq!(caps.auth, ["LOGIN", "PLAIN", "CRAM-MD5"]);
        let caps = Capabilities::from_ehlo(&parse("250-x\r\n250 SIZE\r\n").reply);
        assert_eq!(caps.size, Some(0));
    }

    /// A reply line's text that cannot be mistaken for an enhanced code.
    fn line_text() -> impl proptest::strategy::Strategy<Value = String> {
        proptest::string::string_regex("([A-Za-z][ -~]{0,30})?").unwrap()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 128, ..proptest::prelude::ProptestConfig::default()
        })]

        #[test]
        fn any_bytes_give_a_reply_more_needed_or_an_error(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        ) {
            match parse_reply_bytes(&bytes) {
                Ok(Some((reply, used))) => {
                    proptest::prop_assert!(used <= bytes.len() && bytes[used - 1] == b'\n');
                    proptest::prop_assert!((200..600).contains(&reply.code));
                    let _ = Capabilities::from_ehlo(&reply);
                    let _ = reply.to_string();
                }
                Ok(None) => {}
                Err(reason) => proptest::prop_assert!(!reason.is_empty()),
            }
        }

        #[test]
        fn a_well_formed_reply_round_trips_and_leaves_the_next_one(
            code in 200u16..600,
            enhanced in proptest::option::of((
                proptest::sample::select(vec![2u8, 4, 5]), 0u16..1000, 0u16..1000,
            )),
            lines in proptest::collection::vec(line_text(), 1..6),
            crlf in proptest::prelude::any::<bool>(),
        ) {
            let enhanced = enhanced.map(|(class, subject, detail)| EnhancedCode {
                class,
                subject,
                detail,
            });
            let end = if crlf { "\r\n" } else { "\n" };
            let mut wire = String::new();
            for (i, line) in lines.iter().enumerate() {
                let sep = if i + 1 == lines.len() { ' ' } else { '-' };
                match enhanced {
                    Some(e) => wire.push_str(&format!("{code}{sep}{e} {line}{end}")),
                    None => wire.push_str(&format!("{code}{sep}{line}{end}")),
                }
            }
            let len = wire.len();
            wire.push_str("221 2.0.0 bye\r\n");
            let (reply, used) = parse_reply_bytes(wire.as_bytes()).unwrap().unwrap();
            proptest::prop_assert_eq!(used, len);
            proptest::prop_assert_eq!(reply.code, code);
            proptest::prop_assert_eq!(reply.enhanced, enhanced);
            proptest::prop_assert_eq!(reply.text, lines.join("\n"));
            let (next, _) = parse_reply_bytes(&wire.as_bytes()[used..]).unwrap().unwrap();
            proptest::prop_assert_eq!(next.to_string(), "221 2.0.0 bye");
        }
    }
}
