//! The `[api]` section of the `volley serve` file (where the HTTP API listens, its limits and
//! its tokens file) and the tokens file itself: `[[token]]` entries with a `name`, `scopes`
//! and the `sha256` (hex) of the secret. The file holds hashes only, never a secret: a
//! request's bearer secret is hashed and compared with them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::validate::{parse, parse_duration, Ctx};
use super::ConfigError;

/// What a token may do. `admin` implies `send` and `read`; `send` does not imply `read`
/// (a shop that only sends need not read the list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ApiScope {
    /// Read campaigns, reports, events and the suppression list.
    Read,
    /// Change things: suppressions, campaigns, their lists, A/B decisions, messages.
    Send,
    /// Everything.
    Admin,
}

impl ApiScope {
    /// The scope as the tokens file writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiScope::Read => "read",
            ApiScope::Send => "send",
            ApiScope::Admin => "admin",
        }
    }

    /// The scope written as [`ApiScope::as_str`] does.
    pub fn parse(text: &str) -> Option<ApiScope> {
        Some(match text {
            "read" => ApiScope::Read,
            "send" => ApiScope::Send,
            "admin" => ApiScope::Admin,
            _ => return None,
        })
    }

    /// True when a token holding `self` may do what needs `wanted`.
    pub fn grants(self, wanted: ApiScope) -> bool {
        self == wanted || self == ApiScope::Admin
    }
}

/// One entry of the tokens file.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// Its name (`name`), for logs: who called.
    pub name: String,
    /// What it may do (`scopes`, at least one).
    pub scopes: Vec<ApiScope>,
    /// SHA-256 of the secret (`sha256`, 64 hex digits).
    pub sha256: [u8; 32],
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiToken")
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl ApiToken {
    /// True when the token may do what needs `wanted`.
    pub fn allows(&self, wanted: ApiScope) -> bool {
        self.scopes.iter().any(|s| s.grants(wanted))
    }
}

/// The `[api]` settings, checked.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Where it listens (`bind`, required), like `127.0.0.1:8026`.
    pub bind: SocketAddr,
    /// The tokens file (`tokens_file`, required; relative to the serve file).
    pub tokens_file: PathBuf,
    /// The tokens read from it.
    pub tokens: Vec<ApiToken>,
    /// Bytes of a JSON request body (`max_body`, default 1048576 = 1 MiB); larger gets 413.
    pub max_body: u64,
    /// Bytes of an upload (a list, a suppression import: `max_upload`, default 268435456 =
    /// 256 MiB); larger gets 413 and nothing of it is kept.
    pub max_upload: u64,
    /// Time to send a request's line and headers (`header_timeout`, default 10 s).
    pub header_timeout: Duration,
    /// A connection silent this long is closed (`idle_timeout`, default 60 s).
    pub idle_timeout: Duration,
    /// Connections served at once (`max_connections`, default 256); more wait in the
    /// listen backlog.
    pub max_connections: usize,
    /// The transactional lane's campaign file (`transactional`, relative to the serve file):
    /// its relay or MX settings, DKIM keys, From, templates and tracking serve
    /// `POST /api/messages` (its `recipients` is not read). None: no lane.
    pub transactional: Option<PathBuf>,
    /// Where `/metrics` is also served without a token (`metrics_bind`, e.g.
    /// `127.0.0.1:9026`, for a scraper on loopback). None: only on the API, with a `read`
    /// token.
    pub metrics_bind: Option<SocketAddr>,
}

/// The default `max_body`.
pub const DEFAULT_MAX_BODY: u64 = 1024 * 1024;
/// The default `max_upload`.
pub const DEFAULT_MAX_UPLOAD: u64 = 256 * 1024 * 1024;
const DEFAULT_MAX_CONNECTIONS: i64 = 256;

impl ApiSettings {
    /// Listening on `bind` with `tokens` (from `tokens_file`), every limit at its default.
    pub fn new(bind: SocketAddr, tokens_file: PathBuf, tokens: Vec<ApiToken>) -> ApiSettings {
        ApiSettings {
            bind,
            tokens_file,
            tokens,
            max_body: DEFAULT_MAX_BODY,
            max_upload: DEFAULT_MAX_UPLOAD,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 256,
            transactional: None,
            metrics_bind: None,
        }
    }
}

