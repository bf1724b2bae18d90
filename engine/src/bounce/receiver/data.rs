//! The DATA body as it arrives, one piece at a time: the end marker (`<CRLF>.<CRLF>` only),
//! dot-unstuffing, and the size cap counted in bytes as they arrive.
//!
//! Only a line that is exactly `.` CRLF, after a line that ended in CRLF, ends the body: a
//! bare-LF `\n.\n` or `\r\n.\n` is body text (the SMTP smuggling attacks).

/// What to do with one piece of the body.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step<'a> {
    /// Keep these bytes (dot-unstuffed).
    Keep(&'a [u8]),
    /// The message is past the size cap: keep reading to the end, keep nothing.
    Discard,
    /// The end marker: the body is complete.
    End,
}

/// Where the body stands.
#[derive(Debug)]
pub(crate) struct Body {
    max: u64,
    size: u64,
    at_line_start: bool,
    after_crlf: bool,
}

impl Body {
    /// A new body that may hold `max` bytes.
    pub(crate) fn new(max: u64) -> Self {
        Body {
            max,
            size: 0,
            at_line_start: true,
            after_crlf: true,
        }
    }

    /// Bytes received so far (counted as they arrive, end marker excluded).
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Whether the body went past the size cap.
    pub(crate) fn too_big(&self) -> bool {
        self.size > self.max
    }

    /// Takes the next piece: a whole line (`whole`, ending in LF) or part of a long one.
    pub(crate) fn feed<'a>(&mut self, piece: &'a [u8], whole: bool) -> Step<'a> {
        let line_start = self.at_line_start;
        let after_crlf = self.after_crlf;
        self.at_line_start = whole;
        self.after_crlf = whole && piece.ends_with(b"\r\n");
        if line_start && after_crlf && piece == b".\r\n" {
            return Step::End;
        }
        self.size = self.size.saturating_add(piece.len() as u64);
        if self.too_big() {
            return Step::Discard;
        }
        match piece {
            [b'.', rest @ ..] if line_start => Step::Keep(rest),
            _ => Step::Keep(piece),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` split into lines (as the reader would) and returns what was kept and
    /// whether the end marker was seen.
    fn run(input: &[u8], max: u64) -> (Vec<u8>, bool, bool) {
        let mut body = Body::new(max);
        let mut kept = Vec::new();
        for line in input.split_inclusive(|&b| b == b'\n') {
            match body.feed(line, line.ends_with(b"\n")) {
                Step::Keep(bytes) => kept.extend_from_slice(bytes),
                Step::Discard => {}
                Step::End => return (kept, true, body.too_big()),
            }
        }
        (kept, false, body.too_big())
    }

    #[test]
    fn a_body_ends_at_crlf_dot_crlf() {
        let (kept, ended, _) = run(b"Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n", 1000);
        assert!(ended);
        assert_eq!(kept, b"Subject: x\r\n\r\nhello\r\n");
    }

    #[test]
    fn leading_dots_are_unstuffed() {
        let (kept, ended, _) = run(b"..hidden\r\n...\r\nx.y\r\n.\r\n", 1000);
        assert!(ended);
        assert_eq!(kept, b".hidden\r\n..\r\nx.y\r\n");
    }

    #[test]
    fn bare_lf_end_markers_do_not_end_the_body() {
        for smuggled in [
            &b"a\r\n\n.\nMAIL FROM:<x@y>\r\n"[..],
            b"a\r\n.\nMAIL FROM:<x@y>\r\n",
            b"a\n.\r\nMAIL FROM:<x@y>\r\n",
            b"a\r.\rMAIL FROM:<x@y>\r\n",
        ] {
            let mut input = smuggled.to_vec();
            input.extend_from_slice(b".\r\n");
            let (kept, ended, _) = run(&input, 1000);
            assert!(ended, "{smuggled:?}");
            assert!(
                kept.windows(9).any(|w| w == b"MAIL FROM"),
                "the smuggled command stays in the body: {smuggled:?}"
            );
        }
    }

    #[test]
    fn a_dot_in_a_long_line_piece_is_not_unstuffed() {
        let mut body = Body::new(1000);
        assert_eq!(body.feed(b"abc", false), Step::Keep(b"abc"));
        assert_eq!(body.feed(b".\r\n", true), Step::Keep(b".\r\n"));
        assert_eq!(body.feed(b".\r\n", true), Step::End);
    }

    #[test]
    fn past_the_cap_everything_is_discarded_but_the_end_is_still_found() {
        let (kept, ended, too_big) = run(b"0123456789\r\n0123456789\r\nmore\r\n.\r\n", 15);
        assert!(ended);
        assert!(too_big);
        assert_eq!(kept, b"0123456789\r\n");
    }

    #[test]
    fn a_body_of_exactly_the_cap_is_accepted() {
        let (kept, ended, too_big) = run(b"0123456789\r\n.\r\n", 12);
        assert!(ended && !too_big);
        assert_eq!(kept.len(), 12);
    }
}
