//! `volley store copy` on PostgreSQL, the reading side: a campaign read page by page (keyset
//! pagination, one round trip per chunk of rows, each page one JSON array built by the
//! database) and the store-wide parts. Memory stays flat: one chunk is held at a time. The
//! writing side is `transfer_import.rs`.

use super::engine::{ms, PgEngine};
use super::queue::{decode, select, to_i64};
use super::PgStoreError;
use crate::model::{ReplyRecord, TrackCounts};
use crate::store::api::{CampaignStore, SuppressionStore, TransferStore};
use crate::store::transfer::{
    AttemptEntry, CampaignHeader, CampaignImport, ChunkSink, DumpChunk, EngagementEntry,
    SoftBounceEntry, StoreWide, CHUNK_ROWS,
};
use crate::store::{
    AbRecord, BounceEvent, ExportMark, RecipientKey, StoreError, TrackEvent, TrackingMeta,
};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use sqlx::Row;

/// A row of a page and its place in the keyset order.
#[derive(Deserialize)]
struct Keyed<T> {
    k1: i64,
    k2: i64,
    #[serde(flatten)]
    row: T,
}

/// An attempt-log row as a page has it (the state by name).
#[derive(Deserialize)]
struct AttemptRow {
    at: u64,
    key: RecipientKey,
    state: String,
    reply: Option<ReplyRecord>,
}

/// An engagement row as a page has it.
#[derive(Deserialize)]
struct EngagementRow {
    seq: u64,
    opened: bool,
    clicked: bool,
    unsubscribed: bool,
    first_click_at: u64,
    last_click_at: u64,
    last_link: u16,
}

/// A Message-ID index row as a page has it.
#[derive(Deserialize)]
struct MessageRow {
    id: String,
    key: RecipientKey,
}

/// Epoch milliseconds of a `timestamptz` expression, in SQL.
macro_rules! epoch_ms {
    ($e:literal) => {
        concat!("floor(extract(epoch FROM ", $e, ") * 1000)::int8")
    };
}

/// A page of `table` (a time-ordered event partition) after keyset `($2, $3)`, as a JSON
/// array of objects with `$fields` besides time and recipient (the row is `x`).
macro_rules! timed_page {
    ($table:literal, $fields:literal) => {
        concat!(
            "SELECT coalesce(jsonb_agg(jsonb_build_object('k1', x.atms, 'k2', x.id, ",
            "'at', x.atms, 'key', jsonb_build_object('domain', coalesce(r.domain, ''), ",
            "'seq', x.seq), ",
            $fields,
            ") ORDER BY x.at, x.id), '[]'::jsonb)::text FROM (SELECT t.*, ",
            epoch_ms!("t.at"),
            " AS atms FROM ",
            $table,
            " t WHERE t.campaign = $1 AND (t.at, t.id) > ",
            "(timestamptz 'epoch' + $2::int8 * interval '1 millisecond', $3::int8) ",
            "ORDER BY t.at, t.id LIMIT $4) x ",
            "LEFT JOIN recipients r ON r.campaign = x.campaign AND r.seq = x.seq"
        )
    };
}

const ATTEMPTS: &str = timed_page!("attempts", "'state', x.state::text, 'reply', x.reply");
const REPORTS: &str = timed_page!(
    "report_events",
    "'kind', x.kind::text, 'address', x.address, 'reply', x.reply, 'source', x.source"
);
const TRACKING: &str = timed_page!(
    "track_events",
    "'kind', x.kind::text, 'variant', x.variant, 'link', x.link, 'machine', x.machine"
);
const ENGAGEMENT: &str = concat!(
    "SELECT coalesce(jsonb_agg(jsonb_build_object('k1', g.seq, 'k2', 0, 'seq', g.seq, ",
    "'opened', g.opened, 'clicked', g.clicked, 'unsubscribed', g.unsubscribed, ",
    "'first_click_at', coalesce(",
    epoch_ms!("g.first_click_at"),
    ", 0), 'last_click_at', coalesce(",
    epoch_ms!("g.last_click_at"),
    ", 0), 'last_link', coalesce(g.last_link, 0)) ORDER BY g.seq), '[]'::jsonb)::text ",
    "FROM (SELECT * FROM engagement WHERE campaign = $1 ",
    "AND (seq, 0::int8) > ($2::int8, $3::int8) ORDER BY seq LIMIT $4) g"
);
const MESSAGES: &str = concat!(
    "SELECT coalesce(jsonb_agg(jsonb_build_object('id', m.message_id, ",
    "'key', jsonb_build_object('domain', coalesce(r.domain, ''), 'seq', m.seq)) ",
    "ORDER BY m.message_id), '[]'::jsonb)::text FROM (SELECT * FROM messages ",
    "WHERE campaign = $1 AND message_id > $2 ORDER BY message_id LIMIT $3) m ",
    "LEFT JOIN recipients r ON r.campaign = m.campaign AND r.seq = m.seq"
);

