//! The running name server: one UDP socket and one TCP listener on the same loopback port,
//! each served by a tokio task under one cancellation token, so the server stops on `Drop`.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::RecordType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::answer::Transport;
use super::state::Shared;
use super::zone::canonical_str;
use super::{NameServerError, Zone};

/// Largest datagram read; DNS over UDP never needs more.
const MAX_DATAGRAM: usize = 65_535;

/// A TCP connection that sends nothing for this long is closed.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// Tries at finding a free port for UDP that is also free for TCP, when port 0 is asked for.
const BIND_ATTEMPTS: usize = 16;

/// A running DNS server on loopback answering from a [`Zone`], over UDP and TCP on the same
/// port. It stops (cancelling its tasks) when dropped or shut down.
#[derive(Debug)]
pub struct NameServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    token: CancellationToken,
    tracker: TaskTracker,
}

impl NameServer {
    /// Starts a server on `127.0.0.1` at any free port (the same port for UDP and TCP).
    pub async fn start(zone: Zone) -> Result<NameServer, NameServerError> {
        NameServer::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), zone).await
    }

    /// Starts a server on `addr`, UDP and TCP on the same port; port 0 picks a free one.
    /// Only loopback addresses are accepted: this server must never answer real clients.
    pub async fn start_on(addr: SocketAddr, zone: Zone) -> Result<NameServer, NameServerError> {
        if !addr.ip().is_loopback() {
            return Err(NameServerError::NotLoopback { addr });
        }
        let (udp, tcp) = bind(addr).await?;
        let addr = udp.local_addr().map_err(NameServerError::LocalAddr)?;
        let shared = Arc::new(Shared::new(zone));
        let token = CancellationToken::new();
        let tracker = TaskTracker::new();
        tracker.spawn(udp_loop(udp, Arc::clone(&shared), token.clone()));
        tracker.spawn(accept_loop(
            tcp,
            Arc::clone(&shared),
            token.clone(),
            tracker.clone(),
        ));
        Ok(NameServer {
            addr,
            shared,
            token,
            tracker,
        })
    }

    /// The address the server answers on, for UDP and TCP alike.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the records while running (for TTL and cache tests); queries already being
    /// answered finish with the old zone.
    pub fn set_zone(&self, zone: Zone) {
        self.shared.set_zone(zone);
    }

    /// Request packets received so far over UDP and TCP, whether answered or deliberately
    /// dropped (`timeout` names, garbage). A UDP query retried over TCP counts twice.
    pub fn queries(&self) -> u64 {
        self.shared.total()
    }

    /// Queries so far for `name` (case-insensitive, trailing dot optional) and
    /// `record_type` (`"MX"`, `"A"`, `"aaaa"`, …); 0 for an unknown type.
    pub fn queries_for(&self, name: &str, record_type: &str) -> u64 {
        match RecordType::from_str(&record_type.to_ascii_uppercase()) {
            Ok(record_type) => self.shared.count(&canonical_str(name), record_type),
            Err(_) => 0,
        }
    }

    /// Stops answering, closes every connection and waits for their tasks to end.
    pub async fn shutdown(self) {
        self.token.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

impl Drop for NameServer {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

/// Binds UDP and TCP on the same port; for port 0, retries until a port free for both is
/// found.
async fn bind(addr: SocketAddr) -> Result<(UdpSocket, TcpListener), NameServerError> {
    let bind_error = |protocol, source| NameServerError::Bind {
        addr,
        protocol,
        source,
    };
    let mut attempts = 0;
    loop {
        attempts += 1;
        let udp = UdpSocket::bind(addr)
            .await
            .map_err(|source| bind_error("udp", source))?;
        let port = udp.local_addr().map_err(NameServerError::LocalAddr)?.port();
        match TcpListener::bind(SocketAddr::new(addr.ip(), port)).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(error)
                if addr.port() == 0
                    && error.kind() == io::ErrorKind::AddrInUse
                    && attempts < BIND_ATTEMPTS => {}
            Err(source) => return Err(bind_error("tcp", source)),
        }
    }
}

async fn udp_loop(socket: UdpSocket, shared: Arc<Shared>, token: CancellationToken) {
    let mut buffer = vec![0; MAX_DATAGRAM];
    loop {
        let received = tokio::select! {
            biased;
            () = token.cancelled() => return,
            received = socket.recv_from(&mut buffer) => received,
        };
        match received {
            Ok((len, peer)) => {
                let Some(request) = buffer.get(..len) else {
                    continue;
                };
                if let Some(reply) = shared.handle(request, Transport::Udp) {
                    if let Err(error) = socket.send_to(&reply, peer).await {
                        tracing::debug!(%error, %peer, "nameserver: UDP reply not sent");
                    }
                }
            }
            Err(error) => {
                // e.g. an ICMP error reported on the socket: note it, don't spin on it.
                tracing::debug!(%error, "nameserver: UDP receive failed");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    token: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            biased;
            () = token.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((tcp, _peer)) => {
                let shared = Arc::clone(&shared);
                let token = token.clone();
                tracker.spawn(async move {
                    tokio::select! {
                        () = token.cancelled() => {}
                        () = serve_tcp(tcp, shared) => {}
                    }
                });
            }
            Err(error) => {
                // Out of file descriptors and the like: back off briefly instead of spinning.
                tracing::warn!(%error, "nameserver: accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Answers length-prefixed queries on one connection, in order, until the client closes
/// it, sends something unreadable, or stays idle for [`TCP_IDLE`].
async fn serve_tcp(mut tcp: TcpStream, shared: Arc<Shared>) {
    if let Err(error) = tcp.set_nodelay(true) {
        tracing::debug!(%error, "nameserver: could not set TCP_NODELAY");
    }
    loop {
        let mut prefix = [0; 2];
        if !matches!(
            tokio::time::timeout(TCP_IDLE, tcp.read_exact(&mut prefix)).await,
            Ok(Ok(_))
        ) {
            return;
        }
        let mut request = vec![0; usize::from(u16::from_be_bytes(prefix))];
        if !matches!(
            tokio::time::timeout(TCP_IDLE, tcp.read_exact(&mut request)).await,
            Ok(Ok(_))
        ) {
            return;
        }
        let Some(reply) = shared.handle(&request, Transport::Tcp) else {
            continue;
        };
        let Ok(len) = u16::try_from(reply.len()) else {
            continue;
        };
        let mut framed = Vec::with_capacity(reply.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&reply);
        if let Err(error) = tcp.write_all(&framed).await {
            tracing::debug!(%error, "nameserver: TCP reply not sent");
            return;
        }
    }
}
