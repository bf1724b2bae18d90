//! Loading a campaign's list: the rows the CSV reader yields, with their A/B assignment,
//! streamed with binary `COPY` into a temporary staging table, then moved into the campaign's
//! own partition in one statement that drops duplicates (first row wins) and marks suppressed
//! addresses. All of it is one transaction: an interrupted load leaves nothing behind, and a
//! finished one is `loaded` and durable at once.

use super::copy::{self, StagedRow};
use super::{PgStore, PgStoreError};
use crate::model::{Assignment, Counts, RecipientState};
use sqlx::postgres::PgConnection;
use sqlx::{Acquire, Row};
use tokio::sync::mpsc;

/// Bytes of COPY data sent to the server at a time.
const CHUNK: usize = 1 << 20;

/// One accepted CSV row, as the campaign module's `RecipientReader` yields it, with its
/// A/B assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadRow {
    /// The normalised address.
    pub email: String,
    /// Its domain (lowercase, punycode).
    pub domain: String,
    /// Merge-field values, aligned with the CSV header.
    pub values: Vec<String>,
    /// The CSV line it came from.
    pub line: u64,
    /// Its variant, or held for an A/B test's winner.
    pub assignment: Assignment,
}

/// A batch of rows from the reader, with the invalid rows it skipped meanwhile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadBatch {
    /// Accepted rows, in file order.
    pub rows: Vec<LoadRow>,
    /// Rows refused as invalid since the previous batch.
    pub invalid: u64,
}

/// What a finished load stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgLoadResult {
    /// The campaign's counters right after loading (duplicates and invalid rows included).
    pub counts: Counts,
    /// The campaign's number in this store.
    pub number: i32,
}

impl PgStore {
    /// Loads `campaign` (CSV header `columns`) from the batches received on `rows` until the
    /// sender is dropped, in one transaction. The reader runs elsewhere (a blocking thread);
    /// the bounded channel keeps memory flat. Refuses a campaign that is loaded already; a
    /// campaign whose earlier load never committed simply is not there.
    pub async fn load(
        &self,
        campaign: &str,
        columns: &[String],
        mut rows: mpsc::Receiver<LoadBatch>,
    ) -> Result<PgLoadResult, PgStoreError> {
        let what = |step: &str| format!("load campaign {campaign}: {step}");
        let mut conn = self
            .pool()
            .acquire()
            .await
            .map_err(|e| self.query_error(what("connect"), e))?;
        let mut tx = conn
            .begin()
            .await
            .map_err(|e| self.query_error(what("begin"), e))?;
        // One sort of the whole list (de-duplication) and the index builds, in memory.
        sqlx::query(
            "SELECT set_config('work_mem', '256MB', true), \
             set_config('maintenance_work_mem', '256MB', true)",
        )
        .execute(&mut *tx)
        .await
        .map_err(|e| self.query_error(what("set work_mem"), e))?;
        let number = self.create_campaign(&mut tx, campaign, columns).await?;
        let (staged, invalid) = self.stage(&mut tx, campaign, columns, &mut rows).await?;
        let counts = self.move_staged(&mut tx, campaign, number).await?;

        let duplicate = staged.saturating_sub(counts.total);
        sqlx::query(
            "UPDATE campaigns SET loaded = true, loaded_at = now(), invalid = $2, duplicate = $3 \
             WHERE number = $1",
        )
        .bind(number)
        .bind(to_i64(invalid))
        .bind(to_i64(duplicate))
        .execute(&mut *tx)
        .await
        .map_err(|e| self.query_error(what("mark loaded"), e))?;
        tx.commit()
            .await
            .map_err(|e| self.query_error(what("commit"), e))?;
        Ok(PgLoadResult {
            counts: Counts {
                invalid,
                duplicate,
                ..counts
            },
            number,
        })
    }

