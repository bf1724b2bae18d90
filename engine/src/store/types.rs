//! The values the store's interface takes and returns, whichever engine is behind it:
//! campaigns and recipients, outcomes and late reports, tracking, A/B marks, export and gc.

use crate::model::{
    Category, Counts, Millis, Outcome, RecipientState, ReplyRecord, RetryPolicy, SuppressionPolicy,
};
use serde::{Deserialize, Serialize};

/// What the store remembers of a campaign as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignMeta {
    /// The CSV header: names of the merge fields, in order.
    pub columns: Vec<String>,
    /// True once the whole list was loaded and flushed; a re-run never loads again.
    pub loaded: bool,
    /// When loading finished.
    pub loaded_at: Millis,
    /// A small number unique within this store, used in VERP tokens.
    pub number: u32,
}

/// Identifies one recipient of a campaign: its domain batch and its place in the load order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RecipientKey {
    /// The recipient's domain (lowercase, punycode).
    pub domain: String,
    /// Its sequence number, unique within the campaign.
    pub seq: u64,
}

/// One message appended to a campaign that is loaded already (the transactional lane): a
/// recipient row like a list's, queued as pending at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendRow {
    /// The normalised address.
    pub address: String,
    /// Its domain (lowercase, punycode).
    pub domain: String,
    /// Merge-field values, aligned with [`CampaignMeta::columns`].
    pub values: Vec<String>,
    /// The variant (index) of the campaign's message it gets.
    pub variant: u8,
    /// When set, a retry of the same request finds the first row instead of adding another.
    pub idempotency: Option<IdempotencyKey>,
}

/// A client's idempotency key for one appended row, with what identifies its request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// The key as the client sent it.
    pub key: String,
    /// A digest of the request (a retry has the same; another request with the key does not).
    pub fingerprint: [u8; 32],
    /// How long the key is remembered (24 h for the HTTP API).
    pub window: std::time::Duration,
}

/// What [`super::CampaignStore::append`] did with one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Stored as a new pending recipient.
    New(RecipientKey),
    /// Its idempotency key was used within its window: nothing was added. `same_request`
    /// tells whether the fingerprints match (a retry) or not (another request reusing the key).
    Existing {
        /// The row the key named first.
        key: RecipientKey,
        /// True when the fingerprint is the first request's.
        same_request: bool,
    },
}

/// One accepted recipient and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientRecord {
    /// The normalised address.
    pub email: String,
    /// Merge-field values, aligned with [`CampaignMeta::columns`].
    pub values: Vec<String>,
    /// The CSV line it came from.
    pub line: u64,
    /// Current state.
    pub state: RecipientState,
    /// Delivery attempts made so far.
    pub attempts: u32,
    /// When the first attempt was made.
    pub first_attempt: Option<Millis>,
    /// When a deferred recipient is due again.
    pub next_attempt: Option<Millis>,
    /// The last reply (or local failure) seen.
    pub last_reply: Option<ReplyRecord>,
    /// The A/B variant (index) it gets; while held, the one it gets if the remainder is split.
    pub variant: u8,
}

/// A recipient read back for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecipient {
    /// Its key, to report the outcome against.
    pub key: RecipientKey,
    /// Its record.
    pub record: RecipientRecord,
}

/// Where a delivered message went: lets a late bounce that quotes the Message-ID find its
/// recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRef {
    /// The campaign id.
    pub campaign: String,
    /// The recipient.
    pub key: RecipientKey,
}

/// The policies that turn outcomes into states and suppressions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutcomePolicy {
    /// Retries and expiry.
    pub retry: RetryPolicy,
    /// When soft bounces suppress an address.
    pub suppression: SuppressionPolicy,
}

/// One recipient's outcome to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeUpdate {
    /// Which recipient.
    pub key: RecipientKey,
    /// What happened.
    pub outcome: Outcome,
    /// The Message-ID (without angle brackets) of the message that was sent, if one was.
    pub message_id: Option<String>,
}

/// What kind of report an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A delivery failed for good.
    Bounce,
    /// A delivery is delayed; the receiver keeps trying.
    Delay,
    /// The recipient complained (marked the message as spam).
    Complaint,
}

/// One bounce, delay or complaint recorded for a recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BounceEvent {
    /// When it was recorded.
    pub at: Millis,
    /// What it was.
    pub kind: EventKind,
    /// The recipient.
    pub key: RecipientKey,
    /// The recipient's address.
    pub address: String,
    /// The status and diagnostic reported.
    pub reply: ReplyRecord,
    /// Where it came from (a file, `file#3` in an mbox, `smtp` for the listener).
    pub source: String,
}

