//! Tracking tokens: compact, URL-safe and HMAC-signed, so the tracking server can check one
//! without a lookup. A token names what was fetched (open pixel, a link, the unsubscribe
//! page, the preference page), the campaign (its number in the store), the A/B variant, the recipient (its
//! sequence number) and, for links, the link's index.
//!
//! ```text
//! kind:u8 campaign:u32be variant:u8 seq:u40be link:u16be | mac: 12 bytes of HMAC-SHA256
//! → 25 bytes → 34 characters of unpadded base64url
//! ```

use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

const PAYLOAD: usize = 13;
const MAC: usize = 12;
/// The length of every encoded token.
pub const TOKEN_CHARS: usize = 34;
/// The shortest tracking key accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 16;

/// What a token stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// The open pixel.
    Open,
    /// A tracked link.
    Click,
    /// The one-click unsubscribe URL.
    Unsubscribe,
    /// The recipient's preference page (topics; issue 22).
    Preferences,
    /// The recipient's own message, re-rendered in a browser (`{{ view_url }}`).
    View,
}

impl TokenKind {
    fn byte(self) -> u8 {
        match self {
            TokenKind::Open => 1,
            TokenKind::Click => 2,
            TokenKind::Unsubscribe => 3,
            TokenKind::Preferences => 4,
            TokenKind::View => 5,
        }
    }

    fn from_byte(byte: u8) -> Option<TokenKind> {
        match byte {
            1 => Some(TokenKind::Open),
            2 => Some(TokenKind::Click),
            3 => Some(TokenKind::Unsubscribe),
            4 => Some(TokenKind::Preferences),
            5 => Some(TokenKind::View),
            _ => None,
        }
    }
}

/// What a verified token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Token {
    /// Open, click or unsubscribe.
    pub kind: TokenKind,
    /// The campaign's number in the store.
    pub campaign: u32,
    /// The A/B variant (0 when the campaign has none).
    pub variant: u8,
    /// The recipient's sequence number in the campaign.
    pub seq: u64,
    /// The link's index (clicks only; 0 otherwise).
    pub link: u16,
}

/// Signs and checks tokens with the tracking key.
#[derive(Clone)]
pub struct TokenKey {
    key: hmac::Key,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(<redacted>)")
    }
}

