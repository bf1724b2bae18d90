//! The arithmetic behind an A/B verdict: rates with Wilson intervals, the pooled two-proportion
//! z-test, the Bayesian probability of being best, the sample size still needed, and `decide`.

use crate::model::{Exceeded, Limit, Metric, Reason, VariantCount, VariantRate, Vetoed};
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal};

/// How a verdict is reached: the metric, the confidence asked for, the smallest sample, and
/// the limits past which a variant cannot win.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rules {
    /// The metric compared.
    pub metric: Metric,
    /// Confidence asked for, e.g. 0.95 (the test's alpha is 1 - confidence).
    pub confidence: f64,
    /// The smallest metric denominator (delivered, or openers for clicks per open) each
    /// variant needs before a winner can be called.
    pub min_per_variant: u64,
    /// A variant whose bounce rate (bounced / (delivered + bounced)) exceeds this cannot win.
    pub max_bounce_rate: f64,
    /// A variant whose unsubscribe rate (unsubscribed / delivered) exceeds this cannot win.
    pub max_unsubscribe_rate: f64,
    /// A variant whose complaint rate (complaints / delivered) exceeds this cannot win.
    pub max_complaint_rate: f64,
}

impl Default for Rules {
    /// Clicks at 95 % confidence, at least 100 delivered per variant, and limits a careful
    /// sender keeps to: 5 % bounces, 1 % unsubscribes, 0.3 % complaints.
    fn default() -> Self {
        Rules {
            metric: Metric::Clicks,
            confidence: 0.95,
            min_per_variant: 100,
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
    /// The limits this variant exceeds, which keep it from winning (empty: none).
    pub exceeded: Vec<Exceeded>,
}

/// The outcome of an A/B test, with the numbers behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Winner or inconclusive.
    pub verdict: VerdictKind,
    /// The winning variant's id.
    pub winner: Option<String>,
    /// The metric compared.
    pub metric: Metric,
    /// The confidence asked for.
    pub confidence: f64,
    /// The leader against the runner-up: two-proportion z-test, two-sided, Bonferroni
    /// adjusted for the number of comparisons; `None` when fewer than two variants compete.
    pub p_value: Option<f64>,
    /// The z statistic of that comparison.
    pub z: Option<f64>,
    /// When inconclusive: the metric denominator each variant would need for the observed
    /// difference to be significant at this confidence with 80 % power (`None` when no
    /// difference was observed, or when a winner was found).
    pub needed_per_variant: Option<u64>,
    /// Why: the case reached and the numbers behind it (the CLI words it).
    pub reason: Reason,
    /// Every variant, in the order given.
    pub variants: Vec<VariantStats>,
}

// ---------------------------------------------------------------------------------------------
// Public statistics
// ---------------------------------------------------------------------------------------------

/// Wilson score interval (two-sided) for a proportion: the range the true rate lies in with
/// the given confidence (e.g. 0.95). More honest than the plain "rate ± 1.96 sd" for small
/// samples and for rates near 0 or 1.
///
/// `successes` above `trials` are counted as `trials`. With no trials nothing is known, so the
/// answer is the whole range `(0.0, 1.0)`; so it is too for a confidence of 1 or more (or NaN).
/// A confidence of 0 or less gives the bare rate at both ends.
pub fn wilson(successes: u64, trials: u64, confidence: f64) -> (f64, f64) {
    if trials == 0 || confidence.is_nan() || confidence >= 1.0 {
        return (0.0, 1.0);
    }
    let z = two_sided_critical(1.0 - confidence);
    let n = trials as f64;
    let p = rate(successes, trials);
    let z2 = z * z;
    let denominator = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denominator;
    let half_width = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denominator;
    // At 0 successes (or all successes) the bound is exactly 0 (or 1); rounding may miss it.
    let low = if successes == 0 {
        0.0
    } else {
        centre - half_width
    };
    let high = if successes >= trials {
        1.0
    } else {
        centre + half_width
    };
    (low.clamp(0.0, 1.0), high.clamp(0.0, 1.0))
}

/// Pooled two-proportion z-test: is sample 1's rate (`s1` / `n1`) different from sample 2's
/// (`s2` / `n2`)? Returns `(z, p)`: z is positive when sample 1's rate is higher, p is the
/// two-sided p-value. `None` when a sample is empty or the pooled rate is 0 or 1 (every trial
/// failed, or every one succeeded: there is no variance to test against). Successes above
/// trials are counted as trials.
pub fn two_proportion_z(s1: u64, n1: u64, s2: u64, n2: u64) -> Option<(f64, f64)> {
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (s1, s2) = (s1.min(n1), s2.min(n2));
    let (a, b) = (n1 as f64, n2 as f64);
    let pooled = (s1 as f64 + s2 as f64) / (a + b);
    if pooled <= 0.0 || pooled >= 1.0 {
        return None;
    }
    let standard_error = (pooled * (1.0 - pooled) * (1.0 / a + 1.0 / b)).sqrt();
    let z = (rate(s1, n1) - rate(s2, n2)) / standard_error;
    Some((z, two_sided_p(z)))
}

/// Bayesian probability that each variant has the highest true rate, from its
/// `(successes, trials)`, with independent Beta(1 + s, 1 + n − s) posteriors (uniform priors).
/// One number per variant, in the order given, summing to 1; an empty slice gives an empty
/// vector. Deterministic: the integral P(i best) = ∫ pdf_i(x) Π_{j≠i} cdf_j(x) dx is computed
/// numerically (see `posterior_masses`), not by random sampling, and stays accurate from zero
/// trials to tens of millions. Successes above trials are counted as trials.
pub fn prob_best(samples: &[(u64, u64)]) -> Vec<f64> {
    match samples.len() {
        0 => return Vec::new(),
        1 => return vec![1.0],
        _ => {}
    }
    let posteriors: Vec<Posterior> = samples.iter().map(|&(s, n)| Posterior::new(s, n)).collect();
    let knots = grid(&posteriors);
    let masses: Vec<Vec<f64>> = posteriors
        .iter()
        .map(|posterior| posterior_masses(posterior, &knots))
        .collect();
    if masses.iter().any(|m| m.is_empty()) {
        // Cannot happen with a well-formed grid; an even split is the honest fallback.
        return vec![1.0 / samples.len() as f64; samples.len()];
    }
    let probabilities = best_from_masses(&masses);
    let total: f64 = probabilities.iter().sum();
    if !(total.is_finite() && total > 0.0) {
        return vec![1.0 / samples.len() as f64; samples.len()];
    }
    probabilities
        .iter()
        .map(|p| (p / total).clamp(0.0, 1.0))
        .collect()
}

/// Sample size per group (variant) for a two-sided two-proportion test at level `alpha` to
/// detect rates `p1` vs `p2` with probability `power`:
/// n = (z_{1−α/2}·√(2·p̄(1−p̄)) + z_{power}·√(p1(1−p1) + p2(1−p2)))² / (p1 − p2)², rounded up,
/// with p̄ = (p1 + p2) / 2. `None` when p1 == p2 (no difference to detect), when a rate is not
/// in [0, 1], or when alpha or power is not strictly between 0 and 1.
pub fn needed_per_variant(p1: f64, p2: f64, alpha: f64, power: f64) -> Option<u64> {
    let is_rate = |p: f64| (0.0..=1.0).contains(&p);
    let is_open_unit = |p: f64| p > 0.0 && p < 1.0;
    if !(is_rate(p1) && is_rate(p2) && is_open_unit(alpha) && is_open_unit(power)) || p1 == p2 {
        return None;
    }
    let z_alpha = normal_quantile(1.0 - alpha / 2.0);
    let z_power = normal_quantile(power);
    let mean = (p1 + p2) / 2.0;
    let root = z_alpha * (2.0 * mean * (1.0 - mean)).sqrt()
        + z_power * (p1 * (1.0 - p1) + p2 * (1.0 - p2)).sqrt();
    let n = (root * root / ((p1 - p2) * (p1 - p2))).ceil();
    // `as` saturates; the bound keeps a huge answer from silently becoming u64::MAX.
    (n.is_finite() && n >= 0.0 && n < u64::MAX as f64).then_some(n as u64)
}

/// The verdict of an A/B test: each variant's rates and intervals, which variants a limit
/// rules out, and whether the best remaining one beats the others with the confidence asked
/// for (see the steps below). Never panics: zero or one variant gives an inconclusive verdict.
///
/// 1. Each variant's trials and successes come from the metric (clicks and opens are capped at
///    their denominator), with its rate, Wilson interval and probability of being best.
/// 2. A variant with at least `min_per_variant` delivered whose bounce, unsubscribe or
///    complaint rate exceeds its limit is vetoed: it cannot win.
/// 3. Of the others, each needs at least `min_per_variant` trials, else "too few".
///    When only one is left and the rest were vetoed, it wins without a test.
/// 4. Otherwise the one with the highest rate (first on a tie) is tested against each other one
///    (pooled z-test, Bonferroni adjusted); it wins when the weakest adjusted p is below
///    1 − confidence. If not, the verdict says how many trials per variant would be needed.
pub fn decide(inputs: &[VariantInput], rules: &Rules) -> Verdict {
    let mut variants: Vec<VariantStats> = inputs
        .iter()
        .map(|input| variant_stats(input, rules))
        .collect();
    let samples: Vec<(u64, u64)> = variants.iter().map(|v| (v.successes, v.trials)).collect();
    for (variant, p) in variants.iter_mut().zip(prob_best(&samples)) {
        variant.prob_best = p;
    }
    let mut verdict = Verdict {
        verdict: VerdictKind::Inconclusive,
        winner: None,
        metric: rules.metric,
        confidence: rules.confidence,
        p_value: None,
        z: None,
        needed_per_variant: None,
        reason: Reason::NothingToCompare,
        variants: Vec::new(),
    };
    verdict.reason = reach_verdict(&variants, rules, &mut verdict);
    verdict.variants = variants;
    verdict
}

// ---------------------------------------------------------------------------------------------
// The verdict, step by step
// ---------------------------------------------------------------------------------------------

/// Fills in `verdict`'s kind, winner, p, z and needed size; returns why, one case each.
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
    let field = Field::new(variants, rules);
    if field.eligible.is_empty() {
        return Reason::AllVetoed {
            vetoed: field.vetoed,
        };
    }
    let ranked = rank_by_rate(&field.eligible);
    if let Some(reason) = too_few_trials(&field, &ranked, verdict) {
        return reason;
    }
    match (ranked.first().copied(), ranked.get(1).copied()) {
        (Some(leader), Some(runner_up)) => compare(&field, leader, runner_up, verdict),
        (Some(sole), None) => only_one_left(&field, sole, verdict),
        (None, _) => Reason::NothingToCompare,
    }
}

