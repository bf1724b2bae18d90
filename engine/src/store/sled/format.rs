//! The store's format version (key `V`): which layout of keys and values a store folder holds,
//! so that a binary never misreads a store written by another version of Volley.
//!
//! - Format 3 (this binary, [`FORMAT`]): as format 2, with the packed recipients (`p` keys)
//!   in a tree of their own (`packed`) instead of the main tree (`campaigns`), so that sled
//!   never rewrites them with the small values a send changes at every recorded group.
//! - Format 2: recipients packed at load (see `keys`). Read and written as it is (its packed
//!   recipients stay in the main tree); format-2 binaries refuse format 3 as newer.
//! - A new (empty) store gets the key at once.
//! - A store holding format 1 (the key says 1, or there is no key but there are campaigns:
//!   stores made before the key existed) is refused with [`StoreError::OlderFormat`], which
//!   names `volley store upgrade` (see `upgrade`); nothing is read or written.
//! - A store with a format newer than [`FORMAT`] is refused with [`StoreError::NewerFormat`]
//!   before anything is read or written.
//! - A value that is not a version at all is refused with [`StoreError::DamagedFormat`].
//!
//! Binaries from before the key ignore it, so format 2 also makes itself unreadable to them:
//! every campaign record (`m`) starts with [`POISON`], which their decoder refuses ("damaged
//! campaign record") instead of finding a campaign without recipients.

use super::keys;
use super::SledStore;
use crate::store::{CampaignMeta, StoreError};
use std::path::Path;

/// The newest store format this binary reads and the one it writes.
pub(crate) const FORMAT: u32 = 3;

/// The first format whose packed recipients live in their own tree.
pub(crate) const PACKED_APART: u32 = 3;

/// The oldest format this binary reads as it is (older ones need `volley store upgrade`).
pub(crate) const OLDEST_READ: u32 = 2;

/// The prefix of every format-2 campaign record: ten bytes with the continuation bit set, an
/// overlong varint that postcard refuses, where format-1 readers expect the column count.
pub(crate) const POISON: [u8; 10] = [0xff; 10];

/// What the format key says, or `None` without a key.
pub(crate) fn stored(path: &Path, tree: &sled::Tree) -> Result<Option<u32>, StoreError> {
    let sled_error = |source| super::error::sled_error(path, source);
    let Some(value) = tree.get(keys::FORMAT).map_err(sled_error)? else {
        return Ok(None);
    };
    match <[u8; 4]>::try_from(value.as_ref()).map(u32::from_be_bytes) {
        Ok(found) if found > 0 => Ok(Some(found)),
        _ => Err(StoreError::DamagedFormat {
            path: path.to_owned(),
            length: value.len(),
        }),
    }
}

/// Checks the format of the store open in `tree` at `path`, writing the key on a new store.
pub(crate) fn check(path: &Path, tree: &sled::Tree) -> Result<u32, StoreError> {
    let sled_error = |source| super::error::sled_error(path, source);
    let found = match stored(path, tree)? {
        Some(found) => found,
        // Campaigns but no key: a store from before the key, format 1.
        None if tree.scan_prefix([keys::META]).next().is_some() => 1,
        None => {
            tree.insert(keys::FORMAT, &FORMAT.to_be_bytes())
                .map_err(sled_error)?;
            return Ok(FORMAT);
        }
    };
    if found > FORMAT {
        return Err(StoreError::NewerFormat {
            path: path.to_owned(),
            found,
            newest: FORMAT,
        });
    }
    if found < OLDEST_READ {
        return Err(StoreError::OlderFormat {
            path: path.to_owned(),
            found,
        });
    }
    Ok(found)
}

impl SledStore {
    /// Encodes a campaign record as format 2 stores it (behind [`POISON`]).
    pub(crate) fn encode_meta(&self, meta: &CampaignMeta) -> Result<Vec<u8>, StoreError> {
        let mut out = POISON.to_vec();
        out.extend_from_slice(&self.encode(meta, "campaign")?);
        Ok(out)
    }

    /// Decodes a campaign record written by [`SledStore::encode_meta`].
    pub(crate) fn decode_meta(&self, bytes: &[u8]) -> Result<CampaignMeta, StoreError> {
        let body = bytes.strip_prefix(&POISON[..]).unwrap_or(bytes);
        self.decode(body, "campaign")
    }
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
    fn a_format_1_store_is_refused_and_names_the_upgrade() {
        for key in [Some(1u32), None] {
            let dir = tempfile::tempdir().unwrap();
            with_raw_tree(dir.path(), |tree| {
                tree.insert([keys::META], &b"old campaign"[..]).unwrap();
                if let Some(format) = key {
                    tree.insert(keys::FORMAT, &format.to_be_bytes()).unwrap();
                }
            });
            let error = Store::open(dir.path()).unwrap_err();
            assert!(
                matches!(error, StoreError::OlderFormat { found: 1, .. }),
                "{error}"
            );
            assert!(
                error.to_string().contains("volley store upgrade"),
                "{error}"
            );
            assert_eq!(
                stored_format(dir.path()),
                key.map(|k| k.to_be_bytes().to_vec()),
                "left untouched"
            );
        }
    }

    #[test]
    fn a_format_2_store_is_read_and_written_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        with_raw_tree(dir.path(), |tree| {
            tree.insert(keys::FORMAT, &2u32.to_be_bytes()).unwrap();
        });
        let store = Store::open(dir.path()).unwrap();
        super::super::tests::load(&store);
        let pending = store.pending("c1", None, 10).unwrap();
        assert!(!pending.is_empty());
        drop(store);
        assert_eq!(stored_format(dir.path()), Some(2u32.to_be_bytes().to_vec()));
        // Its packed rows stay in the main tree, where a format-2 binary looks for them.
        let db = sled::open(dir.path()).unwrap();
        let tree = db.open_tree("campaigns").unwrap();
        assert!(tree.scan_prefix([keys::PACKED_ROWS]).next().is_some());
        assert!(!db
            .tree_names()
            .iter()
            .any(|name| name.as_ref() == b"packed"));
        drop((tree, db));
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.pending("c1", None, 10).unwrap().len(), pending.len());
    }

    #[test]
    fn a_format_3_store_keeps_packed_rows_apart() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        super::super::tests::load(&store);
        drop(store);
        let db = sled::open(dir.path()).unwrap();
        let tree = db.open_tree("campaigns").unwrap();
        assert!(tree.scan_prefix([keys::PACKED_ROWS]).next().is_none());
        let packed = db.open_tree("packed").unwrap();
        assert!(packed.scan_prefix([keys::PACKED_ROWS]).next().is_some());
    }

    #[test]
    fn an_old_binary_cannot_read_a_format_2_campaign_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        super::super::tests::load(&store);
        drop(store);
        let db = sled::open(dir.path()).unwrap();
        let tree = db.open_tree("campaigns").unwrap();
        let value = tree
            .get(keys::campaign_key(keys::META, "c1"))
            .unwrap()
            .unwrap();
        assert!(value.starts_with(&POISON));
        // What a format-1 binary does with it: decode it as a campaign record.
        assert!(postcard::from_bytes::<CampaignMeta>(&value).is_err());
        assert!(postcard::from_bytes::<CampaignMeta>(&value[POISON.len()..]).is_ok());
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
