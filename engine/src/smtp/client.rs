//! Opening a session: TCP connect, implicit TLS, banner, EHLO/HELO, STARTTLS and AUTH, plus
//! the session's accessors and QUIT. Mail transactions live in `transaction.rs`.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use secrecy::zeroize::Zeroize;
use secrecy::ExposeSecret;
use std::io;
use std::net::{IpAddr, SocketAddr};
use tokio::io::{AsyncRead, AsyncWrite};

use tokio::net::{TcpSocket, TcpStream};

use super::error::{Phase, SmtpError};
use super::reply::{Capabilities, Reply};
use super::stream::{BoxedStream, Connection};
use super::{tls, AuthMechanism, Credentials, Security, SessionConfig, Timeouts};

/// Opens a session as `config` says: TCP connect (with `TCP_NODELAY`, from
/// [`SessionConfig::source`] when set), implicit TLS when [`Security::Tls`], banner, EHLO
/// (HELO if EHLO gets a 5xx), STARTTLS and EHLO again when [`Security::StartTls`] (or
/// [`Security::Opportunistic`] and offered), then AUTH when credentials are given: only over
/// TLS, unless [`SessionConfig::allow_plain_auth`].
pub async fn connect(config: &SessionConfig) -> Result<Session, SmtpError> {
    let tcp = match tokio::time::timeout(config.timeouts.connect, open_tcp(config)).await {
        Err(_) => {
            return Err(SmtpError::Timeout {
                host: config.host.clone(),
                phase: Phase::Connect,
            })
        }
        Ok(result) => result?,
    };
    let local = tcp.local_addr().ok();
    // A second handle on the socket, for `TCP_QUICKACK` once the stream is wrapped in TLS.
    let socket = rustix::io::fcntl_dupfd_cloexec(&tcp, 0).ok();
    let opened = Opened {
        local,
        peer: tcp.peer_addr().ok(),
    };
    let mut session = Session::handshake(Box::new(tcp), config, Some(opened)).await?;
    session.socket = socket;
    Ok(session)
}

/// The two ends of a TCP connection, for the transcript.
struct Opened {
    local: Option<SocketAddr>,
    peer: Option<SocketAddr>,
}

/// The TCP connection, with `TCP_NODELAY`: from [`SessionConfig::source`] when set.
async fn open_tcp(config: &SessionConfig) -> Result<TcpStream, SmtpError> {
    let connect_error = |source| SmtpError::Connect {
        host: config.host.clone(),
        port: config.port,
        source,
    };
    let tcp = match (config.source, config.address) {
        (None, Some(ip)) => TcpStream::connect((ip, config.port)).await,
        (None, None) => TcpStream::connect((config.host.as_str(), config.port)).await,
        (Some(source), _) => return bound_tcp(config, source).await,
    };
    tcp.and_then(|tcp| tcp.set_nodelay(true).map(|()| tcp))
        .map_err(connect_error)
}

/// A connection from `source` to the server's first address of the same family.
async fn bound_tcp(config: &SessionConfig, source: IpAddr) -> Result<TcpStream, SmtpError> {
    let connect_error = |source| SmtpError::Connect {
        host: config.host.clone(),
        port: config.port,
        source,
    };
    let targets: Vec<SocketAddr> = match config.address {
        Some(ip) => vec![SocketAddr::new(ip, config.port)],
        None => tokio::net::lookup_host((config.host.as_str(), config.port))
            .await
            .map_err(connect_error)?
            .collect(),
    };
    let family = if source.is_ipv4() { "IPv4" } else { "IPv6" };
    let Some(target) = targets
        .into_iter()
        .find(|t| t.is_ipv4() == source.is_ipv4())
    else {
        return Err(connect_error(io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            format!("no {family} address to reach from source address {source}"),
        )));
    };
    let socket = bind_source(source).map_err(|error| SmtpError::Bind {
        host: config.host.clone(),
        source_address: source,
        source: error,
    })?;
    let tcp = socket.connect(target).await.map_err(connect_error)?;
    tcp.set_nodelay(true).map_err(connect_error)?;
    Ok(tcp)
}

