//! Campaign reports: totals, variants with their rates and intervals, the A/B verdict, the
//! largest recipient domains, bounces by category and a timeline, read from the store. The
//! `volley` binary renders them as a table, CSV, JSON or a self-contained HTML page.

mod events;
mod model;
pub mod money;

pub use events::EventRow;
pub use model::{
    AbSummary, Bucket, CategoryRow, Decision, DomainRow, HoldoutRow, Report, Timeline, VariantRow,
};

use crate::ab::{self, Rules, VariantInput, Verdict};
use crate::config::CampaignSettings;
use crate::model::Metric;
use crate::model::{
    add_duration, variant_index, Category, Counts, DestinationBlock, Millis, TrackCounts, REMAINDER,
};
use crate::store::{AbRecord, Attribution, EventTally, ExportKind, Store, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// The most buckets a timeline is drawn with.
const MAX_BUCKETS: u64 = 120;
/// Bucket widths a timeline may use, in minutes.
const BUCKET_MINUTES: [u64; 11] = [1, 5, 15, 30, 60, 180, 360, 720, 1_440, 10_080, 43_200];

/// What a report needs to know of the campaign besides the store: its variants and A/B
/// rules (from the campaign file), and how many domains to list. Serialisable, so a process
/// that owns the store can build the report for another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportSpec {
    /// The campaign id in the store (for a scheduled campaign, the edition).
    pub campaign: String,
    /// The variants: id and weight, in order (one `main` for a campaign without variants).
    pub variants: Vec<(String, f64)>,
    /// Test-then-winner settings, when `[ab]` is set.
    pub ab: Option<AbSpec>,
    /// How many recipient domains to list.
    pub top: usize,
    /// The share of the list held out (`[ab] holdout`; 0: none).
    #[serde(default)]
    pub holdout: f64,
}

/// The `[ab]` settings a report shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AbSpec {
    /// The share of the list in the test.
    pub test_share: f64,
    /// How long after the test share went out the verdict is taken.
    pub wait: Duration,
    /// How the verdict is reached.
    pub rules: Rules,
}

impl ReportSpec {
    /// The spec for `settings` (its campaign id as it is: resolve editions before building).
    pub fn for_campaign(settings: &CampaignSettings, top: usize) -> ReportSpec {
        let variants = if settings.variants.is_empty() {
            vec![(crate::config::MAIN_VARIANT.to_owned(), 1.0)]
        } else {
            settings
                .variants
                .iter()
                .map(|v| (v.id.clone(), v.weight))
                .collect()
        };
        ReportSpec {
            campaign: settings.id.clone(),
            variants,
            ab: settings.ab.as_ref().map(|ab| AbSpec {
                test_share: ab.test_share,
                wait: ab.wait,
                rules: ab.rules.clone(),
            }),
            top,
            holdout: settings.holdout,
        }
    }

    /// The rules verdicts are taken by (the defaults for an even split).
    pub fn rules(&self) -> Rules {
        self.ab
            .as_ref()
            .map(|ab| ab.rules.clone())
            .unwrap_or_default()
    }
}

