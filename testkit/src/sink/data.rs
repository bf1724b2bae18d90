//! The DATA body scanner: finds the `CRLF.CRLF` terminator in buffered input and un-dot-stuffs
//! complete lines as they arrive. Only a line that follows a CRLF counts as a line start, so a
//! bare-LF `\n.\r\n` cannot end the message early (SMTP smuggling).

/// Progress through one DATA body, kept between reads.
#[derive(Debug)]
pub(crate) struct DataScan {
    /// The un-stuffed body so far (empty when bodies are not kept or over the size limit).
    pub(crate) body: Vec<u8>,
    /// The un-stuffed size so far, counted even when the bytes are not kept.
    pub(crate) size: usize,
    /// Whether the next byte starts a line (the previous line ended with CRLF).
    at_line_start: bool,
    /// Keep bytes while `size` stays at or under this.
    keep_limit: usize,
}

impl DataScan {
    /// Starts a body; bytes are kept while the size stays within `keep_limit`.
    pub(crate) fn new(keep_limit: usize) -> DataScan {
        DataScan {
            body: Vec::new(),
            size: 0,
            at_line_start: true,
            keep_limit,
        }
    }

    /// Consumes the complete lines at the start of `input`. Returns how many bytes were
    /// consumed and whether the terminating `.CRLF` line was among them (it is consumed but
    /// not part of the body). An incomplete last line is left for the next call.
    pub(crate) fn feed(&mut self, input: &[u8]) -> (usize, bool) {
        let mut pos = 0;
        while let Some(nl) = input[pos..].iter().position(|&b| b == b'\n') {
            let line = &input[pos..pos + nl + 1];
            pos += nl + 1;
            let crlf = line.len() >= 2 && line[line.len() - 2] == b'\r';
            let mut content = line;
            if self.at_line_start && line.first() == Some(&b'.') {
                if line == b".\r\n" {
                    return (pos, true);
                }
                content = &line[1..];
            }
            self.at_line_start = crlf;
            self.push_raw(content);
        }
        (pos, false)
    }

    /// Appends body bytes as they are (BDAT chunks, un-stuffed DATA lines).
    pub(crate) fn push_raw(&mut self, bytes: &[u8]) {
        self.size += bytes.len();
        if self.size <= self.keep_limit {
            self.body.extend_from_slice(bytes);
        } else if !self.body.is_empty() {
            self.body = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(input: &[u8]) -> (Vec<u8>, usize, bool) {
        let mut scan = DataScan::new(usize::MAX);
        let (used, done) = scan.feed(input);
        (scan.body, used, done)
    }

    #[test]
    fn terminator_ends_the_body_and_leaves_what_follows() {
        let input = b"Subject: hi\r\n\r\nbody\r\n.\r\nMAIL FROM:<a@b>\r\n";
        let (body, used, done) = scan_all(input);
        assert!(done);
        assert_eq!(body, b"Subject: hi\r\n\r\nbody\r\n");
        assert_eq!(&input[used..], b"MAIL FROM:<a@b>\r\n");
    }

    #[test]
    fn leading_dots_are_unstuffed() {
        let (body, _, done) = scan_all(b"..hidden\r\n...\r\n.x\r\nend.\r\n.\r\n");
        assert!(done);
        assert_eq!(body, b".hidden\r\n..\r\nx\r\nend.\r\n");
    }

    #[test]
    fn bare_lf_dot_does_not_terminate() {
        let (body, _, done) = scan_all(b"a\n.\r\nb\r\n");
        assert!(!done);
        assert_eq!(body, b"a\n.\r\nb\r\n");
    }

    #[test]
    fn partial_lines_wait_for_more_input() {
        let mut scan = DataScan::new(usize::MAX);
        assert_eq!(scan.feed(b"abc\r\nde"), (5, false));
        assert_eq!(scan.feed(b"def\r\n."), (5, false));
        assert_eq!(scan.feed(b".\r\n"), (3, true));
        assert_eq!(scan.body, b"abc\r\ndef\r\n");
        assert_eq!(scan.size, 10);
    }

    #[test]
    fn over_the_keep_limit_only_counts() {
        let mut scan = DataScan::new(4);
        let (_, done) = scan.feed(b"abcdef\r\n.\r\n");
        assert!(done);
        assert!(scan.body.is_empty());
        assert_eq!(scan.size, 8);
    }
}
