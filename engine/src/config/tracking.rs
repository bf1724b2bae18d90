//! The `[tracking]` section: the tracking server's base URL, the HMAC key of the tokens
//! (read here from a file or an environment variable, never printed; a key file that group
//! or others may read is warned about), and what to track.

use secrecy::{ExposeSecret, SecretString};

use super::address::normalize_address;
use super::error::ConfigError;
use super::raw::RawTracking;
use super::secret_file::warn_if_loose;
use super::settings::TrackingSettings;
use super::validate::Ctx;

/// The shortest key accepted, in bytes.
pub(crate) const MIN_KEY_BYTES: usize = 16;

/// Checks `[tracking]`.
pub(crate) fn validate_tracking(
    ctx: &Ctx,
    raw: &RawTracking,
) -> Result<TrackingSettings, ConfigError> {
    let base_url = base_url(ctx, &raw.base_url)?;
    let key = read_key(
        ctx,
        "tracking",
        raw.key_file.as_deref(),
        raw.key_env.as_deref(),
    )?;
    if ctx.secrets && key.expose_secret().len() < MIN_KEY_BYTES {
        let key_name = if raw.key_env.is_some() {
            "tracking.key_env"
        } else {
            "tracking.key_file"
        };
        return Err(ConfigError::WeakKey {
            file: ctx.file.clone(),
            key: key_name.to_owned(),
            min: MIN_KEY_BYTES,
        });
    }
    let unsubscribe_mailto = match &raw.unsubscribe_mailto {
        Some(value) => {
            let (address, _) =
                normalize_address(value.trim()).map_err(|source| ConfigError::BadAddress {
                    file: ctx.file.clone(),
                    key: "tracking.unsubscribe_mailto".to_owned(),
                    value: value.clone(),
                    source,
                })?;
            Some(address)
        }
        None => None,
    };
    let key_file = match &raw.key_file {
        Some(value) => Some(ctx.path("tracking.key_file", value)?),
        None => None,
    };
    Ok(TrackingSettings {
        base_url,
        key,
        key_file,
        opens: raw.opens,
        clicks: raw.clicks,
        text_links: raw.text_links,
        unsubscribe_mailto,
    })
}

/// `http(s)://host[:port][/path]`, without query or fragment; the trailing `/` dropped.
fn base_url(ctx: &Ctx, value: &str) -> Result<String, ConfigError> {
    let expected = "an http(s) URL without query or fragment, like https://t.acme.example";
    let trimmed = ctx.non_empty("tracking.base_url", value)?;
    let lower = trimmed.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .ok_or_else(|| ctx.bad("tracking.base_url", value, expected))?;
    let host = rest.split('/').next().unwrap_or("");
    let clean = !host.is_empty()
        && !trimmed.contains(['?', '#', '&', ' ', '"', '\'', '<', '>', '\\'])
        && trimmed.is_ascii();
    if !clean {
        return Err(ctx.bad("tracking.base_url", value, expected));
    }
    Ok(trimmed.trim_end_matches('/').to_owned())
}

/// Reads the key from `key_file` (trailing line breaks dropped) or `key_env` (exactly one)
/// of the section `section`. A key file open to group or others is warned about.
pub(crate) fn read_key(
    ctx: &Ctx,
    section: &str,
    key_file: Option<&str>,
    key_env: Option<&str>,
) -> Result<SecretString, ConfigError> {
    match (key_file, key_env) {
        (Some(_), Some(_)) => Err(ConfigError::Conflict {
            file: ctx.file.clone(),
            key: format!("{section}.key_file"),
            other: format!("{section}.key_env"),
        }),
        (None, None) => Err(ConfigError::Missing {
            file: ctx.file.clone(),
            key: format!("{section}.key_file or {section}.key_env"),
            why: "tracking tokens are signed with a secret key",
        }),
        _ if !ctx.secrets => Ok(SecretString::from(String::new())),
        (Some(value), None) => {
            let path = ctx.path(&format!("{section}.key_file"), value)?;
            warn_if_loose(&format!("{section}.key_file"), &path);
            let mut text = std::fs::read_to_string(&path)
                .map_err(|e| ctx.file_error(&format!("{section}.key_file"), &path, e))?;
            let kept = text.trim_end_matches(['\r', '\n']).len();
            text.truncate(kept);
            Ok(SecretString::from(text))
        }
        (None, Some(var)) => {
            let var = ctx.non_empty(&format!("{section}.key_env"), var)?;
            match std::env::var(var) {
                Ok(value) if !value.is_empty() => Ok(SecretString::from(value)),
                _ => Err(ConfigError::EnvVar {
                    file: ctx.file.clone(),
                    key: format!("{section}.key_env"),
                    var: var.to_owned(),
                }),
            }
        }
    }
}
