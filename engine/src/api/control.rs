//! Campaign control over HTTP (`send`): create a campaign from its TOML and files, upload its
//! list, then start, pause, resume or cancel it. The campaign is a published document (as a
//! cluster's are) whose state is the truth: `paused` when created, `active` once started,
//! `paused` again when paused, `cancelled` for good. The work itself is the server's
//! ([`CampaignControl`], given by `volley serve`); this module is the HTTP side.
//!
//! ```text
//! POST /api/campaigns ─► paused ─PUT list─► paused (loaded) ─start─► active ⇄ paused
//!                                                          cancel (any) ─► cancelled
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{Caller, NeedsSend};
use super::body::JsonBody;
use super::problem::Problem;
use super::ApiState;
use crate::model::Counts;

/// A boxed future of the control's answers.
pub type ControlFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, Problem>> + Send + 'a>>;

/// What the server does for the campaign routes.
pub trait CampaignControl: Send + Sync {
    /// Checks and publishes a new campaign (state `paused`); its id.
    fn create(&self, request: NewCampaign) -> ControlFuture<'_, String>;
    /// Loads the list of campaign `id` from the spool file `list`.
    fn load_list<'a>(
        &'a self,
        id: &'a str,
        list: &'a std::path::Path,
    ) -> ControlFuture<'a, ListLoaded>;
    /// Moves campaign `id` as `action` says; where it stands then.
    fn change<'a>(&'a self, id: &'a str, action: Action) -> ControlFuture<'a, CampaignState>;
}

/// The server's campaign control, shared by the handlers.
pub type SharedControl = Arc<dyn CampaignControl>;

/// A campaign to create.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCampaign {
    /// The campaign file's text (TOML), as `volley check` loads it. Files it names
    /// (templates, the list, rules, CA files) are plain names of `files`; secrets are
    /// absolute paths or environment variable names on the server, never inline.
    pub campaign: String,
    /// The files the campaign names (templates, ...).
    #[serde(default)]
    pub files: Vec<NewFile>,
}

/// One file of a new campaign.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFile {
    /// Its name, as the campaign names it (letters, digits, `.`, `-`, `_`).
    pub name: String,
    /// Its text.
    pub content: String,
}

/// A campaign created.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Created {
    /// The campaign id (`[campaign] id`).
    pub id: String,
}

/// One invalid row of an uploaded list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InvalidRow {
    /// 1-based line of the CSV where the row starts.
    pub line: u64,
    /// The column at fault, when it is one.
    pub field: Option<String>,
    /// Why.
    pub detail: String,
}

/// A list loaded.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ListLoaded {
    /// The campaign id.
    pub id: String,
    /// Recipients accepted.
    pub accepted: u64,
    /// Rows refused as invalid.
    pub invalid: u64,
    /// Addresses given twice (kept once).
    pub duplicate: u64,
    /// Valid rows left out by the campaign's `[campaign] where` (not loaded).
    #[serde(default)]
    pub excluded: u64,
    /// Addresses on the suppression list (never sent).
    pub suppressed: u64,
    /// The first invalid rows.
    pub invalid_rows: Vec<InvalidRow>,
}

/// What to do with a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Sends it (its list must be loaded).
    Start,
    /// Stops taking new recipients of it; in-flight transactions finish.
    Pause,
    /// Sends it again after a pause.
    Resume,
    /// Stops it for good: its unsent recipients become `expired`, reason `cancelled`.
    Cancel,
}

/// Where a campaign stands after an action.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CampaignState {
    /// The campaign id.
    pub id: String,
    /// `active`, `paused`, `cancelled` or `done`.
    pub state: String,
    /// Its counters (absent before its list is loaded).
    #[schema(value_type = Option<Object>)]
    pub counts: Option<Counts>,
}

/// The campaign control routes.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/campaigns", post(create))
        .route("/api/campaigns/{id}/list", put(upload_list))
        .route("/api/campaigns/{id}/start", post(start))
        .route("/api/campaigns/{id}/pause", post(pause))
        .route("/api/campaigns/{id}/resume", post(resume))
        .route("/api/campaigns/{id}/cancel", post(cancel))
}

/// The server's control, or 503 when this server has none.
fn control_of(state: &ApiState) -> Result<SharedControl, Problem> {
    state
        .control_campaigns
        .clone()
        .ok_or_else(|| Problem::unavailable("this server does not create campaigns"))
}

