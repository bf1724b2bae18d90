//! An A/B verdict's reason in words: one sentence per [`Reason`] case, and what each limit a
//! variant exceeded is called.

use super::numbers::{
    format_confidence, format_count, format_estimate, format_p_value, format_percent,
    format_percent_pair, format_setting,
};
use volley::ab::{Exceeded, Limit, Metric, Reason, VariantCount, Veto, Vetoed};

/// The reason as one sentence: "B beats A on clicks: 40.0 % vs 30.0 %, p = 2.76e-6 (95 %
/// confidence asked)."
pub(crate) fn reason_sentence(reason: &Reason) -> String {
    match reason {
        Reason::TooFewVariants { only: None } => {
            "An A/B test needs at least two variants; there are none.".to_owned()
        }
        Reason::TooFewVariants { only: Some(id) } => {
            format!("An A/B test needs at least two variants; there is only one ({id}).")
        }
        Reason::InvalidConfidence { confidence } => format!(
            "No verdict: the confidence asked for must be between 0 and 1 (it is {}).",
            format_setting(*confidence)
        ),
        Reason::AllVetoed { vetoed } => format!(
            "No winner: every variant exceeded a limit ({}).",
            veto_list(vetoed)
        ),
        Reason::TooFewTrials {
            metric,
            short,
            min_per_variant,
            needed_per_variant,
        } => too_few_trials(*metric, short, *min_per_variant, *needed_per_variant),
        Reason::OnlyOneLeft {
            winner,
            metric,
            vetoed,
        } => format!(
            "{} wins on {} ({}) because every other variant exceeded a limit ({}).",
            winner.id,
            metric_noun(*metric),
            format_percent(winner.rate),
            veto_list(vetoed)
        ),
        Reason::NothingToCompare => "No winner: no variant can be compared.".to_owned(),
        Reason::Wins { .. } => wins(reason),
        Reason::Tie {
            first,
            second,
            rate,
            metric,
            vetoed,
        } => format!(
            "No clear winner: {first} and {second} have the same {} rate ({}){}.",
            metric_noun(*metric),
            format_percent(*rate),
            left_out(vetoed)
        ),
        Reason::NotSignificant { .. } => not_significant(reason),
        Reason::Recorded { text } => text.clone(),
        Reason::Vetoed { vetoed } => format!(
            "Stopped, no winner: {}.",
            vetoed
                .iter()
                .map(veto_phrase)
                .collect::<Vec<_>>()
                .join("; ")
        ),
        Reason::Futile {
            leader,
            rival,
            metric,
            low,
            high,
            min_lift,
        } => format!(
            "Stopped for futility: {} leads {} on {} ({} vs {}), but the lift lies between {} and {} points, inside the {} points that matter.",
            leader.id,
            rival.id,
            metric_noun(*metric),
            format_percent(leader.rate),
            format_percent(rival.rate),
            format_points(*low),
            format_points(*high),
            format_points(*min_lift)
        ),
    }
}

/// "B: complaint rate 1.20 % is significantly above the 0.30 % limit (p = 0.004)".
fn veto_phrase(veto: &Veto) -> String {
    let (rate, max) = format_percent_pair(veto.rate, veto.max);
    format!(
        "{}: {} {rate} is significantly above the {max} limit ({})",
        veto.id,
        limit_name(veto.limit),
        p_clause(veto.p_value)
    )
}

/// A lift in percentage points, signed: "+1.20", "-0.40".
fn format_points(lift: f64) -> String {
    format!("{:+.2}", lift * 100.0)
}

/// "Too few to call yet: A has 20 delivered, and each variant needs at least 100 delivered."
fn too_few_trials(metric: Metric, short: &[VariantCount], min: u64, needed: u64) -> String {
    let unit = denominator_noun(metric);
    let counts = join_words(
        short
            .iter()
            .map(|v| format!("{} has {} {unit}", v.id, format_count(v.trials))),
    );
    let mut text = format!(
        "Too few to call yet: {counts}, and each variant needs at least {} {unit}",
        format_count(min)
    );
    if needed > min {
        text.push_str(&format!(
            "; at the rates seen so far about {} per variant would be needed",
            format_estimate(needed)
        ));
    }
    text.push('.');
    text
}

/// "B beats A on clicks: 40.0 % vs 30.0 %, p = 2.76e-6 (95 % confidence asked)."
fn wins(reason: &Reason) -> String {
    let Reason::Wins {
        winner,
        beaten,
        metric,
        p_value,
        comparisons,
        confidence,
        vetoed,
    } = reason
    else {
        // invariant: only called with a `Reason::Wins`.
        return String::new();
    };
    format!(
        "{} beats {} on {}: {} vs {}, {}{} ({} confidence asked){}.",
        winner.id,
        join_words(beaten.iter().map(|v| v.id.clone())),
        metric_noun(*metric),
        format_percent(winner.rate),
        join_words(beaten.iter().map(|v| format_percent(v.rate))),
        p_clause(*p_value),
        adjustment(*comparisons),
        format_confidence(*confidence),
        left_out(vetoed),
    )
}

