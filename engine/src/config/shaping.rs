//! The `[shaping.*]` tables: per-destination limits and back-off. `[shaping.default]` completes
//! the built-in defaults, every `[shaping."<domain or MX suffix>"]` completes the default, and
//! `[shaping.global]` caps all destinations together.

use std::collections::BTreeMap;
use std::time::Duration;

use super::address::normalize_domain;
use super::error::ConfigError;
use super::raw::{RawRate, RawShaping};
use super::settings::{GlobalLimits, Rate, ShapingRule, ShapingSettings};
use super::validate::{parse_duration, Ctx};

/// The table that sets what every destination without its own entry gets.
const DEFAULT: &str = "default";
/// The table of caps over all destinations.
const GLOBAL: &str = "global";

/// Checks every `[shaping.*]` table.
pub(crate) fn validate_shaping(
    ctx: &Ctx,
    raw: &BTreeMap<String, RawShaping>,
) -> Result<ShapingSettings, ConfigError> {
    let builtin = ShapingRule::default();
    let default = match raw.get(DEFAULT) {
        Some(entry) => rule(ctx, DEFAULT, entry, &builtin)?,
        None => builtin,
    };
    let global = match raw.get(GLOBAL) {
        Some(entry) => global_limits(ctx, entry)?,
        None => GlobalLimits::default(),
    };
    let mut rules = Vec::new();
    for (name, entry) in raw {
        if name == DEFAULT || name == GLOBAL {
            continue;
        }
        let key = format!("shaping.\"{name}\"");
        let domain = normalize_domain(name.trim().trim_start_matches('.')).map_err(|_| {
            ctx.bad(
                &key,
                name,
                "\"default\", \"global\", a domain (gmail.com) or an MX host suffix (google.com)",
            )
        })?;
        rules.push((domain, rule(ctx, name, entry, &default)?));
    }
    Ok(ShapingSettings {
        default,
        rules,
        global,
    })
}

/// One table, completed from `base`.
fn rule(
    ctx: &Ctx,
    name: &str,
    raw: &RawShaping,
    base: &ShapingRule,
) -> Result<ShapingRule, ConfigError> {
    let key = |field: &str| {
        if name == DEFAULT {
            format!("shaping.default.{field}")
        } else {
            format!("shaping.\"{name}\".{field}")
        }
    };
    let count = |field: &str, value: Option<i64>, max: i64| -> Result<Option<u64>, ConfigError> {
        match value {
            Some(n) => {
                ctx.range(&key(field), n, 1, max)?;
                Ok(u64::try_from(n).ok()) // invariant: range-checked
            }
            None => Ok(None),
        }
    };
    let duration = |field: &str, value: &Option<String>, fallback: Duration| match value {
        Some(text) => parse_duration(ctx, &key(field), text),
        None => Ok(fallback),
    };
    let rate = |field: &str, value: &Option<RawRate>, fallback: Option<Rate>| match value {
        Some(raw) => parse_rate(ctx, &key(field), raw).map(Some),
        None => Ok(fallback),
    };
    let throttle_replies = match &raw.throttle_replies {
        Some(texts) => {
            for (i, text) in texts.iter().enumerate() {
                ctx.non_empty(&key(&format!("throttle_replies[{i}]")), text)?;
            }
            texts.iter().map(|t| t.trim().to_lowercase()).collect()
        }
        None => base.throttle_replies.clone(),
    };
    Ok(ShapingRule {
        max_connections: count("max_connections", raw.max_connections, 1_000)?
            .map_or(base.max_connections, |n| n as usize),
        max_message_rate: rate(
            "max_message_rate",
            &raw.max_message_rate,
            base.max_message_rate,
        )?,
        max_connection_rate: rate(
            "max_connection_rate",
            &raw.max_connection_rate,
            base.max_connection_rate,
        )?,
        max_messages_per_connection: count(
            "max_messages_per_connection",
            raw.max_messages_per_connection,
            1_000_000,
        )?
        .unwrap_or(base.max_messages_per_connection),
        idle_timeout: duration("idle_timeout", &raw.idle_timeout, base.idle_timeout)?,
        tls: raw.tls.or(base.tls),
        throttle_replies,
        suspend_after: count("suspend_after", raw.suspend_after, 1_000)?
            .map_or(base.suspend_after, |n| n as u32),
        suspend_window: duration("suspend_window", &raw.suspend_window, base.suspend_window)?,
        suspend_for: duration("suspend_for", &raw.suspend_for, base.suspend_for)?,
        block_breaker: raw.block_breaker.unwrap_or(base.block_breaker),
        block_threshold: count("block_threshold", raw.block_threshold, 100_000)?
            .map_or(base.block_threshold, |n| n as u32),
        block_window: duration("block_window", &raw.block_window, base.block_window)?,
        block_pause: duration("block_pause", &raw.block_pause, base.block_pause)?,
        block_max_pause: duration(
            "block_max_pause",
            &raw.block_max_pause,
            base.block_max_pause,
        )?,
    })
}

