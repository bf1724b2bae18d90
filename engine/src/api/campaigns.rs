//! Campaigns over HTTP, reading (`read`): the campaigns of the store, one campaign's status
//! (the same JSON as `volley status --json`) and its events a page at a time (the same rows
//! as `volley events`), with a cursor that neither repeats nor skips an event.
//!
//! The events cursor is the time of the last event given and how many events of that
//! millisecond were given. Only events older than [`SETTLE`] are given: by then every event
//! of that millisecond is in the store (outcomes and tracking events are durable within
//! milliseconds of their time), and the store's export order within a millisecond is fixed,
//! so counting them is exact.

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Caller, NeedsRead};
use super::problem::{internal, Problem};
use super::suppressions::page_limit;
use super::{blocking, ApiState};
use crate::control::{Request, StatusReport};
use crate::model::{now_millis, Millis};
use crate::report::EventRow;
use crate::store::{Store, StoreError};

/// How old an event must be before a page gives it (milliseconds).
pub const SETTLE: Millis = 2_000;

/// The campaign routes.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/campaigns", get(list))
        .route("/api/campaigns/{id}", get(status))
        .route("/api/campaigns/{id}/events", get(events))
}

/// The campaigns of the store.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CampaignList {
    /// Their ids (a scheduled campaign's editions each have their own), in order.
    pub campaigns: Vec<String>,
}

