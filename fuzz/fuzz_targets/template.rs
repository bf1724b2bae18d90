//! Templates: arbitrary subject, text and HTML sources compile or fail with an error; the
//! ones that compile are rendered with arbitrary merge values, plain and with a header
//! injection attempt appended, and the composed message's header block must hold only the
//! composer's own fields, each on CRLF-terminated lines.
//!
//! Input: `subject NUL text NUL html NUL value NUL value …` (an empty body means none).
#![no_main]

use libfuzzer_sys::fuzz_target;
use volley::compose::{Composer, Mailbox, MessageSettings, TemplateSource, Templates};

/// Header fields the composer may write with the settings below.
const ALLOWED: [&str; 11] = [
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "reply-to",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "list-unsubscribe-post",
    "list-id",
];

const NAMES: [&str; 6] = ["email", "name", "city", "code", "url", "extra"];

/// Template constructs that let the (trusted) campaign author ask for unbounded work or
/// memory: `range`, string repetition with `*`, macros and recursive loops. Authors are
/// trusted; merge values are not, and those are what this target is about.
const COSTLY: [&str; 4] = ["range", "*", "macro", "recursive"];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if COSTLY.iter().any(|c| text.contains(c)) {
        return;
    }
    let mut parts = text.split('\0');
    let subject = parts.next().unwrap_or_default();
    let body = |name: &str, part: Option<&str>| {
        part.filter(|p| !p.is_empty()).map(|p| TemplateSource {
            name: name.to_owned(),
            source: p.to_owned(),
        })
    };
    let text_body = body("body.txt", parts.next());
    let html_body = body("body.html", parts.next());
    let Ok(templates) = Templates::new(subject, text_body, html_body) else {
        return;
    };
    let composer = Composer::new(templates, settings(), None);
    let mut values = vec!["ann@example.net".to_owned()];
    values.extend(parts.take(NAMES.len() - 1).map(str::to_owned));
    let names: Vec<String> = NAMES[..values.len()]
        .iter()
        .map(|&n| n.to_owned())
        .collect();
    let injected: Vec<String> = std::iter::once(values[0].clone())
        .chain(
            values[1..]
                .iter()
                .map(|v| format!("{v}\r\nBcc: evil@example.org\r\n\nX: y")),
        )
        .collect();
    for values in [&values, &injected] {
        let headers = [("List-Id", values.last().map_or("", String::as_str))];
        let fields = (names.as_slice(), values.as_slice(), values.len());
        let Ok(composed) = composer.compose_message("ann@example.net", fields, &headers, None)
        else {
            continue;
        };
        check_headers(&composed.bytes);
    }
});

fn settings() -> MessageSettings {
    MessageSettings {
        from: Mailbox {
            name: Some("Example News".to_owned()),
            address: "news@example.com".to_owned(),
        },
        reply_to: None,
        extra_headers: vec![(
            "List-Unsubscribe-Post".to_owned(),
            "List-Unsubscribe=One-Click".to_owned(),
        )],
    }
}

/// Every header line ends with CRLF; every field is one the composer writes.
fn check_headers(bytes: &[u8]) {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of headers in {:?}", String::from_utf8_lossy(bytes)));
    let head = &bytes[..end + 2];
    for (i, &b) in head.iter().enumerate() {
        match b {
            b'\r' => assert_eq!(head.get(i + 1), Some(&b'\n'), "bare CR at {i}"),
            b'\n' => assert_eq!(head[i.saturating_sub(1)], b'\r', "bare LF at {i}"),
            _ => {}
        }
    }
    let head = String::from_utf8_lossy(head);
    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
        if line.starts_with([' ', '\t']) {
            continue; // a folded continuation
        }
        let name = line
            .split(':')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        assert!(
            ALLOWED.contains(&name.as_str()),
            "unexpected header line {line:?} in\n{head}"
        );
    }
}
