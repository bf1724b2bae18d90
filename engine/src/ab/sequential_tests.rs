//! The mSPRT's formulas at known values, its verdicts, and proof by simulation: A/A tests
//! looked at after every batch keep false winners within alpha; 10 % vs 12 % reaches its
//! power; a veto never fires on one complaint in 100.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::ab::{decide, Method, Rules, Stop, VariantInput, VerdictKind};

fn rules() -> Rules {
    Rules {
        method: Method::Sequential,
        min_per_variant: 100,
        ..Rules::default()
    }
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

#[test]
fn always_valid_p_at_a_known_value() {
    // 120/1000 vs 100/1000, tau 0.02: V = 0.120·0.880/1000 + 0.1004·0.8996/1000 (smoothed)…
    let (s1, n1, s2, n2, tau) = (120_u64, 1000_u64, 100_u64, 1000_u64, 0.02_f64);
    let p1 = (s1 as f64 + 0.5) / (n1 as f64 + 1.0);
    let p2 = (s2 as f64 + 0.5) / (n2 as f64 + 1.0);
    let v = p1 * (1.0 - p1) / n1 as f64 + p2 * (1.0 - p2) / n2 as f64;
    let t2 = tau * tau;
    let lambda = (v / (v + t2)).sqrt() * (t2 * 0.02 * 0.02 / (2.0 * v * (v + t2))).exp();
    let p = always_valid_p(s1, n1, s2, n2, tau);
    assert!((p - (1.0 / lambda).min(1.0)).abs() < 1e-12, "{p}");
    assert_eq!(p, always_valid_p(s2, n2, s1, n1, tau), "symmetric");
    // The confidence sequence excludes 0 exactly when p is at most alpha.
    for alpha in [0.5, 0.2, 0.05, 0.01] {
        let (low, high) = confidence_sequence(s1, n1, s2, n2, tau, alpha);
        assert!(low < 0.02 && 0.02 < high);
        assert_eq!(
            low > 0.0,
            p <= alpha,
            "alpha {alpha}: p {p}, ({low}, {high})"
        );
    }
}

#[test]
fn empty_samples_know_nothing() {
    assert_eq!(always_valid_p(0, 0, 5, 10, 0.02), 1.0);
    assert_eq!(confidence_sequence(0, 0, 5, 10, 0.02, 0.05), (-1.0, 1.0));
    assert_eq!(always_valid_p(5, 10, 5, 10, 0.0), 1.0);
}

#[test]
fn a_clear_winner_stops_the_test() {
    let verdict = decide(
        &[variant("A", 5000, 500), variant("B", 5000, 700)],
        &rules(),
    );
    assert_eq!(verdict.method, Method::Sequential);
    assert_eq!(verdict.verdict, VerdictKind::Winner);
    assert_eq!(verdict.winner.as_deref(), Some("B"));
    assert_eq!(verdict.stop, Some(Stop::Winner));
    let c = &verdict.comparisons[0];
    assert_eq!((c.leader.as_str(), c.other.as_str()), ("B", "A"));
    assert!(
        c.p_value <= 0.05 && c.ci_low > 0.0 && c.ci_high < 0.1,
        "{c:?}"
    );
    assert_eq!(verdict.p_value, Some(c.p_value));
}

#[test]
fn a_small_lead_goes_on() {
    let verdict = decide(
        &[variant("A", 1000, 100), variant("B", 1000, 110)],
        &rules(),
    );
    assert_eq!(verdict.verdict, VerdictKind::Inconclusive);
    assert_eq!(verdict.stop, None);
    assert!(matches!(
        verdict.reason,
        Reason::NotSignificant {
            needed_per_variant: None,
            ..
        }
    ));
}

#[test]
fn equal_rates_on_a_large_sample_stop_for_futility() {
    let verdict = decide(
        &[variant("A", 100_000, 10_000), variant("B", 100_000, 10_050)],
        &rules(),
    );
    assert_eq!(
        verdict.stop,
        Some(Stop::Futility),
        "{:?}",
        verdict.comparisons
    );
    assert_eq!(verdict.winner, None);
    let Reason::Futile {
        low,
        high,
        min_lift,
        ..
    } = verdict.reason
    else {
        panic!("{:?}", verdict.reason)
    };
    assert!(low > -0.01 && high < 0.01 && min_lift == 0.01);
}

#[test]
fn three_variants_split_alpha_over_every_pair() {
    let verdict = decide(
        &[
            variant("A", 5000, 500),
            variant("B", 5000, 700),
            variant("C", 5000, 520),
        ],
        &rules(),
    );
    assert_eq!(verdict.comparisons.len(), 2);
    let p = always_valid_p(700, 5000, 500, 5000, 0.05);
    let adjusted = verdict.comparisons.iter().find(|c| c.other == "A").unwrap();
    assert!((adjusted.p_value - (3.0 * p).min(1.0)).abs() < 1e-12);
    assert_eq!(verdict.winner.as_deref(), Some("B"));
}

#[test]
fn one_complaint_in_a_hundred_vetoes_nothing() {
    let mut b = variant("B", 100, 3);
    b.complaints = 1;
    let verdict = decide(&[variant("A", 100, 2), b], &rules());
    assert_eq!(verdict.stop, None);
    assert_eq!(verdict.winner, None);
    assert!(verdict.variants[1].exceeded.is_empty());
    let complaint = verdict.variants[1].guardrails[2];
    assert!((complaint.rate - 0.01).abs() < 1e-12 && !complaint.vetoed);
}

#[test]
fn a_significant_excess_vetoes_and_names_no_winner() {
    let mut b = variant("B", 1000, 400);
    b.unsubscribes = 50;
    let verdict = decide(&[variant("A", 1000, 100), b], &rules());
    assert_eq!(verdict.stop, Some(Stop::Vetoed));
    assert_eq!(verdict.winner, None);
    let Reason::Vetoed { vetoed } = &verdict.reason else {
        panic!("{:?}", verdict.reason)
    };
    assert_eq!(vetoed.len(), 1);
    assert_eq!(vetoed[0].id, "B");
    assert_eq!(vetoed[0].limit, crate::model::Limit::UnsubscribeRate);
    assert!(vetoed[0].p_value < 1e-6);
}

// --- simulation --------------------------------------------------------------------------

/// A small seeded generator (SplitMix64): the simulation needs speed and repeatability, not
/// cryptography.
pub(crate) struct SplitMix(pub(crate) u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True with probability `p`.
    fn bernoulli(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    /// Successes among `n` trials at rate `p`.
    fn binomial(&mut self, n: u64, p: f64) -> u64 {
        (0..n).filter(|_| self.bernoulli(p)).count() as u64
    }
}

/// One simulated test of two variants with true rates `pa`, `pb`, looked at after every
/// `batch` deliveries per variant, up to `max` per variant: how it stopped and at what size.
fn run(
    rng: &mut SplitMix,
    (pa, pb): (f64, f64),
    batch: u64,
    max: u64,
) -> (Option<Stop>, u64, bool) {
    let rules = rules();
    let (mut a, mut b) = (variant("A", 0, 0), variant("B", 0, 0));
    while a.delivered < max {
        a.delivered += batch;
        b.delivered += batch;
        a.clicks += rng.binomial(batch, pa);
        b.clicks += rng.binomial(batch, pb);
        let verdict = decide_quick(&[a.clone(), b.clone()], &rules);
        if verdict.0.is_some() {
            return (verdict.0, a.delivered, verdict.1);
        }
    }
    (None, a.delivered, false)
}

/// The stop and whether B won, without the Bayesian figures `decide` adds (the simulation
/// looks thousands of times; the comparison is the same code).
fn decide_quick(inputs: &[VariantInput], rules: &Rules) -> (Option<Stop>, bool) {
    let verdict = crate::ab::verdict::decide_without_prob_best(inputs, rules);
    (verdict.stop, verdict.winner.as_deref() == Some("B"))
}

#[test]
fn aa_tests_looked_at_every_batch_keep_false_winners_within_alpha() {
    let mut rng = SplitMix(21);
    let runs = 2_000;
    let mut false_winners = 0;
    for _ in 0..runs {
        // 10 % both, looks every 100 deliveries per variant up to 5,000.
        if run(&mut rng, (0.10, 0.10), 100, 5_000).0 == Some(Stop::Winner) {
            false_winners += 1;
        }
    }
    let rate = false_winners as f64 / runs as f64;
    let alpha = 0.05;
    let se = (alpha * (1.0 - alpha) / runs as f64).sqrt();
    assert!(
        rate <= alpha + 3.0 * se,
        "false-winner rate {rate} over {runs} A/A tests"
    );
}

#[test]
fn ten_against_twelve_percent_reaches_its_power() {
    // Stated: at most 12,000 delivered per variant, looks every 500: power at least 80 %.
    let mut rng = SplitMix(12);
    let runs = 300;
    let mut b_won = 0;
    let mut a_won = 0;
    for _ in 0..runs {
        match run(&mut rng, (0.10, 0.12), 500, 12_000) {
            (Some(Stop::Winner), _, true) => b_won += 1,
            (Some(Stop::Winner), _, false) => a_won += 1,
            _ => {}
        }
    }
    let power = b_won as f64 / runs as f64;
    assert!(power >= 0.80, "power {power}");
    assert_eq!(a_won, 0, "the worse variant never wins");
}

#[test]
fn a_veto_never_fires_on_one_complaint_in_a_hundred() {
    let mut rng = SplitMix(3);
    for _ in 0..200 {
        let mut a = variant("A", 100, rng.binomial(100, 0.1));
        let mut b = variant("B", 100, rng.binomial(100, 0.1));
        a.complaints = 1;
        b.complaints = 1;
        b.unsubscribes = 1;
        b.bounced = 5;
        let verdict = decide_quick(&[a, b], &rules());
        assert_ne!(verdict.0, Some(Stop::Vetoed));
    }
}
