//! The `[warmup]` section: a daily ceiling per mailbox provider for a new sending domain or
//! address, growing after each clean day. This module checks the keys and builds the
//! provider table (the built-in groups by MX host, overridden or extended by
//! `[warmup.providers.NAME]`); the arithmetic and the gate live in `warmup` and `dispatch`.

use std::collections::BTreeMap;

use chrono_tz::Tz;
use serde::Deserialize;

use super::error::ConfigError;
use super::validate::Ctx;

/// The first day's ceiling per provider when `[warmup] start` is absent.
pub const DEFAULT_START: u32 = 50;
/// The growth factor after a clean day when `[warmup] growth` is absent.
pub const DEFAULT_GROWTH: f64 = 1.5;
/// The floor when `[warmup] min` is absent (or `start`, when that is lower).
pub const DEFAULT_MIN: u32 = 10;
/// `[warmup] max_bounce_rate` when absent: 5 % of what was sent.
pub const DEFAULT_MAX_BOUNCE_RATE: f64 = 0.05;
/// `[warmup] max_complaint_rate` when absent: 0.1 % of what was delivered.
pub const DEFAULT_MAX_COMPLAINT_RATE: f64 = 0.001;
/// The group of every recipient no other provider claims.
pub const OTHERS: &str = "others";
/// The largest ceiling accepted for `start`, `min` and `max`.
const MAX_CEILING: i64 = 100_000_000;

/// The built-in providers: name, MX host patterns, recipient domains (used with a relay,
/// and when no MX pattern matched).
const BUILT_IN: [(&str, &[&str], &[&str]); 4] = [
    (
        "gmail",
        &["*.google.com", "*.googlemail.com"],
        &["gmail.com", "googlemail.com"],
    ),
    (
        "microsoft",
        &["*.protection.outlook.com", "*.outlook.com", "*.hotmail.com"],
        &["outlook.com", "hotmail.com", "live.com", "msn.com"],
    ),
    (
        "yahoo",
        &["*.yahoodns.net", "*.aol.com"],
        &["yahoo.com", "ymail.com", "rocketmail.com", "aol.com"],
    ),
    (
        "apple",
        &["*.mail.icloud.com"],
        &["icloud.com", "me.com", "mac.com"],
    ),
];

/// `[warmup]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWarmup {
    #[serde(default)]
    pub(crate) key: Option<String>,
    #[serde(default)]
    pub(crate) start: Option<i64>,
    #[serde(default)]
    pub(crate) growth: Option<f64>,
    #[serde(default)]
    pub(crate) min: Option<i64>,
    #[serde(default)]
    pub(crate) max: Option<i64>,
    #[serde(default)]
    pub(crate) max_bounce_rate: Option<f64>,
    #[serde(default)]
    pub(crate) max_complaint_rate: Option<f64>,
    #[serde(default)]
    pub(crate) timezone: Option<String>,
    #[serde(default)]
    pub(crate) providers: BTreeMap<String, RawWarmupProvider>,
}

/// `[warmup.providers.NAME]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWarmupProvider {
    #[serde(default)]
    pub(crate) mx: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) domains: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) start: Option<i64>,
    #[serde(default)]
    pub(crate) max: Option<i64>,
}

/// One mailbox provider of the warm-up: how its recipients are recognised and its ceilings.
#[derive(Debug, Clone, PartialEq)]
pub struct WarmupProvider {
    /// Its name (`gmail`, `microsoft`, `yahoo`, `apple`, `others` or one of the file's).
    pub name: String,
    /// MX host patterns, lower case: `*.google.com` (any name under `google.com`) or an
    /// exact host name.
    pub mx: Vec<String>,
    /// Recipient domains, lower case (a relay has no MX hosts to look at).
    pub domains: Vec<String>,
    /// The first day's ceiling.
    pub start: u32,
    /// The ceiling at which its warm-up is done (no ceiling any more), if any.
    pub max: Option<u32>,
}

