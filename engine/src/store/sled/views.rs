//! "View in browser": each campaign's [`ViewMeta`] under `y <campaign>`, written at load.

use super::keys;
use super::SledStore;
use crate::store::{StoreError, ViewMeta};

impl SledStore {
    /// What the tracking server needs to show the campaign's messages, when stored.
    pub(crate) fn view_meta(&self, campaign: &str) -> Result<Option<ViewMeta>, StoreError> {
        self.get(&keys::campaign_key(keys::VIEW_META, campaign), "view")
    }

    /// Stores (or replaces) it: a re-run with edited templates shows the new ones.
    pub(crate) fn set_view_meta(&self, campaign: &str, meta: &ViewMeta) -> Result<(), StoreError> {
        self.tree
            .insert(
                keys::campaign_key(keys::VIEW_META, campaign),
                self.encode(meta, "view")?,
            )
            .map(drop)
            .map_err(|e| self.sled_error(e))
    }
}
