//! Conversions and revenue per recipient: rates with intervals, revenue per recipient with an
//! interval that holds for skewed order values, Welch's test between variants, and lift
//! against a holdout. Pure computation, like the rest of `ab`.
//!
//! Revenue per recipient is the mean of one value per recipient of the arm (delivered
//! recipients of a variant, or every holdout recipient): the sum of that recipient's
//! attributed order values, 0 for recipients who did not convert. Order values are skewed (most
//! recipients spend nothing, a few spend a lot), so the interval is chosen by the data:
//!
//! - **Welch** (a Student t interval with the Welch–Satterthwaite degrees of freedom) when
//!   every arm involved has at least [`MIN_CONVERTERS_FOR_WELCH`] converting recipients: by
//!   then the mean is close enough to normal.
//! - **Bootstrap** otherwise: a percentile bootstrap of [`RESAMPLES`] resamples drawn with a
//!   fixed seed, so the same data always gives the same interval. A resample of an arm of `n`
//!   recipients of whom `k` converted draws the number of converters picked from
//!   Binomial(`n`, `k`/`n`) and then that many values uniformly from the `k` converters,
//!   which is the same distribution as drawing `n` recipients with replacement.
//!
//! The revenue verdict compares arms with Welch's two-sided test (Bonferroni adjusted like the
//! rate verdict).

use super::stats::wilson;
use super::verdict::{decide as decide_rates, Rules, VariantInput, Verdict, VerdictKind};
use crate::model::{Metric, Reason, VariantRate, Vetoed};
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

/// Converting recipients each arm needs before the Welch interval is used instead of the
/// bootstrap.
pub const MIN_CONVERTERS_FOR_WELCH: usize = 30;

/// Resamples drawn by the percentile bootstrap.
pub const RESAMPLES: usize = 4000;

/// The seed of the bootstrap's random numbers (any fixed value: it makes intervals repeatable).
pub const BOOTSTRAP_SEED: u64 = 0x5eed_0fc0_4e5e_7500;

/// One arm of a comparison: how many recipients it has, and the revenue of each converting one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Arm {
    /// Recipients in the arm (delivered, or in the holdout), converters included.
    pub recipients: u64,
    /// The attributed revenue of each converting recipient (one entry per recipient).
    pub converters: Vec<f64>,
    /// Attributed orders (a recipient may place several).
    pub orders: u64,
}

impl Arm {
    /// Converting recipients, capped at the arm's size.
    pub fn converting(&self) -> u64 {
        (self.converters.len() as u64).min(self.recipients)
    }

    /// Total attributed revenue.
    pub fn total(&self) -> f64 {
        self.converters.iter().sum()
    }

    /// Revenue per recipient (0 for an empty arm).
    pub fn mean(&self) -> f64 {
        if self.recipients == 0 {
            0.0
        } else {
            self.total() / self.recipients as f64
        }
    }

    /// The sample variance of revenue per recipient, zeros included (0 below two recipients).
    pub fn variance(&self) -> f64 {
        if self.recipients < 2 {
            return 0.0;
        }
        let mean = self.mean();
        let zeros = self.recipients.saturating_sub(self.converters.len() as u64) as f64;
        let spread: f64 = self.converters.iter().map(|x| (x - mean).powi(2)).sum();
        (spread + zeros * mean * mean) / (self.recipients - 1) as f64
    }

    fn welch_ready(&self) -> bool {
        self.converters.len() >= MIN_CONVERTERS_FOR_WELCH
    }
}

/// How an interval was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Wilson score interval of a proportion.
    Wilson,
    /// Newcombe's hybrid score interval of a difference of two proportions.
    Newcombe,
    /// Student t interval with Welch–Satterthwaite degrees of freedom.
    Welch,
    /// Seeded percentile bootstrap.
    Bootstrap,
    /// Too little data for any interval: both ends are the estimate.
    None,
}

