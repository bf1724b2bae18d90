//! The `[store]` table (of a campaign file or of the `volley serve` file) and the CLI's
//! `--store`: a sled folder (`path`) or a PostgreSQL database (`url`, with `password_file`
//! or `password_env`, `tls`, `ca_file`, and `local_dir` for the files a database cannot hold).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::secret_file::warn_if_loose;
use super::validate::Ctx;
use super::ConfigError;
use crate::store::{is_postgres_url, PgSettings, PgTls, StoreLocation};

/// `[store]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStore {
    /// The sled folder. Absent (and no `url`): `<file stem>.volley` beside the file.
    #[serde(default)]
    pub(crate) path: Option<String>,
    /// A PostgreSQL database (`postgresql://user@host:port/database`).
    #[serde(default)]
    url: Option<String>,
    /// With `url`: the file holding the password (first line).
    #[serde(default)]
    password_file: Option<String>,
    /// With `url`: the environment variable holding the password.
    #[serde(default)]
    password_env: Option<String>,
    /// With `url`: `disable`, `prefer`, `require` or `verify-full`.
    #[serde(default)]
    tls: Option<String>,
    /// With `url`: the CA certificates (PEM) the server's certificate is checked against.
    #[serde(default)]
    ca_file: Option<String>,
    /// With `url`: the local folder for the bounce spool (default `<file stem>.volley`).
    #[serde(default)]
    local_dir: Option<String>,
}

impl RawStore {
    /// A table with only `url` (the serve file's `store = "postgresql://…"`).
    pub(crate) fn with_url(url: &str) -> RawStore {
        RawStore {
            url: Some(url.to_owned()),
            ..RawStore::default()
        }
    }
}

/// The keys that only apply with `url`.
const DATABASE_KEYS: &str = "it applies to a PostgreSQL store (store.url) only";

/// Checks `[store]` (keys named `<prefix>.<key>`, `prefix` being `store`) and builds the
/// location. `store_override` (the CLI's `--store`: a folder or an address) replaces `path`
/// and `url`; the other keys still apply to an address. `default` is the folder used when
/// neither is given, and the local folder of a database unless `local_dir` names one.
pub(crate) fn validate_store(
    ctx: &Ctx,
    raw: &RawStore,
    store_override: Option<&Path>,
    default: PathBuf,
) -> Result<StoreLocation, ConfigError> {
    if let (Some(_), Some(_)) = (&raw.url, &raw.path) {
        return Err(ConfigError::Conflict {
            file: ctx.file.clone(),
            key: "store.url".to_owned(),
            other: "store.path".to_owned(),
        });
    }
    let (key, url) = match store_override {
        Some(text) if is_postgres_url(&text.to_string_lossy()) => {
            ("--store", text.to_string_lossy().into_owned())
        }
        Some(folder) => return Ok(StoreLocation::Folder(folder.to_path_buf())),
        None => match &raw.url {
            Some(url) => ("store.url", file_url(ctx, url)?),
            None => return folder(ctx, raw, default),
        },
    };
    let settings = database(ctx, raw, key, url)?;
    let local = match &raw.local_dir {
        Some(dir) => ctx.path("store.local_dir", dir)?,
        None => default,
    };
    Ok(StoreLocation::Postgres {
        settings,
        local: Some(local),
    })
}

/// The database settings of `[store]` for `url` (from `key`: `store.url` or `--store`).
fn database(
    ctx: &Ctx,
    raw: &RawStore,
    key: &'static str,
    url: String,
) -> Result<PgSettings, ConfigError> {
    let mut settings = PgSettings::new(url);
    if let Err(reason) = settings.check_url() {
        return Err(ConfigError::BadStoreUrl {
            file: ctx.file.clone(),
            key,
            url: settings.shown_url(),
            reason,
        });
    }
    settings.password_file = match &raw.password_file {
        Some(_) if raw.password_env.is_some() => {
            return Err(ConfigError::Conflict {
                file: ctx.file.clone(),
                key: "store.password_file".to_owned(),
                other: "store.password_env".to_owned(),
            })
        }
        Some(file) => Some(secret_file(ctx, file)?),
        None => None,
    };
    settings.password_env = match &raw.password_env {
        Some(var) => Some(ctx.non_empty("store.password_env", var)?.to_owned()),
        None => None,
    };
    settings.tls = match &raw.tls {
        Some(tls) => {
            Some(PgTls::parse(tls.trim()).ok_or_else(|| ctx.bad("store.tls", tls, PgTls::NAMES))?)
        }
        None => None,
    };
    settings.ca_file = match &raw.ca_file {
        Some(file) => {
            let path = ctx.path("store.ca_file", file)?;
            ctx.readable("store.ca_file", &path)?;
            Some(path)
        }
        None => None,
    };
    Ok(settings)
}

/// `store.url` from a file: an address, without a password (a file is copied, shared and
/// committed; the password goes in `password_file` or `password_env`).
fn file_url(ctx: &Ctx, url: &str) -> Result<String, ConfigError> {
    let url = ctx.non_empty("store.url", url)?;
    let settings = PgSettings::new(url);
    if !is_postgres_url(url) {
        return Err(ctx.bad(
            "store.url",
            &settings.shown_url(),
            "a PostgreSQL address like postgresql://user@host:5432/database \
             (a folder goes in store.path)",
        ));
    }
    if settings.url_has_password() {
        return Err(ctx.bad(
            "store.url",
            &settings.shown_url(),
            "an address without a password: put the password in a file named by \
             store.password_file, or in a variable named by store.password_env",
        ));
    }
    Ok(url.to_owned())
}

/// The sled folder of `[store]`; the database keys do not apply to it.
fn folder(ctx: &Ctx, raw: &RawStore, default: PathBuf) -> Result<StoreLocation, ConfigError> {
    let database_keys = [
        ("store.password_file", &raw.password_file),
        ("store.password_env", &raw.password_env),
        ("store.tls", &raw.tls),
        ("store.ca_file", &raw.ca_file),
        ("store.local_dir", &raw.local_dir),
    ];
    if let Some((key, _)) = database_keys.iter().find(|(_, value)| value.is_some()) {
        return Err(ConfigError::Misplaced {
            file: ctx.file.clone(),
            key: (*key).to_owned(),
            why: DATABASE_KEYS,
        });
    }
    Ok(StoreLocation::Folder(match &raw.path {
        Some(path) => ctx.path("store.path", path)?,
        None => default,
    }))
}

/// `store.password_file`, resolved against the file's folder and readable (read when
/// connecting, never shown).
fn secret_file(ctx: &Ctx, file: &str) -> Result<PathBuf, ConfigError> {
    const KEY: &str = "store.password_file";
    let path = ctx.path(KEY, file)?;
    ctx.readable(KEY, &path)?;
    warn_if_loose(KEY, &path);
    Ok(path)
}
