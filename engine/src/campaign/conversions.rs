//! Orders as CSV (`email`, `order_id`, `value`, optional `time` and `currency`), read row by
//! row and recorded against a campaign, each attributed to the recipient's arm when it falls
//! in the campaign's attribution window. Every valid row is recorded; a bad row is reported
//! with its file, line and field and skipped. Idempotent by `order_id`.

use std::io::Read;

use crate::config::{normalize_address, parse_currency};
use crate::model::Millis;
pub use crate::store::conversions::{parse_time, parse_value, Attributor, NO_CURRENCY};
use crate::store::{Attribution, Conversion, Recorded, Store, StoreError};

/// Orders recorded per store call.
const CHUNK: usize = 1000;

/// What a conversions import did.
#[derive(Debug, Clone, Default)]
pub struct ConversionImport {
    /// New orders recorded.
    pub added: u64,
    /// Of those, orders attributed to a variant or the holdout.
    pub attributed: u64,
    /// Orders recorded before with the same details (nothing changed).
    pub duplicates: u64,
    /// Orders recorded before with other details (the first is kept), one line each:
    /// `<file> line 4, field order_id: …`.
    pub changed: Vec<String>,
    /// Rows refused, one line each: `<file> line 3, field value: …`.
    pub errors: Vec<String>,
    /// The campaign's currency.
    pub currency: String,
}

/// Why an import could not run at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConversionImportError {
    /// The header row could not be read, or lacks a required column.
    #[error("{name}: {reason}")]
    Header {
        /// The file.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One good row: its line, the order, and whether the row gave its time.
struct Parsed {
    line: u64,
    order: Conversion,
    timed: bool,
}

/// Where the columns are.
struct Columns {
    email: usize,
    order_id: usize,
    value: usize,
    time: Option<usize>,
    currency: Option<usize>,
}

/// Imports the orders of `reader` (named `name` in messages) into `campaign`. `currency` is
/// the campaign's `[conversions] currency`; without it, the currency of the orders already
/// recorded, or of the first row that names one, becomes the campaign's.
pub fn import_conversions(
    store: &Store,
    campaign: &str,
    reader: impl Read,
    name: &str,
    attributor: &Attributor,
    currency: Option<&str>,
    now: Millis,
) -> Result<ConversionImport, ConversionImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(reader);
    let columns = columns(&mut reader, name)?;
    let recorded = store.conversions(campaign)?;
    let mut summary = ConversionImport {
        currency: currency
            .map(str::to_owned)
            .or_else(|| recorded.first().map(|c| c.currency.clone()))
            .unwrap_or_default(),
        ..ConversionImport::default()
    };
    let mut chunk: Vec<Parsed> = Vec::with_capacity(CHUNK);
    for row in reader.records() {
        let parsed = match row {
            Ok(row) => parse_row(&row, &columns, name, &mut summary.currency, now),
            Err(e) => Err(format!("{name}: {e}")),
        };
        match parsed {
            Ok(mut parsed) => {
                let order = &mut parsed.order;
                order.attribution = attributor.attribute(&order.email, order.at);
                chunk.push(parsed);
                if chunk.len() >= CHUNK {
                    record(store, campaign, name, &mut chunk, &mut summary)?;
                }
            }
            Err(problem) => summary.errors.push(problem),
        }
    }
    record(store, campaign, name, &mut chunk, &mut summary)?;
    store.flush_blocking()?;
    if summary.currency.is_empty() {
        summary.currency = NO_CURRENCY.to_owned();
    }
    Ok(summary)
}

fn columns<R: Read>(
    reader: &mut csv::Reader<R>,
    name: &str,
) -> Result<Columns, ConversionImportError> {
    let headers = reader
        .headers()
        .map_err(|e| ConversionImportError::Header {
            name: name.to_owned(),
            reason: e.to_string(),
        })?
        .clone();
    let column = |wanted: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(wanted));
    let required = |wanted: &str| {
        column(wanted).ok_or_else(|| ConversionImportError::Header {
            name: name.to_owned(),
            reason: format!(
                "no `{wanted}` column (columns: email, order_id, value, time, currency)"
            ),
        })
    };
    Ok(Columns {
        email: required("email")?,
        order_id: required("order_id")?,
        value: required("value")?,
        time: column("time"),
        currency: column("currency"),
    })
}

/// Records a chunk of parsed orders and tallies what happened.
fn record(
    store: &Store,
    campaign: &str,
    name: &str,
    chunk: &mut Vec<Parsed>,
    summary: &mut ConversionImport,
) -> Result<(), StoreError> {
    if chunk.is_empty() {
        return Ok(());
    }
    let orders: Vec<Conversion> = chunk.iter().map(|p| p.order.clone()).collect();
    let effects = store.record_conversions(campaign, &orders)?;
    for (parsed, effect) in chunk.drain(..).zip(effects) {
        let Parsed { line, order, timed } = parsed;
        match crate::store::conversions::untimed_repeat(effect, &order, timed) {
            Recorded::Added => {
                summary.added += 1;
                if order.attribution != Attribution::Unattributed {
                    summary.attributed += 1;
                }
            }
            Recorded::Duplicate => summary.duplicates += 1,
            Recorded::Changed { first } => summary.changed.push(format!(
                "{name} line {line}, field order_id: order {} was recorded before with other \
                 details (email {}, value {}, currency {}); the first is kept",
                order.order_id,
                first.email,
                first.value(),
                first.currency
            )),
        }
    }
    Ok(())
}

