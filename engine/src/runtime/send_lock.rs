//! One send per campaign at a time on a PostgreSQL store. On sled the store's folder lock
//! does this (a second `volley send` hands its campaign to the process holding the store);
//! on a database, a lock file per campaign in the store's local folder (`[store] local_dir`,
//! default `<campaign stem>.volley`) keeps a second `volley send` of one campaign on one
//! machine out (exit 3), as on sled; processes on other machines share the campaign through
//! the cluster's leases instead. The lock is `flock`'s: released when the process ends,
//! however it ends.

use crate::store::StoreLocation;
use crate::Error;
use std::io::{Read as _, Seek as _, Write as _};
use std::path::Path;

/// Held while a campaign is being sent; released on drop.
#[derive(Debug)]
pub(crate) struct SendLock {
    _file: Option<std::fs::File>,
}

/// Takes the send lock of `campaign` on a PostgreSQL store (nothing to take on sled, or on a
/// database with no local folder); fails with [`Error::AlreadySending`] while another
/// process holds it.
pub(crate) fn lock(location: &StoreLocation, campaign: &str) -> Result<SendLock, Error> {
    let (true, Some(dir)) = (location.is_postgres(), location.local_dir()) else {
        return Ok(SendLock { _file: None });
    };
    let path = dir.join(format!("send-{campaign}.lock"));
    let io = |source| Error::Io {
        path: path.clone(),
        source,
    };
    create_private_dir(dir).map_err(|source| Error::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(rustix::io::Errno::WOULDBLOCK) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Err(Error::AlreadySending {
                campaign: campaign.to_owned(),
                pid: text.trim().parse().ok(),
            });
        }
        Err(errno) => return Err(io(errno.into())),
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    write!(file, "{}", std::process::id()).map_err(io)?;
    Ok(SendLock { _file: Some(file) })
}

/// Creates `dir` (and its parents) private to the user: mode 0700, as a sled folder is.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::PgSettings;

    #[test]
    fn a_second_send_of_one_campaign_on_one_database_is_refused_until_the_first_ends() {
        let dir = tempfile::tempdir().unwrap();
        let location = StoreLocation::Postgres {
            settings: PgSettings::new("postgresql://u@127.0.0.1/db"),
            local: Some(dir.path().join("news.volley")),
        };
        let first = lock(&location, "news").unwrap();
        // flock locks belong to the open file: a second open in this process conflicts too.
        match lock(&location, "news") {
            Err(Error::AlreadySending { campaign, pid }) => {
                assert_eq!(campaign, "news");
                assert_eq!(pid, Some(std::process::id()));
            }
            other => panic!("{other:?}"),
        }
        lock(&location, "other").unwrap();
        drop(first);
        lock(&location, "news").unwrap();
        // sled locks its folder itself.
        let folder = StoreLocation::Folder(dir.path().join("s.volley"));
        let _a = lock(&folder, "news").unwrap();
        let _b = lock(&folder, "news").unwrap();
        assert!(!dir.path().join("s.volley").exists());
    }
}
