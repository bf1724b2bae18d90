//! Conversions (orders) recorded against a campaign, idempotent by order id. Which arm an
//! order counts for is decided before it is recorded (see `runtime::conversions`); the store
//! keeps it as given.

use super::StoreError;
use crate::model::Millis;
use serde::{Deserialize, Serialize};

/// Which arm of the campaign an order counts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attribution {
    /// A delivered recipient of this stored variant (an index, with the remainder mark when
    /// it was sent after the verdict), within the attribution window.
    Variant(u8),
    /// A holdout recipient (never mailed), within the window from the send start.
    Holdout,
    /// The address is not a recipient of the campaign, was not delivered, or ordered outside
    /// the window.
    Unattributed,
}

/// One order as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversion {
    /// The shop's order id (unique per campaign; recording it again changes nothing).
    pub order_id: String,
    /// The normalised address of the buyer.
    pub email: String,
    /// The order's value in millionths of the currency unit (12.5 → 12,500,000).
    pub value_micros: u64,
    /// ISO 4217 currency code, upper case.
    pub currency: String,
    /// When the order was placed (epoch ms).
    pub at: Millis,
    /// The arm it counts for.
    pub attribution: Attribution,
}

impl Conversion {
    /// The value in currency units.
    pub fn value(&self) -> f64 {
        self.value_micros as f64 / 1_000_000.0
    }

    /// True when `other` describes the same order (everything but the attribution, which
    /// depends on when it was computed).
    pub fn same_order(&self, other: &Conversion) -> bool {
        self.order_id == other.order_id
            && self.email == other.email
            && self.value_micros == other.value_micros
            && self.currency == other.currency
            && self.at == other.at
    }
}

/// What recording one order did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// A new order, now counted.
    Added,
    /// The same order was recorded before: nothing changed.
    Duplicate,
    /// An order with this id was recorded before with other details; the first is kept.
    Changed {
        /// The order as first recorded.
        first: Box<Conversion>,
    },
}

/// Conversions per campaign.
pub trait ConversionStore {
    /// Records `orders` for `campaign` (atomically per order, durable at the next flush);
    /// one effect per order, in order. An order id already recorded is not recorded again.
    fn record_conversions(
        &self,
        campaign: &str,
        orders: &[Conversion],
    ) -> Result<Vec<Recorded>, StoreError>;

    /// Every order recorded for `campaign`, by order id.
    fn conversions(&self, campaign: &str) -> Result<Vec<Conversion>, StoreError>;
}

/// The effect of recording `order` where `existing` was found under its id.
pub(crate) fn effect(existing: Option<Conversion>, order: &Conversion) -> Recorded {
    match existing {
        None => Recorded::Added,
        Some(first) if first.same_order(order) => Recorded::Duplicate,
        Some(first) => Recorded::Changed {
            first: Box::new(first),
        },
    }
}
