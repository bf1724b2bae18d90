//! Late reports on PostgreSQL: finding a delivered message's recipient by Message-ID, and
//! remembering which reports were ingested. Applying a report (and reading the late-report
//! events) is not built yet and says so.

use super::engine::PgEngine;
use crate::model::{Millis, ReplyRecord};
use crate::store::api::ReportStore;
use crate::store::{
    BounceEvent, EventKind, MessageRef, OutcomePolicy, RecipientKey, ReportEffect, StoreError,
};
use std::collections::HashMap;

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
}

impl ReportStore for PgEngine {
    fn apply_report(
        &self,
        _reference: &MessageRef,
        _kind: EventKind,
        _reply: ReplyRecord,
        _source: &str,
        _policy: &OutcomePolicy,
        _now: Millis,
    ) -> Result<(ReportEffect, Option<String>), StoreError> {
        self.unsupported("apply_report")
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

    fn events(&self, _campaign: &str) -> Result<Vec<BounceEvent>, StoreError> {
        self.unsupported("events")
    }

    fn complaints_by_variant(&self, _campaign: &str) -> Result<HashMap<u8, u64>, StoreError> {
        self.unsupported("complaints_by_variant")
    }
}
