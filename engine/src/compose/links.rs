//! Tracking in the templates: every http(s) link of the HTML template (and, when asked, of
//! the text template) is replaced by a per-recipient placeholder that the composer fills with
//! the link's tracking URL, and an open pixel ends the HTML. The original links are kept, in
//! order, as the campaign's link table: the tracking server redirects a click only to the
//! link of that index, never to a URL taken from the request.
//!
//! A link opts out with the attribute `data-volley-notrack` (removed from the message). Links
//! that are not http(s), and links built from anything but the recipient's own fields (a loop
//! variable, say), are left alone.

use std::borrow::Cow;

/// The placeholder variable of link `index`.
pub fn link_variable(index: usize) -> String {
    format!("{LINK_PREFIX}{index}")
}

/// Template variables Volley provides itself (they are not list columns).
pub const PROVIDED_PREFIX: &str = "__volley_";
/// The open pixel's URL variable.
pub const OPEN_VARIABLE: &str = "__volley_open";
/// The one-click unsubscribe URL, for templates that show an unsubscribe link.
pub const UNSUBSCRIBE_VARIABLE: &str = "unsubscribe_url";
/// The recipient's preference page URL (topics, unsubscribe from all; issue 22).
pub const PREFERENCES_VARIABLE: &str = "preferences_url";
/// The recipient's "view in browser" URL (`/v/TOKEN` on the tracking server).
pub const VIEW_VARIABLE: &str = "view_url";
const LINK_PREFIX: &str = "__volley_link_";
const NO_TRACK: &str = "data-volley-notrack";

/// A template rewritten for tracking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    /// The template source with placeholders.
    pub source: String,
    /// The links replaced, by index (their template text, HTML entities decoded).
    pub links: Vec<String>,
}

/// Rewrites the `href` of every `<a>` and `<area>` tag in `html` whose value is an http(s)
/// URL (`trackable` says whether a URL template may be tracked), numbering links from
/// `first`; with `pixel`, adds the open pixel before `</body>` (or at the end).
pub fn rewrite_html(
    html: &str,
    first: usize,
    pixel: bool,
    trackable: &dyn Fn(&str) -> bool,
) -> Rewritten {
    let mut out = String::with_capacity(html.len() + 256);
    let mut links = Vec::new();
    let mut rest = html;
    while let Some(start) = find_link_tag(rest) {
        let (before, tag_and_after) = rest.split_at(start);
        out.push_str(before);
        let end = tag_end(tag_and_after);
        let (tag, after) = tag_and_after.split_at(end);
        out.push_str(&rewrite_tag(tag, first, &mut links, trackable));
        rest = after;
    }
    out.push_str(rest);
    if pixel {
        let img = format!(
            "<img src=\"{{{{ {OPEN_VARIABLE} }}}}\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;border:0;width:1px;height:1px\">"
        );
        match out.to_ascii_lowercase().rfind("</body") {
            Some(at) => out.insert_str(at, &img),
            None => out.push_str(&img),
        }
    }
    Rewritten { source: out, links }
}

/// Rewrites the bare http(s) URLs of a text template, numbering links from `first`.
pub fn rewrite_text(text: &str, first: usize, trackable: &dyn Fn(&str) -> bool) -> Rewritten {
    let mut out = String::with_capacity(text.len() + 128);
    let mut links = Vec::new();
    let mut rest = text;
    while let Some(start) = find_url(rest) {
        let (before, url_and_after) = rest.split_at(start);
        out.push_str(before);
        let end = url_end(url_and_after);
        let (url, after) = url_and_after.split_at(end);
        if trackable(url) {
            out.push_str(&format!("{{{{ {} }}}}", link_variable(first + links.len())));
            links.push(url.to_owned());
        } else {
            out.push_str(url);
        }
        rest = after;
    }
    out.push_str(rest);
    Rewritten { source: out, links }
}

/// Where the next `<a ` or `<area ` tag starts.
fn find_link_tag(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find('<') {
        let at = from + at;
        let tail = &lower[at + 1..];
        let named = |name: &str| {
            tail.starts_with(name)
                && tail[name.len()..]
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_whitespace())
        };
        if named("a") || named("area") {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// The length of the tag at the start of `text` (through its `>`, quotes respected).
fn tag_end(text: &str) -> usize {
    let mut quote = None;
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return i + 1,
            _ => {}
        }
    }
    text.len()
}

/// One tag with its `href` replaced when it is tracked.
fn rewrite_tag(
    tag: &str,
    first: usize,
    links: &mut Vec<String>,
    trackable: &dyn Fn(&str) -> bool,
) -> String {
    let lower = tag.to_ascii_lowercase();
    if let Some(at) = lower.find(NO_TRACK) {
        let mut kept = String::with_capacity(tag.len());
        kept.push_str(tag[..at].trim_end());
        kept.push_str(&tag[at + NO_TRACK.len()..]);
        return kept.replace("  ", " ");
    }
    let Some((value_start, value_end)) = href_value(tag, &lower) else {
        return tag.to_owned();
    };
    let url = decode_entities(tag[value_start..value_end].trim());
    let is_http = {
        let l = url.to_ascii_lowercase();
        l.starts_with("http://") || l.starts_with("https://")
    };
    if !is_http || !trackable(&url) {
        return tag.to_owned();
    }
    let variable = link_variable(first + links.len());
    links.push(url.into_owned());
    format!(
        "{}{{{{ {variable} }}}}{}",
        &tag[..value_start],
        &tag[value_end..]
    )
}

