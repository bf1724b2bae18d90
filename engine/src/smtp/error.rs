//! Errors of the SMTP client and the protocol phase each one happened in.
//!
//! Replies to MAIL, RCPT and DATA are values (see [`super::Transaction`]); an [`SmtpError`]
//! means the client could not do its job: the connection, TLS, the handshake or the
//! configuration failed. Its predicates let a caller decide without matching on text whether
//! to retry later, drop the connection or stop and fix its settings.

use std::fmt;
use std::io;

use super::reply::Reply;

/// The step of an SMTP session an error or a timeout belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// Opening the TCP connection.
    Connect,
    /// The TLS handshake (implicit TLS or after STARTTLS).
    TlsHandshake,
    /// Waiting for the server's greeting.
    Banner,
    /// EHLO (or the HELO fallback).
    Ehlo,
    /// The STARTTLS command.
    StartTls,
    /// Authentication (AUTH PLAIN or AUTH LOGIN).
    Auth,
    /// The MAIL FROM command.
    MailFrom,
    /// A RCPT TO command.
    RcptTo,
    /// The DATA command and the message body.
    Data,
    /// The final reply after the terminating dot.
    DataEnd,
    /// The RSET command between two transactions.
    Rset,
    /// The QUIT command.
    Quit,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Connect => "connect",
            Phase::TlsHandshake => "tls handshake",
            Phase::Banner => "banner",
            Phase::Ehlo => "ehlo",
            Phase::StartTls => "starttls",
            Phase::Auth => "auth",
            Phase::MailFrom => "mail from",
            Phase::RcptTo => "rcpt to",
            Phase::Data => "data",
            Phase::DataEnd => "data end",
            Phase::Rset => "rset",
            Phase::Quit => "quit",
        })
    }
}

/// Why a TLS handshake or TLS setup failed, in words a user can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsProblem {
    /// The server's certificate does not chain to a trusted root.
    CertificateNotTrusted,
    /// The server's certificate has expired or is not valid yet.
    CertificateExpired,
    /// The server's certificate is not valid for the host name we connected to.
    CertificateNameMismatch,
    /// The server's certificate is otherwise invalid (bad encoding, revoked, bad signature…).
    CertificateInvalid,
    /// The host name cannot be used as a TLS server name.
    InvalidServerName,
    /// The handshake failed for another reason (alert, protocol mismatch, closed connection).
    HandshakeFailed,
}

impl TlsProblem {
    /// True when retrying cannot help: the certificate or name is wrong.
    pub fn is_configuration(self) -> bool {
        !matches!(self, TlsProblem::HandshakeFailed)
    }
}

impl fmt::Display for TlsProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsProblem::CertificateNotTrusted => "certificate not trusted",
            TlsProblem::CertificateExpired => "certificate expired or not yet valid",
            TlsProblem::CertificateNameMismatch => "certificate not valid for this host name",
            TlsProblem::CertificateInvalid => "certificate invalid",
            TlsProblem::InvalidServerName => "host is not a valid TLS server name",
            TlsProblem::HandshakeFailed => "handshake failed",
        })
    }
}

