//! `GET /metrics`: the process's metrics (the `metrics` module) in the OpenMetrics text
//! format, which Prometheus scrapes. On the API listener it needs a `read` token; with
//! `[api] metrics_bind` it is also served on a listener of its own without a token (for a
//! scraper on loopback), which answers nothing else.

use std::future::Future;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use super::auth::{Caller, NeedsRead};
use super::problem::{internal, Problem};
use super::ApiState;
use crate::tracking::TrackingLimits;

/// Renders the metrics text (reads the store: called off the async workers).
pub type RenderMetrics = Arc<dyn Fn() -> String + Send + Sync>;

/// The OpenMetrics media type.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `/metrics` on the API (a `read` token).
pub fn routes() -> Router<ApiState> {
    Router::new().route("/metrics", get(metrics))
}

/// The server's metrics.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "meta",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The metrics, OpenMetrics text", content_type = "application/openmetrics-text"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the `read` scope", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn metrics(
    _caller: Caller<NeedsRead>,
    State(state): State<ApiState>,
) -> Result<Response, Problem> {
    let render = state
        .metrics
        .clone()
        .ok_or_else(|| Problem::not_found("this server keeps no metrics"))?;
    rendered(render).await
}

/// The metrics as a response.
async fn rendered(render: RenderMetrics) -> Result<Response, Problem> {
    let text = tokio::task::spawn_blocking(move || render())
        .await
        .map_err(|e| internal("rendering the metrics", &e))?;
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS))],
        text,
    )
        .into_response())
}

/// Serves `/metrics` without a token on `listener` (`[api] metrics_bind`) until `shutdown`
/// resolves, with the API's connection limits; any other path is 404.
pub async fn serve_metrics(
    listener: TcpListener,
    render: RenderMetrics,
    limits: TrackingLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let router = Router::new()
        .route(
            "/metrics",
            get(|State(render): State<RenderMetrics>| async move { rendered(render).await }),
        )
        .fallback(|| async { Problem::not_found("only /metrics is served here") })
        .with_state(render);
    crate::tracking::serve_http(listener, router, &limits, shutdown).await;
}
