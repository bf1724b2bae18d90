//! The DKIM row of each `[[dkim]]` entry: the private key loads, and the public key published
//! at `selector._domainkey.domain` is the same key.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use super::{tags, Check, Dns, Status, TxtAnswer};
use crate::config::DkimSettings;
use crate::dkim::{rsa_public_key_bits, DkimKey, KeyAlgorithm};

/// RSA keys below this many bits are weak (and refused by some receivers).
const STRONG_RSA_BITS: usize = 2048;

/// A DKIM key record (`v=DKIM1; k=…; p=…`), as far as the checks care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct KeyRecord {
    /// `k=`, lower-cased; `rsa` when absent (RFC 6376).
    pub(super) algorithm: String,
    /// The decoded `p=`; empty means the key was revoked.
    pub(super) public_key: Vec<u8>,
    /// `t=y`: the domain is testing DKIM, receivers treat failures as unsigned.
    pub(super) testing: bool,
}

/// Parses a DKIM key record; `None` when the text is not one (another kind of TXT record, or
/// a `p=` that is not base64).
pub(super) fn parse_record(text: &str) -> Option<KeyRecord> {
    let tags = tags(text);
    if let Some((tag, value)) = tags.first() {
        if tag == "v" && !value.eq_ignore_ascii_case("DKIM1") {
            return None;
        }
    }
    let value = |name: &str| {
        tags.iter()
            .find(|(t, _)| t == name)
            .map(|(_, v)| v.as_str())
    };
    let p: String = value("p")?.split_whitespace().collect();
    Some(KeyRecord {
        algorithm: value("k").unwrap_or("rsa").to_ascii_lowercase(),
        public_key: BASE64.decode(p).ok()?,
        testing: value("t").is_some_and(|flags| flags.split(':').any(|f| f.trim() == "y")),
    })
}

/// The row for one `[[dkim]]` entry.
pub(super) async fn check(dns: &impl Dns, entry: &DkimSettings) -> Check {
    let name = format!("{}._domainkey.{}", entry.selector, entry.domain);
    let row = |status, detail: String| Check::new(format!("dkim {name}"), status, detail);
    let key = match entry.load_key() {
        Ok(key) => key,
        Err(error) => return row(Status::Fail, error.to_string()),
    };
    let Some(ours) = key.dns_record().ok().as_deref().and_then(parse_record) else {
        return row(
            Status::Fail,
            format!("cannot derive the public key of {key}"),
        );
    };
    let (status, detail) = match dns.txt(&name).await {
        TxtAnswer::Records(records) => compare(&ours, &records, &key),
        TxtAnswer::None => (
            Status::Fail,
            format!("no DKIM record: publish {}", publish(&key)),
        ),
        TxtAnswer::Failed(reason) => (Status::Fail, format!("cannot look up {name}: {reason}")),
    };
    row(status, detail)
}

/// The `dkim algorithms` row: a campaign signed only with Ed25519 keys fails, since Gmail,
/// Microsoft and Yahoo do not verify Ed25519 signatures (RFC 8463) and DMARC would then rest
/// on SPF alone. `None` when no key loads (their own rows say why).
pub(super) fn algorithms(entries: &[DkimSettings]) -> Option<Check> {
    let keys: Vec<DkimKey> = entries
        .iter()
        .filter_map(|entry| entry.load_key().ok())
        .collect();
    if keys.is_empty() {
        return None;
    }
    let rsa = keys
        .iter()
        .filter(|key| key.algorithm() == KeyAlgorithm::Rsa)
        .count();
    let (status, detail) = if rsa == 0 {
        (
            Status::Fail,
            "only Ed25519 keys: Gmail, Microsoft and Yahoo do not verify Ed25519 signatures \
             (RFC 8463), so DMARC would rest on SPF alone; add an RSA-2048 [[dkim]] key before \
             it (volley init writes one)"
                .to_owned(),
        )
    } else {
        let names: Vec<&str> = keys
            .iter()
            .map(|key| match key.algorithm() {
                KeyAlgorithm::Rsa => "RSA",
                KeyAlgorithm::Ed25519 => "Ed25519",
            })
            .collect();
        (
            Status::Pass,
            format!(
                "signed with {} (RSA verifies everywhere)",
                names.join(" then ")
            ),
        )
    };
    Some(Check::new("dkim algorithms", status, detail))
}

/// The published records against our key.
pub(super) fn compare(ours: &KeyRecord, records: &[String], key: &DkimKey) -> (Status, String) {
    let published: Vec<KeyRecord> = records.iter().filter_map(|r| parse_record(r)).collect();
    let Some(record) = published
        .iter()
        .find(|r| r.public_key == ours.public_key && r.algorithm == ours.algorithm)
    else {
        let found = match published.first() {
            None => "the TXT record there is not a DKIM key record".to_owned(),
            Some(r) if r.public_key.is_empty() => {
                "the published key is revoked (empty p=)".to_owned()
            }
            Some(r) => format!(
                "the published {} key does not match the private key",
                r.algorithm
            ),
        };
        return (Status::Fail, format!("{found}: publish {}", publish(key)));
    };
    let bits = (record.algorithm == "rsa")
        .then(|| rsa_public_key_bits(&record.public_key))
        .flatten();
    match bits {
        Some(bits) if bits < STRONG_RSA_BITS => (
            Status::Warn,
            format!("matches, but RSA-{bits} is weak: use RSA-2048 or Ed25519 (volley init generates one)"),
        ),
        _ if record.testing => (
            Status::Warn,
            format!(
                "matches, but t=y (testing) asks receivers to treat failures as unsigned: remove t=y from {}",
                key.dns_name()
            ),
        ),
        _ => (
            Status::Pass,
            format!("published {} key matches {}", record.algorithm, key),
        ),
    }
}

