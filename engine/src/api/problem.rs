//! Errors of the API as RFC 9457 problem documents (`application/problem+json`): a `type`, a
//! `title`, the HTTP `status`, a `detail` for people and, when input is at fault, `errors`
//! naming each field (`{"field": "reason", "detail": "…"}`) so a client can show it beside
//! the right box.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The media type of a problem document.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Problem {
    /// What kind of problem: a URN, `urn:volley:problem:<kind>` (kinds: `invalid-field`,
    /// `bad-request`, `not-found`, `unauthorized`, `forbidden`, `conflict`, `too-large`,
    /// `internal`, `unavailable`).
    #[serde(rename = "type", serialize_with = "as_urn")]
    #[schema(value_type = String, example = "urn:volley:problem:invalid-field")]
    pub kind: &'static str,
    /// A short summary of the kind, the same for every occurrence.
    pub title: &'static str,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong this time, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// What the problem is about (the request's path, when known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The fields at fault, when the request's content was.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// One field of a request at fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    /// Where: a JSON path in the body (`data.name`, `files[2].name`), a query parameter
    /// (`limit`), a path segment (`address`) or an upload's line and column (`line 3, email`).
    pub field: String,
    /// What is wrong with it.
    pub detail: String,
}

impl Problem {
    /// A problem of kind `kind` (served as `urn:volley:problem:<kind>`) with `status` and
    /// `title`.
    pub fn new(status: StatusCode, kind: &'static str, title: &'static str) -> Problem {
        Problem {
            kind,
            title,
            status: status.as_u16(),
            detail: None,
            instance: None,
            errors: Vec::new(),
        }
    }

    /// Sets the detail.
    pub fn detail(mut self, detail: impl Into<String>) -> Problem {
        self.detail = Some(detail.into());
        self
    }

    /// Sets the instance.
    pub fn instance(mut self, instance: impl Into<String>) -> Problem {
        self.instance = Some(instance.into());
        self
    }

    /// Adds a field at fault.
    pub fn field(mut self, field: impl Into<String>, detail: impl Into<String>) -> Problem {
        self.errors.push(FieldError {
            field: field.into(),
            detail: detail.into(),
        });
        self
    }

    /// 422: the request's `field` is not acceptable, because `detail`.
    pub fn bad_field(field: impl Into<String>, detail: impl Into<String>) -> Problem {
        let (field, detail) = (field.into(), detail.into());
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
            "A field of the request is not valid",
        )
        .detail(format!("{field}: {detail}"))
        .field(field, detail)
    }

    /// 400: the request could not be read at all (malformed JSON, a missing header), at
    /// `field` when it is known.
    pub fn bad_request(field: Option<&str>, detail: impl Into<String>) -> Problem {
        let detail = detail.into();
        let problem = Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "The request could not be read",
        )
        .detail(detail.clone());
        match field {
            Some(field) => problem.field(field, detail),
            None => problem,
        }
    }

    /// 404: `what` does not exist.
    pub fn not_found(what: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found").detail(what)
    }

    /// 401: no token, or one nobody issued (answered with `WWW-Authenticate: Bearer`).
    pub fn unauthorized() -> Problem {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "A valid bearer token is required",
        )
        .detail("send `Authorization: Bearer <secret>` with a secret from the tokens file")
    }

    /// 403: the token lacks `scope`.
    pub fn forbidden(scope: &str) -> Problem {
        Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "The token does not allow this",
        )
        .detail(format!(
            "this needs a token with the `{scope}` scope (or `admin`)"
        ))
    }

    /// 409: the request conflicts with the state of what it names, because `detail`.
    pub fn conflict(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::CONFLICT,
            "conflict",
            "The request conflicts with the current state",
        )
        .detail(detail)
    }

    /// 413: a body or upload past `limit` bytes (the `[api]` key `key` sets it).
    pub fn too_large(key: &str, limit: u64) -> Problem {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "The request body is too large",
        )
        .detail(format!(
            "the body is larger than {limit} bytes (the server's `[api] {key}`)"
        ))
    }

    /// 500: the server could not do its part (what exactly is in its log, not here).
    pub fn internal() -> Problem {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "The server could not complete the request",
        )
        .detail("see the server's log")
    }

    /// 503: try again shortly.
    pub fn unavailable(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "The server cannot do this now",
        )
        .detail(detail)
    }

    /// The HTTP status.
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Writes a problem's kind as its URN.
fn as_urn<S: serde::Serializer>(kind: &&'static str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format!("urn:volley:problem:{kind}"))
}

/// An engine error turned into a 500 problem; the error itself goes to the log.
pub fn internal(what: &str, error: &dyn std::fmt::Display) -> Problem {
    tracing::error!(%error, "API: {what} failed");
    Problem::internal()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(problem: Problem) -> (StatusCode, Vec<(String, String)>, serde_json::Value) {
        let response = problem.into_response();
        let status = response.status();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, headers, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn a_bad_field_is_a_problem_document_naming_it() {
        let (status, headers, json) = body_of(Problem::bad_field("limit", "at most 1000")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(headers.contains(&("content-type".to_owned(), PROBLEM_JSON.to_owned())));
        assert_eq!(json["type"], "urn:volley:problem:invalid-field");
        assert_eq!(json["status"], 422);
        assert_eq!(json["errors"][0]["field"], "limit");
        assert_eq!(json["errors"][0]["detail"], "at most 1000");
        assert!(json["title"].is_string());
        assert!(json.get("instance").is_none());
    }

    #[tokio::test]
    async fn unauthorized_says_bearer() {
        let (status, headers, json) = body_of(Problem::unauthorized()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(headers.contains(&("www-authenticate".to_owned(), "Bearer".to_owned())));
        assert!(json.get("errors").is_none());
    }

    #[tokio::test]
    async fn every_constructor_has_its_status() {
        for (problem, status) in [
            (Problem::not_found("campaign x"), 404),
            (Problem::forbidden("send"), 403),
            (Problem::conflict("already started"), 409),
            (Problem::too_large("max_body", 10), 413),
            (Problem::bad_request(Some("body"), "not JSON"), 400),
            (Problem::internal(), 500),
            (Problem::unavailable("stopping"), 503),
        ] {
            let (got, _, json) = body_of(problem).await;
            assert_eq!(got.as_u16(), status);
            assert_eq!(json["status"], status);
        }
    }
}
