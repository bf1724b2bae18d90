//! The store's interface, split by concern. An engine implements every trait (and so
//! [`StoreEngine`]); everything outside `store/` holds a [`super::Store`] handle and never
//! learns which engine is behind it.
//!
//! Contract shared by every engine: writes are not durable until [`CampaignStore::flush`]
//! (or [`CampaignStore::flush_blocking`]) returns, unless a method says otherwise; a
//! multi-part update (an outcome with its counters, retry index and attempt log) is applied
//! atomically; reads return owned batches bounded by a `limit` where a list can be long, and
//! the one history that can be longer than memory ([`HistoryStore::export_events`]) streams.

use super::cluster::{DomainWork, LeaseInfo, NodeInfo, NodeStart};
use super::transfer::{CampaignHeader, CampaignImport, ChunkSink, StoreWide};
use super::{
    AbMark, AbRecord, AppendRow, Appended, BounceEvent, CampaignMeta, Collected, DomainTally,
    EventKind, EventTally, ExportEvents, ExportMark, LoadResult, Loader, MessageRef, OutcomePolicy,
    OutcomeUpdate, RecipientKey, RecipientRecord, RelayTally, ReportEffect, StoreError,
    StoredRecipient, TrackEffect, TrackEvent, TrackInput, TrackingMeta, ViewMeta, WebhookCursor,
};
use crate::model::TrackCounts;
use crate::model::{
    Assignment, BackoffSnapshot, Counts, DestinationBlock, Millis, RecipientState, ReplyRecord,
    Suppression,
};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

/// A boxed future, as trait objects return them (one allocation per call, not per row).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Everything a store engine does: the concerns below, shareable across threads.
pub trait StoreEngine:
    CampaignStore
    + QueueStore
    + OutcomeStore
    + ReportStore
    + SuppressionStore
    + super::topics::TopicStore
    + super::warmup::WarmupStore
    + TrackingStore
    + AbStore
    + HistoryStore
    + TransferStore
    + super::conversions::ConversionStore
    + Send
    + Sync
    + std::fmt::Debug
{
}

impl<T> StoreEngine for T where
    T: CampaignStore
        + QueueStore
        + OutcomeStore
        + ReportStore
        + SuppressionStore
        + super::topics::TopicStore
        + super::warmup::WarmupStore
        + TrackingStore
        + AbStore
        + HistoryStore
        + TransferStore
        + super::conversions::ConversionStore
        + Send
        + Sync
        + std::fmt::Debug
{
}

/// Campaigns as a whole: their metadata and counters, loading, removal, durability.
pub trait CampaignStore {
    /// Where the store lives (the sled folder), as named in errors and used for the control
    /// socket beside it.
    fn path(&self) -> &Path;

    /// Every campaign id this store knows.
    fn campaigns(&self) -> Result<Vec<String>, StoreError>;

    /// The campaign's metadata, or `None` if it was never loaded here.
    fn campaign(&self, campaign: &str) -> Result<Option<CampaignMeta>, StoreError>;

    /// The campaign's counters, or `None` if it was never loaded here.
    fn counts(&self, campaign: &str) -> Result<Option<Counts>, StoreError>;

    /// Starts loading `campaign` with the CSV header `columns`, first removing whatever an
    /// interrupted earlier load left behind. Call only for a campaign that is not `loaded`.
    fn start_load(&self, campaign: &str, columns: Vec<String>) -> Result<Loader<'_>, StoreError>;

    /// Appends `rows` to `campaign`, which must be loaded (with zero rows or more), as new
    /// pending recipients: no de-duplication (the same address may come again), except that
    /// a row whose idempotency key was used within its window adds nothing and names the
    /// first row instead. The rows, their queue entries, the counters and the idempotency
    /// records are written atomically; durable with the next flush. Returns, per row, what
    /// was done. Engines that cannot do it yet say [`StoreError::Unsupported`].
    fn append(
        &self,
        campaign: &str,
        rows: &[AppendRow],
        now: Millis,
    ) -> Result<Vec<Appended>, StoreError> {
        let _ = (campaign, rows, now);
        Err(StoreError::Unsupported {
            path: self.path().to_owned(),
            what: "appending messages to a loaded campaign (the transactional lane)",
        })
    }

