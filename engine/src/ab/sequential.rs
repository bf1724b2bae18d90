//! Sequential verdicts, valid at every look: the mixture sequential probability ratio test
//! (mSPRT) with always-valid p-values and confidence sequences of Johari, Koomen, Pekelis &
//! Walsh, "Always Valid Inference: Continuous Monitoring of A/B Tests" (Operations Research
//! 70(3), 2022; arXiv:1512.04922, 2015), the method behind Optimizely's stats engine.
//!
//! For two variants with `s1/n1` and `s2/n2`, the lift is θ̂ = s1/n1 − s2/n2 with variance
//! V = p̃1(1−p̃1)/n1 + p̃2(1−p̃2)/n2 (rates smoothed by half a success, p̃ = (s+½)/(n+1), so
//! that V is never 0). With a normal mixture N(0, τ²) over the true lift, the likelihood
//! ratio against "no lift" is
//!
//! ```text
//! Λ = √(V / (V + τ²)) · exp( τ² θ̂² / (2 V (V + τ²)) )
//! ```
//!
//! and the always-valid p-value is min(1, 1/Λ): the chance that it ever falls to α under
//! "no lift" is at most α, however often it is looked at. The confidence sequence for the lift
//! at level α is the set of lifts θ0 the same test would not reject:
//!
//! ```text
//! θ̂ ± √( V (V + τ²) / τ² · (2 ln(1/α) + ln((V + τ²) / V)) )
//! ```
//!
//! With k variants the leader is compared with every other one, each at α / m with
//! m = k(k−1)/2 (Bonferroni over every pair, so that a false winner stays within α whichever
//! variant ends up leading). The test stops for a winner when every comparison's adjusted
//! p-value is at most α, and for futility when every confidence sequence lies inside
//! ±`min_lift`: whatever lift remains cannot matter.

use super::verdict::{rate_of, Comparison, Field, Stop, Verdict, VerdictKind};
use super::VariantStats;
use crate::model::Reason;

/// The lift of sample 1 over sample 2 and its variance (infinite when a sample is empty).
fn lift_and_variance(s1: u64, n1: u64, s2: u64, n2: u64) -> (f64, f64) {
    if n1 == 0 || n2 == 0 {
        return (0.0, f64::INFINITY);
    }
    let (s1, s2) = (s1.min(n1), s2.min(n2));
    let part = |s: u64, n: u64| {
        let smoothed = (s as f64 + 0.5) / (n as f64 + 1.0);
        smoothed * (1.0 - smoothed) / n as f64
    };
    let lift = s1 as f64 / n1 as f64 - s2 as f64 / n2 as f64;
    (lift, part(s1, n1) + part(s2, n2))
}

/// The always-valid p-value (not adjusted) that sample 1's rate differs from sample 2's,
/// for the mixing standard deviation `tau`: min(1, 1/Λ). 1 when a sample is empty.
pub fn always_valid_p(s1: u64, n1: u64, s2: u64, n2: u64, tau: f64) -> f64 {
    let (lift, v) = lift_and_variance(s1, n1, s2, n2);
    let t2 = tau * tau;
    if !(v.is_finite() && v > 0.0 && t2 > 0.0) {
        return 1.0;
    }
    let ln_lambda = 0.5 * (v / (v + t2)).ln() + t2 * lift * lift / (2.0 * v * (v + t2));
    (-ln_lambda).exp().min(1.0)
}

/// The always-valid confidence sequence at level `alpha` for the lift of sample 1 over
/// sample 2 (a difference of rates), clamped to [−1, 1].
pub fn confidence_sequence(s1: u64, n1: u64, s2: u64, n2: u64, tau: f64, alpha: f64) -> (f64, f64) {
    let (lift, v) = lift_and_variance(s1, n1, s2, n2);
    let t2 = tau * tau;
    if !(v.is_finite() && v > 0.0 && t2 > 0.0 && alpha > 0.0 && alpha < 1.0) {
        return (-1.0, 1.0);
    }
    let radius = (v * (v + t2) / t2 * (2.0 * (1.0 / alpha).ln() + ((v + t2) / v).ln())).sqrt();
    ((lift - radius).max(-1.0), (lift + radius).min(1.0))
}