/// The variants as the verdict sees them: those that may win, those that may not and why,
/// and the significance level per comparison.
struct Field<'a> {
    rules: &'a Rules,
    /// Variants within every limit.
    eligible: Vec<&'a VariantStats>,
    /// Variants past a limit, with the limits they exceeded.
    vetoed: Vec<Vetoed>,
    /// Comparisons the leader's p-value is adjusted for (at least 1).
    comparisons: usize,
    /// 1 − confidence.
    alpha: f64,
}

impl<'a> Field<'a> {
    fn new(variants: &'a [VariantStats], rules: &'a Rules) -> Self {
        let eligible: Vec<&VariantStats> =
            variants.iter().filter(|v| v.exceeded.is_empty()).collect();
        let vetoed = variants
            .iter()
            .filter(|v| !v.exceeded.is_empty())
            .map(|v| Vetoed {
                id: v.id.clone(),
                exceeded: v.exceeded.clone(),
            })
            .collect();
        Field {
            rules,
            comparisons: eligible.len().saturating_sub(1).max(1),
            eligible,
            vetoed,
            alpha: 1.0 - rules.confidence,
        }
    }

    /// The sample per variant that `a` vs `b` needs at the adjusted level.
    fn needed(&self, a: &VariantStats, b: &VariantStats) -> Option<u64> {
        needed_per_variant(a.rate, b.rate, self.alpha / self.comparisons as f64, POWER)
    }
}

/// "Too few": some variant that may win is below the smallest sample.
fn too_few_trials(
    field: &Field,
    ranked: &[&VariantStats],
    verdict: &mut Verdict,
) -> Option<Reason> {
    let min = field.rules.min_per_variant;
    let short: Vec<VariantCount> = field
        .eligible
        .iter()
        .filter(|v| v.trials < min)
        .map(|v| VariantCount {
            id: v.id.clone(),
            trials: v.trials,
        })
        .collect();
    if short.is_empty() {
        return None;
    }
    let estimate = match (ranked.first(), ranked.get(1)) {
        (Some(l), Some(r)) => field.needed(l, r),
        _ => None,
    };
    let needed = estimate.unwrap_or(0).max(min);
    verdict.needed_per_variant = Some(needed);
    Some(Reason::TooFewTrials {
        metric: field.rules.metric,
        short,
        min_per_variant: min,
        needed_per_variant: needed,
    })
}

/// A single variant may win, with enough trials: every other one was vetoed.
fn only_one_left(field: &Field, sole: &VariantStats, verdict: &mut Verdict) -> Reason {
    verdict.verdict = VerdictKind::Winner;
    verdict.winner = Some(sole.id.clone());
    Reason::OnlyOneLeft {
        winner: rate_of(sole),
        metric: field.rules.metric,
        vetoed: field.vetoed.clone(),
    }
}

/// The leader against every other variant that may win; the weakest comparison decides.
fn compare(
    field: &Field,
    leader: &VariantStats,
    runner_up: &VariantStats,
    verdict: &mut Verdict,
) -> Reason {
    let others: Vec<&VariantStats> = field
        .eligible
        .iter()
        .copied()
        .filter(|v| !std::ptr::eq(*v, leader))
        .collect();
    let Some((rival, z, p)) = weakest_comparison(leader, &others, field.comparisons) else {
        return Reason::NothingToCompare;
    };
    verdict.z = Some(z);
    verdict.p_value = Some(p);
    if p < field.alpha {
        wins(field, leader, &others, p, verdict)
    } else if leader.rate == runner_up.rate {
        tie(field, leader, runner_up)
    } else {
        not_significant(field, (leader, runner_up, rival), p, verdict)
    }
}

/// The leader's lead over every other variant is significant: it wins.
fn wins(
    field: &Field,
    leader: &VariantStats,
    others: &[&VariantStats],
    p_value: f64,
    verdict: &mut Verdict,
) -> Reason {
    verdict.verdict = VerdictKind::Winner;
    verdict.winner = Some(leader.id.clone());
    Reason::Wins {
        winner: rate_of(leader),
        beaten: others.iter().map(|v| rate_of(v)).collect(),
        metric: field.rules.metric,
        p_value,
        comparisons: field.comparisons,
        confidence: field.rules.confidence,
        vetoed: field.vetoed.clone(),
    }
}

