//! The `[relay]` section: host, port, TLS mode, login and connection count. The password is
//! read here, from an environment variable or a file, into a [`SecretString`]; errors name the
//! variable or the file, never the value; a password file that group or others may read is
//! warned about.

use std::path::Path;
use std::time::Duration;

use secrecy::SecretString;

use super::error::ConfigError;
use super::raw::{RawRelay, RawRelayAuth, RawRelays};
use super::secret_file::warn_if_loose;
use super::settings::{RelayAuth, RelaySettings, TlsMode};
use super::token::TokenSource;
use super::validate::{parse_duration, Ctx};

/// Port on which TLS is implicit (submissions over TLS, RFC 8314).
const IMPLICIT_TLS_PORT: u16 = 465;
/// How long `token_command` may run.
const TOKEN_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// `token_lifetime` when not set: Microsoft's and Google's access tokens last an hour.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(50 * 60);

/// How long a relay that refused the login, failed TLS or could not be reached is left out
/// (`cooldown` not set).
const DEFAULT_COOLDOWN: Duration = Duration::from_secs(5 * 60);

/// The TOML key prefix of one relay: `relay` for `[relay]`, `relay[N]` for the Nth
/// `[[relay]]` entry (0-based).
pub(crate) struct Key<'a>(&'a str);

impl Key<'_> {
    /// The full key of `field`, like `relay[2].weight`.
    pub(crate) fn of(&self, field: &str) -> String {
        format!("{}.{field}", self.0)
    }
}

/// Checks `[relay]` or every `[[relay]]` entry; `from_domain` is the default EHLO name.
/// Entry names must be unique.
pub(crate) fn validate_relays(
    ctx: &Ctx,
    raw: &RawRelays,
    from_domain: &str,
) -> Result<Vec<RelaySettings>, ConfigError> {
    let entries: Vec<(String, &RawRelay)> = match raw {
        RawRelays::One(relay) => vec![("relay".to_owned(), relay.as_ref())],
        RawRelays::Many(relays) if relays.is_empty() => {
            return Err(ConfigError::Missing {
                file: ctx.file.clone(),
                key: "relay[0].host".to_owned(),
                why: "[[relay]] is given without any entry",
            })
        }
        RawRelays::Many(relays) => relays
            .iter()
            .enumerate()
            .map(|(i, relay)| (format!("relay[{i}]"), relay))
            .collect(),
    };
    let mut out: Vec<RelaySettings> = Vec::with_capacity(entries.len());
    for (prefix, raw) in entries {
        let key = Key(&prefix);
        let relay = validate_relay(ctx, &key, raw, from_domain)?;
        if out.iter().any(|other| other.name == relay.name) {
            return Err(ctx.bad(
                &key.of("name"),
                &relay.name,
                "a name no other [[relay]] entry has (the default name is host:port)",
            ));
        }
        out.push(relay);
    }
    Ok(out)
}

/// The entry's `name`, `weight`, `priority` and `cooldown`.
fn relay_place(
    ctx: &Ctx,
    key: &Key<'_>,
    raw: &RawRelay,
    host: &str,
    port: u16,
) -> Result<(String, u32, u32, Duration), ConfigError> {
    let name = match &raw.name {
        Some(name) => {
            let name = ctx.non_empty(&key.of("name"), name)?;
            if !name.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ctx.bad(
                    &key.of("name"),
                    name,
                    "a name of printable characters without spaces",
                ));
            }
            name.to_owned()
        }
        None => format!("{host}:{port}"),
    };
    let weight = raw.weight.unwrap_or(1);
    ctx.range(&key.of("weight"), weight, 1, 1_000_000)?;
    let priority = raw.priority.unwrap_or(0);
    ctx.range(&key.of("priority"), priority, 0, 1_000_000)?;
    let cooldown = match &raw.cooldown {
        Some(value) => parse_duration(ctx, &key.of("cooldown"), value)?,
        None => DEFAULT_COOLDOWN,
    };
    // invariant: both range-checked above
    let (weight, priority) = (
        u32::try_from(weight).unwrap_or(1),
        u32::try_from(priority).unwrap_or(0),
    );
    Ok((name, weight, priority, cooldown))
}

