//! Errors of the control socket.

use std::path::PathBuf;

/// A failure to reach, or to serve, a store's control socket.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// The socket could not be created.
    #[error("could not create the control socket {path}: {source}")]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Nobody answers on the socket.
    #[error("could not reach the process owning the store through {path}: {source}")]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The exchange broke off.
    #[error("control socket {path}: {source}")]
    Io {
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The owner did not answer in time.
    #[error("the process owning the store did not answer on {path} within 10s")]
    Timeout {
        /// The socket path.
        path: PathBuf,
    },
    /// The owner's reply was not understood.
    #[error("control socket {path}: unreadable reply: {source}")]
    BadReply {
        /// The socket path.
        path: PathBuf,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The owner refused the request: the asking user is neither the user the owning process
    /// runs as nor root. Nothing was done.
    #[error("control socket {path}: refused: uid {uid} is not the store's owner (uid {owner})")]
    Refused {
        /// The socket path.
        path: PathBuf,
        /// The asking user's uid.
        uid: u32,
        /// The uid the owning process runs as.
        owner: u32,
    },
    /// The request could not be encoded.
    #[error("could not encode a control request: {0}")]
    Encode(#[source] serde_json::Error),
}
