//! Guardrails that need evidence: a variant is vetoed only when its bounce, unsubscribe or
//! complaint rate is significantly above the campaign's limit, by a one-sided test that stays
//! valid however often it is looked at. A point estimate above the limit is not enough: one
//! complaint among 100 deliveries is 1 %, far above a 0.3 % limit, and yet quite likely
//! (26 %) from a variant whose true rate is exactly at that limit.
//!
//! The test is a mixture likelihood ratio (Robbins 1970; Howard, Ramdas, McAuliffe & Sekhon,
//! "Time-uniform, nonparametric, nonasymptotic confidence sequences", Ann. Statist. 2021):
//! with `x` events among `n` trials and the limit `p0`,
//!
//! ```text
//! M = ∫ (p/p0)^x ((1−p)/(1−p0))^(n−x) dπ(p),   π uniform on [p0, 1]
//!   = B(x+1, n−x+1) · P(Binomial(n+1, p0) ≤ x) / ((1−p0) · p0^x (1−p0)^(n−x))
//! ```
//!
//! For every true rate at or below `p0` each integrand, and so `M`, is a nonnegative
//! supermartingale starting at 1, so by Ville's inequality `M` ever reaches `1/α` with
//! probability at most `α`: the always-valid one-sided p-value is `min(1, 1/M)`, and the veto
//! fires when it is at most `α` = 1 − confidence.

use crate::model::{Exceeded, Limit};
use serde::{Deserialize, Serialize};
use statrs::distribution::{Binomial, DiscreteCDF};
use statrs::function::gamma::ln_gamma;

/// One guardrail's test on one variant: the rate seen, the limit, and the evidence that the
/// true rate is above it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GuardrailTest {
    /// Which limit.
    pub limit: Limit,
    /// Events counted (bounces, unsubscribes or complaints).
    pub events: u64,
    /// The denominator (delivered + bounced for bounces, delivered otherwise).
    pub trials: u64,
    /// events / trials (0 with no trials).
    pub rate: f64,
    /// The limit's value.
    pub max: f64,
    /// Always-valid one-sided p-value of "the true rate is at most the limit" (1: no evidence).
    pub p_value: f64,
    /// True when `p_value` is at most 1 − confidence: the variant is vetoed.
    pub vetoed: bool,
}

impl GuardrailTest {
    /// The limit as the older "exceeded" fact (rate and limit).
    pub fn exceeded(&self) -> Exceeded {
        Exceeded {
            limit: self.limit,
            rate: self.rate,
            max: self.max,
        }
    }
}

/// Tests one rate against its limit at level `alpha` (1 − confidence).
pub(crate) fn test(limit: Limit, events: u64, trials: u64, max: f64, alpha: f64) -> GuardrailTest {
    let events = events.min(trials);
    let rate = if trials == 0 {
        0.0
    } else {
        events as f64 / trials as f64
    };
    let p_value = above_limit_p(events, trials, max);
    GuardrailTest {
        limit,
        events,
        trials,
        rate,
        max,
        p_value,
        vetoed: p_value <= alpha,
    }
}

/// The always-valid one-sided p-value that `events` in `trials` come from a rate above
/// `limit` (see the module doc): `min(1, 1/M)`. 1 when the rate seen is at or below the
/// limit; with a limit of 0, any event is proof (0), with a limit of 1 nothing is (1).
pub fn above_limit_p(events: u64, trials: u64, limit: f64) -> f64 {
    let events = events.min(trials);
    if trials == 0 || limit.is_nan() || limit >= 1.0 {
        return 1.0;
    }
    if limit <= 0.0 {
        return if events > 0 { 0.0 } else { 1.0 };
    }
    if (events as f64) <= limit * trials as f64 {
        return 1.0;
    }
    let (x, n) = (events as f64, trials as f64);
    let ln_beta = ln_gamma(x + 1.0) + ln_gamma(n - x + 1.0) - ln_gamma(n + 2.0);
    let below = Binomial::new(limit, trials.saturating_add(1))
        .map(|b| b.cdf(events))
        .unwrap_or(1.0);
    if below.is_nan() || below <= 0.0 {
        return 1.0;
    }
    let ln_null = x * limit.ln() + (n - x) * (1.0 - limit).ln() + (1.0 - limit).ln();
    let ln_m = ln_beta + below.ln() - ln_null;
    if ln_m.is_nan() {
        return 1.0;
    }
    (-ln_m).exp().min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_complaint_in_a_hundred_is_no_evidence() {
        // 1 % seen against a 0.3 % limit: M ≈ 0.043, so p = 1.
        let t = test(Limit::ComplaintRate, 1, 100, 0.003, 0.05);
        assert!(!t.vetoed);
        assert_eq!(t.p_value, 1.0);
        assert!((t.rate - 0.01).abs() < 1e-12);
        // Two unsubscribes in 100 against 1 %: no evidence either.
        assert!(!test(Limit::UnsubscribeRate, 2, 100, 0.01, 0.05).vetoed);
    }

    #[test]
    fn a_clear_excess_is_vetoed() {
        // 5 complaints in 100 against 0.3 %: M ≈ 730, p ≈ 0.0014.
        let t = test(Limit::ComplaintRate, 5, 100, 0.003, 0.05);
        assert!(t.vetoed, "{t:?}");
        assert!(t.p_value < 0.002 && t.p_value > 0.001, "{t:?}");
        // 50 unsubscribes in 1,000 against 1 %.
        assert!(test(Limit::UnsubscribeRate, 50, 1000, 0.01, 0.05).p_value < 1e-10);
    }

    #[test]
    fn the_closed_form_matches_a_numerical_integral() {
        for &(x, n, p0) in &[(3_u64, 100_u64, 0.01), (7, 200, 0.02), (12, 1000, 0.005)] {
            let (xf, nf) = (x as f64, n as f64);
            let steps = 200_000;
            let h = (1.0 - p0) / steps as f64;
            let integrand = |p: f64| {
                (xf * (p / p0).ln() + (nf - xf) * ((1.0 - p) / (1.0 - p0)).ln()).exp() / (1.0 - p0)
            };
            let mut sum = 0.0;
            for i in 0..steps {
                let a = p0 + h * i as f64;
                sum += h / 6.0 * (integrand(a) + 4.0 * integrand(a + h / 2.0) + integrand(a + h));
            }
            let p = above_limit_p(x, n, p0);
            let expected = (1.0 / sum).min(1.0);
            assert!(
                (p - expected).abs() <= 1e-6 * expected.max(1e-12) + 1e-9,
                "{x}/{n} vs {p0}: {p} against {expected}"
            );
        }
    }

    #[test]
    fn edges() {
        assert_eq!(above_limit_p(0, 0, 0.01), 1.0);
        assert_eq!(above_limit_p(5, 3, 1.0), 1.0);
        assert_eq!(above_limit_p(1, 10, 0.0), 0.0);
        assert_eq!(above_limit_p(0, 10, 0.0), 1.0);
        assert_eq!(above_limit_p(1, 100, f64::NAN), 1.0);
        assert_eq!(above_limit_p(1, 1000, 0.003), 1.0, "below the limit");
        let huge = above_limit_p(10_000_000, 1_000_000_000, 0.003);
        assert!(huge < 1e-100, "{huge}");
    }
}
