//! The JSON the `volley` binary prints: the engine's data with, beside each structured
//! reason, the sentence people read (`reason`, `vetoed`), so the fields stay as they were
//! and the facts are there too (`reason_detail`, `exceeded`).

use super::verdict::{exceeded_phrase, reason_sentence};
use serde::Serialize;
use volley::ab::{
    Comparison, Exceeded, GuardrailTest, Method, Metric, Reason, Stop, VariantStats, Verdict,
    VerdictKind,
};
use volley::model::{Counts, DestinationBlock, Millis, TrackCounts};
use volley::report::{
    AbSummary, CategoryRow, Decision, DomainRow, HoldoutRow, Report, Timeline, VariantRow,
};

/// A [`Report`] as JSON.
#[derive(Serialize)]
pub(crate) struct ReportJson<'a> {
    campaign: &'a str,
    generated_at: Millis,
    counts: &'a Counts,
    engagement: &'a TrackCounts,
    complaints: u64,
    variants: &'a [VariantRow],
    /// The holdout's own entry; null for a campaign without one.
    holdout: &'a Option<HoldoutRow>,
    ab: Option<AbJson<'a>>,
    /// Conversions, revenue and lift per variant and for the holdout (null without orders).
    money: &'a Option<volley::report::money::MoneySummary>,
    domains: &'a [DomainRow],
    other_domains: &'a Option<DomainRow>,
    bounces: &'a [CategoryRow],
    /// Policy blocks that held the campaign back (destinations whose breaker tripped).
    blocks: &'a [DestinationBlock],
    timeline: &'a Timeline,
    /// What each relay did (`[[relay]]`); empty when the campaign went direct to MX.
    relays: &'a [volley::store::RelayTally],
}

impl<'a> ReportJson<'a> {
    /// The report's JSON form.
    pub(crate) fn new(report: &'a Report) -> Self {
        ReportJson {
            campaign: &report.campaign,
            generated_at: report.generated_at,
            counts: &report.counts,
            engagement: &report.engagement,
            complaints: report.complaints,
            variants: &report.variants,
            holdout: &report.holdout,
            ab: report.ab.as_ref().map(AbJson::new),
            money: &report.money,
            domains: &report.domains,
            other_domains: &report.other_domains,
            bounces: &report.bounces,
            blocks: &report.blocks,
            timeline: &report.timeline,
            relays: &report.relays,
        }
    }
}

/// An [`AbSummary`] as JSON.
#[derive(Serialize)]
struct AbJson<'a> {
    mode: &'a str,
    verdict: VerdictJson<'a>,
    held: u64,
    decide_after: Option<Millis>,
    decision: Option<DecisionJson<'a>>,
}

impl<'a> AbJson<'a> {
    fn new(ab: &'a AbSummary) -> Self {
        AbJson {
            mode: &ab.mode,
            verdict: VerdictJson::new(&ab.verdict),
            held: ab.held,
            decide_after: ab.decide_after,
            decision: ab.decision.as_ref().map(DecisionJson::new),
        }
    }
}

/// A [`Verdict`] as JSON: `reason` is the sentence, `reason_detail` the facts.
#[derive(Serialize)]
pub(crate) struct VerdictJson<'a> {
    method: Method,
    stop: Option<Stop>,
    verdict: VerdictKind,
    winner: &'a Option<String>,
    metric: Metric,
    confidence: f64,
    p_value: Option<f64>,
    z: Option<f64>,
    needed_per_variant: Option<u64>,
    comparisons: &'a [Comparison],
    reason: String,
    reason_detail: &'a Reason,
    variants: Vec<VariantStatsJson<'a>>,
}

impl<'a> VerdictJson<'a> {
    /// The verdict's JSON form.
    pub(crate) fn new(verdict: &'a Verdict) -> Self {
        VerdictJson {
            method: verdict.method,
            stop: verdict.stop,
            verdict: verdict.verdict,
            winner: &verdict.winner,
            metric: verdict.metric,
            confidence: verdict.confidence,
            p_value: verdict.p_value,
            z: verdict.z,
            needed_per_variant: verdict.needed_per_variant,
            comparisons: &verdict.comparisons,
            reason: reason_sentence(&verdict.reason),
            reason_detail: &verdict.reason,
            variants: verdict.variants.iter().map(VariantStatsJson::new).collect(),
        }
    }
}