/// What applying a report changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportEffect {
    /// The recipient is now bounced.
    Bounced,
    /// A delay was noted; nothing else changes.
    Delayed,
    /// A complaint was noted and the address suppressed.
    Complained,
    /// Nothing changed: the recipient was already bounced.
    Unchanged,
}

/// Where a test-then-winner campaign stands.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AbRecord {
    /// When the test share had all gone out (first attempts made), if it has.
    pub test_sent_at: Option<Millis>,
    /// What the remainder was sent with, once decided.
    pub decision: Option<AbDecision>,
}

/// What the remainder of a test-then-winner campaign went to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AbDecision {
    /// When it was decided.
    pub at: Millis,
    /// `winner`, `split`, `variant` (the configured fallback) or `hold`.
    pub how: String,
    /// The variant index the remainder went to; `None` for a split.
    pub variant: Option<u8>,
    /// Why: the verdict's reason at the time.
    pub reason: crate::model::Reason,
    /// How many held recipients were released.
    pub released: u64,
}

/// What an A/B verdict of a campaign is read from, in a form that is cheap to take and to
/// compare: the recipients by state and the tracking counters per variant, and the key of the
/// campaign's latest late report (bounce, delay or complaint). Two equal marks mean no event
/// arrived in between, so the verdict would be the same.
/// Opaque to callers: only equality means anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbMark {
    pub(crate) counts: Vec<(u8, Counts)>,
    pub(crate) tracking: Vec<(u8, crate::model::TrackCounts)>,
    /// An engine-specific marker of the latest late report (sled: its key).
    pub(crate) last_report: Option<Vec<u8>>,
}

/// What happened, in the words `volley events` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ExportKind {
    /// The receiving server accepted the message.
    Delivered,
    /// A temporary failure (an attempt, or a delay reported later).
    Deferred,
    /// A permanent failure (an attempt, or a bounce reported later).
    Bounced,
    /// Given up after the campaign's `expire_after`.
    Expired,
    /// Not sent: the address is on the suppression list.
    Suppressed,
    /// Not sent: the campaign was cancelled.
    Cancelled,
    /// The open pixel was fetched.
    Open,
    /// A tracked link was followed.
    Click,
    /// The one-click unsubscribe was posted.
    Unsubscribe,
    /// The recipient marked the message as spam.
    Complaint,
}

impl ExportKind {
    /// The lowercase word used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            ExportKind::Delivered => "delivered",
            ExportKind::Deferred => "deferred",
            ExportKind::Bounced => "bounced",
            ExportKind::Expired => "expired",
            ExportKind::Suppressed => "suppressed",
            ExportKind::Cancelled => "cancelled",
            ExportKind::Open => "open",
            ExportKind::Click => "click",
            ExportKind::Unsubscribe => "unsubscribe",
            ExportKind::Complaint => "complaint",
        }
    }

    pub(crate) fn from_state(state: RecipientState) -> Self {
        match state {
            RecipientState::Delivered => ExportKind::Delivered,
            RecipientState::Bounced => ExportKind::Bounced,
            RecipientState::Expired => ExportKind::Expired,
            // Never logged (a holdout recipient is never attempted); like suppressed, not sent.
            RecipientState::Suppressed | RecipientState::Holdout => ExportKind::Suppressed,
            RecipientState::Cancelled => ExportKind::Cancelled,
            // A deferral (pending and held never follow an attempt).
            RecipientState::Deferred
            | RecipientState::Pending
            | RecipientState::Held
            | RecipientState::Waiting => ExportKind::Deferred,
        }
    }
}

/// One event of a campaign's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportEvent {
    /// When it happened (epoch milliseconds).
    pub at: Millis,
    /// What happened.
    pub kind: ExportKind,
    /// The recipient's address (empty if its record is gone).
    pub recipient: String,
    /// The A/B variant (index) of the recipient (`None` if its record is gone).
    pub variant: Option<u8>,
    /// For opens and clicks judged machine-made: why.
    pub machine: Option<MachineReason>,
    /// For a click: the link's index in the campaign's link table.
    pub link: Option<u16>,
    /// For a click: the link as the campaign's templates have it (merge fields unrendered).
    pub url: Option<String>,
    /// For delivery outcomes and reports: the reply (code, enhanced code, text, category).
    pub reply: Option<ReplyRecord>,
}

