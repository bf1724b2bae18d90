//! What each relay did per campaign (`[[relay]]`): `G <campaign> 0 <relay name>` →
//! [`RelayTally`] (postcard), added to atomically (sled's compare-and-swap loop).

use super::keys;
use super::SledStore;
use crate::store::{RelayTally, StoreError};

/// The key tag of relay tallies.
pub(crate) const RELAY_TALLY: u8 = b'G';

impl SledStore {
    /// See [`crate::store::api::QueueStore::add_relay_tallies`].
    pub(crate) fn add_relay_tallies(
        &self,
        campaign: &str,
        tallies: &[RelayTally],
    ) -> Result<(), StoreError> {
        for tally in tallies {
            let mut key = keys::prefix(RELAY_TALLY, campaign);
            key.extend_from_slice(tally.relay.as_bytes());
            self.tree
                .update_and_fetch(&key, |old| {
                    let mut sum: RelayTally = old
                        .and_then(|bytes| postcard::from_bytes(bytes).ok())
                        .unwrap_or_else(|| RelayTally {
                            relay: tally.relay.clone(),
                            ..RelayTally::default()
                        });
                    sum.add(tally);
                    postcard::to_stdvec(&sum).ok()
                })
                .map_err(|e| self.sled_error(e))?;
        }
        Ok(())
    }

    /// See [`crate::store::api::QueueStore::relay_tallies`].
    pub(crate) fn relay_tallies(&self, campaign: &str) -> Result<Vec<RelayTally>, StoreError> {
        let mut out = Vec::new();
        for entry in self.tree.scan_prefix(keys::prefix(RELAY_TALLY, campaign)) {
            let (_, bytes) = entry.map_err(|e| self.sled_error(e))?;
            out.push(self.decode(&bytes, "relay tally")?);
        }
        Ok(out)
    }
}
