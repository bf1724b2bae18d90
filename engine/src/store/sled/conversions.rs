//! Conversions on sled: `K <campaign> 0 <order id>` → [`Conversion`] (postcard).

use super::SledStore;
use crate::store::conversions::{effect, Conversion, ConversionStore, Recorded};
use crate::store::StoreError;

/// The key tag of conversions.
const CONVERSION: u8 = b'K';

fn prefix(campaign: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(2 + campaign.len());
    key.push(CONVERSION);
    key.extend_from_slice(campaign.as_bytes());
    key.push(0);
    key
}

impl ConversionStore for SledStore {
    fn record_conversions(
        &self,
        campaign: &str,
        orders: &[Conversion],
    ) -> Result<Vec<Recorded>, StoreError> {
        let base = prefix(campaign);
        let mut out = Vec::with_capacity(orders.len());
        for order in orders {
            let mut key = base.clone();
            key.extend_from_slice(order.order_id.as_bytes());
            let value = self.encode(order, "conversion")?;
            let swapped = self
                .tree
                .compare_and_swap(&key, None as Option<&[u8]>, Some(value))
                .map_err(|e| self.sled_error(e))?;
            out.push(match swapped {
                Ok(()) => Recorded::Added,
                Err(current) => {
                    let existing = match current.current {
                        Some(bytes) => Some(self.decode(&bytes, "conversion")?),
                        None => None,
                    };
                    effect(existing, order)
                }
            });
        }
        Ok(out)
    }

    fn conversions(&self, campaign: &str) -> Result<Vec<Conversion>, StoreError> {
        let mut out = Vec::new();
        for entry in self.tree.scan_prefix(prefix(campaign)) {
            let (_, value) = entry.map_err(|e| self.sled_error(e))?;
            out.push(self.decode(&value, "conversion")?);
        }
        Ok(out)
    }
}
