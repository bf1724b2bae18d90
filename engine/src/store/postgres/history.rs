//! A campaign's history on PostgreSQL: the event export (`export.rs`), its mark, and gc.
//!
//! Collecting a campaign keeps its counters (`state_counts`, `track_counts`), its link table,
//! A/B record and archive, and each recipient's row with its address, state, variant and
//! engagement (opens, clicks and one-click unsubscribes of mail already sent keep working);
//! it empties the merge fields (unless its tracked links use them), replies and attempt
//! times, and drops the attempt log and event partitions (a `DROP`, no dead rows), the
//! Message-ID index and the tracking de-duplication.

use super::engine::{ms, ts, PgEngine};
use super::PgStoreError;
use crate::model::Millis;
use crate::store::api::{HistoryStore, TrackingStore};
use crate::store::{Collected, EventTally, ExportEvents, ExportMark, StoreError, WebhookCursor};
use std::ffi::OsStr;
use std::path::Path;

/// The rows collecting drops: the attempt log, the events, the Message-ID index.
const DETAIL_ROWS: &str = "\
SELECT (SELECT count(*) FROM attempts WHERE campaign = $1)
     + (SELECT count(*) FROM report_events WHERE campaign = $1)
     + (SELECT count(*) FROM track_events WHERE campaign = $1)
     + (SELECT count(*) FROM messages WHERE campaign = $1)";

/// Empties what reports and tracking do not need of each recipient not collected yet (a
/// collected recipient has line 0, as the sled engine's packed records read back). The first
/// attempt stays, as the sled engine's state word keeps it: orders imported later are
/// attributed by it.
const EMPTY_RECIPIENTS: &str = "\
UPDATE recipients SET fields = CASE WHEN $2 THEN fields ELSE '{}'::text[] END, line = 0,
    last_reply = NULL, next_attempt = NULL
WHERE campaign = $1 AND line <> 0";

impl PgEngine {
    /// See [`HistoryStore::mark_exported`]: read and written under the campaign's row lock.
    async fn mark(
        &self,
        campaign: &str,
        (since, through, now): (Millis, Millis, Millis),
    ) -> Result<bool, PgStoreError> {
        let what = format!("mark the export of {campaign}");
        let fail = |e| self.failed(&what, e);
        let mut tx = self.store.pool().begin().await.map_err(fail)?;
        let sql = concat!(
            "SELECT ",
            ms!("exported_through"),
            " FROM campaigns WHERE id = $1 FOR UPDATE"
        );
        let row: Option<(Option<i64>,)> = sqlx::query_as(sql)
            .bind(campaign)
            .fetch_optional(&mut *tx)
            .await
            .map_err(fail)?;
        let Some((old,)) = row else {
            return Ok(false);
        };
        let old = old.and_then(|t| u64::try_from(t).ok());
        let covered = match old {
            _ if since == 0 => 0,
            Some(through) if since <= through.saturating_add(1) => through,
            _ => return Ok(true),
        };
        let sql = concat!(
            "UPDATE campaigns SET exported_through = ",
            ts!(2),
            ", exported_at = ",
            ts!(3),
            " WHERE id = $1"
        );
        sqlx::query(sql)
            .bind(campaign)
            .bind(super::engine::millis(through.max(covered)))
            .bind(super::engine::millis(now))
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        Ok(true)
    }

    /// See [`HistoryStore::collect_encoded`]. Two transactions: the archive and the
    /// recipients' detail first, then the logs (dropping a partition locks its parent table
    /// against every campaign's writes, so that step is kept short). Interrupted between
    /// the two, running it again finishes the job.
    async fn collect(
        &self,
        number: i32,
        archive: &[u8],
        keep_values: bool,
    ) -> Result<Collected, PgStoreError> {
        let what = "collect a campaign";
        let fail = |e| self.failed(what, e);
        let mut tx = self.store.pool().begin().await.map_err(fail)?;
        // The campaign's row first: two collects of one campaign wait for each other.
        sqlx::query("UPDATE campaigns SET archive = $2, collected_at = now() WHERE number = $1")
            .bind(number)
            .bind(archive)
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        let recipients = sqlx::query(EMPTY_RECIPIENTS)
            .bind(number)
            .bind(keep_values)
            .execute(&mut *tx)
            .await
            .map_err(fail)?
            .rows_affected();
        tx.commit().await.map_err(fail)?;
        let mut tx = self.store.pool().begin().await.map_err(fail)?;
        let removed: i64 = sqlx::query_scalar(DETAIL_ROWS)
            .bind(number)
            .fetch_one(&mut *tx)
            .await
            .map_err(fail)?;
        if removed > 0 {
            sqlx::query("SELECT drop_campaign_detail($1)")
                .bind(number)
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
        }
        tx.commit().await.map_err(fail)?;
        Ok(Collected {
            recipients,
            keys_removed: u64::try_from(removed).unwrap_or(0),
        })
    }
}