/// `[api]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApi {
    bind: String,
    tokens_file: String,
    #[serde(default)]
    max_body: Option<i64>,
    #[serde(default)]
    max_upload: Option<i64>,
    #[serde(default)]
    header_timeout: Option<String>,
    #[serde(default)]
    idle_timeout: Option<String>,
    #[serde(default)]
    max_connections: Option<i64>,
    #[serde(default)]
    transactional: Option<String>,
    #[serde(default)]
    metrics_bind: Option<String>,
}

/// Checks `[api]` of the serve file (`ctx`), reading its tokens file; names `api.<key>` (or
/// the tokens file, entry and field) in any error.
pub(crate) fn validate_api(ctx: &Ctx, raw: &RawApi) -> Result<ApiSettings, ConfigError> {
    let bind = raw.bind.trim().parse::<SocketAddr>().map_err(|_| {
        ctx.bad(
            "api.bind",
            &raw.bind,
            "an address and port, like 127.0.0.1:8026",
        )
    })?;
    let tokens_file = ctx.path("api.tokens_file", &raw.tokens_file)?;
    let text = std::fs::read_to_string(&tokens_file)
        .map_err(|e| ctx.file_error("api.tokens_file", &tokens_file, e))?;
    let tokens = load_tokens(&tokens_file, &text)?;
    let mut settings = ApiSettings::new(bind, tokens_file, tokens);
    let size = |key: &str, value: Option<i64>, default: u64| match value {
        None => Ok(default),
        Some(n) => ctx
            .range(&format!("api.{key}"), n, 1024, 1 << 40)
            .map(|()| n.unsigned_abs()),
    };
    settings.max_body = size("max_body", raw.max_body, DEFAULT_MAX_BODY)?;
    settings.max_upload = size("max_upload", raw.max_upload, DEFAULT_MAX_UPLOAD)?;
    if let Some(value) = &raw.header_timeout {
        settings.header_timeout = parse_duration(ctx, "api.header_timeout", value)?;
    }
    if let Some(value) = &raw.idle_timeout {
        settings.idle_timeout = parse_duration(ctx, "api.idle_timeout", value)?;
    }
    let connections = raw.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS);
    ctx.range("api.max_connections", connections, 1, 100_000)?;
    settings.max_connections = usize::try_from(connections).unwrap_or(usize::MAX);
    if let Some(file) = &raw.transactional {
        let path = ctx.path("api.transactional", file)?;
        ctx.readable("api.transactional", &path)?;
        settings.transactional = Some(path);
    }
    if let Some(bind) = &raw.metrics_bind {
        settings.metrics_bind = Some(bind.trim().parse::<SocketAddr>().map_err(|_| {
            ctx.bad(
                "api.metrics_bind",
                bind,
                "an address and port, like 127.0.0.1:9026",
            )
        })?);
    }
    Ok(settings)
}

/// The tokens file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTokens {
    #[serde(default)]
    token: Vec<RawToken>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    name: String,
    scopes: Vec<String>,
    sha256: String,
}

/// Reads the tokens file `file` (its text `text`): every entry checked, naming the file, the
/// entry (`token[2]`) and the field of any problem. Names are unique, and so are hashes.
pub fn load_tokens(file: &Path, text: &str) -> Result<Vec<ApiToken>, ConfigError> {
    let raw: RawTokens = parse(file, text)?;
    let ctx = Ctx::new(file);
    let mut tokens: Vec<ApiToken> = Vec::with_capacity(raw.token.len());
    for (i, entry) in raw.token.iter().enumerate() {
        let token = check_token(&ctx, i, entry)?;
        if tokens.iter().any(|t| t.name == token.name) {
            return Err(ctx.bad(
                &format!("token[{i}].name"),
                &token.name,
                "a name no other entry has",
            ));
        }
        if tokens.iter().any(|t| t.sha256 == token.sha256) {
            return Err(ctx.bad(
                &format!("token[{i}].sha256"),
                &entry.sha256,
                "a hash no other entry has (one secret per token)",
            ));
        }
        tokens.push(token);
    }
    Ok(tokens)
}

