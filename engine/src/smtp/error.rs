//! Errors of the SMTP client and the protocol phase each one happened in.
//!
//! Replies to MAIL, RCPT and DATA are values (see [`super::Transaction`]); an [`SmtpError`]
//! means the client could not do its job: the connection, TLS, the handshake or the
//! configuration failed. Its predicates let a caller decide without matching on text whether
//! to retry later, drop the connection or stop and fix its settings.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::SystemTime;

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
    /// The server's certificate was issued by a CA that is neither public nor trusted.
    CertificateNotTrusted,
    /// The server's certificate is self-signed and not among the trusted certificates.
    SelfSigned,
    /// The server presented a CA certificate (`CA:TRUE`) as its own and it is not pinned
    /// (listed itself among the trusted certificates).
    CaUsedAsEndEntity,
    /// The server's certificate has expired.
    CertificateExpired,
    /// The server's certificate is not valid yet.
    CertificateNotYetValid,
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
            TlsProblem::SelfSigned => "self-signed certificate not trusted",
            TlsProblem::CaUsedAsEndEntity => "CA certificate used as the server's certificate",
            TlsProblem::CertificateExpired => "certificate expired",
            TlsProblem::CertificateNotYetValid => "certificate not yet valid",
            TlsProblem::CertificateNameMismatch => "certificate not valid for this host name",
            TlsProblem::CertificateInvalid => "certificate invalid",
            TlsProblem::InvalidServerName => "host is not a valid TLS server name",
            TlsProblem::HandshakeFailed => "handshake failed",
        })
    }
}

/// The facts behind a [`TlsProblem`], for a message a person can act on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsDetail {
    /// The names (DNS names and IP addresses) the certificate is valid for, when it does not
    /// cover the host name.
    pub names: Vec<String>,
    /// When the certificate expired (or becomes valid), for date problems.
    pub date: Option<SystemTime>,
    /// The file of extra trusted certificates in use (`ca_file`), if any.
    pub ca_file: Option<PathBuf>,
    /// What else is known, in words (a handshake alert, an unusual certificate error).
    pub reason: Option<String>,
}

impl TlsDetail {
    /// What went wrong with the TLS session to `host`, in a sentence without advice.
    pub fn describe(&self, problem: TlsProblem, host: &str) -> String {
        let reason = self
            .reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        match problem {
            TlsProblem::CertificateNotTrusted
            | TlsProblem::SelfSigned
            | TlsProblem::CaUsedAsEndEntity => self.describe_trust(problem),
            TlsProblem::CertificateExpired => match self.date_text() {
                Some(date) => format!("the TLS certificate expired on {date}"),
                None => "the TLS certificate has expired".to_owned(),
            },
            TlsProblem::CertificateNotYetValid => match self.date_text() {
                Some(date) => format!("the TLS certificate is not valid before {date}"),
                None => "the TLS certificate is not valid yet".to_owned(),
            },
            TlsProblem::CertificateNameMismatch if self.names.is_empty() => {
                format!("the TLS certificate does not cover the name {host}")
            }
            TlsProblem::CertificateNameMismatch => format!(
                "the TLS certificate is for {}, not {host}",
                self.names.join(", ")
            ),
            TlsProblem::CertificateInvalid => format!("the TLS certificate is invalid{reason}"),
            TlsProblem::InvalidServerName => {
                format!("{host:?} cannot be used as a TLS server name")
            }
            TlsProblem::HandshakeFailed => format!("the TLS handshake failed{reason}"),
        }
    }

    /// The trust problems, naming the CA file (or saying none is set).
    fn describe_trust(&self, problem: TlsProblem) -> String {
        let trusted = match &self.ca_file {
            Some(path) => format!("not in ca_file {}", path.display()),
            None => "no ca_file is set".to_owned(),
        };
        match problem {
            TlsProblem::SelfSigned => {
                format!("the TLS certificate is self-signed and not trusted ({trusted})")
            }
            TlsProblem::CaUsedAsEndEntity => format!(
                "the server presented a CA certificate (CA:TRUE) as its own, and that \
                 certificate is not trusted itself ({trusted})"
            ),
            _ => format!(
                "the TLS certificate is not trusted: its issuer is not a public CA ({trusted})"
            ),
        }
    }

    /// The date as RFC 3339 in UTC, seconds precision.
    fn date_text(&self) -> Option<String> {
        self.date
            .map(|d| humantime::format_rfc3339_seconds(d).to_string())
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
    /// The connection could not be bound to the configured source address (it is not an
    /// address of this host, or is in use).
    #[error("cannot connect to {host} from source address {source_address}: {source}")]
    Bind {
        /// Host name or address we were about to connect to.
        host: String,
        /// The local address we tried to bind.
        source_address: std::net::IpAddr,
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
    /// The TLS handshake failed, or the server's certificate was refused.
    #[error("{host}: {}", detail.describe(*problem, host))]
    Tls {
        /// Server host.
        host: String,
        /// What went wrong.
        problem: TlsProblem,
        /// The facts for the message: the certificate's names or dates, the CA file.
        detail: Box<TlsDetail>,
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
    /// Credentials were given but the session is not encrypted (no TLS, or STARTTLS not
    /// offered), and plain-text AUTH was not allowed: the password or token was not sent.
    #[error(
        "{host}: refusing to send the password or token in clear text: the session is not \
         encrypted (use STARTTLS or implicit TLS)"
    )]
    AuthWithoutTls {
        /// Server host.
        host: String,
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
            SmtpError::Connect { .. } | SmtpError::Bind { .. } => Phase::Connect,
            SmtpError::Tls { .. } | SmtpError::TlsConfig { .. } => Phase::TlsHandshake,
            SmtpError::Timeout { phase, .. }
            | SmtpError::Io { phase, .. }
            | SmtpError::Rejected { phase, .. }
            | SmtpError::Protocol { phase, .. }
            | SmtpError::Closed { phase, .. } => *phase,
            SmtpError::AuthFailed { .. }
            | SmtpError::AuthUnsupported { .. }
            | SmtpError::AuthWithoutTls { .. } => Phase::Auth,
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
            | SmtpError::AuthWithoutTls { .. }
            | SmtpError::StartTlsUnavailable { .. }
            | SmtpError::TlsConfig { .. } => true,
            SmtpError::Tls { problem, .. } => problem.is_configuration(),
            _ => false,
        }
    }

    /// The TLS problem behind the error, if it is one.
    pub fn tls_problem(&self) -> Option<TlsProblem> {
        match self {
            SmtpError::Tls { problem, .. } => Some(*problem),
            _ => None,
        }
    }

    /// For a TLS error, what went wrong in a sentence without the host prefix.
    pub fn tls_description(&self) -> Option<String> {
        match self {
            SmtpError::Tls {
                host,
                problem,
                detail,
            } => Some(detail.describe(*problem, host)),
            _ => None,
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