/// Everything that can make the SMTP client fail.
///
/// None of the variants ever contains a password: AUTH payloads are never kept.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SmtpError {
    /// The TCP connection could not be opened.
    #[error("cannot connect to {host}:{port}: {source}")]
    Connect {
        /// Host name or address we tried.
        host: String,
        /// Port we tried.
        port: u16,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// A phase took longer than its configured timeout.
    #[error("{host}: timed out during {phase}")]
    Timeout {
        /// Server host.
        host: String,
        /// Phase that timed out.
        phase: Phase,
    },
    /// Reading from or writing to the connection failed.
    #[error("{host}: i/o error during {phase}: {source}")]
    Io {
        /// Server host.
        host: String,
        /// Phase the failure happened in.
        phase: Phase,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The TLS handshake failed.
    #[error("{host}: TLS {problem}: {source}")]
    Tls {
        /// Server host.
        host: String,
        /// What went wrong, in plain words.
        problem: TlsProblem,
        /// The underlying error (often wrapping a `rustls::Error`).
        #[source]
        source: io::Error,
    },
    /// A TLS client configuration could not be built (bad extra CA PEM, provider setup).
    #[error("TLS configuration: {detail}")]
    TlsConfig {
        /// What is wrong with the configuration.
        detail: String,
    },
    /// The server refused the session outside a mail transaction (banner, EHLO, STARTTLS,
    /// RSET, QUIT).
    #[error("{host}: rejected during {phase}: {reply}")]
    Rejected {
        /// Server host.
        host: String,
        /// Phase the rejection happened in.
        phase: Phase,
        /// The server's reply.
        reply: Reply,
    },
    /// The server refused our credentials.
    #[error("{host}: authentication failed: {reply}")]
    AuthFailed {
        /// Server host.
        host: String,
        /// The server's reply.
        reply: Reply,
    },
    /// Credentials were given but the server offers neither AUTH PLAIN nor AUTH LOGIN.
    #[error(
        "{host}: no supported AUTH mechanism (offered: {})",
        display_list(offered)
    )]
    AuthUnsupported {
        /// Server host.
        host: String,
        /// The mechanisms the server offered, possibly none.
        offered: Vec<String>,
    },
    /// STARTTLS is required by the configuration but the server does not offer it.
    #[error("{host}: STARTTLS required but not offered by the server")]
    StartTlsUnavailable {
        /// Server host.
        host: String,
    },
    /// The server broke the protocol (malformed or unexpected reply, data injected after
    /// STARTTLS…).
    #[error("{host}: protocol error during {phase}: {detail}")]
    Protocol {
        /// Server host.
        host: String,
        /// Phase the violation happened in.
        phase: Phase,
        /// What was wrong.
        detail: String,
    },
    /// The server closed the connection.
    #[error("{host}: connection closed by the server during {phase}")]
    Closed {
        /// Server host.
        host: String,
        /// Phase in which the end of stream was seen.
        phase: Phase,
    },
    /// The session was used after it became unusable (421 or an earlier error).
    #[error("{host}: session is no longer usable")]
    Unusable {
        /// Server host.
        host: String,
    },
    /// The envelope cannot be sent as given; nothing was sent and the session stays usable.
    #[error("{host}: invalid envelope address {address:?}: {reason}")]
    InvalidAddress {
        /// Server host.
        host: String,
        /// The offending address (empty when the envelope has no recipient).
        address: String,
        /// Why it cannot be sent.
        reason: &'static str,
    },
}

fn display_list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(" ")
    }
}

impl SmtpError {
    /// The phase the error belongs to.
    pub fn phase(&self) -> Phase {
        match self {
            SmtpError::Connect { .. } => Phase::Connect,
            SmtpError::Tls { .. } | SmtpError::TlsConfig { .. } => Phase::TlsHandshake,
            SmtpError::Timeout { phase, .. }
            | SmtpError::Io { phase, .. }
            | SmtpError::Rejected { phase, .. }
            | SmtpError::Protocol { phase, .. }
            | SmtpError::Closed { phase, .. } => *phase,
            SmtpError::AuthFailed { .. } | SmtpError::AuthUnsupported { .. } => Phase::Auth,
            SmtpError::StartTlsUnavailable { .. } => Phase::StartTls,
            SmtpError::Unusable { .. } | SmtpError::InvalidAddress { .. } => Phase::MailFrom,
        }
    }

    /// True when retrying cannot help and the caller should stop and fix its settings:
    /// credentials refused with a 5xx, no usable AUTH mechanism, an untrusted or mismatched
    /// certificate, a bad TLS configuration, or STARTTLS required but not offered.
    pub fn is_configuration(&self) -> bool {
        match self {
            SmtpError::AuthFailed { reply, .. } => !reply.is_transient(),
            SmtpError::AuthUnsupported { .. }
            | SmtpError::StartTlsUnavailable { .. }
            | SmtpError::TlsConfig { .. } => true,
            SmtpError::Tls { problem, .. } => problem.is_configuration(),
            _ => false,
        }
    }

    /// True when the same attempt may succeed later: network failures, timeouts, closed
    /// connections, protocol hiccups and 4xx rejections.
    pub fn is_transient(&self) -> bool {
        match self {
            SmtpError::Rejected { reply, .. } => !reply.is_permanent(),
            SmtpError::InvalidAddress { .. } => false,
            _ => !self.is_configuration(),
        }
    }

    /// True when the failure concerns the connection or the destination rather than one
    /// message: the session must be dropped. Only [`SmtpError::InvalidAddress`] leaves the
    /// session usable.
    pub fn is_connection_level(&self) -> bool {
        !self.was_due_to_message()
    }

    /// True when the failure comes from the message or envelope handed to `send` (the
    /// session was not touched and stays usable).
    pub fn was_due_to_message(&self) -> bool {
        matches!(self, SmtpError::InvalidAddress { .. })
    }
}