    /// Deletes everything of a campaign (meta, counters, recipients, queue, retries, dedupe,
    /// events, attempt log, tracking, A/B and gc records). The suppression list stays.
    fn remove_campaign(&self, campaign: &str) -> Result<(), StoreError>;

    /// This store's secret for signing tokens (VERP), created on first use.
    fn secret(&self) -> Result<[u8; 32], StoreError>;

    /// Makes everything written so far durable (group commit: call once per group).
    fn flush(&self) -> StoreFuture<'_, ()>;

    /// Makes everything written so far durable, blocking the calling thread.
    fn flush_blocking(&self) -> Result<(), StoreError>;

    /// How many groups of outcomes ([`OutcomeStore::record_outcomes`], then a flush) may be
    /// written at once from different threads. 1 (the default) means one group at a time:
    /// an engine whose flush makes everything written so far durable (sled) gains nothing
    /// from more. An engine that commits each call on its own connection (PostgreSQL) says
    /// more, so that one group's commit wait overlaps the next group's writes. Groups in
    /// flight at once never name the same recipient (the caller's promise: a recipient has
    /// one message in flight at a time).
    fn max_groups_in_flight(&self) -> usize {
        1
    }

    /// The store's cluster side, when several nodes can share it (PostgreSQL); `None` for a
    /// single-process engine (sled).
    fn cluster(&self) -> Option<&dyn ClusterStore> {
        None
    }

    /// Campaign documents: those handed to a cluster (PostgreSQL) and those created over the
    /// API of `volley serve` (both engines); `None` on an engine that keeps none.
    fn documents(&self) -> Option<&dyn CampaignDocuments> {
        None
    }
}

/// Nodes sharing one store (`volley serve --node NAME` on PostgreSQL) and the leases they
/// share its work with. Every time is the database's clock: a node's own clock decides
/// nothing. Writes are durable when the call returns.
pub trait ClusterStore: Send + Sync {
    /// Registers a node. Refused with [`StoreError::NodeInUse`] while a live node (within
    /// its lease time, not stopping) has the same name; a dead or stopped one is replaced.
    fn register_node(&self, node: &NodeStart) -> Result<(), StoreError>;

    /// The heartbeat, in one transaction: notes the node alive with its messages of the last
    /// minute and renews every lease it still owns for `lease`; returns their names. A lease
    /// another node took while this one was silent is not among them (lost). Fails with
    /// [`StoreError::NodeReplaced`] when another instance registered under the name.
    fn heartbeat(
        &self,
        node: &str,
        instance: &str,
        lease: Duration,
        sent_last_minute: u64,
    ) -> Result<Vec<String>, StoreError>;

    /// Claims the leases `names` for `owner` for `lease`, in one statement: each one that is
    /// free, run out or already `owner`'s is taken; returns those taken. Of two nodes racing
    /// for one name exactly one gets it.
    fn claim(
        &self,
        owner: &str,
        names: &[String],
        lease: Duration,
    ) -> Result<Vec<String>, StoreError>;

    /// Hands back the leases `names` that `owner` holds; returns how many.
    fn release(&self, owner: &str, names: &[String]) -> Result<u64, StoreError>;

    /// A node stopping (SIGTERM): hands back all its leases and marks it stopping, in one
    /// transaction, so others take its work at once; returns the leases handed back. With
    /// `forget`, the node is removed from the list instead (one that was there for one job:
    /// `volley send`); such nodes that died are removed an hour after their last heartbeat,
    /// when another node registers.
    fn stop_node(&self, node: &str, instance: &str, forget: bool) -> Result<u64, StoreError>;

    /// A node found dead (its process on `host`, `pid`, has ended: killed, crashed): marks
    /// it stopping and hands back all its leases, in one transaction, so others take its
    /// work at once rather than when its leases run out; returns the leases handed back.
    /// Nothing happens when the node registered again since (another host or pid).
    fn reap_node(&self, node: &str, host: &str, pid: u32) -> Result<u64, StoreError>;

