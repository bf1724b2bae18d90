//! The text part of a message whose campaign has an HTML body only: generated from the
//! recipient's RENDERED HTML (merge fields and tracked links already in), so the links of the
//! text are the very tracked URLs of the HTML, with the same link indexes in their tokens.
//!
//! html2text does the conversion: paragraphs and lists as text, wrapped at [`WIDTH`]
//! columns, images as their alt text (an image without alt text, like the open pixel, leaves
//! nothing), and each link as a numbered reference (`Sale[1]`) with the list of URLs at the
//! end (`[1]: https://t.example/c/…`). URLs are never wrapped, so they stay clickable.

/// The column the generated text wraps at (RFC 5322 recommends lines of at most 78).
pub(crate) const WIDTH: usize = 78;

/// The plain text of `html`; `None` when html2text cannot make one (the message then goes
/// with its HTML part only).
pub(crate) fn from_html(html: &str) -> Option<String> {
    let text = html2text::config::plain()
        .link_footnotes(true)
        .no_link_wrapping()
        .string_from_read(html.as_bytes(), WIDTH)
        .ok()?;
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_become_numbered_references_listed_at_the_end() {
        let html = r#"<html><body><h1>Hello Ann</h1><p>Our <a href="https://t.example/c/AAA">sale</a>
and the <a href="https://t.example/c/BBB">blog</a>.</p>
<img src="https://t.example/o/PIXEL.gif" width="1" height="1" alt=""></body></html>"#;
        let text = from_html(html).unwrap();
        assert!(text.contains("Hello Ann"), "{text}");
        assert!(text.contains("[sale][1]"), "{text}");
        assert!(text.contains("[blog][2]"), "{text}");
        assert!(text.contains("[1]: https://t.example/c/AAA"), "{text}");
        assert!(text.contains("[2]: https://t.example/c/BBB"), "{text}");
        assert!(!text.contains("PIXEL"), "the open pixel stays out: {text}");
    }

    #[test]
    fn lines_wrap_at_78_columns_but_urls_are_whole() {
        let words = "word ".repeat(60);
        let url = format!("https://t.example/c/{}", "x".repeat(100));
        let html = format!("<p>{words}</p><p><a href=\"{url}\">{url}</a></p>");
        let text = from_html(&html).unwrap();
        for line in text.lines().filter(|l| !l.contains("https://")) {
            assert!(line.chars().count() <= WIDTH, "{line:?}");
        }
        assert!(text.contains(&format!("[1]: {url}")), "{text}");
    }

    /// A tracked campaign with HTML only: the generated text part lists the very click URLs
    /// of the HTML part (same tokens, so the same link indexes), and no pixel.
    #[test]
    fn a_tracked_html_only_message_gets_a_text_part_with_the_same_tracked_links() {
        use super::super::tracked::{compose_tracked, Tracking};
        use super::super::{Composer, Mailbox, MessageSettings, TemplateSource, Templates};
        use crate::config::TrackingSettings;
        use mail_parser::MessageParser;

        let settings = TrackingSettings {
            base_url: "https://t.acme.example".to_owned(),
            key: "a tracking key of enough bytes".to_owned().into(),
            key_file: None,
            opens: true,
            clicks: true,
            text_links: true,
            unsubscribe_mailto: None,
        };
        let mut tracking = Tracking::new(&settings);
        let mut html = TemplateSource {
            name: "news.html".to_owned(),
            source:
                r#"<html><body><p>Hi {{ name }}, our <a href="https://shop.example/sale">sale</a>
and <a href="https://blog.example/{{ name }}">your blog</a>.</p></body></html>"#
                    .to_owned(),
        };
        let columns = ["email".to_owned(), "name".to_owned()];
        tracking.rewrite(&settings, &columns, None, Some(&mut html));
        let templates = Templates::new("News", None, Some(html)).unwrap();
        let message = MessageSettings {
            from: Mailbox {
                name: None,
                address: "news@acme.example".to_owned(),
            },
            reply_to: None,
            extra_headers: Vec::new(),
        };
        let composer = Composer::new(templates, message, None).text_from_html(true);
        let values = ["ann@example.net".to_owned(), "Ann".to_owned()];
        let composed = compose_tracked(
            &composer,
            &columns,
            Some(&tracking),
            "ann@example.net",
            &values,
            (3, 0, 9),
            None,
        )
        .unwrap();
        let parsed = MessageParser::default().parse(&composed.bytes).unwrap();
        let html = parsed.body_html(0).unwrap();
        let text = parsed.body_text(0).unwrap();
        let clicks: Vec<&str> = html
            .split('"')
            .filter(|part| part.starts_with("https://t.acme.example/c/"))
            .collect();
        assert_eq!(clicks.len(), 2, "{html}");
        assert!(text.contains("Hi Ann, our [sale][1]"), "{text}");
        assert!(text.contains(&format!("[1]: {}", clicks[0])), "{text}");
        assert!(text.contains(&format!("[2]: {}", clicks[1])), "{text}");
        assert!(html.contains("/o/"), "the HTML has its pixel: {html}");
        assert!(!text.contains("/o/"), "the text has no pixel: {text}");
    }

    #[test]
    fn images_show_their_alt_text() {
        let text = from_html(r#"<p><img src="https://cdn.example/logo.png" alt="Acme logo"></p>"#)
            .unwrap();
        assert!(text.contains("Acme logo"), "{text}");
        assert!(!text.contains("cdn.example"), "{text}");
    }
}
