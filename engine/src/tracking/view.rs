//! "View in browser" and the public archive page.
//!
//! `GET /v/TOKEN` (a [`TokenKind::View`] token, in `{{ view_url }}`) re-renders the
//! recipient's own message from the campaign's HTML template (stored at load, see
//! [`ViewMeta`]) and the recipient's stored row: its tracked links are the recipient's own
//! click URLs (following one is a click like any other), `{{ view_url }}` is this page's own
//! address and there is no open pixel. Viewing records nothing: it is not an open (a page
//! fetched by a link scanner must not count as one). A token that does not verify is a 404;
//! once `volley gc` has collected the campaign (its rows are gone) the page is a 410 Gone
//! saying the message is no longer available.
//!
//! `GET /a/CAMPAIGN` is the campaign's public archive page when `[campaign] archive = true`:
//! variant 0's message with every merge field replaced by its `[campaign] archive_fields`
//! value (empty when not named), links to their original URLs rendered with those values
//! (never a recipient's), no unsubscribe link. Anything else is a 404.

use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};

use super::targets::{Target, Targets};
use super::token::{Token, TokenKey, TokenKind};
use crate::store::{Store, ViewMeta, ViewVersion};

/// The link placeholders of the templates (see `compose::links`).
const LINK_PREFIX: &str = "__volley_link_";
const OPEN_VARIABLE: &str = "__volley_open";
const VIEW_VARIABLE: &str = "view_url";
const UNSUBSCRIBE_VARIABLE: &str = "unsubscribe_url";

/// The answer to `GET /v/TOKEN`.
pub(super) fn view_page(key: &TokenKey, targets: &Targets, store: &Store, text: &str) -> Response {
    let Some(token) = key.decode(text).filter(|t| t.kind == TokenKind::View) else {
        return not_found();
    };
    // Before resolving: a recipient cached in memory outlives its collected row.
    if collected(store, token.campaign) {
        return gone();
    }
    let Some(target) = targets.resolve(&token) else {
        return not_found();
    };
    let Ok(Some(meta)) = store.view_meta(&target.campaign.id) else {
        return not_found();
    };
    let Some(version) = version_of(&meta, token.variant) else {
        return not_found();
    };
    let fields = personal_fields(key, &meta, &target, &token, text);
    match render(version, fields) {
        Some(page) => private_page(page),
        None => not_found(),
    }
}

/// The answer to `GET /a/CAMPAIGN`.
pub(super) fn archive_page(store: &Store, campaign: &str) -> Response {
    let Ok(Some(meta)) = store.view_meta(campaign) else {
        return not_found();
    };
    let (Some(archive), Some(version)) = (&meta.archive, meta.versions.first()) else {
        return not_found();
    };
    let Ok(Some(columns)) = store.campaign(campaign).map(|c| c.map(|c| c.columns)) else {
        return not_found();
    };
    let value = |column: &str| {
        archive
            .iter()
            .find(|(field, _)| field == column)
            .map_or(String::new(), |(_, value)| value.clone())
    };
    let mut fields: Vec<(String, Value)> = columns
        .iter()
        .map(|column| (column.clone(), Value::from(value(column))))
        .collect();
    let links = store
        .tracking_meta(campaign)
        .ok()
        .flatten()
        .map(|t| t.links)
        .unwrap_or_default();
    let context = Value::from_iter(fields.iter().cloned());
    for (index, link) in links.iter().enumerate() {
        let url = super::render::render_link(link, context.clone()).unwrap_or_else(|| "#".into());
        fields.push((format!("{LINK_PREFIX}{index}"), Value::from(url)));
    }
    for name in [OPEN_VARIABLE, VIEW_VARIABLE, UNSUBSCRIBE_VARIABLE] {
        fields.push((name.to_owned(), Value::from("")));
    }
    match render(version, fields) {
        Some(page) => {
            ([(header::CACHE_CONTROL, "public, max-age=300")], Html(page)).into_response()
        }
        None => not_found(),
    }
}

/// The version a token's variant was sent (the first one for an unknown index).
fn version_of(meta: &ViewMeta, variant: u8) -> Option<&ViewVersion> {
    meta.versions
        .get(usize::from(crate::model::variant_index(variant)))
        .or_else(|| meta.versions.first())
}

