//! The `volley serve` file: the store it owns, the campaigns it runs, and where it listens for
//! tracking requests and bounces.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::listen::{validate_listen, BounceListenSettings, RawBounceListen};
use super::tracking::read_key;
use super::validate::{parse, Ctx};
use super::ConfigError;

/// `volley serve`'s settings.
#[derive(Debug)]
pub struct ServeSettings {
    /// The file they came from.
    pub file: PathBuf,
    /// The store the server owns.
    pub store: PathBuf,
    /// The campaign files it runs: scheduled ones at each firing, every one's retries.
    pub campaigns: Vec<PathBuf>,
    /// Where the tracking server listens, and its key.
    pub tracking: Option<(SocketAddr, SecretString)>,
    /// The bounce receiver (`[bounces]`): where bounces and complaints are received over SMTP.
    pub bounces: Option<BounceListenSettings>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServe {
    store: String,
    #[serde(default)]
    campaigns: Vec<String>,
    #[serde(default)]
    tracking: Option<RawServeTracking>,
    #[serde(default)]
    bounces: Option<RawBounceListen>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServeTracking {
    bind: String,
    #[serde(default)]
    key_file: Option<String>,
    #[serde(default)]
    key_env: Option<String>,
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
    let store = ctx.path("store", &raw.store)?;
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
        Some(t) => {
            let bind = address("tracking.bind", &t.bind)?;
            let key = read_key(
                &ctx,
                "tracking",
                t.key_file.as_deref(),
                t.key_env.as_deref(),
            )?;
            if key.expose_secret().len() < crate::config::tracking::MIN_KEY_BYTES {
                return Err(ConfigError::WeakKey {
                    file: ctx.file.clone(),
                    key: "tracking.key_file or tracking.key_env".to_owned(),
                    min: crate::config::tracking::MIN_KEY_BYTES,
                });
            }
            Some((bind, key))
        }
        None => None,
    };
    let bounces = match &raw.bounces {
        Some(b) => Some(validate_listen(&ctx, b, &store)?),
        None => None,
    };
    Ok(ServeSettings {
        file: path.to_path_buf(),
        store,
        campaigns,
        tracking,
        bounces,
    })
}
