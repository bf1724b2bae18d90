//! The store folder is private: mode 0700, so only the user running Volley (and root) can
//! read the store or reach its control socket.

use std::path::Path;

use crate::store::StoreError;

/// The store folder's mode.
pub(crate) const FOLDER_MODE: u32 = 0o700;

/// Creates `path` with mode 0700 (its missing parents with the default mode), or tightens an
/// existing folder of ours whose mode lets its group or others in to 0700 (a store is one
/// user's). Another user's folder is left as it is: not ours to change (and its owner's
/// volley tightens it on its next open).
pub(crate) fn make_private(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, PermissionsExt as _};
    let fail = |action: &'static str| {
        move |source: std::io::Error| StoreError::Folder {
            path: path.to_owned(),
            action,
            source,
        }
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(fail("create its parent folder"))?;
    }
    match std::fs::DirBuilder::new().mode(FOLDER_MODE).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(fail("create the folder")(e)),
    }
    let meta = std::fs::metadata(path).map_err(fail("read the folder's mode"))?;
    if !meta.is_dir() {
        return Err(fail("use it as a folder")(std::io::Error::other(
            "it exists and is not a folder",
        )));
    }
    let ours = meta.uid() == rustix::process::geteuid().as_raw();
    if ours && meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(FOLDER_MODE))
            .map_err(fail("make the folder private (mode 0700)"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_new_store_folder_is_private_and_its_parents_are_not_touched() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let store = dir.path().join("a/b/store");
        let _store = crate::store::sled::SledStore::open(&store).unwrap();
        assert_eq!(mode(&store), 0o700);
        assert_eq!(mode(dir.path()), 0o755);
    }

    #[test]
    fn an_existing_loose_store_folder_is_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        std::fs::create_dir(&store).unwrap();
        std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o777)).unwrap();
        drop(crate::store::sled::SledStore::open(&store).unwrap());
        assert_eq!(mode(&store), 0o700);
        // Opening it again leaves it as it is.
        drop(crate::store::sled::SledStore::open(&store).unwrap());
        assert_eq!(mode(&store), 0o700);
    }

    #[test]
    fn a_store_path_that_is_a_file_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("store");
        std::fs::write(&file, "x").unwrap();
        let err = make_private(&file).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "store {}: could not use it as a folder: it exists and is not a folder",
                file.display()
            )
        );
    }
}
