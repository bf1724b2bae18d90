//! Reading a campaign handed to the cluster from a machine that has only the database's
//! address (issue 19): `volley status`, `report`, `events` and `ab decide` given a campaign
//! id instead of a file take the settings they need (the name, the variants, `[ab]`) from the
//! campaign's published document, written out into a folder of the caller's choosing and
//! loaded with the normal loader (secrets not read).

use crate::cluster::{self, CampaignDocument, DocumentFile};
use crate::config::{load_campaign_for_reading, CampaignSettings};
use crate::store::{Store, StoreLocation};
use crate::Error;
use std::path::Path;

/// The settings of campaign `id` as published on the store at `store` (a `postgresql://`
/// address), for reading: its document is materialised under `dir` (which must outlive the
/// settings' use: the templates are read from there) and loaded with the store set to
/// `store`. An unknown id, or a store that keeps no documents, is a clear error.
pub fn published_for_reading(
    store: &Path,
    id: &str,
    dir: &Path,
) -> Result<CampaignSettings, Error> {
    let location = StoreLocation::parse(store);
    let opened = Store::open_at(&location)?;
    let not_published = |known: Vec<String>| Error::NotPublished {
        campaign: id.to_owned(),
        store: location.shown(),
        known,
    };
    let Some(documents) = opened.documents() else {
        return Err(not_published(Vec::new()));
    };
    let Some(record) = documents.document(id)? else {
        let mut known = Vec::new();
        for state in [
            crate::store::DocumentState::Active,
            crate::store::DocumentState::Paused,
            crate::store::DocumentState::Cancelled,
            crate::store::DocumentState::Done,
        ] {
            known.extend(documents.documents_in(state)?.into_iter().map(|r| r.id));
        }
        known.sort();
        return Err(not_published(known));
    };
    let document = CampaignDocument::from_json(&record.id, &record.document)?;
    let files: Vec<DocumentFile> = documents
        .document_files(&document.id)?
        .into_iter()
        .map(|(name, body)| DocumentFile { name, body })
        .collect();
    let file = cluster::materialise(&document, &files, dir)?;
    drop(opened);
    Ok(load_campaign_for_reading(&file, Some(store))?)
}
