//! Late reports on PostgreSQL: finding a delivered message's recipient by Message-ID,
//! remembering which reports were ingested, and applying a report (bounce, delay,
//! complaint) to its recipient with its `report_events` row in one transaction, by the same
//! rules as the sled engine.

use super::engine::{millis, ms, ts, PgEngine};
use super::outcomes::{json, shift_counts, suppress, CountDeltas};
use super::queue::{decode, select, state_name, to_i64};
use super::PgStoreError;
use crate::model::{Millis, RecipientState, ReplyRecord};
use crate::store::api::ReportStore;
use crate::store::{
    BounceEvent, EventKind, MessageRef, OutcomePolicy, RecipientKey, ReportEffect, StoreError,
};
use sqlx::Row;
use std::collections::HashMap;

/// One late report to apply, as the interface passes it.
struct Report<'a> {
    reference: &'a MessageRef,
    kind: EventKind,
    reply: &'a ReplyRecord,
    source: &'a str,
    policy: &'a OutcomePolicy,
    now: Millis,
}

/// The name the schema's `report_kind` gives a kind of report.
fn kind_name(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Bounce => "bounce",
        EventKind::Delay => "delay",
        EventKind::Complaint => "complaint",
    }
}

/// A `report_kind` read back.
pub(super) fn parse_kind(text: &str) -> Option<EventKind> {
    Some(match text {
        "bounce" => EventKind::Bounce,
        "delay" => EventKind::Delay,
        "complaint" => EventKind::Complaint,
        _ => return None,
    })
}

/// The report's row in `report_events`.
const INSERT_EVENT: &str = concat!(
    "INSERT INTO report_events (campaign, at, kind, seq, variant, address, reply, source) ",
    "VALUES ($1, ",
    ts!(2),
    ", $3::text::report_kind, $4, $5, $6, $7::jsonb, $8)"
);

/// A campaign's late reports, oldest first, with the recipient's domain.
const SELECT_EVENTS: &str = concat!(
    "SELECT ",
    ms!("e.at"),
    ", e.kind::text, e.seq, coalesce(r.domain, split_part(e.address, '@', 2)), e.address, ",
    "e.reply::text, e.source FROM report_events e ",
    "LEFT JOIN recipients r ON r.campaign = e.campaign AND r.seq = e.seq ",
    "WHERE e.campaign = $1 ORDER BY e.at, e.id"
);

/// Writes the report's row in `report_events`.
async fn insert_event(
    conn: &mut sqlx::PgConnection,
    number: i32,
    report: &Report<'_>,
    (variant, address): (u8, &str),
) -> Result<(), sqlx::Error> {
    sqlx::query(INSERT_EVENT)
        .bind(number)
        .bind(millis(report.now))
        .bind(kind_name(report.kind))
        .bind(to_i64(report.reference.key.seq))
        .bind(i16::from(variant))
        .bind(address)
        .bind(json(report.reply))
        .bind(report.source)
        .execute(conn)
        .await
        .map(|_| ())
}

impl PgEngine {
    /// See [`crate::store::api::OutcomeStore::message`]: the `messages` index (only
    /// Message-IDs that do not name their recipient themselves are in it, as on sled).
    pub(super) fn find_message(&self, message_id: &str) -> Result<Option<MessageRef>, StoreError> {
        let row: Option<(String, String, i64)> = self.run(async {
            sqlx::query_as(
                "SELECT c.id, r.domain, m.seq FROM messages m \
                 JOIN campaigns c ON c.number = m.campaign \
                 JOIN recipients r ON r.campaign = m.campaign AND r.seq = m.seq \
                 WHERE m.message_id = $1",
            )
            .bind(message_id)
            .fetch_optional(self.store.pool())
            .await
            .map_err(|e| self.failed("find a message", e))
        })?;
        Ok(row.map(|(campaign, domain, seq)| MessageRef {
            campaign,
            key: RecipientKey {
                domain,
                seq: u64::try_from(seq).unwrap_or(0),
            },
        }))
    }

    /// See [`ReportStore::apply_report`]: the recipient is locked, changed, its counters
    /// shifted and the event written, all in one transaction.
    async fn report(
        &self,
        number: i32,
        report: &Report<'_>,
    ) -> Result<(ReportEffect, Option<String>), PgStoreError> {
        let campaign = report.reference.campaign.as_str();
        let what = format!("apply a report to campaign {campaign}");
        let fail = |e| self.failed(&what, e);
        let mut tx = self.store.pool().begin().await.map_err(fail)?;
        let row = sqlx::query(select!("AND seq = $2 AND domain = $3 FOR UPDATE"))
            .bind(number)
            .bind(to_i64(report.reference.key.seq))
            .bind(&report.reference.key.domain)
            .fetch_optional(&mut *tx)
            .await
            .map_err(fail)?;
        let Some(row) = row else {
            return Ok((ReportEffect::Unchanged, None));
        };
        let record = decode(self, &row)?.record;
        let address = record.email.clone();
        let detail = report.reply.to_string();
        let effect = match report.kind {
            EventKind::Delay => ReportEffect::Delayed,
            EventKind::Complaint => {
                suppress(
                    &mut tx,
                    &address,
                    "complaint",
                    campaign,
                    &detail,
                    report.now,
                )
                .await
                .map_err(fail)?;
                ReportEffect::Complained
            }
            EventKind::Bounce if record.state == RecipientState::Bounced => {
                return Ok((ReportEffect::Unchanged, Some(address)));
            }
            EventKind::Bounce => {
                let bounce = (record.variant, record.state, address.as_str());
                self.bounce(&mut tx, (number, campaign), bounce, report)
                    .await
                    .map_err(fail)?;
                ReportEffect::Bounced
            }
        };
        insert_event(&mut tx, number, report, (record.variant, &address))
            .await
            .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        Ok((effect, Some(address)))
    }

