//! The transactional lane over HTTP: `POST /api/messages` (`send` scope) takes one message
//! and answers `202 {"id"}` once it is stored durably; `GET /api/messages/{id}` (`read`)
//! says where it stands. An `Idempotency-Key` header makes a retry safe: within 24 hours the
//! same key and body get the first id again (nothing more is sent), the same key with
//! another body gets 409. See `crate::transactional`.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{Caller, NeedsRead, NeedsSend};
use super::body::JsonBody;
use super::problem::{internal, Problem};
use super::ApiState;
use crate::model::{format_millis, RecipientState};
use crate::transactional::{Message, MessageStatus, SubmitError, TxLane};

/// Longest `Idempotency-Key` accepted.
const MAX_KEY: usize = 255;

/// The routes of the transactional lane.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/messages", post(submit))
        .route("/api/messages/{id}", get(status))
}

/// A message to send: `to` with `data` for the lane's templates, or `to` with `subject` and
/// `text` and/or `html`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MessageRequest {
    /// The recipient's address.
    #[schema(example = "ann@example.com")]
    pub to: String,
    /// The merge fields the lane's templates use (strings, numbers or booleans).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>, example = json!({"first_name": "Ann", "code": "493021"}))]
    pub data: Option<BTreeMap<String, serde_json::Value>>,
    /// The subject (explicit content, without `data`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The text body (explicit content).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The HTML body (explicit content), sent as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
}

/// A message taken: stored durably, to be sent at priority 1.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    /// The message's id (for `GET /api/messages/{id}`).
    pub id: String,
}

/// The last reply seen for a message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Reply {
    /// The SMTP code (none when no reply came: a connection failure).
    pub code: Option<u16>,
    /// The enhanced status code, like `5.1.1`.
    pub enhanced: Option<String>,
    /// The reply's text, or what went wrong.
    pub text: String,
}

/// Where a message stands.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MessageState {
    /// The message's id.
    pub id: String,
    /// Its recipient.
    pub to: String,
    /// `pending`, `deferred`, `delivered`, `bounced`, `expired` or `suppressed`.
    pub state: String,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// When the first attempt was made (RFC 3339, UTC).
    pub first_attempt: Option<String>,
    /// When a deferred message is tried again (RFC 3339, UTC).
    pub next_attempt: Option<String>,
    /// The last reply (for a delivered message: the receiving server's 250).
    pub last_reply: Option<Reply>,
}

