//! Webhook cursors on PostgreSQL (`webhooks`, `webhook_cursors`): where each webhook stands in
//! each campaign's history. Every write is one statement, durable when it returns.

use super::engine::PgEngine;
use crate::model::Millis;
use crate::store::{StoreError, WebhookCursor};

/// A stored count or time, read back (never negative when Volley wrote it).
fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// A count or time to store (saturating at the column's range).
fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl PgEngine {
    /// See [`crate::store::HistoryStore::register_webhook`].
    pub(super) fn put_webhook(&self, name: &str, now: Millis) -> Result<Millis, StoreError> {
        let sql = "WITH new AS (INSERT INTO webhooks (name, registered_ms) VALUES ($1, $2) \
                   ON CONFLICT (name) DO NOTHING RETURNING registered_ms) \
                   SELECT registered_ms FROM new UNION ALL \
                   SELECT registered_ms FROM webhooks WHERE name = $1";
        let at: i64 = self.run(async {
            sqlx::query_scalar(sql)
                .bind(name)
                .bind(signed(now))
                .fetch_one(self.store.pool())
                .await
                .map_err(|e| self.failed(&format!("register webhook {name}"), e))
        })?;
        Ok(unsigned(at))
    }

    /// See [`crate::store::HistoryStore::webhook_cursors`].
    pub(super) fn read_webhook_cursors(
        &self,
        name: &str,
    ) -> Result<Vec<(String, WebhookCursor)>, StoreError> {
        let sql = "SELECT campaign, at_ms, skip FROM webhook_cursors WHERE webhook = $1 \
                   ORDER BY campaign";
        let rows: Vec<(String, i64, i64)> = self.run(async {
            sqlx::query_as(sql)
                .bind(name)
                .fetch_all(self.store.pool())
                .await
                .map_err(|e| self.failed(&format!("read the cursors of webhook {name}"), e))
        })?;
        Ok(rows
            .into_iter()
            .map(|(campaign, at, skip)| {
                let cursor = WebhookCursor {
                    at: unsigned(at),
                    skip: unsigned(skip),
                };
                (campaign, cursor)
            })
            .collect())
    }

    /// See [`crate::store::HistoryStore::set_webhook_cursor`].
    pub(super) fn put_webhook_cursor(
        &self,
        name: &str,
        campaign: &str,
        cursor: WebhookCursor,
    ) -> Result<(), StoreError> {
        let sql = "INSERT INTO webhook_cursors (webhook, campaign, at_ms, skip) \
                   VALUES ($1, $2, $3, $4) ON CONFLICT (webhook, campaign) \
                   DO UPDATE SET at_ms = excluded.at_ms, skip = excluded.skip \
                   WHERE (webhook_cursors.at_ms, webhook_cursors.skip) \
                       < (excluded.at_ms, excluded.skip)";
        self.run(async {
            sqlx::query(sql)
                .bind(name)
                .bind(campaign)
                .bind(signed(cursor.at))
                .bind(signed(cursor.skip))
                .execute(self.store.pool())
                .await
                .map_err(|e| self.failed(&format!("move webhook {name}'s cursor"), e))
        })?;
        Ok(())
    }

    /// See [`crate::store::HistoryStore::webhook_positions`].
    #[allow(clippy::type_complexity)]
    pub(super) fn read_webhook_positions(
        &self,
        campaign: &str,
    ) -> Result<Vec<(String, Millis, Option<WebhookCursor>)>, StoreError> {
        let sql = "SELECT w.name, w.registered_ms, c.at_ms, c.skip FROM webhooks w \
                   LEFT JOIN webhook_cursors c ON c.webhook = w.name AND c.campaign = $1 \
                   ORDER BY w.name";
        let rows: Vec<(String, i64, Option<i64>, Option<i64>)> = self.run(async {
            sqlx::query_as(sql)
                .bind(campaign)
                .fetch_all(self.store.pool())
                .await
                .map_err(|e| self.failed("read the webhook cursors", e))
        })?;
        Ok(rows
            .into_iter()
            .map(|(name, registered, at, skip)| {
                let cursor = at.map(|at| WebhookCursor {
                    at: unsigned(at),
                    skip: unsigned(skip.unwrap_or(0)),
                });
                (name, unsigned(registered), cursor)
            })
            .collect())
    }

    /// See [`crate::store::HistoryStore::forget_webhook`].
    pub(super) fn delete_webhook(&self, name: &str) -> Result<bool, StoreError> {
        let done = self.run(async {
            sqlx::query("DELETE FROM webhooks WHERE name = $1")
                .bind(name)
                .execute(self.store.pool())
                .await
                .map_err(|e| self.failed(&format!("forget webhook {name}"), e))
        })?;
        Ok(done.rows_affected() > 0)
    }
}