/// Builds the report of `spec.campaign` from `store`.
pub fn build(store: &Store, spec: &ReportSpec, now: Millis) -> Result<Report, StoreError> {
    let campaign = spec.campaign.as_str();
    let counts = store
        .counts(campaign)?
        .ok_or_else(|| StoreError::UnknownCampaign {
            campaign: campaign.to_owned(),
            path: store.path().to_owned(),
        })?;
    let history = History::read(store, campaign, spec.variants.len())?;
    let stored = Stored {
        counts: store.variant_counts(campaign)?.into_iter().collect(),
        tracking: store.tracking_counts(campaign)?.into_iter().collect(),
        complaints: history.complaints.clone(),
    };
    let rules = spec.rules();
    let total_weight: f64 = spec.variants.iter().map(|(_, w)| w).sum();
    let variants: Vec<VariantRow> = spec
        .variants
        .iter()
        .enumerate()
        .map(|(i, (id, weight))| {
            let index = u8::try_from(i).unwrap_or(u8::MAX);
            let (mut counts, mut engagement, mut complaints) = stored.of(index);
            let remainder = stored.of(index | REMAINDER);
            counts.add(&remainder.0);
            engagement.add(&remainder.1);
            complaints += remainder.2;
            let delivered = counts.delivered;
            VariantRow {
                id: id.clone(),
                share: if total_weight > 0.0 {
                    weight / total_weight
                } else {
                    0.0
                },
                recipients: counts.total,
                complaints,
                open_rate: rate(engagement.opened, delivered),
                open_ci: ab::wilson(
                    engagement.opened.min(delivered),
                    delivered,
                    rules.confidence,
                ),
                click_rate: rate(engagement.clicked, delivered),
                click_ci: ab::wilson(
                    engagement.clicked.min(delivered),
                    delivered,
                    rules.confidence,
                ),
                counts,
                engagement,
            }
        })
        .collect();
    let ab = (variants.len() >= 2)
        .then(|| ab_summary(store, spec, &stored, counts.held, now))
        .transpose()?;
    let money = money_summary(store, spec, &stored, counts.holdout)?;
    let (domains, other_domains) = if spec.top == 0 {
        (Vec::new(), None)
    } else {
        top_domains(store, campaign, spec.top)?
    };
    Ok(Report {
        campaign: campaign.to_owned(),
        generated_at: now,
        engagement: store.tracking_totals(campaign)?,
        complaints: history.complaints.values().sum(),
        holdout: holdout_row(spec, &counts),
        counts,
        variants,
        ab,
        money,
        domains,
        other_domains,
        bounces: history.categories(),
        blocks: blocks_of(store, campaign)?,
        timeline: history.timeline(&spec.variants),
        relays: store.relay_tallies(campaign)?,
    })
}

/// The policy blocks kept in `store` that held back recipients of `campaign`.
pub fn blocks_of(store: &Store, campaign: &str) -> Result<Vec<DestinationBlock>, StoreError> {
    let mut blocks: Vec<DestinationBlock> = store
        .destination_blocks()?
        .into_iter()
        .filter(|b| b.campaigns.iter().any(|c| c == campaign))
        .collect();
    blocks.sort_by_key(|b| std::cmp::Reverse(b.tripped_at));
    Ok(blocks)
}

/// The holdout's entry, for a campaign with a holdout configured or stored.
fn holdout_row(spec: &ReportSpec, counts: &Counts) -> Option<HoldoutRow> {
    (spec.holdout > 0.0 || counts.holdout > 0).then(|| HoldoutRow {
        id: HOLDOUT_ID.to_owned(),
        share: spec.holdout,
        recipients: counts.holdout,
    })
}

/// The id of the holdout's entry in reports and verdicts.
pub const HOLDOUT_ID: &str = "holdout";

/// The A/B verdict on the test's numbers as they are now, the one [`build`] reports, read
/// from the store's counters (recipients by state and engagement per variant) and, for
/// complaints, the campaign's late reports and archive, never from its delivery history: a
/// few reads however large the list. `None` with fewer than two variants.
pub fn ab_verdict(store: &Store, spec: &ReportSpec) -> Result<Option<Verdict>, StoreError> {
    if spec.variants.len() < 2 {
        return Ok(None);
    }
    let campaign = spec.campaign.as_str();
    let mut complaints = store
        .archive::<History>(campaign)?
        .map(|archived| archived.complaints)
        .unwrap_or_default();
    for (variant, n) in store.complaints_by_variant(campaign)? {
        *complaints.entry(variant).or_default() += n;
    }
    let stored = Stored {
        counts: store.variant_counts(campaign)?.into_iter().collect(),
        tracking: store.tracking_counts(campaign)?.into_iter().collect(),
        complaints,
    };
    let conversions = money_conversions(store, spec)?;
    let arms = test_arms(spec, &stored, &conversions);
    Ok(Some(verdict(spec, &stored, &arms)))
}

