//! A/B tests on PostgreSQL: recipients by state per variant (`state_counts`, kept in the same
//! transaction as every state change), the test-then-winner record (on `campaigns`), and
//! releasing the held recipients in batches.
//!
//! Held recipients are counted in `state_counts` under the variant they fall back to, in
//! the state `held`; like the sled engine, [`AbStore::variant_counts`] leaves them out of
//! every variant until they are released, and a released recipient joins the variant it was
//! given, marked as the remainder (+128). Held-out recipients (state `holdout`, variant 0)
//! are in no variant ever.

use super::engine::{ms, ts, PgEngine};
use super::outcomes::{shift_counts, CountDeltas};
use super::PgStoreError;
use crate::model::{Counts, REMAINDER};
use crate::store::api::AbStore;
use crate::store::{AbDecision, AbMark, AbRecord, StoreError};
use sqlx::Row;
use std::collections::BTreeMap;

/// Held recipients moved to the queue per transaction.
const RELEASE_BATCH: i64 = 2_000;

/// The variants of the next batch of held recipients.
const NEXT_HELD_VARIANTS: &str = "\
SELECT DISTINCT variant FROM (SELECT variant FROM recipients
    WHERE campaign = $1 AND state = 'held' ORDER BY seq LIMIT $2) b";

/// Moves the next batch of held recipients to the queue with their new variant (old → new
/// given as two arrays); returns how many moved from which variant to which.
const RELEASE: &str = "\
WITH batch AS (
    SELECT seq, variant FROM recipients WHERE campaign = $1 AND state = 'held'
    ORDER BY seq LIMIT $4 FOR UPDATE
), moved AS (
    UPDATE recipients r SET state = 'pending', variant = m.new
    FROM batch b JOIN unnest($2::int2[], $3::int2[]) AS m(old, new) ON m.old = b.variant
    WHERE r.campaign = $1 AND r.seq = b.seq
    RETURNING m.old, m.new
)
SELECT old, new, count(*) FROM moved GROUP BY old, new";

impl PgEngine {
    /// See [`AbStore::variant_counts`].
    pub(super) async fn read_variant_counts(
        &self,
        number: i32,
    ) -> Result<Vec<(u8, Counts)>, PgStoreError> {
        let rows = sqlx::query(
            "SELECT variant, state::text, sum(recipients)::int8 FROM state_counts \
             WHERE campaign = $1 AND state NOT IN ('held', 'holdout') \
             GROUP BY variant, state ORDER BY variant",
        )
        .bind(number)
        .fetch_all(self.store.pool())
        .await
        .map_err(|e| self.failed("read the counters by variant", e))?;
        let mut variants: BTreeMap<u8, Counts> = BTreeMap::new();
        for row in &rows {
            let variant = u8::try_from(row.get::<i16, _>(0)).unwrap_or(0);
            let state: String = row.get(1);
            let state = super::load::parse_state(&state)
                .ok_or_else(|| self.damaged(format!("counter: state {state:?}")))?;
            let n = u64::try_from(row.get::<i64, _>(2)).unwrap_or(0);
            let counts = variants.entry(variant).or_default();
            *counts.get_mut(state) += n;
            counts.total += n;
        }
        Ok(variants.into_iter().filter(|(_, c)| c.total > 0).collect())
    }

    /// The key of the campaign's latest late report, as bytes (time, then id).
    async fn last_report(&self, number: i32) -> Result<Option<Vec<u8>>, PgStoreError> {
        let sql = concat!(
            "SELECT ",
            ms!("at"),
            ", id FROM report_events WHERE campaign = $1 ORDER BY at DESC, id DESC LIMIT 1"
        );
        let row: Option<(i64, i64)> = sqlx::query_as(sql)
            .bind(number)
            .fetch_optional(self.store.pool())
            .await
            .map_err(|e| self.failed("read the latest late report", e))?;
        Ok(row.map(|(at, id)| {
            let mut key = at.to_be_bytes().to_vec();
            key.extend_from_slice(&id.to_be_bytes());
            key
        }))
    }

    /// The variants of the next batch of held recipients (none when none is held).
    async fn next_held_variants(&self, number: i32) -> Result<Vec<i16>, PgStoreError> {
        sqlx::query_scalar(NEXT_HELD_VARIANTS)
            .bind(number)
            .bind(RELEASE_BATCH)
            .fetch_all(self.store.pool())
            .await
            .map_err(|e| self.failed("read the held recipients", e))
    }

