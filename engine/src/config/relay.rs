//! The `[relay]` section: host, port, TLS mode, login and connection count. The password is
//! read here, from an environment variable or a file, into a [`SecretString`]; errors name the
//! variable or the file, never the value; a password file that group or others may read is
//! warned about.

use std::path::Path;

use secrecy::SecretString;

use super::error::ConfigError;
use super::raw::RawRelay;
use super::secret_file::warn_if_loose;
use super::settings::{RelaySettings, TlsMode};
use super::validate::Ctx;

/// Port on which TLS is implicit (submissions over TLS, RFC 8314).
const IMPLICIT_TLS_PORT: u16 = 465;

/// Checks `[relay]`; `from_domain` is the default EHLO name.
pub(crate) fn validate_relay(
    ctx: &Ctx,
    raw: &RawRelay,
    from_domain: &str,
) -> Result<RelaySettings, ConfigError> {
    let host = host_name(ctx, "relay.host", &raw.host)?;
    ctx.range("relay.port", raw.port, 1, i64::from(u16::MAX))?;
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
        Some(name) => Some(ctx.non_empty("relay.username", name.get_ref())?.to_owned()),
        None => None,
    };
    if username.is_some() && tls == TlsMode::None {
        clear_text_auth(ctx, raw, &host)?;
    }
    let password = read_password(ctx, raw)?;
    let password_file = match &raw.password_file {
        Some(value) => Some(ctx.path("relay.password_file", value)?),
        None => None,
    };
    match (&username, &password) {
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
                key: "relay.username".to_owned(),
                why: "a relay password is set",
            })
        }
        _ => {}
    }
    let ca_file = match &raw.ca_file {
        Some(value) => {
            let path = ctx.path("relay.ca_file", value)?;
            ctx.readable("relay.ca_file", &path)?;
            Some(path)
        }
        None => None,
    };
    let helo = match &raw.helo {
        Some(helo) => host_name(ctx, "relay.helo", helo)?,
        None => from_domain.to_owned(),
    };
    ctx.range("relay.connections", raw.connections, 1, 100)?;
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
    let max_per_second = cap("relay.max_per_second", raw.max_per_second)?;
    let max_per_hour = cap("relay.max_per_hour", raw.max_per_hour)?;
    let max_per_day = cap("relay.max_per_day", raw.max_per_day)?;
    let max_messages_per_connection = cap(
        "relay.max_messages_per_connection",
        raw.max_messages_per_connection,
    )?
    .map(u64::from);
    Ok(RelaySettings {
        host,
        port,
        tls,
        username,
        password,
        password_file,
        ca_file,
        helo,
        connections,
        max_per_second,
        max_per_hour,
        max_per_day,
        max_messages_per_connection,
    })
}

/// `relay.username` with `relay.tls = "none"`: the password would cross the network in clear
/// text. An error naming both keys and their lines, unless the relay is this machine
/// (loopback), where it is only a warning. Not checked when secrets are not read (commands
/// that only read the store never log in).
fn clear_text_auth(ctx: &Ctx, raw: &RawRelay, host: &str) -> Result<(), ConfigError> {
    if !ctx.secrets {
        return Ok(());
    }
    if is_loopback_host(host) {
        tracing::warn!(
            file = %ctx.file.display(),
            key = "relay.username",
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
fn read_password(ctx: &Ctx, raw: &RawRelay) -> Result<Option<SecretString>, ConfigError> {
    match (&raw.password_env, &raw.password_file) {
        (Some(_), Some(_)) => Err(ConfigError::Conflict {
            file: ctx.file.clone(),
            key: "relay.password_env".to_owned(),
            other: "relay.password_file".to_owned(),
        }),
        _ if !ctx.secrets => Ok(raw
            .password_env
            .as_ref()
            .or(raw.password_file.as_ref())
            .map(|_| SecretString::from(String::new()))),
        (Some(var), None) => {
            let var = ctx.non_empty("relay.password_env", var)?;
            match std::env::var(var) {
                Ok(value) if !value.is_empty() => Ok(Some(SecretString::from(value))),
                _ => Err(ConfigError::EnvVar {
                    file: ctx.file.clone(),
                    key: "relay.password_env".to_owned(),
                    var: var.to_owned(),
                }),
            }
        }
        (None, Some(value)) => {
            let path = ctx.path("relay.password_file", value)?;
            read_password_file(ctx, &path).map(Some)
        }
        (None, None) => Ok(None),
    }
}

/// Reads a password file, dropping the trailing line break; an empty password is refused.
/// A file open to group or others is warned about (see [`warn_if_loose`]).
fn read_password_file(ctx: &Ctx, path: &Path) -> Result<SecretString, ConfigError> {
    let key = "relay.password_file";
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
