//! The verdict of an A/B test: its rules, each variant's numbers, the guardrails, and
//! `decide`, which hands the comparison to the sequential or the fixed method.

use super::guardrail::{self, GuardrailTest};
use super::stats::{needed_per_variant, prob_best, wilson};
use crate::model::{Exceeded, Limit, Metric, Reason, VariantRate, Veto};
use serde::{Deserialize, Serialize};

/// How the verdict is reached (`[ab] method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// The mixture sequential probability ratio test: valid at every look, stops early for a
    /// winner or for futility (the default).
    #[default]
    Sequential,
    /// The fixed-horizon two-proportion z-test: valid for one look, at the end of the wait.
    Fixed,
}

/// Why a test stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// A variant won.
    Winner,
    /// The lift left cannot matter: every confidence sequence lies inside ±`min_lift`.
    Futility,
    /// `[ab] wait` passed without a stop: inconclusive.
    MaxWait,
    /// A variant is significantly past a guardrail limit.
    Vetoed,
}

/// The leader against one other variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The leader's id.
    pub leader: String,
    /// The other variant's id.
    pub other: String,
    /// The leader's rate minus the other's.
    pub lift: f64,
    /// The always-valid p-value of "no lift", Bonferroni adjusted over every pair.
    pub p_value: f64,
    /// Lower end of the always-valid confidence sequence for the lift.
    pub ci_low: f64,
    /// Upper end of it.
    pub ci_high: f64,
}

/// How a verdict is reached: the method, the metric, the confidence asked for, the smallest
/// sample, the lift that matters, and the limits past which a variant is vetoed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rules {
    /// Sequential (valid at every look, the default) or fixed (one look at the end).
    pub method: Method,
    /// The metric compared.
    pub metric: Metric,
    /// Confidence asked for, e.g. 0.95 (the test's alpha is 1 - confidence).
    pub confidence: f64,
    /// The smallest metric denominator (delivered, or openers for clicks per open) each
    /// variant needs before a winner can be called.
    pub min_per_variant: u64,
    /// The smallest absolute lift that matters (sequential: the test stops for futility once
    /// the lift's confidence sequence lies inside ±`min_lift`). Default 0.01 (one point).
    pub min_lift: f64,
    /// The mixing standard deviation τ of the sequential test: the size of absolute lift its
    /// prior expects. Default 0.05 (five points): a larger τ costs a little power on small
    /// lifts (logarithmically), a smaller one a lot of power on large, early ones.
    pub mixture_sd: f64,
    /// A variant whose bounce rate (bounced / (delivered + bounced)) is significantly above
    /// this is vetoed.
    pub max_bounce_rate: f64,
    /// A variant whose unsubscribe rate (unsubscribed / delivered) is significantly above
    /// this is vetoed.
    pub max_unsubscribe_rate: f64,
    /// A variant whose complaint rate (complaints / delivered) is significantly above this
    /// is vetoed.
    pub max_complaint_rate: f64,
}

impl Default for Rules {
    /// Sequential, clicks at 95 % confidence, at least 100 delivered per variant, a lift of
    /// one point that matters, and limits a careful sender keeps to: 5 % bounces,
    /// 1 % unsubscribes, 0.3 % complaints.
    fn default() -> Self {
        Rules {
            method: Method::Sequential,
            metric: Metric::Clicks,
            confidence: 0.95,
            min_per_variant: 100,
            min_lift: 0.01,
            mixture_sd: 0.05,
            max_bounce_rate: 0.05,
            max_unsubscribe_rate: 0.01,
            max_complaint_rate: 0.003,
        }
    }
}

/// One variant's raw numbers (human events only, unique recipients).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VariantInput {
    /// The variant id.
    pub id: String,
    /// Messages delivered.
    pub delivered: u64,
    /// Messages bounced (synchronously or by a later report).
    pub bounced: u64,
    /// Recipients with at least one human open.
    pub opens: u64,
    /// Recipients with at least one human click.
    pub clicks: u64,
    /// Recipients who unsubscribed.
    pub unsubscribes: u64,
    /// Recipients who complained (ARF reports).
    pub complaints: u64,
}

/// Whether a winner was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictKind {
    /// One variant is better with the confidence asked for.
    Winner,
    /// No variant is (yet) better with that confidence.
    Inconclusive,
}

/// One variant's numbers as the verdict saw them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantStats {
    /// The variant id.
    pub id: String,
    /// Messages delivered.
    pub delivered: u64,
    /// Unique human openers.
    pub opens: u64,
    /// Unique human clickers.
    pub clicks: u64,
    /// The metric's denominator (delivered, or openers for clicks per open).
    pub trials: u64,
    /// The metric's numerator.
    pub successes: u64,
    /// successes / trials (0 when there are no trials).
    pub rate: f64,
    /// Lower end of the Wilson score interval at the rules' confidence.
    pub ci_low: f64,
    /// Upper end of that interval.
    pub ci_high: f64,
    /// Bayesian probability that this variant has the highest true rate (Beta(1,1) priors).
    pub prob_best: f64,
    /// bounced / (delivered + bounced).
    pub bounce_rate: f64,
    /// unsubscribes / delivered.
    pub unsubscribe_rate: f64,
    /// complaints / delivered.
    pub complaint_rate: f64,
    /// The limits this variant is significantly above, which veto it (empty: none).
    pub exceeded: Vec<Exceeded>,
    /// The three guardrail tests (bounces, unsubscribes, complaints) with their evidence.
    pub guardrails: Vec<GuardrailTest>,
}

