//! Errors that stop delivery as a whole (as opposed to per-recipient outcomes).

use crate::smtp::SmtpError;

/// Delivery could not go on: retrying cannot help, or the relay stayed out of reach.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The relay refused our configuration (credentials, certificate, STARTTLS).
    #[error("relay {host}:{port} refused the session: {source}")]
    Refused {
        /// Relay host.
        host: String,
        /// Relay port.
        port: u16,
        /// What went wrong.
        #[source]
        source: SmtpError,
    },
    /// Every connection attempt failed, several times in a row.
    #[error("could not reach relay {host}:{port} after {attempts} attempts: {source}")]
    Unreachable {
        /// Relay host.
        host: String,
        /// Relay port.
        port: u16,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        #[source]
        source: SmtpError,
    },
    /// The DNS resolver could not be set up.
    #[error("cannot set up the DNS resolver: {detail}")]
    Resolver {
        /// What went wrong.
        detail: String,
    },
}