/// A [`VariantStats`] as JSON: `vetoed` is the sentence (or null), `exceeded` the facts.
#[derive(Serialize)]
struct VariantStatsJson<'a> {
    id: &'a str,
    delivered: u64,
    opens: u64,
    clicks: u64,
    trials: u64,
    successes: u64,
    rate: f64,
    ci_low: f64,
    ci_high: f64,
    prob_best: f64,
    bounce_rate: f64,
    unsubscribe_rate: f64,
    complaint_rate: f64,
    vetoed: Option<String>,
    exceeded: &'a [Exceeded],
    guardrails: &'a [GuardrailTest],
}

impl<'a> VariantStatsJson<'a> {
    fn new(s: &'a VariantStats) -> Self {
        VariantStatsJson {
            id: &s.id,
            delivered: s.delivered,
            opens: s.opens,
            clicks: s.clicks,
            trials: s.trials,
            successes: s.successes,
            rate: s.rate,
            ci_low: s.ci_low,
            ci_high: s.ci_high,
            prob_best: s.prob_best,
            bounce_rate: s.bounce_rate,
            unsubscribe_rate: s.unsubscribe_rate,
            complaint_rate: s.complaint_rate,
            vetoed: (!s.exceeded.is_empty()).then(|| exceeded_phrase(&s.exceeded)),
            exceeded: &s.exceeded,
            guardrails: &s.guardrails,
        }
    }
}

/// A [`Decision`] as JSON: `reason` is the sentence, `reason_detail` the facts.
#[derive(Serialize)]
pub(crate) struct DecisionJson<'a> {
    at: Millis,
    how: &'a str,
    variant: &'a Option<String>,
    reason: String,
    reason_detail: &'a Reason,
    released: u64,
}

impl<'a> DecisionJson<'a> {
    /// The decision's JSON form.
    pub(crate) fn new(d: &'a Decision) -> Self {
        DecisionJson {
            at: d.at,
            how: &d.how,
            variant: &d.variant,
            reason: reason_sentence(&d.reason),
            reason_detail: &d.reason,
            released: d.released,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use volley::ab::{decide, Rules, VariantInput};

    /// Every key the engine's own serialisation has is there; the JSON form only
    /// adds keys (`reason_detail`, `exceeded`) and turns `reason`/`vetoed` into sentences.
    fn assert_keeps_keys(engine: &serde_json::Value, ours: &serde_json::Value, at: &str) {
        if let (Some(e), Some(o)) = (engine.as_object(), ours.as_object()) {
            for (key, value) in e {
                let theirs = o.get(key);
                assert!(theirs.is_some(), "{at}.{key} is missing");
                if key != "reason" {
                    assert_keeps_keys(value, theirs.unwrap(), &format!("{at}.{key}"));
                }
            }
        }
        if let (Some(e), Some(o)) = (engine.as_array(), ours.as_array()) {
            for (i, (a, b)) in e.iter().zip(o).enumerate() {
                assert_keeps_keys(a, b, &format!("{at}[{i}]"));
            }
        }
    }

    #[test]
    fn the_json_keeps_every_field_and_words_the_reason() {
        let mut c = VariantInput {
            id: "C".into(),
            delivered: 1000,
            clicks: 500,
            unsubscribes: 50,
            ..VariantInput::default()
        };
        let a = VariantInput {
            id: "A".into(),
            delivered: 1000,
            clicks: 300,
            ..c.clone()
        };
        c.unsubscribes = 50;
        let b = VariantInput {
            unsubscribes: 0,
            clicks: 400,
            id: "B".into(),
            ..a.clone()
        };
        let a = VariantInput {
            unsubscribes: 0,
            ..a
        };
        let fixed = Rules {
            method: volley::ab::Method::Fixed,
            ..Rules::default()
        };
        let verdict = decide(&[a, b, c], &fixed);
        let engine = serde_json::to_value(&verdict).unwrap();
        let ours = serde_json::to_value(VerdictJson::new(&verdict)).unwrap();
        assert_keeps_keys(&engine, &ours, "verdict");
        // A veto stops the test and names no winner.
        assert!(ours["reason"]
            .as_str()
            .unwrap()
            .starts_with("Stopped, no winner: C:"));
        assert_eq!(ours["reason_detail"]["vetoed"]["vetoed"][0]["id"], "C");
        assert!(ours["variants"][0]["vetoed"].is_null());
        assert_eq!(
            ours["variants"][2]["vetoed"],
            "unsubscribe rate 5.00 % is above the 1.00 % limit"
        );
        assert_eq!(
            ours["variants"][2]["exceeded"][0]["limit"],
            "unsubscribe_rate"
        );
    }
}
