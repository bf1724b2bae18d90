//! Campaign configuration: the campaign TOML file, loaded in two phases. `raw` mirrors the file
//! exactly (serde defaults, unknown keys refused with their line); `validate` checks it and
//! yields [`CampaignSettings`], naming the TOML key of every problem (`relay.port`,
//! `dkim[1].key_file`, `retry.schedule[2]`). First stage of the pipeline: everything else
//! starts from these settings.
//!
//! Relative paths in the file resolve against the campaign file's folder. Templates and the
//! relay password are read at load time; DKIM keys are only located here (`dkim` reads them).

mod ab;
mod address;
mod api;
mod audience;
mod conversions;
mod error;
mod listen;
mod mx;
mod providers;
mod raw;
mod relay;
mod schedule;
mod secret_file;
mod segment;
mod serve;
mod settings;
mod shaping;
mod since;
mod source;
mod store;
mod timeouts;
mod token;
mod tracking;
mod validate;
mod warmup;
mod webhook;
mod window;

use std::path::Path;

pub use address::normalize_address;
pub use api::{load_tokens, ApiScope, ApiSettings, ApiToken, DEFAULT_MAX_BODY, DEFAULT_MAX_UPLOAD};
pub use audience::{
    AudienceSettings, Engaged, InactiveSettings, ResendSettings, DEFAULT_INACTIVE_MIN_DELIVERED,
};
pub use conversions::{parse_currency, ConversionSettings, DEFAULT_WINDOW};
pub use error::{AddressError, ConfigError, DurationProblem};
pub use listen::BounceListenSettings;
#[cfg(test)]
pub(crate) use providers::{p256_public_key, rsa_certificate_keys};
pub use providers::{
    MailgunSettings, PostmarkSettings, ProvidersSettings, SendgridSettings, SesSettings,
    MIN_PROVIDER_SECRET_BYTES,
};
pub use relay::is_loopback_host;
pub(crate) use secret_file::warn_if_loose;
pub use secret_file::{loose_permissions, LoosePermissions};
pub use segment::{Segment, SegmentError, SegmentFilter};
pub use serve::{
    is_node_name, load_serve, ClusterSettings, ServeSettings, ServeTracking, DEFAULT_LEASE,
    MIN_METRICS_TOKEN_BYTES,
};
pub use settings::{
    AbSettings, Address, BounceSettings, CampaignSettings, DkimSettings, DnsSettings, GlobalLimits,
    KeySource, MxSettings, MxTls, OnInconclusive, OnVeto, Rate, RelayAuth, RelaySettings,
    RetrySettings, ScheduleSettings, ShapingRule, ShapingSettings, StopLimits, TemplateFile,
    TlsMode, TrackingSettings, VariantSettings, MAIN_VARIANT,
};
pub use since::parse_since;
pub use source::{SourceAddress, SourcePick};
pub use token::{TokenError, TokenSource};
pub use warmup::{
    WarmupProvider, WarmupSettings, DEFAULT_GROWTH, DEFAULT_MAX_BOUNCE_RATE,
    DEFAULT_MAX_COMPLAINT_RATE, DEFAULT_MIN, DEFAULT_START, OTHERS,
};
pub use webhook::{
    decode_secret, WebhookSettings, DEFAULT_BATCH, DEFAULT_EVENTS, DEFAULT_GIVE_UP_AFTER,
    DEFAULT_TIMEOUT, MIN_GIVE_UP_AFTER,
};
pub use window::{zone_of, SendTiming, SendWindow, WindowRule};

/// Loads and validates the campaign file at `path`.
///
/// `store_override` (the CLI's `--store`) replaces `[store].path` and its default
/// (`<campaign file stem>.volley` beside the campaign file).
pub fn load_campaign(
    path: &Path,
    store_override: Option<&Path>,
) -> Result<CampaignSettings, ConfigError> {
    load_campaign_str(path, &read(path)?, store_override)
}

/// Like [`load_campaign`] for a campaign run on `store` (a server's, or the one a running
/// send owns): the campaign's own `[store]` is checked, then `store` replaces it.
pub fn load_campaign_in(
    path: &Path,
    store: &crate::store::StoreLocation,
) -> Result<CampaignSettings, ConfigError> {
    let mut settings = load_campaign(path, store.folder())?;
    settings.store = store.clone();
    Ok(settings)
}

/// Like [`load_campaign`], with the file's text already in hand; `path` is still used for
/// messages and to resolve relative paths.
pub fn load_campaign_str(
    path: &Path,
    text: &str,
    store_override: Option<&Path>,
) -> Result<CampaignSettings, ConfigError> {
    let raw = validate::parse(path, text)?;
    validate::validate(raw, (path, text), store_override, true)
}

/// Like [`load_campaign`] for commands that only read the store (status, reports): the
/// secrets (relay password, tracking key) are not read, so they need not be at hand, and
/// the settings cannot be used to send.
pub fn load_campaign_for_reading(
    path: &Path,
    store_override: Option<&Path>,
) -> Result<CampaignSettings, ConfigError> {
    let text = read(path)?;
    let raw = validate::parse(path, &text)?;
    validate::validate(raw, (path, &text), store_override, false)
}

/// The text of the file at `path`.
fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_audience;
#[cfg(test)]
mod tests_auth;
#[cfg(test)]
mod tests_breaker;
#[cfg(test)]
mod tests_cluster;
#[cfg(test)]
mod tests_holdout;
#[cfg(test)]
mod tests_mta_sts;
#[cfg(test)]
mod tests_relays;
#[cfg(test)]
mod tests_source;
#[cfg(test)]
mod tests_store;
#[cfg(test)]
mod tests_topic;
#[cfg(test)]
mod tests_warmup;
#[cfg(test)]
mod tests_webhook;
#[cfg(test)]
mod tests_window;
#[cfg(test)]
mod tests_xoauth2;
