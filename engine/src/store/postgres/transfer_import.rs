//! `volley store copy` on PostgreSQL, the writing side, all of one campaign in one
//! transaction: the campaign row and its partitions first (not loaded yet), then each chunk:
//! recipients, attempt log, tracking events, engagement and the Message-ID index by binary
//! `COPY` (as the loader does), late reports (few) as one JSON array unpacked by
//! `jsonb_to_recordset`; then the counters recounted from the recipients, the campaign marked
//! loaded, and the commit. The recipients go into a plain table that is attached as the
//! campaign's partition once they are all in, so its indexes are built in one sorted pass.
//! An import dropped before it finished rolls back: nothing of it is left.

use super::copy::Tuples;
use super::engine::{millis, ts, PgEngine};
use super::queue::state_name;
use super::tracking::kind_name;
use super::PgStoreError;
use crate::model::Counts;
use crate::store::api::CampaignStore;
use crate::store::track_rules::Engagement;
use crate::store::transfer::{AttemptEntry, CampaignHeader, CampaignImport, DumpChunk};
use crate::store::{MachineReason, StoreError, StoredRecipient, TrackEvent};
use serde::Serialize;
use sqlx::postgres::PgConnection;
use sqlx::{Postgres, Transaction};

/// Epoch milliseconds of column `x.<name>` as a `timestamptz`, in SQL.
macro_rules! at {
    ($name:literal) => {
        concat!(
            "timestamptz 'epoch' + x.",
            $name,
            " * interval '1 millisecond'"
        )
    };
}

const REPORTS: &str = concat!(
    "INSERT INTO report_events (campaign, at, kind, seq, variant, address, reply, source) ",
    "SELECT $1, ",
    at!("at"),
    ", x.kind::report_kind, (x.key ->> 'seq')::int8, coalesce(r.variant, 0), x.address, ",
    "x.reply, x.source FROM jsonb_to_recordset($2::jsonb) AS x(at int8, kind text, key jsonb, ",
    "address text, reply jsonb, source text) LEFT JOIN recipients r ON r.campaign = $1 ",
    "AND r.seq = (x.key ->> 'seq')::int8"
);
/// A campaign's tracking counters of one variant, from a JSON object.
const TRACK_COUNTS: &str = concat!(
    "INSERT INTO track_counts (campaign, variant, opened, clicked, unsubscribed, opens, ",
    "clicks, machine_opens, machine_clicks) SELECT $1, $2, x.opened, x.clicked, ",
    "x.unsubscribed, x.opens, x.clicks, x.machine_opens, x.machine_clicks ",
    "FROM jsonb_to_record($3::text::jsonb) AS x(opened int8, clicked int8, unsubscribed int8, ",
    "opens int8, clicks int8, machine_opens int8, machine_clicks int8)"
);

/// Tracking counters as the [`TRACK_COUNTS`] statement unpacks them.
fn track_counts(counts: &crate::model::TrackCounts) -> String {
    serde_json::json!({
        "opened": counts.opened, "clicked": counts.clicked,
        "unsubscribed": counts.unsubscribed, "opens": counts.opens, "clicks": counts.clicks,
        "machine_opens": counts.machine_opens, "machine_clicks": counts.machine_clicks,
    })
    .to_string()
}

/// A campaign being written into PostgreSQL by `store copy`: one open transaction.
pub(super) struct PgImport<'a> {
    engine: &'a PgEngine,
    /// The transaction everything is written in; `None` once committed (or rolled back).
    tx: Option<Transaction<'static, Postgres>>,
    campaign: String,
    number: i32,
    invalid: u64,
    duplicate: u64,
    excluded: u64,
    /// The recipients table is the campaign's partition already.
    attached: bool,
}

/// The import's staging table for the Message-ID index (moved with `ON CONFLICT DO NOTHING`
/// at the end, which `COPY` cannot do).
const STAGE_MESSAGES: &str =
    "CREATE TEMPORARY TABLE import_messages (message_id text, seq int8) ON COMMIT DROP";

/// Moves the staged Message-IDs into the index.
const MOVE_MESSAGES: &str = "INSERT INTO messages (message_id, campaign, seq) \
     SELECT message_id, $1, seq FROM import_messages ON CONFLICT DO NOTHING";

