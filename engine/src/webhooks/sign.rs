//! The Standard Webhooks signature (<https://www.standardwebhooks.com/>): the base64 of
//! HMAC-SHA256, keyed with the secret's bytes, over `"<webhook-id>.<webhook-timestamp>.<body>"`,
//! sent as `webhook-signature: v1,<base64>`.

use aws_lc_rs::hmac;
use base64::Engine as _;

/// The `webhook-signature` header value of `body`, sent as message `id` at `timestamp`
/// (seconds since the epoch), signed with `key` (the secret's decoded bytes).
pub(crate) fn signature(key: &[u8], id: &str, timestamp: u64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut context = hmac::Context::with_key(&key);
    context.update(id.as_bytes());
    context.update(b".");
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    let tag = context.sign();
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::decode_secret;

    #[test]
    fn the_standard_webhooks_test_vector_signs_alike() {
        // The specification's published example (also in every reference library's tests).
        let key = decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            signature(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn another_body_id_or_time_signs_differently() {
        let key = [7u8; 32];
        let base = signature(&key, "msg_1", 10, b"{}");
        assert_ne!(base, signature(&key, "msg_2", 10, b"{}"));
        assert_ne!(base, signature(&key, "msg_1", 11, b"{}"));
        assert_ne!(base, signature(&key, "msg_1", 10, b"{ }"));
        assert_ne!(base, signature(&[8u8; 32], "msg_1", 10, b"{}"));
    }
}