/// Checks one relay (`[relay]`, or the `[[relay]]` entry `key` names).
pub(crate) fn validate_relay(
    ctx: &Ctx,
    key: &Key<'_>,
    raw: &RawRelay,
    from_domain: &str,
) -> Result<RelaySettings, ConfigError> {
    let host = host_name(ctx, &key.of("host"), &raw.host)?;
    ctx.range(&key.of("port"), raw.port, 1, i64::from(u16::MAX))?;
    let port = u16::try_from(raw.port).unwrap_or(IMPLICIT_TLS_PORT); // invariant: range-checked
    let tls = raw.tls.as_ref().map_or(
        if port == IMPLICIT_TLS_PORT {
            TlsMode::Tls
        } else {
            TlsMode::StartTls
        },
        |tls| *tls.get_ref(),
    );
    let username = match &raw.username {
        Some(name) => Some(
            ctx.non_empty(&key.of("username"), name.get_ref())?
                .to_owned(),
        ),
        None => None,
    };
    if username.is_some() && tls == TlsMode::None {
        clear_text_auth(ctx, key, raw, &host)?;
    }
    let auth = relay_auth(ctx, key, raw)?;
    let password = match &auth {
        RelayAuth::Password => read_password(ctx, key, raw)?,
        RelayAuth::XOAuth2 { source, .. } => Some(first_token(ctx, source, username.is_some())?),
    };
    let password_file = match &raw.password_file {
        Some(value) => Some(ctx.path(&key.of("password_file"), value)?),
        None => None,
    };
    match (&username, &password) {
        (None, Some(_)) if auth != RelayAuth::Password => {
            return Err(ConfigError::Missing {
                file: ctx.file.clone(),
                key: key.of("username"),
                why: "relay.auth = \"xoauth2\" logs in as a user (the mailbox the token is for)",
            })
        }
        (Some(_), None) => {
            return Err(ConfigError::Missing {
                file: ctx.file.clone(),
                key: "relay.password_env or relay.password_file".to_owned(),
                why: "relay.username is set",
            })
        }
        (None, Some(_)) => {
            return Err(ConfigError::Missing {
                file: ctx.file.clone(),
                key: key.of("username"),
                why: "a relay password is set",
            })
        }
        _ => {}
    }
    let ca_file = match &raw.ca_file {
        Some(value) => {
            let path = ctx.path(&key.of("ca_file"), value)?;
            ctx.readable(&key.of("ca_file"), &path)?;
            Some(path)
        }
        None => None,
    };
    let helo = match &raw.helo {
        Some(helo) => host_name(ctx, &key.of("helo"), helo)?,
        None => from_domain.to_owned(),
    };
    let (name, weight, priority, cooldown) = relay_place(ctx, key, raw, &host, port)?;
    ctx.range(&key.of("connections"), raw.connections, 1, 100)?;
    let connections = usize::try_from(raw.connections).unwrap_or(1); // invariant: range-checked
    let cap = |key: &str, value: Option<i64>| -> Result<Option<u32>, ConfigError> {
        match value {
            Some(n) => {
                ctx.range(key, n, 1, i64::from(u32::MAX))?;
                Ok(u32::try_from(n).ok()) // invariant: range-checked
            }
            None => Ok(None),
        }
    };
    let max_per_second = cap(&key.of("max_per_second"), raw.max_per_second)?;
    let max_per_hour = cap(&key.of("max_per_hour"), raw.max_per_hour)?;
    let max_per_day = cap(&key.of("max_per_day"), raw.max_per_day)?;
    let max_messages_per_connection = cap(
        &key.of("max_messages_per_connection"),
        raw.max_messages_per_connection,
    )?
    .map(u64::from);
    let source_address = match &raw.source_address {
        Some(value) => Some(super::source::source_ip(
            ctx,
            "relay.source_address",
            value,
        )?),
        None => None,
    };
    Ok(RelaySettings {
        name,
        weight,
        priority,
        cooldown,
        host,
        port,
        tls,
        username,
        password,
        auth,
        password_file,
        ca_file,
        helo,
        connections,
        max_per_second,
        max_per_hour,
        max_per_day,
        max_messages_per_connection,
        source_address,
    })
}

