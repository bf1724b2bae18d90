//! Errors that stop delivery as a whole (as opposed to per-recipient outcomes).

use crate::smtp::{SmtpError, TlsProblem};

/// Delivery could not go on: retrying cannot help, or the relay stayed out of reach.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The relay refused our configuration (credentials, STARTTLS).
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
    /// The relay could not be used safely as configured: its TLS certificate was refused,
    /// STARTTLS was required but not offered, or the session was not encrypted and the
    /// password was therefore not sent. The
    /// message says what is wrong and which `[relay]` key to change.
    #[error("relay {host}:{port}: {}", relay_advice(cause))]
    Insecure {
        /// Relay host.
        host: String,
        /// Relay port.
        port: u16,
        /// The TLS or AUTH error (its text is part of this message).
        cause: SmtpError,
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
    /// The relay's access token could not be fetched anew (`auth = "xoauth2"`); the
    /// message names the `token_*` key, never the token.
    #[error("relay {host}:{port}: no fresh access token: {source}")]
    Token {
        /// Relay host.
        host: String,
        /// Relay port.
        port: u16,
        /// What went wrong.
        #[source]
        source: crate::config::TokenError,
    },
    /// A configured source address cannot be used: binding to it failed (it is not an
    /// address of this host).
    #[error(
        "source address {address} ({key}) cannot be used: {source}; it must be an address of \
         this host (see `ip address`)"
    )]
    SourceAddress {
        /// The address.
        address: std::net::IpAddr,
        /// Where it is configured, like `[mx] source_addresses[1]`.
        key: String,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The DNS resolver could not be set up.
    #[error("cannot set up the DNS resolver: {detail}")]
    Resolver {
        /// What went wrong.
        detail: String,
    },
}

impl DeliveryError {
    /// The error for a session to the relay `host:port` that failed with `error` where
    /// retrying cannot help: [`DeliveryError::Insecure`] for certificate, missing STARTTLS
    /// and clear-text AUTH problems, [`DeliveryError::Refused`] for the rest.
    pub(crate) fn relay_refused(host: &str, port: u16, error: SmtpError) -> DeliveryError {
        let host = host.to_owned();
        let insecure = matches!(
            error,
            SmtpError::AuthWithoutTls { .. } | SmtpError::StartTlsUnavailable { .. }
        );
        if insecure || error.tls_problem().is_some() {
            DeliveryError::Insecure {
                host,
                port,
                cause: error,
            }
        } else {
            DeliveryError::Refused {
                host,
                port,
                source: error,
            }
        }
    }
}

/// What went wrong with the relay and which `[relay]` key fixes it.
fn relay_advice(cause: &SmtpError) -> String {
    let Some(problem) = cause.tls_problem() else {
        return match cause {
            SmtpError::AuthWithoutTls { .. } => {
                "the session is not encrypted, so the password or \
                token was not sent: set [relay] tls = \"starttls\" (port 587) or \"tls\" (port 465)"
                    .to_owned()
            }
            SmtpError::StartTlsUnavailable { .. } => "the relay does not offer STARTTLS, so \
                nothing was sent (not even the password or token): check [relay] port and tls \
                (\"tls\" for implicit TLS on port 465)"
                .to_owned(),
            other => other.to_string(),
        };
    };
    let what = cause.tls_description().unwrap_or_default();
    let advice = match problem {
        TlsProblem::SelfSigned | TlsProblem::CaUsedAsEndEntity => {
            "add the relay's certificate (PEM) to the file named by [relay] ca_file"
        }
        TlsProblem::CertificateNotTrusted => {
            "add the certificate of the CA that issued it (or the relay's own certificate) to \
             the file named by [relay] ca_file"
        }
        TlsProblem::CertificateNameMismatch => "set [relay] host to a name it covers",
        TlsProblem::CertificateExpired => "the relay's certificate must be renewed",
        TlsProblem::CertificateNotYetValid => {
            "check this machine's clock and the relay's certificate"
        }
        TlsProblem::InvalidServerName => "set [relay] host to a host name or an IP address",
        _ => "check the relay's TLS setup and [relay] tls and port",
    };
    format!("{what}: {advice}")
}
