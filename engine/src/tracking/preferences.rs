//! The preference page (issue 22): `/p/TOKEN`, linked from `{{ preferences_url }}`. GET
//! shows the store's known topics as checkboxes (checked: the recipient gets that topic)
//! and an "unsubscribe from all" box, and changes nothing. POST (the form) changes the
//! recipient's topic suppressions and global unsubscribe, after the CSRF checks of `csrf`,
//! then redirects to the page (`?saved=1`).
//!
//! Only the topics the form listed (hidden `shown` fields) change, so a topic added between
//! showing and posting is left alone. Re-subscribing to a topic removes its topic entry;
//! unticking "all" removes a global entry only when an unsubscribe made it (a bounce,
//! complaint or an operator's entry stays). Hostile clients: the body is bounded
//! ([`MAX_FORM_BYTES`], read within the header timeout), and so are the fields
//! ([`MAX_FIELDS`], each at most [`MAX_FIELD_BYTES`]).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};

use super::csrf::{same_origin, MAX_CSRF_CHARS};
use super::metrics::Hit;
use super::preferences_page::{render, PageState, Shown};
use super::server::{not_found, try_again, verify, Shared};
use super::targets::Target;
use super::token::TokenKind;
use crate::model::{Millis, Suppression, SuppressionReason};
use crate::store::{is_topic_id, Store, StoreError, MAX_TOPIC_CHARS};

/// Bytes of a preference form at most (about a hundred topics).
pub(crate) const MAX_FORM_BYTES: usize = 16 * 1024;
/// Fields of a preference form at most.
pub(crate) const MAX_FIELDS: usize = 2 * MAX_TOPICS + 4;
/// Bytes of one field's name or value at most.
pub(crate) const MAX_FIELD_BYTES: usize = 128;
/// Topics shown on the page at most (the first, in id order).
pub(crate) const MAX_TOPICS: usize = 100;

/// The routes of `/p/{token}`.
pub(super) fn routes() -> MethodRouter<Arc<Shared>> {
    get(page).post(change)
}

/// GET: the page; changes nothing.
async fn page(
    State(shared): State<Arc<Shared>>,
    Path(text): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let Some((_, target)) = verify(&shared, &text, TokenKind::Preferences) else {
        return not_found(&shared);
    };
    let saved = query.as_deref() == Some("saved=1");
    let state = match read_state(&shared.store, &target).await {
        Ok(state) => state,
        Err(()) => return try_again(),
    };
    shared.metrics.hit(Hit::Page);
    let now = shared.clock.now_millis() / 1_000;
    let csrf = shared.key.csrf_token(&text, now);
    html(StatusCode::OK, render(&text, &csrf, &state, saved))
}

/// What the page shows of the recipient, read on a blocking thread.
async fn read_state(store: &Store, target: &Target) -> Result<PageState, ()> {
    let (store, address) = (store.clone(), target.recipient.address.clone());
    let read = tokio::task::spawn_blocking(move || -> Result<PageState, StoreError> {
        let left: BTreeSet<String> = store
            .topic_suppressions_of(&address)?
            .into_iter()
            .map(|(topic, _)| topic)
            .collect();
        let topics = store
            .topics()?
            .into_iter()
            .take(MAX_TOPICS)
            .map(|topic| Shown {
                subscribed: !left.contains(&topic.id),
                topic,
            })
            .collect();
        Ok(PageState {
            address: address.clone(),
            topics,
            global: store.suppression(&address)?.map(|entry| entry.reason),
        })
    });
    match read.await {
        Ok(Ok(state)) => Ok(state),
        Ok(Err(error)) => {
            tracing::error!(%error, "the preference page could not read the store");
            Err(())
        }
        Err(_) => Err(()),
    }
}

/// A page answer with the headers every preference answer carries: not cached, not
/// framed, no referrer to other sites (the URL is the recipient's key; `same-origin`, not
/// `no-referrer`, under which browsers post forms with `Origin: null`), no script.
fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "same-origin"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
                 frame-ancestors 'none'; base-uri 'none'",
            ),
        ],
        body,
    )
        .into_response()
}

