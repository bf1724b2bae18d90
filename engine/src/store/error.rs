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
    #[error("store {path}: {}", describe(source))]
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
}

/// What sled said, in words a user can act on when the disk is full or a file-size limit
/// (`ulimit -f`, a quota) was reached.
fn describe(source: &sled::Error) -> String {
    let sled::Error::Io(io) = source else {
        return source.to_string();
    };
    let text = io.to_string();
    let full = matches!(
        io.kind(),
        std::io::ErrorKind::FileTooLarge
            | std::io::ErrorKind::StorageFull
            | std::io::ErrorKind::QuotaExceeded
    ) || matches!(io.raw_os_error(), Some(27 | 28 | 122))
        || ["File too large", "No space left", "quota exceeded"]
            .iter()
            .any(|needle| text.contains(needle));
    if full {
        format!(
            "cannot write: the disk is full or a file-size limit or quota was reached ({}); \
             free space (or raise the limit), then run the same command again to resume",
            io.kind()
        )
    } else {
        source.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_says_what_to_do() {
        let error = StoreError::Sled {
            path: "c.volley".into(),
            source: sled::Error::Io(std::io::Error::from_raw_os_error(27)),
        };
        let text = error.to_string();
        assert!(
            text.starts_with("store c.volley: cannot write: the disk is full"),
            "{text}"
        );
        assert!(text.contains("run the same command again"), "{text}");
        let wrapped = StoreError::Sled {
            path: "c.volley".into(),
            source: sled::Error::Io(std::io::Error::other(
                "Os { code: 28, kind: StorageFull, message: \"No space left on device\" }",
            )),
        };
        assert!(wrapped.to_string().contains("disk is full"));
        let other = StoreError::Sled {
            path: "c.volley".into(),
            source: sled::Error::Unsupported("x".into()),
        };
        assert!(!other.to_string().contains("disk is full"));
    }
}
