//! Per-destination memory on PostgreSQL: learned per-connection message limits
//! (`connection_limits`), policy blocks (`destination_blocks`) and messages per minute sent
//! to each relay (`relay_usage`), shared
//! by every node on the store. A process writes its relay counts as absolute values (as
//! the interface says); the engine adds the difference from what this process last read or
//! wrote, so the counts of several nodes add up instead of overwriting each other.

use super::engine::{millis, ts, PgEngine};
use super::queue::to_i64;
use crate::model::DestinationBlock;
use crate::store::{RelayQuota, StoreError};

/// SQL: minutes since the epoch (`int8` parameter `$n`) as a `timestamptz`.
macro_rules! minute {
    ($n:literal) => {
        concat!(
            "(timestamptz 'epoch' + $",
            $n,
            "::int8 * interval '1 minute')"
        )
    };
}

impl PgEngine {
    /// See [`crate::store::api::QueueStore::set_connection_limit`].
    pub(super) fn put_connection_limit(&self, name: &str, messages: u64) -> Result<(), StoreError> {
        self.run(async {
            sqlx::query(
                "INSERT INTO connection_limits (destination, messages) VALUES ($1, $2) \
                 ON CONFLICT (destination) DO UPDATE SET messages = excluded.messages, \
                 learned_at = now()",
            )
            .bind(name)
            .bind(to_i64(messages))
            .execute(self.store.pool())
            .await
            .map(|_| ())
            .map_err(|e| self.failed("remember a connection limit", e))
        })
    }

    /// See [`crate::store::api::QueueStore::connection_limits`].
    pub(super) fn read_connection_limits(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let rows: Vec<(String, i64)> = self.run(async {
            sqlx::query_as(
                "SELECT destination, messages FROM connection_limits ORDER BY destination",
            )
            .fetch_all(self.store.pool())
            .await
            .map_err(|e| self.failed("read the connection limits", e))
        })?;
        Ok(rows
            .into_iter()
            .map(|(name, n)| (name, u64::try_from(n).unwrap_or(0)))
            .collect())
    }

    /// See [`crate::store::api::QueueStore::set_destination_block`].
    pub(super) fn put_destination_block(&self, block: &DestinationBlock) -> Result<(), StoreError> {
        let record = serde_json::to_string(block).map_err(|e| {
            let what = format!("policy block of {}: {e}", block.destination);
            self.fail_with(self.damaged(what))
        })?;
        let sql = concat!(
            "INSERT INTO destination_blocks (destination, paused_until, lifted_at, record) ",
            "VALUES ($1, ",
            ts!(2),
            ", ",
            ts!(3),
            ", $4::jsonb) ON CONFLICT (destination) DO UPDATE SET ",
            "paused_until = excluded.paused_until, lifted_at = excluded.lifted_at, ",
            "record = excluded.record, saved_at = now()"
        );
        self.run(async {
            sqlx::query(sql)
                .bind(&block.destination)
                .bind(millis(block.paused_until))
                .bind(block.lifted_at.map(millis))
                .bind(record)
                .execute(self.store.pool())
                .await
                .map(|_| ())
                .map_err(|e| self.failed("keep a policy block", e))
        })
    }

    /// See [`crate::store::api::QueueStore::destination_blocks`]; records that do not read
    /// are skipped.
    pub(super) fn read_destination_blocks(&self) -> Result<Vec<DestinationBlock>, StoreError> {
        let rows: Vec<(String,)> = self.run(async {
            sqlx::query_as("SELECT record::text FROM destination_blocks ORDER BY destination")
                .fetch_all(self.store.pool())
                .await
                .map_err(|e| self.failed("read the policy blocks", e))
        })?;
        Ok(rows
            .into_iter()
            .filter_map(|(json,)| serde_json::from_str(&json).ok())
            .collect())
    }

    /// See [`crate::store::api::QueueStore::relay_usage`].
    pub(super) fn read_relay_usage(
        &self,
        relay: &str,
        since_minute: u64,
    ) -> Result<Vec<(u64, u32)>, StoreError> {
        let sql = concat!(
            "SELECT floor(extract(epoch FROM minute) / 60)::int8, messages FROM relay_usage \
             WHERE relay = $1 AND minute >= ",
            minute!(2),
            " ORDER BY minute"
        );
        let rows: Vec<(i64, i32)> = self.run(async {
            sqlx::query_as(sql)
                .bind(relay)
                .bind(to_i64(since_minute))
                .fetch_all(self.store.pool())
                .await
                .map_err(|e| self.failed("read the relay usage", e))
        })?;
        let usage: Vec<(u64, u32)> = rows
            .into_iter()
            .map(|(m, n)| (u64::try_from(m).unwrap_or(0), u32::try_from(n).unwrap_or(0)))
            .collect();
        let mut seen = self.relay_seen();
        for (minute, n) in &usage {
            seen.insert((relay.to_owned(), *minute), *n);
        }
        Ok(usage)
    }

