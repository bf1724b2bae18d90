//! Provider webhooks in: bounce and complaint notifications from the sending providers a
//! campaign may relay through, each on its own path of the API listener and authenticated
//! the way that provider does (no bearer token):
//!
//! | path | provider | authentication |
//! |---|---|---|
//! | `POST /api/providers/ses` | Amazon SES via SNS | SNS signature, configured certificate, topic allow-list |
//! | `POST /api/providers/sendgrid` | SendGrid Event Webhook | ECDSA P-256 over timestamp + body |
//! | `POST /api/providers/mailgun` | Mailgun | HMAC-SHA256 of timestamp + token, token used once |
//! | `POST /api/providers/postmark` | Postmark | HTTP basic credentials |
//!
//! ```text
//! request ─► bounded body ─► provider module: authenticate, parse ─► ProviderEvent per recipient
//!         ─► classify like a DSN block (bounce::Reported) ─► Applier: by Message-ID (VERP token,
//!            else the store's index) apply_report; unknown message: suppress hard bounces and
//!            complaints ─► flush ─► 200 {reports, bounced, …}
//! ```
//!
//! Replays are harmless: each report is remembered by provider, event id and recipient.
//! Signed timestamps (SendGrid, Mailgun) more than five minutes from the server's clock are
//! refused. Refusals are problem documents: 401 for a bad signature or credentials, 403 for
//! a signed request refused (stale, replayed, a topic not allowed), 404 for a provider not
//! configured.

mod apply;
mod error;
mod event;
mod mailgun;
mod postmark;
mod sendgrid;
mod ses;
mod verify;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};

pub use apply::Received;
pub use event::{Provider, ProviderEvent, Verdict};

use self::apply::Applier;
use self::error::Refusal;
use super::Problem;
use crate::config::ProvidersSettings;
use crate::model::Clock;
use crate::store::{Store, StoreError};

/// What the provider routes share. Cheap to clone.
#[derive(Clone)]
pub struct ProviderState {
    settings: Arc<ProvidersSettings>,
    applier: Applier,
    clock: Clock,
    max_body: u64,
}

impl std::fmt::Debug for ProviderState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderState")
            .field("ses", &self.settings.ses.is_some())
            .field("sendgrid", &self.settings.sendgrid.is_some())
            .field("mailgun", &self.settings.mailgun.is_some())
            .field("postmark", &self.settings.postmark.is_some())
            .finish_non_exhaustive()
    }
}

impl ProviderState {
    /// The provider webhooks of `settings`, recording into `store`; bodies of at most
    /// `max_body` bytes (`[api] max_body`); timestamps judged by `clock`.
    pub fn new(
        store: &Store,
        settings: ProvidersSettings,
        max_body: u64,
        clock: Clock,
    ) -> Result<ProviderState, StoreError> {
        Ok(ProviderState {
            settings: Arc::new(settings),
            applier: Applier::new(store)?,
            clock,
            max_body,
        })
    }

    /// Reads a bounded body; 413 past `max_body`.
    async fn body(&self, body: Body) -> Result<Vec<u8>, Refusal> {
        super::body::read_bounded(body, self.max_body, "max_body")
            .await
            .map_err(|problem| Refusal::Read(Box::new(problem)))
    }

    /// Records `events` off the async workers (and `once`, a one-time value refused when
    /// seen before: a Mailgun token), durable before it returns.
    async fn record(
        &self,
        events: Vec<ProviderEvent>,
        once: Option<(&'static str, String)>,
    ) -> Result<Received, Refusal> {
        let applier = self.applier.clone();
        let now = self.clock.now_millis();
        let task = tokio::task::spawn_blocking(move || {
            if let Some((namespace, value)) = &once {
                if applier.seen(namespace, value)? {
                    return Err(Refusal::forbidden(
                        "signature.token was used before: a replayed request",
                    ));
                }
            }
            applier
                .apply(&events, once.as_ref().map(|(n, v)| (*n, v.as_str())), now)
                .map_err(Refusal::from)
        });
        task.await.map_err(|_| Refusal::Internal)?
    }
}

/// The provider webhook routes, on their own state (mountable on any router).
pub fn routes<S: Clone + Send + Sync + 'static>(state: ProviderState) -> Router<S> {
    Router::new()
        .route("/api/providers/ses", post(ses))
        .route("/api/providers/sendgrid", post(sendgrid))
        .route("/api/providers/mailgun", post(mailgun))
        .route("/api/providers/postmark", post(postmark))
        .with_state(state)
}