/// The leader against every other variant that may win, by the mSPRT: fills in the
/// comparisons, the weakest adjusted p-value, the stop (winner or futility) and returns why.
pub(super) fn compare(field: &Field, ranked: &[&VariantStats], verdict: &mut Verdict) -> Reason {
    let (Some(&leader), Some(&runner_up)) = (ranked.first(), ranked.get(1)) else {
        return Reason::NothingToCompare;
    };
    let k = ranked.len();
    let pairs = (k * (k - 1) / 2).max(1);
    let level = field.alpha / pairs as f64;
    let tau = field.rules.mixture_sd;
    verdict.comparisons = ranked[1..]
        .iter()
        .map(|other| comparison(leader, other, tau, pairs, level))
        .collect();
    let Some(weakest) = verdict
        .comparisons
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.p_value.total_cmp(&b.1.p_value))
        .map(|(i, c)| (ranked[i + 1], c.p_value))
    else {
        return Reason::NothingToCompare;
    };
    let (rival, p_value) = weakest;
    verdict.p_value = Some(p_value);
    if p_value <= field.alpha && leader.rate > runner_up.rate {
        verdict.verdict = VerdictKind::Winner;
        verdict.winner = Some(leader.id.clone());
        verdict.stop = Some(Stop::Winner);
        return Reason::Wins {
            winner: rate_of(leader),
            beaten: ranked[1..].iter().map(|v| rate_of(v)).collect(),
            metric: field.rules.metric,
            p_value,
            comparisons: pairs,
            confidence: field.rules.confidence,
            vetoed: Vec::new(),
        };
    }
    if let Some(reason) = futility(field, (leader, rival), verdict) {
        return reason;
    }
    Reason::NotSignificant {
        leader: rate_of(leader),
        rival: rate_of(rival),
        metric: field.rules.metric,
        p_value,
        comparisons: pairs,
        needed_per_variant: None,
        vetoed: Vec::new(),
    }
}

/// The futility stop: every comparison's confidence sequence inside ±`min_lift`.
fn futility(
    field: &Field,
    (leader, rival): (&VariantStats, &VariantStats),
    verdict: &mut Verdict,
) -> Option<Reason> {
    let min_lift = field.rules.min_lift;
    let futile = verdict
        .comparisons
        .iter()
        .all(|c| c.ci_low > -min_lift && c.ci_high < min_lift);
    if !futile {
        return None;
    }
    verdict.stop = Some(Stop::Futility);
    let (low, high) = verdict
        .comparisons
        .iter()
        .fold((0.0_f64, 0.0_f64), |(lo, hi), c| {
            (lo.min(c.ci_low), hi.max(c.ci_high))
        });
    Some(Reason::Futile {
        leader: rate_of(leader),
        rival: rate_of(rival),
        metric: field.rules.metric,
        low,
        high,
        min_lift,
    })
}

/// One comparison of `leader` with `other`: the lift, its adjusted always-valid p-value and
/// its confidence sequence at the per-pair `level`.
fn comparison(
    leader: &VariantStats,
    other: &VariantStats,
    tau: f64,
    pairs: usize,
    level: f64,
) -> Comparison {
    let (s1, n1, s2, n2) = (
        leader.successes,
        leader.trials,
        other.successes,
        other.trials,
    );
    let p = always_valid_p(s1, n1, s2, n2, tau);
    let (ci_low, ci_high) = confidence_sequence(s1, n1, s2, n2, tau, level);
    Comparison {
        leader: leader.id.clone(),
        other: other.id.clone(),
        lift: leader.rate - other.rate,
        p_value: (p * pairs as f64).min(1.0),
        ci_low,
        ci_high,
    }
}

#[cfg(test)]
#[path = "sequential_tests.rs"]
mod tests;
