//! Errors of the `config` module: everything that can be wrong with a campaign file, each
//! naming the file and the TOML key (or line) at fault. No variant ever holds a secret value:
//! password problems name the environment variable or the file, never its content.

use std::path::PathBuf;

/// Why an email address was refused; the `Display` text is a short human reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// Nothing but whitespace.
    #[error("empty address")]
    Empty,
    /// No `@` separates local part and domain.
    #[error("missing @")]
    MissingAt,
    /// The `@` comes first.
    #[error("nothing before the @")]
    EmptyLocalPart,
    /// The `@` comes last.
    #[error("nothing after the @")]
    EmptyDomain,
    /// The local part holds non-ASCII characters (SMTPUTF8 addresses are not supported).
    #[error(
        "local part has non-ASCII characters (internationalised local parts are not supported)"
    )]
    NonAsciiLocalPart,
    /// The local part is longer than 64 octets.
    #[error("local part too long ({len} > 64)")]
    LocalPartTooLong {
        /// Its length in octets.
        len: usize,
    },
    /// The local part holds a character outside the RFC 5322 dot-atom set.
    #[error("invalid character {ch:?} in local part")]
    LocalPartChar {
        /// The first offending character.
        ch: char,
    },
    /// The local part starts or ends with a dot.
    #[error("local part starts or ends with a dot")]
    LocalPartEdgeDot,
    /// The local part has `..`.
    #[error("local part has two dots in a row")]
    LocalPartDoubleDot,
    /// The domain is an IP address (bracketed literal or bare IPv4).
    #[error("IP address literals are not accepted")]
    IpLiteral,
    /// The domain is not a valid (internationalised) host name.
    #[error("invalid domain name")]
    InvalidDomain,
    /// The domain has a single label, like `localhost`.
    #[error("domain needs at least two labels (like example.com)")]
    SingleLabel,
    /// The domain has an empty label (`a..b`, or a trailing dot).
    #[error("domain has an empty label")]
    EmptyLabel,
    /// A label is longer than 63 octets.
    #[error("domain label too long ({len} > 63)")]
    LabelTooLong {
        /// Its length in octets (ASCII form).
        len: usize,
    },
    /// A label starts or ends with `-`.
    #[error("domain label starts or ends with a hyphen")]
    LabelHyphen,
    /// The top-level domain is all digits.
    #[error("top-level domain is all digits")]
    NumericTld,
    /// The ASCII domain is longer than 253 octets.
    #[error("domain too long ({len} > 253)")]
    DomainTooLong {
        /// Its length in octets (ASCII form).
        len: usize,
    },
    /// The whole normalised address is longer than 254 octets.
    #[error("address too long ({len} > 254)")]
    AddressTooLong {
        /// Its length in octets.
        len: usize,
    },
}

