//! The sled engine behind the store's interface: each method forwards to the sled code of
//! its concern (`queue.rs`, `outcomes.rs`, …).

use super::SledStore;
use crate::model::{
    Counts, DestinationBlock, Millis, RecipientState, ReplyRecord, Suppression, TrackCounts,
};
use crate::store::api::{
    AbStore, CampaignStore, HistoryStore, OutcomeStore, QueueStore, ReportStore, StoreFuture,
    SuppressionStore, TrackingStore,
};
use crate::store::{
    AbMark, AbRecord, AppendRow, Appended, BounceEvent, CampaignMeta, Collected, DomainTally,
    EventKind, ExportEvents, ExportMark, Loader, MessageRef, OutcomePolicy, OutcomeUpdate,
    RecipientKey, RecipientRecord, ReportEffect, StoreError, StoredRecipient, TrackEffect,
    TrackEvent, TrackInput, TrackingMeta, WebhookCursor,
};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::Path;

impl CampaignStore for SledStore {
    fn path(&self) -> &Path {
        SledStore::path(self)
    }

    fn campaigns(&self) -> Result<Vec<String>, StoreError> {
        SledStore::campaigns(self)
    }

    fn campaign(&self, campaign: &str) -> Result<Option<CampaignMeta>, StoreError> {
        SledStore::campaign(self, campaign)
    }

    fn counts(&self, campaign: &str) -> Result<Option<Counts>, StoreError> {
        SledStore::counts(self, campaign)
    }

    fn start_load(&self, campaign: &str, columns: Vec<String>) -> Result<Loader<'_>, StoreError> {
        Ok(Loader::new(Box::new(SledStore::start_load(
            self, campaign, columns,
        )?)))
    }

    fn remove_campaign(&self, campaign: &str) -> Result<(), StoreError> {
        SledStore::remove_campaign(self, campaign)
    }

    fn append(
        &self,
        campaign: &str,
        rows: &[AppendRow],
        now: Millis,
    ) -> Result<Vec<Appended>, StoreError> {
        SledStore::append(self, campaign, rows, now)
    }

    fn secret(&self) -> Result<[u8; 32], StoreError> {
        SledStore::secret(self)
    }

    fn flush(&self) -> StoreFuture<'_, ()> {
        Box::pin(SledStore::flush(self))
    }

    fn flush_blocking(&self) -> Result<(), StoreError> {
        SledStore::flush_blocking(self)
    }

    fn documents(&self) -> Option<&dyn crate::store::CampaignDocuments> {
        Some(self)
    }
}

impl QueueStore for SledStore {
    fn recipient(
        &self,
        campaign: &str,
        key: &RecipientKey,
    ) -> Result<Option<RecipientRecord>, StoreError> {
        SledStore::recipient(self, campaign, key)
    }

    fn pending(
        &self,
        campaign: &str,
        after: Option<&RecipientKey>,
        limit: usize,
    ) -> Result<Vec<StoredRecipient>, StoreError> {
        SledStore::pending(self, campaign, after, limit)
    }

    fn pending_domains(&self, campaign: &str) -> Result<Vec<String>, StoreError> {
        SledStore::pending_domains(self, campaign)
    }

    fn pending_in(
        &self,
        campaign: &str,
        domain: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<StoredRecipient>, StoreError> {
        SledStore::pending_in(self, campaign, domain, after, limit)
    }

    fn due(
        &self,
        campaign: &str,
        now: Millis,
        limit: usize,
    ) -> Result<Vec<StoredRecipient>, StoreError> {
        SledStore::due(self, campaign, now, limit)
    }

    fn due_in_domains(
        &self,
        campaign: &str,
        domains: &[String],
        now: Millis,
        limit: usize,
    ) -> Result<Vec<StoredRecipient>, StoreError> {
        SledStore::due_where(self, campaign, now, limit, |domain| {
            domains.iter().any(|d| d == domain)
        })
    }

    fn next_due(&self, campaign: &str) -> Result<Option<Millis>, StoreError> {
        SledStore::next_due(self, campaign)
    }

    fn next_window(&self, campaign: &str) -> Result<Option<Millis>, StoreError> {
        SledStore::next_window(self, campaign)
    }

    fn recipients_in(
        &self,
        campaign: &str,
        state: RecipientState,
    ) -> Result<Vec<StoredRecipient>, StoreError> {
        SledStore::recipients_in(self, campaign, state)
    }

    fn set_connection_limit(&self, name: &str, messages: u64) -> Result<(), StoreError> {
        SledStore::set_connection_limit(self, name, messages)
    }

    fn connection_limits(&self) -> Result<Vec<(String, u64)>, StoreError> {
        SledStore::connection_limits(self)
    }

    fn set_destination_block(&self, block: &DestinationBlock) -> Result<(), StoreError> {
        SledStore::set_destination_block(self, block)
    }

    fn destination_blocks(&self) -> Result<Vec<DestinationBlock>, StoreError> {
        SledStore::destination_blocks(self)
    }

    fn relay_usage(&self, relay: &str, since_minute: u64) -> Result<Vec<(u64, u32)>, StoreError> {
        SledStore::relay_usage(self, relay, since_minute)
    }

    fn set_relay_usage(
        &self,
        relay: &str,
        minutes: &[(u64, u32)],
        keep_since: u64,
    ) -> Result<(), StoreError> {
        SledStore::set_relay_usage(self, relay, minutes, keep_since)
    }

    fn add_relay_tallies(
        &self,
        campaign: &str,
        tallies: &[crate::store::RelayTally],
    ) -> Result<(), StoreError> {
        SledStore::add_relay_tallies(self, campaign, tallies)
    }

    fn relay_tallies(&self, campaign: &str) -> Result<Vec<crate::store::RelayTally>, StoreError> {
        SledStore::relay_tallies(self, campaign)
    }
}

impl OutcomeStore for SledStore {
    fn record_outcomes(
        &self,
        campaign: &str,
        policy: &OutcomePolicy,
        updates: &[OutcomeUpdate],
        now: Millis,
    ) -> Result<Counts, StoreError> {
        SledStore::record_outcomes(self, campaign, policy, updates, now)
    }

