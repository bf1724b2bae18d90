//! The preference page's CSRF defence (issue 22). The page's form carries a token bound to
//! the recipient's page and the time it was shown:
//!
//! ```text
//! <issued: unix seconds>.<base64url(HMAC-SHA256(tracking key,
//!     "volley preferences csrf" 0 <page token> 0 <issued>))[..16 bytes]>
//! ```
//!
//! A POST is accepted only with a token that verifies for that page, issued at most
//! [`CSRF_LIFETIME_SECS`] ago (and not in the future beyond a minute of clock skew). No
//! cookie is involved (so `SameSite` has nothing to protect); besides the token, a request
//! whose `Origin` is not this server's own (scheme-less host comparison with `Host`) or
//! whose `Sec-Fetch-Site` says `cross-site`/`same-site` is refused. A cross-site page cannot
//! read the preference page, so it cannot learn a valid token.

use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::token::TokenKey;

/// How long a shown page's form may be submitted (two hours).
pub(crate) const CSRF_LIFETIME_SECS: u64 = 2 * 3_600;
/// Clock skew allowed for a token issued "in the future".
const SKEW_SECS: u64 = 60;
/// Bytes of the MAC kept.
const MAC: usize = 16;
/// The longest CSRF token accepted, in characters.
pub(crate) const MAX_CSRF_CHARS: usize = 64;

impl TokenKey {
    /// The MAC of the CSRF token of page `page` issued at `issued`.
    fn csrf_mac(&self, page: &str, issued: u64) -> hmac::Tag {
        let mut context = hmac::Context::with_key(self.hmac_key());
        context.update(b"volley preferences csrf\0");
        context.update(page.as_bytes());
        context.update(b"\0");
        context.update(issued.to_string().as_bytes());
        context.sign()
    }

    /// The CSRF token for the form of page `page` (the page's own token) shown at `now`
    /// (unix seconds).
    pub(crate) fn csrf_token(&self, page: &str, now: u64) -> String {
        let tag = self.csrf_mac(page, now);
        format!("{now}.{}", URL_SAFE_NO_PAD.encode(&tag.as_ref()[..MAC]))
    }

    /// Whether `given` is a CSRF token of page `page`, still valid at `now` (unix seconds).
    pub(crate) fn csrf_valid(&self, page: &str, given: &str, now: u64) -> bool {
        if given.len() > MAX_CSRF_CHARS {
            return false;
        }
        let Some((issued, mac)) = given.split_once('.') else {
            return false;
        };
        let Ok(issued) = issued.parse::<u64>() else {
            return false;
        };
        if issued > now.saturating_add(SKEW_SECS) || now.saturating_sub(issued) > CSRF_LIFETIME_SECS
        {
            return false;
        }
        let Ok(mac) = URL_SAFE_NO_PAD.decode(mac.as_bytes()) else {
            return false;
        };
        let tag = self.csrf_mac(page, issued);
        mac.len() == MAC
            && aws_lc_rs::constant_time::verify_slices_are_equal(&tag.as_ref()[..MAC], &mac).is_ok()
    }
}

/// Whether a request's `Origin`, `Host` and `Sec-Fetch-Site` fit a form posted from this
/// server's own page (absent headers pass: the CSRF token still has to verify).
pub(crate) fn same_origin(
    origin: Option<&str>,
    host: Option<&str>,
    fetch_site: Option<&str>,
) -> bool {
    if matches!(fetch_site, Some("cross-site" | "same-site")) {
        return false;
    }
    match origin {
        None => true,
        Some(origin) => {
            let authority = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            match (authority, host) {
                (Some(authority), Some(host)) => authority.eq_ignore_ascii_case(host),
                _ => false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> TokenKey {
        TokenKey::new(b"a tracking key of some length")
    }

    #[test]
    fn a_csrf_token_verifies_for_its_page_within_its_lifetime_only() {
        let key = key();
        let now = 1_765_000_000;
        let token = key.csrf_token("PAGE", now);
        assert!(key.csrf_valid("PAGE", &token, now));
        assert!(key.csrf_valid("PAGE", &token, now + CSRF_LIFETIME_SECS));
        assert!(!key.csrf_valid("PAGE", &token, now + CSRF_LIFETIME_SECS + 1));
        assert!(!key.csrf_valid("OTHER", &token, now));
        assert!(!key.csrf_valid("PAGE", &token, now - 2 * SKEW_SECS));
        let other = TokenKey::new(b"another tracking key of length");
        assert!(!other.csrf_valid("PAGE", &token, now));
        // A changed time with the old MAC, junk and overlong input.
        let (_, mac) = token.split_once('.').unwrap();
        assert!(!key.csrf_valid("PAGE", &format!("{}.{mac}", now - 1), now));
        for junk in ["", ".", "x.y", "1.", &"1".repeat(100), "-1.AAAA"] {
            assert!(!key.csrf_valid("PAGE", junk, now), "{junk}");
        }
    }

    #[test]
    fn only_this_servers_own_origin_passes() {
        let host = Some("t.example:8080");
        assert!(same_origin(None, host, None));
        assert!(same_origin(
            Some("http://t.example:8080"),
            host,
            Some("same-origin")
        ));
        assert!(same_origin(Some("https://T.example:8080"), host, None));
        assert!(!same_origin(Some("https://evil.example"), host, None));
        assert!(!same_origin(Some("null"), host, None));
        assert!(!same_origin(None, host, Some("cross-site")));
        assert!(!same_origin(Some("http://t.example:8080"), None, None));
    }
}