/// A point estimate with a two-sided interval at the confidence asked for.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The estimate.
    pub value: f64,
    /// Lower end of the interval.
    pub low: f64,
    /// Upper end of the interval.
    pub high: f64,
    /// How the interval was computed.
    pub method: Method,
}

impl Estimate {
    fn bare(value: f64) -> Estimate {
        Estimate {
            value,
            low: value,
            high: value,
            method: Method::None,
        }
    }
}

/// An arm's conversions: attributed orders, converting recipients, and their rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Conversions {
    /// Attributed orders.
    pub count: u64,
    /// Recipients with at least one attributed order.
    pub recipients: u64,
    /// Converting recipients per recipient of the arm, with its Wilson interval.
    pub rate: Estimate,
}

/// An arm's revenue: the total and revenue per recipient with its interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Revenue {
    /// Total attributed revenue.
    pub total: f64,
    /// Revenue per recipient (Welch or bootstrap interval, see the module docs).
    pub per_recipient: Estimate,
}

/// An arm against the holdout: differences (arm minus holdout) with intervals.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Lift {
    /// Conversion rate difference (Newcombe interval).
    pub conversion_rate: Estimate,
    /// Revenue per recipient difference (Welch, or bootstrap when either arm has few converters).
    pub revenue_per_recipient: Estimate,
}

/// An arm's conversion figures, as reports show them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ArmFigures {
    /// Recipients counted (delivered, or held out).
    pub recipients: u64,
    /// Conversions and their rate.
    pub conversions: Conversions,
    /// Revenue and revenue per recipient.
    pub revenue: Revenue,
    /// Against the holdout, when the campaign has one.
    pub lift: Option<Lift>,
}

/// The figures of one arm at `confidence`, with its lift against `holdout` if given.
pub fn figures(arm: &Arm, holdout: Option<&Arm>, confidence: f64) -> ArmFigures {
    let (low, high) = wilson(arm.converting(), arm.recipients, confidence);
    ArmFigures {
        recipients: arm.recipients,
        conversions: Conversions {
            count: arm.orders,
            recipients: arm.converting(),
            rate: Estimate {
                value: ratio(arm.converting(), arm.recipients),
                low,
                high,
                method: Method::Wilson,
            },
        },
        revenue: Revenue {
            total: arm.total(),
            per_recipient: mean_interval(arm, confidence, BOOTSTRAP_SEED),
        },
        lift: holdout.map(|h| lift(arm, h, confidence)),
    }
}

/// `arm` minus `holdout`: conversion rate (Newcombe) and revenue per recipient (Welch when
/// both have enough converters, else the bootstrap).
pub fn lift(arm: &Arm, holdout: &Arm, confidence: f64) -> Lift {
    Lift {
        conversion_rate: newcombe(
            (arm.converting(), arm.recipients),
            (holdout.converting(), holdout.recipients),
            confidence,
        ),
        revenue_per_recipient: difference_interval(arm, holdout, confidence, BOOTSTRAP_SEED),
    }
}

/// Revenue per recipient with its interval: Welch (one-sample t) when the arm has enough
/// converters, the seeded bootstrap otherwise.
pub fn mean_interval(arm: &Arm, confidence: f64, seed: u64) -> Estimate {
    let mean = arm.mean();
    if arm.recipients < 2 || arm.converters.is_empty() {
        return Estimate::bare(mean);
    }
    if arm.welch_ready() {
        let se = (arm.variance() / arm.recipients as f64).sqrt();
        let df = (arm.recipients - 1) as f64;
        return t_interval(mean, se, df, confidence);
    }
    let mut rng = SplitMix(seed);
    let mut stats: Vec<f64> = (0..RESAMPLES)
        .map(|_| resample_mean(arm, &mut rng))
        .collect();
    percentile_interval(mean, &mut stats, confidence)
}