    /// Saves destination `name`'s adaptive back-off (replacing what was saved before).
    fn save_backoff(&self, name: &str, snapshot: &BackoffSnapshot) -> Result<(), StoreError>;

    /// The back-off of every destination saved within `max_age`, with its age, by name;
    /// `suspended_for` is what is left of a suspension by the database's clock.
    fn backoffs(
        &self,
        max_age: Duration,
    ) -> Result<Vec<(String, BackoffSnapshot, Duration)>, StoreError>;

    /// Every node registered, in name order.
    fn nodes(&self) -> Result<Vec<NodeInfo>, StoreError>;

    /// Every lease, in name order.
    fn leases(&self) -> Result<Vec<LeaseInfo>, StoreError>;

    /// The recipient domains with work in `campaigns` (pending recipients, and deferred ones
    /// due within `horizon`), with their counts, largest first. Read through the queue's
    /// partial indexes: no scan of delivered recipients.
    fn domains_with_work(
        &self,
        campaigns: &[String],
        horizon: Duration,
    ) -> Result<Vec<DomainWork>, StoreError>;

    /// Reserves up to `want` messages of relay `relay`'s hourly and daily caps (`caps`),
    /// counted at once in the shared relay usage at `caps.minute`, after giving
    /// `caps.give_back` unsent messages of an earlier reservation back; returns how many
    /// were granted. One reservation at a time per relay across the
    /// cluster, so the nodes' reservations never add up past a cap.
    fn reserve_relay(&self, relay: &str, caps: RelayQuota, want: u32) -> Result<u32, StoreError>;
}

/// A relay's hourly and daily caps, and the reservation asked for: see
/// [`ClusterStore::reserve_relay`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RelayQuota {
    /// `[relay] max_per_hour`.
    pub per_hour: Option<u32>,
    /// `[relay] max_per_day`.
    pub per_day: Option<u32>,
    /// The minute (since the epoch) the reservation is counted at.
    pub minute: u64,
    /// Unsent messages of an earlier reservation to give back first.
    pub give_back: u32,
    /// The minute that earlier reservation was counted at.
    pub back_minute: u64,
}

/// Campaigns handed to a cluster of nodes (PostgreSQL) or created over the API (both
/// engines; on sled a single `volley serve` runs them): each is a document (the
/// campaign file's text, never a secret, as JSON the store keeps without reading it) and its
/// files, which every node materialises and sends. Every write is atomic and durable when
/// it returns.
pub trait CampaignDocuments {
    /// Publishes `document` with its `files` (by file name), replacing a document of the same
    /// id and all its files when any of it differs (work not yet sent then goes by the new
    /// one). A changed document that was `done` becomes `active` again; otherwise its state
    /// stays. Returns whether anything changed.
    fn publish_document(
        &self,
        document: &DocumentRecord,
        files: &[(String, Vec<u8>)],
    ) -> Result<bool, StoreError>;

    /// Every document in `state`, by id.
    fn documents_in(&self, state: DocumentState) -> Result<Vec<DocumentRecord>, StoreError>;

    /// The document `id`, whatever its state.
    fn document(&self, id: &str) -> Result<Option<DocumentRecord>, StoreError>;

    /// The files of document `id`, by name.
    fn document_files(&self, id: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError>;

    /// Sets the state of document `id`; returns false when there is no such document.
    fn set_document_state(&self, id: &str, state: DocumentState) -> Result<bool, StoreError>;
}

/// Where a published campaign stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentState {
    /// Nodes send it (and its retries, and a scheduled campaign's editions).
    Active,
    /// Nodes leave it alone until it is active again.
    Paused,
    /// Nodes leave it alone for good.
    Cancelled,
    /// Every recipient reached a final state.
    Done,
}