/// A campaign file could not be loaded. `Display` starts with the campaign file's path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The campaign file itself could not be read.
    #[error("{}: cannot read campaign file: {source}", file.display())]
    Read {
        /// The campaign file.
        file: PathBuf,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// The TOML is malformed, has an unknown key, a wrong type or misses a required key.
    #[error("{}{}: {message}", file.display(), at_line(*line))]
    Syntax {
        /// The campaign file.
        file: PathBuf,
        /// 1-based line of the problem, when the parser knows it.
        line: Option<usize>,
        /// 1-based column of the problem, when the parser knows it.
        column: Option<usize>,
        /// The parser's message, e.g. ``unknown field `colour`, expected one of …``.
        message: String,
    },
    /// A key's value is outside its allowed range.
    #[error("{}: {key} = {value} is out of range ({min} to {max})", file.display())]
    OutOfRange {
        /// The campaign file.
        file: PathBuf,
        /// The TOML key, e.g. `relay.port`.
        key: String,
        /// The value found.
        value: i64,
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
    /// The `[campaign] where` expression does not parse, names a column the list does not
    /// have, or compares things that cannot be compared.
    #[error("{}: [campaign] where = {text:?}: {source}", file.display())]
    Segment {
        /// The campaign file.
        file: PathBuf,
        /// The expression as written.
        text: String,
        /// What is wrong, and at which character.
        source: Box<super::SegmentError>,
    },
    /// A key's text does not have the required shape.
    #[error("{}: {key} = {value:?} is invalid: {expected}", file.display())]
    BadValue {
        /// The campaign file.
        file: PathBuf,
        /// The TOML key, e.g. `campaign.id`.
        key: String,
        /// The value found.
        value: String,
        /// What the value should look like.
        expected: &'static str,
    },
    /// A sending window or time (`[schedule] window`, `send_at`) that does not parse.
    #[error("{}: {key} = {value:?} is invalid: {reason}", file.display())]
    BadWindow {
        /// The campaign file.
        file: PathBuf,
        /// The TOML key, e.g. `schedule.window`.
        key: String,
        /// The value found.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A required text is empty.
    #[error("{}: {key} must not be empty", file.display())]
    Empty {
        /// The campaign file.
        file: PathBuf,
        /// The TOML key.
        key: String,
    },
    /// An email address or domain is not valid.
    #[error("{}: {key} = {value:?} is not valid: {source}", file.display())]
    BadAddress {
        /// The campaign file.
        file: PathBuf,
        /// The TOML key, e.g. `campaign.from` or `dkim[0].domain`.
        key: String,
        /// The value found.
        value: String,
        /// Why it was refused.
        source: AddressError,
    },
    /// A duration is not a humantime duration (`30m`, `2h`, `3d`) or is zero.
    #[error("{}: {key} = {value:?} is not a valid duration: {reason}", file.display())]
    BadDuration {
        /// The campaign file.
        file: PathBuf,
        /// The TOML key, e.g. `retry.schedule[2]`.
        key: String,
        /// The value found.
        value: String,
        /// Why it was refused.
        reason: DurationProblem,
    },
    /// A point in time given on the command line (`--since`) is neither an RFC 3339 time
    /// nor a duration.
    #[error(
        "{option} {value:?}: not an RFC 3339 time (like 2024-05-01T12:00:00Z) \
         or a duration back from now (like 30m, 2h, 7d)"
    )]
    BadTime {
        /// The command-line option, e.g. `--since`.
        option: String,
        /// The value given.
        value: String,
    },
    /// A secret key is too short to sign with.
    #[error("{}: {key}: the key must be at least {min} bytes long", file.display())]
    WeakKey {
        /// The campaign file.
        file: PathBuf,
        /// The key naming where the secret comes from, e.g. `tracking.key_file`.
        key: String,
        /// The shortest accepted length.
        min: usize,
    },
    /// A store address that is not a PostgreSQL address (shown without its password).
    #[error("{}: {key} = {url:?} is not a valid PostgreSQL address: {reason}", file.display())]
    BadStoreUrl {
        /// The campaign or serve file.
        file: PathBuf,
        /// `store.url`, or `--store` when the address came from the command line.
        key: &'static str,
        /// The address, password removed.
        url: String,
        /// What the client said of it (password removed).
        reason: String,
    },
    /// A key that does not belong in its table.
    #[error("{}: {key} does not apply here: {why}", file.display())]
    Misplaced {
        /// The campaign file.
        file: PathBuf,
        /// The key, e.g. `shaping.global.idle_timeout`.
        key: String,
        /// What the table takes.
        why: &'static str,
    },
    /// Two keys that exclude each other are both set.
    #[error("{}: {key} and {other} are both set; use one of them", file.display())]
    Conflict {
        /// The campaign file.
        file: PathBuf,
        /// The first key.
        key: String,
        /// The key it conflicts with.
        other: String,
    },
    /// A key is required because of another one (or one of a pair is required).
    #[error("{}: {key} is required: {why}", file.display())]
    Missing {
        /// The campaign file.
        file: PathBuf,
        /// The missing key (or keys, like `campaign.text or campaign.html`).
        key: String,
        /// Why it is required.
        why: &'static str,
    },
    /// The environment variable named by a key is not set (or not valid UTF-8).
    #[error("{}: {key}: environment variable {var} is not set, empty or not valid UTF-8", file.display())]
    EnvVar {
        /// The campaign file.
        file: PathBuf,
        /// The TOML key, e.g. `relay.password_env`.
        key: String,
        /// The variable's name.
        var: String,
    },
    /// A file named by a key could not be read (or is missing).
    #[error("{}: {key}: cannot read {}: {source}", file.display(), path.display())]
    FileRead {
        /// The campaign file.
        file: PathBuf,
        /// The TOML key, e.g. `campaign.html` or `relay.password_file`.
        key: String,
        /// The resolved path.
        path: PathBuf,
        /// The I/O failure (content never appears here).
        source: std::io::Error,
    },
    /// Two `[[dkim]]` entries have the same domain and selector.
    #[error("{}: {key}: duplicate entry for {selector}._domainkey.{domain} (first in {first})", file.display())]
    DuplicateDkim {
        /// The campaign file.
        file: PathBuf,
        /// The later entry's key, e.g. `dkim[1]`.
        key: String,
        /// The earlier entry's key.
        first: String,
        /// The shared domain.
        domain: String,
        /// The shared selector.
        selector: String,
    },
    /// `relay.username` is set with `relay.tls = "none"` for a relay that is not this
    /// machine: the password would be sent in clear text.
    #[error(
        "{}{}: relay.username is set but relay.tls = \"none\"{}: the password would cross the \
         network to {host} in clear text; set relay.tls = \"starttls\" (port 587) or \
         \"tls\" (port 465)",
        file.display(),
        at_line(*line),
        tls_line.map(|l| format!(" (line {l})")).unwrap_or_default()
    )]
    ClearTextAuth {
        /// The campaign file.
        file: PathBuf,
        /// 1-based line of `relay.username`, when known.
        line: Option<usize>,
        /// 1-based line of `relay.tls`, when known.
        tls_line: Option<usize>,
        /// The relay host.
        host: String,
    },
    /// The relay's access token (`auth = "xoauth2"`) could not be had; the message names
    /// the `token_*` key and never shows the token.
    #[error("{}: {source}", file.display())]
    Token {
        /// The campaign file.
        file: PathBuf,
        /// What went wrong.
        #[source]
        source: super::TokenError,
    },
    /// The From domain has no `[[dkim]]` entry, so it is not an authorised sender.
    #[error(
        "{}: campaign.from: domain {domain} is not an authorised sender: no [[dkim]] entry for it (configured: {})",
        file.display(),
        configured_list(configured)
    )]
    UnauthorisedSender {
        /// The campaign file.
        file: PathBuf,
        /// The From address's domain.
        domain: String,
        /// The `[[dkim]]` domains configured.
        configured: Vec<String>,
    },
}

/// Why a duration value was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationProblem {
    /// humantime could not parse it.
    #[error("{0} (write it like 30m, 2h or 3d)")]
    Syntax(#[from] humantime::DurationError),
    /// It is zero.
    #[error("it must be longer than zero")]
    Zero,
    /// A list of durations is empty.
    #[error("at least one interval is required")]
    EmptyList,
}

/// `" line N"` when the line is known.
fn at_line(line: Option<usize>) -> String {
    line.map(|l| format!(" line {l}")).unwrap_or_default()
}

/// The configured domains, or `none` when there are none.
fn configured_list(configured: &[String]) -> String {
    if configured.is_empty() {
        "none".to_owned()
    } else {
        configured.join(", ")
    }
}