    /// Adds the campaign row and its partitions; returns its number.
    async fn create_campaign(
        &self,
        conn: &mut PgConnection,
        campaign: &str,
        columns: &[String],
    ) -> Result<i32, PgStoreError> {
        let what = |step: &str| format!("load campaign {campaign}: {step}");
        let inserted = sqlx::query(
            "INSERT INTO campaigns (id, columns) VALUES ($1, $2) \
             ON CONFLICT (id) DO NOTHING RETURNING number",
        )
        .bind(campaign)
        .bind(columns)
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| self.query_error(what("create the campaign"), e))?;
        let Some(row) = inserted else {
            return Err(PgStoreError::AlreadyLoaded {
                url: self.url().to_owned(),
                campaign: campaign.to_owned(),
            });
        };
        let number: i32 = row.get(0);
        sqlx::query("SELECT create_campaign_partitions($1)")
            .bind(number)
            .execute(&mut *conn)
            .await
            .map_err(|e| self.query_error(what("create its partitions"), e))?;
        Ok(number)
    }

    /// COPYs every received row into a temporary staging table; returns the rows staged and
    /// the invalid rows the batches reported.
    async fn stage(
        &self,
        conn: &mut PgConnection,
        campaign: &str,
        columns: &[String],
        rows: &mut mpsc::Receiver<LoadBatch>,
    ) -> Result<(u64, u64), PgStoreError> {
        let what = |step: &str| format!("load campaign {campaign}: {step}");
        sqlx::query(
            "CREATE TEMPORARY TABLE load_rows (seq int8, line int8, email text, domain text, \
             fields text[], held bool, variant int2, holdout bool) ON COMMIT DROP",
        )
        .execute(&mut *conn)
        .await
        .map_err(|e| self.query_error(what("create the staging table"), e))?;
        let mut copy = conn
            .copy_in_raw("COPY load_rows FROM STDIN (FORMAT binary)")
            .await
            .map_err(|e| self.query_error(what("COPY"), e))?;
        let mut buffer = Vec::with_capacity(CHUNK + 4096);
        buffer.extend_from_slice(copy::HEADER);
        let (mut seq, mut invalid) = (0i64, 0u64);
        while let Some(batch) = rows.recv().await {
            invalid += batch.invalid;
            for row in &batch.rows {
                let (held, variant, holdout) = match row.assignment {
                    Assignment::Variant(v) => (false, v, false),
                    Assignment::Held { fallback } => (true, fallback, false),
                    Assignment::Holdout => (false, 0, true),
                };
                let staged = StagedRow {
                    seq,
                    line: row.line,
                    email: &row.email,
                    domain: &row.domain,
                    fields: &row.values,
                    held,
                    variant,
                    holdout,
                };
                copy::encode(&mut buffer, &staged, columns)?;
                seq += 1;
            }
            if buffer.len() >= CHUNK {
                copy.send(std::mem::take(&mut buffer))
                    .await
                    .map_err(|e| self.query_error(what("COPY"), e))?;
                buffer.reserve(CHUNK + 4096);
            }
        }
        buffer.extend_from_slice(copy::TRAILER);
        copy.send(buffer)
            .await
            .map_err(|e| self.query_error(what("COPY"), e))?;
        let staged = copy
            .finish()
            .await
            .map_err(|e| self.query_error(what("COPY"), e))?;
        Ok((staged, invalid))
    }

    /// Moves the staged rows into the campaign (first row of each address wins; suppressed
    /// addresses stored as `suppressed`, with an attempt-log entry), writes the counters, and
    /// returns them.
    async fn move_staged(
        &self,
        conn: &mut PgConnection,
        campaign: &str,
        number: i32,
    ) -> Result<Counts, PgStoreError> {
        let what = |step: &str| format!("load campaign {campaign}: {step}");
        for (step, statement) in [
            ("store the recipients", "SELECT load_staged_recipients($1)"),
            ("log the suppressed", LOG_SUPPRESSED),
            ("count", COUNT_STATES),
        ] {
            sqlx::query(statement)
                .bind(number)
                .execute(&mut *conn)
                .await
                .map_err(|e| self.query_error(what(step), e))?;
        }
        let rows =
            sqlx::query("SELECT state::text, recipients FROM state_counts WHERE campaign = $1")
                .bind(number)
                .fetch_all(&mut *conn)
                .await
                .map_err(|e| self.query_error(what("read the counters"), e))?;
        let mut counts = Counts::default();
        for row in rows {
            let state: String = row.get(0);
            let recipients: i64 = row.get(1);
            let n = u64::try_from(recipients).unwrap_or(0);
            if let Some(state) = parse_state(&state) {
                *counts.get_mut(state) += n;
                counts.total += n;
            }
        }
        Ok(counts)
    }
}

/// The attempt-log entry of each recipient suppressed at load.
const LOG_SUPPRESSED: &str = "\
INSERT INTO attempts (campaign, at, seq, state, reply)
SELECT campaign, now(), seq, state, last_reply FROM recipients
WHERE campaign = $1 AND state = 'suppressed'";

/// The campaign's counters by variant and state.
const COUNT_STATES: &str = "\
INSERT INTO state_counts (campaign, variant, state, recipients)
SELECT campaign, variant, state, count(*) FROM recipients WHERE campaign = $1
GROUP BY campaign, variant, state";

/// A state as the schema's `recipient_state` names it.
pub(crate) fn parse_state(text: &str) -> Option<RecipientState> {
    Some(match text {
        "pending" => RecipientState::Pending,
        "deferred" => RecipientState::Deferred,
        "delivered" => RecipientState::Delivered,
        "bounced" => RecipientState::Bounced,
        "expired" => RecipientState::Expired,
        "suppressed" => RecipientState::Suppressed,
        "held" => RecipientState::Held,
        "cancelled" => RecipientState::Cancelled,
        "waiting" => RecipientState::Waiting,
        "holdout" => RecipientState::Holdout,
        _ => return None,
    })
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
