//! The HTTP side: axum routes for the open pixel, tracked links and one-click unsubscribe,
//! plus `/healthz` and `/metrics` (only with a bearer token). Every answer about a token
//! waits for its event to be durable; a token that does not verify gets a 404 and records
//! nothing. A repeat within the de-duplication window, or past the recipient's daily cap,
//! gets the same answer and stores nothing.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use super::limits::{Dedupe, TrackingLimits};
use super::machine::{judge, Request, TOO_SOON_MILLIS};
use super::metrics::{Hit, Metrics, NotStored};
use super::postback::{Postbacks, RateLimit, DEFAULT_POSTBACKS_PER_SECOND, SIGNATURE_HEADER};
use super::recorder::{self, Job};
use super::targets::{Target, Targets};
use super::token::{Token, TokenKey, TokenKind};
use super::TrackingError;
use crate::model::{Clock, Millis};
use crate::store::{MachineReason, Store, TrackInput, TrackKind};

/// A 1×1 transparent GIF.
const PIXEL: [u8; 43] = [
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// What every handler shares.
pub(super) struct Shared {
    pub(super) key: TokenKey,
    too_soon: Millis,
    /// When requests come: what opens too soon and click bursts are judged by.
    pub(super) clock: Clock,
    targets: Targets,
    jobs: mpsc::Sender<Job>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) limits: TrackingLimits,
    dedupe: Dedupe,
    /// `/metrics` is served only to requests bearing it.
    metrics_token: Option<SecretString>,
    /// The campaigns that take conversion postbacks, and how many a second.
    postbacks: Postbacks,
    postback_rate: RateLimit,
    /// Where postbacks are recorded (events go through the recorder).
    pub(super) store: Store,
}

/// The tracking server for one store, signed with one key.
pub struct TrackingServer {
    shared: Arc<Shared>,
    store: Store,
    jobs: mpsc::Receiver<Job>,
}

impl std::fmt::Debug for TrackingServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrackingServer").finish_non_exhaustive()
    }
}

impl TrackingServer {
    /// A server recording into `store`, checking tokens with `key`, with the default
    /// [`TrackingLimits`] and no `/metrics`.
    pub fn new(store: Store, key: TokenKey) -> TrackingServer {
        let (jobs, rx) = mpsc::channel(recorder::QUEUE);
        let fingerprint = key.fingerprint();
        let limits = TrackingLimits::default();
        TrackingServer {
            shared: Arc::new(Shared {
                key,
                too_soon: TOO_SOON_MILLIS,
                clock: Clock::system(),
                targets: Targets::new(store.clone(), fingerprint),
                jobs,
                metrics: Arc::new(Metrics::default()),
                dedupe: Dedupe::new(limits.dedupe_window, limits.dedupe_entries),
                limits,
                metrics_token: None,
                postbacks: Postbacks::default(),
                postback_rate: RateLimit::new(DEFAULT_POSTBACKS_PER_SECOND),
                store: store.clone(),
            }),
            store,
            jobs: rx,
        }
    }

    /// Serves within `limits` (default [`TrackingLimits::default`]).
    pub fn limits(mut self, limits: TrackingLimits) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.dedupe = Dedupe::new(limits.dedupe_window, limits.dedupe_entries);
            shared.limits = limits;
        }
        self
    }

    /// Serves `/metrics` to requests with `Authorization: Bearer <token>` (default: not
    /// served at all).
    pub fn metrics_token(mut self, token: SecretString) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.metrics_token = Some(token);
        }
        self
    }

    /// Takes conversion postbacks for the campaigns `postbacks` names (default: none), at
    /// most `per_second` a second (default [`DEFAULT_POSTBACKS_PER_SECOND`]).
    pub fn postbacks(mut self, postbacks: Postbacks, per_second: u32) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.postbacks = postbacks;
            shared.postback_rate = RateLimit::new(per_second);
        }
        self
    }

    /// Counts opens within `window` of delivery as machine-made (default 5 s).
    pub fn too_soon(mut self, window: std::time::Duration) -> Self {
        let millis = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.too_soon = millis;
        }
        self
    }

    /// Times requests with `clock` (default [`Clock::system`]): an event's time, and so
    /// whether an open came too soon after delivery or a click is part of a burst.
    pub fn clock(mut self, clock: Clock) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.clock = clock;
        }
        self
    }

    /// Serves HTTP on `listener` until `shutdown` resolves; then waits for the last events
    /// to be recorded. Only HTTP/1.1 (put a proxy in front for HTTPS or HTTP/2).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), TrackingError> {
        let router = Router::new()
            .route("/o/{file}", get(open))
            .route("/c/{token}", get(click))
            .route("/u/{token}", get(unsubscribe_page).post(unsubscribe))
            .route("/p/{token}", super::preferences::routes())
            .route("/conversions/{campaign}", post(conversion))
            .route("/v/{token}", get(view))
            .route("/a/{campaign}", get(archive))
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/metrics", get(metrics))
            .with_state(self.shared.clone());
        let recorder = tokio::spawn(recorder::run(
            self.store,
            self.jobs,
            self.shared.metrics.clone(),
            self.shared.limits.daily_cap,
        ));
        let limits = self.shared.limits.clone();
        super::http::serve(listener, router, &limits, shutdown).await;
        drop(self.shared);
        let _ = recorder.await;
        Ok(())
    }
}

