//! A campaign's history for export (`volley events`) on PostgreSQL: the attempt log, the late
//! reports and the tracking events merged by time, and the same counted for reports.
//!
//! The export is one statement read through a cursor a page at a time (in a read-only
//! transaction of its own): the three partitions merged, joined to the recipients once (a
//! hash join, not a million index lookups) and sorted in the database, so memory stays flat
//! here however long the history. Events at the same millisecond come as delivery outcomes,
//! then reports, then tracking (as on sled).

use super::engine::{millis, ms, Detached, PgEngine};
use super::load::parse_state;
use super::reports::parse_kind as report_kind;
use super::track_reads::{parse_kind as track_kind, parse_machine};
use super::PgStoreError;
use crate::model::{Category, Millis, ReplyRecord};
use crate::store::{EventKind, EventTally, ExportEvent, ExportKind, StoreError, TrackKind};
use sqlx::postgres::PgRow;
use sqlx::Row;
use std::collections::VecDeque;

/// Events read per `FETCH` ([`FETCH`] says the same number).
const PAGE: usize = 5_000;
/// The next page of the cursor.
const FETCH: &str = "FETCH 5000 FROM volley_events";

/// The cursor over the merged history of campaign `{number}` from `{since}` (epoch ms); the
/// planner is told the whole result is wanted (`cursor_tuple_fraction`), so it joins and
/// sorts in bulk.
fn cursor_sql(number: i32, since: i64) -> String {
    let at = |table: &str| {
        format!("{table}.at >= timestamptz 'epoch' + {since}::int8 * interval '1 millisecond'")
    };
    format!(
        "DECLARE volley_events NO SCROLL CURSOR FOR \
         SELECT e.at_ms, e.src, e.id, e.kind, e.reply, e.link, e.machine, \
         coalesce(e.address, r.email, ''), coalesce(e.variant, r.variant) FROM (\
         SELECT {a_ms} AS at_ms, 0::int2 AS src, a.id, a.seq, a.state::text AS kind, \
         a.reply::text AS reply, NULL::int2 AS link, NULL::text AS machine, \
         NULL::text AS address, NULL::int2 AS variant \
         FROM attempts a WHERE a.campaign = {number} AND {a_at} UNION ALL \
         SELECT {b_ms}, 1::int2, b.id, b.seq, b.kind::text, b.reply::text, NULL, NULL, \
         b.address, NULL FROM report_events b WHERE b.campaign = {number} AND {b_at} UNION ALL \
         SELECT {t_ms}, 2::int2, t.id, t.seq, t.kind::text, NULL, t.link, t.machine, NULL, \
         t.variant FROM track_events t WHERE t.campaign = {number} AND {t_at}\
         ) e LEFT JOIN recipients r ON r.campaign = {number} AND r.seq = e.seq \
         ORDER BY e.at_ms, e.src, e.id",
        a_ms = ms!("a.at"),
        b_ms = ms!("b.at"),
        t_ms = ms!("t.at"),
        a_at = at("a"),
        b_at = at("b"),
        t_at = at("t"),
    )
}

/// A campaign's events counted per minute, source, kind, variant (where it counts),
/// category and machine, in the database (see [`crate::store::EventTally`]).
const TALLY_SQL: &str = concat!(
    "SELECT e.ms / 60000, e.src, e.kind, e.variant, e.category, e.machine, count(*) FROM (",
    "SELECT ",
    ms!("a.at"),
    " AS ms, 0::int2 AS src, a.state::text AS kind, NULL::int2 AS variant, ",
    "(a.reply -> 'category')::text AS category, false AS machine ",
    "FROM attempts a WHERE a.campaign = $1 UNION ALL ",
    "SELECT ",
    ms!("b.at"),
    ", 1::int2, b.kind::text, CASE WHEN b.kind = 'complaint' THEN b.variant END, ",
    "(b.reply -> 'category')::text, false FROM report_events b WHERE b.campaign = $1 ",
    "UNION ALL SELECT ",
    ms!("t.at"),
    ", 2::int2, t.kind::text, t.variant, NULL, t.machine IS NOT NULL ",
    "FROM track_events t WHERE t.campaign = $1",
    ") e GROUP BY 1, 2, 3, 4, 5, 6"
);

impl PgEngine {
    /// See [`crate::store::api::HistoryStore::event_tallies`]: one `GROUP BY` over the
    /// campaign's three event partitions.
    pub(super) async fn read_tallies(&self, number: i32) -> Result<Vec<EventTally>, PgStoreError> {
        let rows = sqlx::query(TALLY_SQL)
            .bind(number)
            .fetch_all(self.store.pool())
            .await
            .map_err(|e| self.failed("count the event history", e))?;
        rows.iter()
            .map(|row| {
                let kind: String = row.get(2);
                let kind = export_kind(row.get(1), &kind)
                    .ok_or_else(|| self.damaged(format!("event: kind {kind:?}")))?;
                let category: Option<String> = row.get(4);
                let category = match category {
                    Some(text) => serde_json::from_str::<Option<Category>>(&text)
                        .map_err(|_| self.damaged("event: unreadable reply category"))?,
                    None => None,
                };
                Ok(EventTally {
                    minute: u64::try_from(row.get::<i64, _>(0)).unwrap_or(0),
                    kind,
                    variant: row
                        .get::<Option<i16>, _>(3)
                        .and_then(|v| u8::try_from(v).ok()),
                    category,
                    machine: row.get(5),
                    count: u64::try_from(row.get::<i64, _>(6)).unwrap_or(0),
                })
            })
            .collect()
    }
}