/// A number of events of a campaign alike in what a report draws from them: the minute,
/// the kind, the variant (where it counts), the reply's category and whether a machine made
/// it. See [`super::api::HistoryStore::event_tallies`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventTally {
    /// The minute they happened in (epoch milliseconds / 60,000).
    pub minute: u64,
    /// What happened.
    pub kind: ExportKind,
    /// The recipient's stored variant for opens, clicks, unsubscribes and complaints; `None`
    /// for the rest (and when the recipient's record is gone).
    pub variant: Option<u8>,
    /// The reply's category (delivery outcomes and reports that have one).
    pub category: Option<Category>,
    /// An open or click judged machine-made.
    pub machine: bool,
    /// How many events.
    pub count: u64,
}

impl EventTally {
    /// The tally of one event (`count` 1), as [`EventTally`] describes it.
    pub fn of(event: &ExportEvent) -> EventTally {
        let per_variant = matches!(
            event.kind,
            ExportKind::Open | ExportKind::Click | ExportKind::Unsubscribe | ExportKind::Complaint
        );
        EventTally {
            minute: event.at / 60_000,
            kind: event.kind,
            variant: event.variant.filter(|_| per_variant),
            category: event.reply.as_ref().and_then(|r| r.category),
            machine: event.machine.is_some(),
            count: 1,
        }
    }
}

/// How far a campaign's events have been exported (by `volley events`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportMark {
    /// Every event up to and including this moment (epoch ms) has been exported.
    pub through: Millis,
    /// When that export ran.
    pub at: Millis,
}

/// How far a webhook has delivered one campaign's history (acknowledged by a 2xx): every
/// event before `at`, and the first `skip` events at `at` (in the history's order), were
/// acknowledged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookCursor {
    /// The moment (epoch ms) the cursor stands in.
    pub at: Millis,
    /// Events at `at` already acknowledged.
    pub skip: u64,
}

/// What collecting one campaign removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collected {
    /// Recipient records packed down to address, state and variant (none the second time).
    pub recipients: u64,
    /// Keys deleted (attempts, events, queue and retry entries, de-duplication, messages).
    pub keys_removed: u64,
}

/// What `volley gc` should do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcOptions {
    /// Only these campaigns (ids, or campaigns with editions); every campaign when empty.
    pub campaigns: Vec<String>,
    /// Collect finished campaigns even when their events were not exported.
    pub force: bool,
    /// Say what would be collected, change nothing.
    pub dry_run: bool,
    /// Webhooks to forget first (gone from every serve file for good): their cursors no
    /// longer keep any campaign's history (see `volley::webhooks::first_behind`).
    #[serde(default)]
    pub forget_webhooks: Vec<String>,
}

/// What happened to one campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum GcOutcome {
    /// Collected now (or, in a dry run, would be).
    Collected {
        /// Recipients packed and keys removed.
        removed: Collected,
    },
    /// Collected earlier and nothing new since.
    AlreadyCollected,
    /// Recipients are still to be sent (pending, deferred or held for an A/B verdict).
    Unfinished {
        /// How many.
        open: u64,
    },
    /// Events after this moment have not been exported: run `volley events` first.
    NotExported {
        /// The campaign's latest event.
        last_event: Millis,
        /// How far the events were exported, if at all.
        exported_through: Option<Millis>,
    },
    /// A send of it is running.
    Sending,
    /// Webhook `webhook` has not had every event acknowledged (its receiver is behind or
    /// down): collecting now would take events it has still to send.
    WebhookBehind {
        /// The webhook's name.
        webhook: String,
        /// The campaign's latest event.
        last_event: Millis,
    },
}

/// One campaign's line of the gc report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcLine {
    /// The campaign id (an edition for scheduled campaigns).
    pub campaign: String,
    /// What happened to it.
    #[serde(flatten)]
    pub outcome: GcOutcome,
}

/// What `volley gc` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcReport {
    /// Each campaign considered.
    pub campaigns: Vec<GcLine>,
    /// The store's size on disk before, in bytes.
    pub bytes_before: u64,
    /// Its size after (the same when it could not be rewritten).
    pub bytes_after: u64,
    /// Whether the store was rewritten to give the space back; false when another process
    /// holds it (the space is reused, and returned at the next gc with the store free).
    pub compacted: bool,
}

/// What the tracking server needs to know about a campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackingMeta {
    /// The tracked links, by index, as written in the templates (merge fields unrendered).
    pub links: Vec<String>,
    /// The fingerprint of the key its tokens are signed with.
    pub key_fingerprint: String,
}