/// Rows per page, as SQL binds it.
const PAGE: i64 = CHUNK_ROWS as i64;

impl PgEngine {
    /// One page of a keyset-paginated query returning a JSON array.
    fn page<T: DeserializeOwned>(
        &self,
        what: &str,
        sql: &'static str,
        number: i32,
        after: (i64, i64),
    ) -> Result<Vec<Keyed<T>>, StoreError> {
        let text: String = self.run(async {
            sqlx::query_scalar(sql)
                .bind(number)
                .bind(after.0)
                .bind(after.1)
                .bind(PAGE)
                .fetch_one(self.store.pool())
                .await
                .map_err(|e| self.failed(what, e))
        })?;
        serde_json::from_str(&text).map_err(|e| self.unreadable(what, &e.to_string()))
    }

    /// Every page of `sql`, each passed to `sink` as the chunk `chunk` makes of it.
    fn pages<T: DeserializeOwned>(
        &self,
        what: &str,
        sql: &'static str,
        number: i32,
        sink: &mut ChunkSink<'_>,
        chunk: impl Fn(Vec<T>) -> Result<DumpChunk, StoreError>,
    ) -> Result<(), StoreError> {
        let mut after = (-1, 0);
        loop {
            let page: Vec<Keyed<T>> = self.page(what, sql, number, after)?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = (last.k1, last.k2);
            sink(chunk(page.into_iter().map(|k| k.row).collect())?)?;
        }
    }

    /// Rows that could not be read back.
    pub(super) fn unreadable(&self, what: &str, detail: &str) -> StoreError {
        StoreError::Transfer {
            path: self.path().to_owned(),
            detail: format!("could not {what}: unreadable rows ({detail})"),
        }
    }

    fn export_recipients(&self, number: i32, sink: &mut ChunkSink<'_>) -> Result<(), StoreError> {
        let sql = select!("AND seq > $2 ORDER BY seq LIMIT $3");
        let mut after = -1;
        loop {
            let page = self.run(async {
                let rows = sqlx::query(sql)
                    .bind(number)
                    .bind(after)
                    .bind(PAGE)
                    .fetch_all(self.store.pool())
                    .await
                    .map_err(|e| self.failed("read the recipients", e))?;
                rows.iter()
                    .map(|row| decode(self, row))
                    .collect::<Result<Vec<_>, _>>()
            })?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = to_i64(last.key.seq);
            sink(DumpChunk::Recipients(page))?;
        }
    }

    fn export_messages(&self, number: i32, sink: &mut ChunkSink<'_>) -> Result<(), StoreError> {
        let what = "read the Message-ID index";
        let mut after = String::new();
        loop {
            let text: String = self.run(async {
                sqlx::query_scalar(MESSAGES)
                    .bind(number)
                    .bind(&after)
                    .bind(PAGE)
                    .fetch_one(self.store.pool())
                    .await
                    .map_err(|e| self.failed(what, e))
            })?;
            let page: Vec<MessageRow> =
                serde_json::from_str(&text).map_err(|e| self.unreadable(what, &e.to_string()))?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = last.id.clone();
            let rows = page.into_iter().map(|m| (m.id, m.key)).collect();
            sink(DumpChunk::Messages(rows))?;
        }
    }