pub(super) fn not_found(shared: &Shared) -> Response {
    shared.metrics.hit(Hit::Rejected);
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

/// Verifies `text` as a token of `kind` and finds its target.
pub(super) fn verify(shared: &Shared, text: &str, kind: TokenKind) -> Option<(Token, Target)> {
    let token = shared.key.decode(text).filter(|t| t.kind == kind)?;
    let target = shared.targets.resolve(&token)?;
    Some((token, target))
}

/// Records the event unless it repeats one within the de-duplication window, and waits
/// until it is durable; `Err` when it could not be recorded (the client may retry).
async fn track(
    shared: &Shared,
    (token, target): (&Token, &Target),
    kind: TrackKind,
    machine: Option<MachineReason>,
) -> Result<(), ()> {
    // An unsubscribe is answered only once durable (the store ignores a repeat itself).
    let dedupe = kind != TrackKind::Unsubscribe;
    if dedupe && !shared.dedupe.first(token, machine.is_some()) {
        shared.metrics.not_stored(NotStored::Repeat);
        return Ok(());
    }
    if machine.is_some() {
        shared.metrics.machine();
    }
    let (reply, wait) = oneshot::channel();
    let input = input(token, target, kind, machine, shared.clock.now_millis());
    let result = match shared.jobs.send((input, reply)).await {
        Ok(()) => wait.await.map_err(drop).and_then(|r| r.map_err(drop)),
        Err(_) => Err(()),
    };
    match result {
        Ok(effect) => {
            if !effect.stored && kind == TrackKind::Unsubscribe {
                shared.metrics.not_stored(NotStored::Repeat);
            } else if !effect.stored {
                shared.metrics.not_stored(NotStored::DailyCap);
            }
            Ok(())
        }
        Err(()) => {
            if dedupe {
                shared.dedupe.forget(token, machine.is_some());
            }
            shared.metrics.hit(Hit::Failed);
            Err(())
        }
    }
}

pub(super) fn try_again() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "try again\n").into_response()
}

fn user_agent(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
}

fn input(
    token: &Token,
    target: &Target,
    kind: TrackKind,
    machine: Option<crate::store::MachineReason>,
    at: Millis,
) -> TrackInput {
    TrackInput {
        campaign: target.campaign.id.clone(),
        key: target.recipient.key.clone(),
        address: target.recipient.address.clone(),
        variant: token.variant,
        kind,
        link: (kind == TrackKind::Click).then_some(token.link),
        at,
        machine,
        topic: (kind == TrackKind::Unsubscribe)
            .then(|| target.campaign.unsubscribe_topic())
            .flatten(),
    }
}

async fn open(
    State(shared): State<Arc<Shared>>,
    Path(file): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let Some(text) = file.strip_suffix(".gif") else {
        return not_found(&shared);
    };
    let Some((token, target)) = verify(&shared, text, TokenKind::Open) else {
        return not_found(&shared);
    };
    let machine = judge(
        Request {
            kind: TrackKind::Open,
            head: method == Method::HEAD,
            user_agent: user_agent(&headers),
            delivered_at: target.recipient.first_attempt,
            now: shared.clock.now_millis(),
        },
        shared.too_soon,
    );
    if track(&shared, (&token, &target), TrackKind::Open, machine)
        .await
        .is_err()
    {
        return try_again();
    }
    shared.metrics.hit(Hit::Open);
    (
        [
            (header::CONTENT_TYPE, "image/gif"),
            (
                header::CACHE_CONTROL,
                "no-store, no-cache, must-revalidate, private",
            ),
        ],
        PIXEL,
    )
        .into_response()
}

async fn click(
    State(shared): State<Arc<Shared>>,
    Path(text): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let Some((token, target)) = verify(&shared, &text, TokenKind::Click) else {
        return not_found(&shared);
    };
    let Some(location) = target
        .link(token.link)
        .and_then(|url| HeaderValue::from_str(&url).ok())
    else {
        return not_found(&shared);
    };
    let machine = judge(
        Request {
            kind: TrackKind::Click,
            head: method == Method::HEAD,
            user_agent: user_agent(&headers),
            delivered_at: target.recipient.first_attempt,
            now: shared.clock.now_millis(),
        },
        shared.too_soon,
    );
    if track(&shared, (&token, &target), TrackKind::Click, machine)
        .await
        .is_err()
    {
        return try_again();
    }
    shared.metrics.hit(Hit::Click);
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response()
}

