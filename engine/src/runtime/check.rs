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

/// Prepares the campaign and composes the first valid row's message, as `test-send` and
/// `send --dry-run` do, adding the `first message` row.
fn prepare(settings: CampaignSettings, checks: &mut Vec<Check>) -> Option<Campaign> {
    let campaign = match Campaign::prepare(settings) {
        Ok(campaign) => campaign,
        Err(error) => {
            checks.push(Check::new("first message", Status::Fail, error.to_string()));
            return None;
        }
    };
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
