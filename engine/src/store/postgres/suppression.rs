//! The suppression list on PostgreSQL: one row per address in `suppressions` (store-wide),
//! soft bounces counted in `soft_bounces` (see `outcomes.rs`).

use super::engine::{millis, ms, ts, PgEngine};
use super::PgStoreError;
use crate::model::{Suppression, SuppressionReason};
use crate::store::api::SuppressionStore;
use crate::store::StoreError;
use sqlx::postgres::PgRow;
use sqlx::Row;

/// `SELECT` of the columns [`entry`] reads, then the rest of the statement.
macro_rules! select {
    ($rest:expr) => {
        concat!(
            "SELECT address, reason::text, ",
            ms!("at"),
            ", campaign, detail FROM suppressions ",
            $rest
        )
    };
}

/// One `suppressions` row as the address and its entry.
pub(super) fn entry(engine: &PgEngine, row: &PgRow) -> Result<(String, Suppression), PgStoreError> {
    let reason: String = row.get(1);
    let reason = SuppressionReason::parse(&reason)
        .ok_or_else(|| engine.damaged(format!("suppression record: unknown reason {reason:?}")))?;
    Ok((
        row.get(0),
        Suppression {
            reason,
            at: u64::try_from(row.get::<i64, _>(2)).unwrap_or(0),
            campaign: row.get(3),
            detail: row.get(4),
        },
    ))
}

impl SuppressionStore for PgEngine {
    fn suppression(&self, address: &str) -> Result<Option<Suppression>, StoreError> {
        self.run(async {
            let row = sqlx::query(select!("WHERE address = $1"))
                .bind(address)
                .fetch_optional(self.store.pool())
                .await
                .map_err(|e| self.failed("read the suppression list", e))?;
            row.map(|row| entry(self, &row).map(|(_, entry)| entry))
                .transpose()
        })
    }

    fn suppress(&self, address: &str, entry: &Suppression) -> Result<bool, StoreError> {
        let sql = concat!(
            "INSERT INTO suppressions (address, reason, at, campaign, detail) \
             VALUES ($1, $2::text::suppression_reason, ",
            ts!(3),
            ", $4, $5) ON CONFLICT (address) DO NOTHING"
        );
        self.run(async {
            sqlx::query(sql)
                .bind(address)
                .bind(entry.reason.as_str())
                .bind(millis(entry.at))
                .bind(entry.campaign.as_deref())
                .bind(&entry.detail)
                .execute(self.store.pool())
                .await
                .map(|done| done.rows_affected() == 1)
                .map_err(|e| self.failed("add to the suppression list", e))
        })
    }

    fn unsuppress(&self, address: &str) -> Result<bool, StoreError> {
        self.run(async {
            sqlx::query(
                "WITH soft AS (DELETE FROM soft_bounces WHERE address = $1) \
                 DELETE FROM suppressions WHERE address = $1",
            )
            .bind(address)
            .execute(self.store.pool())
            .await
            .map(|done| done.rows_affected() > 0)
            .map_err(|e| self.failed("remove from the suppression list", e))
        })
    }

    fn suppressions(&self) -> Result<Vec<(String, Suppression)>, StoreError> {
        self.run(async {
            let rows = sqlx::query(select!("ORDER BY address"))
                .fetch_all(self.store.pool())
                .await
                .map_err(|e| self.failed("read the suppression list", e))?;
            rows.iter().map(|row| entry(self, row)).collect()
        })
    }

    fn suppressions_after(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Suppression)>, StoreError> {
        self.run(async {
            let rows = sqlx::query(select!(
                "WHERE ($1::text IS NULL OR address > $1) ORDER BY address LIMIT $2"
            ))
            .bind(after)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(self.store.pool())
            .await
            .map_err(|e| self.failed("read the suppression list", e))?;
            rows.iter().map(|row| entry(self, row)).collect()
        })
    }
}
