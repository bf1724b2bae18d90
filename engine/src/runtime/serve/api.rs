//! The API of `volley serve`: its listener, and what the API asks of the server (live status
//! through the host, the variant ids of a campaign for its events).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::super::host::Host;
use crate::api::{ApiState, VariantIds};
use crate::config::{load_campaign_for_reading, ApiSettings, ServeSettings, MAIN_VARIANT};
use crate::store::{DocumentState, Store, StoreLocation};
use crate::Error;

/// Starts the API on `[api] bind`, on `tasks`, until `cancel`; returns where it listens.
pub(super) async fn start(
    api: &ApiSettings,
    serve: &ServeSettings,
    (store, host): (&Store, &Arc<Host>),
    tasks: &TaskTracker,
    cancel: &CancellationToken,
) -> Result<Option<SocketAddr>, Error> {
    let listener = TcpListener::bind(api.bind)
        .await
        .map_err(|source| Error::Listen {
            addr: api.bind,
            source,
        })?;
    let addr = listener.local_addr().ok();
    let state = ApiState::new(store.clone(), api.clone())
        .with_control(host.handler())
        .with_variants(variant_ids(
            serve.campaigns.clone(),
            serve.store.clone(),
            store.clone(),
        ));
    tasks.spawn(crate::api::serve(
        listener,
        state,
        cancel.clone().cancelled_owned(),
    ));
    tracing::info!(addr = ?addr, tokens = api.tokens.len(), "API listening");
    Ok(addr)
}

/// The variant ids of a campaign (or edition) by id: from the serve file's campaign files,
/// then from the published documents; `main` alone when neither has it.
fn variant_ids(files: Vec<PathBuf>, location: StoreLocation, store: Store) -> VariantIds {
    Arc::new(move |id: &str| {
        let matches =
            |campaign: &str| campaign == id || crate::recurring::is_edition_of(id, campaign);
        for file in &files {
            if let Ok(settings) = load_campaign_for_reading(file, location.folder()) {
                if matches(&settings.id) {
                    return settings.variant_ids();
                }
            }
        }
        published_variants(&store, &matches).unwrap_or_else(|| vec![MAIN_VARIANT.to_owned()])
    })
}

/// The variant ids of the published campaign `matches` accepts, from its document's TOML.
fn published_variants(store: &Store, matches: &dyn Fn(&str) -> bool) -> Option<Vec<String>> {
    let documents = store.documents()?;
    for state in [
        DocumentState::Active,
        DocumentState::Paused,
        DocumentState::Cancelled,
        DocumentState::Done,
    ] {
        for record in documents.documents_in(state).ok()? {
            if !matches(&record.id) {
                continue;
            }
            let document =
                crate::cluster::CampaignDocument::from_json(&record.id, &record.document).ok()?;
            let table: toml::Table = document.campaign_toml.parse().ok()?;
            let ids: Vec<String> = table
                .get("variant")
                .and_then(toml::Value::as_array)
                .map(|variants| {
                    variants
                        .iter()
                        .filter_map(|v| v.get("id")?.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            return Some(if ids.is_empty() {
                vec![MAIN_VARIANT.to_owned()]
            } else {
                ids
            });
        }
    }
    None
}
