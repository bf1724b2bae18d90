//! Words and sentences for people, shared by the table, CSV and HTML renderers (numbers come
//! from [`crate::words::numbers`], the one formatter).

pub(super) use std::fmt::Write as _;
pub(super) use volley::ab::{Metric, VariantStats, Verdict, VerdictKind};
pub(super) use volley::model::{format_millis, Counts, Millis, TrackCounts};
pub(super) use volley::report::{AbSummary, Report, VariantRow};

pub(super) use crate::words::numbers::*;
pub(super) use crate::words::verdict::{exceeded_phrase, reason_sentence};

/// The confidence of the intervals when the report has no A/B part to say otherwise.
pub(super) const DEFAULT_CONFIDENCE: f64 = 0.95;

/// One colour per variant, in report order; the same everywhere in the HTML report.
pub(super) const PALETTE: [&str; 8] = [
    "#2563eb", "#ea580c", "#7c3aed", "#0d9488", "#db2777", "#ca8a04", "#475569", "#dc2626",
];

// ---------------------------------------------------------------------------------------------
// Numbers and words for people
// ---------------------------------------------------------------------------------------------

/// `2026-12-02 03:00` (UTC, to the minute).
pub(super) fn format_short_time(ms: Millis) -> String {
    let full = format_millis(ms);
    full.get(0..16).map(|s| s.replace('T', " ")).unwrap_or(full)
}

/// `03:00` (UTC).
pub(super) fn format_clock(ms: Millis) -> String {
    let full = format_millis(ms);
    full.get(11..16).map(str::to_string).unwrap_or(full)
}

/// `2 Dec` (UTC).
pub(super) fn format_day(ms: Millis) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let full = format_millis(ms);
    let month = full
        .get(5..7)
        .and_then(|m| m.parse::<usize>().ok())
        .and_then(|m| m.checked_sub(1))
        .and_then(|m| MONTHS.get(m));
    let day = full.get(8..10).map(|d| d.trim_start_matches('0'));
    match (day, month) {
        (Some(day), Some(month)) => format!("{day} {month}"),
        _ => full,
    }
}

/// What a metric is called in a sentence.
pub(super) fn metric_name(metric: Metric) -> &'static str {
    match metric {
        Metric::Opens => "open rate",
        Metric::Clicks => "click rate",
        Metric::ClicksPerOpen => "clicks per open",
        Metric::Conversions => "conversion rate",
        Metric::Revenue => "revenue per recipient",
    }
}

/// What a metric's denominator counts.
pub(super) fn metric_denominator(metric: Metric) -> &'static str {
    match metric {
        Metric::Opens | Metric::Clicks | Metric::Conversions | Metric::Revenue => {
            "delivered messages"
        }
        Metric::ClicksPerOpen => "openers",
    }
}

/// The confidence of the report's intervals.
pub(super) fn report_confidence(report: &Report) -> f64 {
    report
        .ab
        .as_ref()
        .map(|ab| ab.verdict.confidence)
        .filter(|c| c.is_finite() && *c > 0.0 && *c < 1.0)
        .unwrap_or(DEFAULT_CONFIDENCE)
}

