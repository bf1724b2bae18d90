//! What an A/B verdict compares and why it came out as it did, as facts: the case reached
//! and the numbers behind it. Shared values: `ab` decides them, the store keeps a decision's
//! reason, reports carry them, and the `volley` binary turns them into words.

use serde::{Deserialize, Serialize};

/// What an A/B test compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Unique human openers per delivered message.
    Opens,
    /// Unique human clickers per delivered message (the default).
    #[default]
    Clicks,
    /// Unique human clickers per unique human opener.
    ClicksPerOpen,
    /// Recipients with an attributed order per delivered message (see `ab::revenue`).
    Conversions,
    /// Attributed revenue per delivered recipient, compared by Welch's test.
    Revenue,
}

/// Why an A/B verdict came out as it did: one case per way `ab::decide` can end, with
/// the numbers a sentence about it needs (rates are fractions, 0.342 for 34.2 %).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Fewer than two variants, so there is nothing to compare.
    TooFewVariants {
        /// The one variant there is, if there is one.
        only: Option<String>,
    },
    /// The confidence asked for is not strictly between 0 and 1.
    InvalidConfidence {
        /// The confidence asked for.
        confidence: f64,
    },
    /// Every variant exceeded a limit, so none can win.
    AllVetoed {
        /// Each variant and the limits it exceeded.
        vetoed: Vec<Vetoed>,
    },
    /// Some variants that may win have fewer trials than the smallest sample.
    TooFewTrials {
        /// The metric compared.
        metric: Metric,
        /// The variants below the minimum, with their trials.
        short: Vec<VariantCount>,
        /// The smallest sample each variant needs.
        min_per_variant: u64,
        /// The sample each variant would need at the rates seen so far (at least the
        /// minimum).
        needed_per_variant: u64,
    },
    /// Only one variant may win (every other exceeded a limit): it wins without a test.
    OnlyOneLeft {
        /// The variant left, the winner, and its rate.
        winner: VariantRate,
        /// The metric compared.
        metric: Metric,
        /// The other variants and the limits they exceeded.
        vetoed: Vec<Vetoed>,
    },
    /// No variant can be compared with another (not reached with two variants left).
    NothingToCompare,
    /// The leader beats every other variant that may win, with the confidence asked for.
    Wins {
        /// The winner and its rate.
        winner: VariantRate,
        /// The variants it beats, in the order given, with their rates.
        beaten: Vec<VariantRate>,
        /// The metric compared.
        metric: Metric,
        /// The weakest comparison's p-value, Bonferroni adjusted.
        p_value: f64,
        /// How many comparisons the p-value is adjusted for (1: not adjusted).
        comparisons: usize,
        /// The confidence asked for.
        confidence: f64,
        /// The variants that could not win and the limits they exceeded.
        vetoed: Vec<Vetoed>,
    },
    /// The two best variants have exactly the same rate (the first given leads).
    Tie {
        /// The leader.
        first: String,
        /// The runner-up, level with it.
        second: String,
        /// Their common rate.
        rate: f64,
        /// The metric compared.
        metric: Metric,
        /// The variants that could not win and the limits they exceeded.
        vetoed: Vec<Vetoed>,
    },
    /// The leader's lead over its closest rival is not significant at the confidence asked.
    NotSignificant {
        /// The leader and its rate.
        leader: VariantRate,
        /// The rival of the weakest comparison and its rate.
        rival: VariantRate,
        /// The metric compared.
        metric: Metric,
        /// The weakest comparison's p-value, Bonferroni adjusted.
        p_value: f64,
        /// How many comparisons the p-value is adjusted for (1: not adjusted).
        comparisons: usize,
        /// The sample per variant the observed difference would need (`None` when none can
        /// be estimated).
        needed_per_variant: Option<u64>,
        /// The variants that could not win and the limits they exceeded.
        vetoed: Vec<Vetoed>,
    },
    /// A reason recorded as a sentence by an earlier version of Volley (a decision read
    /// from an older store); shown as it was written.
    Recorded {
        /// The sentence as it was stored.
        text: String,
    },
    /// A variant is significantly past a guardrail limit: the test stops and names no winner
    /// (the campaign's `on_veto` says what the remainder gets).
    Vetoed {
        /// Each limit a variant is significantly past, with the evidence.
        vetoed: Vec<Veto>,
    },
    /// Sequential: the lift left cannot matter. Every confidence sequence of the leader's
    /// lift lies inside ±`min_lift`.
    Futile {
        /// The leader and its rate.
        leader: VariantRate,
        /// The rival of the weakest comparison and its rate.
        rival: VariantRate,
        /// The metric compared.
        metric: Metric,
        /// The lowest end of the leader's lifts' confidence sequences.
        low: f64,
        /// The highest end.
        high: f64,
        /// The smallest lift that matters.
        min_lift: f64,
    },
}

/// One guardrail a variant is significantly past.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Veto {
    /// The variant id.
    pub id: String,
    /// Which limit.
    pub limit: Limit,
    /// The variant's rate.
    pub rate: f64,
    /// The limit's value.
    pub max: f64,
    /// The always-valid one-sided p-value of "the true rate is at most the limit".
    pub p_value: f64,
}

/// A variant and how many trials (the metric's denominator) it has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariantCount {
    /// The variant id.
    pub id: String,
    /// Its trials.
    pub trials: u64,
}

/// A variant and its rate on the metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantRate {
    /// The variant id.
    pub id: String,
    /// Its rate (successes / trials).
    pub rate: f64,
}

/// A variant that cannot win, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vetoed {
    /// The variant id.
    pub id: String,
    /// The limits it exceeded (never empty).
    pub exceeded: Vec<Exceeded>,
}

/// One limit a variant exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Exceeded {
    /// Which limit.
    pub limit: Limit,
    /// The variant's rate.
    pub rate: f64,
    /// The limit's value.
    pub max: f64,
}

/// The limits past which a variant cannot win (see `ab::Rules`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// `max_bounce_rate`: bounced / (delivered + bounced).
    BounceRate,
    /// `max_unsubscribe_rate`: unsubscribed / delivered.
    UnsubscribeRate,
    /// `max_complaint_rate`: complaints / delivered.
    ComplaintRate,
}
