//! `volley store copy` on PostgreSQL, the writing side: the campaign row and its partitions
//! first (not loaded yet), then one statement per chunk (the rows passed as one JSON array and
//! unpacked by `jsonb_to_recordset`), then the counters recounted from the recipients and the
//! campaign marked loaded, in one transaction.

use super::engine::{millis, ts, PgEngine};
use super::queue::state_name;
use super::PgStoreError;
use crate::model::{Counts, ReplyRecord};
use crate::store::api::CampaignStore;
use crate::store::transfer::{CampaignHeader, CampaignImport, DumpChunk};
use crate::store::{StoreError, StoredRecipient};
use serde::Serialize;

/// A recipient as the insert statement unpacks it.
#[derive(Serialize)]
struct RecipientRow<'a> {
    seq: u64,
    domain: &'a str,
    email: &'a str,
    line: u64,
    fields: &'a [String],
    state: &'static str,
    variant: u8,
    attempts: u32,
    first_attempt: Option<u64>,
    next_attempt: Option<u64>,
    last_reply: Option<&'a ReplyRecord>,
}

/// An attempt-log entry as the insert statement unpacks it.
#[derive(Serialize)]
struct AttemptRow<'a> {
    at: u64,
    seq: u64,
    state: &'static str,
    reply: Option<&'a ReplyRecord>,
}

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

const RECIPIENTS: &str = concat!(
    "INSERT INTO recipients (campaign, seq, domain, email, line, fields, state, variant, ",
    "attempts, first_attempt, next_attempt, last_reply) ",
    "SELECT $1, x.seq, x.domain, x.email, x.line, ",
    "ARRAY(SELECT jsonb_array_elements_text(x.fields)), x.state::recipient_state, x.variant, ",
    "x.attempts, ",
    at!("first_attempt"),
    ", ",
    at!("next_attempt"),
    ", nullif(x.last_reply, 'null'::jsonb) FROM jsonb_to_recordset($2::jsonb) AS x(seq int8, ",
    "domain text, email text, line int8, fields jsonb, state text, variant int2, ",
    "attempts int4, first_attempt int8, next_attempt int8, last_reply jsonb)"
);
const ATTEMPTS: &str = concat!(
    "INSERT INTO attempts (campaign, at, seq, state, reply) SELECT $1, ",
    at!("at"),
    ", x.seq, x.state::recipient_state, nullif(x.reply, 'null'::jsonb) ",
    "FROM jsonb_to_recordset($2::jsonb) AS x(at int8, seq int8, state text, reply jsonb)"
);
const REPORTS: &str = concat!(
    "INSERT INTO report_events (campaign, at, kind, seq, variant, address, reply, source) ",
    "SELECT $1, ",
    at!("at"),
    ", x.kind::report_kind, (x.key ->> 'seq')::int8, coalesce(r.variant, 0), x.address, ",
    "x.reply, x.source FROM jsonb_to_recordset($2::jsonb) AS x(at int8, kind text, key jsonb, ",
    "address text, reply jsonb, source text) LEFT JOIN recipients r ON r.campaign = $1 ",
    "AND r.seq = (x.key ->> 'seq')::int8"
);
const TRACKING: &str = concat!(
    "INSERT INTO track_events (campaign, at, kind, seq, variant, link, machine) SELECT $1, ",
    at!("at"),
    ", x.kind::track_kind, (x.key ->> 'seq')::int8, x.variant, x.link, x.machine ",
    "FROM jsonb_to_recordset($2::jsonb) AS x(at int8, kind text, key jsonb, variant int2, ",
    "link int2, machine text)"
);
const ENGAGEMENT: &str = concat!(
    "INSERT INTO engagement (campaign, seq, opened, clicked, unsubscribed, first_click_at, ",
    "last_click_at, last_link) SELECT $1, x.seq, x.opened, x.clicked, x.unsubscribed, ",
    "CASE WHEN x.first_click_at > 0 THEN ",
    at!("first_click_at"),
    " END, CASE WHEN x.last_click_at > 0 THEN ",
    at!("last_click_at"),
    " END, x.last_link FROM jsonb_to_recordset($2::jsonb) AS x(seq int8, opened bool, ",
    "clicked bool, unsubscribed bool, first_click_at int8, last_click_at int8, last_link int2)"
);
const MESSAGES: &str = concat!(
    "INSERT INTO messages (message_id, campaign, seq) SELECT x.id, $1, (x.key ->> 'seq')::int8 ",
    "FROM jsonb_to_recordset($2::jsonb) AS x(id text, key jsonb) ON CONFLICT DO NOTHING"
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

/// A campaign being written into PostgreSQL by `store copy`.
pub(super) struct PgImport<'a> {
    engine: &'a PgEngine,
    campaign: String,
    number: i32,
    invalid: u64,
    duplicate: u64,
}

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
    /// Writes the campaign row (not loaded yet), its partitions and tracking counters.
    pub(super) fn start(engine: &'a PgEngine, header: &CampaignHeader) -> Result<Self, StoreError> {
        if engine.campaign(&header.id)?.is_some() {
            return Err(StoreError::Transfer {
                path: engine.path().to_owned(),
                detail: format!("campaign {} is already in this store", header.id),
            });
        }
        let number = engine.run(engine.insert_campaign(header))?;
        Ok(PgImport {
            engine,
            campaign: header.id.clone(),
            number,
            invalid: header.counts.invalid,
            duplicate: header.counts.duplicate,
        })
    }

    fn rows<T: Serialize>(
        &self,
        what: &str,
        sql: &'static str,
        rows: &T,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(rows).map_err(|e| StoreError::Transfer {
            path: self.engine.path().to_owned(),
            detail: format!("could not {what}: {e}"),
        })?;
        self.engine.run(async {
            sqlx::query(sql)
                .bind(self.number)
                .bind(json)
                .execute(self.engine.store.pool())
                .await
                .map(drop)
                .map_err(|e| self.engine.failed(what, e))
        })
    }
}