impl HistoryStore for PgEngine {
    fn export_events(&self, campaign: &str, since: Millis) -> Result<ExportEvents, StoreError> {
        let number = self.known(campaign)?;
        let links = TrackingStore::tracking_meta(self, campaign)?
            .map(|meta| meta.links)
            .unwrap_or_default();
        Ok(ExportEvents::new(Box::new(
            self.history(number, links, since),
        )))
    }

    fn event_tallies(&self, campaign: &str) -> Result<Vec<EventTally>, StoreError> {
        let number = self.known(campaign)?;
        self.run(self.read_tallies(number))
    }

    fn export_mark(&self, campaign: &str) -> Result<Option<ExportMark>, StoreError> {
        let sql = concat!(
            "SELECT ",
            ms!("exported_through"),
            ", ",
            ms!("exported_at"),
            " FROM campaigns WHERE id = $1 AND exported_through IS NOT NULL"
        );
        let row: Option<(i64, Option<i64>)> = self.run(async {
            sqlx::query_as(sql)
                .bind(campaign)
                .fetch_optional(self.store.pool())
                .await
                .map_err(|e| self.failed(&format!("read the export mark of {campaign}"), e))
        })?;
        Ok(row.map(|(through, at)| ExportMark {
            through: u64::try_from(through).unwrap_or(0),
            at: at.and_then(|at| u64::try_from(at).ok()).unwrap_or(0),
        }))
    }

    fn mark_exported(
        &self,
        campaign: &str,
        since: Millis,
        through: Millis,
        now: Millis,
    ) -> Result<(), StoreError> {
        if self.run(self.mark(campaign, (since, through, now)))? {
            Ok(())
        } else {
            Err(self.unknown(campaign))
        }
    }

    fn register_webhook(&self, name: &str, now: Millis) -> Result<Millis, StoreError> {
        self.put_webhook(name, now)
    }

    fn webhook_cursors(&self, name: &str) -> Result<Vec<(String, WebhookCursor)>, StoreError> {
        self.read_webhook_cursors(name)
    }

    fn set_webhook_cursor(
        &self,
        name: &str,
        campaign: &str,
        cursor: WebhookCursor,
    ) -> Result<(), StoreError> {
        self.put_webhook_cursor(name, campaign, cursor)
    }

    fn webhook_positions(
        &self,
        campaign: &str,
    ) -> Result<Vec<(String, Millis, Option<WebhookCursor>)>, StoreError> {
        self.read_webhook_positions(campaign)
    }

    fn forget_webhook(&self, name: &str) -> Result<bool, StoreError> {
        self.delete_webhook(name)
    }

    fn last_event_at(&self, campaign: &str) -> Result<Option<Millis>, StoreError> {
        let Some(number) = self.run(self.number(campaign))? else {
            return Ok(None);
        };
        let sql = concat!(
            "SELECT ",
            ms!(
                "greatest((SELECT max(at) FROM attempts WHERE campaign = $1), \
                 (SELECT max(at) FROM report_events WHERE campaign = $1), \
                 (SELECT max(at) FROM track_events WHERE campaign = $1))"
            )
        );
        let last: Option<i64> = self.run(async {
            sqlx::query_scalar(sql)
                .bind(number)
                .fetch_one(self.store.pool())
                .await
                .map_err(|e| self.failed(&format!("read the latest event of {campaign}"), e))
        })?;
        Ok(last.and_then(|at| u64::try_from(at).ok()))
    }

    fn archive_encoded(&self, campaign: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let archive: Option<Option<Vec<u8>>> = self.run(async {
            sqlx::query_scalar("SELECT archive FROM campaigns WHERE id = $1")
                .bind(campaign)
                .fetch_optional(self.store.pool())
                .await
                .map_err(|e| self.failed(&format!("read the archive of {campaign}"), e))
        })?;
        Ok(archive.flatten())
    }

    fn is_collected(&self, campaign: &str) -> Result<bool, StoreError> {
        self.run(async {
            sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM campaigns WHERE id = $1 AND archive IS NOT NULL)",
            )
            .bind(campaign)
            .fetch_one(self.store.pool())
            .await
            .map_err(|e| self.failed(&format!("read whether {campaign} is collected"), e))
        })
    }

    fn collect_encoded(
        &self,
        campaign: &str,
        archive: &[u8],
        keep_values: bool,
    ) -> Result<Collected, StoreError> {
        let number = self.known(campaign)?;
        self.run(self.collect(number, archive, keep_values))
    }

    /// A database is not copied into a folder: `volley store copy` moves a store between
    /// engines.
    fn copy_to(&self, target: &Path) -> Result<(), StoreError> {
        Err(self.fail_with(PgStoreError::NoFolderCopy {
            url: self.store.url().to_owned(),
            target: target.to_owned(),
        }))
    }

    /// A database has no files in a folder: none is the engine's own.
    fn is_own_file(&self, _name: &OsStr) -> bool {
        false
    }
}
