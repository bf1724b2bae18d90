//! Conversions (orders) recorded against a campaign, idempotent by order id. Which arm an
//! order counts for is decided before it is recorded (see `runtime::conversions`); the store
//! keeps it as given.

use super::{Store, StoreError};
use crate::model::{Millis, RecipientState};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

/// The currency of orders when neither the campaign nor any order names one (ISO 4217
/// "no currency").
pub const NO_CURRENCY: &str = "XXX";

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
            && self.email.eq_ignore_ascii_case(&other.email)
            && self.value_micros == other.value_micros
            && self.currency == other.currency
            && self.at == other.at
    }
}

/// Treats a change as a repeat when the order came without a time (placed "now") and
/// differs from the first only in that time: the same order sent again later.
pub fn untimed_repeat(effect: Recorded, order: &Conversion, timed: bool) -> Recorded {
    match effect {
        Recorded::Changed { first }
            if !timed
                && first.same_order(&Conversion {
                    at: first.at,
                    ..order.clone()
                }) =>
        {
            Recorded::Duplicate
        }
        other => other,
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

/// Attributes orders to a campaign's delivered recipients: who they are and when each was
/// delivered (first delivery attempt) in which stored variant.
#[derive(Debug, Default)]
pub struct Attributor {
    delivered: HashMap<String, Vec<(Millis, u8)>>,
    window: Millis,
    /// The holdout's addresses (lower case), and when the send started (its first delivery):
    /// a holdout recipient's window runs from then.
    holdout: std::collections::HashSet<String>,
    started: Option<Millis>,
}

impl Attributor {
    /// Reads the campaign's delivered recipients from the store.
    pub fn read(store: &Store, campaign: &str, window: Duration) -> Result<Self, StoreError> {
        let delivered = store
            .recipients_in(campaign, RecipientState::Delivered)?
            .into_iter()
            .map(|r| {
                let at = r.record.first_attempt.unwrap_or(0);
                (r.record.email, at, r.record.variant)
            });
        let attributor = Attributor::from_deliveries(delivered, window);
        let holdout = store
            .recipients_in(campaign, RecipientState::Holdout)?
            .into_iter()
            .map(|r| r.record.email);
        Ok(attributor.with_holdout(holdout))
    }

    /// Adds the holdout's addresses: their orders count for the holdout within the window
    /// from the send's start (the first delivery; none before the send started).
    pub fn with_holdout(mut self, emails: impl IntoIterator<Item = String>) -> Self {
        self.holdout = emails.into_iter().map(|e| e.to_lowercase()).collect();
        self.started = self
            .delivered
            .values()
            .flat_map(|deliveries| deliveries.iter().map(|(at, _)| *at))
            .min();
        self
    }

    /// From deliveries (address, delivered at, stored variant) and a window.
    pub fn from_deliveries(
        deliveries: impl IntoIterator<Item = (String, Millis, u8)>,
        window: Duration,
    ) -> Self {
        let mut delivered: HashMap<String, Vec<(Millis, u8)>> = HashMap::new();
        for (email, at, variant) in deliveries {
            let email = email.to_lowercase();
            delivered.entry(email).or_default().push((at, variant));
        }
        Attributor {
            delivered,
            window: u64::try_from(window.as_millis()).unwrap_or(u64::MAX),
            ..Attributor::default()
        }
    }

    /// Which arm an order by `email` at `at` counts for: the latest delivery to that address
    /// at or before the order, if the order is within the window after it. Delivery times
    /// are kept to the second (rounded up), so an order up to a second before one counts.
    /// Addresses match without regard to case (shops rarely keep the list's spelling).
    pub fn attribute(&self, email: &str, at: Millis) -> Attribution {
        let email = email.to_lowercase();
        if self.holdout.contains(&email) {
            return match self.started {
                Some(start) if self.within(start, at) => Attribution::Holdout,
                _ => Attribution::Unattributed,
            };
        }
        let Some(deliveries) = self.delivered.get(&email) else {
            return Attribution::Unattributed;
        };
        deliveries
            .iter()
            .filter(|(sent, _)| self.within(*sent, at))
            .max_by_key(|(sent, _)| *sent)
            .map_or(Attribution::Unattributed, |&(_, variant)| {
                Attribution::Variant(variant)
            })
    }
}

impl Attributor {
    /// Whether an order at `at` falls in the window that opened at `from` (to the second).
    fn within(&self, from: Millis, at: Millis) -> bool {
        from <= at.saturating_add(1000) && at.saturating_sub(from) <= self.window
    }
}

/// A decimal amount ≥ 0 with at most 6 decimals, in millionths.
pub fn parse_value(text: &str) -> Result<u64, String> {
    let expected =
        || format!("{text:?} is not an amount such as 12.50 (at least 0, at most 6 decimals)");
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || fraction.len() > 6 {
        return Err(expected());
    }
    let whole: u64 = whole.parse().map_err(|_| expected())?;
    let fraction: u64 = format!("{fraction:0<6}").parse().map_err(|_| expected())?;
    whole
        .checked_mul(1_000_000)
        .and_then(|w| w.checked_add(fraction))
        .filter(|&v| v <= i64::MAX as u64)
        .ok_or_else(expected)
}

/// An RFC 3339 time as epoch ms.
pub fn parse_time(text: &str) -> Result<Millis, String> {
    let parsed = chrono::DateTime::parse_from_rfc3339(text).map_err(|e| {
        format!("{text:?} is not an RFC 3339 time such as 2026-12-05T10:00:00Z ({e})")
    })?;
    u64::try_from(parsed.timestamp_millis()).map_err(|_| format!("{text:?} is before 1970"))
}
