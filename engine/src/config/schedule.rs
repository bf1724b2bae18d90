//! `[schedule]`: a cron expression in a time zone; each firing is an edition of the campaign.

use super::raw::RawSchedule;
use super::settings::ScheduleSettings;
use super::validate::{parse_duration, Ctx};
use super::ConfigError;

/// The longest campaign id a scheduled campaign may have: editions append `.YYYY-MM-DDTHHMM`.
pub(crate) const MAX_SCHEDULED_ID: usize = 48;

/// Parses `[schedule]`.
pub(crate) fn validate_schedule(
    ctx: &Ctx,
    raw: &RawSchedule,
    id: &str,
) -> Result<ScheduleSettings, ConfigError> {
    let text = ctx.non_empty("schedule.cron", &raw.cron)?.trim().to_owned();
    let fields = text.split_whitespace().count();
    let cron = croner::Cron::new(&text)
        .parse()
        .ok()
        .filter(|_| fields == 5 || text.starts_with('@'))
        .ok_or_else(|| {
            ctx.bad(
                "schedule.cron",
                &raw.cron,
                "five fields: minute hour day-of-month month day-of-week, like \"0 9 * * MON\"",
            )
        })?;
    let timezone = raw.timezone.trim().parse::<chrono_tz::Tz>().map_err(|_| {
        ctx.bad(
            "schedule.timezone",
            &raw.timezone,
            "an IANA time zone name, like \"Europe/Berlin\" or \"UTC\"",
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
        cron,
        cron_text: text,
        timezone,
        catch_up,
    })
}