/// What the store counted per stored variant (a variant index, or one marked as the
/// remainder sent after the verdict).
struct Stored {
    counts: HashMap<u8, Counts>,
    tracking: HashMap<u8, TrackCounts>,
    complaints: HashMap<u8, u64>,
}

impl Stored {
    /// Recipients by state, engagement and complaints of one stored variant.
    fn of(&self, stored: u8) -> (Counts, TrackCounts, u64) {
        (
            self.counts.get(&stored).cloned().unwrap_or_default(),
            self.tracking.get(&stored).copied().unwrap_or_default(),
            self.complaints.get(&stored).copied().unwrap_or(0),
        )
    }
}

/// The verdict on the test's numbers as they are now: each variant's randomised share only,
/// never the remainder sent after the verdict (which is not a random split).
fn verdict(spec: &ReportSpec, stored: &Stored, arms: &[ab::revenue::Arm]) -> Verdict {
    let inputs: Vec<VariantInput> = spec
        .variants
        .iter()
        .enumerate()
        .map(|(i, (id, _))| {
            let (counts, engagement, complaints) = stored.of(u8::try_from(i).unwrap_or(u8::MAX));
            VariantInput {
                id: id.clone(),
                delivered: counts.delivered,
                bounced: counts.bounced,
                opens: engagement.opened,
                clicks: engagement.clicked,
                unsubscribes: engagement.unsubscribed,
                complaints,
            }
        })
        .collect();
    let rules = spec.rules();
    if matches!(rules.metric, Metric::Conversions | Metric::Revenue) {
        let money: Vec<ab::revenue::MoneyInput> = inputs
            .into_iter()
            .zip(
                arms.iter()
                    .cloned()
                    .chain(std::iter::repeat(ab::revenue::Arm::default())),
            )
            .map(|(base, arm)| ab::revenue::MoneyInput { base, arm })
            .collect();
        return ab::revenue::decide_money(&money, &rules);
    }
    ab::decide(&inputs, &rules)
}

/// Each variant's test arm: its delivered recipients and the orders attributed to them.
fn test_arms(
    spec: &ReportSpec,
    stored: &Stored,
    conversions: &[crate::store::Conversion],
) -> Vec<ab::revenue::Arm> {
    (0..spec.variants.len())
        .map(|i| {
            let index = u8::try_from(i).unwrap_or(u8::MAX);
            let delivered = stored.of(index).0.delivered;
            money::arm_of(conversions, Attribution::Variant(index), delivered)
        })
        .collect()
}

/// The conversions of `campaign` when the metric needs them (the verdict reads no orders
/// otherwise).
fn money_conversions(
    store: &Store,
    spec: &ReportSpec,
) -> Result<Vec<crate::store::Conversion>, StoreError> {
    if matches!(spec.rules().metric, Metric::Conversions | Metric::Revenue) {
        store.conversions(&spec.campaign)
    } else {
        Ok(Vec::new())
    }
}

/// Conversions, revenue and lift against the holdout per variant, when the campaign has
/// orders or its A/B metric is money (`None` otherwise). Every variant's test arm counts its
/// delivered recipients; the holdout its held-out recipients.
fn money_summary(
    store: &Store,
    spec: &ReportSpec,
    stored: &Stored,
    holdout_recipients: u64,
) -> Result<Option<money::MoneySummary>, StoreError> {
    let conversions = store.conversions(&spec.campaign)?;
    let money_metric = matches!(spec.rules().metric, Metric::Conversions | Metric::Revenue);
    if !money_metric && conversions.is_empty() {
        return Ok(None);
    }
    let arms = test_arms(spec, stored, &conversions);
    let holdout = (holdout_recipients > 0)
        .then(|| money::arm_of(&conversions, Attribution::Holdout, holdout_recipients));
    let ids: Vec<String> = spec.variants.iter().map(|(id, _)| id.clone()).collect();
    Ok(Some(money::summary(
        &conversions,
        &ids,
        &arms,
        holdout.as_ref(),
        spec.rules().confidence,
    )))
}

