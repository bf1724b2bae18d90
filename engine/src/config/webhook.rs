//! `[[webhook]]` entries of the serve file: where `volley serve` POSTs the store's events,
//! which ones, signed with which secret, and how long it keeps trying.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use serde::Deserialize;

use super::secret_file::warn_if_loose;
use super::serve::is_node_name;
use super::validate::{parse_duration, Ctx};
use super::ConfigError;
use crate::store::ExportKind;

/// The default `batch`: events per request.
pub const DEFAULT_BATCH: usize = 100;
/// The default `timeout` of one request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The default `give_up_after`: how long a batch is retried before it is dropped.
pub const DEFAULT_GIVE_UP_AFTER: Duration = Duration::from_secs(3 * 86_400);
/// The shortest `give_up_after` accepted: a receiver down for a night loses nothing.
pub const MIN_GIVE_UP_AFTER: Duration = Duration::from_secs(86_400);
/// The events sent when `events` is not set.
pub const DEFAULT_EVENTS: [ExportKind; 6] = [
    ExportKind::Delivered,
    ExportKind::Bounced,
    ExportKind::Complaint,
    ExportKind::Unsubscribe,
    ExportKind::Open,
    ExportKind::Click,
];

/// One `[[webhook]]` of the serve file, checked.
#[derive(Debug)]
pub struct WebhookSettings {
    /// `name`: what the store keeps its cursors under, its cluster lease is named after
    /// and logs and `volley status` call it (default: the URL's host). Unique in the file.
    pub name: String,
    /// `url`: where batches are POSTed (`http://` or `https://`).
    pub url: hyper::Uri,
    /// `events`: the kinds of events sent (names as `volley events` prints them; `opened`,
    /// `clicked`, `unsubscribed` and `complained` are accepted too). Default: delivered,
    /// bounced, complaint, unsubscribe, open and click.
    pub events: Vec<ExportKind>,
    /// The signing key: the bytes of the Standard Webhooks secret (`whsec_<base64>`) read
    /// from `secret_env` or `secret_file`. Empty when the file was read without secrets.
    pub secret: SecretSlice<u8>,
    /// `ca_file`: certificates trusted besides the public roots, for an `https` receiver.
    pub ca_file: Option<PathBuf>,
    /// `campaigns`: only these campaigns' events (and their editions'); all when `None`.
    pub campaigns: Option<Vec<String>>,
    /// `batch`: at most this many events per request (default 100).
    pub batch: usize,
    /// `timeout`: the longest a request may take, connecting included (default 10 s).
    pub timeout: Duration,
    /// `give_up_after`: a batch refused this long is dropped, logged (default 3 days, at
    /// least 1 day).
    pub give_up_after: Duration,
}

/// A `[[webhook]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhook {
    #[serde(default)]
    name: Option<String>,
    url: String,
    #[serde(default)]
    events: Option<Vec<String>>,
    #[serde(default)]
    secret_env: Option<String>,
    #[serde(default)]
    secret_file: Option<String>,
    #[serde(default)]
    ca_file: Option<String>,
    #[serde(default)]
    campaigns: Option<Vec<String>>,
    #[serde(default)]
    batch: Option<i64>,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    give_up_after: Option<String>,
}

/// Checks every `[[webhook]]`; names must be unique.
pub(super) fn validate_webhooks(
    ctx: &Ctx,
    raw: &[RawWebhook],
) -> Result<Vec<WebhookSettings>, ConfigError> {
    let mut out: Vec<WebhookSettings> = Vec::with_capacity(raw.len());
    for (i, entry) in raw.iter().enumerate() {
        let webhook = validate_webhook(ctx, &format!("webhook[{i}]"), entry)?;
        if out.iter().any(|w| w.name == webhook.name) {
            return Err(ctx.bad(
                &format!("webhook[{i}].name"),
                &webhook.name,
                "a name no other [[webhook]] has (set `name` when two share a host)",
            ));
        }
        out.push(webhook);
    }
    Ok(out)
}

