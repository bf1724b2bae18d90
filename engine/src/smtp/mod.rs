//! Volley's SMTP client: the only code that speaks the protocol as a client.
//!
//! Written as if it were a crate of its own: it knows envelopes, messages and replies, and
//! nothing of what they are for. A [`Session`] runs over any stream (TCP, TLS, a test pipe):
//! [`connect`] opens TCP (with `TCP_NODELAY`), optionally implicit TLS, reads the banner,
//! says EHLO (HELO when EHLO is refused), upgrades with STARTTLS when asked to and
//! authenticates with AUTH PLAIN or LOGIN (a password) or XOAUTH2 (an OAuth 2.0 token). [`Session::send`] then runs one mail transaction
//! per call, pipelining MAIL, RCPT and DATA in a single write when the server allows it.
//!
//! Replies to MAIL, RCPT and DATA are values collected in a [`Transaction`]; an [`SmtpError`]
//! means the connection, TLS, the handshake or the configuration failed.
//!
//! ```text
//! delivery ──► smtp::connect / Session::send ──► stream (TCP | TLS | duplex in tests)
//! ```

mod body;
mod client;
mod der;
mod error;
mod reply;
mod stream;
mod tls;
mod transaction;
mod verify;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_auth;
#[cfg(test)]
mod tests_bdat;
#[cfg(test)]
mod tests_limits;
#[cfg(test)]
mod tests_tls;
#[cfg(test)]
mod tests_verify;
#[cfg(test)]
mod tests_xoauth2;

use std::sync::Arc;
use std::time::Duration;

pub use client::{bind_source, connect, Session};
pub use error::{Phase, SmtpError, TlsDetail, TlsProblem};
pub use reply::{parse_reply_bytes, Capabilities, EnhancedCode, Reply};
pub use tls::{tls_client_config, tls_client_config_for_file, tls_opportunistic_config};
pub use transaction::{Envelope, Transaction};

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Security {
    /// Plain text; STARTTLS is not attempted.
    #[default]
    None,
    /// Plain connect, then STARTTLS; an error if the server does not offer it.
    StartTls,
    /// STARTTLS when the server offers it, plain text otherwise (direct-to-MX style). The
    /// certificate is checked as the [`SessionConfig::tls`] configuration says (see
    /// [`tls_opportunistic_config`] for one that encrypts without verifying); a failed
    /// handshake is an error, and the caller decides whether to retry with [`Security::None`].
    Opportunistic,
    /// TLS from the first byte (implicit TLS, usually port 465).
    Tls,
}

/// How the client logs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMechanism {
    /// A password, with AUTH PLAIN when offered, else AUTH LOGIN (the default).
    #[default]
    Password,
    /// An OAuth 2.0 access token with AUTH XOAUTH2, as Gmail and Microsoft 365 document it:
    /// `base64("user=" user ^A "auth=Bearer " token ^A ^A)`. A `334` challenge (the
    /// server's JSON error) is answered with an empty line and the final reply (`535`)
    /// becomes [`SmtpError::AuthFailed`].
    XOAuth2,
}

/// A user name and a password (AUTH PLAIN or LOGIN) or an access token (AUTH XOAUTH2).
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password, or the access token for [`AuthMechanism::XOAuth2`]; never printed,
    /// logged or put in an error.
    pub password: secrecy::SecretString,
    /// How they are sent. Default [`AuthMechanism::Password`].
    pub mechanism: AuthMechanism,
}

impl Credentials {
    /// A user name and password for AUTH PLAIN or LOGIN.
    pub fn password(username: impl Into<String>, password: secrecy::SecretString) -> Self {
        Credentials {
            username: username.into(),
            password,
            mechanism: AuthMechanism::Password,
        }
    }

    /// A user name and OAuth 2.0 access token for AUTH XOAUTH2.
    pub fn xoauth2(username: impl Into<String>, token: secrecy::SecretString) -> Self {
        Credentials {
            username: username.into(),
            password: token,
            mechanism: AuthMechanism::XOAuth2,
        }
    }
}

