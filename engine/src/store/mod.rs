//! The store: one storage interface, and the engines behind it. The only module that knows
//! which database holds the data.
//!
//! It keeps, per campaign, every accepted recipient (grouped in per-domain batches), its state,
//! the pending queue, the retry index, de-duplication keys and the counters behind
//! `volley status`, plus the suppression list, late reports, tracking, A/B records and what
//! gc keeps. Multi-part updates are atomic; durability comes from
//! [`CampaignStore::flush`], which callers run in small groups (group commit).
//!
//! Callers hold a [`Store`] (a cheap handle on an `Arc<dyn StoreEngine>`) and call the
//! interface's methods on it; [`Store::open`] picks the engine from the address it is given.
//! The interface is split by concern in [`api`]: [`CampaignStore`], [`QueueStore`],
//! [`OutcomeStore`], [`ReportStore`], [`SuppressionStore`], [`TrackingStore`], [`AbStore`] and
//! [`HistoryStore`]; and the published campaigns (a cluster's, or the API's), [`CampaignDocuments`]
//! through [`CampaignStore::documents`].
//!
//! Engines: `sled/`, the embedded default. sled is single-process: opening fails with
//! [`StoreError::Locked`] while another process holds the folder; such callers talk to that
//! process instead (see `control`). A folder this process closed a moment ago is waited for
//! until sled lets go of it (`sled/reopen.rs`).

pub mod api;
mod cluster;
pub mod conversions;
mod error;
mod handle;
mod location;
pub mod postgres;
mod sled;
mod topics;
mod track_rules;
pub mod transfer;
mod types;
mod warmup;

pub use api::{
    AbStore, CampaignDocuments, CampaignStore, ClusterStore, DocumentRecord, DocumentState,
    HistoryStore, LoadSession, OutcomeStore, QueueStore, RelayQuota, ReportStore, StoreEngine,
    StoreFuture, SuppressionStore, TrackingStore, TransferStore,
};
pub use cluster::{
    domain_lease, lease_domain, load_lease, DomainWork, LeaseInfo, NodeInfo, NodeStart,
};
pub use conversions::{Attribution, Conversion, ConversionStore, Recorded};
pub use error::StoreError;
pub use handle::{ExportEvents, LoadResult, Loader, Store};
pub use location::{is_postgres_url, StoreLocation};
pub use postgres::{PgSettings, PgTls};
pub use sled::upgrade::{upgrade_store, Upgraded};
pub use topics::{
    is_topic_id, CampaignTopic, Topic, TopicStore, TopicSuppression, UnsubscribeScope,
    MAX_TOPIC_CHARS, MAX_TOPIC_NAME_CHARS,
};
pub use types::{
    AbDecision, AbMark, AbRecord, AppendRow, Appended, BounceEvent, CampaignMeta, Collected,
    DomainTally, EventKind, EventTally, ExportEvent, ExportKind, ExportMark, GcLine, GcOptions,
    GcOutcome, GcReport, IdempotencyKey, MachineReason, MessageRef, OutcomePolicy, OutcomeUpdate,
    RecipientKey, RecipientRecord, RelayTally, ReportEffect, StoredRecipient, TrackEffect,
    TrackEvent, TrackInput, TrackKind, TrackingMeta, ViewMeta, ViewVersion, WebhookCursor,
};
pub use warmup::{WarmupDay, WarmupStore, WarmupTally};

#[cfg(test)]
mod tests;