/// The A/B part: the verdict, what is held, and what was decided.
fn ab_summary(
    store: &Store,
    spec: &ReportSpec,
    stored: &Stored,
    held: u64,
    now: Millis,
) -> Result<AbSummary, StoreError> {
    let record: AbRecord = store.ab_record(&spec.campaign)?;
    let conversions = money_conversions(store, spec)?;
    let arms = test_arms(spec, stored, &conversions);
    let decide_after = match (&spec.ab, record.test_sent_at, &record.decision) {
        (Some(ab), Some(sent), None) => Some(add_duration(sent, ab.wait)),
        _ => None,
    };
    let decision = record.decision.map(|d| Decision {
        at: d.at,
        how: d.how,
        variant: d
            .variant
            .and_then(|i| spec.variants.get(usize::from(i)))
            .map(|(id, _)| id.clone()),
        reason: d.reason,
        released: d.released,
    });
    Ok(AbSummary {
        mode: if spec.ab.is_some() {
            "test_then_winner".to_owned()
        } else {
            "split".to_owned()
        },
        verdict: {
            let mut verdict = verdict(spec, stored, &arms);
            let waited = match (&spec.ab, record.test_sent_at) {
                (Some(ab), Some(sent)) => now >= add_duration(sent, ab.wait),
                _ => false,
            };
            if waited && verdict.stop.is_none() {
                verdict.stop = Some(ab::Stop::MaxWait);
            }
            verdict
        },
        held,
        decide_after,
        decision,
    })
}

/// The `top` largest domains by recipients, and the rest together.
fn top_domains(
    store: &Store,
    campaign: &str,
    top: usize,
) -> Result<(Vec<DomainRow>, Option<DomainRow>), StoreError> {
    let mut rows: Vec<DomainRow> = store
        .domain_tallies(campaign)?
        .into_iter()
        .map(|t| DomainRow {
            domain: t.domain,
            recipients: t.counts.total,
            delivered: t.counts.delivered,
            bounced: t.counts.bounced,
            deferred: t.counts.deferred + t.counts.expired,
            opened: t.opened,
            clicked: t.clicked,
        })
        .collect();
    rows.sort_by(|a, b| {
        b.recipients
            .cmp(&a.recipients)
            .then_with(|| a.domain.cmp(&b.domain))
    });
    if rows.len() <= top {
        return Ok((rows, None));
    }
    let rest = rows.split_off(top);
    let mut other = DomainRow {
        domain: "other".to_owned(),
        ..DomainRow::default()
    };
    for row in rest {
        other.recipients += row.recipients;
        other.delivered += row.delivered;
        other.bounced += row.bounced;
        other.deferred += row.deferred;
        other.opened += row.opened;
        other.clicked += row.clicked;
    }
    Ok((rows, Some(other)))
}

/// What one pass over a campaign's events finds: complaints per variant, failures per
/// category, and per-minute counts for the timeline. `volley gc` keeps it as the campaign's
/// archive before deleting the events, so reports of a collected campaign still show it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct History {
    complaints: HashMap<u8, u64>,
    categories: BTreeMap<Category, (u64, u64)>,
    minutes: BTreeMap<u64, Bucket>,
    variants: usize,
}

impl History {
    /// The campaign's history: its archive, if it was collected, and the events in the store.
    pub fn read(store: &Store, campaign: &str, variants: usize) -> Result<History, StoreError> {
        let variants = variants.max(1);
        let mut history = match store.archive::<History>(campaign)? {
            Some(archived) => History {
                variants,
                ..archived
            },
            None => History {
                complaints: HashMap::new(),
                categories: BTreeMap::new(),
                minutes: BTreeMap::new(),
                variants,
            },
        };
        // Counted where the events are: a few hundred tallies, not a million events.
        for tally in store.event_tallies(campaign)? {
            history.note(&tally);
        }
        Ok(history)
    }

