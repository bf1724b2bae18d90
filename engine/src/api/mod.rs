//! The authenticated HTTP API of `volley serve` (`[api]` in its file): campaigns, their lists,
//! status, reports and events, the suppression list, A/B decisions; JSON in and out, errors
//! as RFC 9457 problem documents ([`Problem`]) naming the field at fault, the OpenAPI
//! document generated from the code ([`openapi`]) at `/api/openapi.json`.
//!
//! ```text
//! request ─► limits (connections, head size and time, idle) ─► route ─► Caller<scope> (token)
//!         ─► bounded body ─► handler (store, or the server's campaign control) ─► JSON | problem
//! ```
//!
//! Every route but `/api/health` and `/api/openapi.json` needs a bearer token of the tokens
//! file with the route's scope ([`auth`]). Connections are handled like the tracking
//! server's: bounded in number, head size and time, and idle time; bodies by `[api]
//! max_body`, uploads by `max_upload`.

pub mod auth;
pub mod body;
pub mod campaigns;
pub mod control;
pub mod messages;
pub mod metrics;
pub mod openapi;
pub mod problem;
pub mod providers;
pub mod reports;
pub mod suppressions;
pub mod upload;

use std::future::Future;
use std::sync::Arc;

use axum::http::{header, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use utoipa::ToSchema;

use crate::config::{ApiSettings, ApiToken};
use crate::store::Store;
use crate::tracking::TrackingLimits;

pub use auth::{Caller, NeedsAdmin, NeedsRead, NeedsSend, Scope};
pub use problem::{FieldError, Problem};

/// What every handler of the API shares. Cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    /// The server's store.
    pub store: Store,
    /// `[api]`: limits and tokens.
    pub settings: Arc<ApiSettings>,
    /// `[providers.*]`: the provider webhooks served beside the API (none: not mounted).
    pub providers: Option<providers::ProviderState>,
    /// The store owner's answers (the server's host): live status of the campaigns it
    /// sends. Without it, status comes from the store alone.
    pub control: Option<crate::control::Handler>,
    /// The settings of a campaign (or of the campaign of an edition) the server runs, read
    /// without their secrets: its variants, its A/B test (for events, reports, verdicts).
    pub campaigns: Option<SettingsLookup>,
    /// The transactional lane (`[api] transactional`), when configured.
    pub transactional: Option<crate::transactional::TxLane>,
    /// What renders `/metrics`, when the server keeps metrics.
    pub metrics: Option<metrics::RenderMetrics>,
    /// Creates, loads, starts, pauses, resumes and cancels campaigns (the server's).
    pub control_campaigns: Option<control::SharedControl>,
}

/// Finds the settings of a campaign (or of the campaign of an edition) by id, read without
/// secrets; `None` when the server does not run it. Called on the blocking pool.
pub type SettingsLookup =
    Arc<dyn Fn(&str) -> Option<crate::config::CampaignSettings> + Send + Sync>;

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("bind", &self.settings.bind)
            .finish_non_exhaustive()
    }
}

impl ApiState {
    /// The state of an API on `store` with `settings`.
    pub fn new(store: Store, settings: ApiSettings) -> ApiState {
        ApiState {
            store,
            settings: Arc::new(settings),
            providers: None,
            control: None,
            campaigns: None,
            transactional: None,
            metrics: None,
            control_campaigns: None,
        }
    }

    /// This state with the provider webhooks of `providers` mounted (`/api/providers/…`).
    pub fn with_providers(mut self, providers: providers::ProviderState) -> ApiState {
        self.providers = Some(providers);
        self
    }

    /// Answers live status through `control` (the store owner's handler).
    pub fn with_control(mut self, control: crate::control::Handler) -> ApiState {
        self.control = Some(control);
        self
    }

    /// Finds the campaigns' settings with `campaigns`.
    pub fn with_campaigns(mut self, campaigns: SettingsLookup) -> ApiState {
        self.campaigns = Some(campaigns);
        self
    }

    /// The tokens callers may use.
    pub fn tokens(&self) -> Vec<ApiToken> {
        self.settings.tokens.clone()
    }
}

/// Every route of the API, on `state`.
pub fn router(state: ApiState) -> Router {
    let webhooks = match &state.providers {
        Some(providers) => providers::routes(providers.clone()),
        None => Router::new(),
    };
    Router::new()
        .merge(webhooks)
        .route("/api/health", get(health))
        .route("/api/openapi.json", get(openapi_json))
        .merge(suppressions::routes())
        .merge(campaigns::routes())
        .merge(control::routes())
        .merge(reports::routes())
        .merge(messages::routes())
        .merge(metrics::routes())
        .fallback(unknown_path)
        .with_state(state)
}

/// Serves the API of `state` on `listener` until `shutdown` resolves; then lets the requests
/// in flight finish. HTTP/1.1 only (TLS and HTTP/2 belong to a proxy in front).
pub async fn serve(
    listener: TcpListener,
    state: ApiState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let settings = &state.settings;
    let limits = TrackingLimits {
        header_timeout: settings.header_timeout,
        idle_timeout: settings.idle_timeout,
        max_connections: settings.max_connections,
        ..TrackingLimits::default()
    };
    let router = router(state.clone());
    crate::tracking::serve_http(listener, router, &limits, shutdown).await;
}

/// Runs `work` on tokio's blocking pool (store reads and writes); a panic in it is a 500.
pub(crate) async fn blocking<R: Send + 'static>(
    work: impl FnOnce() -> R + Send + 'static,
) -> Result<R, Problem> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| problem::internal("a store task", &e))
}

/// The answer of `GET /api/health`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `ok` while the server answers.
    pub status: String,
}

/// Whether the server answers (no token needed).
#[utoipa::path(
    get,
    path = "/api/health",
    operation_id = "health",
    tag = "meta",
    security(()),
    responses((status = 200, description = "The server answers", body = Health))
)]
async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".to_owned(),
    })
}

/// This API's OpenAPI document (no token needed).
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    operation_id = "openapi",
    tag = "meta",
    security(()),
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json"))
)]
async fn openapi_json() -> Response {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let text = DOCUMENT.get_or_init(openapi::document).clone();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        text,
    )
        .into_response()
}

/// A path the API does not have.
async fn unknown_path(uri: Uri) -> Problem {
    Problem::not_found(format!("no such path: {}", uri.path())).instance(uri.path().to_owned())
}