/// Checks entry `i` of the tokens file.
fn check_token(ctx: &Ctx, i: usize, raw: &RawToken) -> Result<ApiToken, ConfigError> {
    let name = raw.name.trim();
    let name_ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !name_ok {
        return Err(ctx.bad(
            &format!("token[{i}].name"),
            &raw.name,
            "1 to 64 letters, digits, '.', '_' or '-'",
        ));
    }
    if raw.scopes.is_empty() {
        return Err(ConfigError::Empty {
            file: ctx.file.clone(),
            key: format!("token[{i}].scopes"),
        });
    }
    let mut scopes = Vec::with_capacity(raw.scopes.len());
    for (j, scope) in raw.scopes.iter().enumerate() {
        let parsed = ApiScope::parse(scope.trim()).ok_or_else(|| {
            ctx.bad(
                &format!("token[{i}].scopes[{j}]"),
                scope,
                "one of \"read\", \"send\", \"admin\"",
            )
        })?;
        scopes.push(parsed);
    }
    scopes.sort();
    scopes.dedup();
    let sha256 = parse_sha256(raw.sha256.trim()).ok_or_else(|| {
        ctx.bad(
            &format!("token[{i}].sha256"),
            &raw.sha256,
            "64 hex digits: the SHA-256 of the secret (like `printf %s \"$SECRET\" | sha256sum`)",
        )
    })?;
    Ok(ApiToken {
        name: name.to_owned(),
        scopes,
        sha256,
    })
}

