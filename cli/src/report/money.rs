//! Conversions and revenue in the text and HTML reports: one row per variant and one for the
//! holdout, every figure already formatted for people (amounts in the campaign's currency,
//! which the section's title names; lifts against the holdout with their intervals).

use super::text::{text_table, Align};
use super::words::*;
use serde::Serialize;
use volley::ab::revenue::{ArmFigures, Estimate, Method};
use volley::report::money::MoneySummary;

/// The conversions table of a report.
#[derive(Debug, Serialize)]
pub(super) struct MoneyView {
    /// ISO 4217 code of every amount.
    pub(super) currency: String,
    /// The variants, then the holdout.
    pub(super) rows: Vec<MoneyRowView>,
    /// Whether the rows carry a lift (the campaign has a holdout).
    pub(super) lift: bool,
    /// A sentence about orders no arm was credited with, when there are any.
    pub(super) unattributed: Option<String>,
}

/// One arm's row.
#[derive(Debug, Serialize)]
pub(super) struct MoneyRowView {
    pub(super) id: String,
    pub(super) holdout: bool,
    pub(super) recipients: String,
    pub(super) orders: String,
    pub(super) converting: String,
    pub(super) rate: String,
    pub(super) rate_ci: String,
    pub(super) revenue: String,
    pub(super) per_recipient: String,
    pub(super) per_recipient_ci: String,
    /// Conversion rate minus the holdout's, in percentage points.
    pub(super) lift_rate: String,
    /// Its interval (`-0.28 to +1.06`), empty without one.
    pub(super) lift_rate_ci: String,
    /// Revenue per recipient minus the holdout's.
    pub(super) lift_revenue: String,
    /// Its interval, empty without one.
    pub(super) lift_revenue_ci: String,
}

/// The view of `money`.
pub(super) fn money_view(money: &MoneySummary) -> MoneyView {
    let currency = money.currency.as_str();
    let mut rows: Vec<MoneyRowView> = money
        .variants
        .iter()
        .map(|row| row_view(&row.id, false, &row.figures))
        .collect();
    if let Some(holdout) = &money.holdout {
        rows.push(row_view("holdout", true, holdout));
    }
    let unattributed = (money.unattributed_orders > 0).then(|| {
        format!(
            "{} not credited to any arm (buyer not a delivered or held-out recipient, or \
             outside the attribution window): {}.",
            counted(money.unattributed_orders, "order", "orders"),
            format_amount(money.unattributed_revenue, 2, currency)
        )
    });
    MoneyView {
        currency: money.currency.clone(),
        lift: money.holdout.is_some(),
        rows,
        unattributed,
    }
}

fn row_view(id: &str, holdout: bool, f: &ArmFigures) -> MoneyRowView {
    let rate = f.conversions.rate;
    let per = f.revenue.per_recipient;
    let ((lift_rate, lift_rate_ci), (lift_revenue, lift_revenue_ci)) = match &f.lift {
        Some(lift) => (
            signed_interval(
                &lift.conversion_rate,
                |x| format!("{:+.2}", x * 100.0),
                " pp",
            ),
            signed_interval(&lift.revenue_per_recipient, signed_amount, ""),
        ),
        None => Default::default(),
    };
    MoneyRowView {
        id: id.to_owned(),
        holdout,
        recipients: format_count(f.recipients),
        orders: format_count(f.conversions.count),
        converting: format_count(f.conversions.recipients),
        rate: format_percent(rate.value),
        rate_ci: interval_or_dash(&rate, |e| format_interval(e.value, (e.low, e.high))),
        revenue: amount_number(f.revenue.total, 2),
        per_recipient: amount_number(per.value, 3),
        per_recipient_ci: interval_or_dash(&per, |e| {
            format!("{} – {}", amount_number(e.low, 3), amount_number(e.high, 3))
        }),
        lift_rate,
        lift_rate_ci,
        lift_revenue,
        lift_revenue_ci,
    }
}

/// `interval(estimate)`, or a dash when there was too little data for one.
fn interval_or_dash(estimate: &Estimate, interval: impl Fn(&Estimate) -> String) -> String {
    if estimate.method == Method::None {
        "–".to_owned()
    } else {
        interval(estimate)
    }
}

/// A difference and its interval, each end formatted by `number`: (`+1.20 pp`,
/// `-0.40 to +2.80`); the interval is empty when there was too little data for one.
fn signed_interval(e: &Estimate, number: impl Fn(f64) -> String, unit: &str) -> (String, String) {
    let value = format!("{}{unit}", number(e.value));
    if e.method == Method::None {
        return (value, String::new());
    }
    (value, format!("{} to {}", number(e.low), number(e.high)))
}

