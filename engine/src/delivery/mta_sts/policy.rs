//! The two texts of MTA-STS (RFC 8461): the `_mta-sts` TXT record (`v=STSv1; id=…`) and the
//! policy file (`version`, `mode`, `mx`, `max_age`), and how a policy's `mx` patterns match
//! MX host names. Pure functions; the lookups and the fetch are elsewhere.

use std::time::Duration;

/// The longest `max_age` a policy may ask for (RFC 8461 §3.2: about one year).
pub(crate) const MAX_AGE_LIMIT: u64 = 31_557_600;
/// Patterns kept from one policy at most (a hostile policy cannot make matching slow).
const MAX_PATTERNS: usize = 64;

/// What a domain asks senders to do when its MX hosts fail the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StsMode {
    /// Deliver only to listed MX hosts with STARTTLS and a valid certificate; defer otherwise.
    Enforce,
    /// Deliver as usual and report what would have failed.
    Testing,
    /// The domain withdraws its policy: deliver as usual.
    None,
}

impl StsMode {
    /// The word used in the policy file.
    pub fn as_str(self) -> &'static str {
        match self {
            StsMode::Enforce => "enforce",
            StsMode::Testing => "testing",
            StsMode::None => "none",
        }
    }
}

/// A parsed policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Its mode.
    pub mode: StsMode,
    /// The MX host patterns (lowercase; `*.` for one leftmost label).
    pub mx: Vec<String>,
    /// How long it may be cached (capped at about one year).
    pub max_age: Duration,
}

impl Policy {
    /// True when `host` (an MX host name, any case, trailing dot allowed) matches one of the
    /// policy's `mx` patterns.
    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.mx.iter().any(|pattern| matches(pattern, &host))
    }
}

/// `pattern` against a lowercase host: exact, or `*.rest` for exactly one label before `rest`.
fn matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(rest) => host
            .strip_suffix(rest)
            .and_then(|label| label.strip_suffix('.'))
            .is_some_and(|label| !label.is_empty() && !label.contains('.')),
        None => pattern == host,
    }
}

/// The policy id of a domain's `_mta-sts` TXT records: records not starting with
/// `v=STSv1` are ignored; `None` unless exactly one remains and it carries a valid `id`
/// (1-32 letters and digits), as RFC 8461 §3.1 says.
pub(crate) fn txt_id(records: &[String]) -> Option<String> {
    let mut sts = records.iter().filter(|r| {
        r.split(';')
            .next()
            .is_some_and(|first| first.trim() == "v=STSv1")
    });
    let record = sts.next()?;
    if sts.next().is_some() {
        return None;
    }
    record.split(';').skip(1).find_map(|field| {
        let (key, value) = field.trim().split_once('=')?;
        let value = value.trim();
        let valid =
            (1..=32).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_alphanumeric());
        (key.trim() == "id" && valid).then(|| value.to_owned())
    })
}

/// Parses a policy file (lines `key: value`, CRLF or LF); the error names what is wrong.
pub(crate) fn parse(text: &str) -> Result<Policy, String> {
    let mut version = None;
    let mut mode = None;
    let mut max_age = None;
    let mut mx = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(format!("line {}: not `key: value`", number + 1));
        };
        let value = value.trim();
        match key.trim() {
            "version" if version.is_none() => version = Some(value.to_owned()),
            "mode" if mode.is_none() => mode = Some(parse_mode(value)?),
            "max_age" if max_age.is_none() => max_age = Some(parse_max_age(value)?),
            "mx" if mx.len() < MAX_PATTERNS => mx.push(parse_pattern(value)?),
            _ => {} // unknown keys and repeats are ignored (RFC 8461 §3.2)
        }
    }
    if version.as_deref() != Some("STSv1") {
        return Err("version is not STSv1".to_owned());
    }
    let mode = mode.ok_or("no mode")?;
    let max_age = max_age.ok_or("no max_age")?;
    if mx.is_empty() && mode != StsMode::None {
        return Err(format!("mode {} without any mx", mode.as_str()));
    }
    Ok(Policy { mode, mx, max_age })
}

fn parse_mode(value: &str) -> Result<StsMode, String> {
    match value {
        "enforce" => Ok(StsMode::Enforce),
        "testing" => Ok(StsMode::Testing),
        "none" => Ok(StsMode::None),
        other => Err(format!("unknown mode {other:?}")),
    }
}

