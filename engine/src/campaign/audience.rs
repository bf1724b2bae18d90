//! Engagement audiences (`[audience]`): which rows of a list earlier campaigns of the same
//! store leave out at load. [`Audience::build`] reads the store once, before the list is
//! loaded; [`Audience::keep`] then decides per address, with no store access, so the loader
//! and `volley audience` (which only counts) make the same decision.
//!
//! What the store is asked, per rule:
//! - `exclude_campaigns`: the addresses in state `delivered` of each named campaign (and of
//!   each of its editions). Still known after `volley gc`.
//! - `resend`: the first campaign's delivered addresses, and its human opens and clicks from
//!   its event history (machine-made ones never count). Refused once the first campaign was
//!   collected by gc (its opens are gone), while it still has recipients to send, and before
//!   its last delivery + `after` (every recipient has had at least `after` to open it).
//! - `inactive_after`: the event history of every other campaign of the store, scanned (see
//!   [`super::audience_scan`]). Collected campaigns have no history left and are not counted.
//!
//! Addresses are compared without case.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{AudienceSettings, Engaged, ResendSettings};
use crate::model::{format_millis, Millis, RecipientState};
use crate::store::{Store, StoreError};

use super::audience_scan::{ledgers, resend_history};

/// One `[audience]` rule, in the order rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// `exclude_campaigns`: delivered by one of those campaigns.
    ExcludeCampaigns,
    /// `resend`: not delivered by the first campaign, or engaged with it.
    Resend,
    /// `inactive_after`: no human open or click for that long.
    Inactive,
}

impl Rule {
    /// The TOML key of the rule, as output names it.
    pub fn key(self) -> &'static str {
        match self {
            Rule::ExcludeCampaigns => "exclude_campaigns",
            Rule::Resend => "resend",
            Rule::Inactive => "inactive_after",
        }
    }
}

/// What [`Audience::keep`] decided for one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// The row is loaded.
    Keep,
    /// The row is left out, by the first rule that excludes it.
    Exclude(Rule),
}

/// The `[audience]` rules with what the store knew when they were built.
#[derive(Debug, Default)]
pub struct Audience {
    /// The rules set, in order.
    rules: Vec<Rule>,
    /// Addresses delivered by an `exclude_campaigns` campaign.
    excluded: HashSet<String>,
    /// Addresses the resend goes to: delivered by the first campaign and not engaged.
    resend_to: HashSet<String>,
    /// Addresses judged inactive.
    inactive: HashSet<String>,
}