/// The kind of an event read from source `src` (0 the attempt log, 1 late reports, 2
/// tracking) by its name there.
fn export_kind(src: i16, kind: &str) -> Option<ExportKind> {
    Some(match src {
        0 => ExportKind::from_state(parse_state(kind)?),
        1 => match report_kind(kind)? {
            EventKind::Bounce => ExportKind::Bounced,
            EventKind::Delay => ExportKind::Deferred,
            EventKind::Complaint => ExportKind::Complaint,
        },
        _ => match track_kind(kind)? {
            TrackKind::Open => ExportKind::Open,
            TrackKind::Click => ExportKind::Click,
            TrackKind::Unsubscribe => ExportKind::Unsubscribe,
        },
    })
}

/// The merged history of one campaign, oldest first, from PostgreSQL. A failed read is
/// yielded once and ends the stream.
pub(super) struct PgEvents {
    db: Detached,
    number: i32,
    since: Millis,
    links: Vec<String>,
    /// The transaction holding the cursor, once the first page was asked for.
    cursor: Option<sqlx::Transaction<'static, sqlx::Postgres>>,
    page: VecDeque<Result<ExportEvent, StoreError>>,
    done: bool,
}

impl PgEngine {
    /// The history of campaign `number` from `since` on.
    pub(super) fn history(&self, number: i32, links: Vec<String>, since: Millis) -> PgEvents {
        PgEvents {
            db: self.detached(),
            number,
            since,
            links,
            cursor: None,
            page: VecDeque::new(),
            done: false,
        }
    }
}

impl PgEvents {
    /// Reads the next page into `page`; marks the end (and closes the cursor) when it is
    /// short.
    fn fetch(&mut self) {
        let store = &self.db.store;
        let cursor = &mut self.cursor;
        let declare = cursor_sql(self.number, millis(self.since));
        let rows = self.db.run(async move {
            let failed = |e| store.query_error("read the event history", e);
            if cursor.is_none() {
                let mut tx = store.pool().begin().await.map_err(failed)?;
                for setting in [
                    "SET TRANSACTION READ ONLY",
                    "SET LOCAL cursor_tuple_fraction = 1",
                ] {
                    sqlx::query(setting)
                        .execute(&mut *tx)
                        .await
                        .map_err(failed)?;
                }
                // Audited: the only values in it are two integers, formatted as such.
                sqlx::query(sqlx::AssertSqlSafe(declare))
                    .persistent(false)
                    .execute(&mut *tx)
                    .await
                    .map_err(failed)?;
                *cursor = Some(tx);
            }
            match cursor.as_mut() {
                Some(tx) => sqlx::query(FETCH)
                    .fetch_all(&mut **tx)
                    .await
                    .map_err(failed),
                None => Ok(Vec::new()),
            }
        });
        let rows = match rows {
            Ok(rows) => rows,
            Err(error) => {
                self.page.push_back(Err(error));
                self.done = true;
                self.close();
                return;
            }
        };
        self.done = rows.len() < PAGE;
        for row in &rows {
            let event = self.decode(row).map_err(|e| self.db.fail(e));
            self.page.push_back(event);
        }
        if self.done {
            self.close();
        }
    }

    /// Ends the cursor's transaction (on the engine's runtime: the connection goes back to
    /// the pool from there).
    fn close(&mut self) {
        if let Some(tx) = self.cursor.take() {
            let store = &self.db.store;
            let _ = self.db.run(async move {
                tx.rollback()
                    .await
                    .map_err(|e| store.query_error("end the event history read", e))
            });
        }
    }

    /// One row of the page as an event.
    fn decode(&self, row: &PgRow) -> Result<ExportEvent, PgStoreError> {
        let source: i16 = row.get(1);
        let kind: String = row.get(3);
        let reply: Option<String> = row.get(4);
        let reply = match reply {
            Some(text) => serde_json::from_str::<Option<ReplyRecord>>(&text)
                .map_err(|_| self.db.damaged("event: unreadable reply"))?,
            None => None,
        };
        let kind = export_kind(source, &kind)
            .ok_or_else(|| self.db.damaged(format!("event: kind {kind:?}")))?;
        let link = row
            .get::<Option<i16>, _>(5)
            .and_then(|l| u16::try_from(l).ok());
        let machine: Option<String> = row.get(6);
        Ok(ExportEvent {
            at: u64::try_from(row.get::<i64, _>(0)).unwrap_or(0),
            kind,
            recipient: row.get(7),
            variant: row
                .get::<Option<i16>, _>(8)
                .and_then(|v| u8::try_from(v).ok()),
            machine: machine.as_deref().and_then(parse_machine),
            link,
            url: link.and_then(|i| self.links.get(usize::from(i))).cloned(),
            reply,
        })
    }
}

impl Drop for PgEvents {
    /// A reader dropped before the end closes its cursor.
    fn drop(&mut self) {
        self.close();
    }
}

impl Iterator for PgEvents {
    type Item = Result<ExportEvent, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.page.is_empty() && !self.done {
            self.fetch();
        }
        self.page.pop_front()
    }
}
