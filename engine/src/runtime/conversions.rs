//! `volley conversions import`: a shop's orders recorded against a campaign, attributed to
//! its delivered recipients within the campaign's attribution window.

pub use crate::campaign::ConversionImport;
use crate::campaign::{import_conversions, Attributor, ConversionImportError};
use crate::config::CampaignSettings;
use crate::model::now_millis;
use crate::store::Store;
use crate::Error;
use std::path::Path;

/// Imports the orders CSV at `path` into the campaign `settings` describe (its store must be
/// free: a sled folder held by a running send or `volley serve` fails with a clear error).
pub fn conversions_import(
    settings: &CampaignSettings,
    path: &Path,
) -> Result<ConversionImport, Error> {
    let store = Store::open_at(&settings.store)?;
    let campaign = super::resolve_campaign(&store, &settings.id)?;
    if store.counts(&campaign)?.is_none() {
        return Err(Error::NotLoaded {
            campaign: settings.id.clone(),
            store: settings.store.shown(),
        });
    }
    let attributor = Attributor::read(&store, &campaign, settings.conversions.window)?;
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let name = path.display().to_string();
    let currency = settings.conversions.currency.as_deref();
    let reader = std::io::BufReader::new(file);
    import_conversions(
        &store,
        &campaign,
        reader,
        &name,
        &attributor,
        currency,
        now_millis(),
    )
    .map_err(|error| match error {
        ConversionImportError::Store(error) => error.into(),
        other => io(std::io::Error::other(other.to_string())),
    })
}
