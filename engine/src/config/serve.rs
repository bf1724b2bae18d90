//! The `volley serve` file: the store it owns, the campaigns it runs, and where it listens for
//! tracking requests, bounces and API calls.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::api::{validate_api, ApiSettings, RawApi};
use super::listen::{validate_listen, BounceListenSettings, RawBounceListen};
use super::providers::{validate_providers, ProvidersSettings, RawProviders};
use super::secret_file::warn_if_loose;
use super::store::{validate_store, RawStore};
use super::tracking::read_key;
use super::validate::{default_store, parse, parse_duration, Ctx};
use super::webhook::{validate_webhooks, RawWebhook, WebhookSettings};
use super::ConfigError;
use crate::store::{is_postgres_url, StoreLocation};

/// `volley serve`'s settings.
#[derive(Debug)]
pub struct ServeSettings {
    /// The file they came from.
    pub file: PathBuf,
    /// The store the server owns: a sled folder or a PostgreSQL database.
    pub store: crate::store::StoreLocation,
    /// The campaign files it runs: scheduled ones at each firing, every one's retries.
    pub campaigns: Vec<PathBuf>,
    /// Where the tracking server listens, its key and its limits.
    pub tracking: Option<ServeTracking>,
    /// The bounce receiver (`[bounces]`): where bounces and complaints are received over SMTP.
    pub bounces: Option<BounceListenSettings>,
    /// `[cluster]`: the node this server is on a PostgreSQL store (its name and lease time).
    pub cluster: ClusterSettings,
    /// `[[webhook]]`: where the store's events are POSTed.
    pub webhooks: Vec<WebhookSettings>,
    /// `[api]`: the authenticated HTTP API (where it listens, its tokens, its limits).
    pub api: Option<ApiSettings>,
    /// `[providers.*]`: the sending providers whose bounce and complaint webhooks the API
    /// listener accepts, and how each is authenticated (default: none).
    pub providers: ProvidersSettings,
}

/// `[cluster]` of the serve file: how this server takes part in a cluster of nodes sharing a
/// PostgreSQL store (every `volley serve` on PostgreSQL is a node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// `node`: the node's name, unique among live nodes (default `<host>-<pid>`; `--node`
    /// overrides it).
    pub node: Option<String>,
    /// `lease`: how long the node's leases last without a renewal (default 15 s). The node
    /// renews them every third of it; a dead node's work moves to others after it.
    pub lease: Duration,
    /// Whether the server joins the cluster as a node that sends (true for `volley serve`;
    /// false for a tracking-only server, which sends nothing and so takes no share).
    pub join: bool,
}

/// The default `[cluster] lease`.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(15);

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            node: None,
            lease: DEFAULT_LEASE,
            join: true,
        }
    }
}

/// True for a usable node name: 1 to 63 letters, digits, `.`, `_` or `-`.
pub fn is_node_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// The tracking server of `volley serve` (or `volley track serve`). A limit left unset
/// (`None`) is the tracking server's default (see `volley::tracking::TrackingLimits`).
#[derive(Debug)]
pub struct ServeTracking {
    /// Where it listens.
    pub bind: SocketAddr,
    /// The key tokens are signed with.
    pub key: SecretString,
    /// `/metrics` is served only to requests bearing this token (none: not served).
    pub metrics_token: Option<SecretString>,
    /// `header_timeout`: time to send a request's line and headers.
    pub header_timeout: Option<Duration>,
    /// `idle_timeout`: a connection silent this long is closed.
    pub idle_timeout: Option<Duration>,
    /// `max_connections`: connections served at once.
    pub max_connections: Option<usize>,
    /// `dedupe_window`: repeats of a request within it are stored once (zero: off).
    pub dedupe_window: Option<Duration>,
    /// `daily_cap`: events stored per recipient per UTC day.
    pub daily_cap: Option<u32>,
    /// An open this soon after delivery was fetched on arrival, not read (`volley track
    /// serve --too-soon`; default 5 s).
    pub too_soon: Option<Duration>,
}

