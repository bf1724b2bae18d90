//! DKIM private keys: load them from PEM (file or environment), check them, derive the DNS
//! record to publish, and generate new ones. The loaded key feeds [`super::Signer`].

use std::fmt;
use std::path::{Path, PathBuf};

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair, RsaKeyPair};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use mail_auth::common::crypto::{DkimKey as SigningKey, Ed25519Key, RsaKey, Sha256};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;

use super::{rsa_bits, DkimError};

/// The smallest RSA modulus accepted for signing, in bits.
const MIN_RSA_BITS: usize = 2048;

/// Where a private key is to be read from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeySource {
    /// A PEM file (resolved path).
    File(PathBuf),
    /// An environment variable holding the PEM text (the variable's name).
    Env(String),
}

/// The signature algorithm a [`DkimKey`] signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// RSA with SHA-256 (`a=rsa-sha256`, `k=rsa`).
    Rsa,
    /// Ed25519 with SHA-256 (`a=ed25519-sha256`, RFC 8463, `k=ed25519`).
    Ed25519,
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyAlgorithm::Rsa => "rsa",
            KeyAlgorithm::Ed25519 => "ed25519",
        })
    }
}

/// A DKIM signing key with its domain (`d=`) and selector (`s=`).
///
/// `Debug` and `Display` show the domain, selector and algorithm, never key material.
pub struct DkimKey {
    pub(super) domain: String,
    pub(super) selector: String,
    algorithm: KeyAlgorithm,
    /// The TXT value to publish, computed once at load.
    dns_record: String,
    pub(super) key: SigningKey,
}

impl fmt::Debug for DkimKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkimKey")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl fmt::Display for DkimKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} key {}._domainkey.{}",
            self.algorithm, self.selector, self.domain
        )
    }
}

impl DkimKey {
    /// Loads a private key from PEM text: PKCS#8 (`PRIVATE KEY`, RSA or Ed25519) or PKCS#1
    /// (`RSA PRIVATE KEY`). RSA keys under 2048 bits are refused. `origin` says where the text
    /// came from (a file path, "environment variable X") and is used in errors, which never
    /// include key content.
    pub fn from_pem(
        domain: &str,
        selector: &str,
        pem: &str,
        origin: &str,
    ) -> Result<DkimKey, DkimError> {
        check_name(domain, "domain", origin)?;
        check_name(selector, "selector", origin)?;
        let der = PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|_| DkimError::NotPem {
            origin: origin.to_owned(),
        })?;
        let (algorithm, dns_record, key) = match &der {
            PrivateKeyDer::Pkcs8(pkcs8) => {
                let bytes = pkcs8.secret_pkcs8_der();
                match Ed25519KeyPair::from_pkcs8_maybe_unchecked(bytes) {
                    Ok(pair) => load_ed25519(&pair, bytes, origin)?,
                    Err(_) => load_rsa(
                        RsaKeyPair::from_pkcs8(bytes),
                        rsa_bits::pkcs8_modulus_bits(bytes),
                        &der,
                        origin,
                    )?,
                }
            }
            PrivateKeyDer::Pkcs1(pkcs1) => {
                let bytes = pkcs1.secret_pkcs1_der();
                load_rsa(
                    RsaKeyPair::from_der(bytes),
                    rsa_bits::pkcs1_modulus_bits(bytes),
                    &der,
                    origin,
                )?
            }
            PrivateKeyDer::Sec1(_) => {
                return Err(DkimError::UnsupportedKey {
                    origin: origin.to_owned(),
                    found: "SEC1 elliptic-curve key",
                })
            }
            _ => {
                return Err(DkimError::UnsupportedKey {
                    origin: origin.to_owned(),
                    found: "key in an unknown format",
                })
            }
        };
        Ok(DkimKey {
            domain: domain.to_ascii_lowercase(),
            selector: selector.to_owned(),
            algorithm,
            dns_record,
            key,
        })
    }

    /// Loads a private key from where `source` says (see [`DkimKey::from_pem`]); errors name
    /// the file or the environment variable, never the key. An unset variable reads as empty
    /// text, which is refused as not PEM.
    pub fn load(domain: &str, selector: &str, source: &KeySource) -> Result<DkimKey, DkimError> {
        match source {
            KeySource::File(path) => DkimKey::from_file(domain, selector, path),
            KeySource::Env(var) => {
                let pem = std::env::var(var).unwrap_or_default();
                DkimKey::from_pem(
                    domain,
                    selector,
                    &pem,
                    &format!("environment variable {var}"),
                )
            }
        }
    }

    /// Loads a PEM private key from a file (see [`DkimKey::from_pem`]); errors name the file.
    pub fn from_file(domain: &str, selector: &str, path: &Path) -> Result<DkimKey, DkimError> {
        let pem = std::fs::read_to_string(path).map_err(|source| DkimError::Read {
            path: path.to_owned(),
            source,
        })?;
        DkimKey::from_pem(domain, selector, &pem, &path.display().to_string())
    }

    /// The signing domain (`d=`), lower-cased.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The selector (`s=`): the key's record lives at `selector._domainkey.domain`.
    pub fn selector(&self) -> &str {
        &self.selector
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The name of the TXT record to publish: `selector._domainkey.domain`.
    pub fn dns_name(&self) -> String {
        format!("{}._domainkey.{}", self.selector, self.domain)
    }

    /// The TXT value to publish: `v=DKIM1; k=rsa; p=<base64 SubjectPublicKeyInfo>`, or
    /// `k=ed25519` with the raw 32-byte public key.
    pub fn dns_record(&self) -> Result<String, DkimError> {
        Ok(self.dns_record.clone())
    }
}

