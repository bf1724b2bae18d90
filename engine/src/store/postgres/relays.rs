//! Per-destination memory on PostgreSQL: learned per-connection message limits
//! (`connection_limits`) and messages per minute sent to each relay (`relay_usage`), shared
//! by every node on the store. A process writes its relay counts as absolute values (as
//! the interface says); the engine adds the difference from what this process last read or
//! wrote, so the counts of several nodes add up instead of overwriting each other.

use super::engine::PgEngine;
use super::queue::to_i64;
use crate::store::StoreError;

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
            let mut tx = self
                .store
                .pool()
                .begin()
                .await
                .map_err(|e| self.failed(what, e))?;
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
}
