//! A campaign's history for export (`volley events`) on PostgreSQL: the attempt log, the late
//! reports and the tracking events merged by time, read a page at a time.
//!
//! Each page is one statement: the next rows of each of the three partitions in `(at, id)`
//! order (an index range scan each), merged and cut to the page size. The position is kept
//! as (time, source, id) of the last row read, so memory stays flat however long the
//! history, and events at the same millisecond come as delivery outcomes, then reports,
//! then tracking (as on sled).

use super::engine::{millis, ms, ts, Detached, PgEngine};
use super::load::parse_state;
use super::reports::parse_kind as report_kind;
use super::track_reads::{parse_kind as track_kind, parse_machine};
use super::PgStoreError;
use crate::model::{Millis, ReplyRecord};
use crate::store::{EventKind, ExportEvent, ExportKind, StoreError, TrackKind};
use sqlx::postgres::PgRow;
use sqlx::Row;
use std::collections::VecDeque;

/// Events read per statement.
const PAGE: i64 = 1_000;

/// One page of the merged history after a position. `$2` is the time of the position; `$3`,
/// `$4`, `$5` the id each source resumes after at that very time (0: from that time on,
/// `i64::MAX`: after it).
const PAGE_SQL: &str = concat!(
    "SELECT e.at_ms, e.src, e.id, e.kind, e.reply, e.link, e.machine, ",
    "coalesce(e.address, r.email, ''), coalesce(e.variant, r.variant) FROM (",
    "(SELECT ",
    ms!("a.at"),
    " AS at_ms, 0::int2 AS src, a.id, a.seq, a.state::text AS kind, a.reply::text AS reply, ",
    "NULL::int2 AS link, NULL::text AS machine, NULL::text AS address, NULL::int2 AS variant ",
    "FROM attempts a WHERE a.campaign = $1 AND (a.at, a.id) > (",
    ts!(2),
    ", $3) ORDER BY a.at, a.id LIMIT $6) UNION ALL ",
    "(SELECT ",
    ms!("b.at"),
    ", 1::int2, b.id, b.seq, b.kind::text, b.reply::text, NULL, NULL, b.address, NULL ",
    "FROM report_events b WHERE b.campaign = $1 AND (b.at, b.id) > (",
    ts!(2),
    ", $4) ORDER BY b.at, b.id LIMIT $6) UNION ALL ",
    "(SELECT ",
    ms!("t.at"),
    ", 2::int2, t.id, t.seq, t.kind::text, NULL, t.link, t.machine, NULL, t.variant ",
    "FROM track_events t WHERE t.campaign = $1 AND (t.at, t.id) > (",
    ts!(2),
    ", $5) ORDER BY t.at, t.id LIMIT $6)",
    ") e LEFT JOIN recipients r ON r.campaign = $1 AND r.seq = e.seq ",
    "ORDER BY e.at_ms, e.src, e.id LIMIT $6"
);

/// The merged history of one campaign, oldest first, from PostgreSQL. A failed read is
/// yielded once and ends the stream.
pub(super) struct PgEvents {
    db: Detached,
    number: i32,
    links: Vec<String>,
    /// The last row read: time, source (-1 before the first), id.
    after: (Millis, i16, i64),
    page: VecDeque<Result<ExportEvent, StoreError>>,
    done: bool,
}

impl PgEngine {
    /// The history of campaign `number` from `since` on.
    pub(super) fn history(&self, number: i32, links: Vec<String>, since: Millis) -> PgEvents {
        PgEvents {
            db: self.detached(),
            number,
            links,
            after: (since, -1, 0),
            page: VecDeque::new(),
            done: false,
        }
    }
}

impl PgEvents {
    /// Reads the next page into `page`; marks the end when it is short.
    fn fetch(&mut self) {
        let (at, src, id) = self.after;
        // Per source: past the last id at that time (same source), all of that time (a
        // later source), or only later times (an earlier source).
        let bound = |source: i16| match source.cmp(&src) {
            std::cmp::Ordering::Less => i64::MAX,
            std::cmp::Ordering::Equal => id,
            std::cmp::Ordering::Greater => 0,
        };
        let store = &self.db.store;
        let rows = self.db.run(async {
            sqlx::query(PAGE_SQL)
                .bind(self.number)
                .bind(millis(at))
                .bind(bound(0))
                .bind(bound(1))
                .bind(bound(2))
                .bind(PAGE)
                .fetch_all(store.pool())
                .await
                .map_err(|e| store.query_error("read the event history", e))
        });
        let rows = match rows {
            Ok(rows) => rows,
            Err(error) => {
                self.page.push_back(Err(error));
                self.done = true;
                return;
            }
        };
        self.done = i64::try_from(rows.len()).unwrap_or(0) < PAGE;
        for row in &rows {
            self.after = (
                u64::try_from(row.get::<i64, _>(0)).unwrap_or(0),
                row.get(1),
                row.get(2),
            );
            let event = self.decode(row).map_err(|e| self.db.fail(e));
            self.page.push_back(event);
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
        let damaged = || self.db.damaged(format!("event: kind {kind:?}"));
        let kind = match source {
            0 => ExportKind::from_state(parse_state(&kind).ok_or_else(damaged)?),
            1 => match report_kind(&kind).ok_or_else(damaged)? {
                EventKind::Bounce => ExportKind::Bounced,
                EventKind::Delay => ExportKind::Deferred,
                EventKind::Complaint => ExportKind::Complaint,
            },
            _ => match track_kind(&kind).ok_or_else(damaged)? {
                TrackKind::Open => ExportKind::Open,
                TrackKind::Click => ExportKind::Click,
                TrackKind::Unsubscribe => ExportKind::Unsubscribe,
            },
        };
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

impl Iterator for PgEvents {
    type Item = Result<ExportEvent, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.page.is_empty() && !self.done {
            self.fetch();
        }
        self.page.pop_front()
    }
}
