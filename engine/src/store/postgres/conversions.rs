//! Conversions on PostgreSQL: one row per (campaign, order id) in `conversions` (migration
//! 0009); a second insert of an order id does nothing and reads the first back.

use super::engine::{ms, ts, PgEngine};
use super::PgStoreError;
use crate::store::conversions::{effect, Attribution, Conversion, ConversionStore, Recorded};
use crate::store::StoreError;
use sqlx::postgres::PgRow;
use sqlx::Row;

/// `SELECT` of the columns [`conversion`] reads, then the rest of the statement.
macro_rules! select {
    ($rest:expr) => {
        concat!(
            "SELECT order_id, email, value_micros, currency, ",
            ms!("at"),
            ", attribution, variant FROM conversions ",
            $rest
        )
    };
}

fn conversion(engine: &PgEngine, row: &PgRow) -> Result<Conversion, PgStoreError> {
    let kind: String = row.get(5);
    let variant: Option<i16> = row.get(6);
    let attribution = match (kind.as_str(), variant) {
        ("variant", Some(v)) => Attribution::Variant(u8::try_from(v).unwrap_or(0)),
        ("holdout", _) => Attribution::Holdout,
        ("unattributed", _) => Attribution::Unattributed,
        _ => return Err(engine.damaged(format!("conversion: attribution {kind:?}"))),
    };
    Ok(Conversion {
        order_id: row.get(0),
        email: row.get(1),
        value_micros: u64::try_from(row.get::<i64, _>(2)).unwrap_or(0),
        currency: row.get(3),
        at: u64::try_from(row.get::<i64, _>(4)).unwrap_or(0),
        attribution,
    })
}

fn columns(attribution: Attribution) -> (&'static str, Option<i16>) {
    match attribution {
        Attribution::Variant(v) => ("variant", Some(i16::from(v))),
        Attribution::Holdout => ("holdout", None),
        Attribution::Unattributed => ("unattributed", None),
    }
}

impl PgEngine {
    async fn record_one(&self, number: i32, order: &Conversion) -> Result<Recorded, PgStoreError> {
        let (kind, variant) = columns(order.attribution);
        let sql = concat!(
            "INSERT INTO conversions (campaign, order_id, email, value_micros, currency, at, \
             attribution, variant) VALUES ($1, $2, $3, $4, $5, ",
            ts!(6),
            ", $7, $8) ON CONFLICT (campaign, order_id) DO NOTHING"
        );
        let inserted = sqlx::query(sql)
            .bind(number)
            .bind(&order.order_id)
            .bind(&order.email)
            .bind(i64::try_from(order.value_micros).unwrap_or(i64::MAX))
            .bind(&order.currency)
            .bind(i64::try_from(order.at).unwrap_or(i64::MAX))
            .bind(kind)
            .bind(variant)
            .execute(self.store.pool())
            .await
            .map_err(|e| self.failed("record a conversion", e))?
            .rows_affected();
        if inserted == 1 {
            return Ok(Recorded::Added);
        }
        let row = sqlx::query(select!("WHERE campaign = $1 AND order_id = $2"))
            .bind(number)
            .bind(&order.order_id)
            .fetch_optional(self.store.pool())
            .await
            .map_err(|e| self.failed("read a conversion", e))?;
        let existing = row.map(|row| conversion(self, &row)).transpose()?;
        Ok(effect(existing, order))
    }
}

impl ConversionStore for PgEngine {
    fn record_conversions(
        &self,
        campaign: &str,
        orders: &[Conversion],
    ) -> Result<Vec<Recorded>, StoreError> {
        let number = self.known(campaign)?;
        self.run(async {
            let mut out = Vec::with_capacity(orders.len());
            for order in orders {
                out.push(self.record_one(number, order).await?);
            }
            Ok(out)
        })
    }

    fn conversions(&self, campaign: &str) -> Result<Vec<Conversion>, StoreError> {
        let number = self.known(campaign)?;
        self.run(async {
            let rows = sqlx::query(select!("WHERE campaign = $1 ORDER BY order_id"))
                .bind(number)
                .fetch_all(self.store.pool())
                .await
                .map_err(|e| self.failed("read the conversions", e))?;
            rows.iter()
                .map(|row| conversion(self, row))
                .collect::<Result<Vec<_>, _>>()
        })
    }
}