/// The outcome of an A/B test, with the numbers behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// How the verdict was reached.
    pub method: Method,
    /// Winner or inconclusive.
    pub verdict: VerdictKind,
    /// The winning variant's id.
    pub winner: Option<String>,
    /// The metric compared.
    pub metric: Metric,
    /// The confidence asked for.
    pub confidence: f64,
    /// The weakest comparison of the leader, Bonferroni adjusted: fixed, a two-sided
    /// two-proportion z-test; sequential, the always-valid p-value. `None` when fewer than two
    /// variants compete.
    pub p_value: Option<f64>,
    /// The z statistic of that comparison.
    pub z: Option<f64>,
    /// When inconclusive: the metric denominator each variant would need for the observed
    /// difference to be significant at this confidence with 80 % power (`None` when no
    /// difference was observed, or when a winner was found).
    pub needed_per_variant: Option<u64>,
    /// Why the test stopped, when it did (`None`: it goes on).
    pub stop: Option<Stop>,
    /// Sequential: the leader against each other variant, with the always-valid p-value and
    /// confidence sequence of the lift (empty for the fixed method or before a comparison).
    pub comparisons: Vec<Comparison>,
    /// Why: the case reached and the numbers behind it (the CLI words it).
    pub reason: Reason,
    /// Every variant, in the order given.
    pub variants: Vec<VariantStats>,
}

/// The verdict of an A/B test: each variant's rates and intervals, the guardrails, and whether
/// the best one beats the others with the confidence asked for (see the steps below). Never
/// panics: zero or one variant gives an inconclusive verdict.
///
/// 1. Each variant's trials and successes come from the metric (clicks and opens are capped at
///    their denominator), with its rate, Wilson interval and probability of being best.
/// 2. A variant whose bounce, unsubscribe or complaint rate is significantly above its limit
///    (an always-valid one-sided test, see [`guardrail`](super::guardrail)) is vetoed: the test
///    stops, `vetoed`, and names no winner (the campaign's `on_veto` says what happens next).
/// 3. Each variant needs at least `min_per_variant` trials, else "too few".
/// 4. Otherwise the one with the highest rate (first on a tie) is compared with each other
///    one: sequential, by the mSPRT (stops for a winner or for futility); fixed, by the pooled
///    z-test, Bonferroni adjusted, which wins when the weakest adjusted p is below
///    1 − confidence, and else says how many trials per variant would be needed.
pub fn decide(inputs: &[VariantInput], rules: &Rules) -> Verdict {
    let mut verdict = decide_without_prob_best(inputs, rules);
    let samples: Vec<(u64, u64)> = verdict
        .variants
        .iter()
        .map(|v| (v.successes, v.trials))
        .collect();
    for (variant, p) in verdict.variants.iter_mut().zip(prob_best(&samples)) {
        variant.prob_best = p;
    }
    verdict
}

/// [`decide`] without the Bayesian probability of being best (left at 0), which the verdict
/// does not use: for simulations that look thousands of times.
pub fn decide_without_prob_best(inputs: &[VariantInput], rules: &Rules) -> Verdict {
    let variants: Vec<VariantStats> = inputs
        .iter()
        .map(|input| variant_stats(input, rules))
        .collect();
    let mut verdict = Verdict {
        method: rules.method,
        verdict: VerdictKind::Inconclusive,
        winner: None,
        metric: rules.metric,
        confidence: rules.confidence,
        p_value: None,
        z: None,
        needed_per_variant: None,
        stop: None,
        comparisons: Vec::new(),
        reason: Reason::NothingToCompare,
        variants: Vec::new(),
    };
    verdict.reason = reach_verdict(&variants, rules, &mut verdict);
    verdict.variants = variants;
    verdict
}

