//! The messages of the transactional lane: the lane's campaign file's own templates
//! (variant [`TEMPLATED`], rendered with the request's `data`), or the content a request
//! gives (`subject` with `text` and/or `html`, variants [`EXPLICIT_BOTH`], [`EXPLICIT_TEXT`],
//! [`EXPLICIT_HTML`]). Every message is stored as one row with the fixed columns
//! [`TX_COLUMNS`], so the store's rows never depend on which fields the templates use.

use super::{ComposeError, TemplateSource, Templates};

/// The columns of the lane's rows: the address, the merge data (a JSON object of strings),
/// and the explicit content.
pub const TX_COLUMNS: [&str; 5] = ["email", "data", "subject", "text", "html"];
/// Variant of a message rendered from the lane's templates with its `data`.
pub const TEMPLATED: u8 = 0;
/// Variant of a message with an explicit subject, text and HTML.
pub const EXPLICIT_BOTH: u8 = 1;
/// Variant of a message with an explicit subject and text only.
pub const EXPLICIT_TEXT: u8 = 2;
/// Variant of a message with an explicit subject and HTML only.
pub const EXPLICIT_HTML: u8 = 3;

/// The names the explicit versions' templates use.
const EXPLICIT_NAMES: [&str; 4] = ["email", "subject", "text", "html"];

/// The templates of explicit variant `variant` (1, 2 or 3): the request's values put in as
/// they are (the HTML is the client's own, not escaped).
#[cfg(test)]
fn explicit_templates(variant: u8) -> Result<Templates, ComposeError> {
    with_html(variant, explicit_html(variant))
}

/// The HTML template of explicit variant `variant`, when it has one (for the tracking
/// rewrite, which adds the open pixel).
pub(crate) fn explicit_html(variant: u8) -> Option<TemplateSource> {
    (variant != EXPLICIT_TEXT).then(|| TemplateSource {
        name: "the request's html".to_owned(),
        source: "{{ html | safe }}".to_owned(),
    })
}

/// The templates of explicit variant `variant` with its HTML template replaced by `html`.
pub(crate) fn with_html(
    variant: u8,
    html: Option<TemplateSource>,
) -> Result<Templates, ComposeError> {
    let text = (variant != EXPLICIT_HTML).then(|| TemplateSource {
        name: "the request's text".to_owned(),
        source: "{{ text }}".to_owned(),
    });
    Templates::new("{{ subject }}", text, html)
}

/// The merge fields' names and values one stored row gives its variant's templates: the
/// address and the `data` object's fields (templated), or the explicit content.
pub(crate) fn expand(variant: u8, values: &[String]) -> (Vec<String>, Vec<String>) {
    let value = |i: usize| values.get(i).cloned().unwrap_or_default();
    if variant == TEMPLATED {
        let mut names = vec!["email".to_owned()];
        let mut out = vec![value(0)];
        let data: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&value(1)).unwrap_or_default();
        for (name, field) in data {
            names.push(name);
            out.push(match field {
                serde_json::Value::String(text) => text,
                other => other.to_string(),
            });
        }
        return (names, out);
    }
    let names = EXPLICIT_NAMES.iter().map(|n| (*n).to_owned()).collect();
    (names, vec![value(0), value(2), value(3), value(4)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_row_gives_its_data_fields_or_its_explicit_content() {
        let row = |data: &str| {
            vec![
                "a@b.example".to_owned(),
                data.to_owned(),
                "Hi".to_owned(),
                "text".to_owned(),
                "<p>html</p>".to_owned(),
            ]
        };
        let (names, values) = expand(TEMPLATED, &row(r#"{"name":"Ann","n":3}"#));
        assert_eq!(names, ["email", "n", "name"]);
        assert_eq!(values, ["a@b.example", "3", "Ann"]);
        let (names, values) = expand(EXPLICIT_BOTH, &row(""));
        assert_eq!(names, ["email", "subject", "text", "html"]);
        assert_eq!(values, ["a@b.example", "Hi", "text", "<p>html</p>"]);
    }

    #[test]
    fn explicit_html_goes_in_unescaped_and_text_only_has_no_html_part() {
        let both = explicit_templates(EXPLICIT_BOTH).unwrap();
        assert!(both.has_html() && both.has_text());
        let text = explicit_templates(EXPLICIT_TEXT).unwrap();
        assert!(text.has_text() && !text.has_html());
        let html = explicit_templates(EXPLICIT_HTML).unwrap();
        assert!(html.has_html() && !html.has_text());
    }
}
