//! `volley ab decide`: the verdict of a campaign's A/B test on the numbers so far.

use crate::args::AbDecideArgs;
use crate::words::json::{DecisionJson, VerdictJson};
use crate::{exit, ui};
use anyhow::Context;
use serde::Serialize;
use volley::report::money::MoneySummary;
use volley::report::{AbSummary, HoldoutRow};

/// What `--json` prints: the verdict's fields, then where the test stands.
#[derive(Serialize)]
struct DecideJson<'a> {
    campaign: &'a str,
    mode: &'a str,
    #[serde(flatten)]
    verdict: VerdictJson<'a>,
    held: u64,
    decide_after: Option<String>,
    decision: Option<DecisionJson<'a>>,
    /// The holdout as its own entry (`{"id": "holdout", "recipients": N, "share": h}`),
    /// never among the variants compared; absent for a campaign without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    holdout: Option<&'a HoldoutRow>,
}

pub(crate) async fn decide(args: AbDecideArgs) -> anyhow::Result<u8> {
    let viewed = crate::view::load(&args.campaign)?;
    let settings = &viewed.settings;
    if settings.variants.len() < 2 {
        anyhow::bail!(
            "{}: campaign {} has no A/B test: add two or more [[variant]] entries",
            viewed.shown,
            settings.id
        );
    }
    let report = volley::runtime::report(settings, 0)
        .await
        .with_context(|| format!("reading the A/B test of campaign {}", settings.id))?;
    let Some(ab) = &report.ab else {
        anyhow::bail!("campaign {} has no A/B numbers yet", report.campaign);
    };
    if args.json {
        ui::line(&decide_json(
            &report.campaign,
            ab,
            report.holdout.as_ref(),
            report.money.as_ref(),
        )?);
    } else {
        ui::line(crate::report::text::ab_table(&report).trim_matches('\n'));
    }
    Ok(exit::OK)
}

/// What `volley ab decide --json` prints.
pub(crate) fn decide_json(
    campaign: &str,
    ab: &AbSummary,
    holdout: Option<&HoldoutRow>,
    money: Option<&MoneySummary>,
) -> anyhow::Result<String> {
    let json = DecideJson {
        campaign,
        mode: &ab.mode,
        verdict: VerdictJson::new(&ab.verdict),
        held: ab.held,
        decide_after: ab.decide_after.map(volley::model::format_millis),
        decision: ab.decision.as_ref().map(DecisionJson::new),
        holdout,
    };
    let mut value = serde_json::to_value(&json)?;
    if let Some(money) = money {
        add_money(&mut value, money)?;
    }
    Ok(serde_json::to_string_pretty(&value)?)
}

/// Gives each variant its `conversions`, `revenue` and `lift` (against the holdout), and
/// adds the `holdout` entry, the currency and the unattributed orders.
fn add_money(value: &mut serde_json::Value, money: &MoneySummary) -> anyhow::Result<()> {
    if let Some(variants) = value.get_mut("variants").and_then(|v| v.as_array_mut()) {
        for variant in variants {
            let id = variant
                .get("id")
                .and_then(|id| id.as_str())
                .unwrap_or_default();
            let Some(row) = money.variants.iter().find(|row| row.id == id) else {
                continue;
            };
            if let Some(object) = variant.as_object_mut() {
                object.insert("recipients".into(), row.figures.recipients.into());
                object.insert(
                    "conversions".into(),
                    serde_json::to_value(row.figures.conversions)?,
                );
                object.insert("revenue".into(), serde_json::to_value(row.figures.revenue)?);
                object.insert("lift".into(), serde_json::to_value(row.figures.lift)?);
            }
        }
    }
    if let Some(object) = value.as_object_mut() {
        object.insert("currency".into(), money.currency.clone().into());
        object.insert("holdout".into(), serde_json::to_value(money.holdout)?);
        object.insert(
            "unattributed".into(),
            serde_json::json!({
                "orders": money.unattributed_orders,
                "revenue": money.unattributed_revenue,
            }),
        );
    }
    Ok(())
}
