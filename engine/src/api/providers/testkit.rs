//! Test helpers: the provider fixtures, and signatures made by the `openssl` command line
//! (not by our code), so a test proves interoperability rather than self-consistency.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// `fixtures/providers`.
pub(super) fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/providers")
}

/// The text of `fixtures/providers/<name>`.
pub(super) fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixtures().join(name)).unwrap()
}

/// A fixture as JSON.
pub(super) fn fixture_json(name: &str) -> Value {
    serde_json::from_str(&fixture(name)).unwrap()
}

/// Runs `openssl args…` with `input` on stdin; its stdout. Fails loudly when openssl is not
/// installed (CI installs it: `scripts/test-deps.sh`).
pub(super) fn openssl(args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the provider tests need the openssl command line (apt-get install openssl)");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Base64 of `openssl dgst -<digest> -sign keys/<key>` over `data`.
pub(super) fn openssl_sign(key: &str, digest: &str, data: &[u8]) -> String {
    let key = fixtures().join("keys").join(key);
    let signature = openssl(
        &[
            "dgst",
            &format!("-{digest}"),
            "-sign",
            key.to_str().unwrap(),
        ],
        data,
    );
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(signature)
}

/// Hex of `openssl dgst -sha256 -hmac <key>` over `data`.
pub(super) fn openssl_hmac(key: &str, data: &[u8]) -> String {
    let out = openssl(&["dgst", "-sha256", "-hmac", key], data);
    let text = String::from_utf8(out).unwrap();
    text.trim().rsplit(' ').next().unwrap().to_owned()
}

/// The SNS string to sign of a `Notification`, written out as the SNS documentation lists
/// it ("Verifying the signatures of Amazon SNS messages"), independently of the code.
pub(super) fn sns_string_to_sign(sns: &Value) -> String {
    let field = |name: &str| sns[name].as_str().unwrap().to_owned();
    let mut out = format!(
        "Message\n{}\nMessageId\n{}\n",
        field("Message"),
        field("MessageId")
    );
    if sns.get("Subject").is_some() {
        out += &format!("Subject\n{}\n", field("Subject"));
    }
    if field("Type") != "Notification" {
        out += &format!("SubscribeURL\n{}\n", field("SubscribeURL"));
    }
    out += &format!("Timestamp\n{}\n", field("Timestamp"));
    if field("Type") != "Notification" {
        out += &format!("Token\n{}\n", field("Token"));
    }
    out += &format!("TopicArn\n{}\nType\n{}\n", field("TopicArn"), field("Type"));
    out
}

/// The test SNS topic.
pub(super) const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:ses-bounces";

/// An SNS `Notification` carrying `message` on [`TOPIC`], signed by `key` with signature
/// version `version` (1: SHA-1, 2: SHA-256).
pub(super) fn sns_notification(message: &str, key: &str, version: u8) -> Vec<u8> {
    let mut sns = fixture_json("ses/sns-notification.json");
    sns["Message"] = Value::String(message.to_owned());
    sns["TopicArn"] = Value::String(TOPIC.to_owned());
    sign_sns(&mut sns, key, version);
    serde_json::to_vec_pretty(&sns).unwrap()
}

/// Signs an SNS message in place.
pub(super) fn sign_sns(sns: &mut Value, key: &str, version: u8) {
    let digest = if version == 1 { "sha1" } else { "sha256" };
    sns["SignatureVersion"] = Value::String(version.to_string());
    let signature = openssl_sign(key, digest, sns_string_to_sign(sns).as_bytes());
    sns["Signature"] = Value::String(signature);
}

/// The SES fixture `name` as the compact JSON text SNS puts in `Message`, with `from`
/// replaced by `to` (to point it at a message or address of the test).
pub(super) fn ses_message(name: &str, replace: &[(&str, &str)]) -> String {
    let mut text = fixture(&format!("ses/{name}"));
    for (from, to) in replace {
        text = text.replace(from, to);
    }
    let value: Value = serde_json::from_str(&text).unwrap();
    serde_json::to_string(&value).unwrap()
}

/// A Mailgun fixture with its `signature` block made for `timestamp` and `token` by openssl
/// with `key`.
pub(super) fn mailgun_signed(name: &str, key: &str, timestamp: i64, token: &str) -> Vec<u8> {
    let mut value = fixture_json(&format!("mailgun/{name}"));
    let tag = openssl_hmac(key, format!("{timestamp}{token}").as_bytes());
    value["signature"] = serde_json::json!({
        "timestamp": timestamp.to_string(),
        "token": token,
        "signature": tag,
    });
    serde_json::to_vec(&value).unwrap()
}

/// `bytes` with the first `from` replaced by `to` (a change the signature must catch).
pub(super) fn tamper(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(text.contains(from), "{from} is not in the body");
    text.replacen(from, to, 1).into_bytes()
}

/// `[providers.ses]` with the test certificate and [`TOPIC`].
pub(super) fn ses_settings() -> crate::config::SesSettings {
    let pem = std::fs::read(fixtures().join("keys/sns-signing.pem")).unwrap();
    crate::config::SesSettings {
        signing_keys: crate::config::rsa_certificate_keys(&pem).unwrap(),
        topic_arns: vec![TOPIC.to_owned()],
    }
}

/// `[providers.sendgrid]` with the test key.
pub(super) fn sendgrid_settings() -> crate::config::SendgridSettings {
    let text = std::fs::read(fixtures().join("keys/sendgrid.pub")).unwrap();
    crate::config::SendgridSettings {
        public_key: crate::config::p256_public_key(&text).unwrap(),
    }
}

/// The test Mailgun signing key.
pub(super) const MAILGUN_KEY: &str = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0";

/// `[providers.mailgun]` with [`MAILGUN_KEY`].
pub(super) fn mailgun_settings() -> crate::config::MailgunSettings {
    crate::config::MailgunSettings {
        signing_key: MAILGUN_KEY.into(),
    }
}

/// `[providers.postmark]`: user `postmark`, password `hooks-password-0123`.
pub(super) fn postmark_settings() -> crate::config::PostmarkSettings {
    crate::config::PostmarkSettings {
        user: "postmark".to_owned(),
        password: "hooks-password-0123".into(),
    }
}

/// SendGrid's signature headers for `body` at `timestamp`, the signature made by openssl.
pub(super) fn sendgrid_signed(body: &[u8], timestamp: i64) -> axum::http::HeaderMap {
    use super::sendgrid::{SIGNATURE_HEADER, TIMESTAMP_HEADER};
    use axum::http::HeaderValue;
    let mut signed = timestamp.to_string().into_bytes();
    signed.extend_from_slice(body);
    let signature = openssl_sign("sendgrid.key", "sha256", &signed);
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(SIGNATURE_HEADER, HeaderValue::from_str(&signature).unwrap());
    headers.insert(TIMESTAMP_HEADER, HeaderValue::from(timestamp));
    headers
}