fn validate_webhook(ctx: &Ctx, at: &str, raw: &RawWebhook) -> Result<WebhookSettings, ConfigError> {
    let url = parse_url(ctx, &format!("{at}.url"), &raw.url)?;
    let name = match raw.name.as_deref().map(str::trim) {
        Some(name) if is_node_name(name) => name.to_owned(),
        Some(name) => {
            return Err(ctx.bad(
                &format!("{at}.name"),
                name,
                "a name of 1 to 63 letters, digits, '.', '_' or '-'",
            ))
        }
        None => url.host().unwrap_or_default().to_owned(),
    };
    let events = match &raw.events {
        Some(names) => parse_events(ctx, at, names)?,
        None => DEFAULT_EVENTS.to_vec(),
    };
    let ca_file = match &raw.ca_file {
        Some(value) => {
            let key = format!("{at}.ca_file");
            let path = ctx.path(&key, value)?;
            ctx.readable(&key, &path)?;
            Some(path)
        }
        None => None,
    };
    let campaigns = match &raw.campaigns {
        Some(ids) => {
            let mut kept = Vec::with_capacity(ids.len());
            for (j, id) in ids.iter().enumerate() {
                kept.push(
                    ctx.non_empty(&format!("{at}.campaigns[{j}]"), id)?
                        .to_owned(),
                );
            }
            Some(kept)
        }
        None => None,
    };
    let batch = match raw.batch {
        Some(n) => {
            ctx.range(&format!("{at}.batch"), n, 1, 1_000)?;
            usize::try_from(n).unwrap_or(DEFAULT_BATCH)
        }
        None => DEFAULT_BATCH,
    };
    Ok(WebhookSettings {
        name,
        url,
        events,
        secret: read_secret(ctx, at, raw)?,
        ca_file,
        campaigns,
        batch,
        timeout: timeout(ctx, at, raw.timeout.as_deref())?,
        give_up_after: give_up_after(ctx, at, raw.give_up_after.as_deref())?,
    })
}

/// `url`: an absolute `http://` or `https://` address with a host and no user name.
fn parse_url(ctx: &Ctx, key: &str, value: &str) -> Result<hyper::Uri, ConfigError> {
    const EXPECTED: &str = "an http:// or https:// address with a host, like \
                            https://crm.example.com/volley (no user name or password in it)";
    let value = ctx.non_empty(key, value)?;
    let url: hyper::Uri = value.parse().map_err(|_| ctx.bad(key, value, EXPECTED))?;
    let scheme_ok = matches!(url.scheme_str(), Some("http" | "https"));
    let host_ok = url.host().is_some_and(|h| !h.is_empty());
    let userinfo = url.authority().is_some_and(|a| a.as_str().contains('@'));
    if !scheme_ok || !host_ok || userinfo {
        // The value may hold a password: not repeated.
        let shown = if userinfo { "<redacted>" } else { value };
        return Err(ctx.bad(key, shown, EXPECTED));
    }
    Ok(url)
}

/// The name of an event kind in `events`: as `volley events` prints it, or the past tense.
fn event_kind(name: &str) -> Option<ExportKind> {
    Some(match name {
        "delivered" => ExportKind::Delivered,
        "deferred" => ExportKind::Deferred,
        "bounced" => ExportKind::Bounced,
        "expired" => ExportKind::Expired,
        "suppressed" => ExportKind::Suppressed,
        "cancelled" => ExportKind::Cancelled,
        "open" | "opened" => ExportKind::Open,
        "click" | "clicked" => ExportKind::Click,
        "unsubscribe" | "unsubscribed" => ExportKind::Unsubscribe,
        "complaint" | "complained" => ExportKind::Complaint,
        _ => return None,
    })
}

