//! The SMTP reply parser over arbitrary bytes, taken reply by reply as a pipelining client
//! reads them, and the EHLO capabilities of every reply it accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use volley::smtp::{parse_reply_bytes, Capabilities};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some((reply, used))) = parse_reply_bytes(rest) {
        assert!(
            used > 0 && used <= rest.len(),
            "used {used} of {}",
            rest.len()
        );
        assert_eq!(rest[used - 1], b'\n', "a reply ends with its line ending");
        assert!((200..600).contains(&reply.code), "code {}", reply.code);
        // The same bytes alone give the same reply; without the last byte, none yet.
        assert_eq!(
            parse_reply_bytes(&rest[..used]),
            Ok(Some((reply.clone(), used)))
        );
        assert_eq!(parse_reply_bytes(&rest[..used - 1]), Ok(None));
        let _ = reply.to_string();
        let caps = Capabilities::from_ehlo(&reply);
        assert!(caps.auth.iter().all(|m| !m.is_empty()));
        rest = &rest[used..];
    }
});
