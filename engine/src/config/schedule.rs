//! `[schedule]`: when a campaign goes out. Two independent parts that may be combined:
//!
//! - `cron` (with `timezone`, `catch_up`): each firing is an edition of the campaign;
//! - `window` or `send_at` (with `timezone_column`, `default_timezone`): each recipient is
//!   sent only inside a local-time window, or at a local time, in their own zone.
//!
//! A section needs at least one of `cron`, `window` and `send_at`; `window` and `send_at`
//! exclude each other. With both parts, each edition's recipients wait for their window.

use super::raw::RawSchedule;
use super::settings::ScheduleSettings;
use super::validate::{parse_duration, Ctx};
use super::window::{SendTiming, SendWindow, WindowRule};
use super::ConfigError;

/// The longest campaign id a scheduled campaign may have: editions append `.YYYY-MM-DDTHHMM`.
pub(crate) const MAX_SCHEDULED_ID: usize = 48;

/// Parses `[schedule]`: its editions (`cron`) and its sending window, each when set.
pub(crate) fn validate_schedule(
    ctx: &Ctx,
    raw: &RawSchedule,
    id: &str,
) -> Result<(Option<ScheduleSettings>, Option<SendWindow>), ConfigError> {
    let timezone = parse_zone(ctx, "schedule.timezone", &raw.timezone)?;
    let window = validate_window(ctx, raw, timezone)?;
    let cron = match &raw.cron {
        Some(cron) => Some(validate_cron(ctx, raw, cron, timezone, id)?),
        None if window.is_none() => {
            return Err(ConfigError::Missing {
                file: ctx.file.clone(),
                key: "schedule.cron, schedule.window or schedule.send_at".to_owned(),
                why: "[schedule] sends editions (cron) or in local time (window, send_at)",
            })
        }
        None => None,
    };
    Ok((cron, window))
}

fn validate_cron(
    ctx: &Ctx,
    raw: &RawSchedule,
    cron: &str,
    timezone: chrono_tz::Tz,
    id: &str,
) -> Result<ScheduleSettings, ConfigError> {
    let text = ctx.non_empty("schedule.cron", cron)?.trim().to_owned();
    let fields = text.split_whitespace().count();
    let parsed = croner::Cron::new(&text)
        .parse()
        .ok()
        .filter(|_| fields == 5 || text.starts_with('@'))
        .ok_or_else(|| {
            ctx.bad(
                "schedule.cron",
                cron,
                "five fields: minute hour day-of-month month day-of-week, like \"0 9 * * MON\"",
            )
        })?;
    let catch_up = parse_duration(ctx, "schedule.catch_up", &raw.catch_up)?;
    if id.len() > MAX_SCHEDULED_ID {
        return Err(ctx.bad(
            "campaign.id",
            id,
            "at most 48 characters for a scheduled campaign (each edition's id adds its date)",
        ));
    }
    Ok(ScheduleSettings {
        cron: parsed,
        cron_text: text,
        timezone,
        catch_up,
    })
}

/// `window` / `send_at` with their zone keys; `None` when neither is set.
fn validate_window(
    ctx: &Ctx,
    raw: &RawSchedule,
    timezone: chrono_tz::Tz,
) -> Result<Option<SendWindow>, ConfigError> {
    let bad = |key: &str, value: &str, reason: String| ConfigError::BadWindow {
        file: ctx.file.clone(),
        key: key.to_owned(),
        value: value.to_owned(),
        reason,
    };
    let (timing, text) = match (&raw.window, &raw.send_at) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::Conflict {
                file: ctx.file.clone(),
                key: "schedule.window".to_owned(),
                other: "schedule.send_at".to_owned(),
            })
        }
        (Some(window), None) => {
            let rule = WindowRule::parse(window).map_err(|r| bad("schedule.window", window, r))?;
            (SendTiming::Window(rule), window)
        }
        (None, Some(send_at)) => {
            let rule =
                WindowRule::parse_at(send_at).map_err(|r| bad("schedule.send_at", send_at, r))?;
            (SendTiming::SendAt(rule), send_at)
        }
        (None, None) => {
            for (key, value) in [
                ("schedule.timezone_column", &raw.timezone_column),
                ("schedule.default_timezone", &raw.default_timezone),
            ] {
                if value.is_some() {
                    return Err(ConfigError::Misplaced {
                        file: ctx.file.clone(),
                        key: key.to_owned(),
                        why: "it goes with schedule.window or schedule.send_at",
                    });
                }
            }
            return Ok(None);
        }
    };
    let column = match &raw.timezone_column {
        Some(column) => Some(
            ctx.non_empty("schedule.timezone_column", column)?
                .to_owned(),
        ),
        None => None,
    };
    let default_zone = match &raw.default_timezone {
        Some(zone) => parse_zone(ctx, "schedule.default_timezone", zone)?,
        None => timezone,
    };
    Ok(Some(SendWindow {
        timing,
        column,
        default_zone,
        text: text.trim().to_owned(),
    }))
}

fn parse_zone(ctx: &Ctx, key: &str, value: &str) -> Result<chrono_tz::Tz, ConfigError> {
    value.trim().parse::<chrono_tz::Tz>().map_err(|_| {
        ctx.bad(
            key,
            value,
            "an IANA time zone name, like \"Europe/Berlin\" or \"UTC\"",
        )
    })
}
