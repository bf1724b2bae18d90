//! Errors of the store: what failed, on which store path.

use std::path::PathBuf;

/// A failure of the on-disk store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another process holds the store (sled is single-process).
    #[error("the store {path} is in use by another volley process")]
    Locked {
        /// The store folder.
        path: PathBuf,
    },
    /// sled failed to open, read or write.
    #[error("store {path}: {source}")]
    Sled {
        /// The store folder.
        path: PathBuf,
        /// What sled said.
        #[source]
        source: sled::Error,
    },
    /// A stored value could not be decoded (corruption or a store from another version).
    #[error("store {path}: damaged {what} record: {source}")]
    Decode {
        /// The store folder.
        path: PathBuf,
        /// Which kind of record.
        what: &'static str,
        /// The decoder's complaint.
        #[source]
        source: postcard::Error,
    },
    /// A value could not be encoded.
    #[error("store {path}: could not encode {what}: {source}")]
    Encode {
        /// The store folder.
        path: PathBuf,
        /// Which kind of record.
        what: &'static str,
        /// The encoder's complaint.
        #[source]
        source: postcard::Error,
    },
    /// The campaign has never been loaded into this store.
    #[error("campaign {campaign} is not in the store {path}")]
    UnknownCampaign {
        /// The campaign id.
        campaign: String,
        /// The store folder.
        path: PathBuf,
    },
    /// The campaign's tracked links (or tracking key) differ from those of its first run:
    /// messages already sent point at the old ones.
    #[error(
        "campaign {campaign} in {path}: its tracked links or its tracking key changed since its first run; \
         messages already sent point at the old ones, so send the new version as a new campaign (a new id)"
    )]
    TrackingChanged {
        /// The campaign id.
        campaign: String,
        /// The store folder.
        path: PathBuf,
    },
}