/// Checked `[warmup]` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct WarmupSettings {
    /// What is being warmed (`[warmup] key`; default the From domain): the state is kept per
    /// key, shared by every campaign with the same key.
    pub key: String,
    /// The factor the ceiling grows by after a clean day (default 1.5).
    pub growth: f64,
    /// The ceiling never falls below this (default 10, or `start` when lower).
    pub min: u32,
    /// A day whose bounces exceed this share of what was sent is not clean (default 0.05).
    pub max_bounce_rate: f64,
    /// A day whose complaints exceed this share of what was delivered is not clean
    /// (default 0.001).
    pub max_complaint_rate: f64,
    /// The zone whose midnight starts a new day (default UTC).
    pub timezone: Tz,
    /// The providers in the order they are tried; `others` is last.
    pub providers: Vec<WarmupProvider>,
}

impl WarmupSettings {
    /// The provider named `name`, if the table has it.
    pub fn provider(&self, name: &str) -> Option<&WarmupProvider> {
        self.providers.iter().find(|p| p.name == name)
    }
}

/// Checks `[warmup]`; `from_domain` is the default key.
pub(crate) fn validate_warmup(
    ctx: &Ctx,
    raw: &RawWarmup,
    from_domain: &str,
) -> Result<WarmupSettings, ConfigError> {
    let key = match &raw.key {
        Some(key) => ctx.non_empty("warmup.key", key)?.to_owned(),
        None => from_domain.to_ascii_lowercase(),
    };
    let start = ceiling(ctx, "warmup.start", raw.start)?.unwrap_or(DEFAULT_START);
    let growth = raw.growth.unwrap_or(DEFAULT_GROWTH);
    if !(growth.is_finite() && growth > 1.0 && growth <= 10.0) {
        return Err(ctx.bad(
            "warmup.growth",
            &growth.to_string(),
            "a factor above 1 and at most 10, such as 1.5 or 2",
        ));
    }
    let min = ceiling(ctx, "warmup.min", raw.min)?.unwrap_or(DEFAULT_MIN.min(start));
    let max = ceiling(ctx, "warmup.max", raw.max)?;
    let max_bounce_rate = rate(ctx, "warmup.max_bounce_rate", raw.max_bounce_rate)?
        .unwrap_or(DEFAULT_MAX_BOUNCE_RATE);
    let max_complaint_rate = rate(ctx, "warmup.max_complaint_rate", raw.max_complaint_rate)?
        .unwrap_or(DEFAULT_MAX_COMPLAINT_RATE);
    let timezone = match &raw.timezone {
        Some(value) => value.trim().parse::<Tz>().map_err(|_| {
            ctx.bad(
                "warmup.timezone",
                value,
                "an IANA time zone name, like \"Europe/Berlin\" or \"UTC\"",
            )
        })?,
        None => Tz::UTC,
    };
    let providers = providers(ctx, raw, start, max)?;
    for provider in &providers {
        if provider.start < min {
            let own = raw
                .providers
                .get(&provider.name)
                .is_some_and(|p| p.start.is_some());
            return Err(if own {
                ctx.bad(
                    &format!("warmup.providers.{}.start", provider.name),
                    &provider.start.to_string(),
                    "a ceiling no lower than warmup.min",
                )
            } else {
                ctx.bad(
                    "warmup.min",
                    &min.to_string(),
                    "a floor no higher than the first day's ceiling (start)",
                )
            });
        }
        if provider.max.is_some_and(|max| max <= provider.start) {
            let key = if raw.providers.contains_key(&provider.name) {
                format!("warmup.providers.{}.max", provider.name)
            } else {
                "warmup.max".to_owned()
            };
            return Err(ctx.bad(
                &key,
                &provider.max.unwrap_or(0).to_string(),
                "a ceiling above the first day's (start)",
            ));
        }
    }
    Ok(WarmupSettings {
        key,
        growth,
        min,
        max_bounce_rate,
        max_complaint_rate,
        timezone,
        providers,
    })
}