fn parse_events(ctx: &Ctx, at: &str, names: &[String]) -> Result<Vec<ExportKind>, ConfigError> {
    if names.is_empty() {
        return Err(ConfigError::Empty {
            file: ctx.file.clone(),
            key: format!("{at}.events"),
        });
    }
    let mut kinds = Vec::with_capacity(names.len());
    for (j, name) in names.iter().enumerate() {
        let kind = event_kind(name.trim()).ok_or_else(|| {
            ctx.bad(
                &format!("{at}.events[{j}]"),
                name,
                "one of delivered, deferred, bounced, expired, suppressed, open, click, \
                 unsubscribe, complaint",
            )
        })?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    Ok(kinds)
}

fn timeout(ctx: &Ctx, at: &str, value: Option<&str>) -> Result<Duration, ConfigError> {
    let Some(value) = value else {
        return Ok(DEFAULT_TIMEOUT);
    };
    let key = format!("{at}.timeout");
    let timeout = parse_duration(ctx, &key, value)?;
    if timeout < Duration::from_secs(1) || timeout > Duration::from_secs(300) {
        return Err(ctx.bad(&key, value, "a duration from 1s to 5m, like \"10s\""));
    }
    Ok(timeout)
}

fn give_up_after(ctx: &Ctx, at: &str, value: Option<&str>) -> Result<Duration, ConfigError> {
    let Some(value) = value else {
        return Ok(DEFAULT_GIVE_UP_AFTER);
    };
    let key = format!("{at}.give_up_after");
    let after = parse_duration(ctx, &key, value)?;
    if after < MIN_GIVE_UP_AFTER {
        return Err(ctx.bad(&key, value, "at least a day, like \"3d\""));
    }
    Ok(after)
}

/// The signing key from `secret_env` or `secret_file` (exactly one): a Standard Webhooks
/// secret, `whsec_` and the base64 of 24 to 64 random bytes.
fn read_secret(ctx: &Ctx, at: &str, raw: &RawWebhook) -> Result<SecretSlice<u8>, ConfigError> {
    let file_key = format!("{at}.secret_file");
    let env_key = format!("{at}.secret_env");
    let (key, shown, text) = match (&raw.secret_file, &raw.secret_env) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::Conflict {
                file: ctx.file.clone(),
                key: file_key,
                other: env_key,
            })
        }
        (None, None) => {
            return Err(ConfigError::Missing {
                file: ctx.file.clone(),
                key: format!("{file_key} or {env_key}"),
                why: "webhooks are signed with a secret (whsec_…)",
            })
        }
        _ if !ctx.secrets => return Ok(SecretSlice::from(Vec::new())),
        (Some(value), None) => {
            let path = ctx.path(&file_key, value)?;
            warn_if_loose(&file_key, &path);
            let text =
                std::fs::read_to_string(&path).map_err(|e| ctx.file_error(&file_key, &path, e))?;
            (
                file_key,
                value.clone(),
                SecretString::from(text.trim().to_owned()),
            )
        }
        (None, Some(var)) => {
            let var = ctx.non_empty(&env_key, var)?;
            let text = std::env::var(var)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| ConfigError::EnvVar {
                    file: ctx.file.clone(),
                    key: env_key.clone(),
                    var: var.to_owned(),
                })?;
            (
                env_key,
                var.to_owned(),
                SecretString::from(text.trim().to_owned()),
            )
        }
    };
    decode_secret(text.expose_secret())
        .map(SecretSlice::from)
        .ok_or_else(|| {
            // Names where the secret is, never the secret.
            ctx.bad(
                &key,
                &shown,
                "a Standard Webhooks secret: whsec_ followed by the base64 of 24 to 64 bytes",
            )
        })
}

/// The key bytes of a Standard Webhooks secret (`whsec_<base64>` of 24 to 64 bytes), when
/// it is one.
pub fn decode_secret(text: &str) -> Option<Vec<u8>> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.strip_prefix("whsec_")?)
        .ok()?;
    (24..=64).contains(&bytes.len()).then_some(bytes)
}
