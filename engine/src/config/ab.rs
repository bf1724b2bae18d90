//! The `[[variant]]` entries and the `[ab]` section: the versions of the message an A/B test
//! compares, their weights, and how the test-then-winner verdict is taken.

use std::collections::HashSet;

use super::error::ConfigError;
use super::raw::{RawAb, RawVariant};
use super::settings::{AbSettings, OnInconclusive, OnVeto, TemplateFile, VariantSettings};
use super::validate::{parse_duration, Ctx};
use crate::ab::{Method, Metric, Rules};

/// The most variants a campaign may have.
const MAX_VARIANTS: usize = 26;

/// Checks every `[[variant]]`: ids, weights, overrides. None or at least two.
pub(crate) fn validate_variants(
    ctx: &Ctx,
    raw: &[RawVariant],
) -> Result<Vec<VariantSettings>, ConfigError> {
    if raw.len() == 1 {
        return Err(ConfigError::Missing {
            file: ctx.file.clone(),
            key: "variant".to_owned(),
            why: "an A/B test needs at least two [[variant]] entries",
        });
    }
    if raw.len() > MAX_VARIANTS {
        return Err(ctx.bad(
            "variant",
            &format!("{} entries", raw.len()),
            "at most 26 [[variant]] entries",
        ));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, variant) in raw.iter().enumerate() {
        let key = |field: &str| format!("variant[{i}].{field}");
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-');
        let id = variant.id.trim();
        if id.is_empty() || id.len() > 32 || !id.chars().all(ok_char) {
            return Err(ctx.bad(
                &key("id"),
                &variant.id,
                "1 to 32 of the characters A-Z a-z 0-9 _ -",
            ));
        }
        if !seen.insert(id.to_owned()) {
            return Err(ctx.bad(&key("id"), id, "an id no other [[variant]] has"));
        }
        if !(variant.weight.is_finite() && variant.weight > 0.0) {
            return Err(ctx.bad(
                &key("weight"),
                &variant.weight.to_string(),
                "a positive number such as 1 or 0.5",
            ));
        }
        let subject = match &variant.subject {
            Some(subject) => {
                ctx.non_empty(&key("subject"), subject)?;
                if subject.contains(['\r', '\n']) {
                    return Err(ctx.bad(&key("subject"), subject, "a single line"));
                }
                Some(subject.clone())
            }
            None => None,
        };
        let from_name = match &variant.from_name {
            Some(name) if name.chars().any(char::is_control) => {
                return Err(ctx.bad(
                    &key("from_name"),
                    name,
                    "a display name without control characters",
                ))
            }
            Some(name) => Some(ctx.non_empty(&key("from_name"), name)?.to_owned()),
            None => None,
        };
        out.push(VariantSettings {
            id: id.to_owned(),
            weight: variant.weight,
            subject,
            from_name,
            text: read_template(ctx, &key("text"), &variant.text)?,
            html: read_template(ctx, &key("html"), &variant.html)?,
        });
    }
    Ok(out)
}

/// Reads a variant's template file, when it names one.
fn read_template(
    ctx: &Ctx,
    key: &str,
    value: &Option<String>,
) -> Result<Option<TemplateFile>, ConfigError> {
    let Some(value) = value else { return Ok(None) };
    let path = ctx.path(key, value)?;
    let source = std::fs::read_to_string(&path).map_err(|e| ctx.file_error(key, &path, e))?;
    Ok(Some(TemplateFile { path, source }))
}

/// The largest `[ab] holdout` (exclusive): a holdout is a control group, not the campaign.
const MAX_HOLDOUT: f64 = 0.5;

/// Checks `[ab] holdout`: 0 (none, the default) up to but excluding 0.5.
pub(crate) fn validate_holdout(ctx: &Ctx, raw: Option<&RawAb>) -> Result<f64, ConfigError> {
    let Some(holdout) = raw.and_then(|ab| ab.holdout) else {
        return Ok(0.0);
    };
    if !(holdout.is_finite() && (0.0..MAX_HOLDOUT).contains(&holdout)) {
        return Err(ctx.bad(
            "ab.holdout",
            &holdout.to_string(),
            "a share from 0 up to (not including) 0.5, such as 0.05",
        ));
    }
    Ok(holdout)
}

