//! What `volley report` shows, in every format: plain data, serialisable as JSON.

use crate::ab::{Reason, Verdict};
use crate::model::{Counts, DestinationBlock, Millis, TrackCounts};
use serde::{Deserialize, Serialize};

/// A campaign's report: totals, variants, the A/B verdict, domains, bounces and a timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The campaign id (for a scheduled campaign, the edition).
    pub campaign: String,
    /// When the report was made (epoch ms).
    pub generated_at: Millis,
    /// Recipients by state, and the rows the loader refused.
    pub counts: Counts,
    /// Opens, clicks and unsubscribes of the whole campaign.
    pub engagement: TrackCounts,
    /// Complaints (ARF feedback reports) received.
    pub complaints: u64,
    /// One row per variant (a campaign without variants has one, id `main`).
    pub variants: Vec<VariantRow>,
    /// The holdout (`[ab] holdout`), its own entry beside the variants: `None` for a
    /// campaign without one.
    #[serde(default)]
    pub holdout: Option<HoldoutRow>,
    /// The A/B verdict, for a campaign with two or more variants.
    pub ab: Option<AbSummary>,
    /// Conversions, revenue and lift against the holdout per variant (and the holdout's
    /// own figures), when the campaign has orders or its A/B metric is `conversions` or
    /// `revenue`.
    #[serde(default)]
    pub money: Option<super::money::MoneySummary>,
    /// The largest recipient domains, largest first (at most the `top` asked for).
    pub domains: Vec<DomainRow>,
    /// The remaining domains together, when there are more than `top`.
    pub other_domains: Option<DomainRow>,
    /// Bounces by category, most frequent first.
    pub bounces: Vec<CategoryRow>,
    /// Policy blocks that held the campaign's recipients back: destinations whose circuit
    /// breaker tripped on replies saying the sender is blocked (the replies, how many, when,
    /// until when), lifted or not.
    #[serde(default)]
    pub blocks: Vec<DestinationBlock>,
    /// Deliveries, bounces, opens and clicks over time.
    pub timeline: Timeline,
    /// What each relay did (`[[relay]]`): delivered, deferred, bounced and cool-downs, by
    /// relay name; empty when the campaign went direct to MX.
    #[serde(default)]
    pub relays: Vec<crate::store::RelayTally>,
}

/// One variant's row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantRow {
    /// The variant id.
    pub id: String,
    /// Its share of the list by weight (0..=1).
    pub share: f64,
    /// Recipients assigned to it so far (held recipients of a test-then-winner campaign
    /// are not counted until the remainder is sent).
    pub recipients: u64,
    /// Recipients by state within this variant.
    pub counts: Counts,
    /// Its opens, clicks and unsubscribes.
    pub engagement: TrackCounts,
    /// Its complaints.
    pub complaints: u64,
    /// Unique human openers / delivered.
    pub open_rate: f64,
    /// Wilson interval of `open_rate` (at the A/B confidence, 0.95 by default).
    pub open_ci: (f64, f64),
    /// Unique human clickers / delivered.
    pub click_rate: f64,
    /// Wilson interval of `click_rate`.
    pub click_ci: (f64, f64),
}

/// The holdout's entry: the recipients kept out of the send to measure lift against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldoutRow {
    /// Always `holdout` ([`super::HOLDOUT_ID`]); never one of the variants, even should a
    /// variant have that id.
    pub id: String,
    /// The configured share of the list (`[ab] holdout`).
    pub share: f64,
    /// Recipients held out (never mailed, never tracked).
    pub recipients: u64,
}

/// The A/B part of a report: the verdict now, and what was decided, if anything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AbSummary {
    /// `split` (the whole list split by weight) or `test_then_winner`.
    pub mode: String,
    /// The verdict on the numbers as they are now.
    pub verdict: Verdict,
    /// Recipients of a test-then-winner campaign still held back for the winner.
    pub held: u64,
    /// When the remainder may be decided (epoch ms), for test-then-winner.
    pub decide_after: Option<Millis>,
    /// What was decided and when, once the remainder was released.
    pub decision: Option<Decision>,
}

/// What the remainder of a test-then-winner campaign was sent with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// When it was decided (epoch ms).
    pub at: Millis,
    /// `winner`, `split`, `variant` (the configured fallback) or `hold`.
    pub how: String,
    /// The variant the remainder went to; `None` for a split.
    pub variant: Option<String>,
    /// Why: the verdict's reason when it was decided.
    pub reason: Reason,
    /// How many held recipients were released to it.
    pub released: u64,
}

/// One recipient domain's row (or all the other domains together, `domain` = `other`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainRow {
    /// The domain.
    pub domain: String,
    /// Recipients at that domain.
    pub recipients: u64,
    /// Delivered.
    pub delivered: u64,
    /// Bounced.
    pub bounced: u64,
    /// Deferred or expired.
    pub deferred: u64,
    /// Unique human openers.
    pub opened: u64,
    /// Unique human clickers.
    pub clicked: u64,
}

/// Bounces of one category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryRow {
    /// The category (`invalid_recipient`, `mailbox_full`, …).
    pub category: String,
    /// Permanent failures (recipient bounced).
    pub hard: u64,
    /// Temporary failures (deferrals, expiries and delayed reports).
    pub soft: u64,
}

/// Events counted in equal time buckets from the first delivery on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline {
    /// Start of the first bucket (epoch ms).
    pub start: Millis,
    /// Bucket width in milliseconds.
    pub bucket_ms: u64,
    /// The variant ids, in the order of the per-variant counts in each bucket.
    pub variants: Vec<String>,
    /// The buckets, oldest first.
    pub buckets: Vec<Bucket>,
}

/// One time bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    /// Start of the bucket (epoch ms).
    pub at: Millis,
    /// Deliveries in the bucket.
    pub delivered: u64,
    /// Bounces in the bucket.
    pub bounced: u64,
    /// Human open events per variant (aligned with [`Timeline::variants`]).
    pub opens: Vec<u64>,
    /// Human click events per variant.
    pub clicks: Vec<u64>,
    /// Machine-made opens and clicks, all variants together.
    pub machine: u64,
}
