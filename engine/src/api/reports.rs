//! A campaign's report and its A/B verdict over HTTP: `GET /api/campaigns/{id}/report`
//! (`read`) and `POST /api/campaigns/{id}/ab/decide` (`send`), built like `volley report` and
//! `volley ab decide` from the store's counters. The engine gives facts: a verdict's reason
//! is the structured [`crate::ab::Reason`], which the CLI words for people.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

use super::auth::{Caller, NeedsRead, NeedsSend};
use super::campaigns::resolve;
use super::problem::{internal, Problem};
use super::{blocking, ApiState};
use crate::model::{format_millis, now_millis};
use crate::report::{self, Report, ReportSpec};

/// The report routes.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/campaigns/{id}/report", get(report_of))
        .route("/api/campaigns/{id}/ab/decide", post(decide))
}

/// Domains the report lists at most (as `volley report`'s default).
const TOP_DOMAINS: usize = 10;

/// The report of campaign `id` (its latest edition when scheduled), listing `top` domains.
async fn build(state: &ApiState, id: String, top: usize) -> Result<Report, Problem> {
    let store = state.store.clone();
    let lookup = state.campaigns.clone();
    blocking(move || {
        let campaign = resolve(&store, &id)?;
        let settings = lookup.and_then(|find| find(&campaign)).ok_or_else(|| {
            Problem::not_found(format!(
                "campaign {id} is in the store but this server does not run it: its \
                     variants and A/B test are unknown here"
            ))
        })?;
        let mut spec = ReportSpec::for_campaign(&settings, top);
        spec.campaign = campaign;
        report::build(&store, &spec, now_millis()).map_err(|e| internal("building a report", &e))
    })
    .await?
}

/// A campaign's report.
#[utoipa::path(
    get,
    path = "/api/campaigns/{id}/report",
    operation_id = "campaign_report",
    tag = "campaigns",
    description = "Needs `read`. The campaign's report as `volley report --format json` gives it: \
        counts, rates, per variant and per domain, the A/B test; a verdict's reason as a \
        structured value.",
    params(("id" = String, Path, description = "The campaign (or edition) id")),
    responses(
        (status = 200, description = "The report", body = Object),
        (status = 401, description = "No or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `read`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such campaign on this server", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn report_of(
    _caller: Caller<NeedsRead>,
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Report>, Problem> {
    build(&state, id, TOP_DOMAINS).await.map(Json)
}

/// What `POST …/ab/decide` answers: the verdict, then where the test stands.
#[derive(Debug, Serialize)]
struct DecideJson {
    campaign: String,
    mode: String,
    #[serde(flatten)]
    verdict: crate::ab::Verdict,
    held: u64,
    decide_after: Option<String>,
    decision: Option<report::Decision>,
    /// The holdout's own entry, as `volley ab decide --json` gives it.
    #[serde(skip_serializing_if = "Option::is_none")]
    holdout: Option<report::HoldoutRow>,
}

/// The verdict of a campaign's A/B test on the numbers so far.
#[utoipa::path(
    post,
    path = "/api/campaigns/{id}/ab/decide",
    operation_id = "ab_decide",
    tag = "campaigns",
    description = "Needs `send`. The verdict of the campaign's A/B test on the numbers so \
        far, as `volley ab decide --json` gives it, and where the test stands (held \
        recipients, when the remainder is decided, the decision once taken).",
    params(("id" = String, Path, description = "The campaign (or edition) id")),
    responses(
        (status = 200, description = "The verdict", body = Object),
        (status = 401, description = "No or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `send`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such campaign on this server", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The campaign has no A/B test, or no numbers yet", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn decide(
    _caller: Caller<NeedsSend>,
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, Problem> {
    let report = build(&state, id.clone(), 0).await?;
    let Some(ab) = report.ab else {
        return Err(Problem::conflict(format!(
            "campaign {id} has no A/B test (two or more [[variant]] entries), or no numbers yet"
        )));
    };
    let json = DecideJson {
        campaign: report.campaign,
        mode: ab.mode,
        verdict: ab.verdict,
        held: ab.held,
        decide_after: ab.decide_after.map(format_millis),
        decision: ab.decision,
        holdout: report.holdout,
    };
    serde_json::to_value(&json)
        .map(Json)
        .map_err(|e| internal("writing a verdict", &e))
}