/// The form as posted.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Form {
    pub(crate) csrf: String,
    /// The topics the page listed.
    pub(crate) shown: BTreeSet<String>,
    /// The topics ticked (subscribed).
    pub(crate) topics: BTreeSet<String>,
    /// "Unsubscribe from all" ticked.
    pub(crate) all: bool,
}

/// Parses a posted form, or says why it is refused. Unknown fields are ignored; topic
/// values that are not topic ids refuse the form.
pub(crate) fn parse_form(body: &[u8]) -> Result<Form, &'static str> {
    let mut form = Form::default();
    for (n, (name, value)) in form_urlencoded::parse(body).enumerate() {
        if n >= MAX_FIELDS {
            return Err("too many fields");
        }
        if name.len() > MAX_FIELD_BYTES || value.len() > MAX_FIELD_BYTES {
            return Err("a field is too long");
        }
        let topic = || {
            (is_topic_id(&value) && value.len() <= MAX_TOPIC_CHARS)
                .then(|| value.to_string())
                .ok_or("a topic is not a topic id")
        };
        match name.as_ref() {
            "csrf" if value.len() <= MAX_CSRF_CHARS => form.csrf = value.into_owned(),
            "csrf" => return Err("a field is too long"),
            "shown" => {
                form.shown.insert(topic()?);
            }
            "topic" => {
                form.topics.insert(topic()?);
            }
            "all" => form.all = true,
            _ => {}
        }
    }
    Ok(form)
}

/// POST: checks origin and CSRF token, applies the form, redirects to the page.
async fn change(
    State(shared): State<Arc<Shared>>,
    Path(text): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some((_, target)) = verify(&shared, &text, TokenKind::Preferences) else {
        return not_found(&shared);
    };
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if !same_origin(header("origin"), header("host"), header("sec-fetch-site")) {
        return refused(&shared, &text);
    }
    let body = match read_form(&shared, body).await {
        Ok(body) => body,
        Err(answer) => return answer,
    };
    let form = match parse_form(&body) {
        Ok(form) => form,
        Err(reason) => {
            shared.metrics.hit(Hit::Rejected);
            return (StatusCode::BAD_REQUEST, format!("{reason}\n")).into_response();
        }
    };
    let now = shared.clock.now_millis();
    if !shared.key.csrf_valid(&text, &form.csrf, now / 1_000) {
        return refused(&shared, &text);
    }
    if apply(&shared.store, &target, form, now).await.is_err() {
        return try_again();
    }
    shared.metrics.hit(Hit::Page);
    let location = format!("/p/{text}?saved=1");
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
    )
        .into_response()
}

/// 403 for a post that did not come from the page (or came too late), with a way back.
fn refused(shared: &Shared, text: &str) -> Response {
    shared.metrics.hit(Hit::Rejected);
    html(
        StatusCode::FORBIDDEN,
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Not saved</title></head><body><main><h1>Not saved</h1>\
<p>This form has expired or did not come from your preference page.</p>\
<p><a href=\"/p/{text}\">Open your preferences again</a></p></main></body></html>\n"
        ),
    )
}

/// The form body: at most [`MAX_FORM_BYTES`], read within the header timeout.
async fn read_form(shared: &Shared, body: Body) -> Result<axum::body::Bytes, Response> {
    let too_large = || {
        shared.metrics.hit(Hit::Rejected);
        (StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n").into_response()
    };
    let announced = axum::body::HttpBody::size_hint(&body).lower();
    if usize::try_from(announced).map_or(true, |n| n > MAX_FORM_BYTES) {
        return Err(too_large());
    }
    let read = axum::body::to_bytes(body, MAX_FORM_BYTES);
    match tokio::time::timeout(shared.limits.header_timeout, read).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(too_large()),
        Err(_) => {
            shared.metrics.hit(Hit::Rejected);
            Err((StatusCode::REQUEST_TIMEOUT, "request body too slow\n").into_response())
        }
    }
}

