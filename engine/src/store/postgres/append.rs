//! Appending messages to a loaded campaign on PostgreSQL (the transactional lane): one
//! transaction per call holds the rows (pending at once, so in the queue's partial index),
//! the counters (in this connection's slot of `state_counts`) and the idempotency records
//! (`idempotency_keys`, migration 0007), as sled's one atomic batch does.
//!
//! Appends to one campaign take turns (a transaction-scoped advisory lock on its number):
//! sequence numbers then grow in commit order, so a reader paging the queue by `seq` never
//! misses a row committed after its page, and a key sent to two nodes at once names one row.
//! Expired idempotency records are deleted by the appends that come later.

use super::engine::{millis, ts, PgEngine};
use super::outcomes::{shift_counts, CountDeltas};
use super::queue::to_i64;
use super::PgStoreError;
use crate::model::Millis;
use crate::store::{AppendRow, Appended, IdempotencyKey, RecipientKey, StoreError};
use sqlx::postgres::PgConnection;
use sqlx::Row;
use std::collections::BTreeMap;

/// The first key of the advisory locks appends take (the second is the campaign's number).
const APPEND_LOCK: i32 = 0x766f_6c61;

/// Expired idempotency records deleted per append at most.
const PRUNE: i64 = 256;

/// A row an idempotency key names, with the fingerprint of its first request.
type Named = (RecipientKey, Vec<u8>);

impl PgEngine {
    /// See [`crate::store::CampaignStore::append`].
    pub(super) fn append_rows(
        &self,
        campaign: &str,
        rows: &[AppendRow],
        now: Millis,
    ) -> Result<Vec<Appended>, StoreError> {
        self.run(self.append_in_one(campaign, rows, now))?
            .ok_or_else(|| self.unknown(campaign))
    }

    /// The append as one transaction; `None` when the campaign is not loaded.
    async fn append_in_one(
        &self,
        campaign: &str,
        rows: &[AppendRow],
        now: Millis,
    ) -> Result<Option<Vec<Appended>>, PgStoreError> {
        let what = format!("append to campaign {campaign}");
        let fail = |e| self.failed(&what, e);
        let mut tx = self.begin(&what).await?;
        let Some(number) = lock_loaded(&mut tx, campaign).await.map_err(fail)? else {
            return Ok(None);
        };
        prune(&mut tx, number, now).await.map_err(fail)?;
        let mut next: i64 = sqlx::query_scalar(
            "SELECT coalesce(max(seq) + 1, 0) FROM recipients WHERE campaign = $1",
        )
        .bind(number)
        .fetch_one(&mut *tx)
        .await
        .map_err(fail)?;
        let mut out = Vec::with_capacity(rows.len());
        let mut deltas = CountDeltas::new();
        let mut seen: BTreeMap<&str, Named> = BTreeMap::new();
        for row in rows {
            if let Some(idem) = &row.idempotency {
                let earlier = match seen.get(idem.key.as_str()) {
                    Some(named) => Some(named.clone()),
                    None => remembered(&mut tx, number, &idem.key, now)
                        .await
                        .map_err(fail)?,
                };
                if let Some((key, fingerprint)) = earlier {
                    out.push(Appended::Existing {
                        key,
                        same_request: fingerprint == idem.fingerprint,
                    });
                    continue;
                }
            }
            let key = RecipientKey {
                domain: row.domain.clone(),
                seq: u64::try_from(next).unwrap_or(0),
            };
            insert(&mut tx, number, next, row).await.map_err(fail)?;
            next += 1;
            *deltas
                .entry((i16::from(row.variant), "pending"))
                .or_default() += 1;
            if let Some(idem) = &row.idempotency {
                remember(&mut tx, number, idem, &key, now)
                    .await
                    .map_err(fail)?;
                seen.insert(&idem.key, (key.clone(), idem.fingerprint.to_vec()));
            }
            out.push(Appended::New(key));
        }
        shift_counts(&mut tx, number, &deltas).await.map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        Ok(Some(out))
    }
}

