//! Webhook cursors on sled: where each webhook stands in each campaign's history.
//!
//! ```text
//! W <webhook> 0              → u64be          when the webhook was first registered
//! W <webhook> 0 <campaign>   → WebhookCursor  acknowledged up to there
//! ```
//! Webhook names never contain a zero byte (the serve file's check); nor do campaign ids.

use super::keys;
use super::SledStore;
use crate::model::Millis;
use crate::store::{StoreError, WebhookCursor};

/// `W <webhook> 0`: the registration key, and the prefix of the webhook's cursors.
fn prefix(name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(name.len() + 2);
    key.push(keys::WEBHOOK);
    key.extend_from_slice(name.as_bytes());
    key.push(0);
    key
}

impl SledStore {
    /// See [`crate::store::HistoryStore::register_webhook`].
    pub(crate) fn register_webhook(&self, name: &str, now: Millis) -> Result<Millis, StoreError> {
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let key = prefix(name);
        if let Some(value) = self.tree.get(&key).map_err(|e| self.sled_error(e))? {
            if let Ok(bytes) = <[u8; 8]>::try_from(value.as_ref()) {
                return Ok(u64::from_be_bytes(bytes));
            }
        }
        self.tree
            .insert(key, &now.to_be_bytes())
            .map_err(|e| self.sled_error(e))?;
        self.flush_blocking()?;
        Ok(now)
    }

    /// See [`crate::store::HistoryStore::webhook_cursors`].
    pub(crate) fn webhook_cursors(
        &self,
        name: &str,
    ) -> Result<Vec<(String, WebhookCursor)>, StoreError> {
        let prefix = prefix(name);
        let mut out = Vec::new();
        for entry in self.tree.scan_prefix(&prefix) {
            let (key, value) = entry.map_err(|e| self.sled_error(e))?;
            if key.len() == prefix.len() {
                continue;
            }
            let campaign = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
            out.push((campaign, self.decode(&value, "webhook cursor")?));
        }
        Ok(out)
    }

    /// See [`crate::store::HistoryStore::set_webhook_cursor`].
    pub(crate) fn set_webhook_cursor(
        &self,
        name: &str,
        campaign: &str,
        cursor: WebhookCursor,
    ) -> Result<(), StoreError> {
        let mut key = prefix(name);
        key.extend_from_slice(campaign.as_bytes());
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let old: Option<WebhookCursor> = self.get(&key, "webhook cursor")?;
        if old.is_some_and(|old| (old.at, old.skip) >= (cursor.at, cursor.skip)) {
            return Ok(());
        }
        self.tree
            .insert(key, self.encode(&cursor, "webhook cursor")?)
            .map_err(|e| self.sled_error(e))?;
        self.flush_blocking()
    }

    /// See [`crate::store::HistoryStore::webhook_positions`].
    pub(crate) fn webhook_positions(
        &self,
        campaign: &str,
    ) -> Result<Vec<(String, Millis, Option<WebhookCursor>)>, StoreError> {
        let mut out = Vec::new();
        for entry in self.tree.scan_prefix([keys::WEBHOOK]) {
            let (key, value) = entry.map_err(|e| self.sled_error(e))?;
            // Registrations only: `W <webhook> 0`, the zero byte last.
            if key.iter().position(|b| *b == 0) != Some(key.len() - 1) {
                continue;
            }
            let Ok(bytes) = <[u8; 8]>::try_from(value.as_ref()) else {
                continue;
            };
            let name = String::from_utf8_lossy(&key[1..key.len() - 1]).into_owned();
            let mut cursor_key = key.to_vec();
            cursor_key.extend_from_slice(campaign.as_bytes());
            let cursor = self.get(&cursor_key, "webhook cursor")?;
            out.push((name, u64::from_be_bytes(bytes), cursor));
        }
        Ok(out)
    }

    /// See [`crate::store::HistoryStore::forget_webhook`].
    pub(crate) fn forget_webhook(&self, name: &str) -> Result<bool, StoreError> {
        let prefix = prefix(name);
        let mut batch = sled::Batch::default();
        let mut found = false;
        for entry in self.tree.scan_prefix(&prefix) {
            let (key, _) = entry.map_err(|e| self.sled_error(e))?;
            found |= key.len() == prefix.len();
            batch.remove(key);
        }
        self.tree
            .apply_batch(batch)
            .map_err(|e| self.sled_error(e))?;
        self.flush_blocking()?;
        Ok(found)
    }
}
