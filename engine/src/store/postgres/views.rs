//! "View in browser" on PostgreSQL: each campaign's [`ViewMeta`], postcard-encoded in
//! `campaigns.view_meta` (migration 0013), as sled keeps it.

use super::PgEngine;
use crate::store::{StoreError, ViewMeta};

impl PgEngine {
    /// The campaign's view data, when stored.
    pub(super) fn read_view_meta(&self, campaign: &str) -> Result<Option<ViewMeta>, StoreError> {
        let row: Option<(Option<Vec<u8>>,)> = self.run(async {
            sqlx::query_as("SELECT view_meta FROM campaigns WHERE id = $1")
                .bind(campaign)
                .fetch_optional(self.store.pool())
                .await
                .map_err(|e| self.failed(&format!("read the view data of {campaign}"), e))
        })?;
        let Some(bytes) = row.and_then(|(bytes,)| bytes) else {
            return Ok(None);
        };
        postcard::from_bytes(&bytes)
            .map(Some)
            .map_err(|source| StoreError::Decode {
                path: self.path_buf(),
                what: "view",
                source,
            })
    }

    /// Stores (or replaces) the campaign's view data.
    pub(super) fn write_view_meta(
        &self,
        campaign: &str,
        meta: &ViewMeta,
    ) -> Result<(), StoreError> {
        let number = self.known(campaign)?;
        let bytes = postcard::to_stdvec(meta).map_err(|source| StoreError::Encode {
            path: self.path_buf(),
            what: "view",
            source,
        })?;
        self.run(async {
            sqlx::query("UPDATE campaigns SET view_meta = $2 WHERE number = $1")
                .bind(number)
                .bind(&bytes)
                .execute(self.store.pool())
                .await
                .map(drop)
                .map_err(|e| self.failed(&format!("store the view data of {campaign}"), e))
        })
    }
}

/// Writes a copied campaign's view data in the import's transaction `tx`.
pub(super) async fn import_view_meta(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    number: i32,
    meta: &ViewMeta,
) -> Result<(), sqlx::Error> {
    let bytes = postcard::to_stdvec(meta).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query("UPDATE campaigns SET view_meta = $2 WHERE number = $1")
        .bind(number)
        .bind(bytes)
        .execute(&mut **tx)
        .await
        .map(drop)
}
