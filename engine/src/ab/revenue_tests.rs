//! Known values from scipy 1.10 (`scipy.stats.ttest_ind(equal_var=False)`, `t.ppf`,
//! `bootstrap(method="percentile")`) on the same samples.

use super::*;

fn close(actual: f64, expected: f64, tolerance: f64) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{actual} is not within {tolerance} of {expected}"
    );
}

/// 100 recipients, 40 converting with 10, 20, 30, 40, 50 (8 each).
fn arm_a() -> Arm {
    let converters = [10.0, 20.0, 30.0, 40.0, 50.0].repeat(8);
    Arm {
        recipients: 100,
        orders: 40,
        converters,
    }
}

/// 200 recipients, 50 converting: 5, 15, 25 (10 each) and 200 (20 times).
fn arm_b() -> Arm {
    let mut converters = [5.0, 15.0, 25.0].repeat(10);
    converters.extend([200.0; 20]);
    Arm {
        recipients: 200,
        orders: 55,
        converters,
    }
}

#[test]
fn welch_matches_scipy() {
    let w = welch(&arm_a(), &arm_b()).unwrap();
    close(w.difference, 12.0 - 22.25, 1e-12);
    close(w.t, -2.2462466132046655, 1e-9);
    close(w.p_value, 0.02553852522579498, 1e-9);
}

#[test]
fn mean_interval_uses_welch_with_enough_converters() {
    let e = mean_interval(&arm_a(), 0.95, BOOTSTRAP_SEED);
    assert_eq!(e.method, Method::Welch);
    close(e.value, 12.0, 1e-12);
    close(e.low, 8.569026104109817, 1e-9);
    close(e.high, 15.430973895890183, 1e-9);
}

#[test]
fn mean_interval_bootstraps_few_converters() {
    let arm = Arm {
        recipients: 1000,
        orders: 10,
        converters: vec![12.0, 80.0, 5.0, 300.0, 40.0, 7.0, 22.0, 9.0, 150.0, 60.0],
    };
    let e = mean_interval(&arm, 0.95, BOOTSTRAP_SEED);
    assert_eq!(e.method, Method::Bootstrap);
    close(e.value, 0.685, 1e-12);
    // scipy: (0.131, 1.474) with 20,000 resamples; Monte Carlo error is a few hundredths.
    close(e.low, 0.131, 0.06);
    close(e.high, 1.474, 0.12);
    assert_eq!(e, mean_interval(&arm, 0.95, BOOTSTRAP_SEED), "seeded");
}

#[test]
fn lift_against_a_holdout() {
    let holdout = Arm {
        recipients: 50,
        orders: 2,
        converters: vec![10.0, 30.0],
    };
    let l = lift(&arm_a(), &holdout, 0.95);
    close(l.conversion_rate.value, 0.4 - 0.04, 1e-12);
    assert!(l.conversion_rate.low < 0.36 && l.conversion_rate.high > 0.36);
    assert_eq!(l.revenue_per_recipient.method, Method::Bootstrap);
    close(l.revenue_per_recipient.value, 12.0 - 0.8, 1e-12);
    assert!(l.revenue_per_recipient.low > 0.0, "a clear lift: {l:?}");
}

#[test]
fn empty_arms_do_not_panic() {
    let empty = Arm::default();
    let f = figures(&empty, Some(&empty), 0.95);
    assert_eq!(f.revenue.per_recipient.method, Method::None);
    assert_eq!(welch(&empty, &arm_a()), None);
    let one = Arm {
        recipients: 1,
        orders: 1,
        converters: vec![5.0],
    };
    assert_eq!(mean_interval(&one, 0.95, 1).method, Method::None);
}

#[test]
fn binomial_draws_have_the_right_mean() {
    let mut rng = SplitMix(7);
    for (n, p) in [(1000u64, 0.01), (100, 0.3), (10_000, 0.5), (50, 0.9)] {
        let draws = 4000;
        let total: u64 = (0..draws).map(|_| binomial(n, p, &mut rng)).sum();
        let mean = total as f64 / draws as f64;
        let sd = (n as f64 * p * (1.0 - p) / draws as f64).sqrt();
        close(mean, n as f64 * p, 5.0 * sd);
    }
}

fn money(id: &str, delivered: u64, arm: Arm) -> MoneyInput {
    MoneyInput {
        base: VariantInput {
            id: id.to_owned(),
            delivered,
            ..VariantInput::default()
        },
        arm,
    }
}

#[test]
fn revenue_verdict_uses_welch() {
    let rules = Rules {
        metric: Metric::Revenue,
        min_per_variant: 50,
        ..Rules::default()
    };
    let v = decide_money(
        &[money("a", 100, arm_a()), money("b", 200, arm_b())],
        &rules,
    );
    assert_eq!(v.metric, Metric::Revenue);
    assert_eq!(v.winner.as_deref(), Some("b"));
    close(v.p_value.unwrap(), 0.02553852522579498, 1e-9);
    close(v.variants[1].rate, 22.25, 1e-12);
    assert!(matches!(
        v.reason,
        Reason::Wins {
            metric: Metric::Revenue,
            ..
        }
    ));
    let strict = Rules {
        confidence: 0.99,
        ..rules
    };
    let v = decide_money(
        &[money("a", 100, arm_a()), money("b", 200, arm_b())],
        &strict,
    );
    assert_eq!(v.verdict, VerdictKind::Inconclusive);
    assert!(matches!(
        v.reason,
        Reason::NotSignificant {
            metric: Metric::Revenue,
            ..
        }
    ));
}

#[test]
fn conversions_verdict_counts_converting_recipients() {
    // The one-look test: what is checked here is what counts as a success.
    let rules = Rules {
        metric: Metric::Conversions,
        method: crate::ab::Method::Fixed,
        min_per_variant: 50,
        ..Rules::default()
    };
    let v = decide_money(
        &[money("a", 100, arm_a()), money("b", 200, arm_b())],
        &rules,
    );
    assert_eq!(v.metric, Metric::Conversions);
    assert_eq!(v.variants[0].successes, 40);
    assert_eq!(v.variants[1].successes, 50);
    assert_eq!(v.winner.as_deref(), Some("a"));
    let v = decide_money(&[money("a", 10, arm_a()), money("b", 20, arm_b())], &rules);
    assert!(matches!(
        v.reason,
        Reason::TooFewTrials {
            metric: Metric::Conversions,
            ..
        }
    ));
}
