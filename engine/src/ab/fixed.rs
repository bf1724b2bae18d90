//! The fixed-horizon verdict (`[ab] method = "fixed"`): the leader against every other variant
//! by the pooled two-proportion z-test, Bonferroni adjusted. Sound for one look only, taken
//! when `[ab] wait` has passed; the sample still needed when it is not significant.

use super::stats::two_proportion_z;
use super::verdict::{rate_of, Field, Stop, Verdict, VerdictKind};
use super::VariantStats;
use crate::model::{Reason, VariantCount};

/// The leader against the others, once each has enough trials.
pub(super) fn compare_ranked(
    field: &Field,
    ranked: &[&VariantStats],
    verdict: &mut Verdict,
) -> Reason {
    match (ranked.first().copied(), ranked.get(1).copied()) {
        (Some(leader), Some(runner_up)) => compare(field, leader, runner_up, verdict),
        _ => Reason::NothingToCompare,
    }
}

/// "Too few": some variant that may win is below the smallest sample.
pub(super) fn too_few_trials(
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
    verdict.stop = Some(Stop::Winner);
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

/// The power the "needed per variant" estimate is computed for.
pub(super) const POWER: f64 = 0.8;
#[cfg(test)]
#[path = "fixed_tests.rs"]
mod tests;