fn load_ed25519(
    pair: &Ed25519KeyPair,
    pkcs8: &[u8],
    origin: &str,
) -> Result<(KeyAlgorithm, String, SigningKey), DkimError> {
    let record = format!(
        "v=DKIM1; k=ed25519; p={}",
        BASE64.encode(pair.public_key().as_ref())
    );
    let key = Ed25519Key::from_pkcs8_maybe_unchecked_der(pkcs8).map_err(|_| invalid(origin))?;
    Ok((KeyAlgorithm::Ed25519, record, SigningKey::Ed25519(key)))
}

fn load_rsa(
    parsed: Result<RsaKeyPair, aws_lc_rs::error::KeyRejected>,
    der_bits: Option<usize>,
    der: &PrivateKeyDer<'_>,
    origin: &str,
) -> Result<(KeyAlgorithm, String, SigningKey), DkimError> {
    let too_small = |bits| DkimError::RsaKeyTooSmall {
        origin: origin.to_owned(),
        bits,
    };
    if let Some(bits) = der_bits.filter(|&bits| bits < MIN_RSA_BITS) {
        return Err(too_small(bits));
    }
    let pair = parsed.map_err(|rejected| DkimError::InvalidKey {
        origin: origin.to_owned(),
        reason: rejected.description_(),
    })?;
    let bits = pair.public_modulus_len() * 8;
    if bits < MIN_RSA_BITS {
        return Err(too_small(bits));
    }
    let spki: PublicKeyX509Der<'static> =
        pair.public_key().as_der().map_err(|_| invalid(origin))?;
    let record = format!("v=DKIM1; k=rsa; p={}", BASE64.encode(spki.as_ref()));
    let key = RsaKey::<Sha256>::from_key_der(der.clone_key()).map_err(|_| invalid(origin))?;
    Ok((KeyAlgorithm::Rsa, record, SigningKey::Rsa(key)))
}

fn invalid(origin: &str) -> DkimError {
    DkimError::InvalidKey {
        origin: origin.to_owned(),
        reason: "rejected by the DKIM signer",
    }
}

/// Refuses names that would break the `DKIM-Signature` header or the DNS lookup.
fn check_name(value: &str, field: &'static str, origin: &str) -> Result<(), DkimError> {
    let valid = !value.is_empty()
        && value.len() <= 253
        && value
            .split('.')
            .all(|label| !label.is_empty() && label.len() <= 63)
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if valid {
        Ok(())
    } else {
        Err(DkimError::InvalidName {
            origin: origin.to_owned(),
            field,
            value: value.to_owned(),
        })
    }
}

/// The modulus size in bits of an RSA public key in `SubjectPublicKeyInfo` DER (the decoded
/// `p=` of a `k=rsa` DKIM record); `None` when the bytes are not such a key.
pub fn rsa_public_key_bits(spki: &[u8]) -> Option<usize> {
    rsa_bits::spki_modulus_bits(spki)
}

/// Generates a new RSA-2048 private key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
pub fn generate_rsa_2048_pem() -> Result<String, DkimError> {
    let failed = || DkimError::Generate {
        algorithm: "RSA-2048",
    };
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| failed())?;
    let der: Pkcs8V1Der<'static> = pair.as_der().map_err(|_| failed())?;
    Ok(pem_encode("PRIVATE KEY", der.as_ref()))
}