/// "No clear winner: B leads A on clicks (31.0 % vs 30.0 %), p = 0.627; about 33,300
/// delivered per variant would be needed."
fn not_significant(reason: &Reason) -> String {
    let Reason::NotSignificant {
        leader,
        rival,
        metric,
        p_value,
        comparisons,
        needed_per_variant,
        vetoed,
    } = reason
    else {
        // invariant: only called with a `Reason::NotSignificant`.
        return String::new();
    };
    let mut text = format!(
        "No clear winner: {} leads {} on {} ({} vs {}), {}{}",
        leader.id,
        rival.id,
        metric_noun(*metric),
        format_percent(leader.rate),
        format_percent(rival.rate),
        p_clause(*p_value),
        adjustment(*comparisons),
    );
    if let Some(n) = needed_per_variant {
        text.push_str(&format!(
            "; about {} {} per variant would be needed",
            format_estimate(*n),
            denominator_noun(*metric)
        ));
    }
    text.push_str(&left_out(vetoed));
    text.push('.');
    text
}

/// The limits a variant exceeded: "unsubscribe rate 5.00 % is above the 1.00 % limit and …".
pub(crate) fn exceeded_phrase(exceeded: &[Exceeded]) -> String {
    exceeded
        .iter()
        .map(|e| {
            let (rate, max) = format_percent_pair(e.rate, e.max);
            format!("{} {rate} is above the {max} limit", limit_name(e.limit))
        })
        .collect::<Vec<_>>()
        .join(" and ")
}

/// What a limit is called.
fn limit_name(limit: Limit) -> &'static str {
    match limit {
        Limit::BounceRate => "bounce rate",
        Limit::UnsubscribeRate => "unsubscribe rate",
        Limit::ComplaintRate => "complaint rate",
    }
}

/// The metric as the reason says it ("B beats A on clicks").
fn metric_noun(metric: Metric) -> &'static str {
    match metric {
        Metric::Opens => "opens",
        Metric::Clicks => "clicks",
        Metric::ClicksPerOpen => "clicks per open",
        Metric::Conversions => "conversions",
        Metric::Revenue => "revenue per recipient",
    }
}

/// What the metric's denominator counts ("3,840 delivered", "1,200 openers").
fn denominator_noun(metric: Metric) -> &'static str {
    match metric {
        Metric::Opens | Metric::Clicks | Metric::Conversions | Metric::Revenue => "delivered",
        Metric::ClicksPerOpen => "openers",
    }
}

/// "p = 0.0442".
fn p_clause(p: f64) -> String {
    format!("p = {}", format_p_value(p))
}

/// " adjusted for 2 comparisons", or nothing for one.
fn adjustment(comparisons: usize) -> String {
    if comparisons > 1 {
        format!(
            " adjusted for {} comparisons",
            format_count(comparisons as u64)
        )
    } else {
        String::new()
    }
}

/// " (C cannot win: …; D cannot win: …)", or nothing when no variant was vetoed.
fn left_out(vetoed: &[Vetoed]) -> String {
    if vetoed.is_empty() {
        return String::new();
    }
    let notes: Vec<String> = vetoed
        .iter()
        .map(|v| format!("{} cannot win: {}", v.id, exceeded_phrase(&v.exceeded)))
        .collect();
    format!(" ({})", notes.join("; "))
}

/// "A: unsubscribe rate 5.00 % is above the 1.00 % limit; B: …".
fn veto_list(vetoed: &[Vetoed]) -> String {
    vetoed
        .iter()
        .map(|v| format!("{}: {}", v.id, exceeded_phrase(&v.exceeded)))
        .collect::<Vec<_>>()
        .join("; ")
}