/// Takes one transactional message.
#[utoipa::path(
    post,
    path = "/api/messages",
    tag = "messages",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header,
        description = "Makes a retry safe: the same key and body within 24 h get the first id; the same key with another body gets 409")),
    request_body = MessageRequest,
    responses(
        (status = 202, description = "Stored durably; it goes out at priority 1", body = Accepted),
        (status = 400, description = "Not JSON, or a bad Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the `send` scope", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The Idempotency-Key was used for another body", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than `[api] max_body`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is not valid, or `to` is suppressed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No transactional lane is configured", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn submit(
    _caller: Caller<NeedsSend>,
    State(state): State<ApiState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<serde_json::Value>,
) -> Result<Response, Problem> {
    let lane = lane(&state)?;
    let key = idempotency_key(&headers)?;
    let message = Message::from_json(&body).map_err(|errors| {
        let mut errors = errors.into_iter();
        let mut problem = match errors.next() {
            Some(first) => Problem::bad_field(first.field, first.detail),
            None => Problem::bad_field("body", "not a message"),
        };
        for more in errors {
            problem = problem.field(more.field, more.detail);
        }
        problem
    })?;
    match lane.submit(message, key).await {
        Ok(submitted) => {
            let mut response =
                (StatusCode::ACCEPTED, Json(Accepted { id: submitted.id })).into_response();
            if !submitted.new {
                response
                    .headers_mut()
                    .insert("idempotent-replayed", HeaderValue::from_static("true"));
            }
            Ok(response)
        }
        Err(error) => Err(submit_problem(error)),
    }
}

/// The problem document of a refused submission.
fn submit_problem(error: SubmitError) -> Problem {
    match error {
        SubmitError::Invalid(errors) => {
            let mut errors = errors.into_iter();
            let Some(first) = errors.next() else {
                return Problem::bad_field("body", "not a message");
            };
            errors.fold(Problem::bad_field(first.field, first.detail), |p, e| {
                p.field(e.field, e.detail)
            })
        }
        SubmitError::Suppressed {
            address,
            reason,
            detail,
        } => Problem::bad_field(
            "to",
            format!("{address} is on the suppression list ({reason}: {detail}); nothing is sent"),
        ),
        SubmitError::KeyReused { key, id } => Problem::conflict(format!(
            "the Idempotency-Key {key:?} was used within 24 hours for another message (id {id}); use a new key for a new message"
        ))
        .field("Idempotency-Key", "used for another message"),
        other => internal("storing a transactional message", &other),
    }
}

/// Where one transactional message stands.
#[utoipa::path(
    get,
    path = "/api/messages/{id}",
    tag = "messages",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The id `POST /api/messages` gave")),
    responses(
        (status = 200, description = "Its state, attempts and last reply", body = MessageState),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the `read` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such message", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No transactional lane is configured", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn status(
    _caller: Caller<NeedsRead>,
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<MessageState>, Problem> {
    let lane = lane(&state)?.clone();
    let asked = id.clone();
    let found = tokio::task::spawn_blocking(move || lane.status(&asked))
        .await
        .map_err(|e| internal("reading a transactional message", &e))?
        .map_err(|e| internal("reading a transactional message", &e))?;
    match found {
        Some(status) => Ok(Json(message_state(status))),
        None => Err(Problem::not_found(format!("no message {id:?}"))),
    }
}

/// The lane, or 503 when the server has none.
fn lane(state: &ApiState) -> Result<&TxLane, Problem> {
    state.transactional.as_ref().ok_or_else(|| {
        Problem::unavailable(
            "this server has no transactional lane: set `[api] transactional` to a campaign file",
        )
    })
}

/// The `Idempotency-Key` header, when sent: 1 to 255 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let bad = || {
        Problem::bad_request(
            Some("Idempotency-Key"),
            format!("must be 1 to {MAX_KEY} visible ASCII characters"),
        )
    };
    let text = value.to_str().map_err(|_| bad())?;
    if text.is_empty() || text.len() > MAX_KEY || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad());
    }
    Ok(Some(text.to_owned()))
}

fn message_state(status: MessageStatus) -> MessageState {
    MessageState {
        id: status.id,
        to: status.to,
        state: state_name(status.state).to_owned(),
        attempts: status.attempts,
        first_attempt: status.first_attempt.map(format_millis),
        next_attempt: status.next_attempt.map(format_millis),
        last_reply: status.last_reply.map(|reply| Reply {
            code: reply.code,
            enhanced: reply.enhanced,
            text: reply.text,
        }),
    }
}

fn state_name(state: RecipientState) -> &'static str {
    match state {
        RecipientState::Pending | RecipientState::Held | RecipientState::Waiting => "pending",
        RecipientState::Deferred => "deferred",
        RecipientState::Delivered => "delivered",
        RecipientState::Bounced => "bounced",
        RecipientState::Expired => "expired",
        RecipientState::Suppressed => "suppressed",
        RecipientState::Cancelled => "cancelled",
        RecipientState::Holdout => "holdout",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idempotency_key_must_be_visible_ascii_of_bounded_length() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("idempotency-key", HeaderValue::from_str(value).unwrap());
            idempotency_key(&headers)
        };
        assert_eq!(with("order-42").unwrap().as_deref(), Some("order-42"));
        assert!(with("two words").is_err());
        assert!(with(&"k".repeat(MAX_KEY + 1)).is_err());
        assert_eq!(idempotency_key(&HeaderMap::new()).unwrap(), None);
    }

    #[test]
    fn a_suppressed_address_and_a_reused_key_name_their_field() {
        let suppressed = submit_problem(SubmitError::Suppressed {
            address: "a@b.example".into(),
            reason: "unsubscribe".into(),
            detail: "one click".into(),
        });
        assert_eq!(suppressed.status, 422);
        assert_eq!(suppressed.errors[0].field, "to");
        let reused = submit_problem(SubmitError::KeyReused {
            key: "k".into(),
            id: "7".into(),
        });
        assert_eq!(reused.status, 409);
        assert_eq!(reused.errors[0].field, "Idempotency-Key");
    }
}
