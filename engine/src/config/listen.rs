//! The `[bounces]` section of the `volley serve` file: where the bounce receiver listens, its
//! limits and timeouts, STARTTLS material and spool folder. Absent keys keep their defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::validate::{parse_duration, Ctx};
use super::ConfigError;

/// The bounce receiver's settings, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BounceListenSettings {
    /// Where it listens (`bind`, required).
    pub bind: SocketAddr,
    /// The largest message accepted, in bytes (`max_message_size`, default 10485760 = 10 MiB).
    pub max_message_size: u64,
    /// Recipients per transaction (`max_recipients`, default 100).
    pub max_recipients: usize,
    /// Sessions at once (`max_connections`, default 200).
    pub max_connections: usize,
    /// Sessions at once from one address (`max_connections_per_ip`, default 20).
    pub max_connections_per_ip: usize,
    /// Wait for each command line (`command_timeout`, default "5m").
    pub command_timeout: Duration,
    /// Wait for each block of DATA (`data_block_timeout`, default "3m").
    pub data_block_timeout: Duration,
    /// Longest session (`session_timeout`, default "30m").
    pub session_timeout: Duration,
    /// STARTTLS certificate chain and private key, PEM (`tls_cert_file` and `tls_key_file`,
    /// both or neither; default none: no STARTTLS).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The spool folder (`spool`, default `bounce-spool` in the store's local folder: the
    /// sled folder, or `[store] local_dir` of a PostgreSQL store).
    pub spool: PathBuf,
}

/// Defaults of the numeric keys.
const MAX_MESSAGE_SIZE: u64 = 10 * 1024 * 1024;
const MAX_RECIPIENTS: u64 = 100;
const MAX_CONNECTIONS: u64 = 200;
const MAX_CONNECTIONS_PER_IP: u64 = 20;

/// `[bounces]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBounceListen {
    bind: String,
    #[serde(default)]
    max_message_size: Option<i64>,
    #[serde(default)]
    max_recipients: Option<i64>,
    #[serde(default)]
    max_connections: Option<i64>,
    #[serde(default)]
    max_connections_per_ip: Option<i64>,
    #[serde(default)]
    command_timeout: Option<String>,
    #[serde(default)]
    data_block_timeout: Option<String>,
    #[serde(default)]
    session_timeout: Option<String>,
    #[serde(default)]
    tls_cert_file: Option<String>,
    #[serde(default)]
    tls_key_file: Option<String>,
    #[serde(default)]
    spool: Option<String>,
}

/// Checks `[bounces]`, naming `bounces.<key>` in any error; `store` is the server store's
/// local folder.
pub(crate) fn validate_listen(
    ctx: &Ctx,
    raw: &RawBounceListen,
    store: &Path,
) -> Result<BounceListenSettings, ConfigError> {
    let bind = raw.bind.trim().parse::<SocketAddr>().map_err(|_| {
        ctx.bad(
            "bounces.bind",
            &raw.bind,
            "an address and port, like 127.0.0.1:8025",
        )
    })?;
    let count = |key: &str, value: Option<i64>, default: u64, max: i64| match value {
        None => Ok(default),
        Some(value) => ctx
            .range(&format!("bounces.{key}"), value, 1, max)
            .map(|()| value.unsigned_abs()),
    };
    let timeout = |key: &str, value: &Option<String>, default: u64| match value {
        None => Ok(Duration::from_secs(default)),
        Some(value) => parse_duration(ctx, &format!("bounces.{key}"), value),
    };
    let size = count(
        "max_message_size",
        raw.max_message_size,
        MAX_MESSAGE_SIZE,
        1 << 40,
    )?;
    let tls = validate_tls(ctx, raw)?;
    let spool = match &raw.spool {
        Some(spool) => ctx.path("bounces.spool", spool)?,
        None => store.join("bounce-spool"),
    };
    Ok(BounceListenSettings {
        bind,
        max_message_size: size,
        max_recipients: to_usize(count(
            "max_recipients",
            raw.max_recipients,
            MAX_RECIPIENTS,
            1_000_000,
        )?),
        max_connections: to_usize(count(
            "max_connections",
            raw.max_connections,
            MAX_CONNECTIONS,
            1_000_000,
        )?),
        max_connections_per_ip: to_usize(count(
            "max_connections_per_ip",
            raw.max_connections_per_ip,
            MAX_CONNECTIONS_PER_IP,
            1_000_000,
        )?),
        command_timeout: timeout("command_timeout", &raw.command_timeout, 5 * 60)?,
        data_block_timeout: timeout("data_block_timeout", &raw.data_block_timeout, 3 * 60)?,
        session_timeout: timeout("session_timeout", &raw.session_timeout, 30 * 60)?,
        tls,
        spool,
    })
}

