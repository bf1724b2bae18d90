//! The fixed-horizon verdict, table by table: known values, vetoes, Bonferroni, edges.
#![allow(clippy::unwrap_used)]

use crate::ab::{
    decide, needed_per_variant, two_proportion_z, Method, Rules, VariantInput, Verdict, VerdictKind,
};
use crate::model::{Exceeded, Limit, Metric, Reason, VariantCount, VariantRate};

fn close(actual: f64, expected: f64, tolerance: f64) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{actual} is not within {tolerance} of {expected}"
    );
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
        method: Method::Fixed,
        metric: Metric::Clicks,
        confidence: 0.95,
        min_per_variant: 100,
        max_bounce_rate: 0.05,
        max_unsubscribe_rate: 0.01,
        max_complaint_rate: 0.001,
        ..Rules::default()
    }
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
fn decide_veto_stops_the_test_and_names_no_winner() {
    let mut b = variant("B", 1000, 400);
    b.unsubscribes = 50;
    let mut a = variant("A", 1000, 300);
    a.unsubscribes = 5;
    let verdict = decide(&[a, b], &rules());
    assert_eq!(verdict.verdict, VerdictKind::Inconclusive);
    assert_eq!(verdict.winner, None);
    assert_eq!(verdict.stop, Some(crate::ab::Stop::Vetoed));
    assert_eq!(verdict.p_value, None);
    assert!(verdict.variants[0].exceeded.is_empty());
    let unsubscribes = Exceeded {
        limit: Limit::UnsubscribeRate,
        rate: 0.05,
        max: 0.01,
    };
    assert_eq!(verdict.variants[1].exceeded, [unsubscribes]);
    close(verdict.variants[1].unsubscribe_rate, 0.05, 1e-12);
    let Reason::Vetoed { vetoed } = &verdict.reason else {
        panic!("{:?}", verdict.reason)
    };
    assert_eq!(vetoed.len(), 1);
    assert_eq!(
        (vetoed[0].id.as_str(), vetoed[0].limit),
        ("B", Limit::UnsubscribeRate)
    );
    assert!(vetoed[0].p_value < 1e-9);
}

#[test]
fn decide_veto_every_limit_is_listed() {
    let mut a = variant("A", 1000, 300);
    a.bounced = 100; // 100 / 1100 = 9.1 % against 5 %
    let mut b = variant("B", 1000, 400);
    b.complaints = 8; // 0.8 % against 0.1 %
    b.unsubscribes = 40; // 4 % against 1 %
    let verdict = decide(&[a, b], &rules());
    assert_eq!(verdict.winner, None);
    let Reason::Vetoed { vetoed } = &verdict.reason else {
        panic!("{:?}", verdict.reason)
    };
    let limits: Vec<(&str, Limit)> = vetoed.iter().map(|v| (v.id.as_str(), v.limit)).collect();
    assert_eq!(
        limits,
        [
            ("A", Limit::BounceRate),
            ("B", Limit::UnsubscribeRate),
            ("B", Limit::ComplaintRate)
        ]
    );
}

#[test]
fn decide_veto_needs_evidence_not_a_point_estimate() {
    // 2 complaints in 1,000 is 0.2 %, above the 0.1 % limit, but quite likely at 0.1 %.
    let mut b = variant("B", 1000, 400);
    b.complaints = 2;
    let verdict = decide(&[variant("A", 1000, 300), b], &rules());
    assert!(verdict.variants[1].exceeded.is_empty());
    assert!(!verdict.variants[1].guardrails[2].vetoed);
    assert_eq!(verdict.winner.as_deref(), Some("B"));
    // 10 unsubscribes among 50 is evidence even below the smallest sample.
    let mut small = variant("B", 50, 20);
    small.unsubscribes = 10;
    let verdict = decide(&[variant("A", 1000, 300), small], &rules());
    assert_eq!(verdict.stop, Some(crate::ab::Stop::Vetoed));
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