/// "A", "A and B", "A, B and C".
fn join_words(words: impl Iterator<Item = String>) -> String {
    let words: Vec<String> = words.collect();
    match words.as_slice() {
        [] => String::new(),
        [only] => only.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use volley::ab::{decide, Rules, VariantInput};

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
            method: volley::ab::Method::Fixed,
            max_complaint_rate: 0.001,
            ..Rules::default()
        }
    }

    fn sentence(inputs: &[VariantInput], rules: &Rules) -> String {
        reason_sentence(&decide(inputs, rules).reason)
    }

    #[test]
    fn winners() {
        let two = [variant("A", 1000, 300), variant("B", 1000, 400)];
        assert_eq!(
            sentence(&two, &rules()),
            "B beats A on clicks: 40.0 % vs 30.0 %, p = 2.76e-6 (95 % confidence asked)."
        );
        let three = [
            variant("A", 1000, 300),
            variant("B", 1000, 310),
            variant("C", 1000, 400),
        ];
        assert_eq!(
            sentence(&three, &rules()),
            "C beats A and B on clicks: 40.0 % vs 30.0 % and 31.0 %, p = 5.21e-5 adjusted \
             for 2 comparisons (95 % confidence asked)."
        );
        let mut c = variant("C", 1000, 500);
        c.unsubscribes = 50;
        assert_eq!(
            sentence(&[two[0].clone(), two[1].clone(), c], &rules()),
            "Stopped, no winner: C: unsubscribe rate 5.00 % is significantly above the 1.00 % \
             limit (p = 6.69e-17)."
        );
    }

    #[test]
    fn no_clear_winner() {
        assert_eq!(
            sentence(
                &[variant("A", 1000, 300), variant("B", 1000, 310)],
                &rules()
            ),
            "No clear winner: B leads A on clicks (31.0 % vs 30.0 %), p = 0.627; \
             about 33,300 delivered per variant would be needed."
        );
        let three = [
            variant("A", 1000, 300),
            variant("B", 1000, 342),
            variant("C", 1000, 300),
        ];
        assert_eq!(
            sentence(&three, &rules()),
            "No clear winner: B leads A on clicks (34.2 % vs 30.0 %), p = 0.0885 adjusted \
             for 2 comparisons; about 2,350 delivered per variant would be needed."
        );
        assert_eq!(
            sentence(
                &[variant("A", 1000, 300), variant("B", 1000, 300)],
                &rules()
            ),
            "No clear winner: A and B have the same clicks rate (30.0 %)."
        );
    }

    #[test]
    fn too_few() {
        assert_eq!(
            sentence(&[variant("A", 20, 3), variant("B", 20, 9)], &rules()),
            "Too few to call yet: A has 20 delivered and B has 20 delivered, \
             and each variant needs at least 100 delivered."
        );
        let text = sentence(&[variant("A", 90, 30), variant("B", 500, 171)], &rules());
        assert!(
            text.starts_with("Too few to call yet: A has 90 delivered, and")
                && text.ends_with("per variant would be needed."),
            "{text}"
        );
        let cpo = Rules {
            metric: Metric::ClicksPerOpen,
            min_per_variant: 450,
            ..rules()
        };
        let a = VariantInput {
            id: "A".into(),
            delivered: 2000,
            opens: 400,
            clicks: 120,
            ..VariantInput::default()
        };
        let b = VariantInput {
            opens: 500,
            clicks: 200,
            id: "B".into(),
            ..a.clone()
        };
        assert!(sentence(&[a, b], &cpo).starts_with(
            "Too few to call yet: A has 400 openers, and each variant needs at least 450 openers"
        ));
    }

    #[test]
    fn vetoes() {
        let mut a = variant("A", 1000, 300);
        a.unsubscribes = 5;
        let mut b = variant("B", 1000, 400);
        b.unsubscribes = 50;
        assert_eq!(
            sentence(&[a, b], &rules()),
            "Stopped, no winner: B: unsubscribe rate 5.00 % is significantly above the 1.00 % \
             limit (p = 6.69e-17)."
        );
        let mut a = variant("A", 1000, 300);
        a.bounced = 100;
        let mut b = variant("B", 1000, 400);
        b.complaints = 2;
        b.unsubscribes = 20;
        assert_eq!(
            sentence(&[a, b], &rules()),
            // B's 2 unsubscribes in 100 and 2 complaints in 1,000 are no evidence.
            "Stopped, no winner: A: bounce rate 9.09 % is significantly above the 5.00 % limit \
             (p = 6.21e-6)."
        );
    }

    #[test]
    fn odd_cases() {
        assert_eq!(
            sentence(&[], &rules()),
            "An A/B test needs at least two variants; there are none."
        );
        assert_eq!(
            sentence(&[variant("A", 1000, 300)], &rules()),
            "An A/B test needs at least two variants; there is only one (A)."
        );
        let bad = Rules {
            confidence: 1.5,
            ..rules()
        };
        assert_eq!(
            sentence(&[variant("A", 1000, 300), variant("B", 1000, 400)], &bad),
            "No verdict: the confidence asked for must be between 0 and 1 (it is 1.5)."
        );
        assert_eq!(
            reason_sentence(&Reason::Recorded {
                text: "As it was.".into()
            }),
            "As it was."
        );
        assert_eq!(
            reason_sentence(&Reason::NothingToCompare),
            "No winner: no variant can be compared."
        );
    }
}