/// The campaign row, keeping the source's number when it is free.
const CAMPAIGN: &str = concat!(
    "INSERT INTO campaigns (id, number, columns, loaded, loaded_at, tracking_links, ",
    "tracking_key_fingerprint, ab_test_sent_at, ab_decision, exported_through, exported_at, ",
    "collected_at, archive) VALUES ($1, CASE WHEN $2::int4 > 0 AND NOT EXISTS ",
    "(SELECT 1 FROM campaigns WHERE number = $2) THEN $2 ",
    "ELSE nextval(pg_get_serial_sequence('campaigns', 'number'))::int4 END, $3, false, ",
    ts!(4),
    ", $5, $6, ",
    ts!(7),
    ", $8::jsonb, ",
    ts!(9),
    ", ",
    ts!(10),
    ", CASE WHEN $11::bytea IS NULL THEN NULL ELSE now() END, $11) RETURNING number"
);

impl<'a> PgImport<'a> {
    /// Begins the transaction and writes the campaign row (not loaded yet), its partitions and
    /// tracking counters in it.
    pub(super) fn start(engine: &'a PgEngine, header: &CampaignHeader) -> Result<Self, StoreError> {
        if engine.campaign(&header.id)?.is_some() {
            return Err(StoreError::Transfer {
                path: engine.path().to_owned(),
                detail: format!("campaign {} is already in this store", header.id),
            });
        }
        let (tx, number) = engine.run(engine.begin_import(header))?;
        Ok(PgImport {
            engine,
            tx: Some(tx),
            campaign: header.id.clone(),
            number,
            invalid: header.counts.invalid,
            duplicate: header.counts.duplicate,
            excluded: header.counts.excluded,
            attached: false,
        })
    }

    /// The engine and the open transaction.
    fn tx(&mut self, what: &str) -> Result<(&'a PgEngine, &mut PgConnection), StoreError> {
        let engine = self.engine;
        match self.tx.as_mut() {
            Some(tx) => Ok((engine, &mut **tx)),
            None => Err(StoreError::Transfer {
                path: engine.path().to_owned(),
                detail: format!("could not {what}: the import is over"),
            }),
        }
    }

    /// COPYs one chunk's tuples into `target` (a table and its column list).
    fn copy(&mut self, what: &str, target: String, tuples: Tuples) -> Result<(), StoreError> {
        let data = tuples.finish();
        let statement = format!("COPY {target} FROM STDIN (FORMAT binary)");
        let (engine, conn) = self.tx(what)?;
        engine.run(async move {
            let failed = |e| engine.failed(what, e);
            // The statement names a table by the campaign's number, an integer.
            let mut copy = conn.copy_in_raw(&statement).await.map_err(failed)?;
            copy.send(data).await.map_err(failed)?;
            copy.finish().await.map(drop).map_err(failed)
        })
    }

    /// Attaches the recipients table as the campaign's partition (its indexes built now),
    /// once: before anything that reads recipients through the parent table.
    fn attach(&mut self) -> Result<(), StoreError> {
        if self.attached {
            return Ok(());
        }
        let number = self.number;
        // The number is an integer the database handed out: safe to write into the name.
        let sql = format!(
            "ALTER TABLE recipients ATTACH PARTITION recipients_{number} FOR VALUES IN ({number})"
        );
        let what = "index the recipients";
        let (engine, conn) = self.tx(what)?;
        engine.run(async move {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(conn)
                .await
                .map(drop)
                .map_err(|e| engine.failed(what, e))
        })?;
        self.attached = true;
        Ok(())
    }

    /// The late reports: one statement, the rows as a JSON array.
    fn reports<T: Serialize>(&mut self, rows: &T) -> Result<(), StoreError> {
        let what = "store the late reports";
        let json = serde_json::to_string(rows).map_err(|e| StoreError::Transfer {
            path: self.engine.path().to_owned(),
            detail: format!("could not {what}: {e}"),
        })?;
        let number = self.number;
        let (engine, conn) = self.tx(what)?;
        engine.run(async move {
            sqlx::query(REPORTS)
                .bind(number)
                .bind(json)
                .execute(conn)
                .await
                .map(drop)
                .map_err(|e| engine.failed(what, e))
        })
    }
}

