//! DATA encoding: line-ending normalisation, dot-stuffing and the terminating dot, in one pass.
//!
//! Every bare LF and bare CR becomes CRLF, so a body can never hide an end-of-data sequence
//! such as `\n.\n` that a lenient server would honour (SMTP smuggling). Lines starting with
//! `.` get a second dot (RFC 5321 §4.5.2), the body always ends with CRLF and then `.\r\n`.

/// Encodes `message` into `out` (cleared first, its capacity reused), ready to be written
/// after a 354 reply, the terminating `.\r\n` included.
pub(crate) fn encode_data(message: &[u8], out: &mut Vec<u8>) {
    encode_lines(message, out, true);
    out.extend_from_slice(b".\r\n");
}

/// Encodes `message` for one `BDAT … LAST` chunk: line endings normalised to CRLF (so a bare
/// LF can never end a line the receiver treats differently), no dot-stuffing and no
/// terminating dot, since BDAT counts bytes instead.
pub(crate) fn encode_chunk(message: &[u8], out: &mut Vec<u8>) {
    encode_lines(message, out, false);
}

/// Normalises every line ending to CRLF (ensuring a final one), dot-stuffing when asked.
fn encode_lines(message: &[u8], out: &mut Vec<u8>, dot_stuff: bool) {
    out.clear();
    out.reserve(message.len() + message.len() / 32 + 5);
    let mut rest = message;
    while !rest.is_empty() {
        if dot_stuff && rest[0] == b'.' {
            out.push(b'.');
        }
        match rest.iter().position(|&b| b == b'\r' || b == b'\n') {
            None => {
                out.extend_from_slice(rest);
                out.extend_from_slice(b"\r\n");
                break;
            }
            Some(end) => {
                out.extend_from_slice(&rest[..end]);
                out.extend_from_slice(b"\r\n");
                let skip = if rest[end] == b'\r' && rest.get(end + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                rest = &rest[end + skip..];
            }
        }
    }
}

#[cfg(test)]
mod chunk_tests {
    use super::*;

    #[test]
    fn a_chunk_is_normalised_but_not_dot_stuffed() {
        let mut out = Vec::new();
        encode_chunk(b"a\n.b\r\n\n.\nend", &mut out);
        assert_eq!(out, b"a\r\n.b\r\n\r\n.\r\nend\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(input: &[u8]) -> String {
        let mut out = Vec::new();
        encode_data(input, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn crlf_body_passes_through_with_terminator() {
        assert_eq!(encode(b"a\r\nb\r\n"), "a\r\nb\r\n.\r\n");
        assert_eq!(encode(b""), ".\r\n");
    }

    #[test]
    fn final_crlf_is_added() {
        assert_eq!(encode(b"a\r\nb"), "a\r\nb\r\n.\r\n");
    }

    #[test]
    fn bare_lf_and_cr_become_crlf() {
        assert_eq!(encode(b"a\nb\rc\r\n\r\nd"), "a\r\nb\r\nc\r\n\r\nd\r\n.\r\n");
        assert_eq!(encode(b"a\r\r\n"), "a\r\n\r\n.\r\n");
    }

    #[test]
    fn leading_dots_are_stuffed() {
        assert_eq!(encode(b".\r\n..x\r\n.y"), "..\r\n...x\r\n..y\r\n.\r\n");
        assert_eq!(encode(b"a.b\r\n"), "a.b\r\n.\r\n");
    }

    #[test]
    fn smuggling_sequences_are_neutralised() {
        let out = encode(b"Subject: x\r\n\r\nhi\n.\nMAIL FROM:<evil@x>\r\n.\r\nmore\r\n");
        assert_eq!(
            out,
            "Subject: x\r\n\r\nhi\r\n..\r\nMAIL FROM:<evil@x>\r\n..\r\nmore\r\n.\r\n"
        );
        let out = encode(b"hi\r.\r\nx");
        assert_eq!(out, "hi\r\n..\r\nx\r\n.\r\n");
        // Only the final terminator is a lone dot line.
        assert_eq!(out.matches("\r\n.\r\n").count(), 1);
    }

    #[test]
    fn buffer_is_reused() {
        let mut out = Vec::new();
        encode_data(&[b'x'; 1000], &mut out);
        let cap = out.capacity();
        encode_data(b"y", &mut out);
        assert_eq!(out, b"y\r\n.\r\n");
        assert_eq!(out.capacity(), cap);
    }
}
