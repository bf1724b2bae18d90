//! Errors of the `dkim` module: loading keys, generating keys and signing.
//!
//! No variant ever carries key material: a key is named by its `origin` (a file path or
//! "environment variable X"), never quoted.

use std::path::PathBuf;

/// Why a DKIM key could not be loaded, generated or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DkimError {
    /// The key file could not be read.
    #[error("cannot read DKIM key file {path}: {source}")]
    Read {
        /// The file that was being read.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The text holds no PEM private key block.
    #[error(
        "DKIM key from {origin} is not a PEM private key \
         (expected \"-----BEGIN PRIVATE KEY-----\" or \"-----BEGIN RSA PRIVATE KEY-----\")"
    )]
    NotPem {
        /// Where the key came from.
        origin: String,
    },
    /// The PEM block holds a kind of key DKIM signing does not support here.
    #[error("DKIM key from {origin} is a {found}; use an RSA (2048 bits or more) or Ed25519 key")]
    UnsupportedKey {
        /// Where the key came from.
        origin: String,
        /// What was found instead, e.g. "SEC1 elliptic-curve key".
        found: &'static str,
    },
    /// The PEM block could not be decoded as an RSA or Ed25519 private key.
    #[error("DKIM key from {origin} is not a valid RSA or Ed25519 private key ({reason})")]
    InvalidKey {
        /// Where the key came from.
        origin: String,
        /// The crypto library's short reason (never key content).
        reason: &'static str,
    },
    /// The RSA key is shorter than the 2048 bits receivers require.
    #[error("DKIM RSA key from {origin} has {bits} bits; at least 2048 are required")]
    RsaKeyTooSmall {
        /// Where the key came from.
        origin: String,
        /// The key's modulus size in bits.
        bits: usize,
    },
    /// The signing domain or selector is not a valid DNS label sequence.
    #[error("DKIM {field} {value:?} for the key from {origin} is not a valid DNS name")]
    InvalidName {
        /// Where the key came from.
        origin: String,
        /// "domain" or "selector".
        field: &'static str,
        /// The offending value.
        value: String,
    },
    /// Key generation failed in the crypto library.
    #[error("could not generate a {algorithm} DKIM key")]
    Generate {
        /// "RSA-2048" or "Ed25519".
        algorithm: &'static str,
    },
    /// Signing a message failed.
    #[error("DKIM signing for {selector}._domainkey.{domain} failed: {source}")]
    Sign {
        /// The signing domain (d=).
        domain: String,
        /// The selector (s=).
        selector: String,
        /// The error mail-auth reported.
        #[source]
        source: mail_auth::Error,
    },
}