/// Checks `[ab]` against the variants it decides between: test then winner when it sets
/// `test_share` (`None` otherwise: an `[ab]` with only a `holdout` keeps the whole list
/// split by weight, or sent as one version).
pub(crate) fn validate_ab(
    ctx: &Ctx,
    raw: &RawAb,
    variants: &[VariantSettings],
) -> Result<Option<AbSettings>, ConfigError> {
    let Some(share) = raw.test_share else {
        if raw.holdout.is_none() {
            return Err(ConfigError::Missing {
                file: ctx.file.clone(),
                key: "ab.test_share".to_owned(),
                why: "[ab] needs test_share (test then winner), holdout, or both",
            });
        }
        if let Some(key) = test_then_winner_key(raw) {
            return Err(ConfigError::Misplaced {
                file: ctx.file.clone(),
                key: key.to_owned(),
                why: "without ab.test_share, [ab] takes only holdout; the other keys shape \
                      a test-then-winner verdict and need ab.test_share",
            });
        }
        return Ok(None);
    };
    if variants.len() < 2 {
        return Err(ConfigError::Missing {
            file: ctx.file.clone(),
            key: "variant".to_owned(),
            why: "[ab] decides between variants: add at least two [[variant]] entries",
        });
    }
    let holdout = raw.holdout.filter(|h| h.is_finite()).unwrap_or(0.0);
    if !(share.is_finite() && share > 0.0 && share + holdout < 1.0) {
        return Err(ctx.bad(
            "ab.test_share",
            &share.to_string(),
            "a share between 0 and 1 (less than 1 - ab.holdout with a holdout), such as 0.2",
        ));
    }
    let confidence = raw.confidence;
    if !(0.5..=0.9999).contains(&confidence) {
        return Err(ctx.bad(
            "ab.confidence",
            &confidence.to_string(),
            "a confidence between 0.5 and 0.9999, such as 0.95",
        ));
    }
    ctx.range("ab.min_per_variant", raw.min_per_variant, 1, 1_000_000_000)?;
    let rate = |key: &str, value: f64| {
        if (0.0..=1.0).contains(&value) {
            Ok(value)
        } else {
            Err(ctx.bad(
                key,
                &value.to_string(),
                "a rate between 0 and 1, such as 0.01",
            ))
        }
    };
    let on_inconclusive = match raw.on_inconclusive.trim() {
        "split" => OnInconclusive::Split,
        "hold" => OnInconclusive::Hold,
        other => match variant_index(other, variants) {
            Some(index) => OnInconclusive::Variant(index),
            None => {
                return Err(ctx.bad(
                    "ab.on_inconclusive",
                    other,
                    "split, hold, or variant:<id> naming one of the [[variant]] ids",
                ))
            }
        },
    };
    let on_veto = match raw.on_veto.trim() {
        "hold" => OnVeto::Hold,
        "split" => OnVeto::Split,
        "best_remaining" => OnVeto::BestRemaining,
        other => match variant_index(other, variants) {
            Some(index) => OnVeto::Variant(index),
            None => return Err(ctx.bad(
                "ab.on_veto",
                other,
                "hold, split, best_remaining, or variant:<id> naming one of the [[variant]] ids",
            )),
        },
    };
    let method = match raw.method.trim() {
        "sequential" => Method::Sequential,
        "fixed" => Method::Fixed,
        other => return Err(ctx.bad("ab.method", other, "sequential or fixed")),
    };
    let min_lift = raw.min_lift;
    if !(min_lift.is_finite() && min_lift > 0.0 && min_lift < 1.0) {
        return Err(ctx.bad(
            "ab.min_lift",
            &min_lift.to_string(),
            "an absolute lift between 0 and 1, such as 0.01 (one point)",
        ));
    }
    let sd = raw.mixture_sd;
    if !(sd.is_finite() && sd > 0.0 && sd <= 1.0) {
        return Err(ctx.bad(
            "ab.mixture_sd",
            &sd.to_string(),
            "a standard deviation of the lift between 0 and 1, such as 0.05",
        ));
    }
    Ok(Some(AbSettings {
        test_share: share,
        wait: parse_duration(ctx, "ab.wait", &raw.wait)?,
        rules: Rules {
            method,
            min_lift,
            mixture_sd: raw.mixture_sd,
            metric: raw.metric,
            confidence,
            min_per_variant: u64::try_from(raw.min_per_variant).unwrap_or(100), // invariant: range-checked above
            max_bounce_rate: rate("ab.max_bounce_rate", raw.max_bounce_rate)?,
            max_unsubscribe_rate: rate("ab.max_unsubscribe_rate", raw.max_unsubscribe_rate)?,
            max_complaint_rate: rate("ab.max_complaint_rate", raw.max_complaint_rate)?,
        },
        on_inconclusive,
        on_veto,
        recheck_every: parse_duration(ctx, "ab.recheck_every", &raw.recheck_every)?,
    }))
}

/// The first test-then-winner key an `[ab]` without `test_share` sets to something other
/// than its default (such a value would be ignored: refused instead).
fn test_then_winner_key(raw: &RawAb) -> Option<&'static str> {
    let rules = Rules::default();
    let min_per_variant = i64::try_from(rules.min_per_variant).unwrap_or(100);
    [
        ("ab.metric", raw.metric != Metric::default()),
        ("ab.wait", raw.wait.trim() != "4h"),
        ("ab.confidence", raw.confidence != rules.confidence),
        ("ab.min_per_variant", raw.min_per_variant != min_per_variant),
        ("ab.on_inconclusive", raw.on_inconclusive.trim() != "split"),
        ("ab.recheck_every", raw.recheck_every.trim() != "5m"),
        ("ab.method", raw.method.trim() != "sequential"),
        ("ab.min_lift", raw.min_lift != rules.min_lift),
        ("ab.mixture_sd", raw.mixture_sd != rules.mixture_sd),
        ("ab.on_veto", raw.on_veto.trim() != "hold"),
        (
            "ab.max_bounce_rate",
            raw.max_bounce_rate != rules.max_bounce_rate,
        ),
        (
            "ab.max_unsubscribe_rate",
            raw.max_unsubscribe_rate != rules.max_unsubscribe_rate,
        ),
        (
            "ab.max_complaint_rate",
            raw.max_complaint_rate != rules.max_complaint_rate,
        ),
    ]
    .into_iter()
    .find_map(|(key, set)| set.then_some(key))
}

/// The index of the variant `variant:<id>` names, if it names one.
fn variant_index(value: &str, variants: &[VariantSettings]) -> Option<u8> {
    value
        .strip_prefix("variant:")
        .and_then(|id| variants.iter().position(|v| v.id == id.trim()))
        .and_then(|i| u8::try_from(i).ok())
}
