//! Text helpers for bounce parsing: header-style field blocks (the body of a
//! `message/delivery-status` or `message/feedback-report` part, a returned header block),
//! address normalisation and scanning, and spotting SMTP reply codes in free text.

/// One field block: `(lowercased name, unfolded value)` pairs, in order.
pub(crate) type Fields = Vec<(String, String)>;

/// The most blocks read from one part (a report about thousands of recipients is not real).
const MAX_BLOCKS: usize = 1_000;

/// Splits `text` into blank-line separated blocks of `Name: value` fields, unfolding
/// continuation lines. Lines that are neither a field nor a continuation are ignored. At most
/// [`MAX_BLOCKS`] blocks are read; see [`field_blocks_up_to`].
pub(crate) fn field_blocks(text: &str) -> Vec<Fields> {
    field_blocks_up_to(text, MAX_BLOCKS)
}

/// [`field_blocks`], stopping once `limit` blocks are read (the rest of `text` is not looked
/// at). One pass over the text.
pub(crate) fn field_blocks_up_to(text: &str, limit: usize) -> Vec<Fields> {
    let mut blocks = Vec::new();
    let mut current = Fields::new();
    if limit == 0 {
        return blocks;
    }
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                blocks.push(std::mem::take(&mut current));
                if blocks.len() >= limit {
                    return blocks;
                }
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = current.last_mut() {
                if !value.is_empty() {
                    value.push(' ');
                }
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            current.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    if !current.is_empty() {
        blocks.push(current);
    }
    blocks
}

/// The header block at the start of `text` (a returned message or its headers).
pub(crate) fn header_block(text: &str) -> Fields {
    let end = text
        .find("\r\n\r\n")
        .into_iter()
        .chain(text.find("\n\n"))
        .min()
        .unwrap_or(text.len());
    field_blocks_up_to(&text[..end], 1)
        .into_iter()
        .next()
        .unwrap_or_default()
}

/// The first value of field `name` (lowercase) in `fields`.
pub(crate) fn field<'a>(fields: &'a Fields, name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Strips a leading type tag (`rfc822;`, `smtp;`, `dns;`) from a DSN field value.
pub(crate) fn strip_type(value: &str) -> &str {
    match value.split_once(';') {
        Some((tag, rest))
            if !tag.trim().is_empty()
                && tag.trim().len() <= 24
                && tag
                    .trim()
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
        {
            rest.trim()
        }
        _ => value.trim(),
    }
}

/// Normalises one address: trims, strips `<>`, lowercases the domain. `None` when it has no
/// `@` or nothing on either side.
pub(crate) fn normalize_address(raw: &str) -> Option<String> {
    let trimmed = raw
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    let (local, domain) = trimmed.rsplit_once('@')?;
    if local.is_empty() || domain.is_empty() || trimmed.contains(char::is_whitespace) {
        return None;
    }
    Some(format!("{local}@{}", domain.to_ascii_lowercase()))
}

fn is_local_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&*+/=?^_`{|}~.-".contains(&b)
}

fn is_domain_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'-'
}

/// Every address-looking token in `text`, with the byte offset where it starts, in order
/// (normalised, not de-duplicated). At most `limit` are returned.
pub(crate) fn scan_addresses(text: &str, limit: usize) -> Vec<(usize, String)> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut search_from = 0;
    while let Some(rel) = bytes[search_from..].iter().position(|&b| b == b'@') {
        let at = search_from + rel;
        search_from = at + 1;
        let mut start = at;
        while start > 0 && is_local_byte(bytes[start - 1]) {
            start -= 1;
        }
        while start < at && bytes[start] == b'.' {
            start += 1;
        }
        // Exchange's X.400 form: "...;dda:SMTP=user@example.com;".
        if text[start..at].len() > 5 && text[start..start + 5].eq_ignore_ascii_case("smtp=") {
            start += 5;
        }
        let mut end = at + 1;
        while end < bytes.len() && is_domain_byte(bytes[end]) {
            end += 1;
        }
        while end > at + 1 && matches!(bytes[end - 1], b'.' | b'-') {
            end -= 1;
        }
        let domain = &text[at + 1..end];
        if start == at || !domain.contains('.') {
            continue;
        }
        if let Some(address) = normalize_address(&text[start..end]) {
            found.push((start, address));
            if found.len() >= limit {
                break;
            }
        }
        search_from = end.max(at + 1);
    }
    found
}

/// An SMTP reply code and/or enhanced status code found in free text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct FoundCode {
    /// Byte offset in the text where the code starts.
    pub(crate) start: usize,
    /// The basic reply code (`550`).
    pub(crate) code: Option<u16>,
    /// The enhanced status code (`5.1.1`).
    pub(crate) enhanced: Option<String>,
}

fn boundary_before(bytes: &[u8], i: usize) -> bool {
    i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'.')
}

/// The length of an enhanced status code (`[245].d{1,3}.d{1,3}`) starting at `i`, if any.
fn enhanced_at(bytes: &[u8], i: usize) -> Option<usize> {
    if !matches!(bytes.get(i), Some(b'2' | b'4' | b'5')) || bytes.get(i + 1) != Some(&b'.') {
        return None;
    }
    let mut j = i + 2;
    for group in 0..2 {
        let digits = bytes[j.min(bytes.len())..]
            .iter()
            .take(4)
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 || digits > 3 {
            return None;
        }
        j += digits;
        if group == 0 {
            if bytes.get(j) != Some(&b'.') {
                return None;
            }
            j += 1;
        }
    }
    let after_ok = bytes.get(j).is_none_or(|b| !b.is_ascii_alphanumeric())
        && !(bytes.get(j) == Some(&b'.') && bytes.get(j + 1).is_some_and(u8::is_ascii_digit));
    after_ok.then_some(j - i)
}

/// A basic reply code (`[45][0-5][0-9]` followed by a space, `-` or the end) at `i`.
fn basic_at(bytes: &[u8], i: usize) -> Option<u16> {
    let [a, b, c] = [bytes.get(i)?, bytes.get(i + 1)?, bytes.get(i + 2)?];
    let ok = matches!(a, b'4' | b'5')
        && matches!(b, b'0'..=b'5')
        && c.is_ascii_digit()
        && bytes
            .get(i + 3)
            .is_none_or(|s| matches!(s, b' ' | b'-' | b'\t' | b'\r' | b'\n'));
    ok.then(|| u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
}

/// The first SMTP reply code or enhanced status code in `text`.
pub(crate) fn find_code(text: &str) -> Option<FoundCode> {
    let bytes = text.as_bytes();
    for i in 0..bytes.len() {
        if !boundary_before(bytes, i) {
            continue;
        }
        if let Some(code) = basic_at(bytes, i) {
            let enhanced =
                enhanced_at(bytes, i + 4).map(|len| text[i + 4..i + 4 + len].to_string());
            return Some(FoundCode {
                start: i,
                code: Some(code),
                enhanced,
            });
        }
        if let Some(len) = enhanced_at(bytes, i) {
            let enhanced = Some(text[i..i + len].to_string());
            return Some(FoundCode {
                start: i,
                code: None,
                enhanced,
            });
        }
    }
    None
}

/// The enhanced status code at the start of a `Status:` value (`5.1.1 (user unknown)`).
pub(crate) fn parse_status(value: &str) -> Option<String> {
    let token = value
        .trim()
        .split(|c: char| c.is_whitespace() || c == '(')
        .next()?;
    (enhanced_at(token.as_bytes(), 0) == Some(token.len())).then(|| token.to_string())
}

/// `text` cut to at most `max` bytes, on a character boundary.
pub(crate) fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_unfold_continuations_and_split_on_blank_lines() {
        let text = "Reporting-MTA: dns; mx.example.com\r\n\r\nFinal-Recipient: rfc822; a@b.example\r\nDiagnostic-Code: smtp; 550 5.1.1\r\n  user unknown\r\n\r\n";
        let blocks = field_blocks(text);
        assert_eq!(blocks.len(), 2);
        assert_eq!(
            field(&blocks[1], "diagnostic-code"),
            Some("smtp; 550 5.1.1 user unknown")
        );
    }

    #[test]
    fn type_tags_are_stripped_only_when_they_are_tokens() {
        assert_eq!(strip_type("rfc822; a@b.c"), "a@b.c");
        assert_eq!(strip_type("smtp;550 x"), "550 x");
        assert_eq!(
            strip_type("550 5.1.10 RESOLVER.ADR.X; not found"),
            "550 5.1.10 RESOLVER.ADR.X; not found"
        );
    }

    #[test]
    fn addresses_are_found_and_normalised() {
        let found = scan_addresses("<Jane.Doe@Example.COM>: 550 no. Also bob@x.org.", 10);
        let addresses: Vec<_> = found.into_iter().map(|(_, a)| a).collect();
        assert_eq!(addresses, ["Jane.Doe@example.com", "bob@x.org"]);
        assert!(scan_addresses("user@localhost and @ alone", 10).is_empty());
    }

    #[test]
    fn codes_are_found_with_boundaries() {
        let found =
            find_code("Mon, 3 Jun 2024 10:00 host [192.0.2.10] said: 550-5.1.1 nope").unwrap();
        assert_eq!(
            (found.code, found.enhanced.as_deref()),
            (Some(550), Some("5.1.1"))
        );
        let found = find_code("unknown <mx.example #5.1.1>").unwrap();
        assert_eq!(
            (found.code, found.enhanced.as_deref()),
            (None, Some("5.1.1"))
        );
        assert_eq!(find_code("version 4.96 at 192.0.2.5 in 2024"), None);
        assert_eq!(
            parse_status("5.2.2 (mailbox full)").as_deref(),
            Some("5.2.2")
        );
        assert_eq!(parse_status("five"), None);
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
    }
}