/// HTML-escapes text for element content and attribute values.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// At most `max` characters of a label, with an ellipsis when cut.
pub(super) fn truncate_label(label: &str, max: usize) -> String {
    if label.chars().count() <= max {
        label.to_string()
    } else {
        let mut cut: String = label.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

// ---------------------------------------------------------------------------------------------
// Sentences shared by the table and the HTML page
// ---------------------------------------------------------------------------------------------

/// The verdict's leader (the winner, if any) and the best of the others.
pub(super) fn leader_and_runner_up(
    verdict: &Verdict,
) -> (Option<&VariantStats>, Option<&VariantStats>) {
    let mut by_rate: Vec<&VariantStats> = verdict.variants.iter().collect();
    by_rate.sort_by(|a, b| finite(b.rate).total_cmp(&finite(a.rate)));
    let leader = match &verdict.winner {
        Some(winner) => by_rate.iter().copied().find(|s| &s.id == winner),
        None => by_rate.first().copied(),
    };
    let runner_up = leader.and_then(|l| by_rate.iter().copied().find(|s| s.id != l.id));
    (leader, runner_up)
}

/// The verdict in one or two sentences: who wins (or that no one does yet) and how sure.
pub(super) fn verdict_headline(verdict: &Verdict) -> String {
    let metric = metric_name(verdict.metric);
    let confidence = format_confidence(verdict.confidence);
    let p = verdict.p_value.map(format_p_value);
    let (leader, runner_up) = leader_and_runner_up(verdict);
    let mut text = match (verdict.verdict, &verdict.winner, leader, runner_up) {
        (VerdictKind::Winner, Some(winner), Some(l), Some(r)) => {
            let mut s = format!(
                "Variant {winner} wins on {metric}: {} against {} for {}",
                format_percent(l.rate),
                format_percent(r.rate),
                r.id
            );
            match &p {
                Some(p) => put!(s, " (p = {p}, at {confidence} confidence)."),
                None => put!(s, " (at {confidence} confidence)."),
            }
            s
        }
        (VerdictKind::Winner, Some(winner), _, _) => {
            format!("Variant {winner} wins on {metric} (at {confidence} confidence).")
        }
        (_, _, Some(l), Some(r)) => {
            let mut s = if finite(l.rate) > finite(r.rate) {
                format!(
                    "No winner yet on {metric}: {} leads {}, {} against {}",
                    l.id,
                    r.id,
                    format_percent(l.rate),
                    format_percent(r.rate)
                )
            } else {
                format!(
                    "No winner yet on {metric}: {} and {} are level at {}",
                    l.id,
                    r.id,
                    format_percent(l.rate)
                )
            };
            match &p {
                Some(p) => put!(
                    s,
                    ", and p = {p} is not below {}.",
                    format_alpha(verdict.confidence)
                ),
                None => s.push('.'),
            }
            s
        }
        _ => format!("No winner yet on {metric}."),
    };
    if verdict.verdict == VerdictKind::Inconclusive {
        if let Some(needed) = verdict.needed_per_variant {
            put!(
                text,
                " About {} {} per variant would be needed to call it at {confidence} confidence.",
                format_estimate(needed),
                metric_denominator(verdict.metric)
            );
        }
    }
    text
}

/// `Chance of being best: A 2.1 %, B 97.9 %.`
pub(super) fn prob_best_sentence(verdict: &Verdict) -> Option<String> {
    if verdict.variants.len() < 2 {
        return None;
    }
    let parts: Vec<String> = verdict
        .variants
        .iter()
        .map(|s| format!("{} {}", s.id, format_probability(s.prob_best)))
        .collect();
    Some(format!("Chance of being best: {}.", parts.join(", ")))
}

/// Sequential verdicts: the method and stop, then each comparison's lift with its always-valid
/// p-value and confidence sequence ("B − A: +3.50 points, always-valid p = 0.0031, 95 %
/// confidence sequence +1.10 to +5.90 points."). Nothing for the fixed method.
pub(super) fn sequential_sentences(verdict: &Verdict) -> Vec<String> {
    if verdict.method != volley::ab::Method::Sequential {
        return Vec::new();
    }
    let stop = match verdict.stop {
        Some(volley::ab::Stop::Winner) => "stopped for a winner",
        Some(volley::ab::Stop::Futility) => "stopped for futility",
        Some(volley::ab::Stop::MaxWait) => "the wait is over without a stop",
        Some(volley::ab::Stop::Vetoed) => "stopped by a guardrail veto",
        None => "no stop yet (valid at every look)",
    };
    let points = |x: f64| format!("{:+.2}", x * 100.0);
    let mut out = vec![format!("Sequential test (mSPRT): {stop}.")];
    out.extend(verdict.comparisons.iter().map(|c| {
        format!(
            "{} − {}: {} points, always-valid p = {}, {} confidence sequence {} to {} points.",
            c.leader,
            c.other,
            points(c.lift),
            format_p_value(c.p_value),
            format_confidence(verdict.confidence),
            points(c.ci_low),
            points(c.ci_high)
        )
    }));
    out
}

/// One sentence per variant that may not win, and why.
pub(super) fn veto_sentences(verdict: &Verdict) -> Vec<String> {
    verdict
        .variants
        .iter()
        .filter(|s| !s.exceeded.is_empty())
        .map(|s| format!("{} cannot win: {}.", s.id, exceeded_phrase(&s.exceeded)))
        .collect()
}

/// Where a test-then-winner campaign stands: held recipients, the decision time, the decision.
pub(super) fn ab_progress_sentence(ab: &AbSummary) -> Option<String> {
    if let Some(decision) = &ab.decision {
        let what = match (decision.how.as_str(), &decision.variant) {
            ("winner", Some(v)) => format!("the remainder went to the winner, {v}"),
            ("variant", Some(v)) => format!("the remainder went to the fallback variant, {v}"),
            ("split", _) => "the remainder was split across the variants".to_string(),
            ("hold", _) => "the remainder is held back".to_string(),
            (how, Some(v)) => format!("the remainder was sent as {how} ({v})"),
            (how, None) => format!("the remainder was sent as {how}"),
        };
        let mut s = format!("Decided {} UTC: {what}", format_short_time(decision.at));
        let reason = reason_sentence(&decision.reason);
        if reason.is_empty() {
            s.push('.');
        } else {
            put!(s, " — {reason}");
            if !s.ends_with('.') {
                s.push('.');
            }
        }
        return Some(s);
    }
    if ab.mode == "test_then_winner" || ab.held > 0 {
        let mut s = format!(
            "{} {} held back for the winner",
            counted(ab.held, "recipient", "recipients"),
            agree(ab.held, "is", "are")
        );
        match ab.decide_after {
            Some(at) => put!(
                s,
                "; the decision is due after {} UTC.",
                format_short_time(at)
            ),
            None => s.push('.'),
        }
        return Some(s);
    }
    None
}

/// What the A/B mode is called.
pub(super) fn ab_mode_name(mode: &str) -> String {
    match mode {
        "split" => "split test".to_string(),
        "test_then_winner" => "test, then winner".to_string(),
        other => other.replace('_', " "),
    }
}

/// Whether any bucket holds an open or a click.
pub(super) fn has_engagement_over_time(report: &Report) -> bool {
    report
        .timeline
        .buckets
        .iter()
        .any(|b| b.opens.iter().chain(&b.clicks).any(|&n| n > 0))
}

/// The variant ids of the report, in report order, then any only the timeline knows.
pub(super) fn variant_ids(report: &Report) -> Vec<String> {
    let mut ids: Vec<String> = report.variants.iter().map(|v| v.id.clone()).collect();
    for id in &report.timeline.variants {
        if !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    ids
}

/// The colour of a variant: its position in [`variant_ids`] picks it from the palette.
pub(super) fn variant_colour(ids: &[String], id: &str) -> &'static str {
    let index = ids.iter().position(|v| v == id).unwrap_or(ids.len());
    PALETTE[index % PALETTE.len()]
}

/// One variant's per-bucket counts (`opens` or `clicks`), aligned with the buckets.
pub(super) fn variant_series(report: &Report, variant_index: usize, clicks: bool) -> Vec<u64> {
    report
        .timeline
        .buckets
        .iter()
        .map(|b| {
            let values = if clicks { &b.clicks } else { &b.opens };
            values.get(variant_index).copied().unwrap_or(0)
        })
        .collect()
}
