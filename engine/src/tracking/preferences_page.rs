//! The preference page's HTML (issue 22): plain HTML, no script, one form; every checkbox
//! has its own `<label for>`, the groups a `<fieldset>` with a `<legend>`, and the saved
//! notice is a `role="status"` region. Everything from the store is escaped.

use crate::model::SuppressionReason;
use crate::store::Topic;

/// One topic as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shown {
    pub(crate) topic: Topic,
    /// Whether the recipient gets it (no topic entry).
    pub(crate) subscribed: bool,
}

/// What the page shows of one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PageState {
    pub(crate) address: String,
    pub(crate) topics: Vec<Shown>,
    /// The reason of the address's global entry, if it has one.
    pub(crate) global: Option<SuppressionReason>,
}

/// `text` with `& < > " '` escaped for HTML text and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page of `state` for page token `token`, its form carrying `csrf`; `saved` adds the
/// notice that the last change was saved.
pub(crate) fn render(token: &str, csrf: &str, state: &PageState, saved: bool) -> String {
    let mut out = String::with_capacity(2_048);
    out.push_str(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width\"><title>Email preferences</title></head>\
<body style=\"font-family:sans-serif;max-width:32em;margin:3em auto;line-height:1.5\"><main>\
<h1>Email preferences</h1>",
    );
    out.push_str(&format!(
        "<p>For <strong>{}</strong></p>",
        escape(&state.address)
    ));
    if saved {
        out.push_str("<p role=\"status\" id=\"saved\">Your preferences are saved.</p>");
    }
    let blocked = state
        .global
        .filter(|reason| *reason != SuppressionReason::Unsubscribe);
    if let Some(reason) = blocked {
        out.push_str(&format!(
            "<p id=\"blocked\">Mail to this address is stopped ({}); ask the sender to change that.</p>",
            escape(reason.as_str())
        ));
    }
    out.push_str(&format!(
        "<form method=\"post\" action=\"/p/{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(token),
        escape(csrf)
    ));
    topics(&mut out, &state.topics);
    let all = if state.global.is_some() {
        " checked"
    } else {
        ""
    };
    out.push_str(&format!(
        "<fieldset><legend>All emails</legend><div><input type=\"checkbox\" id=\"all\" \
name=\"all\" value=\"1\"{all}> <label for=\"all\">Unsubscribe from all emails</label></div>\
</fieldset><p><button type=\"submit\">Save preferences</button></p></form></main></body></html>\n"
    ));
    out
}

/// The topics' fieldset (nothing when the store knows no topics).
fn topics(out: &mut String, topics: &[Shown]) {
    if topics.is_empty() {
        return;
    }
    out.push_str("<fieldset><legend>Topics you receive</legend>");
    for shown in topics {
        let id = escape(&shown.topic.id);
        let checked = if shown.subscribed { " checked" } else { "" };
        out.push_str(&format!(
            "<div><input type=\"hidden\" name=\"shown\" value=\"{id}\">\
<input type=\"checkbox\" id=\"topic-{id}\" name=\"topic\" value=\"{id}\"{checked}> \
<label for=\"topic-{id}\">{}</label></div>",
            escape(&shown.topic.name)
        ));
    }
    out.push_str("</fieldset>");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> PageState {
        PageState {
            address: "a<b>@x.example".into(),
            topics: vec![
                Shown {
                    topic: Topic {
                        id: "digest".into(),
                        name: "Weekly \"digest\" <b>".into(),
                    },
                    subscribed: true,
                },
                Shown {
                    topic: Topic {
                        id: "news".into(),
                        name: "News".into(),
                    },
                    subscribed: false,
                },
            ],
            global: None,
        }
    }

    #[test]
    fn the_page_lists_topics_with_labelled_checkboxes_and_escapes_store_text() {
        let page = render("TOKEN", "1.MAC", &state(), false);
        assert!(page.contains("id=\"topic-digest\" name=\"topic\" value=\"digest\" checked>"));
        assert!(page
            .contains("<label for=\"topic-digest\">Weekly &quot;digest&quot; &lt;b&gt;</label>"));
        assert!(page.contains("id=\"topic-news\" name=\"topic\" value=\"news\">"));
        assert!(page.contains("<label for=\"all\">Unsubscribe from all emails</label>"));
        assert!(page.contains("name=\"csrf\" value=\"1.MAC\""));
        assert!(page.contains("a&lt;b&gt;@x.example"));
        assert!(!page.contains("<b>"));
        assert!(!page.contains("role=\"status\""));
        assert!(!page.contains("<script"));
    }

    #[test]
    fn a_bounce_shows_as_stopped_and_a_global_unsubscribe_ticks_all() {
        let mut state = state();
        state.global = Some(SuppressionReason::HardBounce);
        let page = render("T", "c", &state, true);
        assert!(page.contains("stopped (hard_bounce)"));
        assert!(page.contains("value=\"1\" checked>"));
        assert!(page.contains("Your preferences are saved."));
        state.global = Some(SuppressionReason::Unsubscribe);
        assert!(!render("T", "c", &state, false).contains("stopped"));
    }
}