/// `relay.username` with `relay.tls = "none"`: the password would cross the network in clear
/// text. An error naming both keys and their lines, unless the relay is this machine
/// (loopback), where it is only a warning. Not checked when secrets are not read (commands
/// that only read the store never log in).
fn clear_text_auth(
    ctx: &Ctx,
    key: &Key<'_>,
    raw: &RawRelay,
    host: &str,
) -> Result<(), ConfigError> {
    if !ctx.secrets {
        return Ok(());
    }
    if is_loopback_host(host) {
        tracing::warn!(
            file = %ctx.file.display(),
            key = &key.of("username"),
            host,
            "relay.username is set with relay.tls = \"none\": the password goes in clear text, \
             allowed only because the relay is on this machine (loopback)"
        );
        return Ok(());
    }
    let line_of = |span: Option<std::ops::Range<usize>>| span.and_then(|s| ctx.line_of(s.start));
    Err(ConfigError::ClearTextAuth {
        file: ctx.file.clone(),
        line: line_of(raw.username.as_ref().map(toml::Spanned::span)),
        tls_line: line_of(raw.tls.as_ref().map(toml::Spanned::span)),
        host: host.to_owned(),
    })
}

/// True when `host` names this machine: `localhost`, an address in 127.0.0.0/8, or `::1`.
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.eq_ignore_ascii_case("localhost") || bare.eq_ignore_ascii_case("localhost.") {
        return true;
    }
    bare.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// A host name or address: non-empty, printable ASCII, no spaces.
pub(crate) fn host_name(ctx: &Ctx, key: &str, value: &str) -> Result<String, ConfigError> {
    let host = ctx.non_empty(key, value)?;
    if !host.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ctx.bad(key, value, "a host name or IP address without spaces"));
    }
    Ok(host.to_owned())
}

/// Reads the password from `password_env` or `password_file` (not both).
fn read_password(
    ctx: &Ctx,
    key: &Key<'_>,
    raw: &RawRelay,
) -> Result<Option<SecretString>, ConfigError> {
    match (&raw.password_env, &raw.password_file) {
        (Some(_), Some(_)) => Err(ConfigError::Conflict {
            file: ctx.file.clone(),
            key: key.of("password_env"),
            other: key.of("password_file"),
        }),
        _ if !ctx.secrets => Ok(raw
            .password_env
            .as_ref()
            .or(raw.password_file.as_ref())
            .map(|_| SecretString::from(String::new()))),
        (Some(var), None) => {
            let var = ctx.non_empty(&key.of("password_env"), var)?;
            match std::env::var(var) {
                Ok(value) if !value.is_empty() => Ok(Some(SecretString::from(value))),
                _ => Err(ConfigError::EnvVar {
                    file: ctx.file.clone(),
                    key: key.of("password_env"),
                    var: var.to_owned(),
                }),
            }
        }
        (None, Some(value)) => {
            let path = ctx.path(&key.of("password_file"), value)?;
            read_password_file(ctx, key, &path).map(Some)
        }
        (None, None) => Ok(None),
    }
}

/// Reads a password file, dropping the trailing line break; an empty password is refused.
/// A file open to group or others is warned about (see [`warn_if_loose`]).
fn read_password_file(ctx: &Ctx, key: &Key<'_>, path: &Path) -> Result<SecretString, ConfigError> {
    let key = &key.of("password_file");
    warn_if_loose(key, path);
    let mut text = std::fs::read_to_string(path).map_err(|e| ctx.file_error(key, path, e))?;
    let kept = text.trim_end_matches(['\r', '\n']).len();
    text.truncate(kept);
    if text.is_empty() {
        return Err(ctx.bad(
            key,
            &path.display().to_string(),
            "a file holding the password (this one is empty)",
        ));
    }
    Ok(SecretString::from(text))
}

