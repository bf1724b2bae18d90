//! The checks behind each provider's authentication, all through aws-lc: RSA PKCS#1
//! signatures (SNS), ECDSA P-256 (SendGrid), HMAC-SHA256 (Mailgun), and secrets compared in
//! constant time (Postmark). Each answers yes or no: why a request was refused is the
//! caller's to say, never which byte differed.

use std::time::Duration;

use aws_lc_rs::signature::{self, UnparsedPublicKey};
use aws_lc_rs::{constant_time, digest, hmac};

use crate::model::Millis;

/// How far a signed timestamp may be from now, either way (SendGrid, Mailgun).
pub(crate) const MAX_SKEW: Duration = Duration::from_secs(5 * 60);

/// The RSA PKCS#1 digest an SNS `SignatureVersion` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RsaDigest {
    /// `SignatureVersion` 1.
    Sha1,
    /// `SignatureVersion` 2.
    Sha256,
}

/// Whether `sig` is a PKCS#1 v1.5 signature of `message` by one of `keys` (DER
/// `SubjectPublicKeyInfo`, 2048 to 8192 bits).
pub(crate) fn rsa(keys: &[Vec<u8>], digest: RsaDigest, message: &[u8], sig: &[u8]) -> bool {
    let algorithm = match digest {
        RsaDigest::Sha1 => &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
        RsaDigest::Sha256 => &signature::RSA_PKCS1_2048_8192_SHA256,
    };
    keys.iter().any(|key| {
        UnparsedPublicKey::new(algorithm, key)
            .verify(message, sig)
            .is_ok()
    })
}

/// Whether `sig` (ASN.1 DER) is an ECDSA P-256 SHA-256 signature of `message` by `key` (DER
/// `SubjectPublicKeyInfo`).
pub(crate) fn ecdsa_p256(key: &[u8], message: &[u8], sig: &[u8]) -> bool {
    UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, key)
        .verify(message, sig)
        .is_ok()
}

/// Whether `hex_tag` is the lowercase or uppercase hex of HMAC-SHA256(`key`, `message`);
/// the tag is compared in constant time.
pub(crate) fn hmac_sha256_hex(key: &[u8], message: &[u8], hex_tag: &str) -> bool {
    let Ok(tag) = data_encoding::HEXLOWER_PERMISSIVE.decode(hex_tag.trim().as_bytes()) else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::verify(&key, message, &tag).is_ok()
}

/// Whether two secrets are equal, compared in constant time (their SHA-256 digests, so
/// neither the content nor the length leaks through timing).
pub(crate) fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    let given = digest::digest(&digest::SHA256, given);
    let expected = digest::digest(&digest::SHA256, expected);
    constant_time::verify_slices_are_equal(given.as_ref(), expected.as_ref()).is_ok()
}

/// Whether a signed Unix timestamp (seconds) is within [`MAX_SKEW`] of `now`.
pub(crate) fn fresh(timestamp: i64, now: Millis) -> bool {
    let now = i128::from(now) / 1000;
    let skew = i128::from(MAX_SKEW.as_secs());
    (i128::from(timestamp) - now).abs() <= skew
}

/// Decodes standard base64 (with padding, whitespace ignored).
pub(crate) fn base64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_tags_are_checked_whatever_their_case() {
        // RFC 4231 test case 2.
        let tag = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert!(hmac_sha256_hex(
            b"Jefe",
            b"what do ya want for nothing?",
            tag
        ));
        assert!(hmac_sha256_hex(
            b"Jefe",
            b"what do ya want for nothing?",
            &tag.to_uppercase()
        ));
        assert!(!hmac_sha256_hex(
            b"Jefe",
            b"what do ya want for nothing!",
            tag
        ));
        assert!(!hmac_sha256_hex(
            b"Jefe",
            b"what do ya want for nothing?",
            "zz"
        ));
    }

    #[test]
    fn timestamps_count_five_minutes_either_way() {
        let now: Millis = 1_700_000_000_000;
        assert!(fresh(1_700_000_000, now));
        assert!(fresh(1_700_000_000 - 300, now));
        assert!(fresh(1_700_000_000 + 300, now));
        assert!(!fresh(1_700_000_000 - 301, now));
        assert!(!fresh(1_700_000_000 + 301, now));
        assert!(!fresh(i64::MIN, now));
    }

    #[test]
    fn secrets_compare_by_content() {
        assert!(same_secret(b"user:pass", b"user:pass"));
        assert!(!same_secret(b"user:pass", b"user:pasS"));
        assert!(!same_secret(b"", b"user:pass"));
    }
}
