//! `volley_testkit::Error`: why a test server could not start or a test wait ran out, for
//! callers that start both servers. Each server's own error stays in its module.

/// The test SMTP server or the test DNS server failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The test SMTP server failed.
    #[error(transparent)]
    Sink(#[from] crate::sink::SinkError),
    /// The test DNS server failed (or its zone is invalid).
    #[error(transparent)]
    NameServer(#[from] crate::nameserver::NameServerError),
}