/// The `[audience]` rules could not be applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AudienceError {
    /// A rule names a campaign the store does not have.
    #[error("{}: {key} = {campaign:?}: no such campaign in the store {}", file.display(), store.display())]
    UnknownCampaign {
        /// The campaign file.
        file: PathBuf,
        /// The TOML key, e.g. `audience.exclude_campaigns[1]`.
        key: String,
        /// The id named.
        campaign: String,
        /// The store (a folder, or a database's address without its password).
        store: PathBuf,
    },
    /// The resend's first campaign was collected by gc: its opens and clicks are gone.
    #[error("{}: audience.resend.campaign = {campaign:?} was collected by `volley gc`: its opens and clicks are gone, so its non-openers cannot be found", file.display())]
    Collected {
        /// The campaign file.
        file: PathBuf,
        /// The first campaign.
        campaign: String,
    },
    /// The resend's first campaign still has recipients to send (pending, deferred, held).
    #[error("{}: audience.resend.campaign = {campaign:?} is still sending ({unfinished} recipients pending, deferred or held); a resend starts once it is done", file.display())]
    StillSending {
        /// The campaign file.
        file: PathBuf,
        /// The first campaign.
        campaign: String,
        /// Its recipients not in a final state.
        unfinished: u64,
    },
    /// The resend's `after` has not passed since the first campaign's last delivery.
    #[error("{}: audience.resend: {campaign} was last delivered at {}; with after = {} this send may start at {}", file.display(), format_millis(*last_delivery), humantime::format_duration(*after), format_millis(*starts_at))]
    TooEarly {
        /// The campaign file.
        file: PathBuf,
        /// The first campaign.
        campaign: String,
        /// When its last message was delivered.
        last_delivery: Millis,
        /// `resend.after`.
        after: Duration,
        /// The first moment this send may start.
        starts_at: Millis,
    },
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Audience {
    /// Reads what `settings` needs from `store` for campaign file `file` at time `now`.
    /// Blocking (it may read every campaign's history): run it off the async workers.
    pub fn build(
        store: &Store,
        settings: &AudienceSettings,
        file: &Path,
        now: Millis,
    ) -> Result<Audience, AudienceError> {
        let mut audience = Audience::default();
        if !settings.exclude_campaigns.is_empty() {
            audience.rules.push(Rule::ExcludeCampaigns);
            audience.excluded = delivered_by(store, &settings.exclude_campaigns, file)?;
        }
        if let Some(resend) = &settings.resend {
            audience.rules.push(Rule::Resend);
            audience.resend_to = resend_audience(store, resend, file, now)?;
        }
        if let Some(inactive) = &settings.inactive {
            audience.rules.push(Rule::Inactive);
            let after = u64::try_from(inactive.after.as_millis()).unwrap_or(u64::MAX);
            let quiet_since = now.saturating_sub(after);
            audience.inactive = ledgers(store)?
                .into_iter()
                .filter(|(_, l)| {
                    l.delivered >= inactive.min_delivered && l.quiet_since() < quiet_since
                })
                .map(|(address, _)| address)
                .collect();
        }
        Ok(audience)
    }

    /// The rules set, in the order they apply.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Whether any rule is set (without one, [`Audience::keep`] keeps everyone).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether the row of `email` is loaded, or which rule (the first, in order) leaves it out.
    pub fn keep(&self, email: &str) -> Keep {
        let address = email.to_ascii_lowercase();
        for rule in &self.rules {
            let out = match rule {
                Rule::ExcludeCampaigns => self.excluded.contains(&address),
                Rule::Resend => !self.resend_to.contains(&address),
                Rule::Inactive => self.inactive.contains(&address),
            };
            if out {
                return Keep::Exclude(*rule);
            }
        }
        Keep::Keep
    }
}

/// The campaigns `id` stands for: itself, and its editions when it is scheduled.
fn campaigns_named(all: &[String], id: &str) -> Vec<String> {
    all.iter()
        .filter(|c| *c == id || is_edition_of(c, id))
        .cloned()
        .collect()
}

/// Whether `campaign` is an edition of scheduled campaign `id` (`id.YYYY-MM-DD…`), as
/// `recurring` names them (which `campaign` may not import).
fn is_edition_of(campaign: &str, id: &str) -> bool {
    campaign
        .strip_prefix(id)
        .and_then(|rest| rest.strip_prefix('.'))
        .is_some_and(|date| date.len() >= 10 && date.as_bytes()[..4].iter().all(u8::is_ascii_digit))
}

/// Every address delivered by one of `ids` (or their editions).
fn delivered_by(
    store: &Store,
    ids: &[String],
    file: &Path,
) -> Result<HashSet<String>, AudienceError> {
    let all = store.campaigns()?;
    let mut delivered = HashSet::new();
    for (n, id) in ids.iter().enumerate() {
        let named = campaigns_named(&all, id);
        if named.is_empty() {
            return Err(unknown(
                store,
                file,
                format!("audience.exclude_campaigns[{n}]"),
                id,
            ));
        }
        for campaign in named {
            for recipient in store.recipients_in(&campaign, RecipientState::Delivered)? {
                delivered.insert(recipient.record.email.to_ascii_lowercase());
            }
        }
    }
    Ok(delivered)
}

