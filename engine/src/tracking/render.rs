//! A tracked link's URL for one recipient: the campaign's link template rendered with the
//! recipient's fields, each merge value percent-encoded for the part of the URL it lands in,
//! so that no value can change the scheme or the host a click is redirected to.
//!
//! Values are marked while rendering (a formatter wraps each one in two private-use
//! characters), then encoded by where they stand: in the path, query or fragment everything
//! but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`) is percent-encoded, so `/`,
//! `?`, `#`, `@`, `:` and `\` in a value stay data; in the host only letters, digits and `-`
//! stay (not even `.`), and a value before `://` makes no URL at all.

use std::fmt::Write as _;

use minijinja::{Environment, UndefinedBehavior, Value};

/// Marks the start of a merge value in the rendered text.
const OPEN: char = '\u{E000}';
/// Marks its end.
const CLOSE: char = '\u{E001}';

/// Where in a URL a merge value lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Scheme,
    Host,
    Rest,
}

/// Renders `template` (a tracked link as written in the campaign) with `context`; `None`
/// when it does not render or is not an http(s) URL.
pub(crate) fn render_link(template: &str, context: Value) -> Option<String> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_formatter(|out, _state, value| {
        let text = value.to_string();
        out.write_char(OPEN)?;
        for c in text.chars().filter(|c| *c != OPEN && *c != CLOSE) {
            out.write_char(c)?;
        }
        out.write_char(CLOSE)?;
        Ok(())
    });
    let rendered = env.render_str(template, context).ok()?;
    let url = encode_marked(rendered.trim())?;
    let lower = url.to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://")).then_some(url)
}

/// The rendered text with each marked value encoded for where it stands; `None` when a
/// value stands in the scheme.
fn encode_marked(rendered: &str) -> Option<String> {
    let mut out = String::with_capacity(rendered.len() + 16);
    let mut rest = rendered;
    while let Some(start) = rest.find(OPEN) {
        out.push_str(&rest[..start]);
        let value_and_after = &rest[start + OPEN.len_utf8()..];
        let end = value_and_after.find(CLOSE).unwrap_or(value_and_after.len());
        let value = &value_and_after[..end];
        match part_at(&out) {
            Part::Scheme if !value.is_empty() => return None,
            Part::Scheme => {}
            Part::Host => encode(&mut out, value, |b| b.is_ascii_alphanumeric() || b == b'-'),
            Part::Rest => encode(&mut out, value, is_unreserved),
        }
        rest = value_and_after
            .get(end + CLOSE.len_utf8()..)
            .unwrap_or_default();
    }
    out.push_str(rest);
    Some(out)
}

/// The part of a URL that text appended to `url_so_far` lands in.
fn part_at(url_so_far: &str) -> Part {
    let Some(at) = url_so_far.find("://") else {
        return Part::Scheme;
    };
    let after = &url_so_far[at + 3..];
    if after.contains(['/', '?', '#', '\\']) {
        Part::Rest
    } else {
        Part::Host
    }
}

/// RFC 3986 unreserved characters.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// Appends `value`, percent-encoding every byte `keep` refuses.
fn encode(out: &mut String, value: &str, keep: impl Fn(u8) -> bool) {
    for byte in value.bytes() {
        if keep(byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(template: &str, value: &str) -> Option<String> {
        render_link(template, Value::from_iter([("v", Value::from(value))]))
    }

    #[test]
    fn merge_values_cannot_change_the_host() {
        let cases = [
            (
                "https://shop.example/{{ v }}",
                "@evil.example",
                "https://shop.example/%40evil.example",
            ),
            (
                "https://shop.example{{ v }}",
                "@evil.example",
                "https://shop.example%40evil%2Eexample",
            ),
            (
                "https://shop.example{{ v }}/x",
                ".evil.example",
                "https://shop.example%2Eevil%2Eexample/x",
            ),
            (
                "https://shop.example/a/{{ v }}",
                "/../../x",
                "https://shop.example/a/%2F..%2F..%2Fx",
            ),
            (
                "https://shop.example/?q={{ v }}",
                "?x#y&z=1",
                "https://shop.example/?q=%3Fx%23y%26z%3D1",
            ),
            (
                "https://shop.example/?q={{ v }}",
                "//evil.example\\",
                "https://shop.example/?q=%2F%2Fevil.example%5C",
            ),
            (
                "https://shop.example/#{{ v }}",
                "é ü",
                "https://shop.example/#%C3%A9%20%C3%BC",
            ),
            (
                "https://{{ v }}.shop.example/",
                "eu-west",
                "https://eu-west.shop.example/",
            ),
            (
                "https://{{ v }}.shop.example/",
                "evil.example/",
                "https://evil%2Eexample%2F.shop.example/",
            ),
            (
                "https://shop.example/sale?city={{ v }}&from=mail",
                "City1",
                "https://shop.example/sale?city=City1&from=mail",
            ),
        ];
        for (template, value, want) in cases {
            assert_eq!(
                render(template, value).as_deref(),
                Some(want),
                "{template} {value}"
            );
        }
    }

    #[test]
    fn a_value_in_the_scheme_or_a_non_http_result_is_refused() {
        assert_eq!(render("http{{ v }}://shop.example/", "s"), None);
        assert_eq!(
            render("https://shop.example/{{ w }}", "x"),
            None,
            "undefined"
        );
        assert_eq!(
            render("https://shop.example/{{ v }}", "\u{E001}@evil.example").as_deref(),
            Some("https://shop.example/%40evil.example"),
            "a value cannot forge the markers"
        );
        assert_eq!(
            render("https://shop.example/{{ v | upper }}", "a/b").as_deref(),
            Some("https://shop.example/A%2FB")
        );
    }
}