/// `relay.auth` and, for `"xoauth2"`, where the token comes from: exactly one of
/// `token_file`, `token_env` and `token_command`, and no password; `token_lifetime` only
/// with a command. With `"password"` (the default) no `token_*` key may be set.
fn relay_auth(ctx: &Ctx, key: &Key<'_>, raw: &RawRelay) -> Result<RelayAuth, ConfigError> {
    let token_keys = [
        (&key.of("token_file"), raw.token_file.is_some()),
        (&key.of("token_env"), raw.token_env.is_some()),
        (&key.of("token_command"), raw.token_command.is_some()),
        (&key.of("token_lifetime"), raw.token_lifetime.is_some()),
    ];
    let misplaced = |key: &str, why: &'static str| ConfigError::Misplaced {
        file: ctx.file.clone(),
        key: key.to_owned(),
        why,
    };
    if raw.auth.unwrap_or(RawRelayAuth::Password) == RawRelayAuth::Password {
        return match token_keys.iter().find(|(_, set)| *set) {
            Some((key, _)) => Err(misplaced(key, "tokens are for relay.auth = \"xoauth2\"")),
            None => Ok(RelayAuth::Password),
        };
    }
    let password_keys = [
        (&key.of("password_file"), raw.password_file.is_some()),
        (&key.of("password_env"), raw.password_env.is_some()),
    ];
    if let Some((key, _)) = password_keys.iter().find(|(_, set)| *set) {
        return Err(misplaced(
            key,
            "relay.auth = \"xoauth2\" logs in with an access token (relay.token_file, \
             relay.token_env or relay.token_command), not a password",
        ));
    }
    let source = token_source(ctx, key, raw)?;
    let lifetime = match (&source, &raw.token_lifetime) {
        (TokenSource::Command { .. }, Some(value)) => {
            Some(parse_duration(ctx, &key.of("token_lifetime"), value)?)
        }
        (TokenSource::Command { .. }, None) => Some(DEFAULT_TOKEN_LIFETIME),
        (_, Some(_)) => {
            return Err(misplaced(
                &key.of("token_lifetime"),
                "it applies to relay.token_command only (a token file or variable is read \
                 again whenever the relay refuses the token)",
            ))
        }
        (_, None) => None,
    };
    Ok(RelayAuth::XOAuth2 { source, lifetime })
}

/// The one `token_*` source of an `"xoauth2"` relay.
fn token_source(ctx: &Ctx, key: &Key<'_>, raw: &RawRelay) -> Result<TokenSource, ConfigError> {
    let mut sources = Vec::new();
    if let Some(value) = &raw.token_file {
        sources.push(TokenSource::File(ctx.path(&key.of("token_file"), value)?));
    }
    if let Some(var) = &raw.token_env {
        let var = ctx.non_empty(&key.of("token_env"), var)?;
        sources.push(TokenSource::Env(var.to_owned()));
    }
    if let Some(argv) = &raw.token_command {
        let program = argv.first().map_or("", |p| p.trim());
        if program.is_empty() {
            return Err(ctx.bad(
                &key.of("token_command"),
                &format!("{argv:?}"),
                "the program and its arguments, like [\"/usr/local/bin/get-token\", \"--user\", \"news\"]",
            ));
        }
        let mut argv = argv.clone();
        if program.contains('/') && Path::new(program).is_relative() {
            // A path like `./get-token` is relative to the campaign file, as every path is;
            // a bare name is looked up on PATH.
            let inside = program.strip_prefix("./").unwrap_or(program);
            argv[0] = ctx.dir.join(inside).display().to_string();
        }
        sources.push(TokenSource::Command {
            argv,
            timeout: TOKEN_COMMAND_TIMEOUT,
        });
    }
    match <[TokenSource; 1]>::try_from(sources) {
        Ok([source]) => Ok(source),
        Err(sources) if sources.is_empty() => Err(ConfigError::Missing {
            file: ctx.file.clone(),
            key: "relay.token_file, relay.token_env or relay.token_command".to_owned(),
            why: "relay.auth = \"xoauth2\" logs in with an access token",
        }),
        Err(sources) => Err(ConfigError::Conflict {
            file: ctx.file.clone(),
            key: sources[0].key().to_owned(),
            other: sources[1].key().to_owned(),
        }),
    }
}

/// The token as first fetched, when secrets are read (an empty stand-in otherwise, or when
/// there is no user to log in as: that error comes next).
fn first_token(ctx: &Ctx, source: &TokenSource, user: bool) -> Result<SecretString, ConfigError> {
    if !ctx.secrets || !user {
        return Ok(SecretString::from(String::new()));
    }
    source.fetch().map_err(|source| ConfigError::Token {
        file: ctx.file.clone(),
        source,
    })
}