    fn relay_seen(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<(String, u64), u32>> {
        self.relay_seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// See [`crate::store::api::QueueStore::set_relay_usage`]: one transaction.
    pub(super) fn put_relay_usage(
        &self,
        relay: &str,
        minutes: &[(u64, u32)],
        keep_since: u64,
    ) -> Result<(), StoreError> {
        // What changed since this process last saw each minute is added.
        let (at, counts): (Vec<i64>, Vec<i64>) = {
            let mut seen = self.relay_seen();
            let deltas: Vec<(i64, i64)> = minutes
                .iter()
                .map(|(m, n)| {
                    let before = seen.insert((relay.to_owned(), *m), *n).unwrap_or(0);
                    (to_i64(*m), i64::from(*n) - i64::from(before))
                })
                .collect();
            seen.retain(|(r, m), _| r != relay || *m >= keep_since);
            deltas
        }
        .into_iter()
        .unzip();
        let upsert = concat!(
            "INSERT INTO relay_usage (relay, minute, messages) ",
            "SELECT $1, timestamptz 'epoch' + u.m * interval '1 minute', ",
            "greatest(least(u.n, 2147483647), -2147483647)::int4 ",
            "FROM unnest($2::int8[], $3::int8[]) AS u(m, n) ",
            "ON CONFLICT (relay, minute) DO UPDATE SET messages = ",
            "greatest(least(relay_usage.messages::int8 + excluded.messages, 2147483647), 0)::int4"
        );
        let prune = concat!(
            "DELETE FROM relay_usage WHERE relay = $1 AND (messages < 0 OR minute < ",
            minute!(2),
            ")"
        );
        let what = "store the relay usage";
        self.run(async {
            let mut tx = self.begin(what).await?;
            // Asynchronous commit: the recorder saves these minutes just before it writes a
            // group of outcomes, whose synchronous commit flushes the WAL through this
            // transaction's too (the log is written in order). A crash between the two loses
            // at most these counts, never an outcome; waiting for a WAL flush of its own would
            // double the recorder's commit waits.
            sqlx::query("SET LOCAL synchronous_commit = off")
                .execute(&mut *tx)
                .await
                .map_err(|e| self.failed(what, e))?;
            sqlx::query(upsert)
                .bind(relay)
                .bind(&at)
                .bind(&counts)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.failed(what, e))?;
            sqlx::query(prune)
                .bind(relay)
                .bind(to_i64(keep_since))
                .execute(&mut *tx)
                .await
                .map_err(|e| self.failed(what, e))?;
            tx.commit().await.map_err(|e| self.failed(what, e))
        })
    }

    /// See [`crate::store::ClusterStore::reserve_relay`]: one transaction holding the
    /// relay's advisory lock (reservations of one relay queue behind each other), the unsent
    /// messages given back, the last hour's and day's sums read, and what is left of the
    /// tighter cap granted, up to `want`, added to `caps.minute`.
    pub(super) fn reserve_relay_quota(
        &self,
        relay: &str,
        caps: RelayQuota,
        want: u32,
    ) -> Result<u32, StoreError> {
        let what = "reserve relay quota";
        let give_back = concat!(
            "UPDATE relay_usage SET messages = greatest(messages - $3, 0) \
             WHERE relay = $1 AND minute = ",
            minute!(2)
        );
        let sums = concat!(
            "SELECT coalesce(sum(messages) FILTER (WHERE minute > ",
            minute!(2),
            " - interval '60 minutes'), 0)::int8, coalesce(sum(messages), 0)::int8 \
             FROM relay_usage WHERE relay = $1 AND minute > ",
            minute!(2),
            " - interval '1440 minutes'"
        );
        let add = concat!(
            "INSERT INTO relay_usage (relay, minute, messages) VALUES ($1, ",
            minute!(2),
            ", $3) ON CONFLICT (relay, minute) DO UPDATE SET messages = \
             least(relay_usage.messages::int8 + excluded.messages, 2147483647)::int4"
        );
        let failed = |e| self.failed(what, e);
        self.run(async {
            let mut tx = self.store.pool().begin().await.map_err(failed)?;
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext('relay_usage'), hashtext($1))")
                .bind(relay)
                .execute(&mut *tx)
                .await
                .map_err(failed)?;
            if caps.give_back > 0 {
                sqlx::query(give_back)
                    .bind(relay)
                    .bind(to_i64(caps.back_minute))
                    .bind(i32::try_from(caps.give_back).unwrap_or(i32::MAX))
                    .execute(&mut *tx)
                    .await
                    .map_err(failed)?;
            }
            let (hour, day): (i64, i64) = sqlx::query_as(sums)
                .bind(relay)
                .bind(to_i64(caps.minute))
                .fetch_one(&mut *tx)
                .await
                .map_err(failed)?;
            let left = |cap: Option<u32>, used: i64| {
                cap.map_or(i64::MAX, |c| (i64::from(c) - used).max(0))
            };
            let granted = left(caps.per_hour, hour)
                .min(left(caps.per_day, day))
                .min(i64::from(want));
            let granted = u32::try_from(granted).unwrap_or(0);
            if granted > 0 {
                sqlx::query(add)
                    .bind(relay)
                    .bind(to_i64(caps.minute))
                    .bind(i32::try_from(granted).unwrap_or(i32::MAX))
                    .execute(&mut *tx)
                    .await
                    .map_err(failed)?;
            }
            tx.commit().await.map_err(failed)?;
            Ok(granted)
        })
    }
}
