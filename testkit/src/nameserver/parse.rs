//! The zone text format (documented in the [module docs](super)): one record per line,
//! `#` comments, `$TTL` directives, quoted TXT strings. Parsing stops at the first bad line
//! and reports its number and what is wrong.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::zone::{parse_name, Zone};
use super::ZoneProblem;

/// One token of a line: a bare word or a quoted string (quotes removed, escapes resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(Vec<u8>),
}

/// Parses zone text; an error carries the 1-based line number.
pub(super) fn parse(text: &str) -> Result<Zone, (usize, ZoneProblem)> {
    let mut zone = Zone::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        parse_line(&mut zone, line).map_err(|problem| (number, problem))?;
    }
    Ok(zone)
}

fn parse_line(zone: &mut Zone, line: &str) -> Result<(), ZoneProblem> {
    let tokens = tokenize(line)?;
    let mut tokens = tokens.into_iter().peekable();
    let Some(first) = tokens.next() else {
        return Ok(());
    };
    let first = word(first)?;
    if let Some(directive) = first.strip_prefix('$') {
        if !directive.eq_ignore_ascii_case("TTL") {
            return Err(ZoneProblem::UnknownDirective(first));
        }
        let ttl = parse_ttl(&word(tokens.next().ok_or(ZoneProblem::Missing("TTL"))?)?)?;
        no_more(&mut tokens)?;
        zone.ttl(ttl);
        return Ok(());
    }
    let name = first;
    parse_name(&name).map_err(|reason| ZoneProblem::BadName {
        name: name.clone(),
        reason,
    })?;
    let mut kind = word(tokens.next().ok_or(ZoneProblem::Missing("record type"))?)?;
    let mut ttl = None;
    if kind.starts_with(|c: char| c.is_ascii_digit()) {
        ttl = Some(parse_ttl(&kind)?);
        kind = word(tokens.next().ok_or(ZoneProblem::Missing("record type"))?)?;
    }
    if kind.eq_ignore_ascii_case("IN") {
        kind = word(tokens.next().ok_or(ZoneProblem::Missing("record type"))?)?;
    }
    let default_ttl = zone.current_ttl();
    if let Some(ttl) = ttl {
        zone.ttl(ttl);
    }
    let added = add_record(zone, &name, &kind, &mut tokens);
    zone.ttl(default_ttl);
    added
}

/// Adds the record of type `kind` whose data are the remaining tokens.
fn add_record(
    zone: &mut Zone,
    name: &str,
    kind: &str,
    tokens: &mut impl Iterator<Item = Token>,
) -> Result<(), ZoneProblem> {
    match kind.to_ascii_uppercase().as_str() {
        "MX" => {
            let preference = word(tokens.next().ok_or(ZoneProblem::Missing("MX preference"))?)?;
            let preference = preference
                .parse::<u16>()
                .map_err(|_| ZoneProblem::BadPreference(preference.clone()))?;
            let exchange = target(tokens, "MX exchange")?;
            no_more(tokens)?;
            zone.mx(name, preference, &exchange);
        }
        "A" => {
            let value = word(tokens.next().ok_or(ZoneProblem::Missing("IPv4 address"))?)?;
            let ip = value.parse::<Ipv4Addr>().map_err(|_| ZoneProblem::BadIp {
                kind: "IPv4",
                value: value.clone(),
            })?;
            no_more(tokens)?;
            zone.a(name, ip);
        }
        "AAAA" => {
            let value = word(tokens.next().ok_or(ZoneProblem::Missing("IPv6 address"))?)?;
            let ip = value.parse::<Ipv6Addr>().map_err(|_| ZoneProblem::BadIp {
                kind: "IPv6",
                value: value.clone(),
            })?;
            no_more(tokens)?;
            zone.aaaa(name, ip);
        }
        "CNAME" => {
            let alias_of = target(tokens, "CNAME target")?;
            no_more(tokens)?;
            zone.cname(name, &alias_of);
        }
        "TXT" => {
            let mut strings = Vec::new();
            for token in tokens {
                match token {
                    Token::Quoted(bytes) => strings.push(bytes),
                    Token::Word(word) => return Err(ZoneProblem::UnquotedText(word)),
                }
            }
            if strings.is_empty() {
                return Err(ZoneProblem::Missing(
                    "TXT data (one or more quoted strings)",
                ));
            }
            let strings: Vec<&[u8]> = strings.iter().map(Vec::as_slice).collect();
            zone.txt_strings(name, &strings);
        }
        "SERVFAIL" => {
            no_more(tokens)?;
            zone.servfail(name);
        }
        "TIMEOUT" => {
            no_more(tokens)?;
            zone.timeout(name);
        }
        _ => return Err(ZoneProblem::UnknownType(kind.to_owned())),
    }
    Ok(())
}

