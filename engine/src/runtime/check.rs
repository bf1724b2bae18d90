//! `volley check`: load the campaign, prepare it and compose the first row's message, then
//! add the preflight rows its settings decide (`crate::preflight`). Problems are rows, not
//! errors; nothing is sent.

use std::path::Path;

use super::Campaign;
use crate::config::CampaignSettings;
use crate::preflight::{settings_checks, Check, Options, Status};

/// Runs every check on the campaign file at `path`. Problems are rows, not errors: a campaign
/// that does not load is a failed row (and the DNS checks still run when the file can be read
/// without its secrets).
pub async fn check(path: &Path, options: &Options) -> Vec<Check> {
    let store = options.store.as_deref();
    let mut checks = Vec::new();
    let campaign = match crate::config::load_campaign(path, store) {
        Ok(settings) => {
            checks.push(Check::new(
                "campaign file",
                Status::Pass,
                format!("{} loads", path.display()),
            ));
            if let Some(row) = warmup_check(&settings) {
                checks.push(row);
            }
            prepare(settings, &mut checks)
        }
        Err(error) => {
            checks.push(Check::new("campaign file", Status::Fail, error.to_string()));
            None
        }
    };
    match &campaign {
        Some(campaign) => checks.extend(settings_checks(campaign.settings(), options).await),
        None => {
            // Without its secrets the file may still load: its DNS can be checked all the same.
            if let Ok(settings) = crate::config::load_campaign_for_reading(path, store) {
                checks.extend(settings_checks(&settings, options).await);
            }
        }
    }
    checks
}

/// The `warm-up` row: what `[warmup]` sets, when it is there.
fn warmup_check(settings: &CampaignSettings) -> Option<Check> {
    let w = settings.warmup.as_ref()?;
    let starts: Vec<String> = w
        .providers
        .iter()
        .map(|p| match p.max {
            Some(max) => format!("{} {} (max {max})", p.name, p.start),
            None => format!("{} {}", p.name, p.start),
        })
        .collect();
    Some(Check::new(
        "warm-up",
        Status::Pass,
        format!(
            "key {}: first-day ceilings {}; growth x{} after a clean day, floor {}, days in {}",
            w.key,
            starts.join(", "),
            w.growth,
            w.min,
            w.timezone
        ),
    ))
}

/// Prepares the campaign and composes the first valid row's message, as `test-send` and
/// `send --dry-run` do, adding the `first message` row.
fn prepare(settings: CampaignSettings, checks: &mut Vec<Check>) -> Option<Campaign> {
    let campaign = match Campaign::prepare(settings) {
        Ok(campaign) => campaign,
        Err(error) if is_segment_error(&error) => {
            // `[campaign] where` names a column the list lacks, or compares what cannot be.
            checks.push(Check::new("segment", Status::Fail, error.to_string()));
            return None;
        }
        Err(error) => {
            checks.push(Check::new("first message", Status::Fail, error.to_string()));
            return None;
        }
    };
    if let Some(check) = segment_check(&campaign) {
        checks.push(check);
    }
    checks.push(match super::render_row(&campaign, 1, None) {
        Ok(row) => Check::new(
            "first message",
            Status::Pass,
            format!(
                "renders and is signed for list line {} ({} bytes)",
                row.line,
                row.bytes.len()
            ),
        ),
        Err(error) => Check::new("first message", Status::Fail, error.to_string()),
    });
    Some(campaign)
}

/// The `segment` row of a campaign with `[campaign] where`: how many of the list's valid
/// rows it keeps (read through once; nothing is loaded).
fn segment_check(campaign: &Campaign) -> Option<Check> {
    let segment = campaign.segment()?;
    let reader = match crate::campaign::RecipientReader::open(&campaign.settings.recipients) {
        Ok(reader) => reader,
        Err(error) => return Some(Check::new("segment", Status::Fail, error.to_string())),
    };
    let (mut kept, mut valid) = (0u64, 0u64);
    for row in reader.flatten() {
        valid += 1;
        kept += u64::from(segment.matches(&row.values));
    }
    let text = campaign.settings.segment.as_ref().map_or("", |s| s.text());
    let detail = format!("[campaign] where = {text:?} keeps {kept} of {valid} valid rows");
    let status = if kept == 0 {
        Status::Warn
    } else {
        Status::Pass
    };
    Some(Check::new("segment", status, detail))
}

/// Whether `error` is about `[campaign] where`.
fn is_segment_error(error: &crate::Error) -> bool {
    matches!(error, crate::Error::Config(e) if matches!(**e, crate::config::ConfigError::Segment { .. }))
}
