//! The store's format version (key `V`): which layout of keys and values a store folder holds,
//! so that a binary never misreads a store written by another version of Volley.
//!
//! - A store without the key is format 1, the layout this binary writes (every store made
//!   before the key existed); it is read as it is, and the key is written on open.
//! - A new (empty) store gets the key at once.
//! - A store with a format newer than [`FORMAT`] is refused with [`StoreError::NewerFormat`]
//!   before anything is read or written.
//! - A value that is not a version at all is refused with [`StoreError::DamagedFormat`].
//!
//! A future layout (packed recipients at load, issue 18) bumps [`FORMAT`]
//! and teaches `volley store upgrade` to rewrite older stores.

use super::keys;
use crate::store::StoreError;
use std::path::Path;

/// The newest store format this binary reads and the one it writes.
pub(crate) const FORMAT: u32 = 1;

/// Checks the format of the store open in `tree` at `path`, writing the key when it is
/// missing (a new store, or one made before the key existed: both hold format 1).
pub(crate) fn check(path: &Path, tree: &sled::Tree) -> Result<u32, StoreError> {
    let sled_error = |source| super::error::sled_error(path, source);
    let Some(value) = tree.get(keys::FORMAT).map_err(sled_error)? else {
        tree.insert(keys::FORMAT, &FORMAT.to_be_bytes())
            .map_err(sled_error)?;
        return Ok(FORMAT);
    };
    let found = match <[u8; 4]>::try_from(value.as_ref()) {
        Ok(bytes) => u32::from_be_bytes(bytes),
        Err(_) => {
            return Err(StoreError::DamagedFormat {
                path: path.to_owned(),
                length: value.len(),
            })
        }
    };
    if found == 0 {
        return Err(StoreError::DamagedFormat {
            path: path.to_owned(),
            length: value.len(),
        });
    }
    if found > FORMAT {
        return Err(StoreError::NewerFormat {
            path: path.to_owned(),
            found,
            newest: FORMAT,
        });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    /// Opens a bare sled database at `path` (no Volley checks) and runs `change` on its tree.
    fn with_raw_tree(path: &Path, change: impl FnOnce(&sled::Tree)) {
        let db = sled::open(path).unwrap();
        let tree = db.open_tree("campaigns").unwrap();
        change(&tree);
        db.flush().unwrap();
    }

    fn stored_format(path: &Path) -> Option<Vec<u8>> {
        let db = sled::open(path).unwrap();
        let tree = db.open_tree("campaigns").unwrap();
        tree.get(keys::FORMAT).unwrap().map(|v| v.to_vec())
    }

    #[test]
    fn a_new_store_records_its_format() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        assert_eq!(
            stored_format(dir.path()),
            Some(FORMAT.to_be_bytes().to_vec())
        );
    }

    #[test]
    fn a_store_from_before_the_key_is_read_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        super::super::tests::load(&store);
        store.flush_blocking().unwrap();
        drop(store);
        with_raw_tree(dir.path(), |tree| {
            tree.remove(keys::FORMAT).unwrap();
        });
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.counts("c1").unwrap().unwrap().pending, 2);
        assert_eq!(store.pending("c1", None, 10).unwrap().len(), 2);
        drop(store);
        assert_eq!(
            stored_format(dir.path()),
            Some(FORMAT.to_be_bytes().to_vec())
        );
    }

    #[test]
    fn a_newer_format_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        with_raw_tree(dir.path(), |tree| {
            tree.insert(keys::FORMAT, &(FORMAT + 1).to_be_bytes())
                .unwrap();
        });
        let error = Store::open(dir.path()).unwrap_err();
        assert!(
            matches!(error, StoreError::NewerFormat { found, newest, .. }
                if found == FORMAT + 1 && newest == FORMAT),
            "{error}"
        );
        let text = error.to_string();
        assert!(text.contains(&dir.path().display().to_string()), "{text}");
        assert!(text.contains("newer version of volley"), "{text}");
        // Refused before anything was written: the key is as the newer binary left it.
        assert_eq!(
            stored_format(dir.path()),
            Some((FORMAT + 1).to_be_bytes().to_vec())
        );
    }

    #[test]
    fn a_damaged_format_key_is_refused() {
        for value in [&b"x"[..], &0u32.to_be_bytes()[..]] {
            let dir = tempfile::tempdir().unwrap();
            drop(Store::open(dir.path()).unwrap());
            with_raw_tree(dir.path(), |tree| {
                tree.insert(keys::FORMAT, value).unwrap();
            });
            let error = Store::open(dir.path()).unwrap_err();
            assert!(matches!(error, StoreError::DamagedFormat { .. }), "{error}");
            assert!(error.to_string().contains("format key"), "{error}");
        }
    }
}