impl DocumentState {
    /// The state as the store writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentState::Active => "active",
            DocumentState::Paused => "paused",
            DocumentState::Cancelled => "cancelled",
            DocumentState::Done => "done",
        }
    }

    /// The state written as [`DocumentState::as_str`] does.
    pub fn parse(text: &str) -> Option<DocumentState> {
        Some(match text {
            "active" => DocumentState::Active,
            "paused" => DocumentState::Paused,
            "cancelled" => DocumentState::Cancelled,
            "done" => DocumentState::Done,
            _ => return None,
        })
    }
}

/// One published campaign as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentRecord {
    /// The campaign id (`[campaign] id`; a scheduled campaign's, not an edition's).
    pub id: String,
    /// The document, JSON (see `cluster::CampaignDocument`).
    pub document: String,
    /// Where it stands.
    pub state: DocumentState,
    /// When it was last published (epoch milliseconds; 0 before it is stored).
    pub published_at: Millis,
    /// Which process published it.
    pub published_by: String,
}

/// One campaign's list being loaded. Obtained from [`CampaignStore::start_load`].
pub trait LoadSession {
    /// Adds one accepted row with its A/B assignment. Returns `false` (and stores nothing)
    /// when the address was already loaded for this campaign. `address` must be normalised,
    /// with its domain lowercased, so that equal addresses compare equal. A suppressed
    /// address is stored in the `suppressed` state and never queued; a held one waits for
    /// [`AbStore::release_held`].
    fn add(
        &mut self,
        address: &str,
        domain: &str,
        values: Vec<String>,
        line: u64,
        assignment: Assignment,
    ) -> Result<bool, StoreError>;

    /// Recipients accepted so far.
    fn accepted(&self) -> u64;

    /// Writes the rest, marks the campaign loaded and makes it durable, with the counts of
    /// rows skipped as invalid, as duplicates and as excluded by the campaign's rules.
    fn finish(
        self: Box<Self>,
        invalid: u64,
        duplicate: u64,
        excluded: u64,
    ) -> Result<LoadResult, StoreError>;
}

/// Recipients and the send queue: what is pending or due, and per-destination memory.
pub trait QueueStore {
    /// One recipient's record.
    fn recipient(
        &self,
        campaign: &str,
        key: &RecipientKey,
    ) -> Result<Option<RecipientRecord>, StoreError>;

    /// Up to `limit` pending recipients after `after` (exclusive), in domain order.
    fn pending(
        &self,
        campaign: &str,
        after: Option<&RecipientKey>,
        limit: usize,
    ) -> Result<Vec<StoredRecipient>, StoreError>;

    /// The recipient domains that have pending recipients in `campaign`, in key order,
    /// without reading every recipient.
    fn pending_domains(&self, campaign: &str) -> Result<Vec<String>, StoreError>;

