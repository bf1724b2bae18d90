//! Conversions and revenue in a report: each test arm's delivered recipients and the orders
//! attributed to them, turned into rates, revenue per recipient and lift against the holdout
//! (see `ab::revenue`).

use crate::ab::revenue::{figures, Arm, ArmFigures};
use crate::store::{Attribution, Conversion};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A campaign's conversions and revenue, per variant and for the holdout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MoneySummary {
    /// The currency of every amount (ISO 4217; `XXX` when no order named one).
    pub currency: String,
    /// Each variant's randomised test share, in the campaign's order.
    pub variants: Vec<MoneyRow>,
    /// The holdout (recipients kept out of the send), when the campaign has one.
    pub holdout: Option<ArmFigures>,
    /// Orders not attributed to any arm (buyer not a delivered recipient, or outside the
    /// attribution window).
    pub unattributed_orders: u64,
    /// Their total value.
    pub unattributed_revenue: f64,
}

/// One variant's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MoneyRow {
    /// The variant id.
    pub id: String,
    /// Its conversions, revenue and lift.
    #[serde(flatten)]
    pub figures: ArmFigures,
}

/// The arm of orders attributed as `wanted` among `recipients` recipients: one value per
/// converting recipient (the sum of their orders).
pub fn arm_of(conversions: &[Conversion], wanted: Attribution, recipients: u64) -> Arm {
    let mut per_buyer: HashMap<&str, f64> = HashMap::new();
    let mut orders = 0;
    for order in conversions.iter().filter(|c| c.attribution == wanted) {
        *per_buyer.entry(order.email.as_str()).or_default() += order.value();
        orders += 1;
    }
    let mut buyers: Vec<(&str, f64)> = per_buyer.into_iter().collect();
    buyers.sort_by(|a, b| a.0.cmp(b.0));
    Arm {
        recipients,
        converters: buyers.into_iter().map(|(_, v)| v).collect(),
        orders,
    }
}

/// The summary of `arms` (named by `ids`), with lift against `holdout` when given.
pub fn summary(
    conversions: &[Conversion],
    ids: &[String],
    arms: &[Arm],
    holdout: Option<&Arm>,
    confidence: f64,
) -> MoneySummary {
    let unattributed = conversions
        .iter()
        .filter(|c| c.attribution == Attribution::Unattributed);
    MoneySummary {
        currency: conversions.first().map_or_else(
            || crate::store::conversions::NO_CURRENCY.to_owned(),
            |c| c.currency.clone(),
        ),
        variants: ids
            .iter()
            .zip(arms)
            .map(|(id, arm)| MoneyRow {
                id: id.clone(),
                figures: figures(arm, holdout, confidence),
            })
            .collect(),
        holdout: holdout.map(|h| figures(h, None, confidence)),
        unattributed_orders: unattributed.clone().count() as u64,
        unattributed_revenue: unattributed.map(Conversion::value).sum(),
    }
}