    /// Moves a (locked) recipient to `bounced` with its counters, and notes the failure on
    /// the suppression list.
    async fn bounce(
        &self,
        conn: &mut sqlx::PgConnection,
        (number, campaign): (i32, &str),
        (variant, from, address): (u8, RecipientState, &str),
        report: &Report<'_>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE recipients SET state = 'bounced', next_attempt = NULL, \
             last_reply = $3::jsonb WHERE campaign = $1 AND seq = $2",
        )
        .bind(number)
        .bind(to_i64(report.reference.key.seq))
        .bind(json(report.reply))
        .execute(&mut *conn)
        .await?;
        let mut deltas = CountDeltas::new();
        let variant = i16::from(variant);
        *deltas.entry((variant, state_name(from))).or_default() -= 1;
        *deltas.entry((variant, "bounced")).or_default() += 1;
        shift_counts(&mut *conn, number, &deltas).await?;
        let suppression = &report.policy.suppression;
        self.note_failure(
            conn,
            campaign,
            address,
            report.reply,
            suppression,
            report.now,
        )
        .await
    }

    /// See [`ReportStore::events`].
    async fn read_events(&self, number: i32) -> Result<Vec<BounceEvent>, PgStoreError> {
        let rows = sqlx::query(SELECT_EVENTS)
            .bind(number)
            .fetch_all(self.store.pool())
            .await
            .map_err(|e| self.failed("read the late reports", e))?;
        rows.iter()
            .map(|row| {
                let kind: String = row.get(1);
                let reply: String = row.get(5);
                Ok(BounceEvent {
                    at: u64::try_from(row.get::<i64, _>(0)).unwrap_or(0),
                    kind: parse_kind(&kind)
                        .ok_or_else(|| self.damaged(format!("report event: kind {kind:?}")))?,
                    key: RecipientKey {
                        domain: row.get(3),
                        seq: u64::try_from(row.get::<i64, _>(2)).unwrap_or(0),
                    },
                    address: row.get(4),
                    reply: serde_json::from_str(&reply)
                        .map_err(|_| self.damaged("report event: unreadable reply"))?,
                    source: row.get(6),
                })
            })
            .collect()
    }
}

impl ReportStore for PgEngine {
    fn apply_report(
        &self,
        reference: &MessageRef,
        kind: EventKind,
        reply: ReplyRecord,
        source: &str,
        policy: &OutcomePolicy,
        now: Millis,
    ) -> Result<(ReportEffect, Option<String>), StoreError> {
        let Some(number) = self.run(self.number(&reference.campaign))? else {
            return Ok((ReportEffect::Unchanged, None));
        };
        let report = Report {
            reference,
            kind,
            reply: &reply,
            source,
            policy,
            now,
        };
        self.run(self.report(number, &report))
    }

    fn is_ingested(&self, fingerprint: &[u8]) -> Result<bool, StoreError> {
        self.run(async {
            sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM ingested_reports WHERE fingerprint = $1)",
            )
            .bind(fingerprint)
            .fetch_one(self.store.pool())
            .await
            .map_err(|e| self.failed("look up an ingested report", e))
        })
    }

    fn mark_ingested(&self, fingerprint: &[u8]) -> Result<(), StoreError> {
        self.run(async {
            sqlx::query(
                "INSERT INTO ingested_reports (fingerprint) VALUES ($1) \
                 ON CONFLICT (fingerprint) DO NOTHING",
            )
            .bind(fingerprint)
            .execute(self.store.pool())
            .await
            .map(|_| ())
            .map_err(|e| self.failed("remember an ingested report", e))
        })
    }

    fn events(&self, campaign: &str) -> Result<Vec<BounceEvent>, StoreError> {
        match self.run(self.number(campaign))? {
            Some(number) => self.run(self.read_events(number)),
            None => Ok(Vec::new()),
        }
    }

    fn complaints_by_variant(&self, campaign: &str) -> Result<HashMap<u8, u64>, StoreError> {
        let Some(number) = self.run(self.number(campaign))? else {
            return Ok(HashMap::new());
        };
        let rows: Vec<(i16, i64)> = self.run(async {
            sqlx::query_as(
                "SELECT coalesce(r.variant, 0::int2), count(*) FROM report_events e \
                 LEFT JOIN recipients r ON r.campaign = e.campaign AND r.seq = e.seq \
                 WHERE e.campaign = $1 AND e.kind = 'complaint' GROUP BY 1",
            )
            .bind(number)
            .fetch_all(self.store.pool())
            .await
            .map_err(|e| self.failed("count the complaints", e))
        })?;
        Ok(rows
            .into_iter()
            .map(|(variant, n)| {
                (
                    u8::try_from(variant).unwrap_or(0),
                    u64::try_from(n).unwrap_or(0),
                )
            })
            .collect())
    }
}
