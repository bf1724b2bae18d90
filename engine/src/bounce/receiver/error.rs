//! Errors of the bounce receiver: what stops it from starting. Problems with one client or
//! one message are answered on the wire and logged, never returned.

use std::io;
use std::path::PathBuf;

/// Why the bounce receiver could not start (or its ingest thread could not stop cleanly).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiverError {
    /// The spool folder could not be created, listed or cleaned.
    #[error("bounce spool {path}: {source}")]
    Spool {
        /// The folder or file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The TLS certificate or key file could not be read or used.
    #[error("bounce receiver TLS: {path}: {reason}")]
    Tls {
        /// The certificate or key file.
        path: PathBuf,
        /// What is wrong with it (never its contents).
        reason: String,
    },
    /// The listener's address could not be read.
    #[error("bounce receiver: cannot read the listening address: {0}")]
    Addr(io::Error),
    /// The ingest thread could not be started.
    #[error("bounce receiver: cannot start the ingest thread: {0}")]
    Thread(io::Error),
}