/// `a` minus `b` in revenue per recipient with its interval: Welch when both arms have enough
/// converters, the seeded bootstrap otherwise.
pub fn difference_interval(a: &Arm, b: &Arm, confidence: f64, seed: u64) -> Estimate {
    let diff = a.mean() - b.mean();
    if a.recipients < 2 || b.recipients < 2 {
        return Estimate::bare(diff);
    }
    if a.welch_ready() && b.welch_ready() {
        return match welch(a, b) {
            Some(w) => t_interval(diff, w.se, w.df, confidence),
            None => Estimate::bare(diff),
        };
    }
    let mut rng = SplitMix(seed);
    let mut stats: Vec<f64> = (0..RESAMPLES)
        .map(|_| resample_mean(a, &mut rng) - resample_mean(b, &mut rng))
        .collect();
    percentile_interval(diff, &mut stats, confidence)
}

/// Welch's unequal-variances t-test of two arms' revenue per recipient.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Welch {
    /// Mean of the first arm minus mean of the second.
    pub difference: f64,
    /// Standard error of the difference.
    pub se: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    /// The t statistic.
    pub t: f64,
    /// Two-sided p-value.
    pub p_value: f64,
}

/// Welch's test of `a` against `b`; `None` when either arm has fewer than two recipients or
/// neither varies.
pub fn welch(a: &Arm, b: &Arm) -> Option<Welch> {
    if a.recipients < 2 || b.recipients < 2 {
        return None;
    }
    let va = a.variance() / a.recipients as f64;
    let vb = b.variance() / b.recipients as f64;
    let se = (va + vb).sqrt();
    if !(se.is_finite() && se > 0.0) {
        return None;
    }
    let df = (va + vb).powi(2)
        / (va * va / (a.recipients - 1) as f64 + vb * vb / (b.recipients - 1) as f64);
    let difference = a.mean() - b.mean();
    let t = difference / se;
    let dist = StudentsT::new(0.0, 1.0, df).ok()?;
    let p_value = (2.0 * dist.sf(t.abs())).clamp(0.0, 1.0);
    Some(Welch {
        difference,
        se,
        df,
        t,
        p_value,
    })
}

/// Newcombe's hybrid score interval (method 10) for the difference of two proportions.
pub fn newcombe(a: (u64, u64), b: (u64, u64), confidence: f64) -> Estimate {
    let (pa, pb) = (ratio(a.0, a.1), ratio(b.0, b.1));
    let diff = pa - pb;
    if a.1 == 0 || b.1 == 0 {
        return Estimate::bare(diff);
    }
    let (la, ua) = wilson(a.0, a.1, confidence);
    let (lb, ub) = wilson(b.0, b.1, confidence);
    Estimate {
        value: diff,
        low: diff - ((pa - la).powi(2) + (ub - pb).powi(2)).sqrt(),
        high: diff + ((ua - pa).powi(2) + (pb - lb).powi(2)).sqrt(),
        method: Method::Newcombe,
    }
}

fn t_interval(value: f64, se: f64, df: f64, confidence: f64) -> Estimate {
    let t = StudentsT::new(0.0, 1.0, df)
        .map(|d| d.inverse_cdf(0.5 + confidence / 2.0))
        .unwrap_or(f64::NAN);
    if !(t.is_finite() && se.is_finite()) {
        return Estimate::bare(value);
    }
    Estimate {
        value,
        low: value - t * se,
        high: value + t * se,
        method: Method::Welch,
    }
}

/// The percentile interval of bootstrap statistics (linear interpolation between order
/// statistics, as numpy's default percentile).
fn percentile_interval(value: f64, stats: &mut [f64], confidence: f64) -> Estimate {
    stats.sort_by(f64::total_cmp);
    let tail = (1.0 - confidence) / 2.0;
    Estimate {
        value,
        low: quantile(stats, tail),
        high: quantile(stats, 1.0 - tail),
        method: Method::Bootstrap,
    }
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let Some(last) = sorted.len().checked_sub(1) else {
        return f64::NAN;
    };
    let pos = q.clamp(0.0, 1.0) * last as f64;
    let below = pos.floor() as usize;
    let above = (below + 1).min(last);
    let frac = pos - below as f64;
    sorted[below] + (sorted[above] - sorted[below]) * frac
}

