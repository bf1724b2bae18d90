//! Scheduled campaigns in the store: the edition a `volley send` sends now, and which
//! campaign a name means (itself, or its latest edition).

use crate::config::CampaignSettings;
use crate::store::Store;
use crate::Error;

/// Turns a scheduled campaign's settings into those of its edition due at `now` (its id
/// becomes the edition's); one-off campaigns are left as they are.
pub fn apply_schedule(
    settings: &mut CampaignSettings,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), Error> {
    let Some(schedule) = &settings.schedule else {
        return Ok(());
    };
    let rfc3339 =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    match crate::recurring::due(&settings.id, schedule, now) {
        crate::recurring::Due::Edition(edition) => {
            settings.id = edition.id;
            Ok(())
        }
        crate::recurring::Due::Missed { edition, next } => Err(Error::NoEditionDue {
            campaign: settings.id.clone(),
            missed: Some(edition.id),
            next: next.map(rfc3339),
        }),
        crate::recurring::Due::Waiting { next } => Err(Error::NoEditionDue {
            campaign: settings.id.clone(),
            missed: None,
            next: next.map(rfc3339),
        }),
    }
}

/// The campaign `id` names in `store`: itself, or for a scheduled campaign its latest edition.
pub fn resolve_campaign(store: &Store, id: &str) -> Result<String, Error> {
    Ok(latest_edition(store, id)?.unwrap_or_else(|| id.to_owned()))
}

/// The id of the latest edition of campaign `id` in `store`, when it has editions and `id`
/// itself is not a campaign there.
pub(crate) fn latest_edition(store: &Store, id: &str) -> Result<Option<String>, Error> {
    if store.counts(id)?.is_some() {
        return Ok(None);
    }
    Ok(store
        .campaigns()?
        .into_iter()
        .filter(|c| crate::recurring::is_edition_of(c, id))
        .max())
}