/// Applies `form` to the recipient's entries and flushes, on a blocking thread.
async fn apply(store: &Store, target: &Target, form: Form, now: Millis) -> Result<(), ()> {
    let (store, address) = (store.clone(), target.recipient.address.clone());
    let campaign = target.campaign.id.clone();
    let done = tokio::task::spawn_blocking(move || {
        apply_form(&store, &address, &campaign, &form, now)?;
        store.flush_blocking()
    });
    match done.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => {
            tracing::error!(%error, "preferences could not be saved");
            Err(())
        }
        Err(_) => Err(()),
    }
}

/// The changes a form asks for: each shown topic ticked is re-subscribed (its topic entry
/// removed), each unticked one left (a topic entry added); "all" adds a global
/// unsubscribe, and unticked removes one that an unsubscribe made.
pub(crate) fn apply_form(
    store: &Store,
    address: &str,
    campaign: &str,
    form: &Form,
    now: Millis,
) -> Result<(), StoreError> {
    let entry = |detail: &str| Suppression {
        reason: SuppressionReason::Unsubscribe,
        at: now,
        campaign: Some(campaign.to_owned()),
        detail: detail.to_owned(),
    };
    let known: BTreeSet<String> = store.topics()?.into_iter().map(|t| t.id).collect();
    for topic in form.shown.intersection(&known) {
        if form.topics.contains(topic) {
            store.unsuppress_topic(address, topic)?;
        } else {
            store.suppress_topic(address, topic, &entry("preference page"))?;
        }
    }
    let global = store.suppression(address)?;
    if form.all {
        if global.is_none() {
            store.suppress(address, &entry("preference page: unsubscribe from all"))?;
        }
    } else if global.is_some_and(|g| g.reason == SuppressionReason::Unsubscribe) {
        store.unsuppress(address)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{CampaignTopic, UnsubscribeScope};

    #[test]
    fn a_form_is_read_within_its_bounds() {
        let form = parse_form(b"csrf=1.abc&shown=digest&shown=news&topic=news&all=1&x=y").unwrap();
        assert_eq!(form.csrf, "1.abc");
        assert_eq!(form.shown.len(), 2);
        assert!(form.topics.contains("news") && form.all);
        assert_eq!(
            parse_form(b"topic=Not+An+Id"),
            Err("a topic is not a topic id")
        );
        let long = format!("csrf={}", "a".repeat(MAX_CSRF_CHARS + 1));
        assert_eq!(parse_form(long.as_bytes()), Err("a field is too long"));
        let many = "x=1&".repeat(MAX_FIELDS + 1);
        assert_eq!(parse_form(many.as_bytes()), Err("too many fields"));
        assert_eq!(parse_form(b"").unwrap(), Form::default());
    }

    #[test]
    fn a_form_leaves_and_rejoins_topics_but_never_lifts_a_bounce() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for topic in ["digest", "news"] {
            let topic = CampaignTopic {
                topic: topic.into(),
                name: topic.into(),
                unsubscribe: UnsubscribeScope::Topic,
            };
            store.set_campaign_topic("c1", &topic).unwrap();
        }
        let form = |topics: &[&str], all: bool| Form {
            csrf: String::new(),
            shown: ["digest", "news", "unknown"].map(String::from).into(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            all,
        };
        let a = "a@x.example";
        apply_form(&store, a, "c1", &form(&["news"], false), 1).unwrap();
        assert!(store.topic_suppression(a, "digest").unwrap().is_some());
        assert!(store.topic_suppression(a, "news").unwrap().is_none());
        assert!(store.topic_suppression(a, "unknown").unwrap().is_none());
        apply_form(&store, a, "c1", &form(&["news", "digest"], true), 2).unwrap();
        assert!(store.topic_suppression(a, "digest").unwrap().is_none());
        assert!(store.suppression(a).unwrap().is_some());
        apply_form(&store, a, "c1", &form(&["news", "digest"], false), 3).unwrap();
        assert!(store.suppression(a).unwrap().is_none());
        // A hard bounce is not the recipient's to lift.
        let bounce = Suppression {
            reason: SuppressionReason::HardBounce,
            at: 4,
            campaign: None,
            detail: "550 5.1.1".into(),
        };
        store.suppress(a, &bounce).unwrap();
        apply_form(&store, a, "c1", &form(&["news", "digest"], false), 5).unwrap();
        assert_eq!(store.suppression(a).unwrap(), Some(bounce));
    }
}