    /// Up to `limit` pending recipients of `campaign` in `domain` whose sequence number is
    /// above `after` (all when `None`), in load order.
    fn pending_in(
        &self,
        campaign: &str,
        domain: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<StoredRecipient>, StoreError>;

    /// Up to `limit` deferred recipients whose next attempt is due at or before `now`.
    fn due(
        &self,
        campaign: &str,
        now: Millis,
        limit: usize,
    ) -> Result<Vec<StoredRecipient>, StoreError>;

    /// Up to `limit` deferred recipients of `campaign` in one of `domains` whose next
    /// attempt is due at or before `now`, earliest first: a cluster node's own due retries
    /// (its leased domains), however many other domains' retries are due before them.
    fn due_in_domains(
        &self,
        campaign: &str,
        domains: &[String],
        now: Millis,
        limit: usize,
    ) -> Result<Vec<StoredRecipient>, StoreError>;

    /// The earliest time a deferred recipient of the campaign is due, or one waiting for its
    /// sending window sees it open, if any is deferred or waiting.
    fn next_due(&self, campaign: &str) -> Result<Option<Millis>, StoreError>;

    /// The earliest time a recipient waiting for its sending window sees it open.
    fn next_window(&self, campaign: &str) -> Result<Option<Millis>, StoreError>;

    /// Every recipient of a campaign in a given state (for reports and tests), in key order
    /// (a collected campaign's in sequence order).
    fn recipients_in(
        &self,
        campaign: &str,
        state: RecipientState,
    ) -> Result<Vec<StoredRecipient>, StoreError>;

    /// Remembers that destination `name` (the relay, or MX host names) takes at most
    /// `messages` per connection, as learned from its replies. Durable with the next flush.
    fn set_connection_limit(&self, name: &str, messages: u64) -> Result<(), StoreError>;

    /// Every learned per-connection message limit, by destination name.
    fn connection_limits(&self) -> Result<Vec<(String, u64)>, StoreError>;

    /// Keeps the policy block of a destination (its circuit breaker tripped, or a probe
    /// lifted it), replacing the one kept for the same destination. Durable with the next
    /// flush.
    fn set_destination_block(&self, block: &DestinationBlock) -> Result<(), StoreError>;

    /// Every policy block kept, by destination name.
    fn destination_blocks(&self) -> Result<Vec<DestinationBlock>, StoreError>;

    /// Messages sent to `relay` per minute since `since_minute` (minutes since the epoch).
    fn relay_usage(&self, relay: &str, since_minute: u64) -> Result<Vec<(u64, u32)>, StoreError>;

    /// Stores per-minute counts of messages sent to `relay` (absolute values, replacing what
    /// was there) and drops minutes older than `keep_since`. Durable with the next flush.
    fn set_relay_usage(
        &self,
        relay: &str,
        minutes: &[(u64, u32)],
        keep_since: u64,
    ) -> Result<(), StoreError>;

    /// Adds `tallies` to what each relay (by name) did for `campaign` (`[[relay]]`: outcomes
    /// and cool-downs). Durable with the next flush.
    fn add_relay_tallies(&self, campaign: &str, tallies: &[RelayTally]) -> Result<(), StoreError>;

    /// What each relay did for `campaign`, by relay name; empty when it never went through
    /// a relay.
    fn relay_tallies(&self, campaign: &str) -> Result<Vec<RelayTally>, StoreError>;
}

/// Delivery outcomes, and finding the recipient a message or token points at.
pub trait OutcomeStore {
    /// Records a group of outcomes for `campaign` at time `now` in one atomic batch and
    /// returns the updated counters. A deferral is turned into an expiry when `policy` says
    /// the recipient has run out of time. A hard bounce puts the address on the suppression
    /// list; soft bounces (and expiries) count towards it; a delivery resets that count.
    /// Outcomes for recipients already in a final state are ignored, so recording the same
    /// outcome twice changes nothing. Every recorded outcome is also appended to the attempt
    /// log ([`HistoryStore::export_events`]). Durable with the next flush.
    fn record_outcomes(
        &self,
        campaign: &str,
        policy: &OutcomePolicy,
        updates: &[OutcomeUpdate],
        now: Millis,
    ) -> Result<Counts, StoreError>;

    /// The recipient a delivered message (by Message-ID, without angle brackets) went to.
    fn message(&self, message_id: &str) -> Result<Option<MessageRef>, StoreError>;

    /// The campaign id with the given number.
    fn campaign_by_number(&self, number: u32) -> Result<Option<String>, StoreError>;

    /// The key of the recipient with sequence `seq` of campaign number `number` (its
    /// campaign id already known), without looking the campaign up.
    fn recipient_key_by_number(
        &self,
        number: u32,
        seq: u64,
    ) -> Result<Option<RecipientKey>, StoreError>;

    /// The recipient with sequence `seq` of campaign number `number`.
    fn recipient_by_number(&self, number: u32, seq: u64) -> Result<Option<MessageRef>, StoreError>;
}

/// Late reports (DSN bounces, delays, complaints) and their de-duplication.
pub trait ReportStore {
    /// Applies a late report to one recipient: a bounce moves it to `bounced` (whatever it
    /// was, unless already bounced) and suppresses the address when hard (soft bounces count
    /// towards the policy); a complaint suppresses the address; a delay is only noted. Every
    /// change is written with its event atomically. Returns the effect and, when the address
    /// was newly suppressed, the address.
    fn apply_report(
        &self,
        reference: &MessageRef,
        kind: EventKind,
        reply: ReplyRecord,
        source: &str,
        policy: &OutcomePolicy,
        now: Millis,
    ) -> Result<(ReportEffect, Option<String>), StoreError>;

