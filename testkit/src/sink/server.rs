//! The running sink: binds (or takes) one or more loopback listeners sharing one state,
//! accepts connections and runs one tokio task per session, all under one cancellation
//! token so the sink stops on `Drop`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::certs::TestCa;
use super::conn::Conn;
use super::session::{resumed, Context, Session};
use super::state::Shared;
use super::stats::{Received, SinkStats};
use super::{SinkConfig, SinkError, SinkTls};

/// A running test SMTP server on loopback. It records every fully accepted transaction and
/// stops (cancelling its tasks) when dropped or shut down.
#[derive(Debug)]
pub struct Sink {
    addrs: Vec<SocketAddr>,
    ctx: Arc<Context>,
    ca: Option<TestCa>,
    token: CancellationToken,
    tracker: TaskTracker,
}

impl Sink {
    /// Starts a sink on `127.0.0.1:0`, generating its own test CA when TLS is on.
    pub async fn start(config: SinkConfig) -> Result<Sink, SinkError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(SinkError::Bind)?;
        Sink::start_on(listener, config, None).await
    }

    /// Starts a sink on a listener the caller bound; `ca` supplies the certificates (one is
    /// generated when TLS is on and none is given; it is ignored when TLS is off).
    pub async fn start_on(
        listener: TcpListener,
        config: SinkConfig,
        ca: Option<TestCa>,
    ) -> Result<Sink, SinkError> {
        Sink::start_on_many(vec![listener], config, ca).await
    }

    /// Starts one sink on several listeners the caller bound (say `127.0.0.2:2525` and
    /// `127.0.0.3:2525`, as two MX hosts of one receiver). They share everything: the
    /// received messages, the counters, the scripts' memory of addresses, the rate-limit
    /// windows, the connection cap and the TLS session cache. `ca` as in [`Sink::start_on`].
    /// Fails with [`SinkError::NoListener`] when `listeners` is empty.
    pub async fn start_on_many(
        listeners: Vec<TcpListener>,
        config: SinkConfig,
        ca: Option<TestCa>,
    ) -> Result<Sink, SinkError> {
        if listeners.is_empty() {
            return Err(SinkError::NoListener);
        }
        let addrs = listeners
            .iter()
            .map(TcpListener::local_addr)
            .collect::<Result<Vec<_>, _>>()
            .map_err(SinkError::LocalAddr)?;
        let (ca, acceptor) = match config.tls {
            SinkTls::None => (ca, None),
            SinkTls::StartTls | SinkTls::Implicit => {
                let ca = match ca {
                    Some(ca) => ca,
                    None => TestCa::generate()?,
                };
                let acceptor = TlsAcceptor::from(ca.server_config()?);
                (Some(ca), Some(acceptor))
            }
        };
        let ctx = Arc::new(Context {
            config,
            shared: Arc::new(Shared::default()),
            acceptor,
        });
        let token = CancellationToken::new();
        let tracker = TaskTracker::new();
        for listener in listeners {
            tracker.spawn(accept_loop(
                listener,
                Arc::clone(&ctx),
                token.clone(),
                tracker.clone(),
            ));
        }
        Ok(Sink {
            addrs,
            ctx,
            ca,
            token,
            tracker,
        })
    }

    /// The address the sink listens on (127.0.0.1 unless the caller bound another); the
    /// first one when it listens on several.
    pub fn addr(&self) -> SocketAddr {
        // invariant: `start_on_many` refuses an empty list of listeners.
        self.addrs[0]
    }

    /// Every address the sink listens on, in the order its listeners were given.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The CA certificate (PEM) clients must trust, when TLS is on.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca.as_ref().map(TestCa::ca_pem)
    }

    /// The test CA, when TLS is on (for `TestCa::client_config` or `write_ca`).
    pub fn ca(&self) -> Option<&TestCa> {
        self.ca.as_ref()
    }

    /// The configuration the sink runs with.
    pub fn config(&self) -> &SinkConfig {
        &self.ctx.config
    }

    /// A copy of every fully accepted transaction so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.ctx.shared.received()
    }

    /// Removes and returns the transactions received so far, for a long-running receiver
    /// that hands messages on (`count` and `received` then start again from zero).
    pub fn take_received(&self) -> Vec<Received> {
        self.ctx.shared.take_received()
    }

    /// Moves the sink's clock `by` ahead, as if that much time had passed for greylisting
    /// and rate-limit windows (so a test need not sleep through them).
    pub fn advance(&self, by: Duration) {
        self.ctx.shared.advance(by);
    }

    /// Lifts `SinkConfig::policy_block`: the blocked domain's recipients are taken again.
    pub fn lift_block(&self) {
        self.ctx.shared.lift_block();
    }

    /// How many transactions were fully accepted so far.
    pub fn count(&self) -> usize {
        self.ctx.shared.count()
    }

    /// Waits until at least `n` transactions were accepted and returns them all; after
    /// `timeout` fails with how many arrived and a summary of what the sink saw.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Result<Vec<Received>, SinkError> {
        let shared = &self.ctx.shared;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = shared.arrived().notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            if shared.count() >= n {
                return Ok(shared.received());
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return Err(SinkError::WaitTimeout {
                    wanted: n,
                    got: shared.count(),
                    timeout,
                    summary: shared.summary(),
                });
            }
        }
    }

    /// A copy of the counters.
    pub fn stats(&self) -> SinkStats {
        self.ctx.shared.stats()
    }

    /// Stops accepting, closes every session and waits for their tasks to end.
    pub async fn shutdown(self) {
        self.stop().await;
    }

    /// Stops the sink as a server that goes away does, keeping the handle: the listeners
    /// close, every session is cut at once (a transaction in flight gets no reply), and this
    /// returns once their tasks have ended, so the port can be bound again. What was
    /// received and the counters stay readable. Stopping twice is harmless.
    pub async fn stop(&self) {
        self.token.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

async fn accept_loop(
    listener: TcpListener,
    ctx: Arc<Context>,
    token: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            () = token.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let ctx = Arc::clone(&ctx);
                let token = token.clone();
                tracker.spawn(async move {
                    tokio::select! {
                        () = token.cancelled() => {}
                        () = serve(tcp, peer, ctx) => {}
                    }
                });
            }
            Err(error) => {
                // Out of file descriptors and the like: back off briefly instead of spinning.
                tracing::warn!(%error, "sink: accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Runs one connection from `peer`: implicit TLS handshake if configured, then the SMTP
/// session.
async fn serve(tcp: TcpStream, peer: SocketAddr, ctx: Arc<Context>) {
    if let Err(error) = tcp.set_nodelay(true) {
        tracing::debug!(%error, "sink: could not set TCP_NODELAY");
    }
    let guard = ctx.shared.connection_opened();
    let (conn, tls) = match (&ctx.config.tls, &ctx.acceptor) {
        (SinkTls::Implicit, Some(acceptor)) => match acceptor.accept(tcp).await {
            Ok(stream) => {
                ctx.shared.tls_session(resumed(&stream));
                (Conn::Tls(Box::new(stream)), true)
            }
            Err(error) => {
                tracing::debug!(%error, "sink: implicit TLS handshake failed");
                return;
            }
        },
        _ => (Conn::Plain(tcp), false),
    };
    if let Err(error) = Session::new(conn, ctx, guard, tls, Some(peer)).run().await {
        tracing::debug!(%error, "sink: session ended with an I/O error");
    }
}