    fn message(&self, message_id: &str) -> Result<Option<MessageRef>, StoreError> {
        SledStore::message(self, message_id)
    }

    fn campaign_by_number(&self, number: u32) -> Result<Option<String>, StoreError> {
        SledStore::campaign_by_number(self, number)
    }

    fn recipient_key_by_number(
        &self,
        number: u32,
        seq: u64,
    ) -> Result<Option<RecipientKey>, StoreError> {
        SledStore::recipient_key_by_number(self, number, seq)
    }

    fn recipient_by_number(&self, number: u32, seq: u64) -> Result<Option<MessageRef>, StoreError> {
        SledStore::recipient_by_number(self, number, seq)
    }
}

impl ReportStore for SledStore {
    fn apply_report(
        &self,
        reference: &MessageRef,
        kind: EventKind,
        reply: ReplyRecord,
        source: &str,
        policy: &OutcomePolicy,
        now: Millis,
    ) -> Result<(ReportEffect, Option<String>), StoreError> {
        SledStore::apply_report(self, reference, kind, reply, source, policy, now)
    }

    fn is_ingested(&self, fingerprint: &[u8]) -> Result<bool, StoreError> {
        SledStore::is_ingested(self, fingerprint)
    }

    fn mark_ingested(&self, fingerprint: &[u8]) -> Result<(), StoreError> {
        SledStore::mark_ingested(self, fingerprint)
    }

    fn events(&self, campaign: &str) -> Result<Vec<BounceEvent>, StoreError> {
        SledStore::events(self, campaign)
    }

    fn complaints_by_variant(&self, campaign: &str) -> Result<HashMap<u8, u64>, StoreError> {
        SledStore::complaints_by_variant(self, campaign)
    }
}

impl SuppressionStore for SledStore {
    fn suppression(&self, address: &str) -> Result<Option<Suppression>, StoreError> {
        SledStore::suppression(self, address)
    }

    fn suppress(&self, address: &str, entry: &Suppression) -> Result<bool, StoreError> {
        SledStore::suppress(self, address, entry)
    }

    fn unsuppress(&self, address: &str) -> Result<bool, StoreError> {
        SledStore::unsuppress(self, address)
    }

    fn suppressions(&self) -> Result<Vec<(String, Suppression)>, StoreError> {
        SledStore::suppressions(self)
    }

    fn suppressions_after(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Suppression)>, StoreError> {
        SledStore::suppressions_after(self, after, limit)
    }
}

impl TrackingStore for SledStore {
    fn tracking_meta(&self, campaign: &str) -> Result<Option<TrackingMeta>, StoreError> {
        SledStore::tracking_meta(self, campaign)
    }

    fn set_tracking_meta(&self, campaign: &str, meta: &TrackingMeta) -> Result<(), StoreError> {
        SledStore::set_tracking_meta(self, campaign, meta)
    }

    fn view_meta(&self, campaign: &str) -> Result<Option<crate::store::ViewMeta>, StoreError> {
        SledStore::view_meta(self, campaign)
    }

    fn set_view_meta(
        &self,
        campaign: &str,
        meta: &crate::store::ViewMeta,
    ) -> Result<(), StoreError> {
        SledStore::set_view_meta(self, campaign, meta)
    }