/// The byte range of the `href` attribute's quoted value in `tag`.
fn href_value(tag: &str, lower: &str) -> Option<(usize, usize)> {
    let mut from = 0;
    while let Some(at) = lower[from..].find("href") {
        let at = from + at;
        let before_ok = lower[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_whitespace());
        let rest = &tag[at + 4..];
        let trimmed = rest.trim_start();
        if before_ok && trimmed.starts_with('=') {
            let after_eq = trimmed[1..].trim_start();
            let offset = tag.len() - after_eq.len();
            let quote = after_eq.chars().next()?;
            if quote == '"' || quote == '\'' {
                let close = after_eq[1..].find(quote)?;
                return Some((offset + 1, offset + 1 + close));
            }
            let end = after_eq
                .find(|c: char| c.is_ascii_whitespace() || c == '>')
                .unwrap_or(after_eq.len());
            return Some((offset, offset + end));
        }
        from = at + 4;
    }
    None
}

/// The common HTML entities a template may write in a URL.
fn decode_entities(text: &str) -> Cow<'_, str> {
    if !text.contains('&') {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.replace("&amp;", "&")
            .replace("&#38;", "&")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">"),
    )
}

/// Where the next `http://` or `https://` starts (at a word boundary).
fn find_url(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find("http") {
        let at = from + at;
        let tail = &lower[at..];
        let boundary = lower[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_ascii_alphanumeric());
        if boundary && (tail.starts_with("http://") || tail.starts_with("https://")) {
            return Some(at);
        }
        from = at + 4;
    }
    None
}

/// The length of the URL at the start of `text`: up to whitespace or a closing bracket, not
/// counting trailing punctuation. Template expressions (`{{ … }}`) inside it are kept whole.
fn url_end(text: &str) -> usize {
    let mut end = 0;
    let mut in_expression = false;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"{{") {
            in_expression = true;
            i += 2;
            continue;
        }
        if in_expression && bytes[i..].starts_with(b"}}") {
            in_expression = false;
            i += 2;
            end = i;
            continue;
        }
        let c = bytes[i];
        if !in_expression && (c.is_ascii_whitespace() || b"<>\"')]".contains(&c)) {
            break;
        }
        i += 1;
        if !in_expression && !b".,;:!?".contains(&c) {
            end = i;
        }
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(_: &str) -> bool {
        true
    }

    #[test]
    fn html_links_are_numbered_and_replaced() {
        let html = r##"<p><a href="https://shop.example/sale?city={{ city }}&amp;x=1">Sale</a>
<A class="b" HREF='http://blog.example/'>Blog</A> <a href="mailto:help@x.example">Help</a>
<a href="#top">Top</a> <a data-volley-notrack href="https://private.example/">Private</a>
<area shape="rect" href=https://map.example/ alt=map></p></body></html>"##;
        let out = rewrite_html(html, 0, true, &all);
        assert_eq!(
            out.links,
            [
                "https://shop.example/sale?city={{ city }}&x=1",
                "http://blog.example/",
                "https://map.example/"
            ]
        );
        assert!(
            out.source
                .contains(r#"<a href="{{ __volley_link_0 }}">Sale</a>"#),
            "{}",
            out.source
        );
        assert!(
            out.source
                .contains(r#"<A class="b" HREF='{{ __volley_link_1 }}'>Blog</A>"#),
            "{}",
            out.source
        );
        assert!(
            out.source
                .contains(r#"<area shape="rect" href={{ __volley_link_2 }} alt=map>"#),
            "{}",
            out.source
        );
        assert!(out.source.contains(r#"href="mailto:help@x.example""#));
        assert!(out.source.contains(r##"href="#top""##));
        assert!(
            out.source
                .contains(r#"<a href="https://private.example/">Private</a>"#),
            "{}",
            out.source
        );
        assert!(!out.source.contains(NO_TRACK));
        let pixel = out.source.find("{{ __volley_open }}").unwrap();
        assert!(pixel < out.source.find("</body>").unwrap());
    }

    #[test]
    fn untrackable_links_stay_and_the_pixel_is_optional() {
        let html = "<a href=\"https://x.example/{{ item.url }}\">x</a>";
        let out = rewrite_html(html, 5, false, &|url| !url.contains("item."));
        assert!(out.links.is_empty());
        assert_eq!(out.source, html);
        let out = rewrite_html("<a href=\"https://x.example/\">x</a>", 5, false, &all);
        assert_eq!(out.source, "<a href=\"{{ __volley_link_5 }}\">x</a>");
        assert!(!out.source.contains("__volley_open"));
        let out = rewrite_html("<p>no body tag</p>", 0, true, &all);
        assert!(out.source.ends_with(">"), "{}", out.source);
        assert!(out.source.starts_with("<p>no body tag</p><img"));
    }

    #[test]
    fn text_urls_are_rewritten_without_trailing_punctuation() {
        let text = "See https://shop.example/sale?c={{ city }}. Or (http://b.example/x), \
                    not xhttp://no.example and ftp://no.example.\n";
        let out = rewrite_text(text, 2, &all);
        assert_eq!(
            out.links,
            [
                "https://shop.example/sale?c={{ city }}",
                "http://b.example/x"
            ]
        );
        assert_eq!(
            out.source,
            "See {{ __volley_link_2 }}. Or ({{ __volley_link_3 }}), not xhttp://no.example and ftp://no.example.\n"
        );
    }
}