/// The mean of one resample of the arm (see the module docs).
fn resample_mean(arm: &Arm, rng: &mut SplitMix) -> f64 {
    let k = arm.converters.len();
    let n = arm.recipients;
    if n == 0 || k == 0 {
        return 0.0;
    }
    let picked = binomial(n, k as f64 / n as f64, rng);
    let mut sum = 0.0;
    for _ in 0..picked {
        let index = ((rng.uniform() * k as f64) as usize).min(k - 1);
        sum += arm.converters[index];
    }
    sum / n as f64
}

/// A Binomial(n, p) draw: exact by waiting times when n·p is small, the normal
/// approximation (clamped to 0..=n) when n·p and n·(1-p) are both above 50.
fn binomial(n: u64, p: f64, rng: &mut SplitMix) -> u64 {
    if p >= 1.0 {
        return n;
    }
    let mean = n as f64 * p;
    if mean > 50.0 && n as f64 * (1.0 - p) > 50.0 {
        let sd = (mean * (1.0 - p)).sqrt();
        let draw = (mean + sd * rng.normal()).round();
        return draw.clamp(0.0, n as f64) as u64;
    }
    if p > 0.5 {
        return n - binomial(n, 1.0 - p, rng);
    }
    // Geometric gaps between successes: O(n·p) expected steps.
    let log_q = (1.0 - p).ln();
    let mut successes = 0u64;
    let mut position = 0.0f64;
    loop {
        let gap = ((1.0 - rng.uniform()).ln() / log_q).floor() + 1.0;
        position += gap;
        if position > n as f64 {
            return successes;
        }
        successes += 1;
    }
}

/// SplitMix64: a small, fast, well-mixed generator, enough for resampling.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u = 1.0 - self.uniform();
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// One variant as a money verdict sees it: its rate numbers and its revenue arm.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MoneyInput {
    /// Deliveries, bounces, unsubscribes and complaints (for the limits); opens and clicks
    /// are carried along for the report.
    pub base: VariantInput,
    /// Its delivered recipients and their attributed revenue.
    pub arm: Arm,
}

/// The verdict when the metric is `conversions` or `revenue`.
///
/// Conversions: the rate verdict of `ab::decide` with converting recipients as the successes
/// (same limits, minimum sample, z-test and Bonferroni adjustment). Revenue: the same limits
/// and minimum sample, then the leader in revenue per recipient is compared with each other
/// variant that may win by Welch's test, Bonferroni adjusted; each variant's `rate` and
/// interval are then its revenue per recipient.
pub fn decide_money(inputs: &[MoneyInput], rules: &Rules) -> Verdict {
    let as_rates: Vec<VariantInput> = inputs
        .iter()
        .map(|input| VariantInput {
            clicks: input.arm.converting(),
            ..input.base.clone()
        })
        .collect();
    let rate_rules = Rules {
        metric: Metric::Clicks,
        ..rules.clone()
    };
    let mut verdict = decide_rates(&as_rates, &rate_rules);
    for (stats, input) in verdict.variants.iter_mut().zip(inputs) {
        stats.clicks = input.base.clicks;
    }
    if rules.metric == Metric::Revenue {
        revenue_verdict(inputs, rules, &mut verdict);
    }
    verdict.metric = rules.metric;
    relabel(&mut verdict.reason, rules.metric);
    verdict
}