/// The campaigns in the store.
#[utoipa::path(
    get,
    path = "/api/campaigns",
    operation_id = "list_campaigns",
    tag = "campaigns",
    description = "Needs `read`.",
    responses(
        (status = 200, description = "The campaign ids", body = CampaignList),
        (status = 401, description = "No or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `read`", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list(
    _caller: Caller<NeedsRead>,
    State(state): State<ApiState>,
) -> Result<Json<CampaignList>, Problem> {
    let store = state.store.clone();
    let mut campaigns = blocking(move || store.campaigns())
        .await?
        .map_err(|e| internal("listing campaigns", &e))?;
    campaigns.sort();
    Ok(Json(CampaignList { campaigns }))
}

/// The campaign `id`, or its latest edition when it is a scheduled one; 404 when the store
/// has neither.
pub(crate) fn resolve(store: &Store, id: &str) -> Result<String, Problem> {
    let campaigns = store
        .campaigns()
        .map_err(|e| internal("listing campaigns", &e))?;
    if campaigns.iter().any(|c| c == id) {
        return Ok(id.to_owned());
    }
    campaigns
        .into_iter()
        .filter(|c| crate::recurring::is_edition_of(c, id))
        .max()
        .ok_or_else(|| Problem::not_found(format!("no campaign {id} in the store")))
}

/// A campaign's status.
#[utoipa::path(
    get,
    path = "/api/campaigns/{id}",
    operation_id = "campaign_status",
    tag = "campaigns",
    description = "Needs `read`. The same JSON as `volley status --json`: counts by state, \
        the running send's destinations, tracking totals. For a scheduled campaign, its \
        latest edition. A campaign with a document (made over the API, or published to a \
        cluster on PostgreSQL) adds `state`: `paused`, `active`, \
        `cancelled` or `done`.",
    params(("id" = String, Path, description = "The campaign (or edition) id")),
    responses(
        (status = 200, description = "Its status", body = Object),
        (status = 401, description = "No or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `read`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such campaign", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn status(
    _caller: Caller<NeedsRead>,
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, Problem> {
    let store = state.store.clone();
    let asked = id.clone();
    let document = blocking(move || document_state(&store, &asked)).await??;
    let store = state.store.clone();
    let asked = id.clone();
    let campaign = match blocking(move || resolve(&store, &asked)).await? {
        Ok(campaign) => campaign,
        // Created over the API, its list not loaded yet: nothing counted.
        Err(_) if document.is_some() => {
            let mut json = StatusReport::empty(&id).to_json();
            json["state"] = document.into();
            return Ok(Json(json));
        }
        Err(problem) => return Err(problem),
    };
    let report = match &state.control {
        Some(control) => {
            let answer = control(Request::Status {
                campaign: campaign.clone(),
            })
            .await;
            StatusReport::from_response(answer, &campaign)
                .ok_or_else(|| Problem::not_found(format!("no campaign {id} in the store")))?
        }
        None => {
            let store = state.store.clone();
            blocking(move || from_store(&store, campaign)).await??
        }
    };
    let store = state.store.clone();
    let report = blocking(move || complete(&store, report))
        .await?
        .map_err(|e| internal("reading a campaign's status", &e))?;
    let mut json = report.to_json();
    if let Some(document) = document {
        json["state"] = document.into();
    }
    Ok(Json(json))
}

/// The state of campaign `id`'s document (`paused`, `active`, `cancelled`, `done`), when it
/// was created over the API or published to a cluster.
fn document_state(store: &Store, id: &str) -> Result<Option<&'static str>, Problem> {
    let Some(documents) = store.documents() else {
        return Ok(None);
    };
    Ok(documents
        .document(id)
        .map_err(|e| internal("reading the campaign documents", &e))?
        .map(|record| record.state.as_str()))
}

/// The status of `campaign` from the store alone (no send runs here).
fn from_store(store: &Store, campaign: String) -> Result<StatusReport, Problem> {
    let read = |e: StoreError| internal("reading a campaign's status", &e);
    let counts = store
        .counts(&campaign)
        .map_err(read)?
        .ok_or_else(|| Problem::not_found(format!("no campaign {campaign} in the store")))?;
    Ok(StatusReport {
        counts,
        next_due: store.next_due(&campaign).map_err(read)?,
        next_window: store.next_window(&campaign).map_err(read)?,
        live_from: None,
        active: false,
        destinations: Vec::new(),
        paused: None,
        tracking: store.tracking_totals(&campaign).map_err(read)?,
        connection_limits: Vec::new(),
        nodes: Vec::new(),
        webhooks: crate::webhooks::campaign_statuses(store, &campaign).map_err(read)?,
        relays: store.relay_tallies(&campaign).map_err(read)?,
        warmup: None,
        blocks: crate::report::blocks_of(store, &campaign).map_err(read)?,
        stopped: None,
        campaign,
    })
}

/// Adds what the store knows beside the running send: learned connection limits (when no
/// send carries its own) and the cluster's nodes.
fn complete(store: &Store, mut report: StatusReport) -> Result<StatusReport, StoreError> {
    if report.destinations.is_empty() {
        report.connection_limits = store.connection_limits()?;
    }
    if let Some(cluster) = store.cluster() {
        report.nodes = cluster.nodes()?;
    }
    if report.blocks.is_empty() {
        report.blocks = crate::report::blocks_of(store, &report.campaign)?;
    }
    Ok(report)
}

/// A page of a campaign's events.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventPage {
    /// The events, oldest first: the same rows as `volley events` prints.
    pub events: Vec<EventRow>,
    /// The cursor of what follows (pass it as `after`); always present: a page with no
    /// events gives the same cursor back, to ask again later.
    pub next: String,
}

/// Where a page of events starts and how long it is.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// The cursor a previous page gave as `next` (none: from the first event).
    pub after: Option<String>,
    /// Events at most (1 to 1000, default 100).
    pub limit: Option<i64>,
}

/// A point in a campaign's history: after `count` events of millisecond `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    at: Millis,
    count: u64,
}

impl Cursor {
    fn encode(self) -> String {
        data_encoding::BASE64URL_NOPAD.encode(format!("{}.{}", self.at, self.count).as_bytes())
    }

    fn decode(text: &str) -> Option<Cursor> {
        let bytes = data_encoding::BASE64URL_NOPAD
            .decode(text.trim().as_bytes())
            .ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (at, count) = text.split_once('.')?;
        Some(Cursor {
            at: at.parse().ok()?,
            count: count.parse().ok()?,
        })
    }
}

/// A page of a campaign's events.
#[utoipa::path(
    get,
    path = "/api/campaigns/{id}/events",
    operation_id = "campaign_events",
    tag = "campaigns",
    description = "Needs `read`. Pages through the campaign's history, oldest first; the \
        cursor neither repeats nor skips an event. Events show once they are two seconds old.",
    params(("id" = String, Path, description = "The campaign (or edition) id"), EventQuery),
    responses(
        (status = 200, description = "A page of events", body = EventPage),
        (status = 401, description = "No or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `read`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such campaign", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A parameter is invalid", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn events(
    _caller: Caller<NeedsRead>,
    State(state): State<ApiState>,
    Path(id): Path<String>,
    query: Result<Query<EventQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<EventPage>, Problem> {
    let Query(query) = query.map_err(|e| Problem::bad_request(Some("query"), e.body_text()))?;
    let limit = page_limit(query.limit)?;
    let cursor = match query.after.as_deref() {
        None => Cursor { at: 0, count: 0 },
        Some(text) => Cursor::decode(text).ok_or_else(|| {
            Problem::bad_field("after", "not a cursor this API gave (use a page's `next`)")
        })?,
    };
    let store = state.store.clone();
    let lookup = state.campaigns.clone();
    blocking(move || {
        let campaign = resolve(&store, &id)?;
        let variants = lookup
            .and_then(|find| find(&campaign))
            .map(|settings| settings.variant_ids())
            .unwrap_or_else(|| vec![crate::config::MAIN_VARIANT.to_owned()]);
        page(&store, &campaign, &variants, cursor, limit, now_millis())
            .map_err(|e| internal("reading a campaign's events", &e))
    })
    .await?
    .map(Json)
}

/// The page of at most `limit` events of `campaign` after `cursor`, of events older than
/// [`SETTLE`] at `now`.
fn page(
    store: &Store,
    campaign: &str,
    variants: &[String],
    cursor: Cursor,
    limit: usize,
    now: Millis,
) -> Result<EventPage, StoreError> {
    let settled = now.saturating_sub(SETTLE);
    let mut events = Vec::new();
    let mut last = cursor;
    let mut skip = cursor.count;
    for event in store.export_events(campaign, cursor.at)? {
        let event = event?;
        if event.at > settled || events.len() >= limit {
            break;
        }
        if event.at == cursor.at && skip > 0 {
            skip -= 1;
            continue;
        }
        last = if event.at == last.at {
            Cursor {
                at: last.at,
                count: last.count + 1,
            }
        } else {
            Cursor {
                at: event.at,
                count: 1,
            }
        };
        events.push(EventRow::new(campaign, variants, &event));
    }
    Ok(EventPage {
        events,
        next: last.encode(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_and_nonsense_does_not() {
        for cursor in [
            Cursor { at: 0, count: 0 },
            Cursor {
                at: 1_764_900_000_123,
                count: 17,
            },
        ] {
            assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        }
        for text in ["", "abc", "MTIz", "!!!"] {
            assert_eq!(Cursor::decode(text), None, "{text}");
        }
    }
}
