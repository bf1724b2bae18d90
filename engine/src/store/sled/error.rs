//! sled's failures as [`StoreError`]s, in words a user can act on.

use crate::store::StoreError;
use std::path::Path;

/// A sled failure on the store at `path`.
pub(crate) fn sled_error(path: &Path, source: sled::Error) -> StoreError {
    StoreError::Engine {
        path: path.to_owned(),
        detail: describe(&source),
        source: Box::new(source),
    }
}

/// sled reports a held lock as an I/O error from `flock`/`fcntl` ("could not acquire lock").
pub(crate) fn is_lock_error(io: &std::io::Error) -> bool {
    io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("lock")
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
        let path = Path::new("c.volley");
        let error = sled_error(path, sled::Error::Io(std::io::Error::from_raw_os_error(27)));
        let text = error.to_string();
        assert!(
            text.starts_with("store c.volley: cannot write: the disk is full"),
            "{text}"
        );
        assert!(text.contains("run the same command again"), "{text}");
        let wrapped = sled_error(
            path,
            sled::Error::Io(std::io::Error::other(
                "Os { code: 28, kind: StorageFull, message: \"No space left on device\" }",
            )),
        );
        assert!(wrapped.to_string().contains("disk is full"));
        let other = sled_error(path, sled::Error::Unsupported("x".into()));
        assert!(!other.to_string().contains("disk is full"));
    }
}
