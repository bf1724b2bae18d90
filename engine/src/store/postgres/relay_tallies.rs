//! What each relay did per campaign on PostgreSQL: `relay_tallies` (migration 0015), one
//! row per (campaign, relay), added to by every node.

use super::engine::PgEngine;
use super::queue::to_i64;
use crate::store::{RelayTally, StoreError};

/// SQL: adds one relay's counts to a campaign's row.
const ADD: &str = "INSERT INTO relay_tallies (campaign, relay, delivered, deferred, bounced, \
     cooldowns) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (campaign, relay) DO UPDATE SET \
     delivered = relay_tallies.delivered + excluded.delivered, \
     deferred = relay_tallies.deferred + excluded.deferred, \
     bounced = relay_tallies.bounced + excluded.bounced, \
     cooldowns = relay_tallies.cooldowns + excluded.cooldowns";

impl PgEngine {
    /// See [`crate::store::api::QueueStore::add_relay_tallies`]: one transaction.
    pub(super) fn put_relay_tallies(
        &self,
        campaign: &str,
        tallies: &[RelayTally],
    ) -> Result<(), StoreError> {
        if tallies.is_empty() {
            return Ok(());
        }
        self.run(async {
            let what = format!("count what the relays did for {campaign}");
            let mut tx = self
                .store
                .pool()
                .begin()
                .await
                .map_err(|e| self.failed(&what, e))?;
            for tally in tallies {
                sqlx::query(ADD)
                    .bind(campaign)
                    .bind(&tally.relay)
                    .bind(to_i64(tally.delivered))
                    .bind(to_i64(tally.deferred))
                    .bind(to_i64(tally.bounced))
                    .bind(to_i64(tally.cooldowns))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.failed(&what, e))?;
            }
            tx.commit().await.map_err(|e| self.failed(&what, e))
        })
    }

    /// See [`crate::store::api::QueueStore::relay_tallies`].
    pub(super) fn read_relay_tallies(&self, campaign: &str) -> Result<Vec<RelayTally>, StoreError> {
        let rows: Vec<(String, i64, i64, i64, i64)> = self.run(async {
            sqlx::query_as(
                "SELECT relay, delivered, deferred, bounced, cooldowns FROM relay_tallies \
                 WHERE campaign = $1 ORDER BY relay",
            )
            .bind(campaign)
            .fetch_all(self.store.pool())
            .await
            .map_err(|e| self.failed(&format!("read what the relays did for {campaign}"), e))
        })?;
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(rows
            .into_iter()
            .map(
                |(relay, delivered, deferred, bounced, cooldowns)| RelayTally {
                    relay,
                    delivered: n(delivered),
                    deferred: n(deferred),
                    bounced: n(bounced),
                    cooldowns: n(cooldowns),
                },
            )
            .collect())
    }

    /// Forgets what the relays did for a removed campaign.
    pub(super) fn drop_relay_tallies(&self, campaign: &str) -> Result<(), StoreError> {
        self.run(async {
            sqlx::query("DELETE FROM relay_tallies WHERE campaign = $1")
                .bind(campaign)
                .execute(self.store.pool())
                .await
                .map(drop)
                .map_err(|e| self.failed(&format!("remove the relay counts of {campaign}"), e))
        })
    }
}

/// Writes a copied campaign's relay tallies in the import's transaction `tx`.
pub(super) async fn import_relay_tallies(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    campaign: &str,
    tallies: &[RelayTally],
) -> Result<(), sqlx::Error> {
    for tally in tallies {
        sqlx::query(ADD)
            .bind(campaign)
            .bind(&tally.relay)
            .bind(to_i64(tally.delivered))
            .bind(to_i64(tally.deferred))
            .bind(to_i64(tally.bounced))
            .bind(to_i64(tally.cooldowns))
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
