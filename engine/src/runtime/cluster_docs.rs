//! Campaigns handed to the cluster on a PostgreSQL store (issue 19): publishing a campaign's
//! document after its list is loaded, reading the published ones back on a node (materialised
//! under `<local_dir>/cluster/<id>/`, secrets checked), and marking a finished one done.

use super::Campaign;
use crate::cluster::{self, CampaignDocument, DocumentFile};
use crate::config::{load_campaign_in, CampaignSettings};
use crate::store::{DocumentRecord, DocumentState, Store, StoreLocation};
use crate::Error;
use std::sync::OnceLock;

/// This process's name as a lease owner and publisher.
static NODE: OnceLock<String> = OnceLock::new();

/// This process's name: `<host>-<pid>` for `volley serve`, `send-<host>-<pid>` otherwise.
pub(crate) fn node_name() -> &'static str {
    NODE.get_or_init(|| {
        format!(
            "send-{}-{}",
            crate::cluster::host_name(),
            std::process::id()
        )
    })
}

/// Names this process as a serve node (`<host>-<pid>`), unless it was named already.
pub(crate) fn name_serve_node() {
    let _ = NODE.set(format!(
        "{}-{}",
        crate::cluster::host_name(),
        std::process::id()
    ));
}

/// Publishes `campaign`'s document on a store shared by a cluster (nothing to do on sled,
/// whose documents are the API's, or for a campaign that came from a document); returns
/// whether the stored document changed.
pub(crate) fn publish(campaign: &Campaign, store: &Store) -> Result<bool, Error> {
    let settings = campaign.settings();
    if store.cluster().is_none() {
        return Ok(false);
    }
    let Some(documents) = store.documents() else {
        return Ok(false);
    };
    if cluster::is_materialised(&settings.file) {
        return Ok(false);
    }
    let text = std::fs::read_to_string(&settings.file).map_err(|source| Error::Io {
        path: settings.file.clone(),
        source,
    })?;
    let (document, files) = CampaignDocument::build(settings, &text)?;
    let files: Vec<(String, Vec<u8>)> = files.into_iter().map(|f| (f.name, f.body)).collect();
    let record = DocumentRecord {
        id: document.id.clone(),
        document: document.to_json(),
        state: DocumentState::Active,
        published_at: 0,
        published_by: node_name().to_owned(),
    };
    let changed = documents.publish_document(&record, &files)?;
    if changed {
        tracing::info!(campaign = %document.id, files = files.len(), "campaign published to the cluster");
    }
    Ok(changed)
}

/// Marks the document of one-off campaign `id` done once every recipient is in a final
/// state (a scheduled campaign's document stays active: it has more editions to come).
pub(crate) fn finish_if_done(store: &Store, id: &str) -> Result<(), Error> {
    let Some(documents) = store.documents() else {
        return Ok(());
    };
    let Some(counts) = store.counts(id)? else {
        return Ok(());
    };
    if counts.pending + counts.deferred + counts.held + counts.waiting > 0 {
        return Ok(());
    }
    let Some(record) = documents.document(id)? else {
        return Ok(());
    };
    let scheduled = CampaignDocument::from_json(id, &record.document).is_ok_and(|d| d.scheduled);
    if record.state == DocumentState::Active && !scheduled {
        documents.set_document_state(id, DocumentState::Done)?;
        tracing::info!(campaign = id, "campaign done: its document is marked done");
    }
    Ok(())
}

/// A published campaign as a node sees it.
pub(crate) struct Published {
    /// The document's id (its campaign's).
    pub(crate) id: String,
    /// Its digest (a new one means a changed document).
    pub(crate) digest: String,
    /// Its settings, loaded from the materialised file; or why this node cannot send it.
    pub(crate) settings: Result<CampaignSettings, String>,
}

/// Reads the active document `record` on this node: materialises it under `location`'s local
/// folder, checks its secrets and loads it. `known` is the digest this node has loaded
/// already (then `None` comes back: nothing changed).
pub(crate) fn read_published(
    store: &Store,
    location: &StoreLocation,
    record: &DocumentRecord,
    known: Option<&str>,
) -> Option<Published> {
    let document = match CampaignDocument::from_json(&record.id, &record.document) {
        Ok(document) => document,
        Err(error) => {
            return Some(Published {
                id: record.id.clone(),
                digest: String::new(),
                settings: Err(error.to_string()),
            })
        }
    };
    if known == Some(document.digest.as_str()) {
        return None;
    }
    let settings = load_published(store, location, &document).map_err(|e| e.to_string());
    Some(Published {
        id: record.id.clone(),
        digest: document.digest,
        settings,
    })
}

/// Materialises `document` and loads it as this node's campaign on `location`.
fn load_published(
    store: &Store,
    location: &StoreLocation,
    document: &CampaignDocument,
) -> Result<CampaignSettings, Error> {
    cluster::check_secrets(document, node_name())?;
    let local = location.local_dir().ok_or_else(|| Error::Io {
        path: location.to_string().into(),
        source: std::io::Error::other("no local folder for campaign documents ([store] local_dir)"),
    })?;
    let files = documents_of(store)?
        .document_files(&document.id)?
        .into_iter()
        .map(|(name, body)| DocumentFile { name, body })
        .collect::<Vec<_>>();
    let file = cluster::materialise(document, &files, local)?;
    Ok(load_campaign_in(&file, location)?)
}

/// The store's documents, or an error naming the store when it keeps none.
fn documents_of(store: &Store) -> Result<&dyn crate::store::CampaignDocuments, Error> {
    store.documents().ok_or_else(|| Error::Io {
        path: store.path().to_owned(),
        source: std::io::Error::other("this store keeps no campaign documents"),
    })
}
