//! Tracking tokens: decoding arbitrary text, and encoding then decoding arbitrary fields.
#![no_main]

use libfuzzer_sys::fuzz_target;
use volley::tracking::{Token, TokenKey, TokenKind};

fuzz_target!(|data: &[u8]| {
    let key = TokenKey::new(b"the fuzzing tracking key");
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(token) = key.decode(text) {
            // Only a token this key signed decodes, and it encodes back to the same text.
            assert_eq!(key.encode(&token), text);
        }
    }
    if data.len() >= 12 {
        let kind = match data[0] % 3 {
            0 => TokenKind::Open,
            1 => TokenKind::Click,
            _ => TokenKind::Unsubscribe,
        };
        let mut seq = [0u8; 8];
        seq[3..].copy_from_slice(&data[6..11]);
        let token = Token {
            kind,
            campaign: u32::from_be_bytes([data[1], data[2], data[3], data[4]]),
            variant: data[5],
            seq: u64::from_be_bytes(seq),
            link: u16::from_be_bytes([data[11], data[0]]),
        };
        let text = key.encode(&token);
        assert_eq!(key.decode(&text), Some(token));
        let other = TokenKey::new(b"some other tracking key");
        assert_eq!(other.decode(&text), None);
    }
});