impl CampaignImport for PgImport<'_> {
    fn write(&mut self, chunk: DumpChunk) -> Result<(), StoreError> {
        let n = self.number;
        if !matches!(chunk, DumpChunk::Recipients(_)) {
            self.attach()?;
        }
        match &chunk {
            DumpChunk::Recipients(rows) => {
                let target = format!("recipients_{n} {RECIPIENT_COLUMNS}");
                self.copy("store the recipients", target, recipients(n, rows))
            }
            DumpChunk::Attempts(rows) => {
                // Into the parent table: it hands out the ids (a partition does not).
                let target = "attempts (campaign, at, seq, state, reply)".to_owned();
                self.copy("store the attempt log", target, attempts(n, rows))
            }
            DumpChunk::Reports(rows) => self.reports(rows),
            DumpChunk::Tracking(rows) => {
                let target =
                    "track_events (campaign, at, kind, seq, variant, link, machine)".to_owned();
                self.copy("store the tracking events", target, tracking(n, rows))
            }
            DumpChunk::Engagement(rows) => {
                let mut t = Tuples::new();
                for row in rows {
                    let g = Engagement::from_entry(row);
                    let time = |ms| (ms > 0).then_some(ms);
                    t.tuple(8).int4(n).int8(millis(row.seq));
                    t.bool(g.opened).bool(g.clicked).bool(g.unsubscribed);
                    t.time(time(g.first_click_at)).time(time(g.last_click_at));
                    t.int2(i16::try_from(g.last_link).unwrap_or(i16::MAX));
                }
                let target = format!("engagement {ENGAGEMENT_COLUMNS}");
                self.copy("store the engagement", target, t)
            }
            DumpChunk::Messages(rows) => {
                let mut t = Tuples::new();
                for (id, key) in rows {
                    t.tuple(2).text(id).int8(millis(key.seq));
                }
                let target = "import_messages (message_id, seq)".to_owned();
                self.copy("store the Message-ID index", target, t)
            }
        }
    }

    fn finish(mut self: Box<Self>) -> Result<Counts, StoreError> {
        self.attach()?;
        let what = format!("finish copying campaign {}", self.campaign);
        let number = self.number;
        let skipped = [self.invalid, self.duplicate, self.excluded];
        let (engine, conn) = self.tx(&what)?;
        engine.run(async {
            let done = finish(conn, number, skipped).await;
            done.map_err(|e| engine.failed(&what, e))
        })?;
        let Some(tx) = self.tx.take() else {
            return Err(engine.fail_with(engine.damaged("the import's transaction is gone")));
        };
        engine.run(async {
            tx.commit().await.map_err(|e| engine.failed(&what, e))?;
            engine.read_counts(number).await
        })
    }
}

impl Drop for PgImport<'_> {
    /// An import that did not finish leaves nothing behind: its transaction is rolled back
    /// here, at once, so that the campaign's rows and locks are gone before the caller goes on.
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            let engine = self.engine;
            let what = format!("roll back copying campaign {}", self.campaign);
            // Best effort: the error that stopped the import is the one to report.
            let _ = engine.run(async { tx.rollback().await.map_err(|e| engine.failed(&what, e)) });
        }
    }
}

/// The columns a recipients chunk is copied into.
const RECIPIENT_COLUMNS: &str = "(campaign, seq, domain, email, line, fields, state, variant, \
     attempts, first_attempt, next_attempt, last_reply)";

/// The columns an engagement chunk is copied into.
const ENGAGEMENT_COLUMNS: &str = "(campaign, seq, opened, clicked, unsubscribed, \
     first_click_at, last_click_at, last_link)";

/// Recipients as COPY tuples ([`RECIPIENT_COLUMNS`]).
fn recipients(number: i32, rows: &[StoredRecipient]) -> Tuples {
    let mut t = Tuples::new();
    for r in rows {
        let record = &r.record;
        let reply = record
            .last_reply
            .as_ref()
            .and_then(|r| serde_json::to_string(r).ok());
        t.tuple(12).int4(number).int8(millis(r.key.seq));
        t.text(&r.key.domain).text(&record.email);
        t.int8(millis(record.line)).text_array(&record.values);
        t.text(state_name(record.state))
            .int2(i16::from(record.variant));
        t.int4(i32::try_from(record.attempts).unwrap_or(i32::MAX));
        t.time(record.first_attempt).time(record.next_attempt);
        t.jsonb(reply.as_deref());
    }
    t
}

/// Attempt-log entries as COPY tuples.
fn attempts(number: i32, rows: &[AttemptEntry]) -> Tuples {
    let mut t = Tuples::new();
    for a in rows {
        let reply = a.reply.as_ref().and_then(|r| serde_json::to_string(r).ok());
        t.tuple(5)
            .int4(number)
            .time(Some(a.at))
            .int8(millis(a.key.seq));
        t.text(state_name(a.state)).jsonb(reply.as_deref());
    }
    t
}

