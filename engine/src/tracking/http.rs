//! Connections of the tracking server, each bounded: at most `max_connections` served at
//! once (the next wait in the listen backlog until one closes), HTTP/1.1 with a header-read
//! timeout and a cap on the request head (hyper answers 431 past it), and an idle timeout:
//! a connection that neither sends nor reads a byte for that long is dropped.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::limits::TrackingLimits;

/// hyper's smallest read buffer: a head limit below it is raised to it.
const MIN_HEAD_BYTES: usize = 8 * 1024;

/// Serves `router` on `listener` within `limits` until `shutdown` resolves; then lets the
/// requests in flight finish and closes every connection.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &TrackingLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let stop = CancellationToken::new();
    let tasks = TaskTracker::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(MIN_HEAD_BYTES))
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of descriptors, a connection reset before accept…: wait, go on.
                    tracing::warn!(%error, "the tracking server could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        tasks.spawn(connection(
            stream,
            builder.clone(),
            router.clone(),
            (limits.idle_timeout, stop.clone()),
            permit,
        ));
    }
    stop.cancel();
    tasks.close();
    tasks.wait().await;
}

/// Serves one connection until it ends, idles for `idle`, or `stop` fires (then the request
/// in flight finishes first); `_permit` frees its place when it ends.
async fn connection(
    stream: TcpStream,
    builder: http1::Builder,
    router: Router,
    (idle, stop): (Duration, CancellationToken),
    _permit: OwnedSemaphorePermit,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
    });
    let served = builder.serve_connection(io, TowerToHyperService::new(router));
    tokio::pin!(served);
    let mut stopping = false;
    loop {
        let wake = activity.last() + idle;
        // The connection first: bytes waiting on it count as activity before the clock is
        // looked at (a task polled late must not find its fresh connection idle).
        tokio::select! {
            biased;
            result = served.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "a tracking connection ended with an error");
                }
                return;
            }
            () = stop.cancelled(), if !stopping => {
                served.as_mut().graceful_shutdown();
                stopping = true;
            }
            () = tokio::time::sleep_until(wake) => {
                if activity.last() + idle <= Instant::now() {
                    tracing::debug!("an idle tracking connection was closed");
                    return;
                }
            }
        }
    }
}

/// When a connection last moved a byte.
struct Activity {
    start: Instant,
    /// Milliseconds from `start`.
    last: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let millis = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(millis, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last.load(Ordering::Relaxed))
    }
}

/// A stream that notes each byte read or written in its [`Activity`].
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.touch();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
