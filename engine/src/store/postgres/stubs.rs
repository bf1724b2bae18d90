//! The interface's traits on PostgreSQL: [`OutcomeStore`] (recording is in `outcomes.rs`,
//! Message-IDs in `reports.rs`),
//! and the concerns this slice does not implement yet, each method failing with
//! [`StoreError::Unsupported`] naming itself (never a panic, never a silent wrong answer).

use super::engine::PgEngine;
use super::queue::to_i64;
use crate::model::{Counts, Millis, TrackCounts};
use crate::store::api::{AbStore, HistoryStore, OutcomeStore, TrackingStore};
use crate::store::{
    AbMark, AbRecord, DomainTally, ExportEvents, ExportMark, MessageRef, OutcomePolicy,
    OutcomeUpdate, RecipientKey, StoreError, TrackEffect, TrackEvent, TrackInput, TrackingMeta,
};
use std::ffi::OsStr;
use std::path::Path;

impl OutcomeStore for PgEngine {
    fn record_outcomes(
        &self,
        campaign: &str,
        policy: &OutcomePolicy,
        updates: &[OutcomeUpdate],
        now: Millis,
    ) -> Result<Counts, StoreError> {
        let number = self.known(campaign)?;
        self.run(self.record((number, campaign), policy, updates, now))
    }

    fn message(&self, message_id: &str) -> Result<Option<MessageRef>, StoreError> {
        self.find_message(message_id)
    }

    fn campaign_by_number(&self, number: u32) -> Result<Option<String>, StoreError> {
        let number = i32::try_from(number).unwrap_or(-1);
        self.run(async {
            sqlx::query_scalar("SELECT id FROM campaigns WHERE number = $1")
                .bind(number)
                .fetch_optional(self.store.pool())
                .await
                .map_err(|e| self.failed("find a campaign by number", e))
        })
    }

    fn recipient_key_by_number(
        &self,
        number: u32,
        seq: u64,
    ) -> Result<Option<RecipientKey>, StoreError> {
        let number = i32::try_from(number).unwrap_or(-1);
        let domain: Option<String> = self.run(async {
            sqlx::query_scalar("SELECT domain FROM recipients WHERE campaign = $1 AND seq = $2")
                .bind(number)
                .bind(to_i64(seq))
                .fetch_optional(self.store.pool())
                .await
                .map_err(|e| self.failed("find a recipient by number", e))
        })?;
        Ok(domain.map(|domain| RecipientKey { domain, seq }))
    }

    fn recipient_by_number(&self, number: u32, seq: u64) -> Result<Option<MessageRef>, StoreError> {
        let Some(campaign) = self.campaign_by_number(number)? else {
            return Ok(None);
        };
        Ok(self
            .recipient_key_by_number(number, seq)?
            .map(|key| MessageRef { campaign, key }))
    }
}

impl TrackingStore for PgEngine {
    fn tracking_meta(&self, _campaign: &str) -> Result<Option<TrackingMeta>, StoreError> {
        self.unsupported("tracking_meta")
    }

    fn set_tracking_meta(&self, _campaign: &str, _meta: &TrackingMeta) -> Result<(), StoreError> {
        self.unsupported("set_tracking_meta")
    }

    fn tracking_counts(&self, _campaign: &str) -> Result<Vec<(u8, TrackCounts)>, StoreError> {
        self.unsupported("tracking_counts")
    }

    fn tracking_totals(&self, _campaign: &str) -> Result<TrackCounts, StoreError> {
        self.unsupported("tracking_totals")
    }

    fn tracking_events(
        &self,
        _campaign: &str,
        _since: Millis,
    ) -> Result<Vec<TrackEvent>, StoreError> {
        self.unsupported("tracking_events")
    }

    fn record_tracking(&self, _inputs: &[TrackInput]) -> Result<Vec<TrackEffect>, StoreError> {
        self.unsupported("record_tracking")
    }

    fn record_tracking_capped(
        &self,
        _inputs: &[TrackInput],
        _daily_cap: u32,
    ) -> Result<Vec<TrackEffect>, StoreError> {
        self.unsupported("record_tracking_capped")
    }

    fn domain_tallies(&self, _campaign: &str) -> Result<Vec<DomainTally>, StoreError> {
        self.unsupported("domain_tallies")
    }
}

impl AbStore for PgEngine {
    fn variant_counts(&self, _campaign: &str) -> Result<Vec<(u8, Counts)>, StoreError> {
        self.unsupported("variant_counts")
    }

    fn ab_mark(&self, _campaign: &str) -> Result<AbMark, StoreError> {
        self.unsupported("ab_mark")
    }

    fn ab_record(&self, _campaign: &str) -> Result<AbRecord, StoreError> {
        self.unsupported("ab_record")
    }

    fn set_ab_record(&self, _campaign: &str, _record: &AbRecord) -> Result<(), StoreError> {
        self.unsupported("set_ab_record")
    }

    fn release_held(&self, _campaign: &str, _choose: &dyn Fn(u8) -> u8) -> Result<u64, StoreError> {
        self.unsupported("release_held")
    }
}

impl HistoryStore for PgEngine {
    fn export_events(&self, _campaign: &str, _since: Millis) -> Result<ExportEvents, StoreError> {
        self.unsupported("export_events")
    }

    fn export_mark(&self, _campaign: &str) -> Result<Option<ExportMark>, StoreError> {
        self.unsupported("export_mark")
    }

    fn mark_exported(
        &self,
        _campaign: &str,
        _since: Millis,
        _through: Millis,
        _now: Millis,
    ) -> Result<(), StoreError> {
        self.unsupported("mark_exported")
    }

    fn last_event_at(&self, _campaign: &str) -> Result<Option<Millis>, StoreError> {
        self.unsupported("last_event_at")
    }

    fn archive_encoded(&self, _campaign: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.unsupported("archive_encoded")
    }

    fn is_collected(&self, _campaign: &str) -> Result<bool, StoreError> {
        self.unsupported("is_collected")
    }

    fn collect_encoded(
        &self,
        _campaign: &str,
        _archive: &[u8],
        _keep_values: bool,
    ) -> Result<crate::store::Collected, StoreError> {
        self.unsupported("collect_encoded")
    }

    fn copy_to(&self, _target: &Path) -> Result<(), StoreError> {
        self.unsupported("copy_to")
    }

    /// A database has no files in a folder: none is the engine's own.
    fn is_own_file(&self, _name: &OsStr) -> bool {
        false
    }
}