/// The next token as a valid domain name (for MX exchanges and CNAME targets).
fn target(
    tokens: &mut impl Iterator<Item = Token>,
    what: &'static str,
) -> Result<String, ZoneProblem> {
    let name = word(tokens.next().ok_or(ZoneProblem::Missing(what))?)?;
    parse_name(&name).map_err(|reason| ZoneProblem::BadName {
        name: name.clone(),
        reason,
    })?;
    Ok(name)
}

fn word(token: Token) -> Result<String, ZoneProblem> {
    match token {
        Token::Word(word) => Ok(word),
        Token::Quoted(bytes) => Err(ZoneProblem::UnexpectedQuote(
            String::from_utf8_lossy(&bytes).into_owned(),
        )),
    }
}

fn no_more(tokens: &mut impl Iterator<Item = Token>) -> Result<(), ZoneProblem> {
    match tokens.next() {
        None => Ok(()),
        Some(Token::Word(word)) => Err(ZoneProblem::Extra(word)),
        Some(Token::Quoted(bytes)) => Err(ZoneProblem::Extra(format!(
            "\"{}\"",
            String::from_utf8_lossy(&bytes)
        ))),
    }
}

fn parse_ttl(text: &str) -> Result<u32, ZoneProblem> {
    text.parse::<u32>()
        .map_err(|_| ZoneProblem::BadTtl(text.to_owned()))
}

/// Splits a line into words and quoted strings; `#` outside quotes starts a comment.
/// Inside quotes a backslash takes the next character literally (`\"`, `\\`).
fn tokenize(line: &str) -> Result<Vec<Token>, ZoneProblem> {
    let mut tokens = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '#' {
            break;
        } else if c == '"' {
            chars.next();
            let mut text = String::new();
            loop {
                match chars.next() {
                    None => return Err(ZoneProblem::UnterminatedQuote),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(escaped) => text.push(escaped),
                        None => return Err(ZoneProblem::UnterminatedQuote),
                    },
                    Some(other) => text.push(other),
                }
            }
            tokens.push(Token::Quoted(text.into_bytes()));
        } else {
            let mut text = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || c == '#' || c == '"' {
                    break;
                }
                text.push(c);
                chars.next();
            }
            tokens.push(Token::Word(text));
        }
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::super::zone::{Data, Fault};
    use super::*;

    const EXAMPLE: &str = r#"