    fn note(&mut self, tally: &EventTally) {
        let n = tally.count;
        let stored = tally.variant.unwrap_or(0);
        let variant = usize::from(variant_index(stored)).min(self.variants - 1);
        let variants = self.variants;
        let bucket = self.minutes.entry(tally.minute).or_insert_with(|| Bucket {
            at: tally.minute * 60_000,
            opens: vec![0; variants],
            clicks: vec![0; variants],
            ..Bucket::default()
        });
        match tally.kind {
            ExportKind::Delivered => bucket.delivered += n,
            ExportKind::Bounced => {
                bucket.bounced += n;
                self.categories
                    .entry(tally.category.unwrap_or(Category::Other))
                    .or_default()
                    .0 += n;
            }
            ExportKind::Deferred | ExportKind::Expired => {
                if let Some(category) = tally.category {
                    self.categories.entry(category).or_default().1 += n;
                }
            }
            ExportKind::Open | ExportKind::Click if tally.machine => bucket.machine += n,
            ExportKind::Open => bump(&mut bucket.opens, variant, n),
            ExportKind::Click => bump(&mut bucket.clicks, variant, n),
            ExportKind::Complaint => *self.complaints.entry(stored).or_default() += n,
            ExportKind::Suppressed | ExportKind::Cancelled | ExportKind::Unsubscribe => {}
        }
    }

    /// Bounce categories, most frequent first.
    fn categories(&self) -> Vec<CategoryRow> {
        let mut rows: Vec<CategoryRow> = self
            .categories
            .iter()
            .map(|(category, (hard, soft))| CategoryRow {
                category: category.as_str().to_owned(),
                hard: *hard,
                soft: *soft,
            })
            .collect();
        rows.sort_by_key(|row| std::cmp::Reverse(row.hard + row.soft));
        rows
    }

    /// The per-minute counts merged into at most [`MAX_BUCKETS`] equal buckets.
    fn timeline(&self, variants: &[(String, f64)]) -> Timeline {
        let ids = variants.iter().map(|(id, _)| id.clone()).collect();
        let (Some(first), Some(last)) = (self.minutes.keys().next(), self.minutes.keys().last())
        else {
            return Timeline {
                variants: ids,
                ..Timeline::default()
            };
        };
        let span = last - first + 1;
        let width = BUCKET_MINUTES
            .iter()
            .copied()
            .find(|w| span.div_ceil(*w) <= MAX_BUCKETS)
            .unwrap_or(43_200);
        let start = first - first % width;
        let count = (last - start) / width + 1;
        let mut buckets: Vec<Bucket> = (0..count)
            .map(|i| Bucket {
                at: (start + i * width) * 60_000,
                opens: vec![0; self.variants],
                clicks: vec![0; self.variants],
                ..Bucket::default()
            })
            .collect();
        for (minute, counts) in &self.minutes {
            let Some(bucket) = usize::try_from((minute - start) / width)
                .ok()
                .and_then(|i| buckets.get_mut(i))
            else {
                continue;
            };
            bucket.delivered += counts.delivered;
            bucket.bounced += counts.bounced;
            bucket.machine += counts.machine;
            for (sum, n) in bucket.opens.iter_mut().zip(&counts.opens) {
                *sum += n;
            }
            for (sum, n) in bucket.clicks.iter_mut().zip(&counts.clicks) {
                *sum += n;
            }
        }
        Timeline {
            start: start * 60_000,
            bucket_ms: width * 60_000,
            variants: ids,
            buckets,
        }
    }
}

fn bump(counts: &mut [u64], index: usize, n: u64) {
    if let Some(count) = counts.get_mut(index) {
        *count += n;
    }
}

/// `part / whole`, 0 when `whole` is 0.
fn rate(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

#[cfg(test)]
mod tests;