/// Creates a campaign from its TOML and files; it waits, paused, for its list.
#[utoipa::path(
    post,
    path = "/api/campaigns",
    operation_id = "create_campaign",
    tag = "campaigns",
    description = "Needs `send`. The campaign is checked as `volley check` loads it; a problem names the TOML key at fault (with its line).",
    request_body = NewCampaign,
    responses(
        (status = 201, description = "Created, paused until its list is uploaded and it is started", body = Created),
        (status = 422, description = "A bad campaign: the key at fault", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `send`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A campaign with that id exists", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create(
    _caller: Caller<NeedsSend>,
    State(state): State<ApiState>,
    JsonBody(request): JsonBody<NewCampaign>,
) -> Result<Response, Problem> {
    let control = control_of(&state)?;
    let id = control.create(request).await?;
    Ok((StatusCode::CREATED, Json(Created { id })).into_response())
}

/// Uploads and loads a campaign's list (CSV), streamed within `[api] max_upload`.
#[utoipa::path(
    put,
    path = "/api/campaigns/{id}/list",
    operation_id = "upload_campaign_list",
    tag = "campaigns",
    description = "Needs `send`. Loaded as `volley load` loads; answers with the counts and the first invalid rows.",
    params(("id" = String, Path, description = "The campaign id")),
    request_body(content = String, content_type = "text/csv"),
    responses(
        (status = 200, description = "Loaded", body = ListLoaded),
        (status = 404, description = "No such campaign", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Its list is loaded already", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Larger than `max_upload`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The list does not fit the campaign (its header, a template's field)", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn upload_list(
    _caller: Caller<NeedsSend>,
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<ListLoaded>, Problem> {
    let control = control_of(&state)?;
    let upload = super::upload::receive(body, state.settings.max_upload).await?;
    Ok(Json(control.load_list(&id, upload.path()).await?))
}

/// Runs `action` on campaign `id`.
async fn act(state: &ApiState, id: &str, action: Action) -> Result<Json<CampaignState>, Problem> {
    let control = control_of(state)?;
    Ok(Json(control.change(id, action).await?))
}

/// Starts a campaign whose list is loaded.
#[utoipa::path(
    post,
    path = "/api/campaigns/{id}/start",
    operation_id = "start_campaign",
    tag = "campaigns",
    description = "Needs `send`.",
    params(("id" = String, Path, description = "The campaign id")),
    responses(
        (status = 200, description = "Active", body = CampaignState),
        (status = 404, description = "No such campaign", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No list loaded yet, or cancelled", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn start(
    _caller: Caller<NeedsSend>,
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<CampaignState>, Problem> {
    act(&state, &id, Action::Start).await
}

/// Pauses a campaign: nothing more of it is taken; answers once its in-flight messages are
/// recorded.
#[utoipa::path(
    post,
    path = "/api/campaigns/{id}/pause",
    operation_id = "pause_campaign",
    tag = "campaigns",
    description = "Needs `send`. Survives a restart.",
    params(("id" = String, Path, description = "The campaign id")),
    responses(
        (status = 200, description = "Paused", body = CampaignState),
        (status = 404, description = "No such campaign", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Cancelled or done", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn pause(
    _caller: Caller<NeedsSend>,
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<CampaignState>, Problem> {
    act(&state, &id, Action::Pause).await
}

/// Resumes a paused campaign.
#[utoipa::path(
    post,
    path = "/api/campaigns/{id}/resume",
    operation_id = "resume_campaign",
    tag = "campaigns",
    description = "Needs `send`.",
    params(("id" = String, Path, description = "The campaign id")),
    responses(
        (status = 200, description = "Active", body = CampaignState),
        (status = 404, description = "No such campaign", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No list loaded, cancelled or done", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn resume(
    _caller: Caller<NeedsSend>,
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<CampaignState>, Problem> {
    act(&state, &id, Action::Resume).await
}

/// Cancels a campaign for good: its unsent recipients become `expired` (reason
/// `cancelled`) and are never sent.
#[utoipa::path(
    post,
    path = "/api/campaigns/{id}/cancel",
    operation_id = "cancel_campaign",
    tag = "campaigns",
    description = "Needs `send`.",
    params(("id" = String, Path, description = "The campaign id")),
    responses(
        (status = 200, description = "Cancelled", body = CampaignState),
        (status = 404, description = "No such campaign", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Done already", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn cancel(
    _caller: Caller<NeedsSend>,
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<CampaignState>, Problem> {
    act(&state, &id, Action::Cancel).await
}
