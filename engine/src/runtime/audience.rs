//! `volley audience`: how many rows of a campaign's list the segment (`[campaign] where`)
//! and each `[audience]` rule leave out, before sending. Reads the list and the store, writes nothing. A sled store held by another
//! process (a send running) is refused with [`crate::store::StoreError::Locked`].

use std::collections::HashSet;

use crate::campaign::{Audience, Keep, RecipientReader, Rule};
use crate::config::CampaignSettings;
use crate::model::Millis;
use crate::store::Store;
use crate::Error;

/// What the rules would do to the list, in rule order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudienceReport {
    /// The campaign id.
    pub campaign: String,
    /// Valid rows of the list, duplicates of an earlier row left out (what a load accepts
    /// before the rules).
    pub rows: u64,
    /// Rows the segment (`[campaign] where`) leaves out, when the campaign has one. It
    /// applies first; the rules count what it kept.
    pub segment_removed: Option<u64>,
    /// Each rule set, in the order it applies.
    pub rules: Vec<RuleTally>,
}

impl AudienceReport {
    /// The rows the send would go to (suppressed addresses are still left out at load).
    pub fn remaining(&self) -> u64 {
        let kept = self.rows - self.segment_removed.unwrap_or(0).min(self.rows);
        self.rules.last().map_or(kept, |rule| rule.remaining)
    }
}

/// One rule's effect on what the rules before it kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleTally {
    /// The rule.
    pub rule: Rule,
    /// Rows it leaves out (of those the rules before it kept).
    pub removed: u64,
    /// Rows kept after it.
    pub remaining: u64,
}

/// Counts what the `[audience]` of `settings` does to its list at time `now`.
pub async fn audience(settings: &CampaignSettings, now: Millis) -> Result<AudienceReport, Error> {
    let settings = settings.clone();
    super::blocking("audience task", move || audience_blocking(&settings, now)).await?
}

/// [`audience`], on the calling thread.
fn audience_blocking(settings: &CampaignSettings, now: Millis) -> Result<AudienceReport, Error> {
    let rules = &settings.audience;
    let audience = if rules.is_empty() {
        Audience::default()
    } else if !settings.store.may_exist() {
        return Err(Error::Io {
            path: settings.store.shown(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no store here, so no earlier campaign for [audience] to read",
            ),
        });
    } else {
        let store = Store::open_at(&settings.store)?;
        Audience::build(&store, rules, &settings.file, now)?
    };
    let mut tallies: Vec<RuleTally> = audience
        .rules()
        .iter()
        .map(|&rule| RuleTally {
            rule,
            removed: 0,
            remaining: 0,
        })
        .collect();
    let mut seen = HashSet::new();
    let (mut rows, mut segment_removed) = (0u64, 0u64);
    let reader = RecipientReader::open(&settings.recipients)?;
    let segment = super::campaign::bind_segment(settings, reader.columns())?;
    for row in reader.flatten() {
        if !seen.insert(row.email.clone()) {
            continue;
        }
        rows += 1;
        if segment.as_ref().is_some_and(|s| !s.matches(&row.values)) {
            segment_removed += 1;
            continue;
        }
        if let Keep::Exclude(rule) = audience.keep(&row.email) {
            if let Some(tally) = tallies.iter_mut().find(|t| t.rule == rule) {
                tally.removed += 1;
            }
        }
    }
    let mut remaining = rows - segment_removed;
    for tally in &mut tallies {
        remaining -= tally.removed.min(remaining);
        tally.remaining = remaining;
    }
    Ok(AudienceReport {
        campaign: settings.id.clone(),
        rows,
        segment_removed: segment.is_some().then_some(segment_removed),
        rules: tallies,
    })
}