/// The two best variants have the same rate: no winner, and no sample would find one.
fn tie(field: &Field, leader: &VariantStats, runner_up: &VariantStats) -> Reason {
    Reason::Tie {
        first: leader.id.clone(),
        second: runner_up.id.clone(),
        rate: leader.rate,
        metric: field.rules.metric,
        vetoed: field.vetoed.clone(),
    }
}

/// The leader's lead is not significant: no winner yet, and the sample that would tell.
fn not_significant(
    field: &Field,
    (leader, runner_up, rival): (&VariantStats, &VariantStats, &VariantStats),
    p_value: f64,
    verdict: &mut Verdict,
) -> Reason {
    let needed = field
        .needed(leader, runner_up)
        .map(|n| n.max(field.rules.min_per_variant));
    verdict.needed_per_variant = needed;
    Reason::NotSignificant {
        leader: rate_of(leader),
        rival: rate_of(rival),
        metric: field.rules.metric,
        p_value,
        comparisons: field.comparisons,
        needed_per_variant: needed,
        vetoed: field.vetoed.clone(),
    }
}

/// The comparison of `leader` with the highest Bonferroni-adjusted p-value: (rival, z, p).
fn weakest_comparison<'a>(
    leader: &VariantStats,
    others: &[&'a VariantStats],
    comparisons: usize,
) -> Option<(&'a VariantStats, f64, f64)> {
    let mut weakest: Option<(&VariantStats, f64, f64)> = None;
    for &other in others {
        let (z, p) = two_proportion_z(
            leader.successes,
            leader.trials,
            other.successes,
            other.trials,
        )
        // Pooled rate 0 or 1: both rates are equal, so there is no difference at all.
        .unwrap_or((0.0, 1.0));
        let adjusted = (p * comparisons as f64).min(1.0);
        if weakest.is_none_or(|(_, _, worst)| adjusted > worst) {
            weakest = Some((other, z, adjusted));
        }
    }
    weakest
}

/// A variant's id and rate.
fn rate_of(variant: &VariantStats) -> VariantRate {
    VariantRate {
        id: variant.id.clone(),
        rate: variant.rate,
    }
}

/// The power the "needed per variant" estimate is computed for.
const POWER: f64 = 0.8;

/// One variant's numbers for the metric, with its limits checked (prob_best is filled later).
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
    let bounce_rate = ratio(input.bounced, input.delivered.saturating_add(input.bounced));
    let unsubscribe_rate = ratio(input.unsubscribes, input.delivered);
    let complaint_rate = ratio(input.complaints, input.delivered);
    let exceeded = if input.delivered >= rules.min_per_variant {
        [
            (Limit::BounceRate, bounce_rate, rules.max_bounce_rate),
            (
                Limit::UnsubscribeRate,
                unsubscribe_rate,
                rules.max_unsubscribe_rate,
            ),
            (
                Limit::ComplaintRate,
                complaint_rate,
                rules.max_complaint_rate,
            ),
        ]
        .into_iter()
        .filter(|&(_, rate, max)| rate > max)
        .map(|(limit, rate, max)| Exceeded { limit, rate, max })
        .collect()
    } else {
        Vec::new()
    };
    VariantStats {
        id: input.id.clone(),
        delivered: input.delivered,
        opens: input.opens,
        clicks: input.clicks,
        trials,
        successes,
        rate: rate(successes, trials),
        ci_low,
        ci_high,
        prob_best: 0.0,
        bounce_rate,
        unsubscribe_rate,
        complaint_rate,
        exceeded,
    }
}

/// The variants by rate, highest first; equal rates keep their order (a stable sort).
fn rank_by_rate<'a>(variants: &[&'a VariantStats]) -> Vec<&'a VariantStats> {
    let mut ranked = variants.to_vec();
    ranked.sort_by(|a, b| b.rate.total_cmp(&a.rate));
    ranked
}

// ---------------------------------------------------------------------------------------------
// Numerics
// ---------------------------------------------------------------------------------------------

/// s / n with successes capped at trials; 0 when there are no trials.
fn rate(successes: u64, trials: u64) -> f64 {
    ratio(successes.min(trials), trials)
}

/// a / b, or 0 when b is 0.
fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// The standard normal quantile (inverse CDF) with the edges made total: −∞ at 0 and below,
/// +∞ at 1 and above, NaN for NaN. statrs computes it from its inverse complementary error
/// function (Boost's rational approximations, accurate to about machine precision).
fn normal_quantile(p: f64) -> f64 {
    if p.is_nan() {
        f64::NAN
    } else if p <= 0.0 {
        f64::NEG_INFINITY
    } else if p >= 1.0 {
        f64::INFINITY
    } else {
        Normal::standard().inverse_cdf(p)
    }
}

/// The z such that a standard normal falls outside ±z with probability `alpha` (never negative).
fn two_sided_critical(alpha: f64) -> f64 {
    normal_quantile(1.0 - alpha / 2.0).max(0.0)
}

/// Two-sided p-value of a standard normal statistic, P(|Z| ≥ |z|), from the upper tail so that
/// tiny p-values keep their precision.
fn two_sided_p(z: f64) -> f64 {
    (2.0 * Normal::standard().sf(z.abs())).min(1.0)
}

/// A Beta(1 + s, 1 + n − s) posterior, with the numbers the integration needs.
struct Posterior {
    /// First shape parameter, 1 + successes.
    alpha: f64,
    /// Second shape parameter, 1 + failures.
    beta: f64,
    /// Its mean.
    mean: f64,
    /// Its standard deviation.
    sd: f64,
    /// The log of the unnormalised density at its mode, so that densities scale to at most 1.
    log_peak: f64,
}

impl Posterior {
    fn new(successes: u64, trials: u64) -> Self {
        let successes = successes.min(trials);
        let alpha = 1.0 + successes as f64;
        let beta = 1.0 + (trials - successes) as f64;
        let total = alpha + beta;
        let mean = alpha / total;
        let sd = (alpha * beta / (total * total * (total + 1.0))).sqrt();
        let mode = if total > 2.0 {
            (alpha - 1.0) / (total - 2.0)
        } else {
            0.5
        };
        let mut posterior = Posterior {
            alpha,
            beta,
            mean,
            sd,
            log_peak: 0.0,
        };
        posterior.log_peak = posterior.log_kernel(mode);
        posterior
    }

    /// (α − 1)·ln x + (β − 1)·ln(1 − x): the log density up to a constant (−∞ where it is 0).
    fn log_kernel(&self, x: f64) -> f64 {
        x_ln_y(self.alpha - 1.0, x) + x_ln_y(self.beta - 1.0, 1.0 - x)
    }

    /// The density up to a constant, scaled to 1 at the mode (so it never overflows).
    fn kernel(&self, x: f64) -> f64 {
        (self.log_kernel(x) - self.log_peak).exp()
    }

    /// The range holding all but a negligible part of the posterior, within [0, 1].
    fn support(&self) -> (f64, f64) {
        let reach = SUPPORT_SDS * self.sd;
        ((self.mean - reach).max(0.0), (self.mean + reach).min(1.0))
    }
}

/// How many standard deviations either side of a posterior's mean are integrated. The thinnest
/// tail, Beta(1, n)'s (nearly exponential), leaves about e^(−16) ≈ 1e-7 beyond 15.
const SUPPORT_SDS: f64 = 15.0;

