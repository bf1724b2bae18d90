//! The suppression list over HTTP: list it a page at a time (`read`), add and remove an
//! address, import a CSV (`send`). An entry is global or for one topic (issue 22): the list
//! pages through both, in address then topic order (an address's global entry first). The import takes the same CSV as `volley suppress import`
//! and follows the same rules (the same code): bad rows are listed with their line and field
//! and skipped, the rest is added.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Caller, NeedsRead, NeedsSend};
use super::body::{parse_json, read_bounded};
use super::problem::{internal, Problem};
use super::{blocking, ApiState};
use crate::campaign::{import_suppressions, normalize_address, ImportError};
use crate::model::{format_millis, now_millis, Suppression, SuppressionReason};

/// The most entries one page lists.
pub const MAX_PAGE: usize = 1000;
const DEFAULT_PAGE: usize = 100;

/// The suppression routes.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/suppressions", get(list))
        .route("/api/suppressions/import", post(import))
        .route("/api/suppressions/{address}", put(add).delete(remove))
}

/// One suppressed address.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SuppressionEntry {
    /// The address (normalised: domain in lower case, IDN as A-labels).
    pub email: String,
    /// Why: `hard_bounce`, `soft_bounces`, `complaint`, `unsubscribe` or `manual`.
    pub reason: String,
    /// When it was added (RFC 3339).
    pub at: String,
    /// The campaign that caused it, if any.
    pub campaign: Option<String>,
    /// The reply or note behind it.
    pub detail: String,
    /// The topic it keeps the address from; absent for a global entry (every campaign).
    pub topic: Option<String>,
}

impl SuppressionEntry {
    fn new(email: String, topic: Option<String>, entry: &Suppression) -> SuppressionEntry {
        SuppressionEntry {
            email,
            reason: entry.reason.as_str().to_owned(),
            at: format_millis(entry.at),
            campaign: entry.campaign.clone(),
            detail: entry.detail.clone(),
            topic,
        }
    }
}

/// A page of the suppression list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SuppressionPage {
    /// The entries, in address order.
    pub suppressions: Vec<SuppressionEntry>,
    /// The cursor of the next page (pass it as `after`); absent on the last page.
    pub next: Option<String>,
    /// With `next`, when the page ends on a topic entry: pass it as `after_topic`.
    pub next_topic: Option<String>,
}

/// Where a page starts and how long it is.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The cursor a previous page gave as `next` (none: from the start).
    pub after: Option<String>,
    /// The `next_topic` a previous page gave with `next`, if any.
    pub after_topic: Option<String>,
    /// Entries at most (1 to 1000, default 100).
    pub limit: Option<i64>,
}

/// The page size asked for, checked.
pub(crate) fn page_limit(limit: Option<i64>) -> Result<usize, Problem> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=1000).contains(&n) => Ok(usize::try_from(n).unwrap_or(DEFAULT_PAGE)),
        Some(n) => Err(Problem::bad_field(
            "limit",
            format!("{n} is out of range: 1 to {MAX_PAGE}"),
        )),
    }
}