/// Fills in `verdict`'s kind, winner, p, stop and comparisons; returns why, one case each.
fn reach_verdict(variants: &[VariantStats], rules: &Rules, verdict: &mut Verdict) -> Reason {
    if variants.len() < 2 {
        return Reason::TooFewVariants {
            only: variants.first().map(|v| v.id.clone()),
        };
    }
    let confidence = rules.confidence;
    if !(confidence > 0.0 && confidence < 1.0) {
        return Reason::InvalidConfidence { confidence };
    }
    let vetoed: Vec<Veto> = variants
        .iter()
        .flat_map(|v| {
            v.guardrails.iter().filter(|g| g.vetoed).map(|g| Veto {
                id: v.id.clone(),
                limit: g.limit,
                rate: g.rate,
                max: g.max,
                p_value: g.p_value,
            })
        })
        .collect();
    if !vetoed.is_empty() {
        verdict.stop = Some(Stop::Vetoed);
        return Reason::Vetoed { vetoed };
    }
    let field = Field::new(variants, rules);
    let ranked = rank_by_rate(&field.eligible);
    if let Some(reason) = super::fixed::too_few_trials(&field, &ranked, verdict) {
        return reason;
    }
    match rules.method {
        Method::Fixed => super::fixed::compare_ranked(&field, &ranked, verdict),
        Method::Sequential => super::sequential::compare(&field, &ranked, verdict),
    }
}

/// The variants as the verdict sees them: those that may win, those that may not and why,
/// and the significance level per comparison.
pub(super) struct Field<'a> {
    pub(super) rules: &'a Rules,
    /// Variants within every limit.
    pub(super) eligible: Vec<&'a VariantStats>,
    /// Variants past a limit, with the limits they exceeded (empty once vetoes stop a test;
    /// kept for the reasons' shape).
    pub(super) vetoed: Vec<crate::model::Vetoed>,
    /// Comparisons the fixed leader's p-value is adjusted for (at least 1).
    pub(super) comparisons: usize,
    /// 1 − confidence.
    pub(super) alpha: f64,
}

impl<'a> Field<'a> {
    fn new(variants: &'a [VariantStats], rules: &'a Rules) -> Self {
        let eligible: Vec<&VariantStats> =
            variants.iter().filter(|v| v.exceeded.is_empty()).collect();
        Field {
            rules,
            comparisons: eligible.len().saturating_sub(1).max(1),
            eligible,
            vetoed: Vec::new(),
            alpha: 1.0 - rules.confidence,
        }
    }

    /// The sample per variant that `a` vs `b` needs at the adjusted level (fixed method only:
    /// a sequential test has no fixed sample).
    pub(super) fn needed(&self, a: &VariantStats, b: &VariantStats) -> Option<u64> {
        if self.rules.method == Method::Sequential {
            return None;
        }
        needed_per_variant(
            a.rate,
            b.rate,
            self.alpha / self.comparisons as f64,
            super::fixed::POWER,
        )
    }
}

/// A variant's id and rate.
pub(super) fn rate_of(variant: &VariantStats) -> VariantRate {
    VariantRate {
        id: variant.id.clone(),
        rate: variant.rate,
    }
}

/// One variant's numbers for the metric, with its guardrails tested (prob_best is filled
/// later).
fn variant_stats(input: &VariantInput, rules: &Rules) -> VariantStats {
    let (trials, successes) = match rules.metric {
        Metric::Opens => (input.delivered, input.opens.min(input.delivered)),
        Metric::Clicks => (input.delivered, input.clicks.min(input.delivered)),
        Metric::ClicksPerOpen => (input.opens, input.clicks.min(input.opens)),
        // Decided by `revenue::decide_money`, which passes converters as clicks.
        Metric::Conversions | Metric::Revenue => {
            (input.delivered, input.clicks.min(input.delivered))
        }
    };
    let (ci_low, ci_high) = wilson(successes, trials, rules.confidence);
    let alpha = 1.0 - rules.confidence;
    let sent = input.delivered.saturating_add(input.bounced);
    let guardrails = vec![
        guardrail::test(
            Limit::BounceRate,
            input.bounced,
            sent,
            rules.max_bounce_rate,
            alpha,
        ),
        guardrail::test(
            Limit::UnsubscribeRate,
            input.unsubscribes,
            input.delivered,
            rules.max_unsubscribe_rate,
            alpha,
        ),
        guardrail::test(
            Limit::ComplaintRate,
            input.complaints,
            input.delivered,
            rules.max_complaint_rate,
            alpha,
        ),
    ];
    VariantStats {
        id: input.id.clone(),
        delivered: input.delivered,
        opens: input.opens,
        clicks: input.clicks,
        trials,
        successes,
        rate: ratio(successes, trials),
        ci_low,
        ci_high,
        prob_best: 0.0,
        bounce_rate: ratio(input.bounced, sent),
        unsubscribe_rate: ratio(input.unsubscribes, input.delivered),
        complaint_rate: ratio(input.complaints, input.delivered),
        exceeded: guardrails
            .iter()
            .filter(|g| g.vetoed)
            .map(GuardrailTest::exceeded)
            .collect(),
        guardrails,
    }
}

/// a / b with a capped at b; 0 when b is 0.
fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a.min(b) as f64 / b as f64
    }
}

/// The variants by rate, highest first; equal rates keep their order (a stable sort).
fn rank_by_rate<'a>(variants: &[&'a VariantStats]) -> Vec<&'a VariantStats> {
    let mut ranked = variants.to_vec();
    ranked.sort_by(|a, b| b.rate.total_cmp(&a.rate));
    ranked
}