/// Grid cells per posterior standard deviation: fine enough that the steps' error is ~1e-6.
const CELLS_PER_SD: f64 = 100.0;

/// c·ln(y), taken as 0 when c is 0 (so a flat factor stays flat at y = 0).
fn x_ln_y(c: f64, y: f64) -> f64 {
    if c == 0.0 {
        0.0
    } else {
        c * y.ln()
    }
}

/// The integration grid: increasing knots from the lowest posterior support to the highest,
/// spaced at most 1/`CELLS_PER_SD` of a standard deviation of every posterior whose support
/// they are in (so each posterior, narrow or wide, is finely resolved wherever it has mass,
/// and overlapping posteriors share knots), jumping straight across gaps between supports.
fn grid(posteriors: &[Posterior]) -> Vec<f64> {
    let supports: Vec<(f64, f64, f64)> = posteriors
        .iter()
        .map(|p| {
            let (low, high) = p.support();
            (low, high, p.sd / CELLS_PER_SD)
        })
        .collect();
    let start = supports.iter().map(|s| s.0).fold(f64::INFINITY, f64::min);
    let end = supports
        .iter()
        .map(|s| s.1)
        .fold(f64::NEG_INFINITY, f64::max);
    if !(start.is_finite() && end.is_finite()) {
        return Vec::new();
    }
    let mut knots = vec![start];
    let mut x = start;
    while x < end {
        // The finest step of the supports x is in, without stepping past a support's start.
        let step = supports
            .iter()
            .filter(|&&(low, high, _)| low <= x && x < high)
            .map(|s| s.2)
            .fold(f64::INFINITY, f64::min);
        let next_start = supports
            .iter()
            .map(|s| s.0)
            .filter(|&low| low > x)
            .fold(end, f64::min);
        let mut next = (x + step).min(next_start);
        if next <= x {
            // A support narrower than the floats around x can resolve: move on by one float.
            next = x.next_up();
        }
        x = next.min(end);
        knots.push(x);
    }
    knots
}

/// The posterior's probability mass in each cell of the grid (between consecutive knots), by
/// Simpson's rule on each cell, normalised to sum to 1. Normalising numerically instead of
/// through the Beta function keeps full precision for millions of trials, and makes every
/// posterior exactly a probability distribution on the grid, so the answers sum to 1.
/// Empty only when the grid has no cells.
///
/// (statrs's Beta CDF is not used: its continued fraction stops after 140 terms and loses
/// accuracy beyond about a million trials.)
fn posterior_masses(posterior: &Posterior, knots: &[f64]) -> Vec<f64> {
    let masses: Vec<f64> = knots
        .iter()
        .zip(knots.iter().skip(1))
        .map(|(&a, &b)| {
            let middle = 0.5 * (a + b);
            (b - a) / 6.0
                * (posterior.kernel(a) + 4.0 * posterior.kernel(middle) + posterior.kernel(b))
        })
        .collect();
    let total: f64 = masses.iter().sum();
    if !(total.is_finite() && total > 0.0) {
        // The posterior is too narrow for the grid to see (billions of billions of trials):
        // it is all in the cell holding its mean.
        let cell = knots
            .iter()
            .skip(1)
            .take_while(|&&b| b < posterior.mean)
            .count()
            .min(masses.len().saturating_sub(1));
        return (0..masses.len())
            .map(|c| if c == cell { 1.0 } else { 0.0 })
            .collect();
    }
    // Masses below MASS_FLOOR (far tails) are dropped: together they weigh under 1e-15, and
    // skipping them is what keeps ten variants over a fine grid fast.
    masses
        .iter()
        .map(|m| m / total)
        .map(|m| if m < MASS_FLOOR { 0.0 } else { m })
        .collect()
}

/// A cell mass below this counts as none (see `posterior_masses`).
const MASS_FLOOR: f64 = 1e-20;

/// P(each variant is best) from the posteriors' masses per grid cell (`masses[variant][cell]`).
///
/// Within a cell every density is taken as flat, so with u ∈ [0, 1] the position inside the
/// cell, variant i is best there with probability m_i·∫₀¹ Π_{j≠i} (F_j + m_j·u) du, where F_j is
/// j's mass below the cell. The polynomial in u is integrated exactly, so the answers add up to
/// Π_j F_j at the top of the grid, which is 1; identical posteriors get identical answers.
fn best_from_masses(masses: &[Vec<f64>]) -> Vec<f64> {
    let cells = masses.iter().map(Vec::len).min().unwrap_or(0);
    let mut below = vec![0.0_f64; masses.len()];
    let mut best = vec![0.0_f64; masses.len()];
    let mut here = vec![0.0_f64; masses.len()];
    let mut coefficients = Vec::with_capacity(masses.len() + 1);
    for cell in 0..cells {
        for (slot, m) in here.iter_mut().zip(masses) {
            *slot = m.get(cell).copied().unwrap_or(0.0);
        }
        for (i, (&mass, total)) in here.iter().zip(best.iter_mut()).enumerate() {
            if mass <= 0.0 {
                continue;
            }
            let factors = below
                .iter()
                .zip(&here)
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, (&f, &m))| (f, m));
            *total += mass * integral_of_linear_product(factors, &mut coefficients);
        }
        for (f, m) in below.iter_mut().zip(&here) {
            *f += m;
        }
    }
    best
}