fn recipient(r: &StoredRecipient) -> RecipientRow<'_> {
    RecipientRow {
        seq: r.key.seq,
        domain: &r.key.domain,
        email: &r.record.email,
        line: r.record.line,
        fields: &r.record.values,
        state: state_name(r.record.state),
        variant: r.record.variant,
        attempts: r.record.attempts,
        first_attempt: r.record.first_attempt,
        next_attempt: r.record.next_attempt,
        last_reply: r.record.last_reply.as_ref(),
    }
}

impl CampaignImport for PgImport<'_> {
    fn write(&mut self, chunk: DumpChunk) -> Result<(), StoreError> {
        match &chunk {
            DumpChunk::Recipients(rows) => {
                let rows: Vec<_> = rows.iter().map(recipient).collect();
                self.rows("store the recipients", RECIPIENTS, &rows)
            }
            DumpChunk::Attempts(rows) => {
                let rows: Vec<_> = rows
                    .iter()
                    .map(|a| AttemptRow {
                        at: a.at,
                        seq: a.key.seq,
                        state: state_name(a.state),
                        reply: a.reply.as_ref(),
                    })
                    .collect();
                self.rows("store the attempt log", ATTEMPTS, &rows)
            }
            DumpChunk::Reports(rows) => self.rows("store the late reports", REPORTS, rows),
            DumpChunk::Tracking(rows) => self.rows("store the tracking events", TRACKING, rows),
            DumpChunk::Engagement(rows) => {
                let rows: Vec<_> = rows
                    .iter()
                    .map(|g| {
                        serde_json::json!({
                            "seq": g.seq, "opened": g.opened, "clicked": g.clicked,
                            "unsubscribed": g.unsubscribed, "first_click_at": g.first_click_at,
                            "last_click_at": g.last_click_at, "last_link": g.last_link,
                        })
                    })
                    .collect();
                self.rows("store the engagement", ENGAGEMENT, &rows)
            }
            DumpChunk::Messages(rows) => {
                let rows: Vec<_> = rows
                    .iter()
                    .map(|(id, key)| serde_json::json!({ "id": id, "key": key }))
                    .collect();
                self.rows("store the Message-ID index", MESSAGES, &rows)
            }
        }
    }

    fn finish(self: Box<Self>) -> Result<Counts, StoreError> {
        let this = *self;
        let engine = this.engine;
        let what = format!("finish copying campaign {}", this.campaign);
        engine.run(async {
            let failed = |e| engine.failed(&what, e);
            let mut tx = engine.store.pool().begin().await.map_err(failed)?;
            sqlx::query(
                "INSERT INTO state_counts (campaign, variant, state, recipients) \
                 SELECT campaign, variant, state, count(*) FROM recipients \
                 WHERE campaign = $1 GROUP BY campaign, variant, state",
            )
            .bind(this.number)
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
            sqlx::query(
                "UPDATE campaigns SET loaded = true, invalid = $2, duplicate = $3 \
                 WHERE number = $1",
            )
            .bind(this.number)
            .bind(millis(this.invalid))
            .bind(millis(this.duplicate))
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
            tx.commit().await.map_err(failed)?;
            engine.read_counts(this.number).await
        })
    }
}

impl PgEngine {
    /// Inserts the campaign row and makes its partitions; returns its number.
    async fn insert_campaign(&self, header: &CampaignHeader) -> Result<i32, PgStoreError> {
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
        sqlx::query(
            "SELECT setval(pg_get_serial_sequence('campaigns', 'number'), \
             (SELECT max(number) FROM campaigns))",
        )
        .execute(&mut *tx)
        .await
        .map_err(failed)?;
        sqlx::query("SELECT create_campaign_partitions($1)")
            .bind(number)
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
        // The number is an integer the database handed out: safe to write into the name.
        let partition = format!(
            "CREATE TABLE recipients_{number} PARTITION OF recipients FOR VALUES IN ({number})"
        );
        sqlx::query(sqlx::AssertSqlSafe(partition))
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
        for (variant, counts) in &header.track_counts {
            sqlx::query(TRACK_COUNTS)
                .bind(number)
                .bind(i16::from(*variant))
                .bind(track_counts(counts))
                .execute(&mut *tx)
                .await
                .map_err(failed)?;
        }
        tx.commit().await.map_err(failed)?;
        Ok(number)
    }
}