    /// The campaign row's parts a header carries besides its metadata and counters.
    async fn header_extras(&self, number: i32) -> Result<HeaderExtras, PgStoreError> {
        let what = "read the campaign";
        let sql = concat!(
            "SELECT tracking_links, tracking_key_fingerprint, ",
            epoch_ms!("ab_test_sent_at"),
            ", ab_decision::text, ",
            epoch_ms!("exported_through"),
            ", ",
            epoch_ms!("exported_at"),
            ", archive FROM campaigns WHERE number = $1"
        );
        let row = sqlx::query(sql)
            .bind(number)
            .fetch_one(self.store.pool())
            .await
            .map_err(|e| self.failed(what, e))?;
        let links: Option<Vec<String>> = row.get(0);
        let fingerprint: Option<String> = row.get(1);
        let decision = match row.get::<Option<String>, _>(3) {
            Some(text) => serde_json::from_str(&text).ok(),
            None => None,
        };
        let ms = |i: usize| {
            row.get::<Option<i64>, _>(i)
                .and_then(|n| u64::try_from(n).ok())
        };
        let track_counts = self.read_tracking_counts(number).await?;
        Ok(HeaderExtras {
            tracking: links.map(|links| TrackingMeta {
                links,
                key_fingerprint: fingerprint.unwrap_or_default(),
            }),
            track_counts,
            ab: AbRecord {
                test_sent_at: ms(2),
                decision,
            },
            export_mark: ms(4).map(|through| ExportMark {
                through,
                at: ms(5).unwrap_or(0),
            }),
            archive: row.get(6),
        })
    }
}

/// What [`PgEngine::header_extras`] reads.
struct HeaderExtras {
    tracking: Option<TrackingMeta>,
    track_counts: Vec<(u8, TrackCounts)>,
    ab: AbRecord,
    export_mark: Option<ExportMark>,
    archive: Option<Vec<u8>>,
}

fn attempt(row: AttemptRow) -> Option<AttemptEntry> {
    Some(AttemptEntry {
        at: row.at,
        key: row.key,
        state: super::load::parse_state(&row.state)?,
        reply: row.reply,
    })
}

fn engagement(g: EngagementRow) -> EngagementEntry {
    EngagementEntry {
        seq: g.seq,
        opened: g.opened,
        clicked: g.clicked,
        unsubscribed: g.unsubscribed,
        first_click_at: g.first_click_at,
        last_click_at: g.last_click_at,
        last_link: g.last_link,
    }
}

impl TransferStore for PgEngine {
    fn campaign_header(&self, campaign: &str) -> Result<Option<CampaignHeader>, StoreError> {
        let Some(meta) = self.campaign(campaign)? else {
            return Ok(None);
        };
        let number = self.known(campaign)?;
        let (counts, extras) = self.run(async {
            Ok((
                self.read_counts(number).await?,
                self.header_extras(number).await?,
            ))
        })?;
        Ok(Some(CampaignHeader {
            id: campaign.to_owned(),
            meta,
            counts,
            tracking: extras.tracking,
            view: self.read_view_meta(campaign)?,
            track_counts: extras.track_counts,
            ab: extras.ab,
            export_mark: extras.export_mark,
            archive: extras.archive,
            relays: self.read_relay_tallies(campaign)?,
        }))
    }

    fn export_campaign(&self, campaign: &str, sink: &mut ChunkSink<'_>) -> Result<(), StoreError> {
        let number = self.known(campaign)?;
        self.export_recipients(number, sink)?;
        let what = "read the attempt log";
        self.pages(what, ATTEMPTS, number, sink, |rows: Vec<AttemptRow>| {
            let rows: Option<Vec<_>> = rows.into_iter().map(attempt).collect();
            rows.map(DumpChunk::Attempts)
                .ok_or_else(|| self.unreadable(what, "unknown state"))
        })?;
        let reports = |rows: Vec<BounceEvent>| Ok(DumpChunk::Reports(rows));
        self.pages("read the late reports", REPORTS, number, sink, reports)?;
        let tracking = |rows: Vec<TrackEvent>| Ok(DumpChunk::Tracking(rows));
        self.pages("read the tracking events", TRACKING, number, sink, tracking)?;
        let engaged = |rows: Vec<EngagementRow>| {
            Ok(DumpChunk::Engagement(
                rows.into_iter().map(engagement).collect(),
            ))
        };
        self.pages("read the engagement", ENGAGEMENT, number, sink, engaged)?;
        self.export_messages(number, sink)
    }