    /// Releases one batch of held recipients, with the counters, in one transaction;
    /// returns how many were released.
    async fn release_batch(
        &self,
        number: i32,
        (old, new): (&[i16], &[i16]),
    ) -> Result<u64, PgStoreError> {
        let what = "release held recipients";
        let fail = |e| self.failed(what, e);
        let mut tx = self.store.pool().begin().await.map_err(fail)?;
        let rows: Vec<(i16, i16, i64)> = sqlx::query_as(RELEASE)
            .bind(number)
            .bind(old)
            .bind(new)
            .bind(RELEASE_BATCH)
            .fetch_all(&mut *tx)
            .await
            .map_err(fail)?;
        let mut deltas = CountDeltas::new();
        let mut released = 0;
        for (from, to, n) in rows {
            *deltas.entry((from, "held")).or_default() -= n;
            *deltas.entry((to, "pending")).or_default() += n;
            released += u64::try_from(n).unwrap_or(0);
        }
        shift_counts(&mut tx, number, &deltas).await.map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        Ok(released)
    }
}

impl AbStore for PgEngine {
    fn variant_counts(&self, campaign: &str) -> Result<Vec<(u8, Counts)>, StoreError> {
        match self.run(self.number(campaign))? {
            Some(number) => self.run(self.read_variant_counts(number)),
            None => Ok(Vec::new()),
        }
    }

    fn ab_mark(&self, campaign: &str) -> Result<AbMark, StoreError> {
        let Some(number) = self.run(self.number(campaign))? else {
            return Ok(AbMark {
                counts: Vec::new(),
                tracking: Vec::new(),
                last_report: None,
            });
        };
        self.run(async {
            Ok(AbMark {
                counts: self.read_variant_counts(number).await?,
                tracking: self.read_tracking_counts(number).await?,
                last_report: self.last_report(number).await?,
            })
        })
    }

    fn ab_record(&self, campaign: &str) -> Result<AbRecord, StoreError> {
        let sql = concat!(
            "SELECT ",
            ms!("ab_test_sent_at"),
            ", ab_decision::text FROM campaigns WHERE id = $1"
        );
        let row: Option<(Option<i64>, Option<String>)> = self.run(async {
            sqlx::query_as(sql)
                .bind(campaign)
                .fetch_optional(self.store.pool())
                .await
                .map_err(|e| self.failed(&format!("read the A/B record of {campaign}"), e))
        })?;
        let Some((sent, decision)) = row else {
            return Ok(AbRecord::default());
        };
        let decision = match decision {
            Some(text) => Some(serde_json::from_str::<AbDecision>(&text).map_err(|e| {
                self.fail_with(self.damaged(format!("A/B record of {campaign}: {e}")))
            })?),
            None => None,
        };
        Ok(AbRecord {
            test_sent_at: sent.and_then(|at| u64::try_from(at).ok()),
            decision,
        })
    }

    fn set_ab_record(&self, campaign: &str, record: &AbRecord) -> Result<(), StoreError> {
        let number = self.known(campaign)?;
        let decision = match &record.decision {
            Some(decision) => Some(serde_json::to_string(decision).map_err(|e| {
                self.fail_with(self.damaged(format!("A/B record of {campaign}: {e}")))
            })?),
            None => None,
        };
        let sql = concat!(
            "UPDATE campaigns SET ab_test_sent_at = ",
            ts!(2),
            ", ab_decision = $3::jsonb WHERE number = $1"
        );
        self.run(async {
            sqlx::query(sql)
                .bind(number)
                .bind(record.test_sent_at.map(super::engine::millis))
                .bind(decision)
                .execute(self.store.pool())
                .await
                .map(|_| ())
                .map_err(|e| self.failed(&format!("store the A/B record of {campaign}"), e))
        })
    }

    fn release_held(&self, campaign: &str, choose: &dyn Fn(u8) -> u8) -> Result<u64, StoreError> {
        let Some(number) = self.run(self.number(campaign))? else {
            return Ok(0);
        };
        let mut released = 0;
        loop {
            let held = self.run(self.next_held_variants(number))?;
            if held.is_empty() {
                return Ok(released);
            }
            // `choose` stays on this thread: the batch takes its answers as a table.
            let new: Vec<i16> = held
                .iter()
                .map(|v| i16::from(choose(u8::try_from(*v).unwrap_or(0)) | REMAINDER))
                .collect();
            released += self.run(self.release_batch(number, (&held, &new)))?;
        }
    }
}