/// The provider table: the file's new providers first (in name order), then the built-in
/// ones with the file's overrides, then `others`.
fn providers(
    ctx: &Ctx,
    raw: &RawWarmup,
    start: u32,
    max: Option<u32>,
) -> Result<Vec<WarmupProvider>, ConfigError> {
    let built_in = |name: &str| BUILT_IN.iter().find(|(n, _, _)| *n == name);
    let mut custom = Vec::new();
    for (name, over) in &raw.providers {
        let at = format!("warmup.providers.{name}");
        if !is_provider_name(name) {
            return Err(ctx.bad(
                &at,
                name,
                "a provider name of a-z, 0-9, _ and - (at most 32 characters)",
            ));
        }
        if name == OTHERS {
            for (field, set) in [
                ("mx", over.mx.is_some()),
                ("domains", over.domains.is_some()),
            ] {
                if set {
                    return Err(ConfigError::Misplaced {
                        file: ctx.file.clone(),
                        key: format!("{at}.{field}"),
                        why: "`others` is every recipient no other provider claims; it takes start and max only",
                    });
                }
            }
            continue;
        }
        if built_in(name).is_none() {
            if over.mx.is_none() && over.domains.is_none() {
                return Err(ConfigError::Empty {
                    file: ctx.file.clone(),
                    key: format!("{at}.mx"),
                });
            }
            custom.push(name.clone());
        }
    }
    let mut out = Vec::new();
    let names = custom
        .iter()
        .map(String::as_str)
        .chain(BUILT_IN.iter().map(|(n, _, _)| *n))
        .chain([OTHERS]);
    for name in names {
        let over = raw.providers.get(name);
        let (default_mx, default_domains): (&[&str], &[&str]) =
            built_in(name).map_or((&[], &[]), |(_, mx, domains)| (*mx, *domains));
        let at = format!("warmup.providers.{name}");
        let mx = match over.and_then(|o| o.mx.as_ref()) {
            Some(list) => patterns(ctx, &format!("{at}.mx"), list, true)?,
            None => default_mx.iter().map(|s| (*s).to_owned()).collect(),
        };
        let domains = match over.and_then(|o| o.domains.as_ref()) {
            Some(list) => patterns(ctx, &format!("{at}.domains"), list, false)?,
            None => default_domains.iter().map(|s| (*s).to_owned()).collect(),
        };
        let own_start = ceiling(ctx, &format!("{at}.start"), over.and_then(|o| o.start))?;
        let own_max = ceiling(ctx, &format!("{at}.max"), over.and_then(|o| o.max))?;
        out.push(WarmupProvider {
            name: name.to_owned(),
            mx,
            domains,
            start: own_start.unwrap_or(start),
            max: own_max.or(max),
        });
    }
    Ok(out)
}

/// A list of MX host patterns (`*.example.net` or a host name) or of domains, lower case.
fn patterns(
    ctx: &Ctx,
    key: &str,
    list: &[String],
    wildcard: bool,
) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::with_capacity(list.len());
    for (i, value) in list.iter().enumerate() {
        let at = format!("{key}[{i}]");
        let text = value.trim().trim_end_matches('.').to_ascii_lowercase();
        let name = match text.strip_prefix("*.") {
            Some(rest) if wildcard => rest,
            _ => text.as_str(),
        };
        let ok = !name.is_empty()
            && name.len() <= 253
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
            && !name.starts_with('.')
            && !name.contains("..");
        if !ok {
            let expected = if wildcard {
                "an MX host name, or *.suffix for every host under suffix"
            } else {
                "a domain name such as gmail.com"
            };
            return Err(ctx.bad(&at, value, expected));
        }
        out.push(text);
    }
    Ok(out)
}

/// A ceiling key: 1 to [`MAX_CEILING`] when set.
fn ceiling(ctx: &Ctx, key: &str, value: Option<i64>) -> Result<Option<u32>, ConfigError> {
    let Some(value) = value else { return Ok(None) };
    ctx.range(key, value, 1, MAX_CEILING)?;
    // invariant: range-checked above
    Ok(Some(u32::try_from(value).unwrap_or(1)))
}

/// A rate key: a share between 0 and 1 when set.
fn rate(ctx: &Ctx, key: &str, value: Option<f64>) -> Result<Option<f64>, ConfigError> {
    match value {
        Some(v) if !(v.is_finite() && (0.0..=1.0).contains(&v)) => Err(ctx.bad(
            key,
            &v.to_string(),
            "a share between 0 and 1, such as 0.05 for 5 %",
        )),
        other => Ok(other),
    }
}

/// Whether `name` may name a provider.
fn is_provider_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'))
}