    fn import_campaign(
        &self,
        header: &CampaignHeader,
    ) -> Result<Box<dyn CampaignImport + '_>, StoreError> {
        super::transfer_import::PgImport::start(self, header)
            .map(|import| Box::new(import) as Box<dyn CampaignImport>)
    }

    fn export_store_wide(&self) -> Result<StoreWide, StoreError> {
        let (secret, soft, relays, ingested) = self.run(self.read_store_wide())?;
        let to_u64 = |n: i64| u64::try_from(n).unwrap_or(0);
        Ok(StoreWide {
            secret: secret.and_then(|s| <[u8; 32]>::try_from(s.as_slice()).ok()),
            suppressions: self.suppressions()?,
            soft_bounces: soft
                .into_iter()
                .map(|(address, count, first_at)| SoftBounceEntry {
                    address,
                    count: u32::try_from(count).unwrap_or(0),
                    first_at: to_u64(first_at),
                })
                .collect(),
            connection_limits: self.read_connection_limits()?,
            destination_blocks: self.read_destination_blocks()?,
            relay_usage: relays
                .into_iter()
                .map(|(relay, minute, n)| (relay, to_u64(minute), u32::try_from(n).unwrap_or(0)))
                .collect(),
            ingested,
        })
    }

    fn import_store_wide(&self, parts: &StoreWide, secret: bool) -> Result<(), StoreError> {
        for (address, entry) in &parts.suppressions {
            self.suppress(address, entry)?;
        }
        for (name, messages) in &parts.connection_limits {
            self.put_connection_limit(name, *messages)?;
        }
        for block in &parts.destination_blocks {
            self.put_destination_block(block)?;
        }
        for (relay, minute, messages) in &parts.relay_usage {
            self.put_relay_usage(relay, &[(*minute, *messages)], 0)?;
        }
        self.run(self.write_store_wide(parts, secret))
    }
}

/// The store-wide rows [`PgEngine::read_store_wide`] reads: secret, soft bounces, relay
/// usage, ingested fingerprints.
type StoreWideRows = (
    Option<Vec<u8>>,
    Vec<(String, i32, i64)>,
    Vec<(String, i64, i32)>,
    Vec<Vec<u8>>,
);

impl PgEngine {
    async fn read_store_wide(&self) -> Result<StoreWideRows, PgStoreError> {
        let pool = self.store.pool();
        let failed = |e| self.failed("read the store-wide records", e);
        let secret = sqlx::query_scalar("SELECT secret FROM store_secret")
            .fetch_optional(pool)
            .await
            .map_err(failed)?;
        let soft = sqlx::query_as(concat!(
            "SELECT address, count, ",
            epoch_ms!("first_at"),
            " FROM soft_bounces ORDER BY address"
        ))
        .fetch_all(pool)
        .await
        .map_err(failed)?;
        let relays = sqlx::query_as(
            "SELECT relay, floor(extract(epoch FROM minute) / 60)::int8, messages \
             FROM relay_usage ORDER BY relay, minute",
        )
        .fetch_all(pool)
        .await
        .map_err(failed)?;
        let ingested =
            sqlx::query_scalar("SELECT fingerprint FROM ingested_reports ORDER BY fingerprint")
                .fetch_all(pool)
                .await
                .map_err(failed)?;
        Ok((secret, soft, relays, ingested))
    }

    async fn write_store_wide(&self, parts: &StoreWide, secret: bool) -> Result<(), PgStoreError> {
        let pool = self.store.pool();
        let failed = |e| self.failed("store the store-wide records", e);
        if let Some(value) = parts.secret.filter(|_| secret) {
            sqlx::query(
                "INSERT INTO store_secret (secret) VALUES ($1) \
                 ON CONFLICT (only_row) DO UPDATE SET secret = excluded.secret",
            )
            .bind(&value[..])
            .execute(pool)
            .await
            .map_err(failed)?;
        }
        let (addresses, counts, firsts): (Vec<&str>, Vec<i64>, Vec<i64>) = parts
            .soft_bounces
            .iter()
            .map(|s| (s.address.as_str(), i64::from(s.count), to_i64(s.first_at)))
            .fold((vec![], vec![], vec![]), |mut acc, (a, c, f)| {
                acc.0.push(a);
                acc.1.push(c);
                acc.2.push(f);
                acc
            });
        sqlx::query(
            "INSERT INTO soft_bounces (address, count, first_at) \
             SELECT u.a, least(u.c, 2147483647)::int4, \
             timestamptz 'epoch' + u.f * interval '1 millisecond' \
             FROM unnest($1::text[], $2::int8[], $3::int8[]) AS u(a, c, f) \
             ON CONFLICT (address) DO NOTHING",
        )
        .bind(&addresses)
        .bind(&counts)
        .bind(&firsts)
        .execute(pool)
        .await
        .map_err(failed)?;
        sqlx::query(
            "INSERT INTO ingested_reports (fingerprint) SELECT unnest($1::bytea[]) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&parts.ingested)
        .execute(pool)
        .await
        .map_err(failed)?;
        Ok(())
    }
}