/// The answer to a webhook: 200 with what was recorded, or the refusal's problem.
fn answer(result: Result<Received, Refusal>) -> Response {
    match result {
        Ok(received) => Json(received).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

/// Amazon SES notifications delivered by SNS.
#[utoipa::path(
    post,
    path = "/api/providers/ses",
    tag = "providers",
    security(()),
    request_body(content = String, content_type = "text/plain",
        description = "An SNS HTTP message (JSON) of a topic SES publishes bounces and complaints to"),
    responses(
        (status = 200, description = "Recorded (or a subscription confirmation logged)", body = Received),
        (status = 401, description = "The SNS signature does not verify", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The topic is not in topic_arns", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "[providers.ses] is not configured", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than max_body", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn ses(State(state): State<ProviderState>, body: Body) -> Response {
    answer(ses_inner(&state, body).await)
}

async fn ses_inner(state: &ProviderState, body: Body) -> Result<Received, Refusal> {
    let settings = state
        .settings
        .ses
        .as_ref()
        .ok_or(Refusal::NotConfigured("ses"))?;
    let body = state.body(body).await?;
    match ses::receive(settings, &body)? {
        ses::SnsOutcome::Reports(events) => state.record(events, None).await,
        ses::SnsOutcome::Subscription {
            kind,
            topic,
            subscribe_url,
        } => {
            tracing::info!(
                %kind,
                %topic,
                %subscribe_url,
                "SNS asks to confirm a subscription: visit its SubscribeURL to confirm (Volley fetches nothing)"
            );
            Ok(Received::default())
        }
    }
}

/// SendGrid's signed Event Webhook.
#[utoipa::path(
    post,
    path = "/api/providers/sendgrid",
    tag = "providers",
    security(()),
    request_body(content = Vec<serde_json::Value>, content_type = "application/json",
        description = "A JSON array of SendGrid events, signed (X-Twilio-Email-Event-Webhook-Signature and -Timestamp)"),
    params(
        ("X-Twilio-Email-Event-Webhook-Signature" = String, Header, description = "base64 ECDSA P-256 signature of timestamp + body"),
        ("X-Twilio-Email-Event-Webhook-Timestamp" = String, Header, description = "Unix seconds; refused five minutes away"),
    ),
    responses(
        (status = 200, description = "Recorded", body = Received),
        (status = 401, description = "The signature does not verify", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The timestamp is stale", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "[providers.sendgrid] is not configured", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than max_body", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn sendgrid(
    State(state): State<ProviderState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    answer(sendgrid_inner(&state, &headers, body).await)
}

async fn sendgrid_inner(
    state: &ProviderState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Received, Refusal> {
    let settings = state
        .settings
        .sendgrid
        .as_ref()
        .ok_or(Refusal::NotConfigured("sendgrid"))?;
    let body = state.body(body).await?;
    let events = sendgrid::receive(settings, headers, &body, state.clock.now_millis())?;
    state.record(events, None).await
}

/// Mailgun's signed webhooks.
#[utoipa::path(
    post,
    path = "/api/providers/mailgun",
    tag = "providers",
    security(()),
    request_body(content = serde_json::Value, content_type = "application/json",
        description = "A Mailgun webhook: {\"signature\": {timestamp, token, signature}, \"event-data\": {…}}"),
    responses(
        (status = 200, description = "Recorded", body = Received),
        (status = 401, description = "The signature does not verify", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The timestamp is stale or the token was used before", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "[providers.mailgun] is not configured", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than max_body", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn mailgun(State(state): State<ProviderState>, body: Body) -> Response {
    answer(mailgun_inner(&state, body).await)
}

async fn mailgun_inner(state: &ProviderState, body: Body) -> Result<Received, Refusal> {
    let settings = state
        .settings
        .mailgun
        .as_ref()
        .ok_or(Refusal::NotConfigured("mailgun"))?;
    let body = state.body(body).await?;
    let signed = mailgun::receive(settings, &body, state.clock.now_millis())?;
    let events = signed.event.into_iter().collect();
    state
        .record(events, Some(("mailgun-token", signed.token)))
        .await
}

/// Postmark's bounce and spam complaint webhooks.
#[utoipa::path(
    post,
    path = "/api/providers/postmark",
    tag = "providers",
    security(()),
    request_body(content = serde_json::Value, content_type = "application/json",
        description = "A Postmark Bounce or SpamComplaint record"),
    responses(
        (status = 200, description = "Recorded", body = Received),
        (status = 401, description = "HTTP basic credentials missing or wrong", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "[providers.postmark] is not configured", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than max_body", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn postmark(
    State(state): State<ProviderState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    answer(postmark_inner(&state, &headers, body).await)
}

async fn postmark_inner(
    state: &ProviderState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Received, Refusal> {
    let settings = state
        .settings
        .postmark
        .as_ref()
        .ok_or(Refusal::NotConfigured("postmark"))?;
    // The credentials first: a stranger's body is not even read.
    postmark::authenticate(settings, headers)?;
    let body = state.body(body).await?;
    let event = postmark::read(&body)?;
    state.record(event.into_iter().collect(), None).await
}

#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;