    /// True when a report with this fingerprint was ingested before.
    fn is_ingested(&self, fingerprint: &[u8]) -> Result<bool, StoreError>;

    /// Remembers that a report was ingested.
    fn mark_ingested(&self, fingerprint: &[u8]) -> Result<(), StoreError>;

    /// Every bounce, delay and complaint event of a campaign, oldest first.
    fn events(&self, campaign: &str) -> Result<Vec<BounceEvent>, StoreError>;

    /// Complaints among the campaign's late reports, by the stored variant of the recipient
    /// (0 when the recipient is gone). Reads only the late reports, never the delivery
    /// history.
    fn complaints_by_variant(&self, campaign: &str) -> Result<HashMap<u8, u64>, StoreError>;
}

/// The suppression list, shared by every campaign of the store.
pub trait SuppressionStore {
    /// The suppression entry of `address`, if it is suppressed.
    fn suppression(&self, address: &str) -> Result<Option<Suppression>, StoreError>;

    /// Adds `address` to the suppression list; returns false (and keeps the existing entry)
    /// when it was already there.
    fn suppress(&self, address: &str, entry: &Suppression) -> Result<bool, StoreError>;

    /// Removes `address` from the suppression list (and forgets its soft bounces); returns
    /// false when it was not there.
    fn unsuppress(&self, address: &str) -> Result<bool, StoreError>;

    /// Every suppressed address with its entry, in address order.
    fn suppressions(&self) -> Result<Vec<(String, Suppression)>, StoreError>;

    /// At most `limit` suppressed addresses after `after` (from the first when `None`), in
    /// address order: a page of the list, read without reading the rest.
    fn suppressions_after(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Suppression)>, StoreError>;
}

/// Opens, clicks and unsubscribes: their events, counters and per-recipient engagement.
pub trait TrackingStore {
    /// The campaign's tracking data, when it is tracked.
    fn tracking_meta(&self, campaign: &str) -> Result<Option<TrackingMeta>, StoreError>;

    /// Stores the campaign's tracking data. A campaign's link table never changes once set:
    /// messages already sent point at its indexes, so a different table is refused.
    fn set_tracking_meta(&self, campaign: &str, meta: &TrackingMeta) -> Result<(), StoreError>;

    /// What the tracking server needs to show the campaign's messages in a browser, when it
    /// was stored at load.
    fn view_meta(&self, campaign: &str) -> Result<Option<ViewMeta>, StoreError>;

    /// Stores (or replaces) what the tracking server needs to show the campaign's messages.
    fn set_view_meta(&self, campaign: &str, meta: &ViewMeta) -> Result<(), StoreError>;

    /// Tracking counts of a campaign, per A/B variant.
    fn tracking_counts(&self, campaign: &str) -> Result<Vec<(u8, TrackCounts)>, StoreError>;

    /// Tracking counts of a campaign, all variants together.
    fn tracking_totals(&self, campaign: &str) -> Result<TrackCounts, StoreError>;

    /// A campaign's tracking events in time order, from `since` (epoch milliseconds).
    fn tracking_events(&self, campaign: &str, since: Millis)
        -> Result<Vec<TrackEvent>, StoreError>;

    /// Records a group of tracked requests atomically: the events, each recipient's
    /// engagement, the counters, and an unsubscribe's suppression-list entry. A click on
    /// another link within a second of the recipient's last click is a burst (a scanner
    /// following every link): it is stored as machine-made, and so is the click before it
    /// when that one was all that made the recipient a clicker. Durable with the next flush.
    /// No cap: see [`TrackingStore::record_tracking_capped`].
    fn record_tracking(&self, inputs: &[TrackInput]) -> Result<Vec<TrackEffect>, StoreError>;