/// What one relay did for a campaign (`[[relay]]`): the outcomes of the messages it was
/// handed and the times it was taken out for a cool-down while the campaign was sending.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayTally {
    /// The relay's name (`name`, default `host:port`).
    pub relay: String,
    /// Messages it accepted.
    pub delivered: u64,
    /// Attempts it deferred (or that were cut, the connection lost).
    pub deferred: u64,
    /// Messages it refused for good (bounced).
    pub bounced: u64,
    /// Times it was taken out (refused login, TLS failure, out of reach).
    pub cooldowns: u64,
}

impl RelayTally {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &RelayTally) {
        self.delivered += other.delivered;
        self.deferred += other.deferred;
        self.bounced += other.bounced;
        self.cooldowns += other.cooldowns;
    }
}

/// What the tracking server needs to show a campaign's messages in a browser: the HTML
/// template of each version (tracked links as placeholders, no open pixel) and, when the
/// campaign has a public archive page, the values its merge fields take there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewMeta {
    /// The tracking server's base URL, as the messages' links name it.
    pub base_url: String,
    /// One per variant, by variant index.
    pub versions: Vec<ViewVersion>,
    /// `Some` when `[campaign] archive = true`: each merge field's value on the public
    /// archive page (`[campaign] archive_fields`; a field not named shows empty).
    pub archive: Option<Vec<(String, String)>>,
}

/// One version of a campaign's message as a browser shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewVersion {
    /// The subject template (the page's title).
    pub subject: String,
    /// The HTML template, rewritten for tracking without the open pixel; `None` for a text
    /// only version (shown as preformatted text).
    pub html: Option<String>,
    /// The text template, used when there is no HTML.
    pub text: Option<String>,
}

/// What a tracked request was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackKind {
    /// The open pixel was fetched.
    Open,
    /// A tracked link was followed.
    Click,
    /// The one-click unsubscribe was posted.
    Unsubscribe,
}

/// Why an event was judged machine-made, if it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MachineReason {
    /// A privacy proxy that fetches every image (Apple Mail Privacy Protection).
    PrivacyProxy,
    /// A known security scanner or an HTTP library.
    Scanner,
    /// A HEAD request: something checking the link, not a person.
    HeadRequest,
    /// Within seconds of delivery: fetched on arrival, not read.
    TooSoon,
    /// Several links clicked within a second.
    ClickBurst,
}

impl MachineReason {
    /// The snake_case name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            MachineReason::PrivacyProxy => "privacy_proxy",
            MachineReason::Scanner => "scanner",
            MachineReason::HeadRequest => "head_request",
            MachineReason::TooSoon => "too_soon",
            MachineReason::ClickBurst => "click_burst",
        }
    }
}

/// One tracked request to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInput {
    /// The campaign id.
    pub campaign: String,
    /// The recipient.
    pub key: RecipientKey,
    /// The recipient's address (for an unsubscribe).
    pub address: String,
    /// The A/B variant.
    pub variant: u8,
    /// Open, click or unsubscribe.
    pub kind: TrackKind,
    /// The link, for a click.
    pub link: Option<u16>,
    /// When it happened.
    pub at: Millis,
    /// Set when the request looked machine-made.
    pub machine: Option<MachineReason>,
    /// For an unsubscribe: the topic it leaves (`None`: every mailing, a global entry).
    pub topic: Option<String>,
}

/// One stored event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackEvent {
    /// When it happened.
    pub at: Millis,
    /// Open, click or unsubscribe.
    pub kind: TrackKind,
    /// The recipient.
    pub key: RecipientKey,
    /// The A/B variant.
    pub variant: u8,
    /// The link, for a click.
    pub link: Option<u16>,
    /// Set when it was judged machine-made.
    pub machine: Option<MachineReason>,
}

/// What recording changed for one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackEffect {
    /// The machine verdict finally stored (a click may turn out to be part of a burst).
    pub machine: Option<MachineReason>,
    /// True when this was the recipient's first (human) event of its kind.
    pub first: bool,
    /// False when nothing was stored: the recipient had reached the day's cap of events, or
    /// had unsubscribed already.
    pub stored: bool,
}

/// One recipient domain of a campaign: its recipients by state and who engaged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainTally {
    /// The domain.
    pub domain: String,
    /// Its recipients by state.
    pub counts: crate::model::Counts,
    /// Recipients with a human open.
    pub opened: u64,
    /// Recipients with a human click.
    pub clicked: u64,
}