/// Replaces a rate verdict's comparison by Welch's test on revenue per recipient, unless it
/// stopped before comparing (too few variants or trials, every variant vetoed).
fn revenue_verdict(inputs: &[MoneyInput], rules: &Rules, verdict: &mut Verdict) {
    for (stats, input) in verdict.variants.iter_mut().zip(inputs) {
        let estimate = mean_interval(&input.arm, rules.confidence, BOOTSTRAP_SEED);
        stats.rate = estimate.value;
        stats.ci_low = estimate.low;
        stats.ci_high = estimate.high;
    }
    let compared = matches!(
        verdict.reason,
        Reason::Wins { .. } | Reason::NotSignificant { .. } | Reason::Tie { .. }
    );
    let eligible: Vec<usize> = (0..inputs.len().min(verdict.variants.len()))
        .filter(|&i| verdict.variants[i].exceeded.is_empty())
        .collect();
    let Some(leader) = leader(inputs, &eligible) else {
        return;
    };
    let Some((rival, test)) = weakest(inputs, &eligible, leader).filter(|_| compared) else {
        return;
    };
    let comparisons = eligible.len().saturating_sub(1).max(1);
    let p_value = (test.p_value * comparisons as f64).min(1.0);
    verdict.p_value = Some(p_value);
    verdict.z = Some(test.t);
    verdict.needed_per_variant = None;
    let vetoed: Vec<Vetoed> = verdict
        .variants
        .iter()
        .filter(|v| !v.exceeded.is_empty())
        .map(|v| Vetoed {
            id: v.id.clone(),
            exceeded: v.exceeded.clone(),
        })
        .collect();
    let rate_of = |i: usize| VariantRate {
        id: inputs[i].base.id.clone(),
        rate: inputs[i].arm.mean(),
    };
    let wins = p_value < 1.0 - rules.confidence;
    verdict.verdict = VerdictKind::Inconclusive;
    verdict.winner = None;
    verdict.reason = if inputs[leader].arm.mean() == inputs[rival].arm.mean() {
        Reason::Tie {
            first: inputs[leader].base.id.clone(),
            second: inputs[rival].base.id.clone(),
            rate: inputs[leader].arm.mean(),
            metric: Metric::Revenue,
            vetoed,
        }
    } else if wins {
        verdict.verdict = VerdictKind::Winner;
        verdict.winner = Some(inputs[leader].base.id.clone());
        Reason::Wins {
            winner: rate_of(leader),
            beaten: eligible
                .iter()
                .filter(|&&i| i != leader)
                .map(|&i| rate_of(i))
                .collect(),
            metric: Metric::Revenue,
            p_value,
            comparisons,
            confidence: rules.confidence,
            vetoed,
        }
    } else {
        Reason::NotSignificant {
            leader: rate_of(leader),
            rival: rate_of(rival),
            metric: Metric::Revenue,
            p_value,
            comparisons,
            needed_per_variant: None,
            vetoed,
        }
    };
}

/// The eligible variant with the highest revenue per recipient (the first on a tie).
fn leader(inputs: &[MoneyInput], eligible: &[usize]) -> Option<usize> {
    eligible.iter().copied().max_by(|&a, &b| {
        inputs[a]
            .arm
            .mean()
            .total_cmp(&inputs[b].arm.mean())
            .then(b.cmp(&a))
    })
}

/// The leader's weakest Welch comparison (highest p) with another eligible variant; a
/// comparison that cannot be made (no variance) counts as p = 1.
fn weakest(inputs: &[MoneyInput], eligible: &[usize], leader: usize) -> Option<(usize, Welch)> {
    let untestable = Welch {
        difference: 0.0,
        se: 0.0,
        df: 0.0,
        t: 0.0,
        p_value: 1.0,
    };
    eligible
        .iter()
        .filter(|&&i| i != leader)
        .map(|&i| {
            let test = welch(&inputs[leader].arm, &inputs[i].arm).unwrap_or(untestable);
            (i, test)
        })
        .reduce(|worst, next| {
            if next.1.p_value > worst.1.p_value {
                next
            } else {
                worst
            }
        })
}

/// Puts the metric asked for into a reason reached with the rate metric.
fn relabel(reason: &mut Reason, to: Metric) {
    match reason {
        Reason::TooFewTrials { metric, .. }
        | Reason::OnlyOneLeft { metric, .. }
        | Reason::Wins { metric, .. }
        | Reason::Tie { metric, .. }
        | Reason::NotSignificant { metric, .. } => *metric = to,
        _ => {}
    }
}

#[cfg(test)]
#[path = "revenue_tests.rs"]
mod tests;