/// `[shaping.global]`: only the two caps that make sense over all destinations.
fn global_limits(ctx: &Ctx, raw: &RawShaping) -> Result<GlobalLimits, ConfigError> {
    let only = "shaping.global takes max_connections and max_message_rate only";
    let stray = [
        ("max_connection_rate", raw.max_connection_rate.is_some()),
        (
            "max_messages_per_connection",
            raw.max_messages_per_connection.is_some(),
        ),
        ("idle_timeout", raw.idle_timeout.is_some()),
        ("tls", raw.tls.is_some()),
        ("throttle_replies", raw.throttle_replies.is_some()),
        ("suspend_after", raw.suspend_after.is_some()),
        ("suspend_window", raw.suspend_window.is_some()),
        ("suspend_for", raw.suspend_for.is_some()),
        ("block_breaker", raw.block_breaker.is_some()),
        ("block_threshold", raw.block_threshold.is_some()),
        ("block_window", raw.block_window.is_some()),
        ("block_pause", raw.block_pause.is_some()),
        ("block_max_pause", raw.block_max_pause.is_some()),
    ];
    if let Some((field, _)) = stray.iter().find(|(_, set)| *set) {
        return Err(ConfigError::Misplaced {
            file: ctx.file.clone(),
            key: format!("shaping.global.{field}"),
            why: only,
        });
    }
    let defaults = GlobalLimits::default();
    let max_connections = match raw.max_connections {
        Some(n) => {
            ctx.range("shaping.global.max_connections", n, 1, 100_000)?;
            usize::try_from(n).unwrap_or(defaults.max_connections) // invariant: range-checked
        }
        None => defaults.max_connections,
    };
    let max_message_rate = match &raw.max_message_rate {
        Some(raw) => Some(parse_rate(ctx, "shaping.global.max_message_rate", raw)?),
        None => None,
    };
    Ok(GlobalLimits {
        max_connections,
        max_message_rate,
    })
}

/// A number (per second) or `"N/unit"` with unit s, min, h or day.
pub(crate) fn parse_rate(ctx: &Ctx, key: &str, raw: &RawRate) -> Result<Rate, ConfigError> {
    let expected = "a positive rate such as 20 (per second), \"100/s\", \"600/min\", \"5000/h\" or \"100000/day\"";
    let (count, per, shown) = match raw {
        RawRate::PerSecond(n) => (*n, Duration::from_secs(1), n.to_string()),
        RawRate::Text(text) => {
            let Some((count, unit)) = text.split_once('/') else {
                return Err(ctx.bad(key, text, expected));
            };
            let per = match unit.trim() {
                "s" | "sec" | "second" => 1,
                "m" | "min" | "minute" => 60,
                "h" | "hour" => 3_600,
                "d" | "day" => 86_400,
                _ => return Err(ctx.bad(key, text, expected)),
            };
            let count = count
                .trim()
                .parse::<f64>()
                .map_err(|_| ctx.bad(key, text, expected))?;
            (count, Duration::from_secs(per), text.clone())
        }
    };
    if !(count.is_finite() && count > 0.0) {
        return Err(ctx.bad(key, &shown, expected));
    }
    Ok(Rate { count, per })
}
