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
    /// The engine behind the store failed to open, read or write.
    #[error("store {path}: {detail}")]
    Engine {
        /// The store (folder, or database address without its password).
        path: PathBuf,
        /// What failed, in words a user can act on (a full disk says so).
        detail: String,
        /// The engine's own error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A copy between stores (`volley store copy`) cannot go ahead, or read rows it cannot
    /// decode: what and why.
    #[error("store {path}: {detail}")]
    Transfer {
        /// The store (folder, or database address without its password).
        path: PathBuf,
        /// What is wrong, in words a user can act on.
        detail: String,
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
    /// The store folder could not be created or made private (mode 0700).
    #[error("store {path}: could not {action}: {source}")]
    Folder {
        /// The store folder.
        path: PathBuf,
        /// What was being done ("create the folder", "make the folder private (mode 0700)").
        action: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The store was written by a newer version of Volley, in a format this binary cannot read.
    #[error(
        "store {path} has format {found}, written by a newer version of volley; this binary reads formats up to {newest}: \
         run a newer volley (the store was left untouched)"
    )]
    NewerFormat {
        /// The store folder.
        path: PathBuf,
        /// The format the store holds.
        found: u32,
        /// The newest format this binary reads.
        newest: u32,
    },
    /// The store was written by an older version of Volley in a layout this binary no longer
    /// reads; `volley store upgrade` rewrites it.
    #[error(
        "store {path} has format {found} (an older layout); run `volley store upgrade {path}` \
         to rewrite it (a copy of the old store is kept); the store was left untouched"
    )]
    OlderFormat {
        /// The store folder.
        path: PathBuf,
        /// The format the store holds.
        found: u32,
    },
    /// Upgrading a store's format failed (the old store is left as it was).
    #[error("upgrading store {path}: {problem}")]
    Upgrade {
        /// The store folder.
        path: PathBuf,
        /// What went wrong, in words.
        problem: String,
    },
    /// The store's format key holds something that is not a format version.
    #[error("store {path}: its format key is damaged ({length} bytes, not a version number); the store was left untouched")]
    DamagedFormat {
        /// The store folder.
        path: PathBuf,
        /// The length of the value found.
        length: usize,
    },
    /// A live node of the cluster already has this name.
    #[error(
        "store {path}: node {node} is already running (on {host}, pid {pid}, last heartbeat {age_secs} s ago); \
         give this one another name (--node or [cluster] node), or stop that one first"
    )]
    NodeInUse {
        /// The store (database address without its password).
        path: PathBuf,
        /// The node name.
        node: String,
        /// Where the running node is.
        host: String,
        /// Its process id.
        pid: u32,
        /// Seconds since its last heartbeat.
        age_secs: u64,
    },
    /// The engine behind the store cannot do this yet.
    #[error("store {path}: {what} is not supported by this store engine yet")]
    Unsupported {
        /// The store (folder, or database address without its password).
        path: PathBuf,
        /// What was asked.
        what: &'static str,
    },
    /// Another process registered under this node's name (this one was taken for dead).
    #[error("store {path}: node {node} was registered again by another process; this one stops taking work")]
    NodeReplaced {
        /// The store (database address without its password).
        path: PathBuf,
        /// The node name.
        node: String,
    },
}