/// A TCP socket bound to `source` (any port), not yet connected. Binding once at start
/// tells whether `source` is an address of this host.
pub fn bind_source(source: IpAddr) -> io::Result<TcpSocket> {
    let socket = match source {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.bind(SocketAddr::new(source, 0))?;
    Ok(socket)
}

/// An open SMTP session with one server, ready for mail transactions.
///
/// A session is `Send` and can live in a tokio task. After a 421 reply or an I/O error it is
/// no longer usable ([`Session::is_usable`]) and should be dropped.
pub struct Session {
    pub(crate) conn: Connection,
    pub(crate) caps: Capabilities,
    pub(crate) timeouts: Timeouts,
    pub(crate) pipelining: bool,
    pub(crate) chunking: bool,
    pub(crate) usable: bool,
    pub(crate) tls: bool,
    pub(crate) messages_sent: u64,
    /// A transaction was started on this connection: RSET before the next one.
    pub(crate) needs_rset: bool,
    /// Reused buffer for the encoded message body.
    pub(crate) data_buf: Vec<u8>,
    /// The TCP socket under the stream, when the session opened it (not over a test pipe).
    pub(crate) socket: Option<std::os::fd::OwnedFd>,
    /// Our end of the TCP connection, when the session opened it.
    pub(crate) local_address: Option<SocketAddr>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("host", &self.conn.host())
            .field("tls", &self.tls)
            .field("usable", &self.usable)
            .field("messages_sent", &self.messages_sent)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Runs the same handshake as [`connect`] over an existing stream (implicit TLS wraps it).
    pub async fn connect_stream<S>(stream: S, config: &SessionConfig) -> Result<Session, SmtpError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        Self::handshake(Box::new(stream), config, None).await
    }

    async fn handshake(
        stream: BoxedStream,
        config: &SessionConfig,
        opened: Option<Opened>,
    ) -> Result<Session, SmtpError> {
        let timeouts = config.timeouts;
        let (stream, tls) = if config.security == Security::Tls {
            let tls_config = config.tls.clone();
            let upgraded = tls::handshake(stream, &config.host, tls_config, timeouts.starttls);
            (upgraded.await?, true)
        } else {
            (stream, false)
        };
        let mut session = Session {
            conn: Connection::new(stream, &config.host, config.record_transcript),
            caps: Capabilities::default(),
            timeouts,
            pipelining: config.pipelining,
            chunking: config.chunking,
            usable: true,
            tls,
            messages_sent: 0,
            needs_rset: false,
            data_buf: Vec::new(),
            socket: None,
            local_address: opened.as_ref().and_then(|o| o.local),
        };
        if let (Some(opened), Some(_)) = (&opened, config.source) {
            let local = opened.local.map_or("?".to_owned(), |a| a.to_string());
            let peer = opened.peer.map_or("?".to_owned(), |a| a.to_string());
            session
                .conn
                .note(|| format!("* connected from {local} to {peer}"));
        }
        let banner = session
            .conn
            .read_reply(Phase::Banner, timeouts.banner)
            .await?;
        if !banner.is_completion() {
            return Err(session.rejected(Phase::Banner, banner));
        }
        session.ehlo(&config.helo).await?;
        let upgrade = match config.security {
            Security::StartTls => true,
            Security::Opportunistic => session.caps.starttls,
            Security::None | Security::Tls => false,
        };
        if upgrade {
            session.starttls(config).await?;
            session.ehlo(&config.helo).await?;
        }
        if let Some(credentials) = &config.credentials {
            if !session.tls && !config.allow_plain_auth {
                // Not even `AUTH` goes out: the password must never cross in clear text.
                return Err(SmtpError::AuthWithoutTls {
                    host: config.host.clone(),
                });
            }
            session.authenticate(credentials).await?;
        }
        Ok(session)
    }

    /// Sends `parts` as one command and reads its reply.
    pub(crate) async fn exchange(
        &mut self,
        parts: &[&str],
        phase: Phase,
        limit: std::time::Duration,
    ) -> Result<Reply, SmtpError> {
        self.conn.command(parts);
        self.conn.flush(phase, limit).await?;
        self.conn.read_reply(phase, limit).await
    }

    async fn ehlo(&mut self, helo: &str) -> Result<(), SmtpError> {
        let limit = self.timeouts.ehlo;
        let reply = self.exchange(&["EHLO ", helo], Phase::Ehlo, limit).await?;
        if reply.is_completion() {
            self.caps = Capabilities::from_ehlo(&reply);
            return Ok(());
        }
        if !reply.is_permanent() {
            return Err(self.rejected(Phase::Ehlo, reply));
        }
        let reply = self.exchange(&["HELO ", helo], Phase::Ehlo, limit).await?;
        if !reply.is_completion() {
            return Err(self.rejected(Phase::Ehlo, reply));
        }
        self.caps = Capabilities::default();
        Ok(())
    }

    async fn starttls(&mut self, config: &SessionConfig) -> Result<(), SmtpError> {
        if !self.caps.starttls {
            return Err(SmtpError::StartTlsUnavailable {
                host: config.host.clone(),
            });
        }
        let limit = self.timeouts.starttls;
        let reply = self.exchange(&["STARTTLS"], Phase::StartTls, limit).await?;
        if !reply.is_completion() {
            return Err(self.rejected(Phase::StartTls, reply));
        }
        if self.conn.has_unread_input() {
            // Bytes sent before the handshake must not be read as if protected by it.
            return Err(SmtpError::Protocol {
                host: config.host.clone(),
                phase: Phase::StartTls,
                detail: "server sent data after its STARTTLS reply".to_owned(),
            });
        }
        let plain = self.conn.take_stream();
        let upgraded = tls::handshake(plain, &config.host, config.tls.clone(), limit).await?;
        self.conn.set_stream(upgraded);
        self.conn.note(|| "(TLS established)".to_owned());
        self.tls = true;
        self.caps = Capabilities::default();
        Ok(())
    }

    async fn authenticate(&mut self, credentials: &Credentials) -> Result<(), SmtpError> {
        if credentials.mechanism == AuthMechanism::XOAuth2 {
            return self.auth_xoauth2(credentials).await;
        }
        if self.caps.offers_auth("PLAIN") {
            let mut raw = Vec::new();
            raw.push(0);
            raw.extend_from_slice(credentials.username.as_bytes());
            raw.push(0);
            raw.extend_from_slice(credentials.password.expose_secret().as_bytes());
            let mut line = b"AUTH PLAIN ".to_vec();
            line.extend_from_slice(BASE64.encode(&raw).as_bytes());
            raw.zeroize();
            let reply = self.auth_step(&mut line, "AUTH PLAIN <redacted>").await?;
            self.expect_auth(reply, 235)
        } else if self.caps.offers_auth("LOGIN") {
            let limit = self.timeouts.auth;
            let reply = self.exchange(&["AUTH LOGIN"], Phase::Auth, limit).await?;
            self.expect_auth(reply, 334)?;
            let mut user = BASE64.encode(credentials.username.as_bytes()).into_bytes();
            let reply = self.auth_step(&mut user, "<redacted>").await?;
            self.expect_auth(reply, 334)?;
            let password = credentials.password.expose_secret().as_bytes();
            let mut pass = BASE64.encode(password).into_bytes();
            let reply = self.auth_step(&mut pass, "<redacted>").await?;
            self.expect_auth(reply, 235)
        } else {
            Err(SmtpError::AuthUnsupported {
                host: self.conn.host().to_owned(),
                offered: self.caps.auth.clone(),
            })
        }
    }

    /// AUTH XOAUTH2 with the initial response. A `334` carries the server's (base64 JSON)
    /// error: it is answered with an empty line, and the final reply is the failure.
    async fn auth_xoauth2(&mut self, credentials: &Credentials) -> Result<(), SmtpError> {
        if !self.caps.offers_auth("XOAUTH2") {
            return Err(SmtpError::AuthUnsupported {
                host: self.conn.host().to_owned(),
                offered: self.caps.auth.clone(),
            });
        }
        let mut raw = xoauth2_response(&credentials.username, &credentials.password);
        let mut line = b"AUTH XOAUTH2 ".to_vec();
        line.extend_from_slice(BASE64.encode(&raw).as_bytes());
        raw.zeroize();
        let reply = self.auth_step(&mut line, "AUTH XOAUTH2 <redacted>").await?;
        if reply.code != 334 {
            return self.expect_auth(reply, 235);
        }
        let limit = self.timeouts.auth;
        let reply = self.exchange(&[""], Phase::Auth, limit).await?;
        self.expect_auth(reply, 235)
    }

    /// Sends one secret AUTH line (wiped afterwards) and reads the reply.
    async fn auth_step(&mut self, line: &mut Vec<u8>, shown: &str) -> Result<Reply, SmtpError> {
        self.conn.secret_command(line, shown);
        line.zeroize();
        self.conn.flush(Phase::Auth, self.timeouts.auth).await?;
        self.conn.read_reply(Phase::Auth, self.timeouts.auth).await
    }

    fn expect_auth(&self, reply: Reply, code: u16) -> Result<(), SmtpError> {
        let host = self.conn.host().to_owned();
        if reply.code == code {
            Ok(())
        } else if reply.is_transient() || reply.is_permanent() {
            Err(SmtpError::AuthFailed { host, reply })
        } else {
            Err(SmtpError::Protocol {
                host,
                phase: Phase::Auth,
                detail: format!("expected {code}, got {reply}"),
            })
        }
    }

    pub(crate) fn rejected(&self, phase: Phase, reply: Reply) -> SmtpError {
        SmtpError::Rejected {
            host: self.conn.host().to_owned(),
            phase,
            reply,
        }
    }

    /// What the server announced in its (last) EHLO reply; empty after a HELO fallback.
    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// True once TLS is established (implicit TLS or after STARTTLS).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// False after a 421 reply or an error: the caller must drop the session.
    pub fn is_usable(&self) -> bool {
        self.usable
    }

    /// Our end of the TCP connection (the source address and port), when [`connect`] opened
    /// it.
    pub fn local_address(&self) -> Option<SocketAddr> {
        self.local_address
    }

    /// Transactions run on this connection (each `send` that returned `Ok` after talking to
    /// the server, accepted or not); handy to cap messages per connection.
    pub fn messages_sent(&self) -> u64 {
        self.messages_sent
    }

    /// Takes the conversation recorded since the last call (empty unless
    /// `record_transcript`). Lines read `C: EHLO x` / `S: 250-…`; AUTH payloads show as
    /// `<redacted>` and a message body as `<message, N bytes>`.
    pub fn take_transcript(&mut self) -> Vec<String> {
        self.conn.take_transcript()
    }

    /// Says QUIT, waits for the reply (bounded by the `quit` timeout) and closes. An unusable
    /// session is just closed. The reply's code does not matter.
    pub async fn quit(mut self) -> Result<(), SmtpError> {
        let limit = self.timeouts.quit;
        let result = if self.usable {
            self.exchange(&["QUIT"], Phase::Quit, limit).await.map(drop)
        } else {
            Ok(())
        };
        self.conn.shutdown(limit).await;
        result
    }
}

/// The XOAUTH2 initial response before base64: `user=U\x01auth=Bearer T\x01\x01` (the
/// format Google and Microsoft document). The caller wipes it after use.
pub(crate) fn xoauth2_response(username: &str, token: &secrecy::SecretString) -> Vec<u8> {
    let token = token.expose_secret().as_bytes();
    let mut raw = Vec::with_capacity(username.len() + token.len() + 20);
    raw.extend_from_slice(b"user=");
    raw.extend_from_slice(username.as_bytes());
    raw.extend_from_slice(b"\x01auth=Bearer ");
    raw.extend_from_slice(token);
    raw.extend_from_slice(b"\x01\x01");
    raw
}