impl ServeTracking {
    /// Listening on `bind` with `key`, every limit at its default and no `/metrics`.
    pub fn new(bind: SocketAddr, key: SecretString) -> ServeTracking {
        ServeTracking {
            bind,
            key,
            metrics_token: None,
            header_timeout: None,
            idle_timeout: None,
            max_connections: None,
            dedupe_window: None,
            daily_cap: None,
            too_soon: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServe {
    store: RawServeStore,
    #[serde(default)]
    campaigns: Vec<String>,
    #[serde(default)]
    tracking: Option<RawServeTracking>,
    #[serde(default)]
    bounces: Option<RawBounceListen>,
    #[serde(default)]
    cluster: Option<RawCluster>,
    #[serde(default)]
    webhook: Vec<RawWebhook>,
    api: Option<RawApi>,
    providers: Option<RawProviders>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    #[serde(default)]
    node: Option<String>,
    #[serde(default)]
    lease: Option<String>,
}

/// `store = "folder"`, `store = "postgresql://…"` or a `[store]` table (as in a campaign
/// file).
#[derive(Debug)]
enum RawServeStore {
    Text(String),
    Table(RawStore),
}

impl<'de> Deserialize<'de> for RawServeStore {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // By hand rather than `untagged`, so a bad key in the table keeps its own message.
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawServeStore;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a folder, a postgresql:// address or a [store] table")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(RawServeStore::Text(text.to_owned()))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                RawStore::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(RawServeStore::Table)
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServeTracking {
    bind: String,
    #[serde(default)]
    key_file: Option<String>,
    #[serde(default)]
    key_env: Option<String>,
    #[serde(default)]
    metrics_token_file: Option<String>,
    #[serde(default)]
    metrics_token_env: Option<String>,
    #[serde(default)]
    header_timeout: Option<String>,
    #[serde(default)]
    idle_timeout: Option<String>,
    #[serde(default)]
    max_connections: Option<i64>,
    #[serde(default)]
    dedupe_window: Option<String>,
    #[serde(default)]
    daily_cap: Option<i64>,
}

/// Loads and checks the `volley serve` file at `path`; relative paths are read from its
/// folder.
pub fn load_serve(path: &Path) -> Result<ServeSettings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    let raw: RawServe = parse(path, &text)?;
    let ctx = Ctx::new(path);
    let store = serve_store(&ctx, &raw.store)?;
    let mut campaigns = Vec::with_capacity(raw.campaigns.len());
    for (i, campaign) in raw.campaigns.iter().enumerate() {
        let key = format!("campaigns[{i}]");
        let file = ctx.path(&key, campaign)?;
        ctx.readable(&key, &file)?;
        campaigns.push(file);
    }
    let address = |key: &str, value: &str| {
        value
            .trim()
            .parse::<SocketAddr>()
            .map_err(|_| ctx.bad(key, value, "an address and port, like 127.0.0.1:8025"))
    };
    let tracking = match &raw.tracking {
        Some(t) => Some(serve_tracking(&ctx, t, address("tracking.bind", &t.bind)?)?),
        None => None,
    };
    let bounces = match &raw.bounces {
        Some(b) => Some(validate_listen(&ctx, b, &local_dir(&ctx, &store))?),
        None => None,
    };
    let cluster = match &raw.cluster {
        Some(raw) => serve_cluster(&ctx, raw, &store)?,
        None => ClusterSettings::default(),
    };
    let webhooks = validate_webhooks(&ctx, &raw.webhook)?;
    let api = match &raw.api {
        Some(raw) => Some(validate_api(&ctx, raw)?),
        None => None,
    };
    let providers = match &raw.providers {
        Some(raw) => validate_providers(&ctx, raw)?,
        None => ProvidersSettings::default(),
    };
    if raw.providers.is_some() && api.is_none() {
        return Err(ConfigError::Missing {
            file: ctx.file.clone(),
            key: "api".to_owned(),
            why: "provider webhooks ([providers.*]) are served on the API listener",
        });
    }
    Ok(ServeSettings {
        file: path.to_path_buf(),
        store,
        campaigns,
        tracking,
        bounces,
        cluster,
        webhooks,
        api,
        providers,
    })
}

/// The `[cluster]` section, checked: only for a PostgreSQL store.
fn serve_cluster(
    ctx: &Ctx,
    raw: &RawCluster,
    store: &StoreLocation,
) -> Result<ClusterSettings, ConfigError> {
    if !store.is_postgres() {
        return Err(ctx.bad(
            "cluster",
            "[cluster]",
            "no [cluster] section: a cluster shares a PostgreSQL store (store = \"postgresql://…\")",
        ));
    }
    let node = match raw.node.as_deref().map(str::trim) {
        Some(name) if !is_node_name(name) => {
            return Err(ctx.bad(
                "cluster.node",
                name,
                "a node name: 1 to 63 letters, digits, '.', '_' or '-'",
            ))
        }
        name => name.map(str::to_owned),
    };
    let lease = match raw.lease.as_deref() {
        Some(value) => {
            let lease = parse_duration(ctx, "cluster.lease", value)?;
            if !(Duration::from_secs(1)..=Duration::from_secs(3_600)).contains(&lease) {
                return Err(ctx.bad(
                    "cluster.lease",
                    value,
                    "a duration from 1s to 1h, like \"15s\"",
                ));
            }
            lease
        }
        None => DEFAULT_LEASE,
    };
    Ok(ClusterSettings {
        node,
        lease,
        join: true,
    })
}

/// The store of the serve file: `store = "…"` (a folder, or an address without a password)
/// or a `[store]` table.
fn serve_store(ctx: &Ctx, raw: &RawServeStore) -> Result<StoreLocation, ConfigError> {
    let default = default_store(ctx);
    match raw {
        RawServeStore::Text(text) if is_postgres_url(text.trim()) => {
            let table = RawStore::with_url(text.trim());
            validate_store(ctx, &table, None, default)
        }
        RawServeStore::Text(folder) => Ok(StoreLocation::Folder(ctx.path("store", folder)?)),
        RawServeStore::Table(table) => validate_store(ctx, table, None, default),
    }
}

/// The local folder for the server's files (the bounce spool's default parent).
fn local_dir(ctx: &Ctx, store: &StoreLocation) -> PathBuf {
    store
        .local_dir()
        .map_or_else(|| default_store(ctx), Path::to_path_buf)
}

/// The `[tracking]` section, checked.
fn serve_tracking(
    ctx: &Ctx,
    raw: &RawServeTracking,
    bind: SocketAddr,
) -> Result<ServeTracking, ConfigError> {
    let key = read_key(
        ctx,
        "tracking",
        raw.key_file.as_deref(),
        raw.key_env.as_deref(),
    )?;
    if key.expose_secret().len() < crate::config::tracking::MIN_KEY_BYTES {
        return Err(ConfigError::WeakKey {
            file: ctx.file.clone(),
            key: "tracking.key_file or tracking.key_env".to_owned(),
            min: crate::config::tracking::MIN_KEY_BYTES,
        });
    }
    let duration = |key: &str, value: &Option<String>| match value.as_deref() {
        Some(v) => parse_duration(ctx, key, v).map(Some),
        None => Ok(None),
    };
    // Zero ("0", "0s") or "off" turns de-duplication off.
    let off = |v: &str| v == "off" || humantime::parse_duration(v).is_ok_and(|d| d.is_zero());
    let dedupe_window = match raw.dedupe_window.as_deref().map(str::trim) {
        Some(v) if off(v) => Some(Duration::ZERO),
        _ => duration("tracking.dedupe_window", &raw.dedupe_window)?,
    };
    let max_connections = match raw.max_connections {
        Some(n) => {
            ctx.range("tracking.max_connections", n, 1, 100_000)?;
            usize::try_from(n).ok()
        }
        None => None,
    };
    let daily_cap = match raw.daily_cap {
        Some(n) => {
            ctx.range("tracking.daily_cap", n, 1, i64::from(u32::MAX))?;
            u32::try_from(n).ok()
        }
        None => None,
    };
    Ok(ServeTracking {
        bind,
        key,
        metrics_token: metrics_token(ctx, raw)?,
        header_timeout: duration("tracking.header_timeout", &raw.header_timeout)?,
        idle_timeout: duration("tracking.idle_timeout", &raw.idle_timeout)?,
        max_connections,
        dedupe_window,
        daily_cap,
        too_soon: None,
    })
}

/// The `/metrics` bearer token from `metrics_token_file` or `metrics_token_env` (at most
/// one), if either is set.
fn metrics_token(ctx: &Ctx, raw: &RawServeTracking) -> Result<Option<SecretString>, ConfigError> {
    const FILE: &str = "tracking.metrics_token_file";
    const ENV: &str = "tracking.metrics_token_env";
    let token = match (&raw.metrics_token_file, &raw.metrics_token_env) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::Conflict {
                file: ctx.file.clone(),
                key: FILE.to_owned(),
                other: ENV.to_owned(),
            })
        }
        (None, None) => return Ok(None),
        _ if !ctx.secrets => return Ok(None),
        (Some(value), None) => {
            let path = ctx.path(FILE, value)?;
            warn_if_loose(FILE, &path);
            let text =
                std::fs::read_to_string(&path).map_err(|e| ctx.file_error(FILE, &path, e))?;
            text.trim().to_owned()
        }
        (None, Some(var)) => {
            let var = ctx.non_empty(ENV, var)?;
            std::env::var(var).map_err(|_| ConfigError::EnvVar {
                file: ctx.file.clone(),
                key: ENV.to_owned(),
                var: var.to_owned(),
            })?
        }
    };
    if token.len() < MIN_METRICS_TOKEN_BYTES {
        return Err(ConfigError::WeakKey {
            file: ctx.file.clone(),
            key: format!("{FILE} or {ENV}"),
            min: MIN_METRICS_TOKEN_BYTES,
        });
    }
    Ok(Some(SecretString::from(token)))
}

/// The shortest `/metrics` token accepted.
pub const MIN_METRICS_TOKEN_BYTES: usize = 16;