fn parse_max_age(value: &str) -> Result<Duration, String> {
    if value.is_empty() || value.len() > 10 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("max_age {value:?} is not a number of seconds"));
    }
    let seconds: u64 = value.parse().map_err(|_| format!("max_age {value:?}"))?;
    Ok(Duration::from_secs(seconds.min(MAX_AGE_LIMIT)))
}

fn parse_pattern(value: &str) -> Result<String, String> {
    let pattern = value.trim_end_matches('.').to_ascii_lowercase();
    let name = pattern.strip_prefix("*.").unwrap_or(&pattern);
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if valid {
        Ok(pattern)
    } else {
        Err(format!("mx {value:?} is not a host name or *.name pattern"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_file_parses_with_crlf_or_lf_and_ignores_unknown_keys() {
        let text = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n\
                    mx: *.Example.NET.\r\nfoo: bar\r\nmax_age: 86400\r\n";
        let policy = parse(text).unwrap();
        assert_eq!(policy.mode, StsMode::Enforce);
        assert_eq!(policy.mx, ["mail.example.com", "*.example.net"]);
        assert_eq!(policy.max_age, Duration::from_secs(86400));
        let lf = parse("version: STSv1\nmode: testing\nmx: a.b\nmax_age: 99999999999\n");
        assert_eq!(
            lf.unwrap_err(),
            "max_age \"99999999999\" is not a number of seconds"
        );
        let capped = parse("version: STSv1\nmode: none\nmax_age: 9999999999\n").unwrap();
        assert_eq!(capped.max_age, Duration::from_secs(MAX_AGE_LIMIT));
    }

    #[test]
    fn broken_policies_are_refused_with_the_reason() {
        let cases = [
            (
                "mode: enforce\nmx: a.b\nmax_age: 1\n",
                "version is not STSv1",
            ),
            (
                "version: STSv2\nmode: enforce\nmx: a.b\nmax_age: 1\n",
                "version is not STSv1",
            ),
            ("version: STSv1\nmx: a.b\nmax_age: 1\n", "no mode"),
            ("version: STSv1\nmode: enforce\nmx: a.b\n", "no max_age"),
            (
                "version: STSv1\nmode: enforce\nmax_age: 1\n",
                "mode enforce without any mx",
            ),
            (
                "version: STSv1\nmode: strict\nmx: a.b\nmax_age: 1\n",
                "unknown mode \"strict\"",
            ),
            (
                "version: STSv1\nmode: enforce\nmx: a..b\nmax_age: 1\n",
                "mx \"a..b\" is not a host name or *.name pattern",
            ),
            (
                "version: STSv1\nmode: enforce\nmx: *.\nmax_age: 1\n",
                "mx \"*.\" is not a host name or *.name pattern",
            ),
            ("<html>\n", "line 1: not `key: value`"),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text).unwrap_err(), want, "{text:?}");
        }
    }

    #[test]
    fn wildcards_match_exactly_one_leftmost_label() {
        let policy = Policy {
            mode: StsMode::Enforce,
            mx: vec!["mail.example.com".into(), "*.example.net".into()],
            max_age: Duration::from_secs(1),
        };
        for (host, allowed) in [
            ("mail.example.com", true),
            ("MAIL.example.com.", true),
            ("other.example.com", false),
            ("mx1.example.net", true),
            ("a.mx1.example.net", false),
            ("example.net", false),
            ("mx1.badexample.net", false),
        ] {
            assert_eq!(policy.allows(host), allowed, "{host}");
        }
    }

    #[test]
    fn the_txt_record_gives_the_id_only_when_exactly_one_is_valid() {
        let one = |r: &[&str]| txt_id(&r.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
        assert_eq!(
            one(&["v=STSv1; id=20160831085700Z;"]).as_deref(),
            Some("20160831085700Z")
        );
        assert_eq!(
            one(&["v=spf1 -all", "v=STSv1;id=abc"]).as_deref(),
            Some("abc")
        );
        assert_eq!(one(&["v=STSv1; id=a", "v=STSv1; id=b"]), None);
        assert_eq!(one(&["v=STSv1; id=not-alnum"]), None);
        assert_eq!(one(&["v=STSv1;"]), None);
        assert_eq!(one(&["v=STSv10; id=a"]), None);
        assert_eq!(one(&[]), None);
    }
}