/// An [`AudienceError::UnknownCampaign`].
fn unknown(store: &Store, file: &Path, key: String, campaign: &str) -> AudienceError {
    AudienceError::UnknownCampaign {
        file: file.to_owned(),
        key,
        campaign: campaign.to_owned(),
        store: store.path().to_owned(),
    }
}

/// The addresses a resend goes to, once the first campaign is done and `after` has passed.
fn resend_audience(
    store: &Store,
    resend: &ResendSettings,
    file: &Path,
    now: Millis,
) -> Result<HashSet<String>, AudienceError> {
    let key = "audience.resend.campaign".to_owned();
    let all = store.campaigns()?;
    // A scheduled campaign's latest edition.
    let Some(first) = campaigns_named(&all, &resend.campaign).into_iter().max() else {
        return Err(unknown(store, file, key, &resend.campaign));
    };
    let counts = store
        .counts(&first)?
        .ok_or_else(|| unknown(store, file, key, &resend.campaign))?;
    let unfinished = counts.pending + counts.deferred + counts.held + counts.waiting;
    if unfinished > 0 {
        return Err(AudienceError::StillSending {
            file: file.to_owned(),
            campaign: first,
            unfinished,
        });
    }
    if store.is_collected(&first)? {
        return Err(AudienceError::Collected {
            file: file.to_owned(),
            campaign: first,
        });
    }
    let history = resend_history(store, &first, resend.not)?;
    if let Some(last_delivery) = history.last_delivery {
        let after = u64::try_from(resend.after.as_millis()).unwrap_or(u64::MAX);
        let starts_at = last_delivery.saturating_add(after);
        if now < starts_at {
            return Err(AudienceError::TooEarly {
                file: file.to_owned(),
                campaign: first,
                last_delivery,
                after: resend.after,
                starts_at,
            });
        }
    }
    let mut to = HashSet::new();
    for recipient in store.recipients_in(&first, RecipientState::Delivered)? {
        let address = recipient.record.email.to_ascii_lowercase();
        if !history.engaged.contains(&address) {
            to.insert(address);
        }
    }
    Ok(to)
}

/// Which engagement a resend's `not` is about, as the scan counts it.
pub(crate) fn counts_as(not: Engaged, click: bool) -> bool {
    match not {
        // A human click means a human saw the message: it counts as opened.
        Engaged::Opened => true,
        Engaged::Clicked => click,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editions_belong_to_their_campaign_only() {
        let all: Vec<String> = [
            "news",
            "news.2024-05-06",
            "news.2024-05-13",
            "newsletter",
            "news.x",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            campaigns_named(&all, "news"),
            ["news", "news.2024-05-06", "news.2024-05-13"]
        );
        assert_eq!(campaigns_named(&all, "newsletter"), ["newsletter"]);
        assert!(campaigns_named(&all, "may").is_empty());
    }

    #[test]
    fn the_first_rule_that_excludes_is_named_and_case_does_not_matter() {
        let audience = Audience {
            rules: vec![Rule::ExcludeCampaigns, Rule::Resend, Rule::Inactive],
            excluded: HashSet::from(["a@x.example".to_owned()]),
            resend_to: HashSet::from(["a@x.example".to_owned(), "b@x.example".to_owned()]),
            inactive: HashSet::from(["b@x.example".to_owned()]),
        };
        assert_eq!(
            audience.keep("A@x.example"),
            Keep::Exclude(Rule::ExcludeCampaigns)
        );
        assert_eq!(audience.keep("b@x.example"), Keep::Exclude(Rule::Inactive));
        assert_eq!(audience.keep("c@x.example"), Keep::Exclude(Rule::Resend));
        assert_eq!(Audience::default().keep("c@x.example"), Keep::Keep);
    }

    #[test]
    fn a_click_counts_as_an_open_but_an_open_not_as_a_click() {
        assert!(counts_as(Engaged::Opened, false));
        assert!(counts_as(Engaged::Opened, true));
        assert!(!counts_as(Engaged::Clicked, false));
        assert!(counts_as(Engaged::Clicked, true));
    }
}
