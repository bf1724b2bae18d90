//! Signing: turns loaded [`DkimKey`]s into a shareable [`Signer`] that produces the
//! `DKIM-Signature` header field(s) the composer prepends to each message.

use std::sync::Arc;

use mail_auth::common::crypto::DkimKey as SigningKey;
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};

use super::{DkimError, DkimKey};

/// The header fields signed when present, in this order (RFC 6376 §5.4.1 recommendations plus
/// the bulk-mail headers receivers look at).
pub const SIGNED_HEADERS: [&str; 12] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Feedback-ID",
];

struct KeySigner {
    domain: String,
    selector: String,
    signer: DkimSigner<SigningKey, Done>,
}

/// Signs messages with one or more keys (for example Ed25519 and RSA, to sign twice).
///
/// Cheap to clone and safe to share between composer threads.
#[derive(Clone)]
pub struct Signer {
    keys: Arc<[KeySigner]>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut list = f.debug_list();
        for key in self.keys.iter() {
            list.entry(&format_args!("{}._domainkey.{}", key.selector, key.domain));
        }
        list.finish()
    }
}

impl Signer {
    /// Builds a signer from loaded keys; each message gets one signature per key, in order.
    /// Signing is relaxed/relaxed over [`SIGNED_HEADERS`] (those present).
    pub fn new(keys: Vec<DkimKey>) -> Signer {
        let keys = keys
            .into_iter()
            .map(|key| KeySigner {
                signer: DkimSigner::from_key(key.key)
                    .domain(key.domain.clone())
                    .selector(key.selector.clone())
                    .headers(SIGNED_HEADERS)
                    .header_canonicalization(Canonicalization::Relaxed)
                    .body_canonicalization(Canonicalization::Relaxed),
                domain: key.domain,
                selector: key.selector,
            })
            .collect();
        Signer { keys }
    }

    /// Signs `message` (headers and body, CRLF line endings) and returns the
    /// `DKIM-Signature` header field(s), folded, each ending in CRLF, to prepend to it.
    pub fn sign(&self, message: &[u8]) -> Result<String, DkimError> {
        let mut out = String::with_capacity(self.keys.len() * 700);
        for key in self.keys.iter() {
            let signature = key.signer.sign(message).map_err(|source| DkimError::Sign {
                domain: key.domain.clone(),
                selector: key.selector.clone(),
                source,
            })?;
            out.push_str(&signature.to_header());
        }
        Ok(out)
    }

    /// The signing domains, one per key, in signing order.
    pub fn domains(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|key| key.domain.as_str())
    }

    /// How many keys (and so signatures per message) this signer has.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when the signer has no key and so signs nothing.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}