    /// [`TrackingStore::record_tracking`], storing at most `daily_cap` events per recipient
    /// (of a campaign) per UTC day: past it, an input changes nothing and its effect says
    /// `stored: false`. A recipient's first unsubscribe is always stored, a repeat never. The
    /// count is kept in the store, so the cap holds across restarts.
    fn record_tracking_capped(
        &self,
        inputs: &[TrackInput],
        daily_cap: u32,
    ) -> Result<Vec<TrackEffect>, StoreError>;

    /// Every recipient domain of `campaign` with its counts, in domain order. Reads every
    /// recipient once (for reports, not for the send path).
    fn domain_tallies(&self, campaign: &str) -> Result<Vec<DomainTally>, StoreError>;
}

/// A/B tests: counters per variant, the test-then-winner record, held recipients.
pub trait AbStore {
    /// Recipients by state per variant index (variants nobody was assigned to are left out).
    fn variant_counts(&self, campaign: &str) -> Result<Vec<(u8, Counts)>, StoreError>;

    /// The campaign's [`AbMark`], cheap whatever the size of the list or its history.
    fn ab_mark(&self, campaign: &str) -> Result<AbMark, StoreError>;

    /// Where a test-then-winner campaign stands (default: nothing happened yet).
    fn ab_record(&self, campaign: &str) -> Result<AbRecord, StoreError>;

    /// Saves where a test-then-winner campaign stands (durable at the next flush).
    fn set_ab_record(&self, campaign: &str, record: &AbRecord) -> Result<(), StoreError>;

    /// Moves every held recipient of `campaign` to the queue with the variant `choose` gives
    /// it (it is passed the variant the recipient would get in a split), marked as the
    /// remainder ([`crate::model::REMAINDER`]), in atomic batches; returns how many were
    /// released. A crash midway leaves the rest held, and calling it again finishes the job.
    fn release_held(&self, campaign: &str, choose: &dyn Fn(u8) -> u8) -> Result<u64, StoreError>;
}

/// A campaign's history: the event export, its mark, and gc (collecting and compacting).
pub trait HistoryStore {
    /// Every event of `campaign` at or after `since` (epoch milliseconds), oldest first:
    /// delivery outcomes, late bounces, delays and complaints, opens, clicks and unsubscribes.
    /// Events at the same millisecond come as delivery outcomes, then reports, then tracking.
    /// Streams: memory stays flat however long the history.
    fn export_events(&self, campaign: &str, since: Millis) -> Result<ExportEvents, StoreError>;

    /// Every event of `campaign` counted by [`EventTally`] (minute, kind, variant where it
    /// counts, category, machine): what a report's timeline, bounce categories and
    /// complaints need, in one read. The default counts [`HistoryStore::export_events`] as
    /// it streams; an engine that can count where the events are (PostgreSQL: `GROUP BY`)
    /// does. Tallies come in no particular order, and alike ones may come more than once.
    fn event_tallies(&self, campaign: &str) -> Result<Vec<EventTally>, StoreError> {
        let mut tallies: HashMap<EventTally, u64> = HashMap::new();
        for event in self.export_events(campaign, 0)? {
            let tally = EventTally::of(&event?);
            *tallies.entry(EventTally { count: 0, ..tally }).or_default() += 1;
        }
        Ok(tallies
            .into_iter()
            .map(|(tally, count)| EventTally { count, ..tally })
            .collect())
    }

    /// The campaign's export mark, if its events were ever exported.
    fn export_mark(&self, campaign: &str) -> Result<Option<ExportMark>, StoreError>;

    /// Notes that the campaign's events from `since` to `through` were exported at `now`.
    /// The mark only grows over a gapless run of exports: one from the beginning
    /// (`since == 0`), or one starting at or before what was already exported.
    fn mark_exported(
        &self,
        campaign: &str,
        since: Millis,
        through: Millis,
        now: Millis,
    ) -> Result<(), StoreError>;

    /// When the campaign's latest event happened (delivery outcome, report or tracking
    /// event), if it has any.
    fn last_event_at(&self, campaign: &str) -> Result<Option<Millis>, StoreError>;