    fn tracking_counts(&self, campaign: &str) -> Result<Vec<(u8, TrackCounts)>, StoreError> {
        SledStore::tracking_counts(self, campaign)
    }

    fn tracking_totals(&self, campaign: &str) -> Result<TrackCounts, StoreError> {
        SledStore::tracking_totals(self, campaign)
    }

    fn tracking_events(
        &self,
        campaign: &str,
        since: Millis,
    ) -> Result<Vec<TrackEvent>, StoreError> {
        SledStore::tracking_events(self, campaign, since)
    }

    fn record_tracking(&self, inputs: &[TrackInput]) -> Result<Vec<TrackEffect>, StoreError> {
        SledStore::record_tracking(self, inputs)
    }

    fn record_tracking_capped(
        &self,
        inputs: &[TrackInput],
        daily_cap: u32,
    ) -> Result<Vec<TrackEffect>, StoreError> {
        SledStore::record_tracking_capped(self, inputs, daily_cap)
    }

    fn domain_tallies(&self, campaign: &str) -> Result<Vec<DomainTally>, StoreError> {
        SledStore::domain_tallies(self, campaign)
    }
}

impl AbStore for SledStore {
    fn variant_counts(&self, campaign: &str) -> Result<Vec<(u8, Counts)>, StoreError> {
        SledStore::variant_counts(self, campaign)
    }

    fn ab_mark(&self, campaign: &str) -> Result<AbMark, StoreError> {
        SledStore::ab_mark(self, campaign)
    }

    fn ab_record(&self, campaign: &str) -> Result<AbRecord, StoreError> {
        SledStore::ab_record(self, campaign)
    }

    fn set_ab_record(&self, campaign: &str, record: &AbRecord) -> Result<(), StoreError> {
        SledStore::set_ab_record(self, campaign, record)
    }

    fn release_held(&self, campaign: &str, choose: &dyn Fn(u8) -> u8) -> Result<u64, StoreError> {
        SledStore::release_held(self, campaign, choose)
    }
}

impl HistoryStore for SledStore {
    fn export_events(&self, campaign: &str, since: Millis) -> Result<ExportEvents, StoreError> {
        Ok(ExportEvents::new(Box::new(SledStore::export_events(
            self, campaign, since,
        )?)))
    }

    fn export_mark(&self, campaign: &str) -> Result<Option<ExportMark>, StoreError> {
        SledStore::export_mark(self, campaign)
    }

    fn mark_exported(
        &self,
        campaign: &str,
        since: Millis,
        through: Millis,
        now: Millis,
    ) -> Result<(), StoreError> {
        SledStore::mark_exported(self, campaign, since, through, now)
    }

    fn last_event_at(&self, campaign: &str) -> Result<Option<Millis>, StoreError> {
        SledStore::last_event_at(self, campaign)
    }

    fn register_webhook(&self, name: &str, now: Millis) -> Result<Millis, StoreError> {
        SledStore::register_webhook(self, name, now)
    }

    fn webhook_cursors(&self, name: &str) -> Result<Vec<(String, WebhookCursor)>, StoreError> {
        SledStore::webhook_cursors(self, name)
    }

    fn set_webhook_cursor(
        &self,
        name: &str,
        campaign: &str,
        cursor: WebhookCursor,
    ) -> Result<(), StoreError> {
        SledStore::set_webhook_cursor(self, name, campaign, cursor)
    }

    fn webhook_positions(
        &self,
        campaign: &str,
    ) -> Result<Vec<(String, Millis, Option<WebhookCursor>)>, StoreError> {
        SledStore::webhook_positions(self, campaign)
    }

    fn forget_webhook(&self, name: &str) -> Result<bool, StoreError> {
        SledStore::forget_webhook(self, name)
    }

    fn archive_encoded(&self, campaign: &str) -> Result<Option<Vec<u8>>, StoreError> {
        SledStore::archive_encoded(self, campaign)
    }

    fn is_collected(&self, campaign: &str) -> Result<bool, StoreError> {
        SledStore::is_collected(self, campaign)
    }

    fn collect_encoded(
        &self,
        campaign: &str,
        archive: &[u8],
        keep_values: bool,
    ) -> Result<Collected, StoreError> {
        SledStore::collect_encoded(self, campaign, archive, keep_values)
    }

    fn copy_to(&self, target: &Path) -> Result<(), StoreError> {
        SledStore::copy_to(self, target)
    }

    fn is_own_file(&self, name: &OsStr) -> bool {
        matches!(name.to_str(), Some("conf" | "db" | "blobs" | "snap"))
            || name.to_string_lossy().starts_with("snap.")
    }
}
