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
pub mod messages;
pub mod metrics;
pub mod openapi;
pub mod problem;

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
    /// The transactional lane (`[api] transactional`), when configured.
    pub transactional: Option<crate::transactional::TxLane>,
    /// What renders `/metrics`, when the server keeps metrics.
    pub metrics: Option<metrics::RenderMetrics>,
}

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
            transactional: None,
            metrics: None,
        }
    }

    /// The tokens callers may use.
    pub fn tokens(&self) -> Vec<ApiToken> {
        self.settings.tokens.clone()
    }
}

/// Every route of the API, on `state`.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/health", get(health))
        .route("/api/openapi.json", get(openapi_json))
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