/// Tracking events as COPY tuples.
fn tracking(number: i32, rows: &[TrackEvent]) -> Tuples {
    let mut t = Tuples::new();
    for e in rows {
        t.tuple(7)
            .int4(number)
            .time(Some(e.at))
            .text(kind_name(e.kind));
        t.int8(millis(e.key.seq)).int2(i16::from(e.variant));
        match e.link {
            Some(link) => t.int2(i16::try_from(link).unwrap_or(i16::MAX)),
            None => t.null(),
        };
        t.opt_text(e.machine.map(MachineReason::as_str));
    }
    t
}

/// Moves the staged Message-IDs, recounts the campaign's counters from its recipients and
/// marks it loaded with its load tallies (`skipped`: invalid, duplicate, excluded rows).
async fn finish(
    conn: &mut PgConnection,
    number: i32,
    skipped: [u64; 3],
) -> Result<(), sqlx::Error> {
    let [invalid, duplicate, excluded] = skipped;
    for sql in [
        MOVE_MESSAGES,
        "INSERT INTO state_counts (campaign, variant, state, recipients) \
         SELECT campaign, variant, state, count(*) FROM recipients \
         WHERE campaign = $1 GROUP BY campaign, variant, state",
    ] {
        sqlx::query(sql).bind(number).execute(&mut *conn).await?;
    }
    sqlx::query(
        "UPDATE campaigns SET loaded = true, invalid = $2, duplicate = $3, excluded = $4 \
         WHERE number = $1",
    )
    .bind(number)
    .bind(millis(invalid))
    .bind(millis(duplicate))
    .bind(millis(excluded))
    .execute(&mut *conn)
    .await
    .map(drop)
}

impl PgEngine {
    /// Begins an import's transaction: the campaign row, its partitions (the recipients one
    /// a plain table until attached), its tracking counters and the Message-ID staging table.
    /// Returns the transaction and the campaign's number.
    async fn begin_import(
        &self,
        header: &CampaignHeader,
    ) -> Result<(Transaction<'static, Postgres>, i32), PgStoreError> {
        let what = format!("copy campaign {}", header.id);
        let failed = |e| self.failed(&what, e);
        let decision = header
            .ab
            .decision
            .as_ref()
            .and_then(|d| serde_json::to_string(d).ok());
        let tracking = header.tracking.as_ref();
        let mark = header.export_mark.as_ref();
        let mut tx = self.store.pool().begin().await.map_err(failed)?;
        // One sort per index build when the recipients are attached, in memory.
        sqlx::query("SELECT set_config('maintenance_work_mem', '256MB', true)")
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
        let number: i32 = sqlx::query_scalar(CAMPAIGN)
            .bind(&header.id)
            .bind(i32::try_from(header.meta.number).unwrap_or(0))
            .bind(&header.meta.columns)
            .bind(millis(header.meta.loaded_at))
            .bind(tracking.map(|t| t.links.clone()))
            .bind(tracking.map(|t| t.key_fingerprint.clone()))
            .bind(header.ab.test_sent_at.map(millis))
            .bind(decision)
            .bind(mark.map(|m| millis(m.through)))
            .bind(mark.map(|m| millis(m.at)))
            .bind(header.archive.as_deref())
            .fetch_one(&mut *tx)
            .await
            .map_err(failed)?;
        if let Some(view) = &header.view {
            super::views::import_view_meta(&mut tx, number, view)
                .await
                .map_err(failed)?;
        }
        super::relay_tallies::import_relay_tallies(&mut tx, &header.id, &header.relays)
            .await
            .map_err(failed)?;
        // The number is an integer the database handed out: safe to write into the name.
        let recipients = format!(
            "CREATE TABLE recipients_{number} (LIKE recipients INCLUDING DEFAULTS, \
             CHECK (campaign = {number}))"
        );
        for sql in [
            "SELECT setval(pg_get_serial_sequence('campaigns', 'number'), \
             (SELECT max(number) FROM campaigns))"
                .to_owned(),
            format!("SELECT create_campaign_partitions({number})"),
            recipients,
            STAGE_MESSAGES.to_owned(),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut *tx)
                .await
                .map_err(failed)?;
        }
        for (variant, counts) in &header.track_counts {
            sqlx::query(TRACK_COUNTS)
                .bind(number)
                .bind(i16::from(*variant))
                .bind(track_counts(counts))
                .execute(&mut *tx)
                .await
                .map_err(failed)?;
        }
        Ok((tx, number))
    }
}