/// One timeout per phase of a session. Defaults follow RFC 5321 §4.5.3.2 where it gives one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Opening the TCP connection. Default 30 s.
    pub connect: Duration,
    /// Waiting for the greeting. Default 60 s.
    pub banner: Duration,
    /// EHLO or HELO reply. Default 60 s.
    pub ehlo: Duration,
    /// STARTTLS reply and every TLS handshake (implicit TLS too). Default 60 s.
    pub starttls: Duration,
    /// Each AUTH step. Default 60 s.
    pub auth: Duration,
    /// MAIL FROM reply, and the pipelined write of MAIL/RCPT/DATA. Default 300 s.
    pub mail_from: Duration,
    /// Each RCPT TO reply. Default 300 s.
    pub rcpt_to: Duration,
    /// DATA reply (354) and writing the message body. Default 180 s.
    pub data: Duration,
    /// The final reply after the terminating dot. Default 600 s.
    pub data_end: Duration,
    /// RSET reply. Default 60 s.
    pub rset: Duration,
    /// QUIT reply and closing. Default 10 s.
    pub quit: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(30),
            banner: Duration::from_secs(60),
            ehlo: Duration::from_secs(60),
            starttls: Duration::from_secs(60),
            auth: Duration::from_secs(60),
            mail_from: Duration::from_secs(300),
            rcpt_to: Duration::from_secs(300),
            data: Duration::from_secs(180),
            data_end: Duration::from_secs(600),
            rset: Duration::from_secs(60),
            quit: Duration::from_secs(10),
        }
    }
}

/// Everything needed to open and run a session with one server.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Server host name or IP address; also the TLS server name.
    pub host: String,
    /// Connect to this address instead of resolving `host` (direct-to-MX delivery resolves
    /// MX hosts itself); `host` stays the TLS server name. Default `None`.
    pub address: Option<std::net::IpAddr>,
    /// The local address the connection is bound to before it connects (a sending IP of
    /// this host); the server is reached at an address of the same family. Default `None`:
    /// the operating system picks.
    pub source: Option<std::net::IpAddr>,
    /// Server port.
    pub port: u16,
    /// Plain, STARTTLS or implicit TLS.
    pub security: Security,
    /// The name we give in EHLO/HELO.
    pub helo: String,
    /// Credentials for AUTH, when the server requires them. They are only ever sent over
    /// TLS (implicit or after STARTTLS) unless [`SessionConfig::allow_plain_auth`] is set:
    /// otherwise [`connect`] fails with [`SmtpError::AuthWithoutTls`] before AUTH.
    pub credentials: Option<Credentials>,
    /// Allow AUTH on an unencrypted session. Meant only for a server on the same machine
    /// (loopback), where nothing crosses a network. Default false.
    pub allow_plain_auth: bool,
    /// TLS client configuration (see [`tls_client_config`]).
    pub tls: Arc<rustls::ClientConfig>,
    /// Per-phase timeouts.
    pub timeouts: Timeouts,
    /// Use PIPELINING when the server offers it. Default true.
    pub pipelining: bool,
    /// Use CHUNKING when the server offers it with PIPELINING: the envelope and the whole
    /// message go out as `BDAT <size> LAST` in one write, one round trip per message.
    /// Default true.
    pub chunking: bool,
    /// Record the conversation for [`Session::take_transcript`]. Default false.
    pub record_transcript: bool,
}

impl SessionConfig {
    /// A plain-text configuration for `host:port` with defaults: EHLO name `localhost`, no
    /// source address, no credentials (and no plain-text AUTH), default timeouts, pipelining on, no transcript.
    pub fn new(host: impl Into<String>, port: u16, tls: Arc<rustls::ClientConfig>) -> Self {
        SessionConfig {
            host: host.into(),
            address: None,
            source: None,
            port,
            security: Security::None,
            helo: "localhost".to_owned(),
            credentials: None,
            allow_plain_auth: false,
            tls,
            timeouts: Timeouts::default(),
            pipelining: true,
            chunking: true,
            record_transcript: false,
        }
    }
}