impl TokenKey {
    /// A key from the secret bytes (at least [`MIN_KEY_BYTES`]; the caller checks).
    pub fn new(secret: &[u8]) -> TokenKey {
        TokenKey {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    /// The HMAC key itself, for the other signatures of the tracking server (CSRF tokens).
    pub(super) fn hmac_key(&self) -> &hmac::Key {
        &self.key
    }

    /// A short, non-secret fingerprint of the key, to tell which key signed a campaign's
    /// tokens without revealing it.
    pub fn fingerprint(&self) -> String {
        let tag = hmac::sign(&self.key, b"volley tracking key fingerprint");
        data_encoding::HEXLOWER.encode(&tag.as_ref()[..6])
    }

    /// The encoded token for `token`.
    pub fn encode(&self, token: &Token) -> String {
        let mut bytes = [0u8; PAYLOAD + MAC];
        bytes[0] = token.kind.byte();
        bytes[1..5].copy_from_slice(&token.campaign.to_be_bytes());
        bytes[5] = token.variant;
        bytes[6..11].copy_from_slice(&token.seq.to_be_bytes()[3..]);
        bytes[11..13].copy_from_slice(&token.link.to_be_bytes());
        let tag = hmac::sign(&self.key, &bytes[..PAYLOAD]);
        bytes[PAYLOAD..].copy_from_slice(&tag.as_ref()[..MAC]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The token `text` stands for, if it is well formed and was signed with this key.
    pub fn decode(&self, text: &str) -> Option<Token> {
        if text.len() != TOKEN_CHARS {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(text.as_bytes()).ok()?;
        if bytes.len() != PAYLOAD + MAC {
            return None;
        }
        let (payload, mac) = bytes.split_at(PAYLOAD);
        let tag = hmac::sign(&self.key, payload);
        aws_lc_rs::constant_time::verify_slices_are_equal(&tag.as_ref()[..MAC], mac).ok()?;
        let mut seq = [0u8; 8];
        seq[3..].copy_from_slice(&payload[6..11]);
        Some(Token {
            kind: TokenKind::from_byte(payload[0])?,
            campaign: u32::from_be_bytes(payload[1..5].try_into().ok()?),
            variant: payload[5],
            seq: u64::from_be_bytes(seq),
            link: u16::from_be_bytes(payload[11..13].try_into().ok()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> TokenKey {
        TokenKey::new(b"a tracking key of some length")
    }

    fn sample() -> Token {
        Token {
            kind: TokenKind::Click,
            campaign: 7,
            variant: 2,
            seq: 1_234_567,
            link: 3,
        }
    }

    #[test]
    fn tokens_round_trip_and_are_url_safe() {
        let key = key();
        for kind in [TokenKind::Open, TokenKind::Click, TokenKind::Unsubscribe] {
            let token = Token { kind, ..sample() };
            let text = key.encode(&token);
            assert_eq!(text.len(), TOKEN_CHARS);
            assert!(text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            assert_eq!(key.decode(&text), Some(token));
        }
        let big = Token {
            seq: (1 << 40) - 1,
            campaign: u32::MAX,
            link: u16::MAX,
            ..sample()
        };
        assert_eq!(key.decode(&key.encode(&big)), Some(big));
    }

    #[test]
    fn forged_altered_and_foreign_tokens_are_refused() {
        let key = key();
        let text = key.encode(&sample());
        assert_eq!(TokenKey::new(b"another key entirely!").decode(&text), None);
        for i in 0..text.len() {
            let mut altered: Vec<u8> = text.bytes().collect();
            altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(altered).unwrap();
            assert_eq!(key.decode(&altered), None, "position {i}");
        }
        for bad in [
            "",
            "short",
            &text[1..],
            &format!("{text}x"),
            "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
        ] {
            assert_eq!(key.decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_fingerprint_names_the_key_without_revealing_it() {
        assert_eq!(key().fingerprint(), key().fingerprint());
        assert_ne!(
            key().fingerprint(),
            TokenKey::new(b"another key entirely!").fingerprint()
        );
        assert_eq!(key().fingerprint().len(), 12);
    }

    fn any_token() -> impl proptest::strategy::Strategy<Value = Token> {
        use proptest::prelude::*;
        (
            prop::sample::select(vec![
                TokenKind::Open,
                TokenKind::Click,
                TokenKind::Unsubscribe,
            ]),
            any::<u32>(),
            any::<u8>(),
            0u64..(1 << 40),
            any::<u16>(),
        )
            .prop_map(|(kind, campaign, variant, seq, link)| Token {
                kind,
                campaign,
                variant,
                seq,
                link,
            })
    }

    proptest::proptest! {
        #[test]
        fn no_input_panics_or_passes_unsigned(text in "\\PC{0,80}") {
            let key = key();
            if let Some(token) = key.decode(&text) {
                proptest::prop_assert_eq!(key.encode(&token), text);
            }
        }

        #[test]
        fn any_token_round_trips_and_no_mutation_of_it_decodes(
            token in any_token(),
            at in proptest::prelude::any::<proptest::sample::Index>(),
            with in proptest::sample::select(
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/.".to_vec(),
            ),
        ) {
            let key = key();
            let text = key.encode(&token);
            proptest::prop_assert_eq!(key.decode(&text), Some(token));
            let mut mutated = text.clone().into_bytes();
            let i = at.index(mutated.len());
            proptest::prop_assume!(mutated[i] != with);
            mutated[i] = with;
            let mutated = String::from_utf8(mutated).unwrap();
            proptest::prop_assert_eq!(key.decode(&mutated), None, "{} -> {}", text, mutated);
        }
    }
}
