//! Sign → verify round trips against the fixture keys in `fixtures/dkim/`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

const MESSAGE: &str = "From: Sender <news@example.com>\r\n\
To: reader@example.net\r\n\
Subject: Hello\r\n\
Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\
Message-ID: <abc@example.com>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Hello reader,\r\n\
this is the body.\r\n";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/dkim")
        .join(name)
}

fn rsa_key() -> DkimKey {
    DkimKey::from_file("example.com", "rsa", &fixture("rsa2048.pem")).unwrap()
}

fn ed_key() -> DkimKey {
    DkimKey::from_file("example.com", "ed", &fixture("ed25519.pem")).unwrap()
}

fn records() -> Vec<(String, String)> {
    let read = |name: &str| std::fs::read_to_string(fixture(name)).unwrap();
    vec![
        (
            "rsa._domainkey.example.com".to_owned(),
            read("rsa2048.txt").trim().to_owned(),
        ),
        (
            "ed._domainkey.example.com".to_owned(),
            read("ed25519.txt").trim().to_owned(),
        ),
    ]
}

fn signed(signer: &Signer, message: &str) -> Vec<u8> {
    let mut out = signer.sign(message.as_bytes()).unwrap().into_bytes();
    out.extend_from_slice(message.as_bytes());
    out
}

async fn check(message: &[u8]) -> Vec<VerifyResult> {
    tokio::time::timeout(Duration::from_secs(10), verify(message, &records()))
        .await
        .unwrap()
}

#[tokio::test]
async fn rsa_signature_verifies() {
    let signer = Signer::new(vec![rsa_key()]);
    let header = signer.sign(MESSAGE.as_bytes()).unwrap();
    assert!(
        header.starts_with("DKIM-Signature: v=1; a=rsa-sha256;"),
        "{header}"
    );
    assert!(header.contains("c=relaxed/relaxed"), "{header}");
    assert!(header.ends_with("\r\n"));
    let results = check(&signed(&signer, MESSAGE)).await;
    assert_eq!(results.len(), 1);
    assert!(results[0].pass, "{results:?}");
    assert_eq!(results[0].domain, "example.com");
    assert_eq!(results[0].selector, "rsa");
}

#[tokio::test]
async fn ed25519_signature_verifies() {
    let signer = Signer::new(vec![ed_key()]);
    let message = signed(&signer, MESSAGE);
    assert!(String::from_utf8_lossy(&message).contains("a=ed25519-sha256"));
    let results = check(&message).await;
    assert_eq!(results.len(), 1);
    assert!(results[0].pass, "{results:?}");
    assert_eq!(results[0].selector, "ed");
}

#[tokio::test]
async fn both_keys_sign_and_both_verify() {
    let signer = Signer::new(vec![ed_key(), rsa_key()]);
    assert_eq!(signer.domains().collect::<Vec<_>>(), ["example.com"; 2]);
    let results = check(&signed(&signer, MESSAGE)).await;
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(results.iter().all(|r| r.pass), "{results:?}");
    let mut selectors: Vec<_> = results.iter().map(|r| r.selector.as_str()).collect();
    selectors.sort_unstable();
    assert_eq!(selectors, ["ed", "rsa"]);
}

#[tokio::test]
async fn tampered_body_fails() {
    let signer = Signer::new(vec![rsa_key(), ed_key()]);
    let message = String::from_utf8(signed(&signer, MESSAGE)).unwrap();
    let tampered = message.replace("this is the body", "this is the b0dy");
    let results = check(tampered.as_bytes()).await;
    assert_eq!(results.len(), 2);
    assert!(results.iter().all(|r| !r.pass), "{results:?}");
}

#[tokio::test]
async fn tampered_signed_header_fails() {
    let signer = Signer::new(vec![rsa_key()]);
    let message = String::from_utf8(signed(&signer, MESSAGE)).unwrap();
    let tampered = message.replace("Subject: Hello", "Subject: Hullo");
    let results = check(tampered.as_bytes()).await;
    assert!(!results[0].pass, "{results:?}");
}

#[tokio::test]
async fn missing_record_fails_without_network() {
    let signer = Signer::new(vec![rsa_key()]);
    let message = signed(&signer, MESSAGE);
    let results = tokio::time::timeout(Duration::from_secs(10), verify(&message, &[]))
        .await
        .unwrap();
    assert!(!results[0].pass);
    assert!(results[0].detail.contains("no key record"), "{results:?}");
}

#[test]
fn signer_is_shareable() {
    fn assert_shareable<T: Clone + Send + Sync + 'static>() {}
    assert_shareable::<Signer>();
}