/// 64 hex digits (either case) as 32 bytes.
fn parse_sha256(text: &str) -> Option<[u8; 32]> {
    let bytes = data_encoding::HEXLOWER_PERMISSIVE
        .decode(text.as_bytes())
        .ok()?;
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    fn tokens(text: &str) -> Result<Vec<ApiToken>, String> {
        load_tokens(Path::new("tokens.toml"), text).map_err(|e| e.to_string())
    }

    fn api(text: &str, tokens_text: &str) -> Result<ApiSettings, String> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tokens.toml"), tokens_text).unwrap();
        let raw: RawApi = toml::from_str(text).unwrap();
        validate_api(&Ctx::new(&dir.path().join("volley.toml")), &raw).map_err(|e| e.to_string())
    }

    #[test]
    fn a_good_tokens_file_is_read() {
        let read = tokens(&format!(
            "[[token]]\nname = \"crm\"\nscopes = [\"read\", \"send\"]\nsha256 = \"{HASH}\"\n\
             [[token]]\nname = \"ops\"\nscopes = [\"admin\"]\nsha256 = \"{}\"\n",
            HASH.to_uppercase().replace("2CF2", "3CF2")
        ))
        .unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].name, "crm");
        assert_eq!(read[0].scopes, [ApiScope::Read, ApiScope::Send]);
        assert_eq!(read[0].sha256[0], 0x2c);
        assert_eq!(read[1].sha256[0], 0x3c);
        assert!(!format!("{:?}", read[0]).contains("2c"), "no hash in Debug");
    }

    #[test]
    fn the_transactional_file_and_the_metrics_bind_are_checked_and_named() {
        let missing = api(
            "bind = \"127.0.0.1:0\"\ntokens_file = \"tokens.toml\"\ntransactional = \"tx.toml\"\n",
            "",
        )
        .unwrap_err();
        assert!(missing.contains("api.transactional"), "{missing}");
        let bad = api(
            "bind = \"127.0.0.1:0\"\ntokens_file = \"tokens.toml\"\nmetrics_bind = \"loopback\"\n",
            "",
        )
        .unwrap_err();
        assert!(bad.contains("api.metrics_bind"), "{bad}");
        let good = api(
            "bind = \"127.0.0.1:0\"\ntokens_file = \"tokens.toml\"\nmetrics_bind = \"127.0.0.1:9026\"\n",
            "",
        )
        .unwrap();
        assert_eq!(good.metrics_bind.map(|a| a.port()), Some(9026));
        assert_eq!(good.transactional, None);
    }

    #[test]
    fn an_empty_tokens_file_has_no_tokens() {
        assert!(tokens("").unwrap().is_empty());
    }

    #[test]
    fn bad_entries_name_file_entry_and_field() {
        let good = format!("[[token]]\nname = \"a\"\nscopes = [\"read\"]\nsha256 = \"{HASH}\"\n");
        for (entry, expected) in [
            (
                format!(
                    "name = \"b c\"\nscopes = [\"read\"]\nsha256 = \"{}\"",
                    &HASH[1..]
                ),
                "token[1].name",
            ),
            (
                "name = \"b\"\nscopes = [\"read\", \"write\"]\nsha256 = \"00\"".to_owned(),
                "token[1].scopes[1]",
            ),
            (
                "name = \"b\"\nscopes = []\nsha256 = \"00\"".to_owned(),
                "token[1].scopes",
            ),
            (
                "name = \"b\"\nscopes = [\"send\"]\nsha256 = \"abc\"".to_owned(),
                "token[1].sha256",
            ),
            (
                format!("name = \"b\"\nscopes = [\"send\"]\nsha256 = \"{HASH}\""),
                "token[1].sha256",
            ),
            (
                "name = \"a\"\nscopes = [\"send\"]\nsha256 = \"00\"".to_owned(),
                "token[1].sha256",
            ),
            (
                format!(
                    "name = \"a\"\nscopes = [\"send\"]\nsha256 = \"{}\"",
                    "1".repeat(64)
                ),
                "token[1].name",
            ),
            ("name = \"b\"\nscopes = [\"send\"]".to_owned(), "sha256"),
            (
                format!("name = \"b\"\nscope = [\"send\"]\nsha256 = \"{HASH}\""),
                "scope",
            ),
        ] {
            let error = tokens(&format!("{good}[[token]]\n{entry}\n")).unwrap_err();
            assert!(error.starts_with("tokens.toml"), "{entry}: {error}");
            assert!(error.contains(expected), "{entry}: {error}");
        }
    }

    #[test]
    fn scopes_grant_what_they_should() {
        use ApiScope::*;
        let token = |scopes: &[ApiScope]| ApiToken {
            name: "t".to_owned(),
            scopes: scopes.to_vec(),
            sha256: [0; 32],
        };
        for (scopes, wanted, allowed) in [
            (&[Read][..], Read, true),
            (&[Read], Send, false),
            (&[Read], Admin, false),
            (&[Send], Send, true),
            (&[Send], Read, false),
            (&[Send], Admin, false),
            (&[Admin], Read, true),
            (&[Admin], Send, true),
            (&[Admin], Admin, true),
            (&[Read, Send], Send, true),
        ] {
            assert_eq!(
                token(scopes).allows(wanted),
                allowed,
                "{scopes:?} {wanted:?}"
            );
        }
    }

    #[test]
    fn api_defaults_and_given_values() {
        let tokens_text =
            format!("[[token]]\nname = \"a\"\nscopes = [\"read\"]\nsha256 = \"{HASH}\"\n");
        let settings = api(
            "bind = \"127.0.0.1:8026\"\ntokens_file = \"tokens.toml\"",
            &tokens_text,
        )
        .unwrap();
        assert_eq!(settings.max_body, 1024 * 1024);
        assert_eq!(settings.max_upload, 256 * 1024 * 1024);
        assert_eq!(settings.header_timeout, Duration::from_secs(10));
        assert_eq!(settings.max_connections, 256);
        assert_eq!(settings.tokens.len(), 1);
        let settings = api(
            "bind = \"127.0.0.1:0\"\ntokens_file = \"tokens.toml\"\nmax_body = 2048\n\
             max_upload = 4096\nheader_timeout = \"2s\"\nidle_timeout = \"5s\"\nmax_connections = 3",
            &tokens_text,
        )
        .unwrap();
        assert_eq!((settings.max_body, settings.max_upload), (2048, 4096));
        assert_eq!(settings.idle_timeout, Duration::from_secs(5));
        assert_eq!(settings.max_connections, 3);
    }

    #[test]
    fn bad_api_values_name_their_key_and_file() {
        for (text, key) in [
            (
                "bind = \"localhost\"\ntokens_file = \"tokens.toml\"",
                "api.bind",
            ),
            (
                "bind = \"127.0.0.1:1\"\ntokens_file = \"\"",
                "api.tokens_file",
            ),
            (
                "bind = \"127.0.0.1:1\"\ntokens_file = \"nope.toml\"",
                "api.tokens_file",
            ),
            (
                "bind = \"127.0.0.1:1\"\ntokens_file = \"tokens.toml\"\nmax_body = 0",
                "api.max_body",
            ),
            (
                "bind = \"127.0.0.1:1\"\ntokens_file = \"tokens.toml\"\nmax_upload = -1",
                "api.max_upload",
            ),
            (
                "bind = \"127.0.0.1:1\"\ntokens_file = \"tokens.toml\"\nheader_timeout = \"x\"",
                "api.header_timeout",
            ),
            (
                "bind = \"127.0.0.1:1\"\ntokens_file = \"tokens.toml\"\nmax_connections = 0",
                "api.max_connections",
            ),
        ] {
            let error = api(text, "").unwrap_err();
            assert!(error.contains("volley.toml"), "{text}: {error}");
            assert!(error.contains(key), "{text}: {error}");
        }
    }
}
