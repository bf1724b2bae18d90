//! Errors of the tracking server.

use std::net::SocketAddr;

/// The tracking server could not start or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrackingError {
    /// The listening address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What the system said.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("the tracking server stopped: {source}")]
    Serve {
        /// What went wrong.
        source: std::io::Error,
    },
}
