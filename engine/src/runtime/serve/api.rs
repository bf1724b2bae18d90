//! The API of `volley serve`: its listener, and what the API asks of the server (live status
//! through the host, the settings of a campaign for its events, report and verdict).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::super::host::Host;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::api::{ApiState, SettingsLookup};
use crate::cluster::{CampaignDocument, DocumentFile};
use crate::config::{load_campaign_for_reading, ApiSettings, CampaignSettings, ServeSettings};
use crate::store::{DocumentState, Store, StoreLocation};
use crate::Error;

/// Starts the API on `[api] bind`, on `tasks`, until `cancel`; returns where it listens.
pub(super) async fn start(
    api: &ApiSettings,
    serve: &ServeSettings,
    (store, host, control): (&Store, &Arc<Host>, crate::api::control::SharedControl),
    (clock, transactional): (&crate::model::Clock, Option<crate::transactional::TxLane>),
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
    let providers = crate::api::providers::ProviderState::new(
        store,
        serve.providers.clone(),
        api.max_body,
        clock.clone(),
    )?;
    let source = super::MetricsSource::new(host.clone(), store.clone());
    let render: crate::api::metrics::RenderMetrics = Arc::new(move || source.render());
    if let Some(bind) = api.metrics_bind {
        start_metrics(bind, api, render.clone(), tasks, cancel).await?;
    }
    let mut state = ApiState::new(store.clone(), api.clone())
        .with_providers(providers)
        .with_control(host.handler())
        .with_campaigns(settings_lookup(
            serve.campaigns.clone(),
            serve.store.clone(),
            store.clone(),
        ));
    state.transactional = transactional;
    state.metrics = Some(render);
    state.control_campaigns = Some(control);
    tasks.spawn(crate::api::serve(
        listener,
        state,
        cancel.clone().cancelled_owned(),
    ));
    tracing::info!(addr = ?addr, tokens = api.tokens.len(), "API listening");
    Ok(addr)
}

/// Serves `/metrics` without a token on `[api] metrics_bind`, on `tasks`, until `cancel`.
async fn start_metrics(
    bind: SocketAddr,
    api: &crate::config::ApiSettings,
    render: crate::api::metrics::RenderMetrics,
    tasks: &TaskTracker,
    cancel: &CancellationToken,
) -> Result<(), Error> {
    let listener = TcpListener::bind(bind)
        .await
        .map_err(|source| Error::Listen { addr: bind, source })?;
    let limits = crate::tracking::TrackingLimits {
        header_timeout: api.header_timeout,
        idle_timeout: api.idle_timeout,
        max_connections: api.max_connections,
        ..crate::tracking::TrackingLimits::default()
    };
    tasks.spawn(crate::api::metrics::serve_metrics(
        listener,
        render,
        limits,
        cancel.clone().cancelled_owned(),
    ));
    tracing::info!(addr = %bind, "metrics listening (no token)");
    Ok(())
}

/// The settings of a campaign (or of an edition's campaign) by id, read without secrets:
/// from the serve file's campaign files, then from the published documents.
fn settings_lookup(files: Vec<PathBuf>, location: StoreLocation, store: Store) -> SettingsLookup {
    Arc::new(move |id: &str| {
        let matches =
            |campaign: &str| campaign == id || crate::recurring::is_edition_of(id, campaign);
        for file in &files {
            if let Ok(settings) = load_campaign_for_reading(file, location.folder()) {
                if matches(&settings.id) {
                    return Some(settings);
                }
            }
        }
        published_settings(&store, &location, &matches)
    })
}

/// The settings of the published campaign `matches` accepts: its document materialised in a
/// folder of its own (gone once loaded) and loaded for reading.
fn published_settings(
    store: &Store,
    location: &StoreLocation,
    matches: &dyn Fn(&str) -> bool,
) -> Option<CampaignSettings> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
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
            let document = CampaignDocument::from_json(&record.id, &record.document).ok()?;
            let files: Vec<DocumentFile> = documents
                .document_files(&document.id)
                .ok()?
                .into_iter()
                .map(|(name, body)| DocumentFile { name, body })
                .collect();
            let dir = std::env::temp_dir().join(format!(
                "volley-api-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let loaded = crate::cluster::materialise(&document, &files, &dir)
                .ok()
                .and_then(|file| load_campaign_for_reading(&file, None).ok())
                .map(|mut settings| {
                    settings.store = location.clone();
                    settings
                });
            let _ = std::fs::remove_dir_all(&dir);
            return loaded;
        }
    }
    None
}
