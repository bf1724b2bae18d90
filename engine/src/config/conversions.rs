//! The `[conversions]` section: how long after delivery an order still counts for the
//! campaign, the one currency its orders are in, and the secret that signs conversion
//! postbacks (read from a file or an environment variable, never printed).

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::error::ConfigError;
use super::secret_file::warn_if_loose;
use super::validate::{parse_duration, Ctx};

/// The attribution window when `[conversions] window` is absent: 7 days.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

/// `[conversions]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConversions {
    #[serde(default)]
    pub(crate) window: Option<String>,
    #[serde(default)]
    pub(crate) currency: Option<String>,
    #[serde(default)]
    pub(crate) postback_secret_file: Option<String>,
    #[serde(default)]
    pub(crate) postback_secret_env: Option<String>,
}

/// Checked `[conversions]` settings (defaults when the section is absent).
#[derive(Debug, Clone)]
pub struct ConversionSettings {
    /// How long after a recipient's delivery (after the send start, for holdout recipients)
    /// an order is attributed to the campaign; default 7 days.
    pub window: Duration,
    /// The campaign's currency (ISO 4217, upper case) when set: orders in another currency
    /// are refused. When `None`, the first order's currency becomes the campaign's.
    pub currency: Option<String>,
    /// The HMAC-SHA256 key of conversion postbacks; `None`: postbacks are refused.
    pub postback_secret: Option<SecretString>,
}

impl Default for ConversionSettings {
    /// A 7-day window, no fixed currency, no postbacks.
    fn default() -> Self {
        ConversionSettings {
            window: DEFAULT_WINDOW,
            currency: None,
            postback_secret: None,
        }
    }
}

/// The shortest postback secret accepted, in bytes.
const MIN_SECRET_BYTES: usize = 16;

/// Checks `[conversions]`.
pub(crate) fn validate_conversions(
    ctx: &Ctx,
    raw: &RawConversions,
) -> Result<ConversionSettings, ConfigError> {
    let window = match &raw.window {
        Some(value) => parse_duration(ctx, "conversions.window", value)?,
        None => DEFAULT_WINDOW,
    };
    let currency = match &raw.currency {
        Some(value) => Some(parse_currency(value).ok_or_else(|| {
            ctx.bad(
                "conversions.currency",
                value,
                "an ISO 4217 currency code such as EUR or USD",
            )
        })?),
        None => None,
    };
    let postback_secret = read_secret(ctx, raw)?;
    if let Some(secret) = &postback_secret {
        if ctx.secrets && secret.expose_secret().len() < MIN_SECRET_BYTES {
            return Err(ConfigError::WeakKey {
                file: ctx.file.clone(),
                key: "conversions.postback_secret_file".to_owned(),
                min: MIN_SECRET_BYTES,
            });
        }
    }
    Ok(ConversionSettings {
        window,
        currency,
        postback_secret,
    })
}

/// An ISO 4217 code: three ASCII letters, returned upper case.
pub fn parse_currency(value: &str) -> Option<String> {
    let value = value.trim();
    (value.len() == 3 && value.chars().all(|c| c.is_ascii_alphabetic()))
        .then(|| value.to_ascii_uppercase())
}

/// The postback secret from `postback_secret_file` or `postback_secret_env` (not both).
fn read_secret(ctx: &Ctx, raw: &RawConversions) -> Result<Option<SecretString>, ConfigError> {
    const FILE: &str = "conversions.postback_secret_file";
    const ENV: &str = "conversions.postback_secret_env";
    match (&raw.postback_secret_file, &raw.postback_secret_env) {
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(ConfigError::Conflict {
            file: ctx.file.clone(),
            key: FILE.to_owned(),
            other: ENV.to_owned(),
        }),
        _ if !ctx.secrets => Ok(Some(SecretString::from(String::new()))),
        (Some(value), None) => {
            let path = ctx.path(FILE, value)?;
            warn_if_loose(FILE, &path);
            let mut text =
                std::fs::read_to_string(&path).map_err(|e| ctx.file_error(FILE, &path, e))?;
            let kept = text.trim_end_matches(['\r', '\n']).len();
            text.truncate(kept);
            Ok(Some(SecretString::from(text)))
        }
        (None, Some(var)) => {
            let var = ctx.non_empty(ENV, var)?;
            match std::env::var(var) {
                Ok(value) if !value.is_empty() => Ok(Some(SecretString::from(value))),
                _ => Err(ConfigError::EnvVar {
                    file: ctx.file.clone(),
                    key: ENV.to_owned(),
                    var: var.to_owned(),
                }),
            }
        }
    }
}