/// An amount with its sign and three decimals: `+0.125`, `-1,250.000`.
fn signed_amount(x: f64) -> String {
    let text = amount_number(x.abs(), 3);
    if x < 0.0 && text.chars().any(|c| c.is_ascii_digit() && c != '0') {
        format!("-{text}")
    } else {
        format!("+{text}")
    }
}

/// A value and its interval in one cell: `+1.20 pp (-0.40 to +2.80)`.
fn with_interval(value: &str, interval: &str) -> String {
    if interval.is_empty() {
        value.to_owned()
    } else {
        format!("{value} ({interval})")
    }
}

/// An amount with thousands separators and `decimals` decimals, then the currency:
/// `1,234.50 EUR`.
fn format_amount(value: f64, decimals: usize, currency: &str) -> String {
    format!("{} {currency}", amount_number(value, decimals))
}

/// `1234.5` → `1,234.50` (two decimals); negative amounts keep their sign.
fn amount_number(value: f64, decimals: usize) -> String {
    let value = if value.is_finite() { value } else { 0.0 };
    let text = format!("{:.decimals$}", value.abs());
    let (whole, fraction) = text.split_once('.').unwrap_or((text.as_str(), ""));
    let whole = whole
        .parse::<u64>()
        .map_or_else(|_| whole.to_owned(), format_count);
    let sign = if value < 0.0 && text.chars().any(|c| c.is_ascii_digit() && c != '0') {
        "-"
    } else {
        ""
    };
    if fraction.is_empty() {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{fraction}")
    }
}

/// The CONVERSIONS section of the text report (nothing when the report has no money part).
pub(super) fn table_money(out: &mut String, report: &Report) {
    let Some(money) = &report.money else {
        return;
    };
    let view = money_view(money);
    let ci = format!("{} CI", format_confidence(report_confidence(report)));
    put!(out, "\nCONVERSIONS ({})\n", view.currency);
    let mut headers = vec![
        "Arm",
        "Recipients",
        "Orders",
        "Buyers",
        "Conv. rate",
        &ci,
        "Revenue",
        "Per recipient",
        &ci,
    ];
    if view.lift {
        headers.extend(["Lift: conv. rate", "Lift: per recipient"]);
    }
    let mut aligns = vec![Align::Right; headers.len()];
    aligns[0] = Align::Left;
    let rows: Vec<Vec<String>> = view
        .rows
        .iter()
        .map(|r| {
            let mut row = vec![
                r.id.clone(),
                r.recipients.clone(),
                r.orders.clone(),
                r.converting.clone(),
                r.rate.clone(),
                r.rate_ci.clone(),
                r.revenue.clone(),
                r.per_recipient.clone(),
                r.per_recipient_ci.clone(),
            ];
            if view.lift {
                row.extend([
                    with_interval(&r.lift_rate, &r.lift_rate_ci),
                    with_interval(&r.lift_revenue, &r.lift_revenue_ci),
                ]);
            }
            row
        })
        .collect();
    out.push_str(&text_table(&headers, &aligns, &rows));
    out.push_str(
        "  Rates and revenue are per delivered recipient (per held-out recipient for the \
         holdout); lift is each variant minus the holdout.\n",
    );
    if let Some(sentence) = &view.unattributed {
        put!(out, "  {sentence}\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_have_separators_and_keep_their_sign() {
        assert_eq!(amount_number(1234.5, 2), "1,234.50");
        assert_eq!(amount_number(-0.0004, 3), "0.000");
        assert_eq!(amount_number(-12.3456, 3), "-12.346");
        assert_eq!(format_amount(0.0, 2, "EUR"), "0.00 EUR");
    }

    #[test]
    fn lifts_show_their_sign_and_interval() {
        let e = Estimate {
            value: 0.012,
            low: -0.004,
            high: 0.028,
            method: Method::Newcombe,
        };
        let (value, ci) = signed_interval(&e, |x| format!("{:+.2}", x * 100.0), " pp");
        assert_eq!(with_interval(&value, &ci), "+1.20 pp (-0.40 to +2.80)");
        let e = Estimate {
            value: -0.5,
            low: -1.25,
            high: 0.25,
            method: Method::Welch,
        };
        let (value, ci) = signed_interval(&e, signed_amount, " USD");
        assert_eq!(with_interval(&value, &ci), "-0.500 USD (-1.250 to +0.250)");
        let bare = Estimate {
            method: Method::None,
            ..e
        };
        assert_eq!(signed_interval(&bare, signed_amount, " USD").1, "");
    }
}