/// Generates a new Ed25519 private key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
pub fn generate_ed25519_pem() -> Result<String, DkimError> {
    let pair = Ed25519KeyPair::generate().map_err(|_| DkimError::Generate {
        algorithm: "Ed25519",
    })?;
    let der: Pkcs8V1Der<'static> = pair.as_der().map_err(|_| DkimError::Generate {
        algorithm: "Ed25519",
    })?;
    Ok(pem_encode("PRIVATE KEY", der.as_ref()))
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    let body = BASE64.encode(der);
    let mut out = String::with_capacity(body.len() + body.len() / 64 + 64);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for line in body.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures/dkim")
            .join(name)
    }

    fn fixture_text(name: &str) -> String {
        std::fs::read_to_string(fixture(name)).unwrap()
    }

    #[test]
    fn rsa_fixture_loads_and_matches_its_txt_record() {
        let key = DkimKey::from_file("example.com", "rsa", &fixture("rsa2048.pem")).unwrap();
        assert_eq!(key.algorithm(), KeyAlgorithm::Rsa);
        assert_eq!(key.dns_name(), "rsa._domainkey.example.com");
        assert_eq!(
            key.dns_record().unwrap(),
            fixture_text("rsa2048.txt").trim()
        );
    }

    #[test]
    fn pkcs1_rsa_key_loads_with_the_same_public_key() {
        let key = DkimKey::from_file("example.com", "rsa", &fixture("rsa2048-pkcs1.pem")).unwrap();
        assert_eq!(key.algorithm(), KeyAlgorithm::Rsa);
        assert_eq!(
            key.dns_record().unwrap(),
            fixture_text("rsa2048.txt").trim()
        );
    }

    #[test]
    fn ed25519_fixture_loads_and_matches_its_txt_record() {
        let key = DkimKey::from_file("example.com", "ed", &fixture("ed25519.pem")).unwrap();
        assert_eq!(key.algorithm(), KeyAlgorithm::Ed25519);
        assert_eq!(
            key.dns_record().unwrap(),
            fixture_text("ed25519.txt").trim()
        );
    }

    #[test]
    fn rsa_public_key_size_is_read_from_the_published_record() {
        let record = fixture_text("rsa2048.txt");
        let p = record.trim().rsplit("p=").next().unwrap();
        let spki = BASE64.decode(p).unwrap();
        assert_eq!(rsa_public_key_bits(&spki), Some(2048));
        assert_eq!(rsa_public_key_bits(b"not a key"), None);
    }

    #[test]
    fn rsa_1024_is_refused_with_its_size() {
        let err = DkimKey::from_file("example.com", "old", &fixture("rsa1024.pem")).unwrap_err();
        assert!(
            matches!(err, DkimError::RsaKeyTooSmall { bits: 1024, .. }),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("1024 bits") && text.contains("2048"),
            "{text}"
        );
        assert!(text.contains("rsa1024.pem"), "{text}");
    }

    #[test]
    fn errors_never_contain_key_material() {
        let pem = fixture_text("rsa2048.pem");
        let body_line = pem.lines().nth(1).unwrap();
        // A corrupted body: valid PEM framing, invalid key inside.
        let corrupted = pem.replacen(body_line, &"A".repeat(body_line.len()), 1);
        let small = fixture_text("rsa1024.pem");
        let small_line = small.lines().nth(1).unwrap().to_owned();
        let cases = [
            (corrupted.clone(), body_line.to_owned()),
            (
                pem.replace("-----END PRIVATE KEY-----", ""),
                body_line.to_owned(),
            ),
            (small, small_line),
        ];
        for (text, secret) in cases {
            let err = DkimKey::from_pem("example.com", "rsa", &text, "environment variable K")
                .unwrap_err();
            let shown = format!("{err} {err:?}");
            assert!(
                !shown.contains(&secret[..20]),
                "leaked key material: {shown}"
            );
            assert!(shown.contains("environment variable K"), "{shown}");
        }
    }

    #[test]
    fn debug_and_display_hide_the_key() {
        let key = DkimKey::from_file("example.com", "ed", &fixture("ed25519.pem")).unwrap();
        let shown = format!("{key} {key:?}");
        assert!(shown.contains("ed._domainkey.example.com"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn not_pem_and_bad_names_are_refused() {
        let err = DkimKey::from_pem("example.com", "s", "hello", "x").unwrap_err();
        assert!(matches!(err, DkimError::NotPem { .. }), "{err:?}");
        let pem = fixture_text("ed25519.pem");
        let err = DkimKey::from_pem("example.com", "a;b", &pem, "x").unwrap_err();
        assert!(matches!(
            err,
            DkimError::InvalidName {
                field: "selector",
                ..
            }
        ));
        let err = DkimKey::from_pem("", "s", &pem, "x").unwrap_err();
        assert!(matches!(
            err,
            DkimError::InvalidName {
                field: "domain",
                ..
            }
        ));
    }

    #[test]
    fn missing_file_names_the_path() {
        let err =
            DkimKey::from_file("example.com", "s", Path::new("/nonexistent/k.pem")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/k.pem"));
    }

    #[test]
    fn generated_keys_load() {
        let rsa = generate_rsa_2048_pem().unwrap();
        assert!(rsa.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let key = DkimKey::from_pem("example.com", "gen", &rsa, "generated").unwrap();
        assert_eq!(key.algorithm(), KeyAlgorithm::Rsa);
        let ed = generate_ed25519_pem().unwrap();
        let key = DkimKey::from_pem("example.com", "gen", &ed, "generated").unwrap();
        assert_eq!(key.algorithm(), KeyAlgorithm::Ed25519);
        assert!(key
            .dns_record()
            .unwrap()
            .starts_with("v=DKIM1; k=ed25519; p="));
    }
}
