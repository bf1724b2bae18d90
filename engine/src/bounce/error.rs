//! Errors of bounce intake: reading bounce messages from files, mboxes and Maildirs.
//!
//! Parsing itself never fails: a message that cannot be understood is reported as
//! [`ReportKind::NotABounce`](super::dsn::ReportKind::NotABounce), not as an error.

use std::io;
use std::path::PathBuf;

/// Why bounce messages could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BounceError {
    /// A message file, mbox or the metadata of a path could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A directory (plain, or a Maildir's `cur/` or `new/`) could not be listed.
    #[error("cannot list directory {path}: {source}")]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The path is neither a regular file nor a directory (a socket, a device...).
    #[error("{path} is neither a message file, an mbox nor a directory")]
    Unsupported {
        /// The path given.
        path: PathBuf,
    },
}