/// The recipient's merge fields, then the URLs Volley makes for it: each link's click URL,
/// this page's URL and the unsubscribe URL (no pixel).
fn personal_fields(
    key: &TokenKey,
    meta: &ViewMeta,
    target: &Target,
    token: &Token,
    text: &str,
) -> Vec<(String, Value)> {
    let mut fields: Vec<(String, Value)> = target
        .campaign
        .columns
        .iter()
        .zip(&target.recipient.values)
        .map(|(column, value)| (column.clone(), Value::from(value.as_str())))
        .collect();
    let signed = |kind, link| {
        key.encode(&Token {
            kind,
            link,
            ..*token
        })
    };
    let base = &meta.base_url;
    for index in 0..target.campaign.links().len() {
        let link = u16::try_from(index).unwrap_or(u16::MAX);
        let url = format!("{base}/c/{}", signed(TokenKind::Click, link));
        fields.push((
            format!("{LINK_PREFIX}{index}"),
            Value::from_safe_string(url),
        ));
    }
    let own = format!("{base}/v/{text}");
    fields.push((VIEW_VARIABLE.to_owned(), Value::from_safe_string(own)));
    let unsubscribe = format!("{base}/u/{}", signed(TokenKind::Unsubscribe, 0));
    fields.push((
        UNSUBSCRIBE_VARIABLE.to_owned(),
        Value::from_safe_string(unsubscribe),
    ));
    fields.push((OPEN_VARIABLE.to_owned(), Value::from("")));
    fields
}

/// The page of one version with `fields`: its HTML, or its text as preformatted text.
fn render(version: &ViewVersion, fields: Vec<(String, Value)>) -> Option<String> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    env.set_auto_escape_callback(|name| {
        if name == "html" {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    let context = Value::from_iter(fields);
    if let Some(html) = &version.html {
        return env.render_named_str("html", html, context).ok();
    }
    let text = env
        .render_named_str("text", version.text.as_deref()?, context.clone())
        .ok()?;
    let subject = env
        .render_named_str("text", &version.subject, context)
        .ok()?;
    Some(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title></head>\
<body><pre style=\"white-space:pre-wrap\">{}</pre></body></html>\n",
        escape(&subject),
        escape(&text)
    ))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Whether the campaign of number `number` was collected by `volley gc`.
fn collected(store: &Store, number: u32) -> bool {
    store
        .campaign_by_number(number)
        .ok()
        .flatten()
        .is_some_and(|id| store.is_collected(&id).unwrap_or(false))
}

/// A recipient's own page: never cached by others, never indexed, no referrer (its URL is
/// a credential).
fn private_page(page: String) -> Response {
    (
        [
            (header::CACHE_CONTROL, "private, no-store"),
            (header::HeaderName::from_static("x-robots-tag"), "noindex"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        Html(page),
    )
        .into_response()
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

fn gone() -> Response {
    (
        StatusCode::GONE,
        Html(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>No longer available</title></head>\
<body style=\"font-family:sans-serif;max-width:32em;margin:4em auto\"><h1>This message is no longer available</h1>\
<p>Its copy has been removed from our records.</p></body></html>\n",
        ),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, Value)> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), Value::from(*value)))
            .collect()
    }

    #[test]
    fn merge_values_are_escaped_in_the_html_page() {
        let version = ViewVersion {
            subject: "Hi".into(),
            html: Some("<h1>Hello {{ name }}</h1>".into()),
            text: None,
        };
        let page = render(&version, fields(&[("name", "<script>x</script>")])).unwrap();
        assert_eq!(page, "<h1>Hello &lt;script&gt;x&lt;&#x2f;script&gt;</h1>");
    }

    #[test]
    fn a_text_only_message_is_shown_as_preformatted_text() {
        let version = ViewVersion {
            subject: "Hi {{ name }}".into(),
            html: None,
            text: Some("Hello {{ name }} & co\n".into()),
        };
        let page = render(&version, fields(&[("name", "<Ann>")])).unwrap();
        assert!(page.contains("<title>Hi &lt;Ann&gt;</title>"), "{page}");
        assert!(
            page.contains("<pre style=\"white-space:pre-wrap\">Hello &lt;Ann&gt; &amp; co\n</pre>"),
            "{page}"
        );
    }

    #[test]
    fn a_field_the_row_lacks_renders_no_page() {
        let version = ViewVersion {
            subject: "Hi".into(),
            html: Some("{{ missing }}".into()),
            text: None,
        };
        assert!(render(&version, Vec::new()).is_none());
    }
}
