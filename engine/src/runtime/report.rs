//! `volley report` and `volley ab decide`: a campaign's report, built from the store or, while
//! another process owns the store, by that process over its control socket.

use crate::config::CampaignSettings;
use crate::control::{self, Request, Response};
use crate::model::now_millis;
use crate::report::{self, Report, ReportSpec};
use crate::store::{Store, StoreError};
use crate::Error;

/// The report of the campaign in `settings` (its latest edition when scheduled), listing the
/// `top` largest domains.
pub async fn report(settings: &CampaignSettings, top: usize) -> Result<Report, Error> {
    let not_loaded = || Error::NotLoaded {
        campaign: settings.id.clone(),
        store: settings.store.shown(),
    };
    if !settings.store.may_exist() {
        return Err(not_loaded());
    }
    let spec = ReportSpec::for_campaign(settings, top);
    match Store::open_at(&settings.store) {
        Ok(store) => {
            if store
                .counts(&super::resolve_campaign(&store, &settings.id)?)?
                .is_none()
            {
                return Err(not_loaded());
            }
            super::blocking("report task", move || build_resolved(&store, spec)).await?
        }
        Err(StoreError::Locked { .. }) => {
            let folder = settings.store.shown();
            match control::request(&folder, &Request::Report { spec }).await? {
                Response::Report { report } => Ok(*report),
                Response::Error { message } => Err(Error::Remote(message)),
                _ => Err(Error::Remote(
                    "unexpected answer to a report request".to_owned(),
                )),
            }
        }
        Err(other) => Err(other.into()),
    }
}

/// Builds the report of `spec.campaign`, or of its latest edition when it has editions.
pub(crate) fn build_resolved(store: &Store, mut spec: ReportSpec) -> Result<Report, Error> {
    spec.campaign = super::resolve_campaign(store, &spec.campaign)?;
    Ok(report::build(store, &spec, now_millis())?)
}