/// What to publish for `key`: `name TXT "record"`.
fn publish(key: &DkimKey) -> String {
    format!(
        "{} TXT \"{}\"",
        key.dns_name(),
        key.dns_record().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preflight::fake::FakeDns;
    use std::path::Path;

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures/dkim")
            .join(name)
    }

    fn record(name: &str) -> String {
        std::fs::read_to_string(fixture(name))
            .unwrap()
            .trim()
            .to_owned()
    }

    fn entry(file: &str) -> DkimSettings {
        DkimSettings {
            domain: "example.com".into(),
            selector: "s1".into(),
            key: crate::config::KeySource::File(fixture(file)),
        }
    }

    async fn run(file: &str, published: Option<&str>) -> Check {
        let mut dns = FakeDns::default();
        if let Some(text) = published {
            dns = dns.txt("s1._domainkey.example.com", text);
        }
        check(&dns, &entry(file)).await
    }

    #[test]
    fn records_parse_with_their_algorithm_key_and_flags() {
        let rsa = parse_record(&record("rsa2048.txt")).unwrap();
        assert_eq!(rsa.algorithm, "rsa");
        assert_eq!(rsa_public_key_bits(&rsa.public_key), Some(2048));
        let ed = parse_record("v=DKIM1; k=ed25519; t=s:y; p=AAAA").unwrap();
        assert_eq!((ed.algorithm.as_str(), ed.testing), ("ed25519", true));
        assert_eq!(ed.public_key, vec![0, 0, 0]);
        assert!(parse_record("v=spf1 -all").is_none());
        assert!(parse_record("v=DKIM1; p=not base64!").is_none());
        assert!(parse_record("v=DKIM1; p=").unwrap().public_key.is_empty());
    }

    #[test]
    fn only_ed25519_keys_fail_and_any_rsa_key_passes() {
        let ed = || entry("ed25519.pem");
        let rsa = || entry("rsa2048.pem");
        let only_ed = algorithms(&[ed()]).unwrap();
        assert_eq!(only_ed.status, Status::Fail);
        assert!(
            only_ed.detail.contains("do not verify Ed25519"),
            "{only_ed:?}"
        );
        let both = algorithms(&[rsa(), ed()]).unwrap();
        assert_eq!(both.status, Status::Pass);
        assert!(both.detail.contains("RSA then Ed25519"), "{both:?}");
        assert!(algorithms(&[entry("no-such-key.pem")]).is_none());
    }

    #[tokio::test]
    async fn the_published_key_matches() {
        for (pem, txt) in [
            ("rsa2048.pem", "rsa2048.txt"),
            ("ed25519.pem", "ed25519.txt"),
        ] {
            let row = run(pem, Some(&record(txt))).await;
            assert_eq!(row.status, Status::Pass, "{row:?}");
            assert_eq!(row.name, "dkim s1._domainkey.example.com");
        }
        // A PKCS#1 key is the same key as its PKCS#8 twin.
        let row = run("rsa2048-pkcs1.pem", Some(&record("rsa2048.txt"))).await;
        assert_eq!(row.status, Status::Pass, "{row:?}");
    }

    #[tokio::test]
    async fn a_missing_record_fails_and_says_what_to_publish() {
        let row = run("ed25519.pem", None).await;
        assert_eq!(row.status, Status::Fail);
        assert!(
            row.detail.contains(&format!(
                "s1._domainkey.example.com TXT \"{}\"",
                record("ed25519.txt")
            )),
            "{}",
            row.detail
        );
    }

    #[tokio::test]
    async fn another_key_fails() {
        let row = run("ed25519.pem", Some(&record("rsa2048.txt"))).await;
        assert_eq!(row.status, Status::Fail);
        assert!(row.detail.contains("does not match"), "{}", row.detail);
        let revoked = run("rsa2048.pem", Some("v=DKIM1; k=rsa; p=")).await;
        assert!(revoked.detail.contains("revoked"), "{}", revoked.detail);
    }

    #[tokio::test]
    async fn testing_mode_warns() {
        let text = record("ed25519.txt").replace("k=ed25519;", "k=ed25519; t=y;");
        let row = run("ed25519.pem", Some(&text)).await;
        assert_eq!(row.status, Status::Warn, "{row:?}");
        assert!(row.detail.contains("t=y"));
    }

    #[tokio::test]
    async fn a_weak_or_unreadable_private_key_fails_without_showing_it() {
        let row = run("rsa1024.pem", None).await;
        assert_eq!(row.status, Status::Fail);
        assert!(row.detail.contains("1024"), "{}", row.detail);
        let pem = std::fs::read_to_string(fixture("rsa1024.pem")).unwrap();
        let body_line = pem.lines().nth(1).unwrap();
        assert!(!row.detail.contains(body_line));
    }
}