/// One row as an order (attribution still to do), or what is wrong with it.
fn parse_row(
    row: &csv::StringRecord,
    columns: &Columns,
    name: &str,
    currency: &mut String,
    now: Millis,
) -> Result<Parsed, String> {
    let line = row.position().map_or(0, |p| p.line());
    let bad = |field: &str, why: String| format!("{name} line {line}, field {field}: {why}");
    let get = |i: usize| row.get(i).unwrap_or_default();
    let email = normalize_address(get(columns.email))
        .map_err(|e| bad("email", e.to_string()))?
        .0;
    let order_id = get(columns.order_id);
    if order_id.is_empty() || order_id.len() > 200 || order_id.chars().any(char::is_control) {
        return Err(bad(
            "order_id",
            "1 to 200 characters, no control characters".to_owned(),
        ));
    }
    let value_micros = parse_value(get(columns.value)).map_err(|why| bad("value", why))?;
    let time = columns.time.map(get).filter(|t| !t.is_empty());
    let at = match time {
        Some(text) => parse_time(text).map_err(|why| bad("time", why))?,
        None => now,
    };
    let row_currency = match columns.currency.map(get).filter(|c| !c.is_empty()) {
        Some(text) => Some(parse_currency(text).ok_or_else(|| {
            bad(
                "currency",
                format!("{text:?} is not an ISO 4217 code such as EUR"),
            )
        })?),
        None => None,
    };
    match row_currency {
        Some(code) if currency.is_empty() => *currency = code,
        Some(code) if code != *currency => {
            return Err(bad(
                "currency",
                format!("{code}, but the campaign's orders are in {currency}"),
            ))
        }
        _ => {}
    }
    Ok(Parsed {
        line,
        timed: time.is_some(),
        order: Conversion {
            order_id: order_id.to_owned(),
            email,
            value_micros,
            currency: if currency.is_empty() {
                NO_CURRENCY.to_owned()
            } else {
                currency.clone()
            },
            at,
            attribution: Attribution::Unattributed,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(parse_value("12.5"), Ok(12_500_000));
        assert_eq!(parse_value("0"), Ok(0));
        assert_eq!(parse_value("3.000001"), Ok(3_000_001));
        for bad in [
            "",
            "-1",
            "1.2345678",
            "1e3",
            "1,5",
            ".5",
            "abc",
            "99999999999999999999",
        ] {
            assert!(parse_value(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("1970-01-01T00:00:01Z"), Ok(1000));
        assert_eq!(parse_time("1970-01-01T01:00:01+01:00"), Ok(1000));
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn attribution_window() {
        let attributor = Attributor::from_deliveries(
            [
                ("a@x.example".to_owned(), 100, 1),
                ("a@x.example".to_owned(), 5000, 0),
            ],
            std::time::Duration::from_millis(1000),
        );
        assert_eq!(
            attributor.attribute("a@x.example", 50),
            Attribution::Variant(1)
        );
        assert_eq!(
            attributor.attribute("a@x.example", 4000),
            Attribution::Variant(0)
        );
        assert_eq!(
            attributor.attribute("a@x.example", 3000),
            Attribution::Unattributed
        );
        assert_eq!(
            attributor.attribute("a@x.example", 1100),
            Attribution::Variant(1)
        );
        assert_eq!(
            attributor.attribute("a@x.example", 1101),
            Attribution::Unattributed
        );
        assert_eq!(
            attributor.attribute("a@x.example", 5500),
            Attribution::Variant(0)
        );
        assert_eq!(
            attributor.attribute("b@x.example", 500),
            Attribution::Unattributed
        );
    }

    #[test]
    fn holdout_orders_count_from_the_send_start() {
        let attributor = Attributor::from_deliveries(
            [
                ("a@x.example".to_owned(), 2_000, 0),
                ("c@x.example".to_owned(), 9_000, 1),
            ],
            std::time::Duration::from_millis(10_000),
        )
        .with_holdout(["H@x.example".to_owned()]);
        // The send started at the first delivery (2 s); the window runs 10 s from then.
        assert_eq!(
            attributor.attribute("h@x.example", 500),
            Attribution::Unattributed
        );
        assert_eq!(
            attributor.attribute("h@X.example", 3_000),
            Attribution::Holdout
        );
        assert_eq!(
            attributor.attribute("h@x.example", 12_000),
            Attribution::Holdout
        );
        assert_eq!(
            attributor.attribute("h@x.example", 12_001),
            Attribution::Unattributed
        );
        assert_eq!(
            attributor.attribute("c@x.example", 9_500),
            Attribution::Variant(1)
        );
    }
}