/// The number of `campaign` when it is loaded, its appends' lock taken (until the
/// transaction ends); `None` when it is not loaded.
async fn lock_loaded(conn: &mut PgConnection, campaign: &str) -> Result<Option<i32>, sqlx::Error> {
    let number: Option<i32> =
        sqlx::query_scalar("SELECT number FROM campaigns WHERE id = $1 AND loaded")
            .bind(campaign)
            .fetch_optional(&mut *conn)
            .await?;
    if let Some(number) = number {
        sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind(APPEND_LOCK)
            .bind(number)
            .execute(&mut *conn)
            .await?;
    }
    Ok(number)
}

/// Stores `row` as pending recipient `seq` of campaign `number`.
async fn insert(
    conn: &mut PgConnection,
    number: i32,
    seq: i64,
    row: &AppendRow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO recipients (campaign, seq, domain, email, line, fields, state, variant) \
         VALUES ($1, $2, $3, $4, 0, $5, 'pending', $6)",
    )
    .bind(number)
    .bind(seq)
    .bind(&row.domain)
    .bind(&row.address)
    .bind(&row.values)
    .bind(i16::from(row.variant))
    .execute(conn)
    .await
    .map(|_| ())
}

/// The row `key` named first, with its request's fingerprint, while its window lasts.
async fn remembered(
    conn: &mut PgConnection,
    number: i32,
    key: &str,
    now: Millis,
) -> Result<Option<Named>, sqlx::Error> {
    let sql = concat!(
        "SELECT seq, domain, fingerprint FROM idempotency_keys ",
        "WHERE campaign = $1 AND key = $2 AND until > ",
        ts!(3)
    );
    let row = sqlx::query(sql)
        .bind(number)
        .bind(key)
        .bind(millis(now))
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|row| {
        let seq: i64 = row.get(0);
        let key = RecipientKey {
            domain: row.get(1),
            seq: u64::try_from(seq).unwrap_or(0),
        };
        (key, row.get(2))
    }))
}

/// Records that `idem` names `key` from `now` for its window (replacing an expired record).
async fn remember(
    conn: &mut PgConnection,
    number: i32,
    idem: &IdempotencyKey,
    key: &RecipientKey,
    now: Millis,
) -> Result<(), sqlx::Error> {
    let window = u64::try_from(idem.window.as_millis()).unwrap_or(u64::MAX);
    let sql = concat!(
        "INSERT INTO idempotency_keys (campaign, key, seq, domain, fingerprint, at, until) ",
        "VALUES ($1, $2, $3, $4, $5, ",
        ts!(6),
        ", ",
        ts!(7),
        ") ON CONFLICT (campaign, key) DO UPDATE SET seq = excluded.seq, ",
        "domain = excluded.domain, fingerprint = excluded.fingerprint, at = excluded.at, ",
        "until = excluded.until"
    );
    sqlx::query(sql)
        .bind(number)
        .bind(&idem.key)
        .bind(to_i64(key.seq))
        .bind(&key.domain)
        .bind(&idem.fingerprint[..])
        .bind(millis(now))
        .bind(millis(now.saturating_add(window)))
        .execute(conn)
        .await
        .map(|_| ())
}

/// Deletes up to [`PRUNE`] of the campaign's idempotency records expired at `now`.
async fn prune(conn: &mut PgConnection, number: i32, now: Millis) -> Result<(), sqlx::Error> {
    let sql = concat!(
        "DELETE FROM idempotency_keys WHERE (campaign, key) IN (",
        "SELECT campaign, key FROM idempotency_keys WHERE campaign = $1 AND until <= ",
        ts!(2),
        " LIMIT $3)"
    );
    sqlx::query(sql)
        .bind(number)
        .bind(millis(now))
        .bind(PRUNE)
        .execute(conn)
        .await
        .map(|_| ())
}