# comment lines and blank lines are ignored
$TTL 120                                   # TTL for the following records
d1.example          MX    10 mx1.example
d1.example      300 MX    20 mx2.example   # an explicit TTL before the type
mx1.example         A     127.0.0.2
mx1.example         AAAA  ::1
nullmx.example      MX    0 .
alias.example       CNAME d1.example
s1._domainkey.example.com TXT "v=DKIM1; k=rsa; " "p=MIIB..."   # one or more quoted strings
broken.example      SERVFAIL
slow.example        TIMEOUT
"#;

    #[test]
    fn the_documented_example_parses() {
        let zone = parse(EXAMPLE).unwrap();
        let d1 = zone.lookup("d1.example").unwrap();
        assert_eq!(d1.records.len(), 2);
        assert_eq!(
            d1.records[0].data,
            Data::Mx {
                preference: 10,
                exchange: "mx1.example".to_owned()
            }
        );
        assert_eq!(d1.records[0].ttl, 120);
        assert_eq!(d1.records[1].ttl, 300);
        let mx1 = zone.lookup("mx1.example").unwrap();
        assert_eq!(mx1.records[0].data, Data::A(Ipv4Addr::new(127, 0, 0, 2)));
        assert_eq!(mx1.records[1].data, Data::Aaaa(Ipv6Addr::LOCALHOST));
        assert_eq!(mx1.records[1].ttl, 120, "an explicit TTL lasts one line");
        assert_eq!(
            zone.lookup("nullmx.example").unwrap().records[0].data,
            Data::Mx {
                preference: 0,
                exchange: ".".to_owned()
            }
        );
        assert_eq!(
            zone.lookup("alias.example").unwrap().records[0].data,
            Data::Cname("d1.example".to_owned())
        );
        assert_eq!(
            zone.lookup("s1._domainkey.example.com").unwrap().records[0].data,
            Data::Txt(vec![b"v=DKIM1; k=rsa; ".to_vec(), b"p=MIIB...".to_vec()])
        );
        assert_eq!(
            zone.lookup("broken.example").unwrap().fault,
            Some(Fault::ServFail)
        );
        assert_eq!(
            zone.lookup("slow.example").unwrap().fault,
            Some(Fault::Timeout)
        );
    }

    fn s(text: &str) -> String {
        text.to_owned()
    }

    fn ip4(text: &str) -> Data {
        Data::A(text.parse().unwrap())
    }

    #[test]
    fn good_lines() {
        let mx = |preference, exchange: &str| Data::Mx {
            preference,
            exchange: s(exchange),
        };
        let txt = |text: &[u8]| Data::Txt(vec![text.to_vec()]);
        #[rustfmt::skip]
        let cases: &[(&str, &str, Data, u32)] = &[
            ("x.example A 10.0.0.1", "x.example", ip4("10.0.0.1"), 300),
            ("X.Example. 60 IN A 10.0.0.1", "x.example", ip4("10.0.0.1"), 60),
            ("x.example mx 5 MX.example.", "x.example", mx(5, "MX.example."), 300),
            ("x.example aaaa 2001:db8::1", "x.example", Data::Aaaa("2001:db8::1".parse().unwrap()), 300),
            (r#"x.example TXT "a \"quoted\" # not a comment""#, "x.example", txt(br#"a "quoted" # not a comment"#), 300),
            (r#"x.example TXT """#, "x.example", txt(b""), 300),
            ("x.example\tCNAME\ty.example # trailing comment", "x.example", Data::Cname(s("y.example")), 300),
            ("   x.example 0 A 127.0.0.1", "x.example", ip4("127.0.0.1"), 0),
        ];
        for (line, name, data, ttl) in cases {
            let zone = parse(line).unwrap_or_else(|e| panic!("{line:?}: {e:?}"));
            let record = &zone.lookup(name).unwrap().records[0];
            assert_eq!(&record.data, data, "{line:?}");
            assert_eq!(record.ttl, *ttl, "{line:?}");
        }
    }

    #[test]
    fn bad_lines_name_their_line_and_problem() {
        use ZoneProblem as P;
        let ip = |kind, value: &str| P::BadIp {
            kind,
            value: s(value),
        };
        #[rustfmt::skip]
        let cases: &[(&str, usize, ZoneProblem)] = &[
            ("x.example FOO 1", 1, P::UnknownType(s("FOO"))),
            ("# c\n\nx.example A 300.1.1.1", 3, ip("IPv4", "300.1.1.1")),
            ("x.example AAAA 127.0.0.1", 1, ip("IPv6", "127.0.0.1")),
            ("ok.example A 127.0.0.1\nx.example MX 10", 2, P::Missing("MX exchange")),
            ("x.example MX", 1, P::Missing("MX preference")),
            ("x.example MX ten mx.example", 1, P::BadPreference(s("ten"))),
            ("x.example MX 70000 mx.example", 1, P::BadPreference(s("70000"))),
            ("x.example", 1, P::Missing("record type")),
            ("x.example 60", 1, P::Missing("record type")),
            ("x.example 6o A 127.0.0.1", 1, P::BadTtl(s("6o"))),
            ("$TTL -5", 1, P::BadTtl(s("-5"))),
            ("$TTL 99999999999", 1, P::BadTtl(s("99999999999"))),
            ("$TTL", 1, P::Missing("TTL")),
            ("$ORIGIN example.", 1, P::UnknownDirective(s("$ORIGIN"))),
            (r#"x.example TXT "open"#, 1, P::UnterminatedQuote),
            (r#"x.example TXT "ends in a backslash\"#, 1, P::UnterminatedQuote),
            ("x.example TXT bare", 1, P::UnquotedText(s("bare"))),
            ("x.example TXT", 1, P::Missing("TXT data (one or more quoted strings)")),
            ("x.example A 127.0.0.1 extra", 1, P::Extra(s("extra"))),
            ("x.example SERVFAIL now", 1, P::Extra(s("now"))),
            (r#""x.example" A 127.0.0.1"#, 1, P::UnexpectedQuote(s("x.example"))),
        ];
        for (text, line, problem) in cases {
            let (got_line, got) = parse(text).expect_err(text);
            assert_eq!((got_line, &got), (*line, problem), "{text:?}");
        }
    }

    #[test]
    fn bad_names_are_refused() {
        for text in [
            "bad..name A 127.0.0.1",
            "x.example CNAME a..b",
            "x.example MX 1 -.",
        ] {
            let (line, problem) = parse(text).expect_err(text);
            assert_eq!(line, 1);
            assert!(
                matches!(problem, ZoneProblem::BadName { .. }),
                "{text:?}: {problem:?}"
            );
        }
    }

    #[test]
    fn errors_from_files_name_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.zone");
        std::fs::write(&path, "ok.example A 127.0.0.1\nx.example A nope\n").unwrap();
        let error = Zone::from_file(&path).unwrap_err();
        let text = error.to_string();
        assert!(
            text.starts_with(&format!("{} line 2: ", path.display())),
            "{text}"
        );
        assert!(text.contains("\"nope\""), "{text}");
        let missing = Zone::from_file(&dir.path().join("missing.zone")).unwrap_err();
        assert!(matches!(
            missing,
            super::super::NameServerError::ReadZone { .. }
        ));
        let inline = Zone::parse("x.example BOGUS").unwrap_err().to_string();
        assert!(
            inline.starts_with("zone line 1: unknown record type"),
            "{inline}"
        );
    }
}