/// GET: a confirmation page with a button; changes nothing (mail scanners fetch links).
async fn unsubscribe_page(State(shared): State<Arc<Shared>>, Path(text): Path<String>) -> Response {
    if verify(&shared, &text, TokenKind::Unsubscribe).is_none() {
        return not_found(&shared);
    }
    shared.metrics.hit(Hit::Page);
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Unsubscribe</title>\
<meta name=\"viewport\" content=\"width=device-width\"></head><body style=\"font-family:sans-serif;max-width:32em;margin:4em auto\">\
<h1>Unsubscribe?</h1><p>You will no longer receive these emails.</p>\
<form method=\"post\" action=\"/u/{text}\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
<button type=\"submit\">Unsubscribe</button></form></body></html>\n"
    ))
    .into_response()
}

/// POST (RFC 8058 one-click, or the page's button): unsubscribes and suppresses the address.
/// The body (`List-Unsubscribe=One-Click`, or the page's form) is read, bounded in size and
/// time, and otherwise ignored.
async fn unsubscribe(
    State(shared): State<Arc<Shared>>,
    Path(text): Path<String>,
    body: Body,
) -> Response {
    let Some((token, target)) = verify(&shared, &text, TokenKind::Unsubscribe) else {
        return not_found(&shared);
    };
    let limit = shared.limits.max_body_bytes;
    // A Content-Length past the limit is refused before reading anything.
    let announced = axum::body::HttpBody::size_hint(&body).lower();
    if usize::try_from(announced).map_or(true, |n| n > limit) {
        shared.metrics.hit(Hit::Rejected);
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n").into_response();
    }
    let read = tokio::time::timeout(
        shared.limits.header_timeout,
        axum::body::to_bytes(body, limit),
    );
    match read.await {
        Ok(Ok(_)) => {}
        Ok(Err(_)) => {
            shared.metrics.hit(Hit::Rejected);
            return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n").into_response();
        }
        Err(_) => {
            shared.metrics.hit(Hit::Rejected);
            return (StatusCode::REQUEST_TIMEOUT, "request body too slow\n").into_response();
        }
    }
    if track(&shared, (&token, &target), TrackKind::Unsubscribe, None)
        .await
        .is_err()
    {
        return try_again();
    }
    shared.metrics.hit(Hit::Unsubscribe);
    Html(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Unsubscribed</title></head>\
<body style=\"font-family:sans-serif;max-width:32em;margin:4em auto\"><h1>You are unsubscribed</h1>\
<p>You will not receive these emails any more.</p></body></html>\n",
    )
    .into_response()
}

/// GET `/v/<token>`: the recipient's message in a browser (see `view`); records nothing.
async fn view(State(shared): State<Arc<Shared>>, Path(text): Path<String>) -> Response {
    shared.metrics.hit(Hit::Page);
    super::view::view_page(&shared.key, &shared.targets, &shared.store, &text)
}

/// GET `/a/<campaign>`: the campaign's public archive page, when it has one (see `view`).
async fn archive(State(shared): State<Arc<Shared>>, Path(campaign): Path<String>) -> Response {
    shared.metrics.hit(Hit::Page);
    super::view::archive_page(&shared.store, &campaign)
}

/// POST `/conversions/<campaign>`: a signed conversion postback (see `postback`).
async fn conversion(
    State(shared): State<Arc<Shared>>,
    Path(campaign): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let now = shared.clock.now_millis();
    if !shared.postback_rate.allow(now) {
        shared.metrics.hit(Hit::Rejected);
        return (StatusCode::TOO_MANY_REQUESTS, "too many postbacks\n").into_response();
    }
    let body = match read_bounded(&shared, body).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    let (status, json) = super::postback::handle(
        &shared.store,
        &shared.postbacks,
        &campaign,
        signature,
        &body,
        now,
    )
    .await;
    if !status.is_success() {
        shared.metrics.hit(Hit::Rejected);
    }
    (status, [(header::CONTENT_TYPE, "application/json")], json).into_response()
}

/// A request body of at most `max_body_bytes`, read within the header timeout; else the
/// answer refusing it.
pub(super) async fn read_bounded(
    shared: &Shared,
    body: Body,
) -> Result<axum::body::Bytes, Response> {
    let limit = shared.limits.max_body_bytes;
    let too_large = || (StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n").into_response();
    let announced = axum::body::HttpBody::size_hint(&body).lower();
    if usize::try_from(announced).map_or(true, |n| n > limit) {
        shared.metrics.hit(Hit::Rejected);
        return Err(too_large());
    }
    match tokio::time::timeout(
        shared.limits.header_timeout,
        axum::body::to_bytes(body, limit),
    )
    .await
    {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => {
            shared.metrics.hit(Hit::Rejected);
            Err(too_large())
        }
        Err(_) => {
            shared.metrics.hit(Hit::Rejected);
            Err((StatusCode::REQUEST_TIMEOUT, "request body too slow\n").into_response())
        }
    }
}

/// `/metrics`: only for a request bearing the metrics token; 404 when none is configured.
async fn metrics(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let Some(token) = &shared.metrics_token else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if !bearer.is_some_and(|given| same(given.as_bytes(), token.expose_secret().as_bytes())) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "unauthorized\n",
        )
            .into_response();
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        shared.metrics.render(),
    )
        .into_response()
}

/// Equal, in a time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