/// Checks `tls_cert_file` and `tls_key_file`: both or neither, each readable.
fn validate_tls(
    ctx: &Ctx,
    raw: &RawBounceListen,
) -> Result<Option<(PathBuf, PathBuf)>, ConfigError> {
    Ok(match (&raw.tls_cert_file, &raw.tls_key_file) {
        (None, None) => None,
        (Some(cert), Some(key)) => {
            let cert = ctx.path("bounces.tls_cert_file", cert)?;
            ctx.readable("bounces.tls_cert_file", &cert)?;
            let key = ctx.path("bounces.tls_key_file", key)?;
            ctx.readable("bounces.tls_key_file", &key)?;
            Some((cert, key))
        }
        (Some(cert), None) => {
            return Err(ctx.bad(
                "bounces.tls_cert_file",
                cert,
                "set together with bounces.tls_key_file",
            ))
        }
        (None, Some(key)) => {
            return Err(ctx.bad(
                "bounces.tls_key_file",
                key,
                "set together with bounces.tls_cert_file",
            ))
        }
    })
}

/// A count already checked to be at most 1,000,000.
fn to_usize(value: u64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<BounceListenSettings, String> {
        let raw: RawBounceListen = toml::from_str(text).unwrap();
        validate_listen(
            &Ctx::new(Path::new("volley.toml")),
            &raw,
            Path::new("s.volley"),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn absent_keys_keep_their_defaults() {
        let settings = check("bind = \"127.0.0.1:2526\"").unwrap();
        assert_eq!(settings.max_message_size, 10 * 1024 * 1024);
        assert_eq!(settings.max_recipients, 100);
        assert_eq!(settings.max_connections, 200);
        assert_eq!(settings.max_connections_per_ip, 20);
        assert_eq!(settings.command_timeout, Duration::from_secs(300));
        assert_eq!(settings.data_block_timeout, Duration::from_secs(180));
        assert_eq!(settings.session_timeout, Duration::from_secs(1800));
        assert_eq!(settings.tls, None);
        assert_eq!(settings.spool, Path::new("s.volley/bounce-spool"));
    }

    #[test]
    fn given_keys_are_used() {
        let settings = check(
            "bind = \"0.0.0.0:25\"\nmax_message_size = 1000\nmax_recipients = 5\nmax_connections = 7\n\
             max_connections_per_ip = 2\ncommand_timeout = \"10s\"\ndata_block_timeout = \"20s\"\n\
             session_timeout = \"1m\"\nspool = \"spool\"\n",
        )
        .unwrap();
        assert_eq!(settings.max_message_size, 1000);
        assert_eq!((settings.max_recipients, settings.max_connections), (5, 7));
        assert_eq!(settings.max_connections_per_ip, 2);
        assert_eq!(settings.command_timeout, Duration::from_secs(10));
        assert_eq!(settings.data_block_timeout, Duration::from_secs(20));
        assert_eq!(settings.session_timeout, Duration::from_secs(60));
        assert_eq!(settings.spool, Path::new("spool"));
    }

    #[test]
    fn bad_values_name_their_key() {
        for (text, key) in [
            ("max_message_size = 0", "bounces.max_message_size"),
            ("max_recipients = -3", "bounces.max_recipients"),
            (
                "max_connections_per_ip = 0",
                "bounces.max_connections_per_ip",
            ),
            ("session_timeout = \"soon\"", "bounces.session_timeout"),
            ("command_timeout = \"0s\"", "bounces.command_timeout"),
            ("tls_cert_file = \"cert.pem\"", "bounces.tls_cert_file"),
            ("tls_key_file = \"key.pem\"", "bounces.tls_key_file"),
            (
                "tls_cert_file = \"/nonexistent/c.pem\"\ntls_key_file = \"/nonexistent/k.pem\"",
                "bounces.tls_cert_file",
            ),
        ] {
            let error = check(&format!("bind = \"127.0.0.1:25\"\n{text}\n")).unwrap_err();
            assert!(error.contains(key), "{text}: {error}");
        }
    }
}