    /// Registers webhook `name` (first seen at `now`) and returns when it was first
    /// registered: it sends the events from then on. Durable when it returns.
    fn register_webhook(&self, name: &str, now: Millis) -> Result<Millis, StoreError>;

    /// Every campaign webhook `name` has a cursor in, with the cursor.
    fn webhook_cursors(&self, name: &str) -> Result<Vec<(String, WebhookCursor)>, StoreError>;

    /// Moves webhook `name`'s cursor in `campaign` forward to `cursor` (after its receiver
    /// acknowledged the events before it); a cursor before the stored one changes nothing
    /// (a node that lost the webhook's lease mid-batch never moves it back). Durable when
    /// it returns.
    fn set_webhook_cursor(
        &self,
        name: &str,
        campaign: &str,
        cursor: WebhookCursor,
    ) -> Result<(), StoreError>;

    /// Every registered webhook with its cursor in `campaign` (`None`: no cursor there yet)
    /// and when it was registered: what `volley gc` checks before collecting.
    #[allow(clippy::type_complexity)]
    fn webhook_positions(
        &self,
        campaign: &str,
    ) -> Result<Vec<(String, Millis, Option<WebhookCursor>)>, StoreError>;

    /// Forgets webhook `name` and all its cursors (a webhook removed from the serve file
    /// no longer holds `volley gc` back); returns whether it was registered.
    fn forget_webhook(&self, name: &str) -> Result<bool, StoreError>;

    /// The encoded archive [`HistoryStore::collect_encoded`] kept of the campaign's history,
    /// once it was collected (read it with [`super::Store::archive`]).
    fn archive_encoded(&self, campaign: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Whether the campaign has been collected.
    fn is_collected(&self, campaign: &str) -> Result<bool, StoreError>;

    /// Collects `campaign`: keeps `archive` (what reports keep of its history, encoded by
    /// [`super::Store::collect`]) first, then drops per-recipient detail reports and
    /// tracking do not need. Merge fields are kept when `keep_values` (its tracked links use
    /// them). Interrupted, it can simply be run again. Durable once it returns.
    fn collect_encoded(
        &self,
        campaign: &str,
        archive: &[u8],
        keep_values: bool,
    ) -> Result<Collected, StoreError>;

    /// Copies everything this store holds into a new store at `target` (which must not
    /// exist) and makes it durable: the copy holds the same data in less space once
    /// campaigns were collected.
    fn copy_to(&self, target: &Path) -> Result<(), StoreError>;

    /// Whether a file named `name` in the store's folder is the engine's own (a compacted
    /// copy replaces those; other files are carried over).
    fn is_own_file(&self, name: &OsStr) -> bool;
}

/// Moving a store's contents to another engine (`volley store copy`): a campaign exported as
/// a header and a stream of chunks, imported chunk by chunk, and the store-wide parts. Memory
/// stays flat however long the list: no method holds a campaign's rows.
pub trait TransferStore {
    /// What `campaign` is, apart from its rows, or `None` when it is not in the store.
    fn campaign_header(&self, campaign: &str) -> Result<Option<CampaignHeader>, StoreError>;

    /// Passes every row of `campaign` to `sink` in chunks: recipients first, then the attempt
    /// log, late reports, tracking events, engagement and the Message-ID index.
    fn export_campaign(&self, campaign: &str, sink: &mut ChunkSink<'_>) -> Result<(), StoreError>;

    /// Starts writing a campaign described by `header`, keeping its number when no campaign
    /// of this store has it (a new one otherwise). Refused when the campaign is here already.
    fn import_campaign(
        &self,
        header: &CampaignHeader,
    ) -> Result<Box<dyn CampaignImport + '_>, StoreError>;

    /// The store-wide parts: token secret, suppression list, soft bounces, connection limits,
    /// relay usage and ingested report fingerprints.
    fn export_store_wide(&self) -> Result<StoreWide, StoreError>;

    /// Adds the store-wide parts to this store (entries already here are kept) and makes them
    /// durable. The token secret replaces this store's own when `secret` is true.
    fn import_store_wide(&self, parts: &StoreWide, secret: bool) -> Result<(), StoreError>;
}
