//! The sink's errors: things that stop the test SMTP server from starting, or a test wait
//! that ran out of time. SMTP replies the sink sends are behaviour, not errors.

use std::path::PathBuf;
use std::time::Duration;

/// Why the sink could not do what was asked of it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// Generating the throw-away test CA or its server certificate failed.
    #[error("could not generate the sink's test certificates: {0}")]
    CertGen(#[from] rcgen::Error),
    /// rustls refused the generated certificate or the protocol settings.
    #[error("could not build the sink's TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// Writing the CA certificate (public part only) to a file failed.
    #[error("could not write the sink's CA certificate to {path}: {source}")]
    WriteCa {
        /// The file that could not be written.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A certificate or key file given to `TestCa::from_pem_files` cannot be read or holds
    /// no PEM certificate (key).
    #[error("could not load the sink's certificate or key from {path}: {reason}")]
    LoadPem {
        /// The file.
        path: PathBuf,
        /// What is wrong (never the key's content).
        reason: String,
    },
    /// Binding the listening socket on 127.0.0.1 failed.
    #[error("could not bind the sink to 127.0.0.1: {0}")]
    Bind(std::io::Error),
    /// `Sink::start_on_many` was given no listener.
    #[error("the sink needs at least one listener")]
    NoListener,
    /// A listener given to `Sink::start_on` has no readable local address.
    #[error("could not read the sink listener's local address: {0}")]
    LocalAddr(std::io::Error),
    /// `Sink::wait_for` ran out of time before enough messages arrived.
    #[error(
        "timed out after {timeout:?} waiting for {wanted} message(s): {got} arrived; {summary}"
    )]
    WaitTimeout {
        /// How many messages the caller waited for.
        wanted: usize,
        /// How many fully accepted messages had arrived.
        got: usize,
        /// How long the caller waited.
        timeout: Duration,
        /// What the sink saw: connections, rejections and the last envelopes.
        summary: String,
    },
}