/// ∫₀¹ Π_k (c0_k + c1_k·u) du, exactly: the product is expanded into its polynomial
/// coefficients (in `coefficients`, a reused buffer), and ∫₀¹ u^d du = 1 / (d + 1).
/// Constant factors (c1 = 0, the common case away from a posterior) only scale the result.
fn integral_of_linear_product(
    factors: impl Iterator<Item = (f64, f64)>,
    coefficients: &mut Vec<f64>,
) -> f64 {
    coefficients.clear();
    coefficients.push(1.0);
    let mut scale = 1.0_f64;
    for (c0, c1) in factors {
        if c1 == 0.0 {
            scale *= c0;
            if scale == 0.0 {
                return 0.0;
            }
            continue;
        }
        // Multiply in place by (c0 + c1·u): each coefficient becomes c0·own + c1·previous.
        let mut previous = 0.0;
        for c in coefficients.iter_mut() {
            let own = *c;
            *c = c0 * own + c1 * previous;
            previous = own;
        }
        coefficients.push(c1 * previous);
    }
    scale
        * coefficients
            .iter()
            .enumerate()
            .map(|(d, c)| c / (d as f64 + 1.0))
            .sum::<f64>()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use statrs::function::gamma::ln_gamma;

    fn close(actual: f64, expected: f64, tolerance: f64) {
        assert!(
            (actual - expected).abs() <= tolerance,
            "{actual} is not within {tolerance} of {expected}"
        );
    }

    /// Exact P(rate_B > rate_A) for Beta(1 + s, 1 + n − s) posteriors with integer shapes
    /// (Evan Miller's closed form): an independent check of the numerical integration.
    fn exact_b_beats_a((sa, na): (u64, u64), (sb, nb): (u64, u64)) -> f64 {
        let ln_beta = |a: f64, b: f64| ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b);
        let (alpha_a, beta_a) = (1.0 + sa as f64, 1.0 + (na - sa) as f64);
        // The sum runs over i < alpha_b = 1 + sb.
        let beta_b = 1.0 + (nb - sb) as f64;
        (0..=sb)
            .map(|i| {
                let i = i as f64;
                (ln_beta(alpha_a + i, beta_a + beta_b)
                    - (beta_b + i).ln()
                    - ln_beta(1.0 + i, beta_b)
                    - ln_beta(alpha_a, beta_a))
                .exp()
            })
            .sum()
    }

    fn normal_cdf(z: f64) -> f64 {
        Normal::standard().cdf(z)
    }

    fn variant(id: &str, delivered: u64, clicks: u64) -> VariantInput {
        VariantInput {
            id: id.to_owned(),
            delivered,
            opens: delivered / 2,
            clicks,
            ..VariantInput::default()
        }
    }

    fn rules() -> Rules {
        Rules {
            metric: Metric::Clicks,
            confidence: 0.95,
            min_per_variant: 100,
            max_bounce_rate: 0.05,
            max_unsubscribe_rate: 0.01,
            max_complaint_rate: 0.001,
        }
    }

    // --- two_proportion_z ---------------------------------------------------------------

    #[test]
    fn z_test_known_value() {
        // Pooled rate 0.321, standard error 0.020879: z = -0.042 / 0.020879 = -2.0116.
        let (z, p) = two_proportion_z(300, 1000, 342, 1000).unwrap();
        close(z, -2.0116, 1e-4);
        close(p, 0.04426, 1e-5);
        let (z, p_swapped) = two_proportion_z(342, 1000, 300, 1000).unwrap();
        close(z, 2.0116, 1e-4);
        close(p_swapped, p, 1e-12);
    }

    #[test]
    fn z_test_without_variance_or_data() {
        assert_eq!(two_proportion_z(0, 0, 5, 10), None);
        assert_eq!(two_proportion_z(5, 10, 0, 0), None);
        assert_eq!(two_proportion_z(0, 10, 0, 20), None);
        assert_eq!(two_proportion_z(10, 10, 20, 20), None);
        // Successes above trials count as trials: 15/10 is 10/10.
        assert_eq!(two_proportion_z(15, 10, 20, 20), None);
        let (z, p) = two_proportion_z(50, 100, 50, 100).unwrap();
        close(z, 0.0, 1e-12);
        close(p, 1.0, 1e-12);
    }

    // --- wilson ---------------------------------------------------------------------------

    #[test]
    fn wilson_known_value() {
        let (low, high) = wilson(300, 1000, 0.95);
        close(low, 0.27241, 1e-5);
        close(high, 0.32912, 1e-5);
    }

    #[test]
    fn wilson_edges() {
        assert_eq!(wilson(0, 0, 0.95), (0.0, 1.0));
        assert_eq!(wilson(3, 10, 1.0), (0.0, 1.0));
        assert_eq!(wilson(3, 10, f64::NAN), (0.0, 1.0));
        let (low, high) = wilson(3, 10, 0.0);
        close(low, 0.3, 1e-12);
        close(high, 0.3, 1e-12);
        let (low, high) = wilson(0, 10, 0.95);
        assert_eq!(low, 0.0);
        close(high, 0.2775, 1e-4);
        let (low, high) = wilson(10, 10, 0.95);
        close(low, 0.7225, 1e-4);
        assert_eq!(high, 1.0);
        assert_eq!(wilson(15, 10, 0.95), wilson(10, 10, 0.95));
        let (narrow_low, narrow_high) = wilson(300, 1000, 0.90);
        let (wide_low, wide_high) = wilson(300, 1000, 0.99);
        assert!(wide_low < narrow_low && narrow_high < wide_high);
    }

    // --- needed_per_variant -----------------------------------------------------------------

    #[test]
    fn needed_known_value() {
        // (1.959964 * sqrt(2 * 0.11 * 0.89) + 0.841621 * sqrt(0.09 + 0.1056))^2 / 0.02^2
        // = 3840.85, rounded up.
        assert_eq!(needed_per_variant(0.10, 0.12, 0.05, 0.8), Some(3841));
        assert_eq!(needed_per_variant(0.12, 0.10, 0.05, 0.8), Some(3841));
        // Stricter alpha or more power asks for more.
        assert!(needed_per_variant(0.10, 0.12, 0.01, 0.8) > Some(3841));
        assert!(needed_per_variant(0.10, 0.12, 0.05, 0.9) > Some(3841));
    }

    #[test]
    fn needed_rejects_what_it_cannot_answer() {
        assert_eq!(needed_per_variant(0.1, 0.1, 0.05, 0.8), None);
        assert_eq!(needed_per_variant(-0.1, 0.1, 0.05, 0.8), None);
        assert_eq!(needed_per_variant(0.1, 1.1, 0.05, 0.8), None);
        assert_eq!(needed_per_variant(f64::NAN, 0.1, 0.05, 0.8), None);
        assert_eq!(needed_per_variant(0.1, 0.2, 0.0, 0.8), None);
        assert_eq!(needed_per_variant(0.1, 0.2, 0.05, 1.0), None);
        assert!(needed_per_variant(0.0, 1.0, 0.05, 0.8).is_some());
    }

    // --- prob_best ----------------------------------------------------------------------------

    #[test]
    fn prob_best_trivial_sizes() {
        assert!(prob_best(&[]).is_empty());
        assert_eq!(prob_best(&[(3, 10)]), vec![1.0]);
    }

    #[test]
    fn prob_best_identical_data_splits_evenly() {
        for sample in [(0, 0), (300, 1000), (0, 50), (50, 50), (123_456, 2_000_000)] {
            let p = prob_best(&[sample, sample]);
            close(p[0], 0.5, 1e-9);
            close(p[1], 0.5, 1e-9);
            let p = prob_best(&[sample, sample, sample]);
            for q in p {
                close(q, 1.0 / 3.0, 1e-9);
            }
        }
    }

    #[test]
    fn prob_best_known_value() {
        // Exact (closed form) 0.977823; normal approximation Φ(2.012) = 0.9779.
        let exact = exact_b_beats_a((300, 1000), (342, 1000));
        close(exact, 0.977823, 1e-6);
        let p = prob_best(&[(300, 1000), (342, 1000)]);
        close(p[1], exact, 1e-6);
        close(p[0], 1.0 - exact, 1e-6);
        // Small samples are skewed; the integration still matches the closed form.
        let exact = exact_b_beats_a((3, 20), (9, 20));
        let p = prob_best(&[(3, 20), (9, 20)]);
        close(p[1], exact, 1e-6);
        let exact = exact_b_beats_a((0, 0), (1, 2));
        close(prob_best(&[(0, 0), (1, 2)])[1], exact, 1e-6);
        close(exact, 0.5, 1e-12);
    }

    #[test]
    fn prob_best_matches_the_closed_form() {
        let pairs = [
            ((0, 10), (10, 10)),
            ((1, 5), (0, 0)),
            ((30, 100), (3_100, 10_000)),
            ((12, 50_000), (30, 60_000)),
            ((49_000, 50_000), (9_850, 10_000)),
        ];
        for (a, b) in pairs {
            let p = prob_best(&[a, b]);
            close(p[1], exact_b_beats_a(a, b), 2e-6);
        }
    }

    #[test]
    fn prob_best_beyond_float_resolution() {
        // A posterior narrower than a float step sits in one cell of its neighbours' grid,
        // so it is resolved only to that cell (0.3 % of the flat posteriors' width here).
        let p = prob_best(&[(0, 0), (u64::MAX, u64::MAX), (0, 0)]);
        close(p[1], 1.0, 3e-3);
        assert!(p[1] > p[0] && p[0] == p[2]);
        close(p.iter().sum::<f64>(), 1.0, 1e-9);
        let p = prob_best(&[(u64::MAX, u64::MAX), (u64::MAX, u64::MAX)]);
        close(p[0], 0.5, 1e-9);
    }

    #[test]
    fn prob_best_millions_of_trials() {
        // Posteriors about 1.45e-4 wide; the difference 2e-4 is about 0.976 sd of the
        // difference: the normal approximation is excellent at this size.
        let (a, b) = ((3_000_000, 10_000_000), (3_002_000, 10_000_000));
        let sd = |(s, n): (u64, u64)| {
            let (alpha, beta) = (1.0 + s as f64, 1.0 + (n - s) as f64);
            alpha * beta / ((alpha + beta).powi(2) * (alpha + beta + 1.0))
        };
        let mean = |(s, n): (u64, u64)| (1.0 + s as f64) / (2.0 + n as f64);
        let z = (mean(b) - mean(a)) / (sd(a) + sd(b)).sqrt();
        let p = prob_best(&[a, b]);
        close(p[1], normal_cdf(z), 1e-5);
        // A rate near zero over ten million, against one with no data at all.
        let p = prob_best(&[(0, 0), (5, 10_000_000)]);
        close(p[0], 1.0 - 6.0 / 10_000_002.0, 1e-7);
        close(p.iter().sum::<f64>(), 1.0, 1e-9);
    }

    #[test]
    fn prob_best_sums_to_one_and_is_deterministic() {
        let cases: Vec<Vec<(u64, u64)>> = vec![
            vec![(0, 0), (0, 0)],
            vec![(0, 10), (10, 10)],
            vec![(1, 1_000_000), (2, 10), (30, 40)],
            (0..10).map(|i| (100 + i * 3, 1000)).collect(),
            (0..10).map(|i| (i * 1000, 10_000 + i * 100_000)).collect(),
        ];
        for samples in cases {
            let p = prob_best(&samples);
            assert_eq!(p.len(), samples.len());
            close(p.iter().sum::<f64>(), 1.0, 1e-6);
            assert!(p.iter().all(|q| (0.0..=1.0).contains(q)));
            assert_eq!(p, prob_best(&samples));
        }
        // Higher rate on equal trials: higher probability of being best.
        let p = prob_best(&(0..10).map(|i| (100 + i * 3, 1000)).collect::<Vec<_>>());
        assert!(p.windows(2).all(|w| w[0] < w[1]));
    }

    // --- decide -------------------------------------------------------------------------------

    #[test]
    fn decide_clear_winner() {
        let verdict = decide(
            &[variant("A", 1000, 300), variant("B", 1000, 400)],
            &rules(),
        );
        assert_eq!(verdict.verdict, VerdictKind::Winner);
        assert_eq!(verdict.winner.as_deref(), Some("B"));
        // B leads, so z (B against A) is positive: 4.688, p = 2.76e-6.
        close(verdict.z.unwrap(), 4.688, 1e-3);
        close(verdict.p_value.unwrap(), 2.758e-6, 1e-8);
        assert_eq!(verdict.needed_per_variant, None);
        let Reason::Wins {
            winner,
            beaten,
            metric,
            comparisons,
            vetoed,
            ..
        } = &verdict.reason
        else {
            panic!("{:?}", verdict.reason)
        };
        assert_eq!((winner.id.as_str(), winner.rate), ("B", 0.4));
        assert_eq!(
            beaten,
            &[VariantRate {
                id: "A".into(),
                rate: 0.3
            }]
        );
        assert_eq!((*metric, *comparisons), (Metric::Clicks, 1));
        assert!(vetoed.is_empty());
        assert!(verdict.variants[1].prob_best > 0.9999);
    }

    #[test]
    fn decide_winner_at_the_known_value() {
        let verdict = decide(
            &[variant("A", 1000, 300), variant("B", 1000, 342)],
            &rules(),
        );
        assert_eq!(verdict.verdict, VerdictKind::Winner);
        assert_eq!(verdict.winner.as_deref(), Some("B"));
        close(verdict.p_value.unwrap(), 0.04426, 1e-5);
        assert!(
            matches!(&verdict.reason, Reason::Wins { p_value, .. } if *p_value == verdict.p_value.unwrap())
        );
        close(verdict.variants[1].prob_best, 0.977823, 1e-6);
        // At 99 % the same data is not enough.
        let strict = Rules {
            confidence: 0.99,
            ..rules()
        };
        assert_eq!(
            decide(&[variant("A", 1000, 300), variant("B", 1000, 342)], &strict).verdict,
            VerdictKind::Inconclusive
        );
    }

    #[test]
    fn decide_close_call() {
        let verdict = decide(
            &[variant("A", 1000, 300), variant("B", 1000, 310)],
            &rules(),
        );
        assert_eq!(verdict.verdict, VerdictKind::Inconclusive);
        assert_eq!(verdict.winner, None);
        close(verdict.z.unwrap(), 0.4857, 1e-4);
        close(verdict.p_value.unwrap(), 0.6272, 1e-4);
        // needed_per_variant(0.31, 0.30, 0.05, 0.8) = 33274.15, rounded up.
        assert_eq!(verdict.needed_per_variant, Some(33_275));
        assert_eq!(
            verdict.reason,
            Reason::NotSignificant {
                leader: VariantRate {
                    id: "B".into(),
                    rate: 0.31
                },
                rival: VariantRate {
                    id: "A".into(),
                    rate: 0.3
                },
                metric: Metric::Clicks,
                p_value: verdict.p_value.unwrap(),
                comparisons: 1,
                needed_per_variant: Some(33_275),
                vetoed: Vec::new(),
            }
        );
    }

    #[test]
    fn decide_equal_rates_need_no_estimate() {
        let verdict = decide(
            &[variant("A", 1000, 300), variant("B", 1000, 300)],
            &rules(),
        );
        assert_eq!(verdict.verdict, VerdictKind::Inconclusive);
        assert_eq!(verdict.needed_per_variant, None);
        close(verdict.p_value.unwrap(), 1.0, 1e-12);
        assert_eq!(
            verdict.reason,
            Reason::Tie {
                first: "A".into(),
                second: "B".into(),
                rate: 0.3,
                metric: Metric::Clicks,
                vetoed: Vec::new(),
            }
        );
        // No clicks at all: no variance, no difference.
        let verdict = decide(&[variant("A", 1000, 0), variant("B", 1000, 0)], &rules());
        assert_eq!(verdict.verdict, VerdictKind::Inconclusive);
        assert_eq!(verdict.p_value, Some(1.0));
        assert_eq!(verdict.z, Some(0.0));
    }

    #[test]
    fn decide_tiny_sample() {
        let verdict = decide(&[variant("A", 20, 3), variant("B", 20, 9)], &rules());
        assert_eq!(verdict.verdict, VerdictKind::Inconclusive);
        assert_eq!(verdict.p_value, None);
        // The formula asks only 36 per variant for 45 % vs 15 %; the minimum is 100.
        assert_eq!(needed_per_variant(0.45, 0.15, 0.05, 0.8), Some(36));
        assert_eq!(verdict.needed_per_variant, Some(100));
        assert_eq!(
            verdict.reason,
            Reason::TooFewTrials {
                metric: Metric::Clicks,
                short: vec![
                    VariantCount {
                        id: "A".into(),
                        trials: 20
                    },
                    VariantCount {
                        id: "B".into(),
                        trials: 20
                    },
                ],
                min_per_variant: 100,
                needed_per_variant: 100,
            }
        );
        // When the observed difference needs more than the minimum, the reason says so.
        let verdict = decide(&[variant("A", 90, 30), variant("B", 500, 171)], &rules());
        assert_eq!(
            verdict.needed_per_variant,
            needed_per_variant(0.342, 1.0 / 3.0, 0.05, 0.8)
        );
        let Reason::TooFewTrials {
            short,
            needed_per_variant: needed,
            ..
        } = &verdict.reason
        else {
            panic!("{:?}", verdict.reason)
        };
        assert_eq!(
            short,
            &[VariantCount {
                id: "A".into(),
                trials: 90
            }]
        );
        assert_eq!(Some(*needed), verdict.needed_per_variant);
    }

    #[test]
    fn decide_veto_leaves_the_other_variant() {
        let mut b = variant("B", 1000, 400);
        b.unsubscribes = 50;
        let mut a = variant("A", 1000, 300);
        a.unsubscribes = 5;
        let verdict = decide(&[a, b], &rules());
        assert_eq!(verdict.verdict, VerdictKind::Winner);
        assert_eq!(verdict.winner.as_deref(), Some("A"));
        assert_eq!(verdict.p_value, None);
        assert!(verdict.variants[0].exceeded.is_empty());
        let unsubscribes = Exceeded {
            limit: Limit::UnsubscribeRate,
            rate: 0.05,
            max: 0.01,
        };
        assert_eq!(verdict.variants[1].exceeded, [unsubscribes]);
        close(verdict.variants[1].unsubscribe_rate, 0.05, 1e-12);
        assert_eq!(
            verdict.reason,
            Reason::OnlyOneLeft {
                winner: VariantRate {
                    id: "A".into(),
                    rate: 0.3
                },
                metric: Metric::Clicks,
                vetoed: vec![Vetoed {
                    id: "B".into(),
                    exceeded: vec![unsubscribes]
                }],
            }
        );
    }

    #[test]
    fn decide_veto_leaves_a_test_between_the_others() {
        let mut c = variant("C", 1000, 500);
        c.unsubscribes = 50;
        let verdict = decide(
            &[variant("A", 1000, 300), variant("B", 1000, 400), c],
            &rules(),
        );
        assert_eq!(verdict.verdict, VerdictKind::Winner);
        assert_eq!(verdict.winner.as_deref(), Some("B"));
        // One comparison (B against A): no Bonferroni factor.
        close(verdict.p_value.unwrap(), 2.758e-6, 1e-8);
        let Reason::Wins {
            beaten,
            vetoed,
            comparisons,
            ..
        } = &verdict.reason
        else {
            panic!("{:?}", verdict.reason)
        };
        assert_eq!((beaten.len(), *comparisons), (1, 1));
        assert_eq!(vetoed.len(), 1);
        assert_eq!(vetoed[0].id, "C");
        assert!(verdict.variants[2].prob_best > 0.99);
    }

    #[test]
    fn decide_veto_every_variant() {
        let mut a = variant("A", 1000, 300);
        a.bounced = 100; // 100 / 1100 = 9.1 %
        let mut b = variant("B", 1000, 400);
        b.complaints = 2; // 0.2 %, limit 0.1 %
        b.unsubscribes = 20;
        let verdict = decide(&[a, b], &rules());
        assert_eq!(verdict.verdict, VerdictKind::Inconclusive);
        assert_eq!(verdict.winner, None);
        let Reason::AllVetoed { vetoed } = &verdict.reason else {
            panic!("{:?}", verdict.reason)
        };
        let limits = |v: &Vetoed| v.exceeded.iter().map(|e| e.limit).collect::<Vec<_>>();
        assert_eq!(limits(&vetoed[0]), [Limit::BounceRate]);
        assert_eq!(
            limits(&vetoed[1]),
            [Limit::UnsubscribeRate, Limit::ComplaintRate]
        );
    }

    #[test]
    fn decide_veto_waits_for_the_minimum_sample() {
        let mut b = variant("B", 50, 20);
        b.unsubscribes = 10;
        let verdict = decide(&[variant("A", 1000, 300), b], &rules());
        assert!(verdict.variants[1].exceeded.is_empty());
        assert_eq!(verdict.verdict, VerdictKind::Inconclusive);
        assert!(
            matches!(&verdict.reason, Reason::TooFewTrials { short, .. } if short[0].id == "B" && short[0].trials == 50)
        );
        // A lone survivor below the minimum is not called the winner either.
        let mut a = variant("A", 1000, 300);
        a.unsubscribes = 50;
        let verdict = decide(&[a, variant("B", 50, 20)], &rules());
        assert!(!verdict.variants[0].exceeded.is_empty());
        assert_eq!(verdict.verdict, VerdictKind::Inconclusive);
        assert_eq!(verdict.needed_per_variant, Some(100));
    }

    #[test]
    fn decide_three_variants_bonferroni() {
        // B vs A alone: p = 0.0443, a winner at 95 %. With C as well, B is compared twice and
        // the weakest comparison (against A or C, both 30 %) is 0.0443 * 2 = 0.0885.
        let inputs = [
            variant("A", 1000, 300),
            variant("B", 1000, 342),
            variant("C", 1000, 300),
        ];
        let verdict = decide(&inputs, &rules());
        assert_eq!(verdict.verdict, VerdictKind::Inconclusive);
        close(verdict.p_value.unwrap(), 2.0 * 0.044260, 1e-5);
        close(verdict.z.unwrap(), 2.0116, 1e-4);
        // Sized at alpha 0.025: needed_per_variant(0.342, 0.30, 0.025, 0.8) = 2347.6.
        assert_eq!(verdict.needed_per_variant, Some(2348));
        let Reason::NotSignificant {
            leader,
            rival,
            comparisons,
            needed_per_variant: needed,
            ..
        } = &verdict.reason
        else {
            panic!("{:?}", verdict.reason)
        };
        assert_eq!((leader.id.as_str(), rival.id.as_str()), ("B", "A"));
        assert_eq!((*comparisons, *needed), (2, Some(2348)));
        close(
            verdict.variants.iter().map(|v| v.prob_best).sum(),
            1.0,
            1e-6,
        );

        // C far ahead: C vs A p = 2.8e-6, C vs B p = 2.6e-5 (the weakest), times 2.
        let inputs = [
            variant("A", 1000, 300),
            variant("B", 1000, 310),
            variant("C", 1000, 400),
        ];
        let verdict = decide(&inputs, &rules());
        assert_eq!(verdict.verdict, VerdictKind::Winner);
        assert_eq!(verdict.winner.as_deref(), Some("C"));
        close(verdict.p_value.unwrap(), 2.0 * 2.6033e-5, 1e-8);
        close(verdict.z.unwrap(), 4.2057, 1e-4);
        let Reason::Wins {
            winner,
            beaten,
            comparisons,
            ..
        } = &verdict.reason
        else {
            panic!("{:?}", verdict.reason)
        };
        assert_eq!(winner.id, "C");
        let ids: Vec<&str> = beaten.iter().map(|v| v.id.as_str()).collect();
        assert_eq!((ids, *comparisons), (vec!["A", "B"], 2));
    }

    #[test]
    fn decide_ties_go_to_the_first() {
        let inputs = [
            variant("A", 1000, 300),
            variant("B", 1000, 400),
            variant("C", 1000, 400),
        ];
        let verdict = decide(&inputs, &rules());
        assert_eq!(verdict.verdict, VerdictKind::Inconclusive);
        assert_eq!(verdict.needed_per_variant, None);
        assert!(
            matches!(&verdict.reason, Reason::Tie { first, second, .. } if first == "B" && second == "C")
        );
    }

    #[test]
    fn decide_clicks_per_open() {
        let a = VariantInput {
            id: "A".to_owned(),
            delivered: 2000,
            opens: 400,
            clicks: 120,
            ..VariantInput::default()
        };
        let b = VariantInput {
            id: "B".to_owned(),
            delivered: 2000,
            opens: 500,
            clicks: 200,
            ..VariantInput::default()
        };
        let cpo = Rules {
            metric: Metric::ClicksPerOpen,
            ..rules()
        };
        let verdict = decide(&[a.clone(), b], &cpo);
        assert_eq!(verdict.metric, Metric::ClicksPerOpen);
        assert_eq!(verdict.variants[0].trials, 400);
        assert_eq!(verdict.variants[0].successes, 120);
        close(verdict.variants[1].rate, 0.4, 1e-12);
        let (z, p) = two_proportion_z(200, 500, 120, 400).unwrap();
        close(verdict.z.unwrap(), z, 1e-12);
        close(verdict.p_value.unwrap(), p, 1e-12);
        assert_eq!(verdict.verdict, VerdictKind::Winner);
        assert!(
            matches!(&verdict.reason, Reason::Wins { metric: Metric::ClicksPerOpen, winner, .. } if winner.rate == 0.4)
        );
        // More clickers than openers (opens not tracked for some): capped at the openers.
        let odd = VariantInput {
            id: "C".to_owned(),
            delivered: 2000,
            opens: 100,
            clicks: 150,
            ..VariantInput::default()
        };
        let verdict = decide(&[a, odd], &cpo);
        assert_eq!(verdict.variants[1].successes, 100);
        assert_eq!(verdict.variants[1].rate, 1.0);
        assert_eq!(verdict.variants[1].clicks, 150);
        // Too few openers is "too few", counted in openers.
        let few = Rules {
            min_per_variant: 450,
            ..cpo
        };
        let verdict = decide(
            &[
                VariantInput {
                    id: "A".to_owned(),
                    delivered: 2000,
                    opens: 400,
                    clicks: 120,
                    ..VariantInput::default()
                },
                VariantInput {
                    id: "B".to_owned(),
                    delivered: 2000,
                    opens: 500,
                    clicks: 200,
                    ..VariantInput::default()
                },
            ],
            &few,
        );
        assert_eq!(verdict.verdict, VerdictKind::Inconclusive);
        assert_eq!(
            verdict.reason,
            Reason::TooFewTrials {
                metric: Metric::ClicksPerOpen,
                short: vec![VariantCount {
                    id: "A".into(),
                    trials: 400
                }],
                min_per_variant: 450,
                needed_per_variant: verdict.needed_per_variant.unwrap(),
            }
        );
    }

    #[test]
    fn decide_opens_metric() {
        let mut a = variant("A", 1000, 0);
        a.opens = 200;
        let mut b = variant("B", 1000, 0);
        b.opens = 260;
        let verdict = decide(
            &[a, b],
            &Rules {
                metric: Metric::Opens,
                ..rules()
            },
        );
        assert_eq!(verdict.variants[1].successes, 260);
        assert_eq!(verdict.variants[1].trials, 1000);
        assert_eq!(verdict.winner.as_deref(), Some("B"));
    }

    #[test]
    fn decide_zero_and_one_variant() {
        let verdict = decide(&[], &rules());
        assert_eq!(verdict.verdict, VerdictKind::Inconclusive);
        assert!(verdict.variants.is_empty());
        assert_eq!(verdict.reason, Reason::TooFewVariants { only: None });
        let verdict = decide(&[variant("A", 1000, 300)], &rules());
        assert_eq!(verdict.verdict, VerdictKind::Inconclusive);
        assert_eq!(verdict.winner, None);
        assert_eq!(verdict.p_value, None);
        assert_eq!(verdict.variants.len(), 1);
        assert_eq!(verdict.variants[0].prob_best, 1.0);
        assert_eq!(
            verdict.reason,
            Reason::TooFewVariants {
                only: Some("A".into())
            }
        );
    }

    #[test]
    fn decide_odd_inputs_do_not_panic() {
        let empty = VariantInput::default();
        let huge = VariantInput {
            id: "H".to_owned(),
            delivered: u64::MAX,
            bounced: u64::MAX,
            opens: u64::MAX,
            clicks: u64::MAX,
            unsubscribes: u64::MAX,
            complaints: u64::MAX,
        };
        for confidence in [0.95, 0.0, 1.0, -3.0, f64::NAN] {
            for min_per_variant in [0, 100] {
                let rules = Rules {
                    confidence,
                    min_per_variant,
                    ..rules()
                };
                let verdict = decide(&[empty.clone(), huge.clone(), empty.clone()], &rules);
                assert_eq!(verdict.variants.len(), 3);
                assert_eq!(verdict.variants.len(), 3);
            }
        }
        let bad = Rules {
            confidence: 1.5,
            ..rules()
        };
        let verdict = decide(&[variant("A", 1000, 300), variant("B", 1000, 400)], &bad);
        assert_eq!(verdict.verdict, VerdictKind::Inconclusive);
        assert_eq!(
            verdict.reason,
            Reason::InvalidConfidence { confidence: 1.5 }
        );
    }

    #[test]
    fn verdict_json_shape() {
        let verdict = decide(
            &[variant("A", 1000, 300), variant("B", 1000, 400)],
            &rules(),
        );
        let json = serde_json::to_value(&verdict).unwrap();
        assert_eq!(json["verdict"], "winner");
        assert_eq!(json["winner"], "B");
        assert_eq!(json["metric"], "clicks");
        assert_eq!(json["confidence"], 0.95);
        assert!(json["p_value"].is_f64());
        assert!(json["z"].is_f64());
        assert!(json["needed_per_variant"].is_null());
        assert_eq!(json["reason"]["wins"]["winner"]["id"], "B");
        let first = &json["variants"][0];
        for key in [
            "id",
            "delivered",
            "opens",
            "clicks",
            "trials",
            "successes",
            "rate",
            "ci_low",
            "ci_high",
            "prob_best",
            "bounce_rate",
            "unsubscribe_rate",
            "complaint_rate",
            "exceeded",
        ] {
            assert!(first.get(key).is_some(), "variants[0] lacks {key}");
        }
        assert_eq!(first["id"], "A");
        assert_eq!(first["delivered"], 1000);
        assert_eq!(first["clicks"], 300);
        assert_eq!(first["exceeded"], serde_json::json!([]));

        let close_call = decide(
            &[variant("A", 1000, 300), variant("B", 1000, 310)],
            &rules(),
        );
        let json = serde_json::to_value(&close_call).unwrap();
        assert_eq!(json["verdict"], "inconclusive");
        assert!(json["winner"].is_null());
        assert_eq!(json["needed_per_variant"], 33_275);
        let back: Verdict = serde_json::from_value(json).unwrap();
        assert_eq!(back, close_call);
        assert_eq!(
            serde_json::to_value(Metric::ClicksPerOpen).unwrap(),
            "clicks_per_open"
        );
    }
}