/// A page of the suppression list.
#[utoipa::path(
    get,
    path = "/api/suppressions",
    operation_id = "list_suppressions",
    tag = "suppressions",
    description = "Needs `read`. Pages through the list in address order, an address's \
        global entry before its topic entries.",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of the list", body = SuppressionPage),
        (status = 401, description = "No or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `read`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A parameter is invalid", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list(
    _caller: Caller<NeedsRead>,
    State(state): State<ApiState>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<SuppressionPage>, Problem> {
    let Query(query) = query.map_err(|e| Problem::bad_request(Some("query"), e.body_text()))?;
    let limit = page_limit(query.limit)?;
    let store = state.store.clone();
    let (after, after_topic) = (query.after.clone(), query.after_topic.clone());
    // One more than asked: whether a next page exists.
    let mut page = blocking(move || merged_page(&store, after, after_topic, limit + 1))
        .await?
        .map_err(|e| internal("reading the suppression list", &e))?;
    let more = page.len() > limit;
    page.truncate(limit);
    let last = more.then(|| page.last()).flatten();
    Ok(Json(SuppressionPage {
        next: last.map(|e| e.email.clone()),
        next_topic: last.and_then(|e| e.topic.clone()),
        suppressions: page,
    }))
}

/// At most `limit` entries, global and topic ones merged in (address, topic) order, after
/// the cursor (`after`, `after_topic`).
fn merged_page(
    store: &crate::store::Store,
    after: Option<String>,
    after_topic: Option<String>,
    limit: usize,
) -> Result<Vec<SuppressionEntry>, crate::store::StoreError> {
    let global = store.suppressions_after(after.as_deref(), limit)?;
    let topic_after = after
        .as_deref()
        .map(|a| (a, after_topic.as_deref().unwrap_or("")));
    let topics = store.topic_suppressions_after(topic_after, limit)?;
    let mut all: Vec<SuppressionEntry> = global
        .iter()
        .map(|(address, entry)| SuppressionEntry::new(address.clone(), None, entry))
        .chain(
            topics
                .iter()
                .map(|t| SuppressionEntry::new(t.address.clone(), Some(t.topic.clone()), &t.entry)),
        )
        .collect();
    all.sort_by(|a, b| (&a.email, &a.topic).cmp(&(&b.email, &b.topic)));
    all.truncate(limit);
    Ok(all)
}

/// What to record with an address added by hand.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddSuppression {
    /// Why (default `manual`): `hard_bounce`, `soft_bounces`, `complaint`, `unsubscribe`
    /// or `manual`.
    pub reason: Option<String>,
    /// A note (default empty).
    pub detail: Option<String>,
    /// Suppress it for this topic only (default: a global entry).
    pub topic: Option<String>,
}

/// Which entry of an address `DELETE` removes.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TopicQuery {
    /// The topic whose entry goes (none: the global entry).
    pub topic: Option<String>,
}

/// A topic id given, checked.
fn topic_of(topic: Option<String>) -> Result<Option<String>, Problem> {
    match topic {
        Some(topic) if !crate::store::is_topic_id(&topic) => Err(Problem::bad_field(
            "topic",
            format!("{topic:?} is not a topic id: 1 to 64 of a-z 0-9 _ -"),
        )),
        other => Ok(other),
    }
}

/// The address of the path, normalised, or a problem naming it.
fn address_of(raw: &str) -> Result<String, Problem> {
    normalize_address(raw)
        .map(|(address, _)| address)
        .map_err(|e| Problem::bad_field("address", e.to_string()))
}

/// Suppresses one address.
#[utoipa::path(
    put,
    path = "/api/suppressions/{address}",
    operation_id = "add_suppression",
    tag = "suppressions",
    description = "Needs `send`. The body is optional.",
    params(("address" = String, Path, description = "The address to suppress")),
    request_body(content = Option<AddSuppression>, content_type = "application/json"),
    responses(
        (status = 201, description = "Added", body = SuppressionEntry),
        (status = 200, description = "It was suppressed already: its entry, unchanged", body = SuppressionEntry),
        (status = 401, description = "No or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `send`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than `max_body`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The address or a field is invalid", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn add(
    _caller: Caller<NeedsSend>,
    State(state): State<ApiState>,
    Path(raw): Path<String>,
    body: Body,
) -> Result<Response, Problem> {
    let address = address_of(&raw)?;
    let bytes = read_bounded(body, state.settings.max_body, "max_body").await?;
    let asked: AddSuppression = if bytes.iter().all(u8::is_ascii_whitespace) {
        AddSuppression::default()
    } else {
        parse_json(&bytes)?
    };
    let reason = match asked.reason.as_deref() {
        None => SuppressionReason::Manual,
        Some(text) => SuppressionReason::parse(text).ok_or_else(|| {
            Problem::bad_field(
                "reason",
                format!("unknown reason {text:?}: hard_bounce, soft_bounces, complaint, unsubscribe or manual"),
            )
        })?,
    };
    let topic = topic_of(asked.topic)?;
    let entry = Suppression {
        reason,
        at: now_millis(),
        campaign: None,
        detail: asked.detail.unwrap_or_default(),
    };
    let store = state.store.clone();
    let (key, scope) = (address.clone(), topic.clone());
    let (added, kept) = blocking(move || {
        let (added, kept) = match &scope {
            Some(topic) => (
                store.suppress_topic(&key, topic, &entry)?,
                store.topic_suppression(&key, topic)?,
            ),
            None => (store.suppress(&key, &entry)?, store.suppression(&key)?),
        };
        store.flush_blocking()?;
        Ok::<_, crate::store::StoreError>((added, kept.unwrap_or(entry)))
    })
    .await?
    .map_err(|e| internal("adding to the suppression list", &e))?;
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(SuppressionEntry::new(address, topic, &kept))).into_response())
}

