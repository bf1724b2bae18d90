//! Warm-up days on PostgreSQL (issue 23, migration 0017): `warmup_days`, one row per key,
//! provider and day. A reservation locks the day's row, so processes sharing the database
//! never grant more than the ceiling between them.

use super::engine::PgEngine;
use crate::store::{StoreError, WarmupDay, WarmupStore, WarmupTally};
use sqlx::Row;

/// The columns of a day, in [`WarmupDay`] order.
macro_rules! columns {
    () => {
        "key, provider, day, ceiling, sent, delivered, bounced, deferred, throttled, blocked, \
         complaints, held"
    };
}

fn int(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn count(row: &sqlx::postgres::PgRow, at: usize) -> u32 {
    u32::try_from(row.get::<i32, _>(at)).unwrap_or(0)
}

fn day_of(row: &sqlx::postgres::PgRow) -> WarmupDay {
    WarmupDay {
        key: row.get(0),
        provider: row.get(1),
        day: row.get(2),
        ceiling: count(row, 3),
        sent: count(row, 4),
        delivered: count(row, 5),
        bounced: count(row, 6),
        deferred: count(row, 7),
        throttled: count(row, 8),
        blocked: count(row, 9),
        complaints: count(row, 10),
        held: count(row, 11),
    }
}

impl WarmupStore for PgEngine {
    fn warmup_days(&self, key: Option<&str>) -> Result<Vec<WarmupDay>, StoreError> {
        let sql = concat!(
            "SELECT ",
            columns!(),
            " FROM warmup_days WHERE $1::text IS NULL OR key = $1 ORDER BY key, provider, day"
        );
        self.run(async {
            let rows = sqlx::query(sql)
                .bind(key)
                .fetch_all(self.store.pool())
                .await
                .map_err(|e| self.failed("read the warm-up days", e))?;
            Ok(rows.iter().map(day_of).collect())
        })
    }

    fn warmup_reserve(
        &self,
        key: &str,
        provider: &str,
        day: i64,
        ceiling: u32,
        want: u32,
    ) -> Result<u32, StoreError> {
        let what = "reserve warm-up allowance";
        let failed = |e| self.failed(what, e);
        self.run(async {
            let mut tx = self.store.pool().begin().await.map_err(failed)?;
            sqlx::query(
                "INSERT INTO warmup_days (key, provider, day, ceiling) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (key, provider, day) DO UPDATE SET ceiling = excluded.ceiling \
                 WHERE warmup_days.ceiling = 0",
            )
            .bind(key)
            .bind(provider)
            .bind(day)
            .bind(int(ceiling))
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
            let (ceiling, sent): (i32, i32) = sqlx::query_as(
                "SELECT ceiling, sent FROM warmup_days \
                 WHERE key = $1 AND provider = $2 AND day = $3 FOR UPDATE",
            )
            .bind(key)
            .bind(provider)
            .bind(day)
            .fetch_one(&mut *tx)
            .await
            .map_err(failed)?;
            let left = i64::from(ceiling) - i64::from(sent);
            let granted = u32::try_from(left.clamp(0, i64::from(want))).unwrap_or(0);
            if granted > 0 {
                sqlx::query(
                    "UPDATE warmup_days SET sent = sent + $4 \
                     WHERE key = $1 AND provider = $2 AND day = $3",
                )
                .bind(key)
                .bind(provider)
                .bind(day)
                .bind(int(granted))
                .execute(&mut *tx)
                .await
                .map_err(failed)?;
            }
            tx.commit().await.map_err(failed)?;
            Ok(granted)
        })
    }

    fn warmup_record(
        &self,
        key: &str,
        provider: &str,
        day: i64,
        tally: &WarmupTally,
    ) -> Result<(), StoreError> {
        self.run(async {
            sqlx::query(
                "INSERT INTO warmup_days (key, provider, day, delivered, bounced, deferred, \
                 throttled, blocked, complaints) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (key, provider, day) DO UPDATE SET \
                 delivered = warmup_days.delivered + excluded.delivered, \
                 bounced = warmup_days.bounced + excluded.bounced, \
                 deferred = warmup_days.deferred + excluded.deferred, \
                 throttled = warmup_days.throttled + excluded.throttled, \
                 blocked = warmup_days.blocked + excluded.blocked, \
                 complaints = warmup_days.complaints + excluded.complaints, \
                 sent = greatest(warmup_days.sent - $10, 0)",
            )
            .bind(key)
            .bind(provider)
            .bind(day)
            .bind(int(tally.delivered))
            .bind(int(tally.bounced))
            .bind(int(tally.deferred))
            .bind(int(tally.throttled))
            .bind(int(tally.blocked))
            .bind(int(tally.complaints))
            .bind(int(tally.released))
            .execute(self.store.pool())
            .await
            .map(drop)
            .map_err(|e| self.failed("record warm-up counts", e))
        })
    }

    fn warmup_set_held(
        &self,
        key: &str,
        provider: &str,
        day: i64,
        held: u32,
    ) -> Result<(), StoreError> {
        self.run(async {
            sqlx::query(
                "INSERT INTO warmup_days (key, provider, day, held) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (key, provider, day) DO UPDATE SET held = excluded.held",
            )
            .bind(key)
            .bind(provider)
            .bind(day)
            .bind(int(held))
            .execute(self.store.pool())
            .await
            .map(drop)
            .map_err(|e| self.failed("record warm-up recipients held back", e))
        })
    }

    fn warmup_put(&self, day: &WarmupDay) -> Result<(), StoreError> {
        let sql = concat!(
            "INSERT INTO warmup_days (",
            columns!(),
            ") VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (key, provider, day) DO UPDATE SET ceiling = excluded.ceiling, \
             sent = excluded.sent, delivered = excluded.delivered, bounced = excluded.bounced, \
             deferred = excluded.deferred, throttled = excluded.throttled, \
             blocked = excluded.blocked, complaints = excluded.complaints, held = excluded.held"
        );
        self.run(async {
            sqlx::query(sql)
                .bind(&day.key)
                .bind(&day.provider)
                .bind(day.day)
                .bind(int(day.ceiling))
                .bind(int(day.sent))
                .bind(int(day.delivered))
                .bind(int(day.bounced))
                .bind(int(day.deferred))
                .bind(int(day.throttled))
                .bind(int(day.blocked))
                .bind(int(day.complaints))
                .bind(int(day.held))
                .execute(self.store.pool())
                .await
                .map(drop)
                .map_err(|e| self.failed("write a warm-up day", e))
        })
    }
}
