//! The `[audience]` section: who of the list is left out at load because of what the store
//! knows of earlier campaigns. Rules apply in the order they are listed here:
//! `exclude_campaigns` (anyone delivered by those campaigns), `resend` (only who was
//! delivered by one campaign and did not open or click it), `inactive_after` with
//! `inactive_min_delivered` (whoever has been delivered at least that many messages and
//! showed no human open or click for that long). Only human events count: opens and clicks
//! judged machine-made (Apple Mail Privacy Protection, link scanners) never do.
//!
//! Whether a named campaign exists is checked against the store when the audience is built,
//! not here (the settings do not know the store).

use std::time::Duration;

use serde::Deserialize;

use super::error::ConfigError;
use super::validate::{parse_duration, Ctx};

/// `inactive_min_delivered` when `inactive_after` is set without it.
pub const DEFAULT_INACTIVE_MIN_DELIVERED: u32 = 3;

/// `[audience]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAudience {
    #[serde(default)]
    pub(crate) exclude_campaigns: Vec<String>,
    #[serde(default)]
    pub(crate) resend: Option<RawResend>,
    #[serde(default)]
    pub(crate) inactive_after: Option<String>,
    #[serde(default)]
    pub(crate) inactive_min_delivered: Option<i64>,
}

/// `[audience] resend = { campaign, not, after }` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawResend {
    pub(crate) campaign: String,
    pub(crate) not: String,
    #[serde(default)]
    pub(crate) after: Option<String>,
}

/// Checked `[audience]` rules; the default (no section) leaves nobody out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AudienceSettings {
    /// Leave out anyone a message of one of these campaigns (or of their editions) was
    /// delivered to (`exclude_campaigns`).
    pub exclude_campaigns: Vec<String>,
    /// Send only to who was delivered by another campaign and did not engage with it.
    pub resend: Option<ResendSettings>,
    /// Leave out long-inactive addresses (`inactive_after`, `inactive_min_delivered`).
    pub inactive: Option<InactiveSettings>,
}

impl AudienceSettings {
    /// Whether any rule is set.
    pub fn is_empty(&self) -> bool {
        self.exclude_campaigns.is_empty() && self.resend.is_none() && self.inactive.is_none()
    }
}

/// `resend = { campaign = "may-news", not = "opened", after = "48h" }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResendSettings {
    /// The first campaign (its latest edition when it is a scheduled one).
    pub campaign: String,
    /// Which human engagement with the first campaign leaves a recipient out.
    pub not: Engaged,
    /// How long after the first campaign's last delivery this one may start (zero when
    /// `after` is absent).
    pub after: Duration,
}

/// A kind of human engagement with a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engaged {
    /// Opened it (a human open, or a human click: a click implies the message was opened).
    Opened,
    /// Clicked one of its tracked links (a human click).
    Clicked,
}

impl Engaged {
    /// The word used in the campaign file.
    pub fn as_str(self) -> &'static str {
        match self {
            Engaged::Opened => "opened",
            Engaged::Clicked => "clicked",
        }
    }
}

/// `inactive_after = "180d"`, `inactive_min_delivered = 3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InactiveSettings {
    /// How long without a human open or click (counted from the first delivery for an
    /// address that never engaged) makes an address inactive.
    pub after: Duration,
    /// Only an address delivered at least this many messages (across every campaign of the
    /// store) can be inactive; default 3.
    pub min_delivered: u32,
}

/// Checks `[audience]` of campaign `own_id`.
pub(crate) fn validate_audience(
    ctx: &Ctx,
    raw: &RawAudience,
    own_id: &str,
) -> Result<AudienceSettings, ConfigError> {
    let mut exclude_campaigns = Vec::new();
    for (n, id) in raw.exclude_campaigns.iter().enumerate() {
        let key = format!("audience.exclude_campaigns[{n}]");
        check_other_id(ctx, &key, id, own_id)?;
        exclude_campaigns.push(id.clone());
    }
    let resend = match &raw.resend {
        Some(resend) => Some(validate_resend(ctx, resend, own_id)?),
        None => None,
    };
    let inactive = match &raw.inactive_after {
        Some(after) => {
            let after = parse_duration(ctx, "audience.inactive_after", after)?;
            let min = raw
                .inactive_min_delivered
                .unwrap_or(i64::from(DEFAULT_INACTIVE_MIN_DELIVERED));
            ctx.range("audience.inactive_min_delivered", min, 1, 10_000)?;
            let min_delivered = u32::try_from(min).unwrap_or(1); // invariant: range-checked
            Some(InactiveSettings {
                after,
                min_delivered,
            })
        }
        None if raw.inactive_min_delivered.is_some() => {
            return Err(ConfigError::Missing {
                file: ctx.file.clone(),
                key: "audience.inactive_after".to_owned(),
                why: "audience.inactive_min_delivered is set",
            })
        }
        None => None,
    };
    Ok(AudienceSettings {
        exclude_campaigns,
        resend,
        inactive,
    })
}

/// Checks `resend`.
fn validate_resend(
    ctx: &Ctx,
    raw: &RawResend,
    own_id: &str,
) -> Result<ResendSettings, ConfigError> {
    check_other_id(ctx, "audience.resend.campaign", &raw.campaign, own_id)?;
    let not = match raw.not.trim() {
        "opened" => Engaged::Opened,
        "clicked" => Engaged::Clicked,
        other => return Err(ctx.bad("audience.resend.not", other, "\"opened\" or \"clicked\"")),
    };
    let after = match &raw.after {
        Some(after) if matches!(after.trim(), "0" | "0s" | "0h" | "0d") => Duration::ZERO,
        Some(after) => parse_duration(ctx, "audience.resend.after", after)?,
        None => Duration::ZERO,
    };
    Ok(ResendSettings {
        campaign: raw.campaign.clone(),
        not,
        after,
    })
}

/// A campaign id named by `key`: well formed and not the campaign itself.
fn check_other_id(ctx: &Ctx, key: &str, id: &str, own_id: &str) -> Result<(), ConfigError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if id.is_empty() || id.len() > 64 || !id.chars().all(ok_char) {
        return Err(ctx.bad(key, id, "a campaign id (1 to 64 of A-Z a-z 0-9 . _ -)"));
    }
    if id == own_id {
        return Err(ctx.bad(key, id, "another campaign than this one (campaign.id)"));
    }
    Ok(())
}
