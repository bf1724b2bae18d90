//! Why a provider's webhook request was refused, and its problem document. A refusal names
//! what was wrong (a field, the signature, the timestamp) but never a secret nor which byte
//! of a signature differed.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::api::Problem;
use crate::store::StoreError;

/// A refused webhook request.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// 400: the body is not what the provider sends.
    BadBody(String),
    /// 422: a field of the body is missing or not acceptable.
    BadField {
        /// The field, as the provider names it.
        field: String,
        /// What is wrong with it.
        detail: String,
    },
    /// 401: a signature missing, malformed or not verifying.
    BadSignature(String),
    /// 401: HTTP basic credentials missing or wrong (answered with `WWW-Authenticate`).
    BadCredentials,
    /// 403: authenticated, but refused (a stale timestamp, a replayed token, a topic not
    /// allowed).
    Forbidden(String),
    /// 404: the provider is not configured in the serve file.
    NotConfigured(&'static str),
    /// The body could not be read (413 past `max_body`), as the API answers it.
    Read(Box<Problem>),
    /// 500: the store failed; the provider will retry.
    Store(StoreError),
    /// 500: the recording task was lost (a panic); the provider will retry.
    Internal,
}

impl Refusal {
    pub(crate) fn bad_body(detail: impl Into<String>) -> Refusal {
        Refusal::BadBody(detail.into())
    }

    pub(crate) fn bad_field(field: impl Into<String>, detail: impl Into<String>) -> Refusal {
        Refusal::BadField {
            field: field.into(),
            detail: detail.into(),
        }
    }

    pub(crate) fn bad_signature(detail: impl Into<String>) -> Refusal {
        Refusal::BadSignature(detail.into())
    }

    pub(crate) fn forbidden(detail: impl Into<String>) -> Refusal {
        Refusal::Forbidden(detail.into())
    }

    /// The problem document answering it.
    pub(crate) fn problem(&self) -> Problem {
        match self {
            Refusal::BadBody(detail) => Problem::bad_request(None, detail.clone()),
            Refusal::BadField { field, detail } => Problem::bad_field(field.clone(), detail.clone()),
            Refusal::BadSignature(detail) => Problem::new(
                StatusCode::UNAUTHORIZED,
                "bad-signature",
                "The webhook's signature does not verify",
            )
            .detail(detail.clone()),
            Refusal::BadCredentials => Problem::new(
                StatusCode::UNAUTHORIZED,
                "bad-credentials",
                "Valid webhook credentials are required",
            )
            .detail("send the user and password of [providers.postmark] as HTTP basic credentials"),
            Refusal::Forbidden(detail) => Problem::new(
                StatusCode::FORBIDDEN,
                "webhook-refused",
                "The webhook request is refused",
            )
            .detail(detail.clone()),
            Refusal::NotConfigured(provider) => Problem::not_found(format!(
                "this server takes no {provider} webhooks: [providers.{provider}] is not in its serve file"
            )),
            Refusal::Read(problem) => (**problem).clone(),
            Refusal::Store(_) | Refusal::Internal => Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "store-failed",
                "The report could not be recorded",
            )
            .detail("the store failed; the report was not recorded (the server's log says why)"),
        }
    }
}

impl From<StoreError> for Refusal {
    fn from(error: StoreError) -> Refusal {
        Refusal::Store(error)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match &self {
            Refusal::Store(error) => {
                tracing::error!(%error, "a provider webhook could not be recorded");
            }
            Refusal::Internal => tracing::error!("a provider webhook's recording task failed"),
            _ => {}
        }
        let basic = matches!(self, Refusal::BadCredentials);
        let mut response = self.problem().into_response();
        if basic {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"volley\", charset=\"UTF-8\""),
            );
        }
        response
    }
}
