//! DKIM: load signing keys (PEM from a file or an environment variable), sign composed
//! messages, and verify signatures offline.
//!
//! In the pipeline, `compose` renders and builds a message, then hands its bytes to a
//! [`Signer`], which returns the `DKIM-Signature` header field(s) to prepend. This module is a
//! leaf: it knows nothing of campaigns. Keys never appear in errors, logs or `Debug` output.

mod error;
mod key;
mod rsa_bits;
mod sign;
mod verify;

pub use error::DkimError;
pub use key::{
    generate_ed25519_pem, generate_rsa_2048_pem, rsa_public_key_bits, DkimKey, KeyAlgorithm,
    KeySource,
};
pub use sign::{Signer, SIGNED_HEADERS};
pub use verify::{verify, VerifyResult};

#[cfg(test)]
mod tests;