/// Removes one address from the list.
#[utoipa::path(
    delete,
    path = "/api/suppressions/{address}",
    operation_id = "remove_suppression",
    tag = "suppressions",
    description = "Needs `send`. With `topic`, removes the address's entry for that topic.",
    params(("address" = String, Path, description = "The address to remove"), TopicQuery),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `send`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The address is not on the list", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The address is invalid", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn remove(
    _caller: Caller<NeedsSend>,
    State(state): State<ApiState>,
    Path(raw): Path<String>,
    query: Result<Query<TopicQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<StatusCode, Problem> {
    let Query(query) = query.map_err(|e| Problem::bad_request(Some("query"), e.body_text()))?;
    let topic = topic_of(query.topic)?;
    let address = address_of(&raw)?;
    let store = state.store.clone();
    let key = address.clone();
    let removed = blocking(move || {
        let removed = match &topic {
            Some(topic) => store.unsuppress_topic(&key, topic)?,
            None => store.unsuppress(&key)?,
        };
        store.flush_blocking()?;
        Ok::<_, crate::store::StoreError>(removed)
    })
    .await?
    .map_err(|e| internal("removing from the suppression list", &e))?;
    if removed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found(format!(
            "{address} is not on the suppression list"
        )))
    }
}

/// What an import did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportResult {
    /// Addresses added.
    pub added: u64,
    /// Addresses that were on the list already.
    pub already: u64,
    /// Rows refused, each with its line and field (`upload line 3, field email: missing @`).
    pub errors: Vec<String>,
}

/// Imports a CSV of addresses.
#[utoipa::path(
    post,
    path = "/api/suppressions/import",
    operation_id = "import_suppressions",
    tag = "suppressions",
    description = "Needs `send`. The body is a CSV with an `email` column and optionally \
        `reason`, `detail` and `topic` (empty: a global entry; as `volley suppress import` \
        takes), at most `max_upload` \
        bytes; it is received whole before any row is added.",
    request_body(content = String, content_type = "text/csv"),
    responses(
        (status = 200, description = "Imported; refused rows are listed", body = ImportResult),
        (status = 401, description = "No or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `send`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The upload is larger than `max_upload`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The header has no `email` column", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn import(
    _caller: Caller<NeedsSend>,
    State(state): State<ApiState>,
    body: Body,
) -> Result<Json<ImportResult>, Problem> {
    let upload = super::upload::receive(body, state.settings.max_upload).await?;
    let store = state.store.clone();
    let result = blocking(move || {
        let file = std::fs::File::open(upload.path()).map_err(|e| ImportError::Header {
            name: "upload".to_owned(),
            reason: e.to_string(),
        })?;
        import_suppressions(
            &store,
            std::io::BufReader::new(file),
            "upload",
            now_millis(),
        )
    })
    .await?;
    match result {
        Ok(summary) => Ok(Json(ImportResult {
            added: summary.added,
            already: summary.already,
            errors: summary.errors,
        })),
        Err(ImportError::NoEmailColumn { .. }) => Err(Problem::bad_field(
            "email",
            "the CSV's header has no `email` column",
        )),
        Err(ImportError::Header { reason, .. }) => Err(Problem::bad_field("header", reason)),
        Err(error) => Err(internal("importing suppressions", &error)),
    }
}
